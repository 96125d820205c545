"""The ingest plan without a database: what a batch means for a gate's streams."""

from __future__ import annotations

import uuid

from menwei.core.eventlog import GENESIS, canonical, chain_hash
from menwei.sync.protocol import PushBatch, WireEvent
from menwei.sync.server.plan import (
    AnomalyPut,
    Held,
    IngestPlan,
    KnownEvent,
    NewEventRow,
    OpenEpoch,
    OrphanRange,
    RaiseAnomaly,
    Reject,
    StoreEvent,
    StreamState,
    StreamView,
    plan_ingest,
    read_batch,
)

GATE = "c1-g1"


def log(n: int, *, salt: str = "", start_hash: str = GENESIS, first: int = 1) -> list[WireEvent]:
    """A gate's chained log of `n` events from seq `first`."""
    events, prev = [], start_hash
    for seq in range(first, first + n):
        body = canonical(
            {
                "event_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{salt}{seq}")),
                "seq": seq,
                "kind": "exit",
                "wall_time": f"2026-11-24T02:{seq % 60:02d}:00.000Z",
                "reason": "ok",
                "operator": "t",
                "gate_id": GATE,
                "epoch": 1,
                "household": 1203,
                "serial": 1,
            }
        )
        h = chain_hash(prev, body)
        events.append(WireEvent(seq=seq, prev_hash=prev, hash=h, body=body))
        prev = h
    return events


def held_view(events: list[WireEvent], *, through: int | None = None) -> StreamView:
    """The server holding `events` in epoch 1 (through `through`, default: all of them)."""
    top = events[-1].seq if through is None else through
    kept = [e for e in events if e.seq <= top]
    head = kept[-1].hash if kept else GENESIS
    stream = StreamState(1, None, 0, GENESIS, top, head)
    positions = {
        (1, e.seq): Held(e.hash, read_batch(batch([e])).event_ids[0], "event") for e in kept
    }
    known = {
        eid: KnownEvent(e.hash, GATE, 1, e.seq, False)
        for e in kept
        for eid in read_batch(batch([e])).event_ids
    }
    return StreamView(GATE, 1, {1: stream}, positions, known, frozenset())


def batch(events: list[WireEvent], *, epoch: int = 1) -> PushBatch:
    last = events[-1] if events else None
    return PushBatch(
        epoch=epoch,
        from_seq=events[0].seq if events else 1,
        head_seq=last.seq if last else 0,
        head_hash=last.hash if last else GENESIS,
        events=events,
    )


def plan(events: list[WireEvent], view: StreamView) -> IngestPlan:
    return plan_ingest(read_batch(batch(events)), view, source="push", today="2026-11-24")


def kinds(p: IngestPlan) -> list[str]:
    return [
        s.anomaly.kind
        for s in p.steps
        if isinstance(s, RaiseAnomaly) and isinstance(s.anomaly, AnomalyPut)
    ]


def test_append_then_duplicate() -> None:
    events = log(5)
    empty = held_view(events, through=0)
    p = plan(events, empty)
    assert (p.inserted, p.duplicates, p.acked_through_seq) == (5, 0, 5)
    assert [s.seq for s in p.steps if isinstance(s, StoreEvent)] == [1, 2, 3, 4, 5]
    again = plan(events, held_view(events))
    assert (again.inserted, again.duplicates, again.acked_through_seq) == (0, 5, 5)
    assert kinds(again) == []


def test_a_batch_past_the_mark_is_ignored_and_a_gap_inside_one_is_a_chain_break() -> None:
    events = log(6)
    view = held_view(events, through=2)
    overtaking = plan(events[3:], view)
    assert (overtaking.ignored, overtaking.inserted, overtaking.acked_through_seq) == (3, 0, 2)
    gap = plan([events[2], *events[4:]], view)
    assert gap.inserted == 3 and gap.acked_through_seq == 6
    assert kinds(gap) == ["chain_break"]


def test_fill_a_skipped_position() -> None:
    events = log(4)
    view = held_view(events)
    positions = dict(view.positions)
    del positions[(1, 3)]
    known = {k: v for k, v in view.known.items() if v.seq != 3}
    hole = StreamView(GATE, 1, view.streams, positions, known, frozenset())
    p = plan(events[2:3], hole)
    assert p.inserted == 1 and kinds(p) == []


def test_a_different_event_under_a_held_number_forks_a_new_epoch() -> None:
    events = log(5)
    other = log(3, salt="restored-", start_hash=events[2].hash, first=4)
    p = plan(other, held_view(events))
    assert p.forked and p.epoch == 2 and p.inserted == 3
    assert kinds(p) == ["seq_reuse"]
    assert any(isinstance(s, OpenEpoch) and s.base_seq == 3 for s in p.steps)
    assert any(isinstance(s, OrphanRange) and (s.after, s.through) == (3, 5) for s in p.steps)
    assert {s.epoch for s in p.steps if isinstance(s, StoreEvent)} == {2}


def test_an_altered_body_is_rejected_with_a_chain_break() -> None:
    events = log(2)
    bad = events[1].model_copy(update={"body": events[1].body.replace('"ok"', '"no"')})
    p = plan([events[0], bad], held_view(events, through=0))
    assert p.inserted == 1 and [r.reason for r in p.rejected] == ["bad_hash"]
    assert any(isinstance(s, Reject) for s in p.steps)
    assert kinds(p) == ["chain_break"]


def _override(**fields: object) -> WireEvent:
    body = canonical(
        {
            "event_id": str(uuid.uuid5(uuid.NAMESPACE_URL, "override")),
            "seq": 1,
            "kind": "override",
            "wall_time": "2026-11-24T02:01:00.000Z",
            "reason": "outside_window",
            "operator": "t",
            "gate_id": GATE,
            "epoch": 1,
            "household": 2102,
            "serial": 3,
            "direction": "exit",
            "ref": "e-7",
            "overdue": True,
            "clock_offset_ms": -1500,
            "override_reason": "medical",
            "hlc_ms": 1_795_485_660_000,
            **fields,
        }
    )
    return WireEvent(seq=1, prev_hash=GENESIS, hash=chain_hash(GENESIS, body), body=body)


def test_what_the_household_rules_get_of_a_stored_event() -> None:
    ev = _override()
    p = plan([ev], held_view([ev], through=0))
    eid = str(uuid.uuid5(uuid.NAMESPACE_URL, "override"))
    row = NewEventRow(
        key=f"001795485660000|{GATE}|000000000001|{eid}",
        event_id=eid,
        gate_id=GATE,
        kind="override",
        direction="exit",
        household=2102,
        serial=3,
        reason="outside_window",
        wall_time="2026-11-24T02:01:00.000Z",
        ref="e-7",
        overdue=True,
        clock_offset_ms=-1500,
        override_reason="medical",
    )
    assert [s for s in p.steps if isinstance(s, StoreEvent)] == [
        StoreEvent(1, 1, ev.body, GENESIS, ev.hash, row, False)
    ]
    # An override reason that is not text is not passed on.
    odd = _override(override_reason=5)
    stored = [
        s for s in plan([odd], held_view([odd], through=0)).steps if isinstance(s, StoreEvent)
    ]
    assert [s.row.override_reason for s in stored] == [None]


def test_an_older_bundle_is_no_restore_but_an_older_push_is() -> None:
    events = log(5)
    view = held_view(events)
    older = read_batch(batch(events[:3]))
    imported = plan_ingest(older, view, source="import", today="2026-11-24")
    assert (imported.forked, imported.duplicates, imported.acked_through_seq) == (False, 3, 5)
    pushed = plan_ingest(older, view, source="push", today="2026-11-24")
    assert (pushed.forked, pushed.epoch) == (True, 2)
