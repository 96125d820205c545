from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from menwei.cli import cli
from menwei.core.clock import FrozenClock
from menwei.core.demo import build_demo
from menwei.core.gate import GateService
from menwei.core.store import Store
from tests.conftest import T0


def test_demo_community(tmp_path: Path) -> None:
    result = build_demo(tmp_path / "demo", now=T0)
    assert 250 <= result.households <= 400
    assert 8 <= result.groups <= 12
    assert len(list(result.passes_dir.glob("*.png"))) == result.households
    assert len(result.pdfs) == result.groups
    store = Store.open(result.home.db_path)
    gate = GateService(store, clock=FrozenClock(T0))
    verdicts = {gate.decide(p.code, operator="demo").reason for p in result.issued[:80]}
    assert "ok" in verdicts and "outside_window" in verdicts  # staggered: some now, some later
    groups = {g.group: g for g in gate.group_windows()}
    assert all(g.households <= 60 for g in groups.values())


def test_demo_command_rebuilds_fresh(tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["demo", "--dir", str(tmp_path / "d"), "--json"]
    first = json.loads(runner.invoke(cli, args, catch_exceptions=False).output)
    again = json.loads(runner.invoke(cli, args, catch_exceptions=False).output)
    assert first["home"] == again["home"] and first["sample_code"] != again["sample_code"]
