"""The outbox: notifications wait in the gate database until every target has them.

A message is queued in the same transaction as its cause, under a unique `dedup_key`, so a cause
queues it once however often it is seen. A sender *claims* a message before sending it (a lease
written in its own short transaction), so two senders (the gate app's and a cron job's) never
send the same message at once. Each target's success is recorded as soon as it is known
(`notify_deliveries`): a message that reached one chat but not another is retried only to the
other, with exponential back-off and jitter, until all of its targets have it. Nothing is ever
dropped: a message waits as long as it takes.

Statuses: `pending` (not tried yet, or waiting for a target), `failed` (the last attempt failed
for at least one target; it will be tried again at `next_attempt_at`), `sent` (every target has it).
A message whose gate record was undone before any target had it is *withdrawn* (`withdrawn_at`):
it is kept but never sent.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlite_utils import Database

from menwei.core.clock import iso
from menwei.core.store import Store
from menwei.core.text import Text
from menwei.notify.messages import Message

FIRST_RETRY = timedelta(seconds=30)
LONGEST_RETRY = timedelta(hours=1)
# How long a claimed message is left to its sender before another may take it over.
LEASE = timedelta(minutes=10)
# A message nobody can receive (its targets were removed) is looked at again after this.
NO_TARGET_RETRY = timedelta(hours=1)
NO_TARGET = "no notification target for this message"


@dataclass(frozen=True)
class Target:
    id: int
    url: str
    group: str | None
    lang: str
    created_at: str


@dataclass(frozen=True)
class OutboxRow:
    id: int
    key: str
    topic: str
    group: str | None
    audience: str
    title: Text
    body: Text
    severity: str
    event_id: str | None
    status: str
    attempts: int
    created_at: str
    next_attempt_at: str
    last_error: str | None
    sent_at: str | None
    leased_until: str | None = None
    withdrawn_at: str | None = None

    def text(self, lang: str) -> tuple[str, str]:
        """(title, body) in the target's language."""
        return self.title.get(lang), self.body.get(lang)


def _row(r: dict[str, Any]) -> OutboxRow:
    return OutboxRow(
        id=int(r["id"]),
        key=r["dedup_key"],
        topic=r["topic"],
        group=r["building_group"],
        audience=r["audience"],
        title=Text(r["title"], r["title_en"] or r["title"]),
        body=Text(r["body"], r["body_en"] or r["body"]),
        severity=r["severity"],
        event_id=r["event_id"],
        status=r["status"],
        attempts=int(r["attempts"]),
        created_at=r["created_at"],
        next_attempt_at=r["next_attempt_at"],
        last_error=r["last_error"],
        sent_at=r["sent_at"],
        leased_until=r.get("leased_until"),
        withdrawn_at=r.get("withdrawn_at"),
    )


def target_from_row(r: dict[str, Any]) -> Target:
    return Target(int(r["id"]), r["url"], r["building_group"], r["lang"], r["created_at"])


# --- queueing (inside the caller's transaction) --------------------------------------------------


_AUDIENCE_SQL = {
    "community": "building_group is null",
    "group": "building_group = ?",
    "both": "(building_group is null or building_group = ?)",
}


def _audience_where(audience: str, group: str | None) -> tuple[str, list[Any]]:
    if audience == "community" or group is None:
        if audience == "group":
            return "0", []
        return _AUDIENCE_SQL["community"], []
    return _AUDIENCE_SQL[audience], [group]


def has_targets(db: Database, audience: str, group: str | None) -> bool:
    """Whether anybody would receive a message for this audience (no target: nothing is queued)."""
    where, params = _audience_where(audience, group)
    row = next(
        iter(db.query(f"select exists(select 1 from notify_targets where {where}) as x", params))
    )
    return bool(row["x"])


def queue(db: Database, message: Message, *, now: datetime) -> bool:
    """Queue a message inside the caller's transaction; False when its key was already queued."""
    cursor = db.execute(
        "insert into outbox (dedup_key, created_at, topic, building_group, audience, title, body,"
        " title_en, body_en, severity, event_id, status, attempts, next_attempt_at)"
        " values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?)"
        " on conflict(dedup_key) do nothing",
        [
            message.key,
            iso(now),
            message.topic,
            message.group,
            message.audience,
            message.title.zh,
            message.body.zh,
            message.title.en,
            message.body.en,
            message.severity,
            message.event_id,
            iso(now),
        ],
    )
    return cursor.rowcount == 1


# --- sending (each step its own short transaction, never around network I/O) --------------------


def due(store: Store, now: datetime, *, force: bool = False, limit: int = 100) -> list[OutboxRow]:
    """Messages not yet sent whose time has come (with `force`, also those still backing off),
    oldest first; never one another sender holds."""
    stamp = iso(now)
    sql = (
        "select * from outbox where status != 'sent' and withdrawn_at is null"
        " and (leased_until is null or leased_until <= ?)"
    )
    params: list[Any] = [stamp]
    if not force:
        sql += " and next_attempt_at <= ?"
        params.append(stamp)
    sql += f" order by id limit {int(limit)}"
    return [_row(r) for r in store.query(sql, params)]


def claim(store: Store, row: OutboxRow, now: datetime) -> OutboxRow | None:
    """Take a message for sending; None when another sender has taken it (or it was sent)."""
    with store.write() as db:
        cursor = db.execute(
            "update outbox set leased_until = ?, attempts = attempts + 1"
            " where id = ? and status != 'sent' and attempts = ? and withdrawn_at is null"
            " and (leased_until is null or leased_until <= ?)",
            [iso(now + LEASE), row.id, row.attempts, iso(now)],
        )
        if cursor.rowcount != 1:
            return None
    got = store.one("select * from outbox where id = ?", [row.id])
    return _row(got) if got else None


def targets_for(store: Store, row: OutboxRow) -> list[Target]:
    where, params = _audience_where(row.audience, row.group)
    return [
        target_from_row(r)
        for r in store.query(f"select * from notify_targets where {where} order by id", params)
    ]


def delivered(store: Store, outbox_id: int) -> set[int]:
    return {
        int(r["target_id"])
        for r in store.query(
            "select target_id from notify_deliveries where outbox_id = ? and status = 'sent'",
            [outbox_id],
        )
    }


def record_delivery(
    store: Store, outbox_id: int, target_id: int, *, ok: bool, error: str | None, now: datetime
) -> None:
    """Write down one target's result at once, so a crash later never sends it to them again."""
    stamp = iso(now)
    with store.write() as db:
        db.execute(
            "insert into notify_deliveries (outbox_id, target_id, status, attempts, last_error,"
            " updated_at, sent_at) values (?, ?, ?, 1, ?, ?, ?)"
            " on conflict(outbox_id, target_id) do update set status = excluded.status,"
            " attempts = notify_deliveries.attempts + 1, last_error = excluded.last_error,"
            " updated_at = excluded.updated_at, sent_at = excluded.sent_at"
            " where notify_deliveries.status != 'sent'",
            [outbox_id, target_id, "sent" if ok else "failed", error, stamp, stamp if ok else None],
        )


def retry_delay(attempts: int, rng: random.Random | None = None) -> timedelta:
    """30 s, 1 min, 2 min... up to an hour, each ±20 % so senders do not retry in step."""
    base = FIRST_RETRY * (1 << max(0, min(attempts - 1, 16)))
    base = min(base, LONGEST_RETRY)
    factor: float = (rng or random).uniform(0.8, 1.2)
    return base * factor


def mark_sent(store: Store, outbox_id: int, now: datetime) -> None:
    with store.write() as db:
        db.execute(
            "update outbox set status = 'sent', sent_at = ?, last_error = null,"
            " leased_until = null where id = ?",
            [iso(now), outbox_id],
        )


def mark_failed(
    store: Store, row: OutboxRow, error: str, now: datetime, rng: random.Random | None = None
) -> datetime:
    """The attempt failed for some target: try again later. Returns when."""
    when = now + retry_delay(row.attempts, rng)
    with store.write() as db:
        db.execute(
            "update outbox set status = 'failed', last_error = ?, next_attempt_at = ?,"
            " leased_until = null where id = ? and status != 'sent'",
            [error[:500], iso(when), row.id],
        )
    return when


def mark_waiting(store: Store, row: OutboxRow, now: datetime) -> None:
    """No target would receive it (they were removed): look again later, keep it."""
    with store.write() as db:
        db.execute(
            "update outbox set status = 'pending', last_error = ?, next_attempt_at = ?,"
            " attempts = max(attempts - 1, 0), leased_until = null"
            " where id = ? and status != 'sent'",
            [NO_TARGET, iso(now + NO_TARGET_RETRY), row.id],
        )


# --- reading -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    target_id: int
    status: str
    attempts: int
    last_error: str | None
    sent_at: str | None


def deliveries(store: Store, outbox_ids: Sequence[int]) -> dict[int, list[Delivery]]:
    if not outbox_ids:
        return {}
    marks = ", ".join("?" for _ in outbox_ids)
    result: dict[int, list[Delivery]] = {}
    for r in store.query(
        f"select * from notify_deliveries where outbox_id in ({marks}) order by target_id",
        list(outbox_ids),
    ):
        result.setdefault(int(r["outbox_id"]), []).append(
            Delivery(
                int(r["target_id"]), r["status"], int(r["attempts"]), r["last_error"], r["sent_at"]
            )
        )
    return result


def counts(store: Store) -> dict[str, int]:
    found = {
        r["s"]: int(r["n"])
        for r in store.query(
            "select case when withdrawn_at is not null and status != 'sent' then 'withdrawn'"
            " else status end as s, count(*) as n from outbox group by s"
        )
    }
    return {s: found.get(s, 0) for s in ("pending", "failed", "sent", "withdrawn")}


def waiting(store: Store, *, limit: int = 200) -> list[OutboxRow]:
    """Messages not sent yet, oldest first."""
    return [
        _row(r)
        for r in store.query(
            "select * from outbox where status != 'sent' and withdrawn_at is null"
            f" order by id limit {int(limit)}"
        )
    ]


def recent_sent(store: Store, *, limit: int = 20) -> list[OutboxRow]:
    return [
        _row(r)
        for r in store.query(
            f"select * from outbox where status = 'sent' order by id desc limit {int(limit)}"
        )
    ]


# --- undo ----------------------------------------------------------------------------------------


def withdraw_for_event(db: Database, event_id: str, now: datetime) -> list[OutboxRow]:
    """Inside the undo's transaction: withdraw the messages this gate event queued. Those that
    no target has yet are simply never sent; the ones returned had reached a target already (or
    were being sent at this moment) and call for a correction."""
    stamp = iso(now)
    rows = [
        _row(r)
        for r in db.query(
            "select * from outbox where event_id = ? and withdrawn_at is null"
            " and topic != 'correction' order by id",
            [event_id],
        )
    ]
    reached = []
    for row in rows:
        any_sent = next(
            iter(
                db.query(
                    "select exists(select 1 from notify_deliveries where outbox_id = ?"
                    " and status = 'sent') as x",
                    [row.id],
                )
            )
        )["x"]
        in_flight = row.leased_until is not None and row.leased_until > stamp
        db.execute("update outbox set withdrawn_at = ? where id = ?", [stamp, row.id])
        if any_sent or row.status == "sent" or in_flight:
            reached.append(row)
    return reached
