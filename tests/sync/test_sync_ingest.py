"""The server's ingest, batch by batch, on a real SQLite storage (no HTTP: fast and exact).

Each case builds a gate's log by hand (real hashes, real bodies) and asserts what the storage
holds afterwards: the events, the stream's high-water mark, the epoch, the rejections and the
anomalies. Restores and forks are logs that share a prefix and then differ.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from menwei.core.eventlog import GENESIS, canonical, chain_hash
from menwei.sync.protocol import EnrollRequest, PushBatch, PushResult, WireEvent
from menwei.sync.server.sqlite import SqliteStorage
from menwei.sync.server.storage import StorageError


class _Result:
    """Rows of a read through the storage's own query, as tuples (the shape of a cursor)."""

    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self.rows = rows

    def fetchone(self) -> tuple[Any, ...]:
        assert self.rows, "no row"
        return self.rows[0]

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter(self.rows)


def _execute(storage: Any, sql: str, params: list[Any] | tuple[Any, ...] = ()) -> _Result:
    return _Result([tuple(r.values()) for r in storage.query(sql, list(params))])


NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
COMMUNITY = 4201


@dataclass
class Log:
    """A gate's log: contiguous events linked by hashes. `copy()` is a backup of it."""

    gate_id: str
    epoch: int = 1
    events: list[WireEvent] = field(default_factory=list)
    minute: int = 0

    def add(self, kind: str = "exit", household: int | None = 1203, **fields: Any) -> WireEvent:
        self.minute += 1
        seq = len(self.events) + 1
        body: dict[str, Any] = {
            "event_id": str(uuid.uuid4()),
            "seq": seq,
            "kind": kind,
            "wall_time": f"2026-11-24T02:{self.minute:02d}:00.000Z",
            "reason": "ok",
            "operator": "t",
            "gate_id": self.gate_id,
            "epoch": self.epoch,
            "direction": kind if kind in ("exit", "entry") else None,
            "household": household,
            "headcount": 1,
        }
        body.update(fields)
        return self.raw(canonical(body))

    def raw(self, text: str) -> WireEvent:
        prev = self.events[-1].hash if self.events else GENESIS
        ev = WireEvent(
            seq=len(self.events) + 1, prev_hash=prev, hash=chain_hash(prev, text), body=text
        )
        self.events.append(ev)
        return ev

    def copy(self) -> Log:
        return Log(self.gate_id, self.epoch, list(self.events), self.minute + 30)

    def batch(self, first: int = 1, last: int | None = None, **kw: Any) -> PushBatch:
        last = len(self.events) if last is None else last
        head = self.events[-1] if self.events else None
        return PushBatch(
            epoch=kw.pop("epoch", self.epoch),
            from_seq=first,
            head_seq=kw.pop("head_seq", head.seq if head else 0),
            head_hash=kw.pop("head_hash", head.hash if head else GENESIS),
            events=[e for e in self.events if first <= e.seq <= last],
            **kw,
        )


@dataclass
class Server:
    storage: SqliteStorage
    gate_id: str
    other_gate: str

    def push(self, batch: PushBatch) -> PushResult:
        result = self.storage.push(self.gate_id, batch, now=NOW)
        return result

    def log(self) -> Log:
        return Log(self.gate_id)

    def held(self) -> list[tuple[int, int, str, int]]:
        """(epoch, seq, event id, orphan) of every stored event of the gate."""
        return [
            (r[0], r[1], r[2], r[3])
            for r in _execute(
                self.storage,
                "select epoch, seq, event_id, orphan from events where gate_id = ? order by gseq",
                [self.gate_id],
            )
        ]

    def anomalies(self) -> list[tuple[str, str]]:
        """The anomalies of the log itself (a household's odd sequence is another matter)."""
        return sorted(
            (a.kind, a.detail)
            for a in self.storage.list_anomalies(COMMUNITY)
            if a.kind in ("chain_break", "seq_reuse")
        )

    def epoch(self) -> int:
        row = _execute(self.storage, "select epoch from gates where gate_id = ?", [self.gate_id])
        return int(row.fetchone()[0])

    def rejected(self) -> list[tuple[int, str]]:
        return [(r["seq"], r["reason"]) for r in self.storage.rejected(COMMUNITY)]

    def stream(self, epoch: int) -> tuple[int | None, int, int]:
        """(parent epoch, base seq, through seq) of one of the gate's streams."""
        row = _execute(
            self.storage,
            "select parent_epoch, base_seq, through_seq from streams where gate_id = ? and epoch = ?",
            [self.gate_id, epoch],
        ).fetchone()
        assert row is not None
        return (row[0], row[1], row[2])


def _enroll(storage: SqliteStorage, name: str) -> str:
    token = storage.add_gate(COMMUNITY, name, now=NOW).token
    request = EnrollRequest(token=token, api_token=name * 40, public_key="ab" * 32)
    return storage.enroll(COMMUNITY, request, now=NOW).gate_id


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    storage = SqliteStorage(tmp_path / "server.db")
    try:
        storage.ensure_community(COMMUNITY, "测试小区", now=NOW)
        yield Server(storage, _enroll(storage, "A"), _enroll(storage, "B"))
    finally:
        storage.close()


def ids(log: Log, *seqs: int) -> list[str]:
    return [json.loads(log.events[s - 1].body)["event_id"] for s in seqs]


# --- the plain cases -------------------------------------------------------------------------------


def test_append_then_a_retry_is_all_duplicates(server: Server) -> None:
    log = server.log()
    for _ in range(3):
        log.add()
    r = server.push(log.batch())
    assert (r.inserted, r.duplicates, r.acked_through_seq, r.epoch, r.forked) == (3, 0, 3, 1, False)
    assert r.head_gseq == 3
    again = server.push(log.batch())
    assert (again.inserted, again.duplicates, again.acked_through_seq) == (0, 3, 3)
    assert [h[1] for h in server.held()] == [1, 2, 3]
    assert server.anomalies() == [] and server.rejected() == []


def test_a_batch_past_the_high_water_mark_is_not_taken(server: Server) -> None:
    log = server.log()
    for _ in range(4):
        log.add()
    server.push(log.batch(1, 1))
    # Seq 3 overtook seq 2: nothing of it is taken, the answer says where to start again.
    r = server.push(log.batch(3, 4))
    assert (r.inserted, r.ignored, r.acked_through_seq) == (0, 2, 1)
    assert [h[1] for h in server.held()] == [1]
    r = server.push(log.batch(2, 4))
    assert (r.inserted, r.ignored, r.acked_through_seq) == (3, 0, 4)
    assert server.anomalies() == []


def test_a_gap_inside_a_batch_is_a_chain_break_and_can_be_filled(server: Server) -> None:
    log = server.log()
    for _ in range(5):
        log.add()
    batch = log.batch()
    batch.events = [e for e in batch.events if e.seq != 3]  # the gate's log skipped event 3
    r = server.push(batch)
    assert (r.inserted, r.acked_through_seq) == (4, 5)
    assert server.anomalies() == [
        ("chain_break", f"gate {server.gate_id}: events 3-3 are missing from its log")
    ]
    # Event 3 arrives later: it fills its place, its links are checked both ways, no new anomaly.
    r = server.push(log.batch(3, 3))
    assert (r.inserted, r.duplicates, r.acked_through_seq) == (1, 0, 5)
    assert sorted(h[1] for h in server.held()) == [1, 2, 3, 4, 5]
    assert len(server.anomalies()) == 1


def test_a_gap_of_two_names_both_missing_events(server: Server) -> None:
    log = server.log()
    for _ in range(4):
        log.add()
    batch = log.batch()
    batch.events = [batch.events[0], batch.events[3]]
    r = server.push(batch)
    assert (r.inserted, r.acked_through_seq) == (2, 4)
    assert server.anomalies() == [
        ("chain_break", f"gate {server.gate_id}: events 2-3 are missing from its log")
    ]


def test_a_filled_gap_with_a_wrong_link_is_a_chain_break(server: Server) -> None:
    log = server.log()
    for _ in range(3):
        log.add()
    batch = log.batch()
    batch.events = [batch.events[0], batch.events[2]]
    server.push(batch)
    stranger = server.log()  # another log's event 2: it does not link to the held event 1
    stranger.add()
    bad = stranger.add()
    head = log.events[2]
    r = server.push(PushBatch(epoch=1, from_seq=2, head_seq=3, head_hash=head.hash, events=[bad]))
    assert (r.inserted, r.acked_through_seq) == (1, 3)
    [(kind, detail)] = [a for a in server.anomalies() if "does not follow" in a[1]]
    assert kind == "chain_break" and "event 2 does not follow event 1" in detail
    assert len(server.anomalies()) == 2  # the gap, and this link


def test_a_link_that_does_not_follow_is_kept_and_flagged(server: Server) -> None:
    log = server.log()
    log.add()
    second = log.add()
    body = second.body
    forged_prev = "f" * 64
    log.events[1] = WireEvent(
        seq=2, prev_hash=forged_prev, hash=chain_hash(forged_prev, body), body=body
    )
    r = server.push(log.batch())
    assert (r.inserted, r.rejected) == (2, [])
    [(kind, detail)] = server.anomalies()
    assert kind == "chain_break" and "does not follow event 1" in detail


# --- what is refused -----------------------------------------------------------------------------


def test_an_altered_body_is_rejected_and_kept(server: Server) -> None:
    log = server.log()
    ev = log.add()
    log.events[0] = WireEvent(
        seq=1, prev_hash=ev.prev_hash, hash=ev.hash, body=ev.body.replace("1203", "1204")
    )
    r = server.push(log.batch())
    assert r.inserted == 0 and [x.reason for x in r.rejected] == ["bad_hash"]
    assert r.acked_through_seq == 1  # held: as a rejection
    assert server.rejected() == [(1, "bad_hash")]
    [(kind, detail)] = server.anomalies()
    assert kind == "chain_break" and "body does not match its hash" in detail


@pytest.mark.parametrize(
    ("hash_", "prev"),
    [
        ("A" * 64, None),
        ("a" * 63, None),
        ("g" * 64, None),
        (None, "0" * 63),
        (None, "Z" * 64),
    ],
)
def test_malformed_hashes_are_rejected(server: Server, hash_: str | None, prev: str | None) -> None:
    log = server.log()
    ev = log.add()
    log.events[0] = WireEvent(
        seq=1, prev_hash=prev or ev.prev_hash, hash=hash_ or ev.hash, body=ev.body
    )
    r = server.push(log.batch())
    assert r.inserted == 0
    assert [(x.reason, x.detail) for x in r.rejected] == [
        ("invalid", "hash and prev_hash must be 64 lowercase hex")
    ]
    assert server.held() == []


def test_an_overlong_hash_or_body_never_reaches_the_ingest() -> None:
    # The wire schema bounds them (docs/sync.md, "Limits"): the request is refused whole.
    with pytest.raises(ValueError, match="at most 64 characters"):
        WireEvent(seq=1, prev_hash="0" * 64, hash="a" * 65, body="{}")
    with pytest.raises(ValueError, match="at most 8192 characters"):
        WireEvent(seq=1, prev_hash="0" * 64, hash="a" * 64, body="[" * 100_000)


def test_an_event_id_already_used_by_another_event_is_a_conflict(server: Server) -> None:
    log = server.log()
    first = log.add()
    eid = json.loads(first.body)["event_id"]
    log.add(event_id=eid, kind="entry")
    r = server.push(log.batch())
    assert r.inserted == 1
    assert [(x.seq, x.reason, x.event_id, x.detail) for x in r.rejected] == [
        (2, "event_id_conflict", eid, "another event has this event_id")
    ]
    assert server.rejected() == [(2, "event_id_conflict")]


def test_another_gates_events_are_refused(server: Server) -> None:
    log = server.log()
    log.add(gate_id=server.other_gate)
    log.add(gate_id="gate-1")  # written before enrollment: taken as the pushing gate's own
    r = server.push(log.batch())
    assert [(x.seq, x.reason) for x in r.rejected] == [(1, "foreign_gate")]
    assert r.inserted == 1
    row = _execute(server.storage, "select gate_id from events").fetchone()
    assert row[0] == server.gate_id


GOOD: dict[str, Any] = {}
BAD_FIELDS = [
    ("event_id", "not-a-uuid", "event_id"),
    ("event_id", 12, "event_id"),
    ("event_id", None, "event_id"),
    ("seq", 2, "seq (must match the batch)"),
    ("seq", "1", "seq (must match the batch)"),
    ("seq", True, "seq (must match the batch)"),
    ("kind", "teleport", "kind"),
    ("wall_time", "2026-11-24 02:00:00", "wall_time"),
    ("wall_time", 1764000000, "wall_time"),
    ("reason", None, "reason"),
    ("operator", 7, "operator"),
    ("gate_id", "", "gate_id"),
    ("gate_id", None, "gate_id"),
    ("epoch", "1", "epoch"),
    ("direction", "sideways", "direction"),
    ("household", 0, "household"),
    ("household", 65536, "household"),
    ("household", "1203", "household"),
    ("household", True, "household"),
    ("serial", -1, "serial"),
    ("serial", 256, "serial"),
    ("headcount", -1, "headcount"),
    ("headcount", 1000, "headcount"),
    ("headcount", 1.5, "headcount"),
    ("clock_offset_ms", 2**53 + 1, "clock_offset_ms"),
    ("clock_offset_ms", -(2**53) - 1, "clock_offset_ms"),
    ("ref", 5, "ref"),
    ("overdue", 1, "overdue"),
    ("overdue", None, "overdue"),
    ("hlc_ms", -1, "hlc_ms"),
    ("hlc_ms", 10**15, "hlc_ms"),
    ("hlc_ms", "5", "hlc_ms"),
    ("epoch", -1, "epoch"),
    ("epoch", 2**63, "epoch"),  # named once: its own range, not the generic one
    ("note", "n" * 501, "note (over 500 characters)"),
    ("scan", "s" * 2049, "scan (over 2048 characters)"),
    ("operator", "o" * 201, "operator (over 200 characters)"),
    ("extra", 2**63, "extra (out of range)"),
    ("extra", -(2**63), "extra (out of range)"),
]


@pytest.mark.parametrize(("name", "value", "named"), BAD_FIELDS)
def test_every_field_is_checked(server: Server, name: str, value: Any, named: str) -> None:
    log = server.log()
    log.add(**{name: value})
    r = server.push(log.batch())
    assert r.inserted == 0
    assert [(x.reason, x.detail) for x in r.rejected] == [
        ("invalid", f"bad or missing field(s): {named}")
    ]


def test_a_missing_field_is_named_and_all_bad_fields_are_listed(server: Server) -> None:
    log = server.log()
    body = json.loads(log.add().body)
    log.events.clear()
    del body["operator"]
    body.update(kind="x", household=0)
    log.raw(canonical(body))
    r = server.push(log.batch())
    assert [x.detail for x in r.rejected] == ["bad or missing field(s): kind, operator, household"]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("household", 1),
        ("household", 65535),
        ("household", None),
        ("serial", 0),
        ("serial", 255),
        ("headcount", 0),
        ("headcount", 999),
        ("clock_offset_ms", 2**53),
        ("clock_offset_ms", -(2**53)),
        ("ref", "e-1"),
        ("overdue", True),
        ("direction", "entry"),
        ("direction", None),
        ("epoch", 0),
        ("epoch", 2**63 - 1),
        ("hlc_ms", 0),
        ("hlc_ms", 10**15 - 1),
        ("hlc_ms", None),
        ("note", "n" * 500),
        ("scan", "s" * 2048),
        ("operator", "o" * 200),
        ("extra", 2**63 - 1),
        ("extra", -(2**63) + 1),
    ],
)
def test_the_edges_of_each_range_are_taken(server: Server, name: str, value: Any) -> None:
    log = server.log()
    log.add(**{name: value})
    r = server.push(log.batch())
    assert (r.inserted, r.rejected) == (1, [])


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ("[1, 2]", "the body is not a JSON object"),
        ('{"a": NaN}', "the body is not a JSON object"),
        ('{"a": Infinity}', "the body is not a JSON object"),
        ("not json", "the body is not a JSON object"),
        ("[" * 8_000, "the body is not a JSON object"),  # deep, within the body's length limit
    ],
)
def test_bodies_that_are_not_json_objects(server: Server, text: str, detail: str) -> None:
    log = server.log()
    log.raw(text)
    r = server.push(log.batch())
    assert [(x.reason, x.detail) for x in r.rejected] == [("invalid", detail)]


def test_a_time_of_the_right_shape_that_is_no_time(server: Server) -> None:
    log = server.log()
    log.add(wall_time="2026-13-45T25:00:00.000Z")
    r = server.push(log.batch())
    assert [(x.reason, x.detail) for x in r.rejected] == [("invalid", "wall_time is not a time")]


def test_a_gate_that_never_enrolled_cannot_push(server: Server) -> None:
    pending = server.storage.add_gate(COMMUNITY, "C", now=NOW).gate_id
    with pytest.raises(StorageError) as err:
        server.storage.push(pending, server.log().batch(), now=NOW)
    assert err.value.code == "not_enrolled"
    assert err.value.message == "This gate has not enrolled yet."


# --- restores, forks and replays -------------------------------------------------------------------


def test_a_restored_gate_that_wrote_new_events_forks(server: Server) -> None:
    log = server.log()
    for _ in range(3):
        log.add()
    server.push(log.batch())
    restored = Log(server.gate_id, events=log.events[:1], minute=40)
    restored.add(kind="entry")  # a different event 2
    r = server.push(restored.batch(2))
    assert (r.forked, r.epoch, r.inserted, r.acked_through_seq) == (True, 2, 1, 2)
    assert server.stream(2) == (1, 1, 2)
    held = server.held()
    assert [(e, s, o) for e, s, _, o in held] == [(1, 1, 0), (1, 2, 1), (1, 3, 1), (2, 2, 0)]
    [(kind, detail)] = server.anomalies()
    assert kind == "seq_reuse" and "(epoch 1 -> 2 after event 1)" in detail
    assert r.repull_after == 1 and r.repull_event_id == ids(log, 1)[0]
    # The same request again: a duplicate, no second fork.
    again = server.push(restored.batch(2))
    assert (again.forked, again.epoch, again.duplicates, again.inserted) == (False, 2, 1, 0)
    assert len(server.anomalies()) == 1


def test_a_restored_gate_before_it_writes_anything_forks_at_its_head(server: Server) -> None:
    log = server.log()
    for _ in range(3):
        log.add()
    server.push(log.batch())
    r = server.push(log.batch(4, 3, head_seq=1, head_hash=log.events[0].hash))
    assert (r.forked, r.epoch, r.acked_through_seq) == (True, 2, 1)
    assert server.stream(2) == (1, 1, 1)
    g = server.gate_id
    assert [d for _, _, _, d in anomaly_rows(server)] == [
        f"gate {g} came back with a log ending at event 1 while the server holds up to 3: "
        "restored from an old copy; it goes on in a new epoch (epoch 1 -> 2 after event 1)"
    ]
    # A head that is not what the server holds there is no restore: nothing happens.
    r = server.push(log.batch(4, 3, epoch=2, head_seq=1, head_hash="e" * 64))
    assert (r.forked, r.epoch) == (False, 2)


def test_a_replay_after_two_forks_is_a_duplicate(server: Server) -> None:
    log = server.log()
    log.add()
    log.add()
    server.push(log.batch())
    # Restored to a copy holding event 1; writes x2 (epoch 1): the server forks to epoch 2.
    x = Log(server.gate_id, events=log.events[:1], minute=40)
    x.add(kind="entry")
    first_fork = x.batch(2)
    assert server.push(first_fork).epoch == 2
    # Restored again to the same old copy (older than epoch 2); writes y2, still under epoch 1.
    y = Log(server.gate_id, events=log.events[:1], minute=50)
    y.add(kind="entry", household=1204)
    r = server.push(y.batch(2))
    assert (r.forked, r.epoch, r.inserted) == (True, 3, 1)
    before = (server.held(), server.anomalies())
    # The request that made the first fork arrives again (a proxy's retry): its event is held
    # already, under epoch 2: a duplicate, and no new epoch.
    replayed = server.push(first_fork)
    assert (replayed.duplicates, replayed.inserted, replayed.forked) == (1, 0, False)
    assert server.epoch() == 3
    assert (server.held(), server.anomalies()) == before
    assert (
        _execute(
            server.storage, "select max(epoch) from streams where gate_id = ?", [server.gate_id]
        ).fetchone()[0]
        == 3
    )


def test_an_old_epochs_bundle_is_kept_but_not_in_the_gates_log(server: Server) -> None:
    log = server.log()
    log.add()
    server.push(log.batch())
    restored = Log(server.gate_id, events=[], minute=40)
    restored.add(kind="exit", household=1204)
    r = server.push(restored.batch())  # a different event 1: fork at 0
    assert (r.forked, r.epoch) == (True, 2)
    # A bundle of epoch 1 (the replaced laptop's log) with a new event 2 that links to event 1:
    # the old laptop went on recording after the copy forked, so two copies are live. It is
    # forked too and said (`cloned_gate`); its event is kept for every copy to pull.
    log.add(kind="entry")
    r = server.push(log.batch(2, 2, epoch=1))
    assert (r.inserted, r.forked, r.epoch) == (1, True, 3)
    assert server.epoch() == 3
    assert "cloned_gate" in {a.kind for a in server.storage.list_anomalies(COMMUNITY)}
    assert {s for e, s, _, _ in server.held() if e == 1} == {1}
    assert [(e, s) for e, s, _, _ in server.held() if e == 3] == [(3, 2)]


def test_a_lost_answer_after_a_fork_continues_the_new_epoch(server: Server) -> None:
    log = server.log()
    log.add()
    log.add()
    server.push(log.batch())
    restored = Log(server.gate_id, events=log.events[:1], minute=40)
    restored.add(kind="entry")
    assert server.push(restored.batch(2)).epoch == 2
    # The gate never heard of epoch 2 (the answer was lost) and writes event 3 under epoch 1.
    restored.add(kind="exit")
    r = server.push(restored.batch(2, epoch=1))
    assert (r.forked, r.epoch, r.inserted, r.duplicates, r.acked_through_seq) == (False, 2, 1, 1, 3)
    assert [(e, s) for e, s, _, o in server.held() if o == 0] == [(1, 1), (2, 2), (2, 3)]


# --- what the plan says, exactly -----------------------------------------------------------------


def anomaly_rows(server: Server) -> list[tuple[str, str, str | None, str]]:
    return sorted(
        (a.anomaly_id, a.kind, a.gate_id, a.detail)
        for a in server.storage.list_anomalies(COMMUNITY)
        if a.kind in ("chain_break", "seq_reuse")
    )


def base_hash(server: Server, epoch: int) -> str:
    row = _execute(
        server.storage,
        "select base_hash from streams where gate_id = ? and epoch = ?",
        [server.gate_id, epoch],
    ).fetchone()
    return str(row[0])


def test_the_gap_anomaly_is_named_for_its_gate_epoch_and_missing_events(server: Server) -> None:
    from menwei.sync.anomalies import anomaly_id

    log = server.log()
    for _ in range(4):
        log.add()
    batch = log.batch()
    batch.events = [batch.events[0], batch.events[3]]
    server.push(batch)
    g = server.gate_id
    assert anomaly_rows(server) == [
        (
            anomaly_id("chain_break", g, "1", "gap", "2-3"),
            "chain_break",
            g,
            f"gate {g}: events 2-3 are missing from its log",
        )
    ]
    # The later missing event filled first: nothing links back to check yet, it is taken.
    r = server.push(log.batch(3, 3))
    assert (r.inserted, r.rejected) == (1, [])
    r = server.push(log.batch(2, 2))
    assert (r.inserted, r.rejected) == (1, [])
    assert sorted(h[1] for h in server.held()) == [1, 2, 3, 4]
    assert len(anomaly_rows(server)) == 1


def test_a_live_fork_opens_the_epoch_at_the_last_common_event(server: Server) -> None:
    log = server.log()
    for _ in range(3):
        log.add()
    server.push(log.batch())
    restored = Log(server.gate_id, events=log.events[:2], minute=40)
    restored.add(kind="entry")
    r = server.push(restored.batch(3))
    g = server.gate_id
    assert (r.forked, r.epoch) == (True, 2)
    assert server.stream(2) == (1, 2, 3) and base_hash(server, 2) == log.events[1].hash
    [(_, kind, gate, detail)] = anomaly_rows(server)
    assert (kind, gate) == ("seq_reuse", g)
    assert detail == (
        f"gate {g} wrote a different event 3 than the one the server holds (restored from an "
        "old copy?); both are kept, the gate goes on in a new epoch (epoch 1 -> 2 after event 2)"
    )


def test_a_copy_older_than_the_current_epoch_forks_again_from_the_old_one(server: Server) -> None:
    log = server.log()
    log.add()
    log.add()
    server.push(log.batch())
    x = Log(server.gate_id, events=log.events[:1], minute=40)
    x.add(kind="entry")
    x.add(kind="exit")
    assert server.push(x.batch(2)).epoch == 2
    y = Log(server.gate_id, events=log.events[:1], minute=50)
    y.add(kind="entry", household=1204)
    r = server.push(y.batch(2))
    g = server.gate_id
    assert (r.forked, r.epoch, r.inserted, r.acked_through_seq) == (True, 3, 1, 2)
    assert server.stream(3) == (1, 1, 2) and base_hash(server, 3) == log.events[0].hash
    held = {(e, s): o for e, s, _, o in server.held()}
    # Epoch 2's events left the gate's log; epoch 1's event 1 is still in it; y2 is the head.
    assert held == {(1, 1): 0, (1, 2): 1, (2, 2): 1, (2, 3): 1, (3, 2): 0}
    details = [d for _, k, _, d in anomaly_rows(server) if k == "seq_reuse"]
    assert (
        f"gate {g} wrote a different event 2 in epoch 1, which it had left (restored from an old "
        "copy?); both are kept, the gate goes on in a new epoch (epoch 1 -> 3 after event 1)"
    ) in details
    # The gate goes on in epoch 3 from there: its next event links to y2.
    y.epoch = 3
    y.add(kind="exit", household=1204)
    r = server.push(y.batch(3))
    assert (r.inserted, r.epoch, r.forked, r.acked_through_seq) == (1, 3, False, 3)
    assert not [d for d in details if "does not follow" in d]


def test_a_replayed_two_event_request_counts_both_duplicates(server: Server) -> None:
    log = server.log()
    log.add()
    log.add()
    server.push(log.batch())
    x = Log(server.gate_id, events=log.events[:1], minute=40)
    x.add(kind="entry")
    x.add(kind="exit")
    first_fork = x.batch(2)
    server.push(first_fork)
    y = Log(server.gate_id, events=log.events[:1], minute=50)
    y.add(kind="entry", household=1204)
    server.push(y.batch(2))
    replayed = server.push(first_fork)
    assert (replayed.duplicates, replayed.inserted, replayed.forked) == (2, 0, False)
    assert server.epoch() == 3


def test_a_lost_answer_after_a_fork_at_the_start(server: Server) -> None:
    log = server.log()
    log.add()
    server.push(log.batch())
    restored = Log(server.gate_id, events=[], minute=40)
    restored.add(kind="exit", household=1204)
    assert server.push(restored.batch()).epoch == 2  # forked at 0
    restored.add(kind="entry", household=1204)
    r = server.push(restored.batch(epoch=1))  # the gate did not hear of epoch 2
    assert (r.forked, r.epoch, r.inserted, r.duplicates) == (False, 2, 1, 1)
    assert [(e, s) for e, s, _, o in server.held() if o == 0] == [(2, 1), (2, 2)]


def test_only_new_events_after_a_lost_answer_continue_the_new_epoch(server: Server) -> None:
    log = server.log()
    log.add()
    log.add()
    server.push(log.batch())
    restored = Log(server.gate_id, events=log.events[:1], minute=40)
    restored.add(kind="entry")
    assert server.push(restored.batch(2)).epoch == 2
    restored.add(kind="exit")
    r = server.push(restored.batch(3, epoch=1))  # only event 3, under the old epoch
    assert (r.forked, r.epoch, r.inserted, r.acked_through_seq) == (False, 2, 1, 3)
    assert [(e, s) for e, s, _, o in server.held() if o == 0] == [(1, 1), (2, 2), (2, 3)]


def test_a_probe_naming_an_old_epoch(server: Server) -> None:
    log = server.log()
    log.add()
    log.add()
    server.push(log.batch())
    restored = Log(server.gate_id, events=log.events[:1], minute=40)
    restored.add(kind="entry")
    assert server.push(restored.batch(2)).epoch == 2
    # An empty batch (the gate asks where it stands) naming epoch 1, head on the current log.
    r = server.push(restored.batch(3, 2, epoch=1))
    assert (r.epoch, r.forked, r.acked_through_seq) == (2, False, 2)
    # The same from the other copy (head = the old event 2): a second live copy, even with
    # nothing new to say. It is forked too, and said.
    r = server.push(log.batch(3, 2, epoch=1))
    assert (r.epoch, r.forked) == (3, True)
    assert server.epoch() == 3
    assert "cloned_gate" in {a.kind for a in server.storage.list_anomalies(COMMUNITY)}


def test_a_resent_batch_below_the_fork_is_all_duplicates(server: Server) -> None:
    log = server.log()
    for _ in range(4):
        log.add()
    server.push(log.batch())
    restored = Log(server.gate_id, events=log.events[:3], minute=40)
    restored.add(kind="entry")
    assert server.push(restored.batch(4)).epoch == 2  # base 3
    restored.epoch = 2
    r = server.push(restored.batch(1, epoch=2))  # events 1-3 live in epoch 1, the parent
    assert (r.duplicates, r.inserted, r.rejected, r.forked) == (4, 0, [], False)
    assert [k for _, k, _, _ in anomaly_rows(server)] == ["seq_reuse"]


def test_a_fork_with_an_event_that_does_not_link(server: Server) -> None:
    log = server.log()
    for _ in range(3):
        log.add()
    server.push(log.batch())
    restored = Log(server.gate_id, events=log.events[:2], minute=40)
    body = json.loads(restored.add(kind="entry").body)
    restored.events.pop()
    bad_prev = "e" * 64
    text = canonical(body)
    odd = WireEvent(seq=3, prev_hash=bad_prev, hash=chain_hash(bad_prev, text), body=text)
    r = server.push(PushBatch(epoch=1, from_seq=3, head_seq=3, head_hash=odd.hash, events=[odd]))
    assert (r.forked, r.epoch, r.inserted) == (True, 2, 1)
    # The new epoch starts from what the server holds at 2, not from what the event claims.
    assert base_hash(server, 2) == log.events[1].hash
    breaks = [d for _, k, _, d in anomaly_rows(server) if k == "chain_break"]
    assert breaks == [f"gate {server.gate_id} epoch 2: event 3 does not follow event 2"]


def test_a_different_event_below_the_fork_forks_again(server: Server) -> None:
    log = server.log()
    for _ in range(4):
        log.add()
    server.push(log.batch())
    restored = Log(server.gate_id, events=log.events[:3], minute=40)
    restored.add(kind="entry")
    assert server.push(restored.batch(4)).epoch == 2  # base 3: events 1-3 are epoch 1's
    other = Log(server.gate_id, epoch=2, minute=50)
    z1 = other.add(kind="entry", household=2101)
    r = server.push(PushBatch(epoch=2, from_seq=1, head_seq=1, head_hash=z1.hash, events=[z1]))
    assert (r.forked, r.epoch) == (True, 3)
    assert server.stream(3) == (2, 0, 1)


def test_a_replay_of_two_events_of_an_old_epoch(server: Server) -> None:
    log = server.log()
    for _ in range(3):
        log.add()
    server.push(log.batch())
    x = Log(server.gate_id, events=log.events[:1], minute=40)
    x.add(kind="entry")
    x.add(kind="exit")
    first_fork = x.batch(2)
    assert server.push(first_fork).epoch == 2
    y = Log(server.gate_id, events=log.events[:1], minute=50)
    y.add(kind="entry", household=1204)
    assert server.push(y.batch(2)).epoch == 3
    replayed = server.push(first_fork)  # both events sit under epoch 1's high-water mark
    assert (replayed.duplicates, replayed.inserted, replayed.forked) == (2, 0, False)


def test_the_words_of_a_bad_hash(server: Server) -> None:
    log = server.log()
    ev = log.add()
    log.events[0] = WireEvent(
        seq=1, prev_hash=ev.prev_hash, hash=ev.hash, body=ev.body.replace("1203", "1204")
    )
    r = server.push(log.batch())
    assert [(x.reason, x.detail) for x in r.rejected] == [
        ("bad_hash", "the body does not hash to the event's hash")
    ]
    g = server.gate_id
    assert [d for _, _, _, d in anomaly_rows(server)] == [
        f"gate {g} epoch 1: event 1 was altered: its body does not match its hash"
    ]


def test_every_field_of_a_stored_event(server: Server) -> None:
    log = server.log()
    ev = log.add(
        kind="override",
        household=2102,
        direction="exit",
        serial=3,
        reason="outside_window",
        ref="e-7",
        overdue=True,
        clock_offset_ms=-1500,
        override_reason="medical",
    )
    plain = log.add(kind="entry", household=2102, override_reason=5)
    r = server.push(log.batch())
    assert (r.inserted, r.rejected) == (2, [])
    rows = list(
        server.storage.query(
            "select kind, direction, household, serial, reason, wall_time, ref, overdue,"
            " clock_offset_ms, body, prev_hash, hash, received_at, source, orphan, epoch, seq"
            " from events order by seq"
        )
    )
    assert rows[0] == dict(
        kind="override",
        direction="exit",
        household=2102,
        serial=3,
        reason="outside_window",
        wall_time="2026-11-24T02:01:00.000Z",
        ref="e-7",
        overdue=1,
        clock_offset_ms=-1500,
        body=ev.body,
        prev_hash=ev.prev_hash,
        hash=ev.hash,
        received_at="2026-11-24T02:00:00.000Z",
        source="push",
        orphan=0,
        epoch=1,
        seq=1,
    )
    assert (rows[1]["kind"], rows[1]["overdue"], rows[1]["ref"], rows[1]["body"]) == (
        "entry",
        0,
        None,
        plain.body,
    )


def test_the_same_event_twice_in_one_batch_is_stored_once(server: Server) -> None:
    log = server.log()
    log.add()
    log.add()
    batch = log.batch()
    batch.events = [batch.events[0], batch.events[0], batch.events[1]]
    r = server.push(batch)
    assert (r.inserted, r.duplicates, r.acked_through_seq, r.rejected) == (2, 1, 2, [])
    assert [h[1] for h in server.held()] == [1, 2]


@pytest.mark.parametrize(
    ("offset", "flagged"),
    [(120_000, False), (120_001, True), (-300_000, True), (2_000_000, True)],
)
def test_a_gate_clock_far_off_is_noted(server: Server, offset: int, flagged: bool) -> None:
    log = server.log()
    log.add()
    server.push(log.batch(clock_offset_ms=offset))
    notes = [
        (a.kind, a.gate_id, a.detail)
        for a in server.storage.list_anomalies(COMMUNITY)
        if a.kind == "clock_suspect" and "at a sync on" in a.detail
    ]
    g = server.gate_id
    words = (
        f"gate {g}: its clock was {offset / 1000:+.0f} s off the server's at a sync on 2026-11-24"
    )
    assert notes == ([("clock_suspect", g, words)] if flagged else [])


def test_a_gate_corrects_only_its_own_events(server: Server) -> None:
    theirs = Log(server.other_gate)
    taken = json.loads(theirs.add().body)["event_id"]
    assert server.storage.push(server.other_gate, theirs.batch(), now=NOW).inserted == 1
    log = server.log()
    own = json.loads(log.add().body)["event_id"]
    log.add("annul", ref=taken)
    log.add("override", ref=taken, direction="exit", override_reason="medical")
    log.add("annul", ref=own)  # its own: taken
    log.add("annul", ref="not-an-event-anyone-holds")  # unknown here: taken as it is
    r = server.push(log.batch())
    g = server.other_gate
    assert [(x.seq, x.reason, x.detail) for x in r.rejected] == [
        (2, "foreign_ref", f"annul of an event of {g}: a gate corrects only its own"),
        (3, "foreign_ref", f"override of an event of {g}: a gate corrects only its own"),
    ]
