"""Writing what the server sent into the gate's database, each unit in one transaction.

A page of events is stored together with the cursor that covers it, and the households it
touches are re-derived in the same transaction: a crash between the two cannot skip or repeat a
page. A snapshot replaces the reference data and the other gates' events at once, so the gate
app (reading through its own connection) sees either the old picture or the new one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from sqlite_utils import Database

from menwei.core import state
from menwei.core.community import adopt_policy
from menwei.core.errors import PolicyError
from menwei.core.eventlog import canonical
from menwei.core.ordering import order_key_of
from menwei.core.store import Store
from menwei.sync.protocol import (
    AnomalyRecord,
    HouseholdRecord,
    KeyRecord,
    PolicyRecord,
    PushResult,
    ReferenceDelta,
    RemoteEvent,
    RevocationRecord,
    Snapshot,
    without_scan_text,
)


def get_state(store: Store) -> dict[str, str]:
    return {r["key"]: r["value"] for r in store.query("select key, value from sync_state")}


def state_int(values: dict[str, str], key: str, default: int = 0) -> int:
    try:
        return int(values.get(key, default))
    except ValueError:
        return default


def set_state(db: Database, **values: object) -> None:
    """Inside the caller's transaction; None deletes the key."""
    for key, value in values.items():
        if value is None:
            db.execute("delete from sync_state where key = ?", [key])
        else:
            db.execute(
                "insert into sync_state (key, value) values (?, ?) "
                "on conflict(key) do update set value = excluded.value",
                [key, str(value)],
            )


def set_meta(db: Database, **values: object) -> None:
    for key, value in values.items():
        db.execute(
            "insert into meta (key, value) values (?, ?) "
            "on conflict(key) do update set value = excluded.value",
            [key, str(value)],
        )


def local_head(store: Store) -> tuple[int, str]:
    from menwei.core.eventlog import GENESIS

    row = store.one("select seq, hash from events order by seq desc limit 1")
    return (0, GENESIS) if row is None else (int(row["seq"]), str(row["hash"]))


# --- reference data ------------------------------------------------------------------------------


def _households(db: Database, rows: Iterable[HouseholdRecord], now: str) -> None:
    for h in rows:
        if h.deleted:
            db.execute("delete from households where household = ?", [h.household])
            continue
        db.execute(
            "insert into households (household, building, unit, room, building_group, members,"
            " category, contact, updated_at) values (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " on conflict(household) do update set building = excluded.building,"
            " unit = excluded.unit, room = excluded.room, building_group = excluded.building_group,"
            " members = excluded.members, category = excluded.category,"
            " contact = excluded.contact, updated_at = excluded.updated_at",
            [
                h.household,
                h.building,
                h.unit,
                h.room,
                h.group,
                h.members,
                h.category,
                h.contact,
                now,
            ],
        )


def _revocations(db: Database, rows: Iterable[RevocationRecord]) -> None:
    for r in rows:
        if r.deleted:
            db.execute("delete from revocations where household = ?", [r.household])
            continue
        db.execute(
            "insert into revocations (household, min_serial, reason, revoked_at)"
            " values (?, ?, ?, ?) on conflict(household) do update set"
            " min_serial = excluded.min_serial, reason = excluded.reason,"
            " revoked_at = excluded.revoked_at",
            [r.household, r.min_serial, r.reason, r.revoked_at],
        )


def _keys(db: Database, rows: Iterable[KeyRecord], now: str) -> None:
    for k in rows:
        db.execute(
            "insert into keys (kid, public_key, status, created_at) values (?, ?, ?, ?)"
            " on conflict(kid) do update set public_key = excluded.public_key,"
            " status = excluded.status",
            [k.kid, k.public_key, k.status, now],
        )


def _policy(store: Store, policy: PolicyRecord | None, now: str) -> str | None:
    """Adopt the server's policy; a warning (and the old policy kept) if it does not parse."""
    if policy is None:
        return None
    try:
        adopt_policy(store, policy.text, origin="server", now=now)
    except PolicyError as exc:
        return f"the server's policy was not adopted: {exc}"
    return None


def apply_reference(store: Store, delta: ReferenceDelta, *, now: str) -> bool:
    """Apply a reference delta; True when anything changed."""
    with store.write() as db:
        _households(db, delta.households, now)
        _revocations(db, delta.revocations)
        _keys(db, delta.keys, now)
        warning = _policy(store, delta.policy, now)
        set_state(db, ref_version=delta.version, policy_warning=warning)
    return bool(delta.households or delta.revocations or delta.keys or delta.policy)


def apply_snapshot(store: Store, snap: Snapshot, *, now: str) -> set[int]:
    """Swap in a whole snapshot atomically; return the households whose state was re-derived."""
    with store.write() as db:
        db.execute("delete from households")
        db.execute("delete from revocations")
        _households(db, snap.households, now)
        _revocations(db, snap.revocations)
        _keys(db, snap.keys, now)
        known = {k.kid for k in snap.keys}
        for row in list(db.query("select kid from keys")):
            if row["kid"] not in known:
                db.execute("update keys set status = 'retired' where kid = ?", [row["kid"]])
        warning = _policy(store, snap.policy, now)
        db.execute("delete from remote_events")
        _insert_events(db, snap.events)
        db.execute("delete from anomalies where source = 'server'")
        _insert_anomalies(db, snap.anomalies)
        state.rebuild_all(db)
        set_meta(db, community_name=snap.community_name)
        set_state(
            db,
            ref_version=snap.ref_version,
            pull_after_gseq=snap.head_gseq,
            pull_cursor_event=snap.cursor_event_id,
            anomaly_after=snap.anomaly_seq,
            policy_warning=warning,
        )
        touched = {int(r["household"]) for r in db.query("select household from household_state")}
    return touched


# --- events --------------------------------------------------------------------------------------


def _insert_events(db: Database, events: list[RemoteEvent]) -> set[int]:
    """Insert other gates' events (not ones this gate holds itself); their households."""
    if not events:
        return set()
    ids = [str(e.body.get("event_id")) for e in events]
    mine: set[str] = set()
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ",".join("?" for _ in chunk)
        mine |= {
            r[0]
            for r in db.execute(
                f"select event_id from events where event_id in ({marks})", chunk
            ).fetchall()
        }
    households: set[int] = set()
    for e in events:
        # Another gate's pass text is never kept here, even from a server that sent it.
        b: dict[str, Any] = without_scan_text(e.body)
        if b.get("event_id") in mine:
            continue
        db.execute(
            "insert into remote_events (gseq, event_id, gate_id, epoch, seq, kind, direction,"
            " household, reason, headcount, wall_time, ref, body, okey)"
            " values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) on conflict(event_id) do nothing",
            [
                e.gseq,
                b["event_id"],
                e.gate_id,
                e.epoch,
                e.seq,
                b["kind"],
                b.get("direction"),
                b.get("household"),
                b.get("reason"),
                b.get("headcount"),
                b["wall_time"],
                b.get("ref"),
                canonical(b),
                order_key_of(b),
            ],
        )
        if b.get("household") is not None:
            households.add(int(b["household"]))
    return households


def apply_events(
    store: Store, events: list[RemoteEvent], next_after: int, cursor_event_id: str | None
) -> set[int]:
    """Store a page of other gates' events with its cursor; re-derive the households touched."""
    with store.write() as db:
        households = _insert_events(db, events)
        state.rebuild(db, households)
        set_state(db, pull_after_gseq=next_after, pull_cursor_event=cursor_event_id)
    return households


# --- anomalies -----------------------------------------------------------------------------------


def _insert_anomalies(db: Database, anomalies: list[AnomalyRecord]) -> None:
    for a in anomalies:
        db.execute(
            "insert into anomalies (anomaly_id, kind, household, gate_id, event_ids, detail,"
            " detected_at, source, status, updated_at) values (?, ?, ?, ?, ?, ?, ?, 'server', ?, ?)"
            " on conflict(anomaly_id) do update set status = excluded.status,"
            " detail = excluded.detail, event_ids = excluded.event_ids,"
            " updated_at = excluded.updated_at",
            [
                a.anomaly_id,
                a.kind,
                a.household,
                a.gate_id,
                json.dumps(a.event_ids),
                a.detail,
                a.detected_at,
                a.status,
                a.updated_at,
            ],
        )


def apply_anomalies(store: Store, anomalies: list[AnomalyRecord], next_after: int) -> None:
    with store.write() as db:
        _insert_anomalies(db, anomalies)
        set_state(db, anomaly_after=next_after)


# --- push ----------------------------------------------------------------------------------------


def apply_push_result(store: Store, result: PushResult, *, head_seq: int, now: str) -> int:
    """Record what the server acknowledged; return the new acked seq."""
    acked = min(result.acked_through_seq, head_seq)
    with store.write() as db:
        values = get_state(store)
        updates: dict[str, object] = {"acked_through_seq": acked, "push_epoch": result.epoch}
        if result.repull_after is not None and result.repull_after < state_int(
            values, "pull_after_gseq"
        ):
            updates["pull_after_gseq"] = result.repull_after
            updates["pull_cursor_event"] = result.repull_event_id
        set_state(db, **updates)
        if result.epoch != state_int(values, "push_epoch", result.epoch) or result.forked:
            set_meta(db, device_epoch=result.epoch)
        for r in result.rejected:
            db.execute(
                "insert into sync_rejected (seq, event_id, reason, detail, reported_at)"
                " values (?, ?, ?, ?, ?) on conflict(seq) do update set reason = excluded.reason,"
                " detail = excluded.detail, reported_at = excluded.reported_at",
                [r.seq, r.event_id, r.reason, r.detail, now],
            )
    return acked
