"""Nothing lost, nothing twice: dropped connections, replays, a server killed mid-batch, a gate
restored from an old copy of its database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import cycle
from pathlib import Path

import pytest

from menwei.core.clock import FrozenClock
from menwei.sync.bundle import export_bundle, import_bundle
from menwei.sync.client import SyncClient, SyncOffline, build_batch
from menwei.sync.credentials import Credentials
from tests.sync import helpers
from tests.sync.helpers import (
    COMMUNITY,
    NUMBERS,
    FaultyTransport,
    Gate,
    ServerProcess,
    ThreadedServer,
    World,
    copy_db,
    free_port,
    make_committee,
    make_gate,
    presence_states,
    replay,
    restore_db,
)

pytestmark = pytest.mark.usefixtures("backend")


def scan_many(
    gate: Gate, codes: dict[int, str], n: int, step: timedelta = timedelta(seconds=20)
) -> None:
    for number, _ in zip(cycle(NUMBERS), range(n), strict=False):
        assert gate.scan(codes[number], step=step).recorded


def sync_until_done(gate: Gate, transport: FaultyTransport, tries: int = 20, **kw: object) -> int:
    """Sync again after every fault, as the background worker and cron do; the failures."""
    failures = 0
    for _ in range(tries):
        try:
            gate.sync(transport=transport, retries=0, **kw)  # type: ignore[arg-type]
            return failures
        except SyncOffline:
            failures += 1
    raise AssertionError("sync never succeeded")


def assert_exactly_once(w: World) -> None:
    ids = w.server_event_ids()
    assert len(ids) == len(set(ids))
    held = set().union(*(g.event_ids() for g in w.gates))
    assert set(ids) == held


def test_connections_dropped_before_and_after_the_server_commits(w: World) -> None:
    a, b = w.add_gate("A"), w.add_gate("B")
    scan_many(a, w.codes, 240)
    faults = FaultyTransport({1: "before", 2: "after", 4: "after", 5: "before", 7: "duplicate"})
    failures = sync_until_done(a, faults, batch_size=40)
    assert failures == 4
    assert faults.pushes > 6
    b.sync()
    assert_exactly_once(w)
    assert len(w.server_event_ids()) == 240
    assert w.anomalies() == set()
    assert a.state() == b.state() == presence_states(w.server)


def test_duplicated_and_reordered_batches(w: World) -> None:
    a = w.add_gate("A")
    scan_many(a, w.codes, 100)
    creds = Credentials.load(a.home)
    with SyncClient(w.server.url, api_token=creds.api_token, clock=w.clock) as client:
        first = build_batch(a.store, after=0, limit=40, epoch=1, offset_ms=0)
        second = build_batch(a.store, after=40, limit=40, epoch=1, offset_ms=0)
        early = client.push(second)  # overtook the first one: not taken, start again from 0
        assert (early.inserted, early.ignored, early.acked_through_seq) == (0, 40, 0)
        assert client.push(first).acked_through_seq == 40
        assert client.push(first).duplicates == 40
        r = client.push(second)
        assert (r.inserted, r.acked_through_seq) == (40, 80)
    capture = FaultyTransport()
    a.sync(transport=capture, batch_size=15)
    # From 0 (it never heard the answers above): the first answer moves it on to 80.
    assert len(capture.delivered) == 3
    for request in reversed(capture.delivered * 2):
        answer = replay(w.server.url, request).json()
        assert answer["inserted"] == 0 and answer["acked_through_seq"] == 100
    assert_exactly_once(w)
    assert len(w.server_event_ids()) == 100
    assert w.anomalies() == set()


@pytest.mark.parametrize("die_after", [150, 450])
def test_the_server_killed_mid_batch_and_restarted(tmp_path: Path, die_after: int) -> None:
    home, codes = make_committee(tmp_path / "committee")
    port = free_port()
    # Near real time: the server in its own process keeps the real clock.
    clock = FrozenClock(datetime.now(UTC))
    server = ServerProcess(home, port)
    try:
        storage = helpers.BACKEND.open(home)
        token = storage.add_gate(4201, "A", now=datetime.now(UTC)).token
        storage.close()
        a = make_gate(tmp_path / "a", f"http://127.0.0.1:{port}", token, clock)
    finally:
        server.kill()
    scan_many(a, codes, 600, step=timedelta(milliseconds=5))
    dying = ServerProcess(home, port, die_after=die_after)
    try:
        with pytest.raises(SyncOffline):
            a.sync(retries=0, batch_size=300)
    finally:
        dying.kill()  # dead already when the test goes right; stopped here when it does not
    assert dying.proc.returncode == 9, "the server died in the middle of a batch"
    server = ServerProcess(home, port)
    try:
        result = a.sync(batch_size=300)
        assert result.acked_through_seq == 600 and result.waiting == 0
    finally:
        server.kill()
    storage = helpers.BACKEND.open(home)
    try:
        ids = storage.event_ids(4201)
        assert len(ids) == len(set(ids)) == 600
        assert set(ids) == a.event_ids()
        assert storage.list_anomalies(4201) == []
        assert presence_states(storage) == a.state()
        gseqs = [r["gseq"] for r in storage.query("select gseq from events order by gseq")]
        assert gseqs == list(range(1, 601)), "gseq has no gap: a rolled-back batch leaves none"
    finally:
        storage.close()
    a.close()


@pytest.mark.parametrize("writes_after_restore", [True, False])
def test_a_gate_restored_from_an_old_copy(
    w: World, tmp_path: Path, writes_after_restore: bool
) -> None:
    a, b = w.add_gate("A"), w.add_gate("B")
    a.scan(w.codes[1203]), a.scan(w.codes[1204])
    a.sync()
    copy = tmp_path / "backup.db"
    copy_db(a.home.db_path, copy)
    lost = a.scan(w.codes[1203])  # in again; only the server will remember it
    a.sync()
    a.close()
    restore_db(copy, a.home.db_path)
    a.reopen()
    assert a.state() == {1203: "out", 1204: "out"}
    new = a.scan(w.codes[2101]).event_id if writes_after_restore else None
    with pytest.raises(SyncOffline):
        # The answer that opens the new epoch is lost: the retry must not open another.
        a.sync(transport=FaultyTransport({1: "after"}), retries=0)
    result = a.sync()
    assert result.epoch == 2 and a.service.epoch == 2
    b.sync()
    a.sync()
    ids = w.server_event_ids()
    assert len(ids) == len(set(ids)) == (4 if writes_after_restore else 3)
    assert lost.event_id in ids and (new is None or new in ids)
    assert w.kinds() == ["seq_reuse"]
    expected = {1203: "in", 1204: "out"} | ({2101: "out"} if writes_after_restore else {})
    assert a.state() == b.state() == presence_states(w.server) == expected
    remote = {r["event_id"] for r in a.store.query("select event_id from remote_events")}
    assert lost.event_id in remote, "the restored gate got back the event it lost"
    after = a.scan(w.codes[1204])
    a.sync(), b.sync()
    assert w.kinds() == ["seq_reuse"]
    assert after.event_id in w.server_event_ids()
    assert a.state() == b.state() == presence_states(w.server)


def test_a_replaced_laptops_usb_bundle_after_re_enrollment(w: World, tmp_path: Path) -> None:
    old = w.add_gate("A")
    old.scan(w.codes[1203]), old.scan(w.codes[1203])
    old.sync()
    out = old.scan(w.codes[1204])  # never synced: only on the stick
    stick = tmp_path / "a.menwei"
    export_bundle(old.home, stick, now=w.clock.now())
    old.close()
    w.gates.remove(old)
    # The laptop breaks; a new one is enrolled as the same gate, then the stick is imported.
    new = make_gate(tmp_path / "new", w.server.url, w.server.token("A"), w.clock)
    w.gates.append(new)
    assert (new.service.gate_id, new.service.epoch) == ("c4201-g1", 2)
    fresh = new.scan(w.codes[2101])
    new.sync()
    result = import_bundle(w.server.storage, COMMUNITY, stick, now=w.clock.now())
    assert (result.inserted, result.duplicates, result.rejected) == (1, 0, [])
    b = w.add_gate("B")
    new.sync()
    ids = w.server_event_ids()
    assert len(ids) == len(set(ids)) == 4 and {out.event_id, fresh.event_id} <= set(ids)
    assert new.state() == b.state() == presence_states(w.server)
    assert presence_states(w.server) == {1203: "in", 1204: "out", 2101: "out"}
    assert w.anomalies() == set()


def test_the_server_restored_from_last_nights_backup(w: World, tmp_path: Path) -> None:
    a, b = w.add_gate("A"), w.add_gate("B")
    a.scan(w.codes[1203]), b.scan(w.codes[2101])
    a.sync(), b.sync()
    backup = tmp_path / "server-backup.db"
    helpers.BACKEND.backup(w.home, backup)
    a.scan(w.codes[1203]), b.scan(w.codes[2101]), a.scan(w.codes[1204])
    a.sync(), b.sync(), a.sync()
    # The server's disk dies; last night's copy comes back on the same address.
    port = w.server.port
    w.server.stop()
    helpers.BACKEND.restore(w.home, backup)
    w.server = ThreadedServer(w.home, clock=w.clock, port=port).start()
    assert len(w.server_event_ids()) == 2
    a.sync()  # sends again what the server lost: the server's head is back where it was
    assert b.sync().snapshot, "B's cursor now points at another event: it starts over"
    a.sync()
    remote = {r["event_id"] for r in b.store.query("select event_id from remote_events")}
    assert remote == a.event_ids()
    assert_exactly_once(w)
    assert len(w.server_event_ids()) == 5
    assert a.state() == b.state() == presence_states(w.server)
    assert presence_states(w.server) == {1203: "in", 1204: "out", 2101: "in"}
    assert w.anomalies() == set()
