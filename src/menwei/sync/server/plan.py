"""What a pushed batch means for a gate's log: a pure plan, applied by each storage backend.

A gate's log is a run of contiguous sequence numbers linked by hashes. The server follows it as a
*stream* per (gate, epoch) with a high-water mark (`through_seq`, everything up to it is held:
stored, stored under another position, or rejected with a reason) and the hash there.

- A position already held is compared by hash: equal is a **duplicate** (a retry, a replayed or
  reordered batch); different means the gate's log **forked** (it was restored from an old copy
  and wrote new events under old numbers). The server then opens a new epoch from the last common
  event, raises `seq_reuse`, keeps both versions, and tells the gate its new epoch. A gate whose
  head is below what the server holds, with the same hash there, is a restored copy: same thing,
  before it has written anything new.
- A position below the high-water mark that nothing holds (the log skipped it earlier) is
  **filled**, its link checked backwards.
- A batch starting past the high-water mark (it overtook an earlier one) is not taken: the answer
  says where to start again. Inside a batch, a jump past the mark is a **gap**: `chain_break`.
- Everything else is **appended**. A link that does not match raises `chain_break`; an event
  whose body does not hash to its hash is rejected (kept in `rejected`) and raises `chain_break`.
- Pre-enrollment events (written as `gate-1`) are taken as the pushing gate's own: the hash chain
  covers their bodies, so they are never rewritten; the stored `gate_id` is the server's.

How it is used (the vdirsyncer way: the algorithm here, the storages elsewhere):

1. `read_batch(batch)` parses the bodies and says which stream positions, event ids and gate ids
   the plan needs to see;
2. the backend loads those into a `StreamView` (frozen values, no connection);
3. `plan_ingest(read, view, ...)` returns an `IngestPlan`: ordered `Step`s (store, alias, reject,
   orphan, open an epoch, raise an anomaly, ...) and the answer's figures;
4. the backend applies the steps in order inside one transaction, runs the event and household
   rules (`rules.py`, `anomalies.fold_trips`) on `new_rows`, then raises `closing`.

Adding a stream-level rule: raise it here as a `RaiseAnomaly` step (see `_chain_break`); rules
that judge an event against reference data or a household's history live in `rules.py`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from menwei.core.clock import parse_iso
from menwei.core.eventlog import GENESIS, KINDS, chain_hash
from menwei.sync.anomalies import anomaly_id
from menwei.sync.protocol import CLOCK_WARN_MS, PushBatch, Rejection, WireEvent
from menwei.sync.server.storage import NotEnrolled

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


# --- bodies ---------------------------------------------------------------------------------------


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_DECODER = json.JSONDecoder(parse_constant=_no_constant)


def parse_body(text: str) -> dict[str, Any] | None:
    """An event's body text as a JSON object (None when it is not one)."""
    try:
        value = _DECODER.decode(text)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def validate_body(ev: WireEvent, b: dict[str, Any] | None) -> str | None:
    """What is wrong with an event's shape, or None."""
    if b is None:
        return "the body is not a JSON object"
    g = b.get
    bad = []
    eid, wall, gate = g("event_id"), g("wall_time"), g("gate_id")
    if type(eid) is not str or not _UUID.match(eid):
        bad.append("event_id")
    if type(g("seq")) is not int or g("seq") != ev.seq:
        bad.append("seq (must match the batch)")
    if g("kind") not in KINDS:
        bad.append("kind")
    if type(wall) is not str or not _TIME.match(wall):
        bad.append("wall_time")
    if type(g("reason")) is not str:
        bad.append("reason")
    if type(g("operator")) is not str:
        bad.append("operator")
    if type(gate) is not str or not gate:
        bad.append("gate_id")
    if type(g("epoch")) is not int:
        bad.append("epoch")
    if g("direction") not in (None, "exit", "entry"):
        bad.append("direction")
    if not _opt_int(g("household"), 1, 65535):
        bad.append("household")
    if not _opt_int(g("serial"), 0, 255):
        bad.append("serial")
    if not _opt_int(g("headcount"), 0, 999):
        bad.append("headcount")
    if not _opt_int(g("clock_offset_ms"), -(2**53), 2**53):
        bad.append("clock_offset_ms")
    if g("ref") is not None and type(g("ref")) is not str:
        bad.append("ref")
    if type(g("overdue", False)) is not bool:
        bad.append("overdue")
    if bad:
        return "bad or missing field(s): " + ", ".join(bad)
    try:
        parse_iso(str(wall))
    except ValueError:
        return "wall_time is not a time"
    return None


def _opt_int(value: Any, low: int, high: int) -> bool:
    return value is None or (type(value) is int and low <= value <= high)


# --- what goes in ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReadEvent:
    """One event of a batch with its body parsed (None when it is not a JSON object)."""

    wire: WireEvent
    body: dict[str, Any] | None

    @property
    def seq(self) -> int:
        return self.wire.seq

    @property
    def event_id(self) -> str | None:
        eid = self.body.get("event_id") if self.body else None
        return eid if isinstance(eid, str) else None


@dataclass(frozen=True)
class ReadBatch:
    """A batch, its events in seq order, and what the plan will need to look at."""

    batch: PushBatch
    events: tuple[ReadEvent, ...]

    @property
    def seqs(self) -> frozenset[int]:
        """Stream positions the plan may ask about (in any epoch of the gate)."""
        wanted = {self.batch.head_seq}
        for e in self.events:
            wanted.update((e.seq, e.seq - 1))
        return frozenset(wanted)

    @property
    def event_ids(self) -> list[str]:
        return [eid for e in self.events if (eid := e.event_id) is not None]

    def gate_ids(self, own: str) -> set[str]:
        """Gate ids the bodies name other than the pushing gate's."""
        named = {e.body.get("gate_id") for e in self.events if e.body}
        return {g for g in named if isinstance(g, str) and g != own}


def read_batch(batch: PushBatch) -> ReadBatch:
    events = sorted(batch.events, key=lambda e: e.seq)
    return ReadBatch(batch, tuple(ReadEvent(e, parse_body(e.body)) for e in events))


@dataclass(frozen=True)
class StreamState:
    """A run of a gate's log (one epoch). Seqs up to `base_seq` are those of its parent."""

    epoch: int
    parent_epoch: int | None
    base_seq: int
    base_hash: str
    through_seq: int
    head_hash: str


@dataclass(frozen=True)
class Held:
    """What a stream position holds: an event stored there, an alias to an event stored under
    another position, or a rejected event (the newest)."""

    hash: str
    event_id: str | None
    source: str  # "event" | "alias" | "rejected"


_RANK = {"event": 3, "alias": 2, "rejected": 1}


@dataclass(frozen=True)
class KnownEvent:
    """An event id the server already stores, where, and the positions that alias it."""

    hash: str
    gate_id: str
    epoch: int
    seq: int
    orphan: bool
    aliases: tuple[tuple[str, int, int], ...] = ()  # (gate, epoch, seq)


@dataclass(frozen=True)
class StreamView:
    """What the server holds that a batch can touch, loaded by the backend before planning."""

    gate_id: str
    current_epoch: int
    streams: Mapping[int, StreamState]  # every epoch of the gate
    positions: Mapping[tuple[int, int], Held]  # (epoch, seq) for the batch's `seqs`
    known: Mapping[str, KnownEvent]  # for the batch's event ids
    other_gates: frozenset[str]  # the batch's named gate ids that are this community's gates


# --- what comes out -------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewEventRow:
    """What the household rules need of an event just stored."""

    key: str  # its place in a household's fold: wall time | event id
    event_id: str
    gate_id: str
    kind: str
    direction: str | None
    household: int | None
    serial: int | None
    reason: str | None
    wall_time: str
    ref: str | None
    overdue: bool
    clock_offset_ms: int | None
    override_reason: str | None


@dataclass(frozen=True)
class AnomalyPut:
    """Raise an anomaly (or open again one that was withdrawn); a no-op when it is open."""

    anomaly_id: str
    kind: str
    household: int | None
    gate_id: str | None
    event_ids: tuple[str, ...]
    detail: str
    sort_key: str | None = None


@dataclass(frozen=True)
class ClockNote:
    """One suspect-clock anomaly per gate and day, listing (some of) its events."""

    gate_id: str
    day: str
    event_id: str | None
    detail: str


@dataclass(frozen=True)
class StoreEvent:
    epoch: int
    seq: int
    text: str  # the body exactly as hashed
    prev_hash: str
    hash: str
    row: NewEventRow
    orphan: bool  # an older epoch's event: not in the gate's current log


@dataclass(frozen=True)
class StoreAlias:
    """A position held by an event stored under another position (on conflict: nothing)."""

    epoch: int
    seq: int
    event_id: str
    hash: str


@dataclass(frozen=True)
class Unorphan:
    """The gate's current log holds this event again."""

    event_id: str


@dataclass(frozen=True)
class Reject:
    epoch: int
    seq: int
    event_id: str | None
    hash: str
    reason: str
    detail: str
    payload: str  # the wire event as sorted JSON


@dataclass(frozen=True)
class SaveStream:
    epoch: int
    through_seq: int
    head_hash: str


@dataclass(frozen=True)
class OrphanRange:
    """Events (and events aliased) at (gate, epoch, seq) with after < seq <= through (None: no
    upper bound) leave the gate's log: it pulls them back like another gate's."""

    epoch: int
    after: int
    through: int | None


@dataclass(frozen=True)
class OpenEpoch:
    """The gate goes on in a new epoch from `base_seq` of `parent_epoch` (a fork): the gate row
    takes the new epoch; the gate re-pulls from its first orphaned event."""

    epoch: int
    parent_epoch: int
    base_seq: int
    base_hash: str


@dataclass(frozen=True)
class RaiseAnomaly:
    anomaly: AnomalyPut | ClockNote


Step = (
    StoreEvent
    | StoreAlias
    | Unorphan
    | Reject
    | SaveStream
    | OrphanRange
    | OpenEpoch
    | RaiseAnomaly
)


@dataclass(frozen=True)
class IngestPlan:
    steps: tuple[Step, ...]
    epoch: int
    acked_through_seq: int
    inserted: int
    duplicates: int
    rejected: tuple[Rejection, ...]
    ignored: int
    forked: bool
    new_rows: tuple[NewEventRow, ...]
    # Raised after the household rules have run on `new_rows` (the sync's own clock check).
    closing: tuple[AnomalyPut | ClockNote, ...] = ()


# --- the plan -------------------------------------------------------------------------------------


def plan_ingest(read: ReadBatch, view: StreamView, *, source: str, today: str) -> IngestPlan:
    """What the batch means for the gate's streams. `today` (YYYY-MM-DD, the server's day) names
    the suspect-clock anomaly a sync's measured offset raises."""
    return _Planner(view, source).run(read, today)


@dataclass
class _Stream:
    epoch: int
    parent_epoch: int | None
    base_seq: int
    base_hash: str
    through_seq: int
    head_hash: str


@dataclass
class _Planner:
    view: StreamView
    source: str
    steps: list[Step] = field(default_factory=list)
    inserted: int = 0
    duplicates: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    new_rows: list[NewEventRow] = field(default_factory=list)
    live: bool = True
    forked: bool = False

    def __post_init__(self) -> None:
        self.gate_id = self.view.gate_id
        self.current_epoch = self.view.current_epoch
        self.streams = {
            e: _Stream(s.epoch, s.parent_epoch, s.base_seq, s.base_hash, s.through_seq, s.head_hash)
            for e, s in self.view.streams.items()
        }
        self.positions = dict(self.view.positions)
        self.known = dict(self.view.known)

    # --- reading the streams --------------------------------------------------------------------

    def _parent(self, s: _Stream) -> _Stream | None:
        return self.streams.get(s.parent_epoch) if s.parent_epoch else None

    def held(self, stream: _Stream, seq: int) -> tuple[str, str | None] | None:
        """(hash, event id) of what the stream holds at `seq`; None past it or in a gap."""
        s: _Stream | None = stream
        while s is not None:
            if seq == s.base_seq:
                return s.base_hash, None
            if seq < s.base_seq:
                s = self._parent(s)
                continue
            if seq > s.through_seq:
                return None
            h = self.positions.get((s.epoch, seq))
            return None if h is None else (h.hash, h.event_id)
        return (GENESIS, None) if seq == 0 else None

    def _hold(self, epoch: int, seq: int, held: Held) -> None:
        old = self.positions.get((epoch, seq))
        if (
            old is None
            or _RANK[held.source] > _RANK[old.source]
            or held.source == "rejected" == old.source
        ):
            self.positions[(epoch, seq)] = held

    # --- the batch ------------------------------------------------------------------------------

    def run(self, read: ReadBatch, today: str) -> IngestPlan:
        batch = read.batch
        current = self.streams.get(self.current_epoch)
        if current is None:
            raise NotEnrolled("This gate has not enrolled yet.")
        events = list(read.events)
        stream, live = current, True
        if batch.epoch != current.epoch:
            named = self.streams.get(batch.epoch)
            if named is not None and not self._on_lineage(current, batch, events):
                stream, live = named, False
        if live and batch.head_seq < stream.through_seq:
            at_head = self.held(stream, batch.head_seq)
            if at_head is not None and at_head[0] == batch.head_hash:
                stream = self._fork(
                    stream,
                    base_seq=batch.head_seq,
                    base_hash=batch.head_hash,
                    detail=(
                        f"gate {self.gate_id} came back with a log ending at event "
                        f"{batch.head_seq} while the server holds up to {stream.through_seq}: "
                        "restored from an old copy; it goes on in a new epoch"
                    ),
                    event_ids=[],
                )
        ignored = 0
        if events and events[0].seq > stream.through_seq + 1:
            ignored = len(events)
            events = []
        self.live = live
        for ev in events:
            stream = self._one(stream, ev, self.live)
        self._save(stream)
        closing: list[AnomalyPut | ClockNote] = []
        offset = batch.clock_offset_ms
        if offset is not None and abs(offset) > CLOCK_WARN_MS and self.source == "push":
            closing.append(
                ClockNote(
                    self.gate_id,
                    today,
                    None,
                    f"gate {self.gate_id}: its clock was {offset / 1000:+.0f} s off the server's "
                    f"at a sync on {today}",
                )
            )
        return IngestPlan(
            steps=tuple(self.steps),
            epoch=stream.epoch,
            acked_through_seq=stream.through_seq,
            inserted=self.inserted,
            duplicates=self.duplicates,
            rejected=tuple(self.rejected),
            ignored=ignored,
            forked=self.forked,
            new_rows=tuple(self.new_rows),
            closing=tuple(closing),
        )

    def _on_lineage(self, current: _Stream, batch: PushBatch, events: list[ReadEvent]) -> bool:
        """Does a batch labelled with an older epoch continue the gate's current log?

        True after a lost answer that opened a new epoch; False for an old log's bundle.
        """
        if events:
            first = events[0].wire
            anchor = self.held(current, first.seq - 1)
            if anchor is None or anchor[0] != first.prev_hash:
                return False
            if first.seq <= current.through_seq:
                at = self.held(current, first.seq)
                return at is not None and at[0] == first.hash
            return True
        at_head = self.held(current, batch.head_seq)
        return at_head is not None and at_head[0] == batch.head_hash

    def _one(self, stream: _Stream, read: ReadEvent, live: bool) -> _Stream:
        ev = read.wire
        s = ev.seq
        expected_prev: str | None = stream.head_hash
        if s <= stream.through_seq:
            have = self.held(stream, s)
            if have is not None and have[0] == ev.hash:
                self.duplicates += 1  # duplicate
                return stream
            if have is None:
                # fill: a position the gate's log skipped earlier; link checked backwards.
                before = self.held(stream, s - 1)
                expected_prev = before[0] if before else None
            elif not live:
                eid = read.event_id
                known = self.known.get(eid) if eid else None
                if known is not None and known.hash == ev.hash:
                    # A replayed request: this event is held already, under a later epoch.
                    self.duplicates += 1
                    return stream
                # The gate was restored from a copy older than its current epoch and wrote new
                # events there: everything the current lineage holds past this point leaves the
                # gate's log (kept, handed back by pulls), and it goes on in a new epoch.
                self._orphan_current_lineage(stream)
                before = self.held(stream, s - 1)
                stream = self._fork(
                    stream,
                    base_seq=s - 1,
                    base_hash=before[0] if before else ev.prev_hash,
                    detail=(
                        f"gate {self.gate_id} wrote a different event {s} in epoch {stream.epoch}, "
                        "which it had left (restored from an old copy?); both are kept, the gate "
                        "goes on in a new epoch"
                    ),
                    event_ids=[x for x in (have[1], eid) if x],
                )
                self.live = True
                expected_prev = stream.head_hash
            else:
                # fork: the gate wrote a different event under a number the server holds.
                before = self.held(stream, s - 1)
                stream = self._fork(
                    stream,
                    base_seq=s - 1,
                    base_hash=before[0] if before else ev.prev_hash,
                    detail=(
                        f"gate {self.gate_id} wrote a different event {s} than the one the "
                        "server holds (restored from an old copy?); both are kept, the gate goes "
                        "on in a new epoch"
                    ),
                    event_ids=[x for x in (have[1], read.event_id) if x],
                )
                expected_prev = stream.head_hash
        elif s > stream.through_seq + 1:
            # gap: the batch skips positions of the gate's log.
            missing = f"{stream.through_seq + 1}-{s - 1}"
            self._raise(
                AnomalyPut(
                    anomaly_id("chain_break", self.gate_id, str(stream.epoch), "gap", missing),
                    "chain_break",
                    household=None,
                    gate_id=self.gate_id,
                    event_ids=(),
                    detail=f"gate {self.gate_id}: events {missing} are missing from its log",
                )
            )
            expected_prev = None
        self._append(stream, read, expected_prev)
        if s > stream.through_seq:
            stream.through_seq = s
            stream.head_hash = ev.hash
        return stream

    # --- one event ------------------------------------------------------------------------------

    def _append(self, stream: _Stream, read: ReadEvent, expected_prev: str | None) -> None:
        ev = read.wire
        if not (_HEX64.match(ev.hash) and _HEX64.match(ev.prev_hash)):
            self._reject(stream, read, "invalid", "hash and prev_hash must be 64 lowercase hex")
            return
        text = ev.body
        if chain_hash(ev.prev_hash, text) != ev.hash:
            self._reject(stream, read, "bad_hash", "the body does not hash to the event's hash")
            self._chain_break(stream, read, "was altered: its body does not match its hash")
            return
        body = read.body
        problem = validate_body(ev, body)
        if problem or body is None:
            self._reject(stream, read, "invalid", problem or "no body")
            return
        eid: str = body["event_id"]
        if expected_prev is not None and ev.prev_hash != expected_prev:
            self._chain_break(stream, read, f"does not follow event {ev.seq - 1}")
        known = self.known.get(eid)
        if known is not None:
            if known.hash != ev.hash:
                self._reject(stream, read, "event_id_conflict", "another event has this event_id")
                return
            if (known.gate_id, known.epoch, known.seq) != (self.gate_id, stream.epoch, ev.seq):
                self.steps.append(StoreAlias(stream.epoch, ev.seq, eid, ev.hash))
                self._hold(stream.epoch, ev.seq, Held(ev.hash, eid, "alias"))
                alias = (self.gate_id, stream.epoch, ev.seq)
                if alias not in known.aliases:
                    known = replace(known, aliases=(*known.aliases, alias))
                if self.live and known.gate_id == self.gate_id and known.orphan:
                    self.steps.append(Unorphan(eid))
                    known = replace(known, orphan=False)
                self.known[eid] = known
            self.duplicates += 1
            return
        if body["gate_id"] != self.gate_id and body["gate_id"] in self.view.other_gates:
            self._reject(
                stream,
                read,
                "foreign_gate",
                f"event of {body['gate_id']}: a gate writes only its own",
            )
            return
        row = NewEventRow(
            key=f"{body['wall_time']}|{eid}",
            event_id=eid,
            gate_id=self.gate_id,
            kind=body["kind"],
            direction=body.get("direction"),
            household=body.get("household"),
            serial=body.get("serial"),
            reason=body.get("reason"),
            wall_time=body["wall_time"],
            ref=body.get("ref"),
            overdue=bool(body.get("overdue")),
            clock_offset_ms=body.get("clock_offset_ms"),
            override_reason=body.get("override_reason")
            if isinstance(body.get("override_reason"), str)
            else None,
        )
        # An older epoch's events (a replaced laptop's bundle) are not in the gate's current
        # log: it pulls them like another gate's.
        orphan = not self.live
        self.steps.append(
            StoreEvent(stream.epoch, ev.seq, text, ev.prev_hash, ev.hash, row, orphan)
        )
        self._hold(stream.epoch, ev.seq, Held(ev.hash, eid, "event"))
        self.known[eid] = KnownEvent(ev.hash, self.gate_id, stream.epoch, ev.seq, orphan)
        self.new_rows.append(row)
        self.inserted += 1

    def _reject(self, stream: _Stream, read: ReadEvent, reason: str, detail: str) -> None:
        ev = read.wire
        payload = json.dumps(ev.model_dump(), sort_keys=True, ensure_ascii=False)
        eid = read.event_id
        self.steps.append(Reject(stream.epoch, ev.seq, eid, ev.hash, reason, detail, payload))
        self._hold(stream.epoch, ev.seq, Held(ev.hash, eid, "rejected"))
        self.rejected.append(Rejection(seq=ev.seq, event_id=eid, reason=reason, detail=detail))

    def _chain_break(self, stream: _Stream, read: ReadEvent, what: str) -> None:
        ev = read.wire
        eid = read.event_id
        self._raise(
            AnomalyPut(
                anomaly_id("chain_break", self.gate_id, str(stream.epoch), str(ev.seq), ev.hash),
                "chain_break",
                household=None,
                gate_id=self.gate_id,
                event_ids=(eid,) if eid is not None else (),
                detail=f"gate {self.gate_id} epoch {stream.epoch}: event {ev.seq} {what}",
            )
        )

    def _raise(self, anomaly: AnomalyPut | ClockNote) -> None:
        self.steps.append(RaiseAnomaly(anomaly))

    # --- epochs ---------------------------------------------------------------------------------

    def _orphan(self, epoch: int, after: int, through: int | None) -> None:
        self.steps.append(OrphanRange(epoch, after, through))
        for eid, k in self.known.items():
            spots = [(k.gate_id, k.epoch, k.seq), *k.aliases]
            if not k.orphan and any(
                g == self.gate_id and e == epoch and q > after and (through is None or q <= through)
                for g, e, q in spots
            ):
                self.known[eid] = replace(k, orphan=True)

    def _orphan_current_lineage(self, old: _Stream) -> None:
        """Orphan every event of the gate's current lineage that is not an ancestor of `old`
        (a stream the gate went back to)."""
        ancestors: set[int] = set()
        s: _Stream | None = old
        while s is not None:
            ancestors.add(s.epoch)
            s = self._parent(s)
        s = self.streams.get(self.current_epoch)
        while s is not None and s.epoch not in ancestors:
            self._orphan(s.epoch, s.base_seq, None)
            s = self._parent(s)

    def _fork(
        self, stream: _Stream, *, base_seq: int, base_hash: str, detail: str, event_ids: list[str]
    ) -> _Stream:
        """Open the gate's next epoch from `base_seq`; what the old one held after it is kept
        and handed back to the gate by pulls."""
        self._save(stream)
        epoch = 1 + max(self.streams)
        new = _Stream(epoch, stream.epoch, base_seq, base_hash, base_seq, base_hash)
        self.streams[epoch] = new
        upper = stream.through_seq
        s: _Stream | None = stream
        while s is not None and upper > base_seq:
            low = max(base_seq, s.base_seq)
            self._orphan(s.epoch, low, upper)
            upper = s.base_seq
            s = self._parent(s)
        self.steps.append(OpenEpoch(epoch, stream.epoch, base_seq, base_hash))
        self.current_epoch = epoch
        self.forked = True
        self._raise(
            AnomalyPut(
                anomaly_id("seq_reuse", self.gate_id, str(stream.epoch), str(base_seq), str(epoch)),
                "seq_reuse",
                household=None,
                gate_id=self.gate_id,
                event_ids=tuple(event_ids),
                detail=f"{detail} (epoch {stream.epoch} -> {epoch} after event {base_seq})",
            )
        )
        return new

    def _save(self, stream: _Stream) -> None:
        self.steps.append(SaveStream(stream.epoch, stream.through_seq, stream.head_hash))
