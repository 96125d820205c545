"""Random interleavings of scans, syncs, faults, replays, restores, clones and skewed clocks.

Whatever happens, after everyone syncs: the server holds each event once; it lost only what a
gate's disk lost before the server saw it (never anything it acknowledged); every gate and the
server agree where each household is; and the server's sequence anomalies are exactly those a
fold over the whole log finds.

The examples come from the profile in tests/conftest.py (`ci`: a fixed seed; `explore`: more,
random). `REACHED` counts the situations the examples got into; the last test checks that the
run reached forks, replays after forks, clones and skewed clocks (gaps: the ingest tests).
"""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from menwei.core.clock import FrozenClock
from menwei.core.errors import GateError
from menwei.core.gate import GateService
from menwei.core.home import Home
from menwei.core.store import Store
from menwei.sync.anomalies import SEQUENCE_KINDS, Trip, expected_sequence_anomalies
from menwei.sync.client import SyncError
from tests.sync.helpers import (
    COMMUNITY,
    NUMBERS,
    T0,
    FaultyTransport,
    Gate,
    World,
    copy_db,
    presence_states,
    replay,
    restore_db,
    world,
)

pytestmark = pytest.mark.usefixtures("backend")

GATES = 3
MAX_CLONES = 2
gate_ix = st.integers(0, GATES + MAX_CLONES - 1)  # taken modulo the gates there are
scan = st.tuples(
    st.just("scan"),
    gate_ix,
    st.sampled_from(NUMBERS[:3]),
    st.sampled_from(["auto", "auto", "auto", "exit", "entry"]),
)
op = st.one_of(
    scan,
    scan,
    scan,
    st.tuples(
        st.just("sync"),
        gate_ix,
        st.sampled_from(["ok", "ok", "before", "after", "duplicate", "offline"]),
    ),
    st.tuples(st.just("override"), gate_ix),
    st.tuples(st.just("undo"), gate_ix),
    st.tuples(st.just("backup"), gate_ix),
    st.tuples(st.just("restore"), gate_ix),
    st.tuples(st.just("replay"), st.integers(0, 1000)),
    st.tuples(st.just("clone"), gate_ix),
    st.tuples(st.just("skew"), gate_ix, st.sampled_from([-180, -3, 4, 300])),
)
REACHED: Counter[str] = Counter()


class GateClock(FrozenClock):
    """A gate's clock: the shared test time plus this gate's own error (minutes, either way)."""

    def __init__(self, base: FrozenClock) -> None:
        super().__init__(base.now())
        self.base = base
        self.offset = timedelta()

    def now(self) -> Any:
        return self.base.now() + self.offset

    def monotonic_ns(self) -> int:
        return self.base.monotonic_ns()

    def advance(self, delta: timedelta) -> None:
        self.base.advance(delta)


def _clone(w: World, original: Gate, n: int) -> Gate:
    """A copy of a gate's disk put to work on a second machine, with the same credentials."""
    root = w.root / f"clone-{n}"
    original.close()
    shutil.copytree(original.home.root, root)
    original.reopen()
    clock = GateClock(w.clock)
    home = Home(root)
    clone = Gate(home, clock, GateService(Store.open(home.db_path), clock=clock))
    w.gates.append(clone)
    return clone


def _forks(w: World) -> int:
    rows = w.server.storage.query("select count(*) as n from streams where reason = 'restored'")
    return int(rows[0]["n"])


def _acked_ids(gate: Gate) -> set[str]:
    row = gate.store.one("select value from sync_state where key = 'acked_through_seq'")
    acked = int(row["value"]) if row else 0
    return {
        r["event_id"]
        for r in gate.store.query("select event_id from events where seq <= ?", [acked])
    }


@settings(max_examples=max(60, settings().max_examples // 2))
@given(ops=st.lists(op, min_size=10, max_size=30))
# Found by random runs: a gate restored from a copy older than its current epoch writes new
# events under that old epoch, and an old request is replayed after it.
@example(
    ops=[
        ("scan", 0, 1203, "auto"),
        ("scan", 0, 1203, "auto"),
        ("scan", 0, 1203, "auto"),
        ("sync", 0, "ok"),
        ("scan", 0, 1203, "auto"),
        ("override", 0),
        ("sync", 0, "ok"),
        ("restore", 0),
        ("scan", 0, 1203, "auto"),
        ("replay", 0),
    ]
)
@example(
    ops=[
        ("sync", 0, "ok"),
        ("scan", 0, 1203, "auto"),
        ("sync", 0, "ok"),
        ("scan", 0, 1203, "auto"),
        ("sync", 0, "ok"),
        ("backup", 0),
        ("scan", 0, 1203, "auto"),
        ("sync", 0, "ok"),
        ("restore", 0),
        ("scan", 0, 1203, "auto"),
        ("sync", 0, "ok"),
        ("restore", 0),
        ("scan", 0, 1203, "auto"),
        ("scan", 0, 1203, "auto"),
        ("sync", 0, "ok"),
    ]
)
# A request delivered before a fork, replayed after it (the fork happens mid-run).
@example(
    ops=[
        ("scan", 0, 1203, "auto"),
        ("sync", 0, "ok"),
        ("restore", 0),
        ("scan", 0, 1204, "auto"),
        ("sync", 0, "ok"),
        ("replay", 0),
        ("scan", 0, 1204, "auto"),
        ("replay", 1),
    ]
)
# Found by the ci profile once clones were drawn (minimal cases; see the clone test below).
@example(ops=[("clone", 1), ("scan", 3, 1203, "auto")])
@example(
    ops=[
        ("scan", 0, 1203, "auto"),
        ("sync", 0, "ok"),
        ("clone", 3),
        ("scan", 4, 1204, "auto"),
        ("undo", 3),
    ]
)
def test_nothing_lost_nothing_twice_everyone_agrees(ops: list[tuple[Any, ...]]) -> None:
    with tempfile.TemporaryDirectory() as tmp, world(Path(tmp), clock=FrozenClock(T0)) as w:
        gates = [w.add_gate(name, clock=GateClock(w.clock)) for name in ("A", "B", "C")]
        created: set[str] = set()
        dropped: set[str] = set()  # lost with a disk before the server saw them
        acked_before_restore: set[str] = set()
        backups: dict[int, Path] = {}

        def backup(i: int) -> None:
            backups[i] = Path(tmp) / f"backup-{i}.db"
            copy_db(gates[i].home.db_path, backups[i])

        for i in range(GATES):
            backup(i)
        delivered: list[httpx.Request] = []
        skewed = False
        for step in ops:
            kind = step[0]
            i = step[1] % len(gates) if kind != "replay" else 0
            if kind == "scan":
                _, _, number, direction = step
                decision = gates[i].scan(w.codes[number], direction=direction)
                assert decision.recorded
                created.add(decision.event_id)
            elif kind == "override":
                # The volunteer lets through a household the gate believes is already out/in.
                g = gates[i]
                last = g.store.one("select * from events order by seq desc limit 1")
                if (
                    last
                    and last["kind"] == "deny"
                    and last["reason"] in ("already_in", "already_out")
                ):
                    done = g.service.override(
                        last["event_id"], reason="other", note="t", operator="t"
                    )
                    assert done.event_id is not None
                    created.add(done.event_id)
            elif kind == "undo":
                try:
                    done = gates[i].service.annul_last(operator="t")
                except GateError:
                    pass  # nothing to undo, or too late
                else:
                    assert done.event_id is not None
                    created.add(done.event_id)
            elif kind == "sync":
                fault = step[2]
                transport = FaultyTransport({1: fault} if fault != "offline" else {})
                transport.offline = fault == "offline"
                try:
                    gates[i].sync(transport=transport, retries=0, batch_size=3)
                except SyncError:
                    assert fault in ("before", "after", "offline")
                delivered += transport.delivered
            elif kind == "backup":
                backup(i)
            elif kind == "restore":
                acked_before_restore |= _acked_ids(gates[i])
                before = gates[i].event_ids()
                gates[i].close()
                restore_db(backups[i], gates[i].home.db_path)
                gates[i].reopen()
                dropped |= before - gates[i].event_ids()
            elif kind == "replay" and delivered:
                forks = _forks(w)
                answer = replay(w.server.url, delivered[step[1] % len(delivered)])
                assert answer.status_code == 200, answer.text
                if forks:
                    REACHED["replay after a fork"] += 1
                if answer.json()["ignored"]:
                    REACHED["gap (a batch past the high-water mark)"] += 1
            elif kind == "clone" and len(gates) < GATES + MAX_CLONES:
                gates.append(_clone(w, gates[i], len(gates)))
                backup(len(gates) - 1)
                REACHED["clone"] += 1
            elif kind == "skew":
                clock = gates[i].clock
                assert isinstance(clock, GateClock)
                clock.offset += timedelta(minutes=step[2])
                skewed = skewed or abs(clock.offset) > timedelta(minutes=2)
                REACHED["skewed clock"] += 1

        for _ in range(2):
            for g in gates:
                g.sync()
        # A gate and its clone may fork each other's identity in the last round: the others
        # sync once more to hear of it (the anomalies it raised) before the checks.
        cloned = {g.service.gate_id for g in gates[GATES:]}
        for g in gates:
            if g.service.gate_id not in cloned:
                g.sync()
        storage = w.server.storage
        ids = storage.event_ids(COMMUNITY)
        held = set(ids)
        assert len(ids) == len(held), "an event stored twice"
        gseqs = [r["gseq"] for r in storage.query("select gseq from events order by gseq")]
        assert gseqs == list(range(1, len(gseqs) + 1))
        assert held <= created
        assert created - held <= dropped, "an event lost that no disk lost"
        assert acked_before_restore <= held, "an acknowledged event lost"
        for g in gates:
            assert g.event_ids() <= held
        server_state = presence_states(w.server)
        for g in gates:
            # Clones included: a copy that went on under a forked identity is forked too
            # (`cloned_gate`) and every copy pulls every other copy's events.
            assert g.state() == server_state, g.service.gate_id
        trips: dict[int, list[Trip]] = {}
        for r in storage.query(
            "select event_id, wall_time, kind, direction, gate_id, household, okey from events e"
            " where kind in ('exit', 'entry', 'override', 'register') and not exists"
            " (select 1 from events a where a.kind = 'annul' and a.ref = e.event_id)"
        ):
            trips.setdefault(int(r["household"]), []).append(
                Trip(
                    r["event_id"],
                    r["wall_time"],
                    r["kind"],
                    r["direction"],
                    r["gate_id"],
                    r["okey"],
                )
            )
        expected = expected_sequence_anomalies(trips)
        found = {a for a in w.anomalies() if a[0] in SEQUENCE_KINDS}
        assert found == expected
        clock_kinds = {"clock_suspect"} if skewed else set()
        assert {a[0] for a in w.anomalies()} <= {
            *SEQUENCE_KINDS,
            "seq_reuse",
            "cloned_gate",
            *clock_kinds,
        }
        assert storage.rejected(COMMUNITY) == []
        # Every gate holds the server's view of the anomalies (a copy that was forked in the last
        # round may not have heard of its own fork yet).
        for g in gates:
            local = {
                (r["kind"], r["status"])
                for r in g.store.query("select kind, status from anomalies")
            }
            server_view = {
                (a.kind, a.status)
                for a in storage.list_anomalies(COMMUNITY, include_withdrawn=True)
            }
            if local != server_view:
                assert g.service.gate_id in cloned, (g.service.gate_id, local)
        forks = _forks(w)
        if forks:
            REACHED["fork"] += 1
        event(f"forks: {min(forks, 3)}")


def test_the_examples_reached_every_situation(request: pytest.FixtureRequest) -> None:
    """The run above got into each situation at least once (checked when it ran in full)."""
    if not REACHED:
        pytest.skip("the property test did not run in this session")
    # Gaps (a batch past the server's high-water mark) need a server that lost events; they
    # are reached by the ingest tests (tests/sync/test_sync_ingest.py), counted here when seen.
    wanted = {"fork", "replay after a fork", "clone", "skewed clock"}
    assert wanted <= set(REACHED), f"not reached: {wanted - set(REACHED)} ({dict(REACHED)})"


def test_a_clone_and_its_original_agree(w: World) -> None:
    """Found by the property test (minimal case): a gate's disk is copied to a second machine."""
    a = w.add_gate("A", clock=GateClock(w.clock))
    a.scan(w.codes[1203])
    a.sync()
    clone = _clone(w, a, 3)
    a.scan(w.codes[1204])
    assert clone.service.annul_last(operator="t").household_number == 1203
    for _ in range(2):
        for g in (a, clone):
            g.sync()
    assert "cloned_gate" in w.kinds()
    assert a.state() == clone.state() == presence_states(w.server)
