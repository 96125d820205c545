"""Shared fixtures: a real home in a temporary directory, a community, households and passes."""

from __future__ import annotations

import os
import random
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase

from menwei.core.clock import FrozenClock
from menwei.core.community import adopt_policy, init_community
from menwei.core.gate import GateService
from menwei.core.home import Home
from menwei.core.issuing import issue
from menwei.core.store import Store

# --- hypothesis -----------------------------------------------------------------------------------
# `ci` (the default): one fixed seed, printed in pytest's header, so every run draws the same
# examples; enough of them to reach forks, replays after forks, gaps, clones and skewed clocks.
# `explore` (HYPOTHESIS_PROFILE=explore): a new random seed each run (printed: rerun a failure
# with HYPOTHESIS_SEED=N) and many more examples. A failure found so becomes an @example.
CI_SEED = 20261124
_COMMON = dict(
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile("ci", max_examples=100, database=None, **_COMMON)  # type: ignore[arg-type]
settings.register_profile(
    "explore",
    max_examples=2000,
    database=DirectoryBasedExampleDatabase(".hypothesis/examples"),
    **_COMMON,  # type: ignore[arg-type]
)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
settings.load_profile(PROFILE)
_seed_env = os.environ.get("HYPOTHESIS_SEED")
SEED = int(_seed_env) if _seed_env else CI_SEED if PROFILE == "ci" else random.randrange(2**32)


def pytest_configure(config: pytest.Config) -> None:
    # Handed to Hypothesis' own --hypothesis-seed (this hook runs before its plugin's).
    if config.getoption("hypothesis_seed", None) is None:
        config.option.hypothesis_seed = str(SEED)
    # A run stopped by SIGTERM (a CI timeout, `kill PID`) ends like Ctrl-C: every fixture's
    # teardown still runs, so the servers and PostgreSQL clusters the tests started are stopped
    # rather than left running (SIGTERM's default ends the process at once, teardowns unrun).
    if (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    ):
        signal.signal(signal.SIGTERM, _interrupted)


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_report_header(config: pytest.Config) -> str:
    seed = config.getoption("hypothesis_seed", None)
    return (
        f"hypothesis: profile {PROFILE!r}, seed {seed} (HYPOTHESIS_SEED={seed} repeats this run), "
        f"max_examples={settings().max_examples}"
    )


# 2026-11-24 10:00 in Shanghai (a Tuesday).
T0 = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
# Passes are valid at the test clock (T0) and, for the CLI tests that run a command on the
# machine's clock, at the real date too, whatever it is: no test expires on a calendar day.
PASS_UNTIL = max(T0.date(), date.today()) + timedelta(days=400)

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
    issued = issue(home, store, households=None, now=T0, valid_until=PASS_UNTIL)
    clock = FrozenClock(T0)
    gate = GateService(store, clock=clock)
    yield Community(home, store, clock, gate, {p.household.number: p.code for p in issued})
    store.close()
