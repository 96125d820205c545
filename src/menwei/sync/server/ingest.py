"""Taking in a batch of one gate's events: exactly once, chain checked, nothing dropped.

A gate's log is a run of contiguous sequence numbers linked by hashes. The server follows it as a
*stream* per (gate, epoch) with a high-water mark (`through_seq`, everything up to it is held:
stored, stored under another position, or rejected with a reason) and the hash there.

- A position already held is compared by hash: equal is a duplicate (a retry, a replayed or
  reordered batch); different means the gate's log forked (it was restored from an old copy and
  wrote new events under old numbers). The server then opens a new epoch from the last common
  event, raises `seq_reuse`, keeps both versions, and tells the gate its new epoch. A gate whose
  head is below what the server holds, with the same hash there, is a restored copy: same thing,
  before it has written anything new.
- A batch starting past the high-water mark (it overtook an earlier one) is not taken: the answer
  says where to start again.
- A link that does not match raises `chain_break`; an event whose body does not hash to its hash
  is rejected (kept in `rejected`) and raises `chain_break`.
- Pre-enrollment events (written as `gate-1`) are taken as the pushing gate's own: the hash chain
  covers their bodies, so they are never rewritten; the stored `gate_id` is the server's.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from menwei.core.clock import iso, parse_iso
from menwei.core.eventlog import GENESIS, KINDS, chain_hash
from menwei.sync.anomalies import anomaly_id
from menwei.sync.protocol import CLOCK_WARN_MS, PushBatch, PushResult, Rejection, WireEvent
from menwei.sync.server.detect import (
    AnomalyBook,
    NewEventRow,
    PolicyCache,
    event_anomalies,
    fold_households,
)
from menwei.sync.server.storage import StorageError

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
_INSERT = (
    "insert into events (community_id, event_id, gate_id, epoch, seq, kind, direction, household,"
    " serial, reason, wall_time, ref, overdue, clock_offset_ms, body, prev_hash, hash,"
    " received_at, source, orphan)"
    " values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


@dataclass
class Stream:
    gate_id: str
    epoch: int
    parent_epoch: int | None
    base_seq: int
    base_hash: str
    through_seq: int
    head_hash: str


def load_stream(db: Database, gate_id: str, epoch: int) -> Stream | None:
    row = db.execute(
        "select gate_id, epoch, parent_epoch, base_seq, base_hash, through_seq, head_hash "
        "from streams where gate_id = ? and epoch = ?",
        [gate_id, epoch],
    ).fetchone()
    return None if row is None else Stream(*row)


def create_stream(
    db: Database,
    gate_id: str,
    epoch: int,
    *,
    parent: Stream | None,
    base_seq: int,
    base_hash: str,
    reason: str,
    now: str,
    public_key: str | None = None,
) -> Stream:
    if public_key is None and parent is not None:
        row = db.execute(
            "select public_key from streams where gate_id = ? and epoch = ?",
            [gate_id, parent.epoch],
        ).fetchone()
        public_key = row[0] if row else None
    db.execute(
        "insert into streams (gate_id, epoch, parent_epoch, base_seq, base_hash, through_seq,"
        " head_hash, reason, created_at, public_key) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            gate_id,
            epoch,
            parent.epoch if parent else None,
            base_seq,
            base_hash,
            base_seq,
            base_hash,
            reason,
            now,
            public_key,
        ],
    )
    return Stream(
        gate_id, epoch, parent.epoch if parent else None, base_seq, base_hash, base_seq, base_hash
    )


def held(db: Database, stream: Stream, seq: int) -> tuple[str, str | None] | None:
    """(hash, event id) of what the stream holds at `seq`; None past it or in a gap."""
    s: Stream | None = stream
    while s is not None:
        if seq == s.base_seq:
            return s.base_hash, None
        if seq < s.base_seq:
            s = load_stream(db, s.gate_id, s.parent_epoch) if s.parent_epoch else None
            continue
        if seq > s.through_seq:
            return None
        for sql in (
            "select hash, event_id from events where gate_id = ? and epoch = ? and seq = ?",
            "select hash, event_id from aliases where gate_id = ? and epoch = ? and seq = ?",
            "select hash, event_id from rejected where gate_id = ? and epoch = ? and seq = ? "
            "order by id desc limit 1",
        ):
            row = db.execute(sql, [s.gate_id, s.epoch, seq]).fetchone()
            if row is not None:
                return str(row[0]), row[1]
        return None
    return (GENESIS, None) if seq == 0 else None


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


class Ingest:
    """One batch of one gate, inside the caller's write transaction."""

    def __init__(
        self,
        db: Database,
        *,
        community_id: int,
        gate_id: str,
        current_epoch: int,
        now: datetime,
        source: str,
        policies: PolicyCache,
    ) -> None:
        self.db = db
        self.community_id = community_id
        self.gate_id = gate_id
        self.current_epoch = current_epoch
        self.now = now
        self.now_iso = iso(now)
        self.source = source
        self.policies = policies
        self.book = AnomalyBook(db, community_id, now)
        self.inserted = 0
        self.duplicates = 0
        self.rejected: list[Rejection] = []
        self.new_rows: list[NewEventRow] = []
        self.known: dict[str, tuple[Any, ...]] = {}
        self.bodies: dict[int, dict[str, Any] | None] = {}
        self.live = True
        self.forked = False
        self.repull_after: int | None = None
        self.other_gates = {
            r[0]
            for r in db.execute(
                "select gate_id from gates where community_id = ? and gate_id != ?",
                [community_id, gate_id],
            ).fetchall()
        }

    # --- the batch --------------------------------------------------------------------------

    def run(self, batch: PushBatch) -> PushResult:
        current = load_stream(self.db, self.gate_id, self.current_epoch)
        if current is None:
            raise StorageError("This gate has not enrolled yet.", code="not_enrolled", status=409)
        events = sorted(batch.events, key=lambda e: e.seq)
        stream, live = current, True
        if batch.epoch != current.epoch:
            named = load_stream(self.db, self.gate_id, batch.epoch)
            if named is not None and not self._on_lineage(current, batch, events):
                stream, live = named, False
        if live and batch.head_seq < stream.through_seq:
            at_head = held(self.db, stream, batch.head_seq)
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
        self.bodies = {id(e): parse_body(e.body) for e in events}
        self.known = self._known([self._event_id(e) for e in events])
        ignored = 0
        if events and events[0].seq > stream.through_seq + 1:
            ignored = len(events)
            events = []
        self.live = live
        for ev in events:
            stream = self._one(stream, ev, self.live)
        self._save(stream)
        self._detect()
        self._gate_seen(batch.clock_offset_ms)
        head = self.db.execute("select coalesce(max(gseq), 0) from events").fetchone()[0]
        return PushResult(
            server_time=self.now_iso,
            gate_id=self.gate_id,
            epoch=stream.epoch,
            acked_through_seq=stream.through_seq,
            inserted=self.inserted,
            duplicates=self.duplicates,
            rejected=self.rejected,
            ignored=ignored,
            anomalies=self.book.changed,
            head_gseq=int(head),
            forked=self.forked,
            repull_after=self.repull_after,
            repull_event_id=self._event_at(self.repull_after),
        )

    def _event_at(self, gseq: int | None) -> str | None:
        if not gseq:
            return None
        row = self.db.execute("select event_id from events where gseq = ?", [gseq]).fetchone()
        return None if row is None else str(row[0])

    def _event_id(self, ev: WireEvent) -> str | None:
        body = self.bodies.get(id(ev))
        eid = body.get("event_id") if body else None
        return eid if isinstance(eid, str) else None

    def _known(self, ids: list[Any]) -> dict[str, tuple[Any, ...]]:
        """What the server already holds of these event ids: hash and position."""
        wanted = [i for i in ids if isinstance(i, str)]
        known: dict[str, tuple[Any, ...]] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" for _ in chunk)
            for row in self.db.execute(
                "select event_id, hash, gate_id, epoch, seq, orphan from events "
                f"where event_id in ({marks})",
                chunk,
            ).fetchall():
                known[row[0]] = tuple(row[1:])
        return known

    def _on_lineage(self, current: Stream, batch: PushBatch, events: list[WireEvent]) -> bool:
        """Does a batch labelled with an older epoch continue the gate's current log?

        True after a lost answer that opened a new epoch; False for an old log's bundle.
        """
        if events:
            anchor = held(self.db, current, events[0].seq - 1)
            if anchor is None or anchor[0] != events[0].prev_hash:
                return False
            if events[0].seq <= current.through_seq:
                first = held(self.db, current, events[0].seq)
                return first is not None and first[0] == events[0].hash
            return True
        at_head = held(self.db, current, batch.head_seq)
        return at_head is not None and at_head[0] == batch.head_hash

    def _one(self, stream: Stream, ev: WireEvent, live: bool) -> Stream:
        s = ev.seq
        expected_prev: str | None = stream.head_hash
        if s <= stream.through_seq:
            have = held(self.db, stream, s)
            if have is not None and have[0] == ev.hash:
                self.duplicates += 1
                return stream
            if have is None:
                # A position the gate's log skipped earlier: fill it, link checked backwards.
                before = held(self.db, stream, s - 1)
                expected_prev = before[0] if before else None
            elif not live:
                eid = self._event_id(ev)
                known = self.known.get(eid) if eid else None
                if known is not None and known[0] == ev.hash:
                    # A replayed request: this event is held already, under a later epoch.
                    self.duplicates += 1
                    return stream
                # The gate was restored from a copy older than its current epoch and wrote new
                # events there: everything the current lineage holds past this point leaves the
                # gate's log (kept here, handed back by pulls), and it goes on in a new epoch.
                self._orphan_current_lineage(stream)
                before = held(self.db, stream, s - 1)
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
                before = held(self.db, stream, s - 1)
                stream = self._fork(
                    stream,
                    base_seq=s - 1,
                    base_hash=before[0] if before else ev.prev_hash,
                    detail=(
                        f"gate {self.gate_id} wrote a different event {s} than the one the "
                        "server holds (restored from an old copy?); both are kept, the gate goes "
                        "on in a new epoch"
                    ),
                    event_ids=[x for x in (have[1], self._event_id(ev)) if x],
                )
                expected_prev = stream.head_hash
        elif s > stream.through_seq + 1:
            missing = f"{stream.through_seq + 1}-{s - 1}"
            self.book.put(
                anomaly_id("chain_break", self.gate_id, str(stream.epoch), "gap", missing),
                "chain_break",
                household=None,
                gate_id=self.gate_id,
                event_ids=[],
                detail=f"gate {self.gate_id}: events {missing} are missing from its log",
            )
            expected_prev = None
        self._append(stream, ev, expected_prev)
        if s > stream.through_seq:
            stream.through_seq = s
            stream.head_hash = ev.hash
        return stream

    # --- one event ------------------------------------------------------------------------------

    def _append(self, stream: Stream, ev: WireEvent, expected_prev: str | None) -> None:
        if not (_HEX64.match(ev.hash) and _HEX64.match(ev.prev_hash)):
            self._reject(stream, ev, "invalid", "hash and prev_hash must be 64 lowercase hex")
            return
        text = ev.body
        if chain_hash(ev.prev_hash, text) != ev.hash:
            self._reject(stream, ev, "bad_hash", "the body does not hash to the event's hash")
            self._chain_break(stream, ev, "was altered: its body does not match its hash")
            return
        body = self.bodies.get(id(ev)) or parse_body(text)
        problem = validate_body(ev, body)
        if problem or body is None:
            self._reject(stream, ev, "invalid", problem or "no body")
            return
        eid: str = body["event_id"]
        if expected_prev is not None and ev.prev_hash != expected_prev:
            self._chain_break(stream, ev, f"does not follow event {ev.seq - 1}")
        known = self.known.get(eid)
        if known is not None:
            if known[0] != ev.hash:
                self._reject(stream, ev, "event_id_conflict", "another event has this event_id")
                return
            if (known[1], known[2], known[3]) != (self.gate_id, stream.epoch, ev.seq):
                self.db.execute(
                    "insert into aliases (gate_id, epoch, seq, event_id, hash) values "
                    "(?, ?, ?, ?, ?) on conflict do nothing",
                    [self.gate_id, stream.epoch, ev.seq, eid, ev.hash],
                )
                if self.live and known[1] == self.gate_id and known[4]:
                    self.db.execute("update events set orphan = 0 where event_id = ?", [eid])
                    self.known[eid] = (*known[:4], 0)
            self.duplicates += 1
            return
        if body["gate_id"] != self.gate_id and body["gate_id"] in self.other_gates:
            self._reject(
                stream,
                ev,
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
        self.db.conn.execute(
            _INSERT,
            [
                self.community_id,
                eid,
                self.gate_id,
                stream.epoch,
                ev.seq,
                row.kind,
                row.direction,
                row.household,
                row.serial,
                row.reason,
                row.wall_time,
                row.ref,
                int(row.overdue),
                row.clock_offset_ms,
                text,
                ev.prev_hash,
                ev.hash,
                self.now_iso,
                self.source,
                # An older epoch's events (a replaced laptop's bundle) are not in the gate's
                # current log: it pulls them like another gate's.
                0 if self.live else 1,
            ],
        )
        self.known[eid] = (ev.hash, self.gate_id, stream.epoch, ev.seq, 0 if self.live else 1)
        self.new_rows.append(row)
        self.inserted += 1

    def _reject(self, stream: Stream, ev: WireEvent, reason: str, detail: str) -> None:
        payload = json.dumps(ev.model_dump(), sort_keys=True, ensure_ascii=False)
        eid = self._event_id(ev)
        self.db.execute(
            "insert into rejected (community_id, gate_id, epoch, seq, event_id, hash, reason,"
            " detail, payload, payload_sha256, received_at, source)"
            " values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) on conflict do nothing",
            [
                self.community_id,
                self.gate_id,
                stream.epoch,
                ev.seq,
                eid,
                ev.hash,
                reason,
                detail,
                payload,
                hashlib.sha256(payload.encode()).hexdigest(),
                self.now_iso,
                self.source,
            ],
        )
        self.rejected.append(Rejection(seq=ev.seq, event_id=eid, reason=reason, detail=detail))

    def _chain_break(self, stream: Stream, ev: WireEvent, what: str) -> None:
        eid = self._event_id(ev)
        self.book.put(
            anomaly_id("chain_break", self.gate_id, str(stream.epoch), str(ev.seq), ev.hash),
            "chain_break",
            household=None,
            gate_id=self.gate_id,
            event_ids=[eid] if isinstance(eid, str) else [],
            detail=f"gate {self.gate_id} epoch {stream.epoch}: event {ev.seq} {what}",
        )

    # --- epochs ---------------------------------------------------------------------------------

    def _orphan_current_lineage(self, old: Stream) -> None:
        """Mark as orphaned every event of the gate's current lineage that is not an ancestor
        of `old` (a stream the gate went back to)."""
        ancestors: set[int] = set()
        s: Stream | None = old
        while s is not None:
            ancestors.add(s.epoch)
            s = load_stream(self.db, s.gate_id, s.parent_epoch) if s.parent_epoch else None
        s = load_stream(self.db, self.gate_id, self.current_epoch)
        while s is not None and s.epoch not in ancestors:
            for sql in (
                "update events set orphan = 1 where gate_id = ? and epoch = ? and seq > ?",
                "update events set orphan = 1 where event_id in (select event_id from aliases "
                "where gate_id = ? and epoch = ? and seq > ?)",
            ):
                self.db.execute(sql, [self.gate_id, s.epoch, s.base_seq])
            s = load_stream(self.db, s.gate_id, s.parent_epoch) if s.parent_epoch else None

    def _fork(
        self, stream: Stream, *, base_seq: int, base_hash: str, detail: str, event_ids: list[str]
    ) -> Stream:
        """Open the gate's next epoch from `base_seq`; what the old one held after it is kept
        and handed back to the gate by pulls."""
        self._save(stream)
        epoch = 1 + int(
            self.db.execute(
                "select max(epoch) from streams where gate_id = ?", [self.gate_id]
            ).fetchone()[0]
        )
        new = create_stream(
            self.db,
            self.gate_id,
            epoch,
            parent=stream,
            base_seq=base_seq,
            base_hash=base_hash,
            reason="restored",
            now=self.now_iso,
        )
        upper = stream.through_seq
        s: Stream | None = stream
        while s is not None and upper > base_seq:
            low = max(base_seq, s.base_seq)
            self.db.execute(
                "update events set orphan = 1 where gate_id = ? and epoch = ? and seq > ? "
                "and seq <= ?",
                [self.gate_id, s.epoch, low, upper],
            )
            self.db.execute(
                "update events set orphan = 1 where event_id in (select event_id from aliases "
                "where gate_id = ? and epoch = ? and seq > ? and seq <= ?)",
                [self.gate_id, s.epoch, low, upper],
            )
            upper = s.base_seq
            s = load_stream(self.db, s.gate_id, s.parent_epoch) if s.parent_epoch else None
        self.db.execute("update gates set epoch = ? where gate_id = ?", [epoch, self.gate_id])
        self.current_epoch = epoch
        first = self.db.execute(
            "select min(gseq) from events where gate_id = ? and orphan = 1", [self.gate_id]
        ).fetchone()[0]
        if first is not None:
            after = int(first) - 1
            self.repull_after = (
                after if self.repull_after is None else min(after, self.repull_after)
            )
        self.forked = True
        self.book.put(
            anomaly_id("seq_reuse", self.gate_id, str(stream.epoch), str(base_seq), str(epoch)),
            "seq_reuse",
            household=None,
            gate_id=self.gate_id,
            event_ids=event_ids,
            detail=f"{detail} (epoch {stream.epoch} -> {epoch} after event {base_seq})",
        )
        return new

    def _save(self, stream: Stream) -> None:
        self.db.execute(
            "update streams set through_seq = ?, head_hash = ? where gate_id = ? and epoch = ?",
            [stream.through_seq, stream.head_hash, stream.gate_id, stream.epoch],
        )

    # --- after the events -----------------------------------------------------------------------

    def _detect(self) -> None:
        if not self.new_rows:
            return
        event_anomalies(
            self.db,
            self.community_id,
            self.new_rows,
            self.book,
            received_at=self.now,
            policies=self.policies,
        )
        fold_households(self.db, self.community_id, self.new_rows, self.book)

    def _gate_seen(self, offset_ms: int | None) -> None:
        self.db.execute(
            "update gates set last_seen_at = ?, clock_offset_ms = coalesce(?, clock_offset_ms) "
            "where gate_id = ?",
            [self.now_iso, offset_ms, self.gate_id],
        )
        if offset_ms is not None and abs(offset_ms) > CLOCK_WARN_MS and self.source == "push":
            self.book.clock(
                self.gate_id,
                self.now_iso[:10],
                None,
                f"gate {self.gate_id}: its clock was {offset_ms / 1000:+.0f} s off the server's "
                f"at a sync on {self.now_iso[:10]}",
            )
