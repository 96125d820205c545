"""Anomalies and the household projection on SQLite, inside the ingest transaction.

The judgements are pure (`rules.py` for one event against the reference data,
`menwei.sync.anomalies.fold_trips` for a household's trips); this module reads what they need
and writes what they find. Sequence anomalies (double exit, entry without exit) and where each
household is come from one fold over the household's trips, re-run from the earliest point a
batch touched.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from menwei.core.clock import iso
from menwei.sync.anomalies import (
    EVENT_KINDS,
    SEQUENCE_KINDS,
    Fold,
    Trip,
    anomaly_id,
    fold_trips,
)
from menwei.sync.server.plan import AnomalyPut, ClockNote, NewEventRow
from menwei.sync.server.rules import PolicyCache, ReferenceView, event_findings
from menwei.sync.server.sql import Tx, member_of

__all__ = ["AnomalyBook", "NewEventRow", "PolicyCache", "event_anomalies", "fold_households"]

TRIP_KINDS = ("exit", "entry", "override", "register")
_PRESENCE_COLUMNS = ("community_id", "household", "state", "since", "gate_id", "event_id", "okey")
_PRESENCE_TYPES = ("bigint", "integer", "text", "text", "text", "text", "text")
_PRESENCE_CONFLICT = (
    "on conflict(community_id, household) do update set "
    "state = excluded.state, since = excluded.since, gate_id = excluded.gate_id, "
    "event_id = excluded.event_id, okey = excluded.okey"
)
_TRIP_SQL = "('exit', 'entry', 'override', 'register')"
MAX_IDS_PER_CLOCK_ANOMALY = 50


def _save_presence(db: Tx, rows: list[tuple[Any, ...]]) -> None:
    """Where households are now, one row each (`_PRESENCE_COLUMNS`), in one statement."""
    db.upsert_many("presence", _PRESENCE_COLUMNS, _PRESENCE_TYPES, rows, _PRESENCE_CONFLICT)


class AnomalyBook:
    """Writes anomalies; every change takes the community's next `aseq`, so gates pull it."""

    def __init__(self, db: Tx, community_id: int, now: datetime) -> None:
        self.db = db
        self.community_id = community_id
        self.now = iso(now)
        self.changed = 0

    def _next_aseq(self) -> int:
        row = self.db.execute(
            "update communities set anomaly_seq = anomaly_seq + 1 where community_id = ? "
            "returning anomaly_seq",
            [self.community_id],
        ).fetchone()
        self.changed += 1
        return int(row[0])

    def put(
        self,
        anomaly_id: str,
        kind: str,
        *,
        household: int | None,
        gate_id: str | None,
        event_ids: Iterable[str],
        detail: str,
        sort_key: str | None = None,
    ) -> None:
        """Raise an anomaly (or open again one that was withdrawn); a no-op when it is open."""
        row = self.db.execute(
            "select status from anomalies where anomaly_id = ?", [anomaly_id]
        ).fetchone()
        if row is None:
            self.db.execute(
                "insert into anomalies (anomaly_id, community_id, aseq, kind, household, gate_id,"
                " event_ids, detail, status, sort_key, detected_at, updated_at)"
                " values (?, ?, ?, ?, ?, ?, ?, ?, 'open', ?, ?, ?)",
                [
                    anomaly_id,
                    self.community_id,
                    self._next_aseq(),
                    kind,
                    household,
                    gate_id,
                    json.dumps(list(event_ids)),
                    detail,
                    sort_key,
                    self.now,
                    self.now,
                ],
            )
        elif row[0] == "withdrawn":
            self.db.execute(
                "update anomalies set status = 'open', aseq = ?, detail = ?, updated_at = ? "
                "where anomaly_id = ?",
                [self._next_aseq(), detail, self.now, anomaly_id],
            )

    def apply(self, finding: AnomalyPut | ClockNote) -> None:
        if isinstance(finding, ClockNote):
            self.clock(finding.gate_id, finding.day, finding.event_id, finding.detail)
            return
        self.put(
            finding.anomaly_id,
            finding.kind,
            household=finding.household,
            gate_id=finding.gate_id,
            event_ids=finding.event_ids,
            detail=finding.detail,
            sort_key=finding.sort_key,
        )

    def withdraw(self, anomaly_id: str, why: str) -> None:
        self.db.execute(
            "update anomalies set status = 'withdrawn', aseq = ?, updated_at = ?, "
            "detail = detail || ? where anomaly_id = ? and status = 'open'",
            [self._next_aseq(), self.now, f" | withdrawn: {why}", anomaly_id],
        )

    def clock(self, gate_id: str, day: str, event_id: str | None, detail: str) -> None:
        """One suspect-clock anomaly per gate and day, listing (some of) its events."""
        aid = anomaly_id("clock_suspect", gate_id, day)
        row = self.db.execute(
            "select event_ids, status from anomalies where anomaly_id = ?", [aid]
        ).fetchone()
        if row is None:
            self.put(
                aid,
                "clock_suspect",
                household=None,
                gate_id=gate_id,
                event_ids=[event_id] if event_id else [],
                detail=detail,
            )
            return
        ids: list[str] = json.loads(row[0])
        if event_id is None or event_id in ids or len(ids) >= MAX_IDS_PER_CLOCK_ANOMALY:
            return
        ids.append(event_id)
        self.db.execute(
            "update anomalies set event_ids = ?, aseq = ?, updated_at = ? where anomaly_id = ?",
            [json.dumps(ids), self._next_aseq(), self.now, aid],
        )


def _trip(row: Any) -> Trip:
    return Trip(row[0], row[1], row[2], row[3], row[4], row[5])


def _write_fold(
    db: Tx,
    community_id: int,
    household: int,
    fold: Fold,
    book: AnomalyBook,
) -> None:
    if fold.last is None:
        db.execute(
            "delete from presence where community_id = ? and household = ?",
            [community_id, household],
        )
    else:
        row = (
            community_id,
            household,
            fold.state,
            fold.last.wall_time,
            fold.last.gate_id,
            fold.last.event_id,
            fold.last.key,
        )
        _save_presence(db, [row])
    for f in fold.findings:
        book.put(
            f.anomaly_id,
            f.kind,
            household=household,
            gate_id=f.gate_id,
            event_ids=f.event_ids,
            detail=f.detail,
            sort_key=f.sort_key,
        )


def resequence(db: Tx, community_id: int, household: int, from_key: str, book: AnomalyBook) -> None:
    """Re-fold a household's trips from `from_key` on: its presence and sequence anomalies."""
    not_annulled = (
        "not exists (select 1 from events a where a.ref = e.event_id and a.kind = 'annul')"
    )
    prev = db.execute(
        "select event_id, wall_time, kind, direction, gate_id, okey from events e "
        f"where community_id = ? and household = ? and kind in {_TRIP_SQL} "
        f"and okey < ? and {not_annulled} "
        "order by okey desc limit 1",
        [community_id, household, from_key],
    ).fetchone()
    rows = db.execute(
        "select event_id, wall_time, kind, direction, gate_id, okey from events e "
        f"where community_id = ? and household = ? and kind in {_TRIP_SQL} "
        f"and okey >= ? and {not_annulled} "
        "order by okey",
        [community_id, household, from_key],
    ).fetchall()
    fold = fold_trips(household, _trip(prev) if prev else None, [_trip(r) for r in rows])
    _write_fold(db, community_id, household, fold, book)
    found = {f.anomaly_id for f in fold.findings}
    marks = ", ".join("?" for _ in SEQUENCE_KINDS)
    for (aid,) in db.execute(
        "select anomaly_id from anomalies where community_id = ? and household = ? "
        f"and kind in ({marks}) and status = 'open' and sort_key >= ?",
        [community_id, household, *SEQUENCE_KINDS, from_key],
    ).fetchall():
        if aid not in found:
            book.withdraw(aid, "a later sync brought events that explain it")


def fold_households(
    db: Tx,
    community_id: int,
    rows: list[NewEventRow],
    book: AnomalyBook,
) -> None:
    """Re-derive the households new events touch.

    Usually the new trips of a household come after everything known of it: they are folded
    on from its presence row, in memory. A trip older than that (a gate that was offline), or
    an annulment, re-folds the household from that point with the whole log.
    """
    trips: dict[int, list[NewEventRow]] = {}
    starts: dict[int, str] = {}
    slow: set[int] = set()
    for r in rows:
        if r.kind in TRIP_KINDS and r.household is not None:
            trips.setdefault(r.household, []).append(r)
            starts[r.household] = min(r.key, starts.get(r.household, r.key))
        elif r.kind == "annul" and r.ref:
            target = db.execute(
                "select household, okey from events where event_id = ?", [r.ref]
            ).fetchone()
            if target is not None and target[0] is not None:
                household = int(target[0])
                key = str(target[1])
                starts[household] = min(key, starts.get(household, key))
                slow.add(household)
    presence: dict[int, Any] = {}
    for cond, params in member_of(db, "household", list(starts), "bigint"):
        for row in db.execute(
            "select household, state, since, gate_id, event_id, okey from presence "
            f"where community_id = ? and {cond}",
            [community_id, *params],
        ).fetchall():
            presence[int(row[0])] = row
    moved: list[tuple[Any, ...]] = []
    for household, key in starts.items():
        here = presence.get(household)
        if household in slow or (here is not None and (here[5] is None or here[5] >= key)):
            resequence(db, community_id, household, key, book)
            continue
        before = None
        if here is not None:
            way = "exit" if here[1] == "out" else "entry"
            before = Trip(here[4], here[2], way, way, here[3], here[5])
        new = sorted(trips[household], key=lambda r: r.key)
        fold = fold_trips(
            household,
            before,
            [Trip(r.event_id, r.wall_time, r.kind, r.direction, r.gate_id, r.key) for r in new],
        )
        last = fold.last
        assert last is not None  # the household has new trips
        moved.append(
            (
                community_id,
                household,
                fold.state,
                last.wall_time,
                last.gate_id,
                last.event_id,
                last.key,
            )
        )
        for f in fold.findings:
            book.put(
                f.anomaly_id,
                f.kind,
                household=household,
                gate_id=f.gate_id,
                event_ids=f.event_ids,
                detail=f.detail,
                sort_key=f.sort_key,
            )
    _save_presence(db, moved)


def load_reference_view(
    db: Tx, community_id: int, rows: list[NewEventRow], cache: PolicyCache
) -> ReferenceView:
    """The reference data a batch's events are judged by, read once per batch."""
    policies = tuple(
        (str(r[0]), str(r[1]), str(r[2]))
        for r in db.execute(
            "select sha256, body, created_at from ref_policies where community_id = ? "
            "order by home_version",
            [community_id],
        ).fetchall()
    )
    numbers = sorted({r.household for r in rows if r.household is not None})
    households: dict[int, tuple[str, str]] = {}
    floors: dict[int, list[tuple[int, str]]] = {}
    for cond, params in member_of(db, "household", numbers, "bigint"):
        for h, group, category in db.execute(
            "select household, building_group, category from ref_households "
            f"where community_id = ? and deleted = 0 and {cond}",
            [community_id, *params],
        ).fetchall():
            households[int(h)] = (group, category)
        for h, serial, at in db.execute(
            "select household, min_serial, revoked_at from revocation_history "
            f"where community_id = ? and {cond}",
            [community_id, *params],
        ).fetchall():
            floors.setdefault(int(h), []).append((int(serial), str(at)))
    return ReferenceView(policies, households, {h: tuple(f) for h, f in floors.items()}, cache)


def event_anomalies(
    db: Tx,
    community_id: int,
    rows: list[NewEventRow],
    book: AnomalyBook,
    *,
    received_at: datetime,
    policies: PolicyCache,
) -> None:
    """The anomalies each new event raises by itself, and what annuls withdraw."""
    view = load_reference_view(db, community_id, rows, policies)
    for r in rows:
        if r.kind == "annul" and r.ref:
            marks = ", ".join("?" for _ in EVENT_KINDS)
            for (aid,) in db.execute(
                f"select anomaly_id from anomalies where community_id = ? and kind in ({marks}) "
                "and status = 'open' and event_ids = ?",
                [community_id, *EVENT_KINDS, json.dumps([r.ref])],
            ).fetchall():
                book.withdraw(aid, "the event was annulled")
        for finding in event_findings(view, r, received_at=received_at):
            book.apply(finding)
