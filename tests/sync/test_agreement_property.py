"""One truth about where each household is, on every gate and the server.

Gates with clocks up to ±10 minutes off, scanning, syncing, pulling and carrying USB bundles in any
order, one of them perhaps cloned: after a final sync every gate's state for every household
equals the server's, every event is stored exactly once, and every gate holds every event once.
Named cases run over a real uvicorn on 127.0.0.1 too.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, example, given, seed, settings
from hypothesis import strategies as st

from menwei.core.clock import FrozenClock
from menwei.core.gate import GateService
from menwei.core.home import Home
from menwei.core.store import Store
from menwei.sync.bundle import export_bundle, import_bundle
from tests.sync import helpers
from tests.sync.helpers import (
    COMMUNITY,
    NUMBERS,
    T0,
    Gate,
    World,
    copy_db,
    presence_states,
    world,
)

# The shared order and clone detection are the storage's: on SQLite and on PostgreSQL.
pytestmark = pytest.mark.usefixtures("backend")

SEED = 20261130
GATES = 3

offsets = st.lists(st.integers(-600, 600), min_size=GATES, max_size=GATES)
gate_ix = st.integers(0, GATES)  # GATES: the clone, when there is one
op = st.one_of(
    st.tuples(st.just("scan"), gate_ix, st.sampled_from(NUMBERS[:3])),
    st.tuples(st.just("scan"), gate_ix, st.sampled_from(NUMBERS[:3])),
    st.tuples(st.just("tick"), st.integers(1, 400)),
    st.tuples(st.just("sync"), gate_ix),
    st.tuples(st.just("sync"), gate_ix),
    st.tuples(st.just("bundle"), gate_ix),
    st.tuples(st.just("clone"), st.integers(0, GATES - 1)),
)


def clone_gate(g: Gate, root: Path) -> Gate:
    """A second live copy of a gate's home (a cloned laptop), with the same clock."""
    shutil.copytree(g.home.root, root, ignore=shutil.ignore_patterns("menwei.db*"))
    copy_db(g.home.db_path, root / "menwei.db")
    clock = FrozenClock(g.clock.now())
    return Gate(Home(root), clock, GateService(Store.open(root / "menwei.db"), clock=clock))


def final_sync_and_check(w: World, gates: list[Gate]) -> None:
    for _ in range(2):
        for g in gates:
            g.sync()
    storage = w.server.storage
    ids = storage.event_ids(COMMUNITY)
    assert len(ids) == len(set(ids)), "an event stored twice on the server"
    held = set(ids)
    server_state = presence_states(w.server)
    for g in gates:
        own = g.event_ids()
        remote = [r["event_id"] for r in g.store.query("select event_id from remote_events")]
        assert len(remote) == len(set(remote)) and not own & set(remote), "an event twice"
        assert own | set(remote) == held, f"gate {g.home.root.name} misses events"
        assert g.state() == server_state, g.home.root.name
    assert storage.rejected(COMMUNITY) == []


def run_ops(w: World, tmp: Path, clock_offsets: list[int], ops: list[tuple[Any, ...]]) -> None:
    gates = [
        w.add_gate(name, FrozenClock(T0 + timedelta(seconds=off)))
        for name, off in zip("ABC", clock_offsets, strict=True)
    ]
    for g in gates:
        g.sync()  # first contact measures each clock's offset
    bundles = 0
    for step in ops:
        kind = step[0]
        if kind == "tick":
            for c in {id(g.clock): g.clock for g in gates}.values():
                c.advance(timedelta(seconds=step[1]))
            w.clock.advance(timedelta(seconds=step[1]))
        elif kind == "scan" and step[1] < len(gates):
            decision = gates[step[1]].scan(w.codes[step[2]], step=timedelta(seconds=7))
            assert decision.recorded
        elif kind == "sync" and step[1] < len(gates):
            gates[step[1]].sync()
        elif kind == "bundle" and step[1] < len(gates):
            bundles += 1
            stick = tmp / f"stick-{bundles}.menwei"
            export_bundle(gates[step[1]].home, stick, now=gates[step[1]].clock.now())
            import_bundle(w.server.storage, COMMUNITY, stick, now=w.clock.now())
        elif kind == "clone" and len(gates) == GATES:
            gates.append(clone_gate(gates[step[1]], tmp / "clone"))
            w.gates.append(gates[-1])
            event("a gate was cloned")
    final_sync_and_check(w, gates)
    for kind in sorted(set(w.kinds()) & {"cloned_gate", "seq_reuse"}):
        event(f"the server raised {kind}")


@seed(SEED)
@settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(clock_offsets=offsets, ops=st.lists(op, min_size=8, max_size=28))
# A clone whose copies both write before either syncs, then sync in turn.
@example(
    clock_offsets=[-600, 90, 600],
    ops=[
        ("scan", 0, 1203),
        ("sync", 0),
        ("clone", 0),
        ("scan", 0, 1204),
        ("scan", 3, 2101),
        ("sync", 3),
        ("tick", 30),
        ("scan", 1, 1204),
        ("sync", 0),
        ("bundle", 3),
        ("scan", 2, 1203),
        ("sync", 1),
    ],
)
def test_every_gate_ends_agreeing_with_the_server(
    clock_offsets: list[int], ops: list[tuple[Any, ...]]
) -> None:
    print(f"hypothesis seed {SEED}")
    with tempfile.TemporaryDirectory() as tmp, world(Path(tmp), clock=FrozenClock(T0)) as w:
        run_ops(w, Path(tmp), clock_offsets, ops)


# --- named cases (real uvicorn on 127.0.0.1, through the world helper) -------------------------


def test_the_90_seconds_fast_laptop(tmp_path: Path) -> None:
    with world(tmp_path, clock=FrozenClock(T0)) as w:
        east = w.add_gate("east", FrozenClock(T0 + timedelta(seconds=90)))
        west = w.add_gate("west", FrozenClock(T0))
        east.sync(), west.sync()
        out = east.scan(w.codes[1203], step=timedelta(seconds=60))  # stamped 02:02:30
        east.sync()
        west.sync()
        back = west.scan(w.codes[1203], step=timedelta(seconds=80))  # stamped 02:01:20
        assert (out.direction, back.direction, back.verdict) == ("exit", "entry", "green")
        assert back.at < out.at  # the fast clock stamped the exit after the entry
        for g in (west, east, west):
            g.sync()
        assert presence_states(w.server)[1203] == "in"
        assert east.state()[1203] == west.state()[1203] == "in"
        assert "entry_without_exit" not in w.kinds()
        final_sync_and_check(w, [east, west])


def test_the_fast_laptop_before_its_offset_was_measured(tmp_path: Path) -> None:
    with world(tmp_path, clock=FrozenClock(T0)) as w:
        east = w.add_gate("east", FrozenClock(T0 + timedelta(seconds=90)))
        west = w.add_gate("west", FrozenClock(T0))
        east.scan(w.codes[1204], step=timedelta(seconds=60))
        east.sync(), west.sync()
        west.scan(w.codes[1204], step=timedelta(seconds=80))
        for g in (west, east, west):
            g.sync()
        assert presence_states(w.server)[1204] == east.state()[1204] == west.state()[1204] == "in"
        final_sync_and_check(w, [east, west])


def test_a_cloned_home(tmp_path: Path) -> None:
    with world(tmp_path, clock=FrozenClock(T0)) as w:
        a = w.add_gate("A", FrozenClock(T0))
        a.scan(w.codes[1203])
        a.sync()
        twin = clone_gate(a, tmp_path / "twin")
        w.gates.append(twin)
        mine = [a.scan(w.codes[1204]).event_id, a.scan(w.codes[2101]).event_id]
        theirs = [twin.scan(w.codes[3301]).event_id]
        twin.sync()  # the twin's event 2 reaches the server first
        a.sync()  # a different event 2: the server forks this copy (restored from a copy?)
        assert "cloned_gate" not in w.kinds()
        twin.sync()  # ...but the twin goes on in the epoch the other copy left: a clone
        assert "cloned_gate" in w.kinds()
        rows = w.server.storage.query(
            "select event_id, orphan from events where gate_id = ?", [a.service.gate_id]
        )
        assert set(mine + theirs) <= {r["event_id"] for r in rows}
        a.scan(w.codes[1203]), twin.scan(w.codes[3301])
        final_sync_and_check(w, [a, twin])
        assert a.state()[3301] == twin.state()[3301] == "in"
        assert a.state()[2101] == twin.state()[2101] == "out"
        assert a.service.epoch != twin.service.epoch


def test_an_old_bundle_after_a_new_one_is_a_no_op(tmp_path: Path) -> None:
    with world(tmp_path, clock=FrozenClock(T0)) as w:
        a = w.add_gate("A")
        a.scan(w.codes[1203]), a.scan(w.codes[1204])
        old = tmp_path / "old.menwei"
        export_bundle(a.home, old, now=a.clock.now())
        a.scan(w.codes[2101])
        new = tmp_path / "new.menwei"
        export_bundle(a.home, new, now=a.clock.now())
        storage = w.server.storage
        first = import_bundle(storage, COMMUNITY, new, now=w.clock.now())
        assert (first.inserted, first.duplicates) == (3, 0)
        before = storage.query("select count(*) as n from events")[0]["n"]
        again = import_bundle(storage, COMMUNITY, old, now=w.clock.now())
        assert (again.inserted, again.duplicates, again.anomalies) == (0, 2, 0)
        assert storage.query("select count(*) as n from events")[0]["n"] == before
        assert w.kinds() == []
        result = a.sync()
        assert result.pushed == 0 and not result.forked
        final_sync_and_check(w, [a])


def test_the_sync_summary_counts_what_was_new_to_the_server(tmp_path: Path) -> None:
    from tests.sync.helpers import FaultyTransport

    with world(tmp_path, clock=FrozenClock(T0)) as w:
        a = w.add_gate("A")
        for n in NUMBERS:
            a.scan(w.codes[n])
        # The first answer is lost: the retry finds the batch stored by the first attempt.
        result = a.sync(transport=FaultyTransport({1: "after"}), retries=2, backoff=0)
        assert (result.pushed, result.duplicates) == (5, 0)
        assert a.sync().pushed == 0


def test_a_deleted_wal_after_a_sync_is_reported(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    with world(tmp_path, clock=FrozenClock(T0)) as w:
        a = w.add_gate("A")
        a.store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        for n in NUMBERS:
            a.scan(w.codes[n])
        a.sync()  # the server acknowledges them all: the anchor beside the file says so
        Path(str(a.home.db_path) + "-wal").unlink()
        Path(str(a.home.db_path) + "-shm").unlink(missing_ok=True)
        r = subprocess.run(
            [sys.executable, "-m", "menwei", "log", "verify"],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "MENWEI_HOME": str(a.home.root)},
        )
        assert r.returncode == 1 and "lost tail" in r.stdout and "Traceback" not in r.stderr


def test_the_committee_checks_agreement_without_sqlite3(tmp_path: Path) -> None:
    import json

    from click.testing import CliRunner

    from menwei.cli import cli

    def server_cmd(*args: str) -> Any:
        database = helpers.BACKEND.database(w.home)
        env = {"MENWEI_SERVER_DATABASE": database} if database else None
        r = CliRunner().invoke(cli, ["--home", str(w.home.root), "server", *args], env=env)
        assert r.exit_code == 0, r.output
        return r

    with world(tmp_path, clock=FrozenClock(T0)) as w:
        east = w.add_gate("east", FrozenClock(T0 + timedelta(seconds=90)))
        west = w.add_gate("west", FrozenClock(T0))
        east.sync(), west.sync()
        east.scan(w.codes[1203]), east.scan(w.codes[2101])
        east.sync(), west.sync()
        west.scan(w.codes[1203], step=timedelta(seconds=80))
        final_sync_and_check(w, [east, west])
        out = json.loads(server_cmd("out-now", "--json").output)
        assert [r["household"] for r in out["out"]] == [2101]
        assert out["out"][0]["building"] == "7"
        assert "2101" in server_cmd("out-now").output
        log = json.loads(server_cmd("log", "--household", "1203", "--json").output)
        kinds = [e["kind"] for e in log["events"]]
        assert kinds == ["exit", "entry"]
        keys = [e["okey"] for e in log["events"]]
        assert keys == sorted(keys)
        local = [
            r["okey"]
            for r in west.store.query(
                "select okey from all_events where household = 1203 order by okey"
            )
        ]
        assert local == keys  # the gate and the server put them in the same order
        everything = json.loads(server_cmd("log", "--json").output)
        assert everything["count"] == len(w.server_event_ids())
        anomalies = json.loads(server_cmd("anomalies", "--json").output)
        assert {a["kind"] for a in anomalies["anomalies"]} <= {"clock_suspect"}
        for a in anomalies["anomalies"]:
            assert a["words"]["zh"] == "门岗时钟可疑"
        text = server_cmd("anomalies", "--lang", "en").output
        assert "Traceback" not in text


def test_one_module_names_every_anomaly_and_only_those_emitted() -> None:
    from menwei.core import register
    from menwei.core.reasons import ANOMALY_WORDS
    from menwei.sync import anomalies
    from menwei.sync.protocol import ANOMALY_KINDS

    assert set(ANOMALY_WORDS) == set(ANOMALY_KINDS)
    assert register.anomaly_words("overdue_return") == anomalies.words("overdue_return")
    assert anomalies.words("overdue_return").zh == "超时返回"


def test_the_servers_shared_order_migration_refolds_presence(tmp_path: Path) -> None:
    if helpers.BACKEND.cluster is not None:
        pytest.skip("SQLite's own migration (PostgreSQL's: test_sync_district)")
    from menwei.sync.server.sqlite import SqliteStorage

    with world(tmp_path, clock=FrozenClock(T0)) as w:
        east = w.add_gate("east", FrozenClock(T0 + timedelta(seconds=90)))
        west = w.add_gate("west", FrozenClock(T0))
        east.sync(), west.sync()
        east.scan(w.codes[1203]), east.scan(w.codes[2101])
        east.sync(), west.sync()
        west.scan(w.codes[1203], step=timedelta(seconds=80))
        final_sync_and_check(w, [east, west])
        expected = presence_states(w.server)
        keys = {
            r["event_id"]: r["okey"]
            for r in w.server.storage.query("select event_id, okey from events")
        }
        path = w.home.server_dir / "server.db"
    # The server's database as before the migration: no order keys, presence by wall time.
    raw = sqlite3.connect(path)
    raw.executescript(
        """
        drop index events_household_order;
        alter table events drop column okey;
        alter table presence drop column okey;
        update presence set state = 'out' where household = 1203;
        delete from _sqlite_migrations where name = 'm110_shared_order';
        """
    )
    raw.close()
    storage = SqliteStorage(path)
    try:
        assert presence_states(storage) == expected == {1203: "in", 2101: "out"}
        again = {
            r["event_id"]: r["okey"] for r in storage.query("select event_id, okey from events")
        }
        assert again == keys
    finally:
        storage.close()
