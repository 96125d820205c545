"""Where each household is: derived from every event the gate knows (its own and pulled ones).

The `household_state` table is a cache of this derivation, updated in the same transaction as the
event that changes it and rebuildable at any time with `rebuild()`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlite_utils import Database

from menwei.core.model import HouseholdState

# "Event e was not annulled", written against the two tables so both use their `ref` index
# (a NOT EXISTS over the all_events view scans the whole log).
NOT_ANNULLED = (
    "not exists (select 1 from events a where a.ref = e.event_id and a.kind = 'annul') "
    "and not exists (select 1 from remote_events r where r.ref = e.event_id and r.kind = 'annul')"
)


def direction_of(kind: str, direction: str | None) -> str | None:
    """The way an event moves a household: 'exit', 'entry', or None."""
    if kind == "exit":
        return "exit"
    if kind in ("entry", "register"):
        return "entry"
    if kind == "override":
        return direction
    return None


def get(db: Database, household: int) -> HouseholdState:
    row = next(
        iter(db.query("select * from household_state where household = ?", [household])), None
    )
    if row is None:
        return HouseholdState(household, "in", None, None, None)
    return HouseholdState(
        household,
        row["state"],
        row["since"],
        row["gate_id"],
        row["event_id"],
        row["headcount"],
    )


def apply(db: Database, household: int, event: dict[str, Any]) -> None:
    """Move a household by one new event (kind, direction, wall_time, gate_id, event_id...)."""
    way = direction_of(event["kind"], event.get("direction"))
    if way is None:
        return
    db.execute(
        "insert into household_state (household, state, since, gate_id, event_id, headcount, window)"
        " values (?, ?, ?, ?, ?, ?, ?) on conflict(household) do update set state = excluded.state,"
        " since = excluded.since, gate_id = excluded.gate_id, event_id = excluded.event_id,"
        " headcount = excluded.headcount, window = excluded.window",
        [
            household,
            "out" if way == "exit" else "in",
            event["wall_time"],
            event["gate_id"],
            event["event_id"],
            event.get("headcount"),
            event.get("window"),
        ],
    )


def rebuild(db: Database, households: Iterable[int]) -> None:
    """Re-derive the state of these households from all events, in time order, minus annulled."""
    for household in set(households):
        rows = list(
            db.query(
                "select * from all_events e where household = ? and kind in "
                f"('exit', 'entry', 'override', 'register') and {NOT_ANNULLED} "
                "order by wall_time, event_id",
                [household],
            )
        )
        db.execute("delete from household_state where household = ?", [household])
        for row in rows:
            apply(db, household, row)


def rebuild_all(db: Database) -> None:
    ids = [
        r["household"]
        for r in db.query("select distinct household from all_events where household is not null")
    ]
    db.execute("delete from household_state")
    rebuild(db, ids)
