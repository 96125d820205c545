"""Mutation testing of the decision rules, the pass parser, the ordering and the ingest plan.

    python scripts/mutation.py [TARGET ...] [--list] [--keep]

Each target mutates a few functions with mutmut and runs only the focused, fast tests that guard
them, then applies this project's hand-made faults (a decision order changed, a branch removed:
mistakes mutmut's operators do not make) one at a time and checks that the same tests fail.
Prints, per target, killed / non-equivalent mutants and the score; exits 1 when a target scores
under 90% or a hand-made fault survives.

`TARGETS` is the one list to change when the code moves (a rules module split out of gate.py, an
ingest plan split out of the server): point `files`, `functions` and `tests` at the new place.
Mutants that cannot change behaviour are listed in `EQUIVALENT` with why (also in docs/testing.md).
Work happens in build/mutation/<target>, a copy of src and tests; the worktree is never changed.
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "build" / "mutation"
THRESHOLD = 0.90


@dataclass(frozen=True)
class Fault:
    """A hand-made fault: `old` replaced by `new` (each must occur exactly once) in `file`."""

    name: str
    file: str
    old: str
    new: str

    @classmethod
    def swap(cls, name: str, file: str, first: str, second: str) -> Fault:
        """Two adjacent blocks in the other order: a changed decision order."""
        return cls(name, file, first + second, second + first)


@dataclass(frozen=True)
class Target:
    files: tuple[str, ...]  # source files mutmut mutates
    functions: tuple[str, ...]  # mutant-name globs ("module.x_function*", "module.xǁClassǁmethod*")
    tests: tuple[str, ...]  # the focused tests run against every mutant
    faults: tuple[Fault, ...] = field(default=())


GATE = "src/menwei/core/gate.py"
RULES = "src/menwei/core/rules.py"
_FOREIGN = """\
    if data.community != facts.community:
        msg = Text(
            f"外小区的通行证(小区编号 {data.community}),本门岗不通行",
            f"Pass of another community (#{data.community}), not valid here",
        )
        return _refuse("foreign_community", facts, presented, number, serial, message=msg)
"""
_KEY_AND_SIGNATURE = """\
    key = facts.keys.get(data.kid)
    if key is None or key[1] != "active":
        return _refuse("unknown_key", facts, presented, number, serial)
    if not scanned.verify(key[0]):
        return _refuse("forged", facts, presented, number, serial)
"""
_EXPIRED = """\
    if data.valid_until < facts.policy.local(presented.at).date():
        msg = Text(
            f"通行证已于 {data.valid_until:%Y-%m-%d} 过期,请到居委会换证",
            f"Pass expired on {data.valid_until:%Y-%m-%d}: renew it at the committee office",
        )
        return _refuse("expired", facts, presented, number, serial, message=msg)
"""
_MOVED_OUT = """\
    if facts.removed_at is not None and facts.household is None:
        return _moved_out(number, serial, facts, presented)
"""
_REVOKED = """\
    floor = facts.revocation_floor
    if floor is not None and serial < floor:
        msg = Text(
            f"此证已挂失作废(现行第{floor}版),请留下证件,联系居委会",
            f"Revoked pass (the current one is serial {floor}): "
            "keep the card and call the committee",
        )
        return _refuse("revoked", facts, presented, number, serial, message=msg)
"""
PLAN = "src/menwei/sync/server/plan.py"
ORDERING = "src/menwei/core/ordering.py"

TARGETS: dict[str, Target] = {
    "rules": Target(
        files=(RULES, GATE),
        functions=(
            "menwei.core.rules.x_*",
            "menwei.core.gate.xǁGateServiceǁfacts_for__*",
            "menwei.core.gate.xǁGateServiceǁannul_last__*",
        ),
        tests=("tests/core/test_gate.py", "tests/core/test_gate_rules.py"),
        faults=(
            Fault.swap(
                "foreign-community check after the signature check",
                RULES,
                _FOREIGN,
                _KEY_AND_SIGNATURE,
            ),
            Fault(
                "expired and revoked checks swapped",
                RULES,
                _EXPIRED + _MOVED_OUT + _REVOKED,
                _REVOKED + _MOVED_OUT + _EXPIRED,
            ),
            Fault(
                "undo window without the monotonic-clock guard",
                GATE,
                '        if row["boot_id"] == self._boot:',
                "        if False:",
            ),
        ),
    ),
    "parser": Target(
        files=("src/menwei/core/passes.py", "src/menwei/core/base45.py"),
        functions=(
            "menwei.core.passes.x_parse__*",
            "menwei.core.passes.x_validate_fields__*",
            "menwei.core.passes.x_sign__*",
            "menwei.core.passes.xǁPassDataǁbody__*",
            "menwei.core.passes.xǁParsedPassǁverify__*",
            "menwei.core.base45.x_encode__*",
            "menwei.core.base45.x_decode__*",
        ),
        tests=("tests/core/test_passes.py",),
        faults=(
            Fault(
                "parser length guard removed",
                "src/menwei/core/passes.py",
                "    if len(raw) != PASS_LEN or raw[0] >> 4 != VERSION:",
                "    if len(raw) < BODY_LEN or raw[0] >> 4 != VERSION:",
            ),
            Fault(
                "text length guard removed",
                "src/menwei/core/passes.py",
                "    if len(text) > MAX_TEXT:\n        return ParseFailure.MALFORMED\n",
                "",
            ),
            Fault(
                "community-id range check removed",
                "src/menwei/core/passes.py",
                "    if not 1 <= data.community <= 0xFFFF:",
                "    if False:",
            ),
        ),
    ),
    "ordering": Target(
        files=(ORDERING, "src/menwei/core/state.py"),
        functions=(
            "menwei.core.ordering.x_*",
            "menwei.core.state.x_direction_of__*",
            "menwei.core.state.x_get__*",
            "menwei.core.state.x_apply__*",
            "menwei.core.state.x_rebuild__*",
            "menwei.core.state.x_rebuild_all__*",
        ),
        tests=("tests/core/test_ordering.py", "tests/core/test_state.py"),
        faults=(
            Fault(
                "settle keeps the first moving event",
                ORDERING,
                "            last = t\n",
                "            last = last or t\n",
            ),
            Fault(
                "next_hlc ignores the household's last event",
                ORDERING,
                "    for floor in (gate_last, household_last):",
                "    for floor in (gate_last,):",
            ),
        ),
    ),
    "ingest": Target(
        files=(PLAN,),
        functions=(
            "menwei.sync.server.plan.x_validate_body__*",
            "menwei.sync.server.plan.x__opt_int__*",
            "menwei.sync.server.plan.x_parse_body__*",
            "menwei.sync.server.plan.xǁ_Plannerǁheld__*",
            "menwei.sync.server.plan.xǁ_Plannerǁrun__*",
            "menwei.sync.server.plan.xǁ_Plannerǁ_on_lineage__*",
            "menwei.sync.server.plan.xǁ_Plannerǁ_one__*",
            "menwei.sync.server.plan.xǁ_Plannerǁ_append__*",
        ),
        tests=("tests/sync/test_sync_ingest.py", "tests/sync/test_sync_plan.py"),
        faults=(
            Fault(
                "replay-after-fork branch removed",
                PLAN,
                "                if known is not None and known.hash == ev.hash:",
                "                if False:",
            ),
            Fault(
                "gap check through_seq + 2",
                PLAN,
                "        elif s > stream.through_seq + 1:",
                "        elif s > stream.through_seq + 2:",
            ),
            Fault(
                "batch gap check through_seq + 2",
                PLAN,
                "        if events and events[0].seq > stream.through_seq + 1:",
                "        if events and events[0].seq > stream.through_seq + 2:",
            ),
        ),
    ),
}


@dataclass(frozen=True)
class Equivalent:
    """Mutants that cannot change behaviour, and why.

    mutmut names a mutant by a number that moves whenever the code of its function does, so each
    name comes with its change (`change_of` its diff: the lines taken out and put in). A listed
    mutant whose change is no longer that one, or that the tests kill, is not taken as
    equivalent: the run says so, and it is counted like any other.
    """

    why: str
    changes: dict[str, str]


# Keep docs/testing.md in step.
EQUIVALENTS: list[Equivalent] = [
    Equivalent(
        "`int(row['headcount'] or 1)` -> `or 2`: every trip event (exit, entry, override, register) is written with a headcount, so the default is never taken",
        {
            "menwei.core.gate.xǁGateServiceǁannul_last__mutmut_88": (
                ' what = KIND_WORDS.get(row["kind"], Text(row["kind"], row["kind"]))\n'
                '-count = int(row["headcount"] or 1)\n'
                '+count = int(row["headcount"] or 2)'
            ),
            "menwei.core.gate.xǁGateServiceǁannul_last__mutmut_172": (
                ' serial=row["serial"],\n'
                '-headcount=int(row["headcount"] or 1),\n'
                '+headcount=int(row["headcount"] or 2),'
            ),
        },
    ),
    Equivalent(
        "the default of `KIND_WORDS.get(kind, ...)` in `annul_last`: the last trip it selects is an exit, entry, override or register, and KIND_WORDS names all four",
        {
            "menwei.core.gate.xǁGateServiceǁannul_last__mutmut_70": (
                " household = self.household(number)\n"
                '-what = KIND_WORDS.get(row["kind"], Text(row["kind"], row["kind"]))\n'
                '+what = KIND_WORDS.get(row["kind"], None)'
            ),
            "menwei.core.gate.xǁGateServiceǁannul_last__mutmut_72": (
                " household = self.household(number)\n"
                '-what = KIND_WORDS.get(row["kind"], Text(row["kind"], row["kind"]))\n'
                '+what = KIND_WORDS.get(row["kind"], )'
            ),
            "menwei.core.gate.xǁGateServiceǁannul_last__mutmut_75": (
                " household = self.household(number)\n"
                '-what = KIND_WORDS.get(row["kind"], Text(row["kind"], row["kind"]))\n'
                '+what = KIND_WORDS.get(row["kind"], Text(None, row["kind"]))'
            ),
            "menwei.core.gate.xǁGateServiceǁannul_last__mutmut_76": (
                " household = self.household(number)\n"
                '-what = KIND_WORDS.get(row["kind"], Text(row["kind"], row["kind"]))\n'
                '+what = KIND_WORDS.get(row["kind"], Text(row["kind"], None))'
            ),
        },
    ),
    Equivalent(
        "`trips = 0` -> `None` or `1` in `facts_for`: without a quota the count is not taken, and the rules read it only under a quota",
        {
            "menwei.core.gate.xǁGateServiceǁfacts_for__mutmut_22": (
                " current = self.state_of(number)\n-trips = 0\n+trips = None"
            ),
            "menwei.core.gate.xǁGateServiceǁfacts_for__mutmut_23": (
                " current = self.state_of(number)\n-trips = 0\n+trips = 1"
            ),
        },
    ),
    Equivalent(
        "`removed_households` read also for a household in the roster: the rules look at `removed_at` only when the household is not in the roster",
        {
            "menwei.core.gate.xǁGateServiceǁfacts_for__mutmut_38": (
                " )\n-if household is None\n+if (household is None) or True"
            ),
        },
    ),
    Equivalent(
        "`title_for(verdict, direction)` -> `title_for(verdict, None)` in `_refuse`: a refusal is never green, and title_for reads the direction only for green",
        {
            "menwei.core.rules.x__refuse__mutmut_75": (
                " at=presented.at,\n"
                "-title=title_for(verdict, direction),\n"
                "+title=title_for(verdict, None),"
            ),
        },
    ),
    Equivalent(
        "`total_seconds() // 60` -> `/ 60` under `int()`: for a time not below zero both cut to the same whole minutes; a negative time out is shown as 0 by `duration` either way, and `max_time_out` is a positive whole number of minutes",
        {
            "menwei.core.rules.x__decide_household__mutmut_187": (
                " since = parse_iso(current.since) if current.since else at\n"
                "-minutes = int((at - since).total_seconds() // 60)\n"
                "+minutes = int((at - since).total_seconds() / 60)"
            ),
            "menwei.core.rules.x__decide_household__mutmut_208": (
                " if overdue and policy.max_time_out is not None:\n"
                "-limit = duration(int(policy.max_time_out.total_seconds() // 60))\n"
                "+limit = duration(int(policy.max_time_out.total_seconds() / 60))"
            ),
        },
    ),
    Equivalent(
        "the household number of the default state (a household never moved) -> None: only its `state`, `since` and `gate_id` are read",
        {
            "menwei.core.rules.x__decide_household__mutmut_44": (
                " )\n"
                '-current = facts.state or HouseholdState(number, "in", None, None, None)\n'
                '+current = facts.state or HouseholdState(None, "in", None, None, None)'
            ),
        },
    ),
    Equivalent(
        "`.replace('Z', '+00:00')` before `datetime.fromisoformat` turned into a replace that "
        "changes nothing: since Python 3.11 (the oldest this project runs on) fromisoformat "
        "reads the 'Z' itself, to the same time",
        {
            "menwei.core.rules.x__moved_out__mutmut_9": (
                " assert facts.removed_at is not None\n"
                '-day = facts.policy.local(datetime.fromisoformat(facts.removed_at.replace("Z", "+00:00")))\n'
                '+day = facts.policy.local(datetime.fromisoformat(facts.removed_at.replace("XXZXX", "+00:00")))'
            ),
            "menwei.core.rules.x__moved_out__mutmut_10": (
                " assert facts.removed_at is not None\n"
                '-day = facts.policy.local(datetime.fromisoformat(facts.removed_at.replace("Z", "+00:00")))\n'
                '+day = facts.policy.local(datetime.fromisoformat(facts.removed_at.replace("z", "+00:00")))'
            ),
        },
    ),
    Equivalent(
        "the serial of a moved-out household in `_decide_household` -> None: a pass's moved-out "
        "household is answered by `decide` before, so this line is reached only for a typed "
        "household number, whose serial is None",
        {
            "menwei.core.rules.x__decide_household__mutmut_6": (
                " if household is None and facts.removed_at is not None:\n"
                "-return _moved_out(number, serial, facts, presented)\n"
                "+return _moved_out(number, None, facts, presented)"
            ),
        },
    ),
    Equivalent(
        "`last.gate_id or '?'` -> `or 'XX?XX'`: household_state.gate_id is NOT NULL, so the default is never taken",
        {
            "menwei.core.rules.x_last_use_words__mutmut_15": (
                " when = policy.local(parse_iso(last.since))\n"
                '-gate = last.gate_id or "?"\n'
                '+gate = last.gate_id or "XX?XX"'
            ),
        },
    ),
    Equivalent(
        '`n.to_bytes(2, "big")` -> `n.to_bytes(2)`: "big" is the default byte order since 3.11',
        {
            "menwei.core.base45.x_decode__mutmut_47": (
                ' raise ValueError("base45 triple out of range")\n'
                '-out += n.to_bytes(2, "big")\n'
                "+out += n.to_bytes(2, )"
            ),
        },
    ),
    Equivalent(
        '`key.split("|", 1)[0]` -> `key.split("|")[0]` or `key.split("|", 2)[0]`: the first part is the same however many times the rest is split',
        {
            "menwei.core.ordering.x_hlc_of_key__mutmut_6": (
                ' return None\n-return int(key.split("|", 1)[0])\n+return int(key.split("|", )[0])'
            ),
            "menwei.core.ordering.x_hlc_of_key__mutmut_9": (
                ' return None\n-return int(key.split("|", 1)[0])\n+return int(key.split("|", 2)[0])'
            ),
        },
    ),
    Equivalent(
        "`g('overdue', False)` -> `g('overdue', True)`: either default is a bool, so an absent `overdue` passes the type check the same way",
        {
            "menwei.sync.server.plan.x_validate_body__mutmut_205": (
                ' bad.append("ref")\n'
                '-if type(g("overdue", False)) is not bool:\n'
                '+if type(g("overdue", True)) is not bool:'
            ),
        },
    ),
    Equivalent(
        "the last line of `held` (position 0 is the genesis hash): every gate's first stream starts at 0 with the genesis hash, so position 0 is answered by the base check first",
        {
            "menwei.sync.server.plan.xǁ_Plannerǁheld__mutmut_14": (
                " return None if h is None else (h.hash, h.event_id)\n"
                "-return (GENESIS, None) if seq == 0 else None\n"
                "+return (GENESIS, None) if (seq == 0) and False else None"
            ),
            "menwei.sync.server.plan.xǁ_Plannerǁheld__mutmut_15": (
                " return None if h is None else (h.hash, h.event_id)\n"
                "-return (GENESIS, None) if seq == 0 else None\n"
                "+return (GENESIS, None) if (seq == 0) or True else None"
            ),
            "menwei.sync.server.plan.xǁ_Plannerǁheld__mutmut_16": (
                " return None if h is None else (h.hash, h.event_id)\n"
                "-return (GENESIS, None) if seq == 0 else None\n"
                "+return (GENESIS, None) if seq != 0 else None"
            ),
            "menwei.sync.server.plan.xǁ_Plannerǁheld__mutmut_17": (
                " return None if h is None else (h.hash, h.event_id)\n"
                "-return (GENESIS, None) if seq == 0 else None\n"
                "+return (GENESIS, None) if seq == 1 else None"
            ),
        },
    ),
    Equivalent(
        "`if seq < s.base_seq` -> `<=` in `held`: seq == base_seq was answered by the line before",
        {
            "menwei.sync.server.plan.xǁ_Plannerǁheld__mutmut_4": (
                " return s.base_hash, None\n-if seq < s.base_seq:\n+if seq <= s.base_seq:"
            ),
        },
    ),
    Equivalent(
        "`known.get(eid) if eid else None` -> always `known.get(eid)`: the known events are keyed by ids, never by None or an empty id",
        {
            "menwei.sync.server.plan.xǁ_Plannerǁ_one__mutmut_33": (
                " eid = read.event_id\n"
                "-known = self.known.get(eid) if eid else None\n"
                "+known = self.known.get(eid) if (eid) or True else None"
            ),
        },
    ),
    Equivalent(
        "`if s > through_seq` -> `>=`: s == through_seq reaches this line only after a fork, whose new stream holds through s - 1, so both take the branch",
        {
            "menwei.sync.server.plan.xǁ_Plannerǁ_one__mutmut_146": (
                " self._append(stream, read, expected_prev)\n"
                "-if s > stream.through_seq:\n"
                "+if s >= stream.through_seq:"
            ),
        },
    ),
    Equivalent(
        "`problem or 'no body'`: validate_body always names a problem when the body is None, so the default text is never used",
        {
            "menwei.sync.server.plan.xǁ_Plannerǁ_append__mutmut_63": (
                " if problem or body is None:\n"
                '-self._reject(stream, read, "invalid", problem or "no body")\n'
                '+self._reject(stream, read, "invalid", problem or "XXno bodyXX")'
            ),
            "menwei.sync.server.plan.xǁ_Plannerǁ_append__mutmut_64": (
                " if problem or body is None:\n"
                '-self._reject(stream, read, "invalid", problem or "no body")\n'
                '+self._reject(stream, read, "invalid", problem or "NO BODY")'
            ),
        },
    ),
]
EQUIVALENT: dict[str, tuple[str, str]] = {
    name: (change, e.why) for e in EQUIVALENTS for name, change in e.changes.items()
}


def change_of(diff: str) -> str:
    """A mutant's change: the line before it, then the lines its diff takes out (-) and puts in
    (+), stripped (the line before tells apart the same line written twice in a function)."""
    out: list[str] = []
    before: str | None = None
    for line in diff.splitlines():
        if line.startswith(("+++", "---", "@@", "#")):
            continue
        if line.startswith(("+", "-")):
            if not out and before is not None:
                out.append(" " + before)
            out.append(line[0] + line[1:].strip())
        elif not out and line.strip():
            before = line.strip()
    return "\n".join(out)


_SQL = re.compile(r"\b(select|insert into|update|delete from|order by|values|on conflict)\b")


def rule_equivalent(diff: str) -> str | None:
    """Why a mutant is equivalent by a general rule, from its diff (None when none applies)."""
    minus = [
        line[1:]
        for line in diff.splitlines()
        if line.startswith("-") and not line.startswith("---")
    ]
    plus = [
        line[1:]
        for line in diff.splitlines()
        if line.startswith("+") and not line.startswith("+++")
    ]
    if (
        minus
        and len(minus) == len(plus)
        and all(a != b and a.lower() == b.lower() for a, b in zip(minus, plus, strict=True))
        and all(_SQL.search(a.lower()) for a in minus)
    ):
        return "SQL text in another letter case: SQLite keywords and names ignore case"
    return None


_BIN = Path(sys.executable).parent
_LINE = re.compile(r"^\s*(\S+): (.+)$")


def _copy_tree(dest: Path) -> None:
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", ".hypothesis")
    shutil.copytree(ROOT / "src", dest / "src", ignore=ignore)
    shutil.copytree(ROOT / "tests", dest / "tests", ignore=ignore)


def _config(target: Target) -> str:
    def toml_list(items: tuple[str, ...] | list[str]) -> str:
        return "[" + ", ".join(f'"{i}"' for i in items) + "]"

    pytest_args = ["-p", "no:cacheprovider", "-x", "-q", "--no-cov"]
    return (
        "\n[tool.mutmut]\n"
        'source_paths = ["src/"]\n'
        f"only_mutate = {toml_list(target.files)}\n"
        f"pytest_add_cli_args_test_selection = {toml_list(target.tests)}\n"
        f"pytest_add_cli_args = {toml_list(pytest_args)}\n"
    )


def run_mutmut(name: str, target: Target, children: int) -> dict[str, str]:
    """Status of every mutant of the target's functions."""
    dest = WORK / name
    _copy_tree(dest)
    (dest / "pyproject.toml").write_text(
        (ROOT / "pyproject.toml").read_text(encoding="utf-8") + _config(target), encoding="utf-8"
    )
    env = dict(os.environ, HYPOTHESIS_PROFILE=os.environ.get("HYPOTHESIS_PROFILE", "ci"))
    cmd = [str(_BIN / "mutmut"), "run", "--max-children", str(children), *target.functions]
    done = subprocess.run(cmd, cwd=dest, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-3000:] + done.stderr[-3000:])
        raise SystemExit(f"mutation: mutmut failed for {name}")
    listed = subprocess.run(
        [str(_BIN / "mutmut"), "results", "--all", "true"],
        cwd=dest,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    statuses: dict[str, str] = {}
    for line in listed.stdout.splitlines():
        m = _LINE.match(line)
        if m and any(fnmatch.fnmatchcase(m[1], g) for g in target.functions):
            statuses[m[1]] = m[2].strip()
    return statuses


def show(name: str, mutant: str) -> str:
    done = subprocess.run(
        [str(_BIN / "mutmut"), "show", mutant], cwd=WORK / name, capture_output=True, text=True
    )
    return done.stdout


def check_faults(names: list[str]) -> None:
    """Every hand-made fault still matches its file (checked before the long mutmut runs)."""
    for name in names:
        for fault in TARGETS[name].faults:
            if (ROOT / fault.file).read_text(encoding="utf-8").count(fault.old) != 1:
                raise SystemExit(f"mutation: fault {fault.name!r} no longer matches {fault.file}")


def run_faults(name: str, target: Target) -> list[tuple[Fault, bool]]:
    """Apply each hand-made fault alone to a fresh copy; True when the focused tests fail."""
    results = []
    for fault in target.faults:
        dest = WORK / f"{name}-fault"
        _copy_tree(dest)
        path = dest / fault.file
        text = path.read_text(encoding="utf-8")
        if text.count(fault.old) != 1:
            raise SystemExit(f"mutation: fault {fault.name!r} no longer matches {fault.file}")
        path.write_text(text.replace(fault.old, fault.new), encoding="utf-8")
        env = dict(os.environ, PYTHONPATH=str(dest / "src"), HYPOTHESIS_PROFILE="ci")
        done = subprocess.run(
            [str(_BIN / "pytest"), "-x", "-q", "-p", "no:cacheprovider", "--no-cov", *target.tests],
            cwd=dest,
            env=env,
            capture_output=True,
            text=True,
        )
        results.append((fault, done.returncode == 1))
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", nargs="*", choices=[[], *TARGETS], default=[])
    parser.add_argument("--list", action="store_true", help="print every survivor")
    parser.add_argument("--children", type=int, default=2, help="mutants run at once")
    args = parser.parse_args()
    names = args.targets or list(TARGETS)
    check_faults(names)
    failed = False
    rows = []
    for name in names:
        target = TARGETS[name]
        statuses = run_mutmut(name, target, args.children)
        why: dict[str, str] = {}
        stale: list[str] = []
        for m, status in statuses.items():
            if status in ("killed", "timeout"):
                if m in EQUIVALENT:
                    stale.append(f"{m} is listed as equivalent but the tests kill it")
                continue
            diff = show(name, m)
            if m in EQUIVALENT:
                change, reason = EQUIVALENT[m]
                if change_of(diff) == change:
                    why[m] = reason
                    continue
                stale.append(f"{m} is listed as equivalent but is now another change")
            found = rule_equivalent(diff)
            if found:
                why[m] = found
        stale += [
            f"{m} is listed as equivalent but no longer exists"
            for m in EQUIVALENT
            if m not in statuses and any(fnmatch.fnmatchcase(m, g) for g in target.functions)
        ]
        equivalent = sorted(why)
        counted = {m: s for m, s in statuses.items() if m not in why}
        killed = [m for m, s in counted.items() if s == "killed" or s == "timeout"]
        survivors = sorted(m for m in counted if m not in killed)
        score = len(killed) / len(counted) if counted else 1.0
        faults = run_faults(name, target)
        caught = sum(ok for _, ok in faults)
        rows.append((name, len(statuses), len(equivalent), len(killed), len(counted), score))
        print(
            f"{name:9s} mutants {len(statuses):4d}  equivalent {len(equivalent):3d}  "
            f"killed {len(killed):4d}/{len(counted):<4d} score {score:6.1%}  "
            f"hand-made faults caught {caught}/{len(faults)}",
            flush=True,
        )
        for fault, ok in faults:
            if not ok:
                print(f"    fault survived: {fault.name}")
        if args.list or score < THRESHOLD:
            for m in survivors:
                print(f"    {counted[m]:10s} {m}")
        if args.list:
            for m in equivalent:
                print(f"    equivalent {m}: {why[m]}")
        for line in stale:
            print(f"    EQUIVALENT out of date: {line}")
        if score < THRESHOLD or caught < len(faults):
            failed = True
    total_killed = sum(r[3] for r in rows)
    total = sum(r[4] for r in rows)
    if total:
        print(f"{'all':9s} killed {total_killed}/{total} = {total_killed / total:.1%}")
    print("mutation: see build/mutation/<target> and `mutmut show NAME` there for a survivor")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
