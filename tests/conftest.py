"""Shared fixtures: a real home in a temporary directory, a community, households and passes."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from menwei.core.clock import FrozenClock
from menwei.core.community import adopt_policy, init_community
from menwei.core.gate import GateService
from menwei.core.home import Home
from menwei.core.issuing import issue
from menwei.core.store import Store

# 2026-11-24 10:00 in Shanghai (a Tuesday).
T0 = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)

HOUSEHOLDS = [
    # household, building, unit, room, group, members, category
    (1203, "3", "2", "301", "3", 3, "normal"),
    (1204, "3", "2", "302", "3", 2, "normal"),
    (2101, "7", "1", "101", "5", 1, "elderly_alone"),
    (2102, "7", "1", "102", "5", 4, "returning_worker"),
    (3301, "12", "1", "601", "8", 2, "normal"),
]


def add_households(store: Store, rows: list[tuple[int, str, str, str, str, int, str]]) -> None:
    with store.write() as db:
        for r in rows:
            db.execute(
                "insert into households (household, building, unit, room, building_group,"
                " members, category, updated_at) values (?, ?, ?, ?, ?, ?, ?, ?)",
                [*r, "2026-11-01T00:00:00.000Z"],
            )


@dataclass
class Community:
    home: Home
    store: Store
    clock: FrozenClock
    gate: GateService
    codes: dict[int, str]

    def set_policy(self, text: str) -> None:
        adopt_policy(self.store, text)
        self.gate.reload()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Home:
    root = tmp_path / "home"
    monkeypatch.setenv("MENWEI_HOME", str(root))
    return Home(root)


@pytest.fixture
def community(home: Home) -> Iterator[Community]:
    init_community(home, community=42, name="测试小区", now=T0)
    store = Store.open(home.db_path)
    add_households(store, HOUSEHOLDS)
    issued = issue(home, store, households=None, now=T0, valid_until=date(2027, 5, 1))
    clock = FrozenClock(T0)
    gate = GateService(store, clock=clock)
    yield Community(home, store, clock, gate, {p.household.number: p.code for p in issued})
    store.close()
