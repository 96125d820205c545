"""Notifications that come from the passing of time rather than from a scan.

`collect_due(store, now)` queues, once each (their keys are unique in the outbox):

- `overdue:<exit event_id>`: a household that went out through this gate and is still out past
  the policy's `max_time_out` (a late return at any gate uses the same key, so one trip is one
  message);
- `anomaly:<anomaly_id>`: anomalies the community server found, pulled by the last sync, detected
  in the last two days (unless this gate's anomaly messages are turned off);
- `summary:<group>:<date>` for each building group with a target of its own, and
  `summary:*:<date>` for the community's targets, once the configured time of day has passed.

The gate app calls it in the background; `menwei notify send` calls it before sending.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from menwei.core.clock import iso, parse_iso
from menwei.core.register import day_summary, movement_register
from menwei.core.state import NOT_ANNULLED
from menwei.core.store import Store
from menwei.notify import messages
from menwei.notify.hooks import GateContext, gate_context, household_of
from menwei.notify.messages import Message
from menwei.notify.outbox import has_targets, queue
from menwei.notify.targets import ANOMALIES_KEY, SUMMARY_AT_KEY

ANOMALY_HORIZON = timedelta(days=2)


def parse_summary_time(text: str) -> time:
    try:
        return time.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not a time of day like 21:00") from None


def collect_due(store: Store, now: datetime) -> list[str]:
    """Queue every time-driven notification that is due and not queued yet; their keys."""
    ctx = gate_context(store.db)
    candidates = [*_overdue(store, ctx, now), *_anomalies(store, now), *_summaries(store, ctx, now)]
    if not candidates:
        return []
    queued = []
    with store.write() as db:
        for m in candidates:
            if has_targets(db, m.audience, m.group) and queue(db, m, now=now):
                queued.append(m.key)
    return queued


def _already(store: Store, keys: list[str]) -> set[str]:
    if not keys:
        return set()
    marks = ", ".join("?" for _ in keys)
    return {
        r["dedup_key"]
        for r in store.query(f"select dedup_key from outbox where dedup_key in ({marks})", keys)
    }


def _overdue(store: Store, ctx: GateContext, now: datetime) -> list[Message]:
    limit = ctx.policy.max_time_out
    if limit is None:
        return []
    # Only trips that left through this gate: with several gates, each trip alerts once.
    rows = store.query(
        "select s.household, s.since, s.event_id, s.headcount from household_state s"
        " where s.state = 'out' and s.since <= ? and s.gate_id = ? order by s.since",
        [iso(now - limit), ctx.gate_id],
    )
    keys = [f"overdue:{r['event_id']}" for r in rows]
    done = _already(store, keys)
    result = []
    for key, r in zip(keys, rows, strict=True):
        if key in done:
            continue
        household = household_of(store.db, int(r["household"]))
        if household is None:
            continue
        result.append(
            messages.still_out_alert(
                key=key,
                household=household,
                out_at=ctx.local(parse_iso(r["since"])),
                now=ctx.local(now),
                gate=ctx.gate_name,
                headcount=r["headcount"],
                limit_minutes=int(limit.total_seconds() // 60),
                event_id=r["event_id"],
            )
        )
    return result


def _anomalies(store: Store, now: datetime) -> list[Message]:
    if (store.meta(ANOMALIES_KEY) or "on") != "on":
        return []
    rows = store.query(
        "select * from anomalies a where detected_at >= ? and not exists"
        " (select 1 from outbox o where o.dedup_key = 'anomaly:' || a.anomaly_id)"
        " order by detected_at, anomaly_id",
        [iso(now - ANOMALY_HORIZON)],
    )
    return [
        messages.anomaly_alert(
            key=f"anomaly:{r['anomaly_id']}",
            kind=r["kind"],
            household=household_of(store.db, r["household"]),
            number=r["household"],
            gate_id=r["gate_id"],
            detail=r["detail"],
        )
        for r in rows
    ]


def _summaries(store: Store, ctx: GateContext, now: datetime) -> list[Message]:
    setting = store.meta(SUMMARY_AT_KEY)
    if not setting:
        return []
    try:
        at = parse_summary_time(setting)
    except ValueError:
        return []
    local = ctx.local(now)
    if local.time() < at:
        return []
    day = local.date()
    groups = [
        r["g"]
        for r in store.query(
            "select distinct building_group as g from notify_targets"
            " where building_group is not null order by g"
        )
    ]
    keys = {g: f"summary:{g}:{day.isoformat()}" for g in groups}
    community_key = f"summary:*:{day.isoformat()}"
    done = _already(store, [*keys.values(), community_key])
    result = []
    for group, key in keys.items():
        if key not in done:
            register = movement_register(store, group, day, as_of=now)
            result.append(
                messages.group_summary(
                    register, key=key, escorts=escorts(store, ctx, day, now, group)
                )
            )
    if community_key not in done and has_targets(store.db, "community", None):
        result.append(
            messages.community_summary(
                day_summary(store, day, as_of=now),
                key=community_key,
                escorts=escorts(store, ctx, day, now, None),
            )
        )
    return result


def escorts(
    store: Store, ctx: GateContext, day: date, now: datetime, group: str | None
) -> tuple[int, int]:
    """Returning residents registered on this policy day (each one an escort call), not undone:
    (registrations, people), for one building group or the whole community."""
    start = ctx.policy.day_start(day)
    end = min(ctx.policy.day_start(day + timedelta(days=1)), now)
    sql = (
        "select count(*) as n, coalesce(sum(coalesce(e.headcount, 1)), 0) as people"
        " from all_events e join households h on h.household = e.household"
        f" where e.kind = 'register' and e.wall_time >= ? and e.wall_time < ? and {NOT_ANNULLED}"
    )
    params: list[object] = [iso(start), iso(end)]
    if group is not None:
        sql += " and h.building_group = ?"
        params.append(group)
    row = store.one(sql, params)
    return (int(row["n"]), int(row["people"])) if row else (0, 0)
