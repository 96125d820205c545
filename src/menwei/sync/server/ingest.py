"""Taking in a batch of one gate's events on SQLite: the plan's applier.

What a batch means (duplicate, fill, fork, gap, append; which stream anomalies) is decided by the
pure plan in `plan.py`. This module loads what the plan needs to see (`load_view`), applies its
steps in the caller's write transaction, then runs the household rules on the new events
(`detect.py`) and answers the gate.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from menwei.core.clock import iso
from menwei.sync.protocol import PushBatch, PushResult
from menwei.sync.server.detect import AnomalyBook, PolicyCache, event_anomalies, fold_households
from menwei.sync.server.plan import (
    Held,
    KnownEvent,
    OpenEpoch,
    OrphanRange,
    RaiseAnomaly,
    ReadBatch,
    Reject,
    SaveStream,
    Step,
    StoreAlias,
    StoreEvent,
    StreamState,
    StreamView,
    Unorphan,
    parse_body,
    plan_ingest,
    read_batch,
    validate_body,
)
from menwei.sync.server.sql import Tx, member_of

__all__ = ["Ingest", "create_stream", "load_stream", "load_view", "parse_body", "validate_body"]

_EVENT_COLUMNS = (
    "gseq",
    "community_id",
    "event_id",
    "gate_id",
    "epoch",
    "seq",
    "kind",
    "direction",
    "household",
    "serial",
    "reason",
    "wall_time",
    "ref",
    "overdue",
    "clock_offset_ms",
    "body",
    "prev_hash",
    "hash",
    "received_at",
    "source",
    "orphan",
    "okey",
)
_STREAM = "epoch, parent_epoch, base_seq, base_hash, through_seq, head_hash"


def load_stream(db: Tx, gate_id: str, epoch: int) -> StreamState | None:
    row = db.execute(
        f"select {_STREAM} from streams where gate_id = ? and epoch = ?", [gate_id, epoch]
    ).fetchone()
    return None if row is None else StreamState(*row)


def create_stream(
    db: Tx,
    gate_id: str,
    epoch: int,
    *,
    parent_epoch: int | None,
    base_seq: int,
    base_hash: str,
    reason: str,
    now: str,
    public_key: str | None = None,
) -> None:
    """A new stream of the gate; its key is the parent's unless given."""
    if public_key is None and parent_epoch is not None:
        row = db.execute(
            "select public_key from streams where gate_id = ? and epoch = ?",
            [gate_id, parent_epoch],
        ).fetchone()
        public_key = row[0] if row else None
    db.execute(
        "insert into streams (gate_id, epoch, parent_epoch, base_seq, base_hash, through_seq,"
        " head_hash, reason, created_at, public_key) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            gate_id,
            epoch,
            parent_epoch,
            base_seq,
            base_hash,
            base_seq,
            base_hash,
            reason,
            now,
            public_key,
        ],
    )


def load_view(
    db: Tx, community_id: int, gate_id: str, current_epoch: int, read: ReadBatch
) -> StreamView:
    """What the server holds that this batch can touch."""
    streams = {
        int(r[0]): StreamState(*r)
        for r in db.execute(
            f"select {_STREAM} from streams where gate_id = ?", [gate_id]
        ).fetchall()
    }
    positions: dict[tuple[int, int], Held] = {}
    seqs = read.seqs
    # A batch is a run of seqs: one range per epoch, and the gate's head.
    head = read.batch.head_seq
    spans = [(head, head)]
    if read.events:
        spans.append((min(e.seq for e in read.events) - 1, max(e.seq for e in read.events)))
    for table, source in (("rejected", "rejected"), ("aliases", "alias"), ("events", "event")):
        order = " order by id" if table == "rejected" else ""
        for epoch in streams:
            for lo, hi in spans:
                for e, seq, h, eid in db.execute(
                    f"select epoch, seq, hash, event_id from {table} "
                    f"where gate_id = ? and epoch = ? and seq between ? and ?{order}",
                    [gate_id, epoch, lo, hi],
                ).fetchall():
                    if int(seq) in seqs:
                        # Later tables win (event over alias over rejected), the newest rejection.
                        positions[(int(e), int(seq))] = Held(str(h), eid, source)
    known: dict[str, KnownEvent] = {}
    aliases: dict[str, list[tuple[str, int, int]]] = {}
    for cond, params in member_of(db, "event_id", read.event_ids, "text"):
        for eid, g, e, q in db.execute(
            f"select event_id, gate_id, epoch, seq from aliases where {cond}", params
        ).fetchall():
            aliases.setdefault(eid, []).append((g, int(e), int(q)))
        for eid, h, g, e, q, orphan in db.execute(
            f"select event_id, hash, gate_id, epoch, seq, orphan from events where {cond}",
            params,
        ).fetchall():
            known[eid] = KnownEvent(h, g, int(e), int(q), bool(orphan))
    known = {
        eid: KnownEvent(k.hash, k.gate_id, k.epoch, k.seq, k.orphan, tuple(aliases.get(eid, ())))
        for eid, k in known.items()
    }
    named = sorted(read.gate_ids(gate_id))
    others: set[str] = set()
    for cond, params in member_of(db, "gate_id", named, "text"):
        others.update(
            str(r[0])
            for r in db.execute(
                f"select gate_id from gates where community_id = ? and {cond}",
                [community_id, *params],
            ).fetchall()
        )
    cloned = db.execute(
        "select 1 from streams where gate_id = ? and reason = 'cloned' limit 1", [gate_id]
    ).fetchone()
    return StreamView(
        gate_id,
        current_epoch,
        streams,
        positions,
        known,
        frozenset(others),
        cloned=cloned is not None,
    )


# Reading and planning a batch is pure Python work: one push of a process does it at a time,
# while the others wait on the database. More at once would only share one GIL among them (and
# with the pulls and status answers of the same worker, which then wait longer for it).
PLANNING = threading.Lock()


class Ingest:
    """One batch of one gate, inside the caller's write transaction."""

    def __init__(
        self,
        db: Tx,
        *,
        community_id: int,
        gate_id: str,
        current_epoch: int,
        now: datetime,
        source: str,
        policies: PolicyCache,
        reserve: Callable[[Tx, int, int], int | None] | None = None,
    ) -> None:
        self.db = db
        self.reserve = reserve
        self.next_gseq: int | None = None
        self.pending: list[list[Any]] = []
        self.community_id = community_id
        self.gate_id = gate_id
        self.current_epoch = current_epoch
        self.now = now
        self.now_iso = iso(now)
        self.source = source
        self.policies = policies
        self.book = AnomalyBook(db, community_id, now)
        self.repull_after: int | None = None

    def run(self, batch: PushBatch) -> PushResult:
        with PLANNING:
            read = read_batch(batch)
        view = load_view(self.db, self.community_id, self.gate_id, self.current_epoch, read)
        with PLANNING:
            plan = plan_ingest(read, view, source=self.source, today=self.now_iso[:10])
        stored = sum(1 for s in plan.steps if isinstance(s, StoreEvent))
        if stored and self.reserve is not None:
            # Numbers in commit order: a backend with concurrent writers hands out a block under
            # a lock held to the commit (PostgreSQL); SQLite's rowid does it by itself.
            self.next_gseq = self.reserve(self.db, self.community_id, stored)
        for step in plan.steps:
            if isinstance(step, StoreEvent):
                self._store_event(step)
            else:
                self._flush()
                self._apply(step)
        self._flush()
        rows = list(plan.new_rows)
        if rows:
            event_anomalies(
                self.db,
                self.community_id,
                rows,
                self.book,
                received_at=self.now,
                policies=self.policies,
            )
            fold_households(self.db, self.community_id, rows, self.book)
        self.db.execute(
            "update gates set last_seen_at = ?, clock_offset_ms = coalesce(?, clock_offset_ms) "
            "where gate_id = ?",
            [self.now_iso, batch.clock_offset_ms, self.gate_id],
        )
        for finding in plan.closing:
            self.book.apply(finding)
        head = self.db.execute(
            "select coalesce(max(gseq), 0) from events where community_id = ?", [self.community_id]
        ).fetchone()[0]
        return PushResult(
            server_time=self.now_iso,
            gate_id=self.gate_id,
            epoch=plan.epoch,
            acked_through_seq=plan.acked_through_seq,
            inserted=plan.inserted,
            duplicates=plan.duplicates,
            rejected=list(plan.rejected),
            ignored=plan.ignored,
            anomalies=self.book.changed,
            head_gseq=int(head),
            forked=plan.forked,
            repull_after=self.repull_after,
            repull_event_id=self._event_at(self.repull_after),
        )

    def _event_at(self, gseq: int | None) -> str | None:
        if not gseq:
            return None
        row = self.db.execute(
            "select event_id from events where community_id = ? and gseq = ?",
            [self.community_id, gseq],
        ).fetchone()
        return None if row is None else str(row[0])

    # --- the steps ------------------------------------------------------------------------------

    def _apply(self, step: Step) -> None:
        match step:
            case StoreEvent():
                self._store_event(step)
                self._flush()
            case StoreAlias():
                self.db.execute(
                    "insert into aliases (gate_id, epoch, seq, event_id, hash) values "
                    "(?, ?, ?, ?, ?) on conflict do nothing",
                    [self.gate_id, step.epoch, step.seq, step.event_id, step.hash],
                )
            case Unorphan():
                self.db.execute("update events set orphan = 0 where event_id = ?", [step.event_id])
            case Reject():
                self.db.execute(
                    "insert into rejected (community_id, gate_id, epoch, seq, event_id, hash,"
                    " reason, detail, payload, payload_sha256, received_at, source)"
                    " values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) on conflict do nothing",
                    [
                        self.community_id,
                        self.gate_id,
                        step.epoch,
                        step.seq,
                        step.event_id,
                        step.hash,
                        step.reason,
                        step.detail,
                        step.payload,
                        hashlib.sha256(step.payload.encode()).hexdigest(),
                        self.now_iso,
                        self.source,
                    ],
                )
            case SaveStream():
                self.db.execute(
                    "update streams set through_seq = ?, head_hash = ? "
                    "where gate_id = ? and epoch = ?",
                    [step.through_seq, step.head_hash, self.gate_id, step.epoch],
                )
            case OrphanRange():
                upper, params = "", [self.gate_id, step.epoch, step.after]
                if step.through is not None:
                    upper = " and seq <= ?"
                    params.append(step.through)
                self.db.execute(
                    f"update events set orphan = 1 where gate_id = ? and epoch = ? and seq > ?"
                    f"{upper}",
                    params,
                )
                self.db.execute(
                    "update events set orphan = 1 where event_id in (select event_id from aliases"
                    f" where gate_id = ? and epoch = ? and seq > ?{upper})",
                    params,
                )
            case OpenEpoch():
                create_stream(
                    self.db,
                    self.gate_id,
                    step.epoch,
                    parent_epoch=step.parent_epoch,
                    base_seq=step.base_seq,
                    base_hash=step.base_hash,
                    reason=step.reason,
                    now=self.now_iso,
                )
                self.db.execute(
                    "update gates set epoch = ? where gate_id = ?", [step.epoch, self.gate_id]
                )
                first = self.db.execute(
                    "select min(gseq) from events where gate_id = ? and orphan = 1",
                    [self.gate_id],
                ).fetchone()[0]
                if first is not None:
                    after = int(first) - 1
                    self.repull_after = (
                        after if self.repull_after is None else min(after, self.repull_after)
                    )
            case RaiseAnomaly():
                self.book.apply(step.anomaly)

    def _flush(self) -> None:
        """Store the events waiting, in order, in one round trip."""
        if self.pending:
            self.db.insert_many("events", _EVENT_COLUMNS, self.pending)
            self.pending = []

    def _store_event(self, step: StoreEvent) -> None:
        row = step.row
        gseq = self.next_gseq
        if gseq is not None:
            self.next_gseq = gseq + 1
        self.pending.append(
            [
                gseq,
                self.community_id,
                row.event_id,
                self.gate_id,
                step.epoch,
                step.seq,
                row.kind,
                row.direction,
                row.household,
                row.serial,
                row.reason,
                row.wall_time,
                row.ref,
                int(row.overdue),
                row.clock_offset_ms,
                step.text,
                step.prev_hash,
                step.hash,
                self.now_iso,
                self.source,
                int(step.orphan),
                row.key,
            ],
        )
