"""The IT person's and the scripted scanner's commands, through Click's runner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from menwei.cli import cli
from menwei.core.home import Home
from tests.conftest import HOUSEHOLDS, Community


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_help_lists_the_commands() -> None:
    out = run("--help").output
    for name in ("init", "roster", "passes", "policy", "check", "log", "demo"):
        assert name in out


def test_init_then_refuses_to_overwrite(home: Home) -> None:
    r = run("init", "--community", "4201", "--name", "钟楼居民区", "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["community"] == 4201 and Path(doc["public_keys"]).exists()
    assert (home.keys_dir / "signing-0.pem").stat().st_mode & 0o077 == 0
    again = run("init", "--community", "4202", "--name", "别的")
    assert again.exit_code != 0
    assert "already holds a community" in again.output
    assert "Traceback" not in again.output


def test_init_rejects_a_bad_community_id(home: Home) -> None:
    r = run("init", "--community", "70000", "--name", "x")
    assert r.exit_code == 2 and "65535" in r.output


def test_commands_before_init_say_what_to_do(home: Home) -> None:
    r = run("check", "MW:ABC")
    assert r.exit_code == 1 and "menwei init" in r.output


def test_check_json(community: Community) -> None:
    code = community.codes[1203]
    r = run("check", code, "--json", "--at", "2026-11-24T10:00", "--record", "--operator", "王阿姨")
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    for key in ("verdict", "reason", "direction", "household", "message", "recorded", "event_id"):
        assert key in d
    assert (d["verdict"], d["reason"], d["direction"], d["household"]) == (
        "green",
        "ok",
        "exit",
        1203,
    )
    assert d["recorded"] is True and d["operator"] == "王阿姨"
    assert d["at"] == "2026-11-24T02:00:00.000Z"
    r2 = run("check", code, "--json", "--dry-run", "--lang", "en")
    d2 = json.loads(r2.output)
    assert (d2["direction"], d2["recorded"], d2["event_id"]) == ("entry", False, None)
    assert d2["title"] == "Welcome home"


def test_check_garbage_and_directions(community: Community) -> None:
    r = run("check", "完全不是通行证 \x00\x01", "--json")
    assert r.exit_code == 0 and json.loads(r.output)["reason"] == "not_a_pass"
    r = run("check", community.codes[1204], "--direction", "entry", "--json")
    assert json.loads(r.output)["reason"] == "already_in"
    r = run("check", community.codes[1204], "--at", "yesterday")
    assert r.exit_code != 0 and "not a time" in r.output


def test_log_and_verify(community: Community) -> None:
    run("check", community.codes[1203], "--at", "2026-11-24T10:00", "--record")
    run("check", community.codes[1203], "--at", "2026-11-24T10:30", "--record")
    r = run("log", "--json")
    events = [json.loads(line) for line in r.output.splitlines()]
    assert [e["kind"] for e in events] == ["exit", "entry"]
    r = run("log", "--since", "2026-11-24T10:15", "--json")
    assert len(r.output.splitlines()) == 1
    r = run("log")
    assert "exit" in r.output and "1203" in r.output
    r = run("log", "verify", "--json")
    assert r.exit_code == 0 and json.loads(r.output)["ok"] is True
    db = community.store.db
    db.execute("drop trigger events_no_update")
    db.execute("update events set household = 1204 where seq = 2")
    r = run("log", "verify")
    assert r.exit_code == 1 and "event 2" in r.output


def test_policy_check_and_show(community: Community, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        'timezone = "Mars/Olympus"\n[[windows]]\ngroups = ["99"]\nstart = "25:00"\nend = "09:00"\n'
        '[levels]\n"3" = "lockdown"\n',
        encoding="utf-8",
    )
    r = run("policy", "check", str(bad))
    assert r.exit_code == 1
    for words in ("Mars/Olympus", "'99' is not in the roster", "25:00", "lockdown"):
        assert words in r.output
    r = run("policy", "check", str(bad), "--json")
    assert r.exit_code == 1 and len(json.loads(r.output)["problems"]) == 4
    good = tmp_path / "good.toml"
    good.write_text(
        '[[windows]]\ngroups = ["3"]\nstart = "08:00"\nend = "09:00"\n', encoding="utf-8"
    )
    assert run("policy", "check", str(good)).exit_code == 0
    community.home.policy_path.write_text(good.read_text(encoding="utf-8"), encoding="utf-8")
    r = run("policy", "show", "--json")
    doc = json.loads(r.output)
    assert doc["version"] == 2
    assert any("第3楼组" in line and "08:00-09:00" in line for line in doc["rules"]["zh"])


def test_a_broken_policy_file_never_stops_the_gate(community: Community) -> None:
    community.home.policy_path.write_text("this is [not toml", encoding="utf-8")
    r = run("check", community.codes[1203], "--json")
    assert r.exit_code == 0 and json.loads(r.output)["reason"] == "ok"
    r = run("policy", "show")
    assert "still using policy version 1" in r.output


@pytest.mark.parametrize("household", [h[0] for h in HOUSEHOLDS[:2]])
def test_passes_issue_and_revoke(community: Community, tmp_path: Path, household: int) -> None:
    out = tmp_path / "out"
    r = run("passes", "issue", "--household", str(household), "--out", str(out), "--json")
    assert r.exit_code == 0, r.output
    [p] = json.loads(r.output)
    assert p["household"] == household and p["serial"] == 1 and p["code"].startswith("MW:")
    assert (out / f"{household}.png").exists()
    r = run("passes", "revoke", str(household), "--reason", "遗失", "--out", str(out), "--json")
    new = json.loads(r.output)
    assert new["serial"] == 2
    old = json.loads(run("check", p["code"], "--json").output)
    assert old["reason"] == "revoked"
    assert json.loads(run("check", new["code"], "--json").output)["reason"] == "ok"


def test_passes_issue_refuses_unknown_households(community: Community, tmp_path: Path) -> None:
    r = run("passes", "issue", "--household", "9999", "--out", str(tmp_path))
    assert r.exit_code == 1 and "9999" in r.output
    r = run("passes", "issue", "--out", str(tmp_path))
    assert r.exit_code == 1 and "--all" in r.output


def test_override_undo_and_register_from_the_command_line(community: Community) -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    today = datetime.now(ZoneInfo("Asia/Shanghai")).weekday()
    other = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"][(today + 3) % 7]
    community.home.policy_path.write_text(
        f'[[windows]]\ngroups = ["3"]\nweekdays = ["{other}"]\nstart = "08:00"\nend = "09:00"\n',
        encoding="utf-8",
    )
    refused = json.loads(run("check", community.codes[1203], "--json").output)
    assert refused["reason"] == "outside_window"
    r = run("override", refused["event_id"], "--reason", "other", "--json")
    assert r.exit_code == 1 and "needs the reason in words" in r.output
    r = run("override", refused["event_id"], "--reason", "medical", "--note", "复诊", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["kind"] == "override"
    r = run("undo", "--json")
    assert r.exit_code == 0 and json.loads(r.output)["kind"] == "annul"
    r = run("register-return", "2102", "--note", "外地返岗", "--json")
    assert r.exit_code == 0 and json.loads(r.output)["kind"] == "register"
    r = run("register-return", "2102", "--note", " ")
    assert r.exit_code == 1 and "needs a note" in r.output
