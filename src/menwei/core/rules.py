"""The gate's rules as one pure function: what was presented and the facts in, a `Decision` out.

No SQL and no clock: the caller reads the facts (keys, the revocation floor, the household, its
state, the trips already made, the policy) and records the decision. Decision order (DESIGN.md §5,
the first failing check wins): not_a_pass/malformed, foreign_community, unknown_key, forged,
expired, revoked, unknown_household, already_out/already_in, sealed/outside_window/quota_exceeded,
ok. Coming home is never refused for policy reasons; a late return is let in and flagged `overdue`.

To add a rule: add its reason code to `model.REASONS` (and `OVERRIDABLE` if a volunteer may
override it), its words to `reasons.REASON_WORDS`, any fact it needs to `Facts` (read by
`GateService.facts_for`), and a check at its place in `decide()` returning `_refuse(...)`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from menwei.core import passes
from menwei.core.clock import parse_iso
from menwei.core.decision import Decision, LastUse, title_for
from menwei.core.errors import GateError
from menwei.core.model import (
    OVERRIDABLE,
    Direction,
    DirectionChoice,
    Household,
    HouseholdState,
    Verdict,
)
from menwei.core.policy import Policy
from menwei.core.reasons import REFUSAL_TEXTS
from menwei.core.text import Text, duration

MAX_HEADCOUNT = 20


@dataclass(frozen=True)
class Presented:
    """One presentation at the gate: when, by whom, from which source, which way asked."""

    at: datetime
    operator: str
    source: str
    headcount: int = 1
    direction: DirectionChoice = "auto"


@dataclass(frozen=True)
class Facts:
    """What the gate knows that the rules look at, read by the caller before deciding."""

    community: int
    keys: Mapping[int, tuple[Ed25519PublicKey, str]]
    policy: Policy
    policy_version: int | None = None
    revocation_floor: int | None = None  # the household's lowest valid serial, if it has one
    household: Household | None = None
    state: HouseholdState | None = None  # None: never moved, so in
    trips_in_period: int = 0  # exits counted for the quota period ending at the scan


Scanned = passes.ParsedPass | passes.ParseFailure | int  # an int: a household typed by number


def household_of(scanned: Scanned) -> int | None:
    """The household the facts must be read for (None when the text is not a pass)."""
    if isinstance(scanned, int):
        return scanned
    if isinstance(scanned, passes.ParseFailure):
        return None
    return scanned.data.household


def decide(scanned: Scanned, facts: Facts, presented: Presented) -> Decision:
    """The decision on one presentation (not yet recorded: `recorded` is False)."""
    if isinstance(scanned, passes.ParseFailure):
        return _refuse(scanned.value, facts, presented, None, None)
    if isinstance(scanned, int):
        return _decide_household(scanned, None, facts, presented)
    data = scanned.data
    number, serial = data.household, data.serial
    if data.community != facts.community:
        msg = Text(
            f"外小区的通行证(小区编号 {data.community}),本门岗不通行",
            f"Pass of another community (#{data.community}), not valid here",
        )
        return _refuse("foreign_community", facts, presented, number, serial, message=msg)
    key = facts.keys.get(data.kid)
    if key is None or key[1] != "active":
        return _refuse("unknown_key", facts, presented, number, serial)
    if not scanned.verify(key[0]):
        return _refuse("forged", facts, presented, number, serial)
    if data.valid_until < facts.policy.local(presented.at).date():
        msg = Text(
            f"通行证已于 {data.valid_until:%Y-%m-%d} 过期,请到居委会换证",
            f"Pass expired on {data.valid_until:%Y-%m-%d}: renew it at the committee office",
        )
        return _refuse("expired", facts, presented, number, serial, message=msg)
    floor = facts.revocation_floor
    if floor is not None and serial < floor:
        msg = Text(
            f"此证已挂失作废(现行第{floor}版),请留下证件,联系居委会",
            f"Revoked pass (the current one is serial {floor}): "
            "keep the card and call the committee",
        )
        return _refuse("revoked", facts, presented, number, serial, message=msg)
    return _decide_household(number, serial, facts, presented)


def proposed_direction(state: HouseholdState | None) -> Direction:
    """The way a household goes next: in when it is out, out otherwise."""
    return "entry" if state is not None and state.state == "out" else "exit"


@dataclass(frozen=True)
class _Who:
    household: Household
    direction: Direction
    proposed: Direction


def _decide_household(
    number: int, serial: int | None, facts: Facts, presented: Presented
) -> Decision:
    household = facts.household
    if household is None:
        msg = Text(f"户号 {number} 不在花名册中", f"Household {number} is not in the roster")
        return _refuse("unknown_household", facts, presented, number, serial, message=msg)
    headcount = presented.headcount
    if not 1 <= headcount <= MAX_HEADCOUNT:
        raise GateError(
            f"Headcount must be 1-{MAX_HEADCOUNT}, not {headcount}.",
            f"人数应为1到{MAX_HEADCOUNT}人",
        )
    current = facts.state or HouseholdState(number, "in", None, None, None)
    proposed = proposed_direction(current)
    way: Direction = proposed if presented.direction == "auto" else presented.direction
    who = _Who(household, way, proposed)
    if way == "exit" and current.state == "out":
        return _refuse("already_out", facts, presented, number, serial, who=who, last=current)
    if way == "entry" and current.state == "in":
        return _refuse("already_in", facts, presented, number, serial, who=who, last=current)
    policy, at = facts.policy, presented.at
    if way == "exit":
        refusal, window = policy.check_exit(
            building=household.building,
            group=household.group,
            category=household.category,
            at=at,
            trips_in_period=facts.trips_in_period,
            headcount=headcount,
        )
        if refusal is not None:
            return _refuse(
                refusal.reason, facts, presented, number, serial, who=who, rule=refusal.rule
            )
        msg = Text(
            f"{household.address().zh} {household.group_name().zh} 外出{headcount}人",
            f"{household.address().en}, {household.group_name().en}: {headcount} going out",
        )
        rule = None if window == "open" else Text(f"外出时段 {window}", f"release window {window}")
        return _green("ok", facts, presented, number, serial, who, msg, rule, window=window)
    # Entry: never refused for policy; flagged when late.
    since = parse_iso(current.since) if current.since else at
    minutes = int((at - since).total_seconds() // 60)
    overdue = policy.is_overdue(since, at)
    out_for = duration(minutes)
    msg = Text(
        f"{household.address().zh} 返回{headcount}人,外出{out_for.zh}",
        f"{household.address().en}: {headcount} back after {out_for.en}",
    )
    rule = None
    if overdue and policy.max_time_out is not None:
        limit = duration(int(policy.max_time_out.total_seconds() // 60))
        rule = Text(
            f"超过外出时限{limit.zh},已记录超时", f"over the {limit.en} limit: recorded overdue"
        )
    reason = "overdue" if overdue else "ok"
    return _green(reason, facts, presented, number, serial, who, msg, rule, overdue=overdue)


def _green(
    reason: str,
    facts: Facts,
    presented: Presented,
    number: int,
    serial: int | None,
    who: _Who,
    message: Text,
    rule: Text | None,
    *,
    window: str | None = None,
    overdue: bool = False,
) -> Decision:
    return Decision(
        verdict="green",
        reason=reason,
        direction=who.direction,
        household_number=number,
        household=who.household,
        serial=serial,
        headcount=presented.headcount,
        at=presented.at,
        title=title_for("green", who.direction),
        message=message,
        rule=rule,
        kind=who.direction,
        window=window,
        overdue=overdue,
        source=presented.source,
        operator=presented.operator,
        policy_version=facts.policy_version,
        proposed=who.proposed,
    )


def _refuse(
    reason: str,
    facts: Facts,
    presented: Presented,
    number: int | None,
    serial: int | None,
    *,
    who: _Who | None = None,
    message: Text | None = None,
    rule: Text | None = None,
    last: HouseholdState | None = None,
) -> Decision:
    verdict: Verdict = "red"
    last_use = None
    household = who.household if who else None
    if reason in REFUSAL_TEXTS:
        verdict, default = REFUSAL_TEXTS[reason]
        message = message or default
    if reason in ("already_out", "already_in"):
        verdict = "amber"
        assert last is not None
        last_use, message = last_use_words(reason, last, facts.policy)
    if message is None:
        assert household is not None
        message = Text(
            f"{household.address().zh} {household.group_name().zh}",
            f"{household.address().en}, {household.group_name().en}",
        )
    direction = who.direction if who else None
    return Decision(
        verdict=verdict,
        reason=reason,
        direction=direction,
        household_number=number,
        household=household,
        serial=serial,
        headcount=presented.headcount,
        at=presented.at,
        title=title_for(verdict, direction),
        message=message,
        rule=rule,
        kind="deny",
        overridable=reason in OVERRIDABLE,
        last_use=last_use,
        source=presented.source,
        operator=presented.operator,
        policy_version=facts.policy_version,
        proposed=who.proposed if who else None,
    )


def last_use_words(
    reason: str, last: HouseholdState, policy: Policy
) -> tuple[LastUse | None, Text]:
    """The amber 'possible copy' message, with the time and gate of the last use."""
    if not last.since:
        return None, Text(
            "该户没有外出记录:返回的居民请登记",
            "No exit on record: register a returning resident",
        )
    when = policy.local(parse_iso(last.since))
    gate = last.gate_id or "?"
    if reason == "already_out":
        text = Text(
            f"该户 {when:%m-%d %H:%M} 已从{gate}外出,未回:可能是复印件,请核实身份",
            f"Household already out since {when:%m-%d %H:%M} ({gate}): "
            "possible copy, check who this is",
        )
    else:
        text = Text(
            f"该户 {when:%m-%d %H:%M} 已从{gate}返回:可能是复印件,请核实身份",
            f"Household already came in at {when:%m-%d %H:%M} ({gate}): "
            "possible copy, check who this is",
        )
    return LastUse(last.since, gate), text
