"""Gates and the community server over real HTTP on 127.0.0.1: offline periods, anomalies,
reference data, the status bar."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from menwei.core.clock import FrozenClock, iso
from menwei.core.community import adopt_policy
from menwei.core.gate import GateService
from menwei.core.home import Home
from menwei.core.issuing import issue, revoke
from menwei.core.store import Store
from menwei.sync.client import SyncOffline
from menwei.sync.enrollment import enroll
from menwei.sync.status import sync_status
from tests.sync.helpers import COMMUNITY, T0, FaultyTransport, Gate, World, presence_states

pytestmark = pytest.mark.usefixtures("backend")

WINDOWED = """\
timezone = "Asia/Shanghai"
override_reasons = ["medical", "emergency", "work", "other"]
max_time_out = "2h"

[[windows]]
groups = ["3"]
start = "08:00"
end = "09:00"
"""


def let_in(gate: Gate, code: str) -> list[str]:
    """An entry at a gate that does not know the household went out: refused, then overridden."""
    refused = gate.scan(code, direction="entry")
    assert refused.reason == "already_in"
    assert refused.event_id is not None
    done = gate.service.override(
        refused.event_id, reason="other", note="out via the other gate", operator="t"
    )
    assert done.recorded and done.event_id is not None
    return [refused.event_id, done.event_id]


def agree(w: World) -> dict[int, str]:
    """Every gate and the server hold the same state for every household they know."""
    server = presence_states(w.server)
    for g in w.gates:
        assert g.state() == server, g.service.gate_id
    return server


def set_policy(w: World, text: str) -> None:
    """The IT person edits policy.toml in the committee home (adopted at the test's time)."""
    w.home.policy_path.write_text(text, encoding="utf-8")
    store = Store.open(w.home.db_path)
    try:
        adopt_policy(store, text, origin="file", now=iso(w.clock.now()))
    finally:
        store.close()


@pytest.mark.parametrize("first", ["exit gate", "entry gate"])
def test_out_at_one_gate_in_at_the_other_while_both_offline(w: World, first: str) -> None:
    a, b = w.add_gate("A"), w.add_gate("B")
    out = a.scan(w.codes[1203])
    assert out.reason == "ok" and out.direction == "exit"
    back = let_in(b, w.codes[1203])
    for g in [a, b] if first == "exit gate" else [b, a]:
        g.sync()
    for g in (a, b):
        g.sync()
    assert sorted(w.server_event_ids()) == sorted(a.event_ids() | b.event_ids())
    assert len(w.server_event_ids()) == 3
    assert agree(w) == {1203: "in"}
    assert w.anomalies() == set()
    if first == "entry gate":
        # Seen alone, the entry had no exit before it; the late exit explains it: withdrawn.
        assert w.anomalies(withdrawn=True) == {("entry_without_exit", (back[1],))}
    for g in (a, b):
        assert g.store.one("select count(*) as n from anomalies where status = 'open'") == {"n": 0}


def test_double_exit_at_two_gates_is_kept_as_an_anomaly(w: World) -> None:
    a, b = w.add_gate("A"), w.add_gate("B")
    first = a.scan(w.codes[1204])
    second = b.scan(w.codes[1204])  # a photocopy of the pass, at the other gate
    assert first.direction == second.direction == "exit"
    a.sync(), b.sync(), a.sync()
    assert w.anomalies() == {("double_exit", (first.event_id, second.event_id))}
    assert agree(w) == {1204: "out"}
    for g in (a, b):
        rows = g.store.query("select kind, event_ids from anomalies where status = 'open'")
        assert [r["kind"] for r in rows] == ["double_exit"]


def test_an_undone_exit_counts_nowhere(w: World) -> None:
    a, b = w.add_gate("A"), w.add_gate("B")
    mistaken = a.scan(w.codes[1204])
    w.clock.advance(timedelta(seconds=30))
    a.service.annul_last(operator="t")
    b.sync()
    real = b.scan(w.codes[1204])  # B lets it out for real, before hearing of A's scan
    a.sync(), b.sync(), a.sync()
    assert w.anomalies() == set(), "an annulled exit makes no double exit"
    assert agree(w) == {1204: "out"}
    assert w.server.storage.presence(COMMUNITY)[1204].event_id == real.event_id
    assert mistaken.event_id in w.server_event_ids()


def test_three_gates_with_overlapping_offline_periods(w: World) -> None:
    a, b, c = w.add_gate("A"), w.add_gate("B"), w.add_gate("C")
    a.scan(w.codes[1203])  # out at A
    c.scan(w.codes[2101])  # out at C
    a.sync()
    let_in(b, w.codes[1203])  # in at B, which has not heard of A's exit
    c.scan(w.codes[2101])  # back at C
    b.scan(w.codes[3301])
    c.sync(), b.sync()
    a.scan(w.codes[3301], direction="entry")  # A knows 3301 is out (synced after B)? not yet
    for _ in range(2):
        for g in (a, b, c):
            g.sync()
    events = w.server_event_ids()
    assert len(events) == len(set(events))
    assert set(events) == a.event_ids() | b.event_ids() | c.event_ids()
    assert agree(w) == {1203: "in", 2101: "in", 3301: "out"}
    assert w.anomalies() == set()


def test_a_revoked_pass_used_at_a_gate_that_did_not_know(w: World) -> None:
    a, b = w.add_gate("A"), w.add_gate("B")
    store = Store.open(w.home.db_path)
    try:
        revoke(w.home, store, 2101, reason="lost", now=w.clock.now())
    finally:
        store.close()
    b.sync()  # B learns the revocation; A stays offline
    old = w.codes[2101]
    used = a.scan(old)
    refused = b.scan(old)
    assert used.reason == "ok"
    assert refused.reason == "revoked"
    a.sync(), b.sync()
    assert w.anomalies() == {
        ("revoked_pass_used", (used.event_id,)),
        ("revoked_pass_used", (refused.event_id,)),
    }
    a.sync()
    assert a.store.one("select min_serial from revocations where household = 2101") == {
        "min_serial": 2
    }
    assert a.service.decide(old, operator="t").reason == "revoked"


def test_exits_outside_the_window_and_a_late_return(w: World) -> None:
    a, b = w.add_gate("A"), w.add_gate("B")
    set_policy(w, WINDOWED)
    a.sync()  # A has the windows; B is offline with the permissive policy
    refused = a.scan(w.codes[1203])
    assert refused.reason == "outside_window"
    assert refused.event_id is not None
    medical = a.service.override(refused.event_id, reason="medical", operator="t")
    lax = b.scan(w.codes[1204])  # B lets it out: its policy has no windows
    assert lax.reason == "ok"
    w.clock.advance(timedelta(hours=3))
    late = a.scan(w.codes[1203])
    assert late.reason == "overdue"
    a.sync(), b.sync()
    assert w.anomalies() == {
        ("exit_outside_window", (medical.event_id,)),
        ("exit_outside_window", (lax.event_id,)),
        ("overdue_return", (late.event_id,)),
    }
    b.sync()
    assert b.service.policy.windows, "B took the new policy"


def test_a_gate_clock_off_by_hours_is_flagged(w: World) -> None:
    skewed = FrozenClock(T0 + timedelta(hours=3))
    a = w.add_gate("A", clock=skewed)
    a.scan(w.codes[1203])
    result = a.sync()
    offset = -round((skewed.now() - w.clock.now()).total_seconds() * 1000)
    assert offset < -3 * 3600 * 1000
    assert result.clock_offset_ms == offset
    assert result.clock_warning and result.warnings
    assert w.kinds() == ["clock_suspect"]
    status = sync_status(a.store)
    assert status.clock_warning
    assert "时钟" in status.text.zh and "clock" in status.text.en
    # Events recorded from now on carry the measured offset.
    a.scan(w.codes[1203])
    row = a.store.one("select clock_offset_ms from events order by seq desc limit 1")
    assert row == {"clock_offset_ms": offset}


def test_events_recorded_before_enrollment_are_pushed_under_the_gate_id(
    w: World, tmp_path: Path
) -> None:
    # A laptop prepared from the committee's database, used before the server existed.
    root = tmp_path / "early"
    root.mkdir()
    shutil.copyfile(w.home.db_path, root / "menwei.db")
    early = GateService(Store.open(root / "menwei.db"), clock=w.clock)
    w.clock.advance(timedelta(minutes=1))
    before = early.decide(w.codes[1203], operator="t")
    assert early.gate_id == "gate-1"
    early.store.close()
    home = Home(root)
    enroll(home, w.server.url, w.server.token("early"), clock=w.clock)
    g = Gate(home, w.clock, GateService(Store.open(home.db_path), clock=w.clock))
    w.gates.append(g)
    assert (g.service.gate_id, g.service.epoch) == ("c4201-g1", 1)
    assert g.state() == {1203: "out"}, "its own events still count after the snapshot"
    after = g.scan(w.codes[1203])
    g.sync()
    rows = {
        r["event_id"]: (r["gate_id"], r["seq"], r["body"])
        for r in w.server.storage.query("select event_id, gate_id, seq, body from events")
    }
    assert rows[before.event_id][:2] == ("c4201-g1", 1)
    assert '"gate_id":"gate-1"' in rows[before.event_id][2], "the body is never rewritten"
    assert rows[after.event_id][:2] == ("c4201-g1", 2)
    other = w.add_gate("other")
    remote = other.store.query("select event_id, gate_id from remote_events order by gseq")
    assert [r["gate_id"] for r in remote] == ["c4201-g1", "c4201-g1"]
    assert agree(w) == {1203: "in"}


def test_reference_deltas_tombstones_and_a_snapshot_when_too_far_behind(w: World) -> None:
    a, b = w.add_gate("A"), w.add_gate("B")
    store = Store.open(w.home.db_path)
    try:
        with store.write() as db:
            db.execute(
                "insert into households (household, building, unit, room, building_group,"
                " members, category, updated_at) values (4401, '20', '1', '101', '9', 2,"
                " 'normal', '2026-11-24T00:00:00.000Z')"
            )
            db.execute("delete from households where household = 3301")
        [new] = issue(w.home, store, households=[4401], now=w.clock.now())
    finally:
        store.close()
    result = a.sync()
    assert result.reference_changed and not result.snapshot
    assert a.service.household(4401) is not None and a.service.household(3301) is None
    assert a.scan(new.code).reason == "ok"
    # The server drops its tombstones: B, still at the old version, needs the whole picture.
    w.server.storage.prune_tombstones(COMMUNITY)
    result = b.sync()
    assert result.snapshot
    assert b.service.household(4401) is not None and b.service.household(3301) is None
    a.sync(), b.sync()
    assert agree(w) == {4401: "out"}


def test_a_gate_far_behind_takes_a_snapshot(w: World) -> None:
    a, b = w.add_gate("A"), w.add_gate("B")
    for number in (1203, 1204, 2101, 1203):
        a.scan(w.codes[number])
    a.sync()
    b.scan(w.codes[3301])
    result = b.sync(snapshot_lag=3)
    assert result.snapshot and result.pushed == 1
    a.sync()
    assert agree(w) == {1203: "in", 1204: "out", 2101: "out", 3301: "out"}
    assert b.store.one("select count(*) as n from remote_events") == {"n": 4}


def test_the_status_bar(w: World) -> None:
    a = w.add_gate("A")
    status = sync_status(a.store, now=w.clock.now())
    assert status.state == "ok" and status.events_waiting == 0
    a.scan(w.codes[1203]), a.scan(w.codes[1204])
    assert sync_status(a.store).events_waiting == 2
    offline = FaultyTransport()
    offline.offline = True
    with pytest.raises(SyncOffline):
        a.sync(transport=offline, retries=0)
    status = sync_status(a.store, now=w.clock.now())
    assert status.state == "offline" and status.events_waiting == 2
    assert status.text.zh.startswith("离线") and status.text.en.startswith("offline")
    assert status.last_error and "cannot be reached" in status.last_error
    a.sync()
    status = sync_status(a.store)
    assert status.state == "ok" and status.events_waiting == 0 and status.last_error is None


def test_not_enrolled_status(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "menwei.db", create=True)
    status = sync_status(store)
    assert status.state == "not_enrolled" and not status.enrolled
    assert status.text.en == "not enrolled with a server"
    store.close()
