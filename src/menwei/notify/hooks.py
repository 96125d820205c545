"""Queueing notifications for gate decisions, inside the decision's own write transaction.

`queue_notifications` runs for every recorded decision. Most scans (green exits and entries) return
at the first test. An alert is an outbox row inserted with the decision's event: both are committed
or neither. No network here, ever: the sender delivers later, so a scan never waits for a chat.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import sqlite_utils

from menwei.core import passes
from menwei.core.clock import parse_iso
from menwei.core.community import community_info, current_policy
from menwei.core.decision import Decision
from menwei.core.eventlog import Event
from menwei.core.gate import household_from_row
from menwei.core.model import Household
from menwei.core.policy import Policy
from menwei.core.state import NOT_ANNULLED
from menwei.core.store import Store
from menwei.core.text import Text
from menwei.notify import messages
from menwei.notify.messages import ALERT_REASONS, Message
from menwei.notify.outbox import has_targets, queue, withdraw_for_event
from menwei.notify.targets import ESCORT_KEY


@dataclass(frozen=True)
class GateContext:
    """What a message says about where it comes from, read from the gate database."""

    community_name: str
    gate_id: str
    gate_name: str
    policy: Policy

    def local(self, at: datetime) -> datetime:
        return self.policy.local(at)


def gate_context(db: sqlite_utils.Database) -> GateContext:
    store = Store(db, None)  # a view on the caller's connection, inside its transaction
    info = community_info(store)
    _, policy = current_policy(store)
    return GateContext(info.name, info.gate_id, info.gate_name, policy)


def household_of(db: sqlite_utils.Database, number: int | None) -> Household | None:
    if number is None:
        return None
    row = next(iter(db.query("select * from households where household = ?", [number])), None)
    if row is None:
        return None
    return household_from_row(row)


def queue_notifications(
    db: sqlite_utils.Database,
    decision: Decision,
    event: Event,
) -> None:
    """Queue the message a decision calls for (an alert for a refused forged/revoked/foreign pass,
    an override, a late return; an escort call for a returning resident registered at the gate),
    if anybody is there to receive it. An undo withdraws what its event queued."""
    message: Message | None
    if event.kind == "annul":
        _undo(db, decision, event)
        return
    if event.kind == "register":
        message = _escort(db, decision, event)
    elif event.kind == "deny":
        if event.reason not in ALERT_REASONS:
            return
        message = _refusal(db, decision, event)
    elif event.kind == "override":
        message = _override(db, decision, event)
    elif event.kind == "entry" and event.overdue:
        message = _late_return(db, decision, event)
    else:
        return
    if message is not None and has_targets(db, message.audience, message.group):
        queue(db, message, now=decision.at)


def _card_key(event: Event, ctx: GateContext, at: datetime) -> str:
    """One alert per card, reason and day: a card scanned five times is one message."""
    card = hashlib.sha256((event.scan or event.event_id).encode()).hexdigest()[:16]
    return f"{event.reason}:{card}:{ctx.policy.policy_day(at).isoformat()}"


def _refusal(db: sqlite_utils.Database, decision: Decision, event: Event) -> Message:
    ctx = gate_context(db)
    other = None
    if event.reason == "foreign_community" and event.scan:
        parsed = passes.parse(event.scan)
        if isinstance(parsed, passes.ParsedPass):
            other = parsed.data.community
    # A forged or unknown-key pass names a household it cannot be trusted for; a revoked one
    # was signed by the committee, so the household is who it says.
    household = household_of(db, event.household) if event.reason == "revoked" else None
    return messages.refusal_alert(
        event.reason,
        key=_card_key(event, ctx, decision.at),
        at=ctx.local(decision.at),
        gate=ctx.gate_name,
        operator=event.operator,
        household=household,
        number=event.household,
        serial=event.serial,
        other_community=other,
        event_id=event.event_id,
    )


def _override(db: sqlite_utils.Database, decision: Decision, event: Event) -> Message | None:
    household = decision.household or household_of(db, event.household)
    if household is None:
        return None
    ctx = gate_context(db)
    return messages.override_alert(
        key=f"override:{event.event_id}",
        at=ctx.local(decision.at),
        gate=ctx.gate_name,
        operator=event.operator,
        household=household,
        direction=event.direction or "exit",
        headcount=event.headcount or decision.headcount,
        override_reason=event.override_reason or "other",
        note=event.note,
        refused_for=event.reason,
        event_id=event.event_id,
    )


def last_exit(db: sqlite_utils.Database, household: int, before: Event) -> dict[str, Any] | None:
    """The exit a return ends: the household's latest exit (or override out) before it."""
    return next(
        iter(
            db.query(
                "select event_id, gate_id, wall_time, headcount from all_events e"
                " where household = ? and wall_time <= ? and event_id != ?"
                " and (kind = 'exit' or (kind = 'override' and direction = 'exit'))"
                f" and {NOT_ANNULLED}"
                " order by wall_time desc, event_id desc limit 1",
                [household, before.wall_time, before.event_id],
            )
        ),
        None,
    )


def _late_return(db: sqlite_utils.Database, decision: Decision, event: Event) -> Message | None:
    household = decision.household or household_of(db, event.household)
    if household is None:
        return None
    ctx = gate_context(db)
    exit_row = last_exit(db, household.number, event)
    limit = ctx.policy.max_time_out
    # Same key as the "not back in time" alert for this trip: one message per overdue trip.
    key = f"overdue:{exit_row['event_id'] if exit_row else event.event_id}"
    return messages.late_return_alert(
        key=key,
        household=household,
        out_at=ctx.local(parse_iso(exit_row["wall_time"])) if exit_row else None,
        back_at=ctx.local(decision.at),
        gate=ctx.gate_name,
        limit_minutes=int(limit.total_seconds() // 60) if limit else None,
        event_id=event.event_id,
    )


def escort_on(db: sqlite_utils.Database) -> bool:
    row = next(iter(db.query("select value from meta where key = ?", [ESCORT_KEY])), None)
    return (row["value"] if row else "on") != "off"


def _escort(db: sqlite_utils.Database, decision: Decision, event: Event) -> Message | None:
    """A returning resident registered at the gate: call the building group's steward. To the
    group's chat; to the community's when the group has none, so somebody still calls."""
    if not escort_on(db):
        return None
    household = decision.household or household_of(db, event.household)
    if household is None:
        return None
    ctx = gate_context(db)
    message = messages.escort_call(
        key=f"escort:{event.event_id}",
        at=ctx.local(decision.at),
        gate=ctx.gate_name,
        operator=event.operator,
        household=household,
        headcount=event.headcount or decision.headcount or 1,
        note=event.note,
        event_id=event.event_id,
    )
    if not has_targets(db, "group", household.group):
        message = replace(message, audience="community")
    return message


def _undo(db: sqlite_utils.Database, decision: Decision, event: Event) -> None:
    """The undone event's messages are withdrawn; those a chat already has get a correction."""
    if not event.ref:
        return
    reached = withdraw_for_event(db, event.ref, decision.at)
    if not reached:
        return
    ctx = gate_context(db)
    for row in reached:
        # What the chat showed first: the topic and where, who, when.
        said = Text(
            f"{row.title.zh} · {row.body.zh.partition(chr(10))[0]}",
            f"{row.title.en} · {row.body.en.partition(chr(10))[0]}",
        )
        correction = messages.withdrawal_notice(
            said,
            key=f"correction:{row.key}",
            at=ctx.local(decision.at),
            gate=ctx.gate_name,
            operator=event.operator,
            group=row.group,
            audience=row.audience,  # type: ignore[arg-type]
            event_id=event.event_id,
        )
        if has_targets(db, correction.audience, correction.group):
            queue(db, correction, now=decision.at)
