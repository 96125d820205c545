"""Where each household is: derived from every event the gate knows (its own and pulled ones).

One pure rule, shared with the server (`ordering.settle`): a household is where the last of its
non-annulled trips put it, in the shared order of `ordering.order_key`. The `household_state`
table is a cache of it, updated in the same transaction as the event that changes it and
recomputed whenever an event for the household arrives; `rebuild()` re-derives it at any time.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlite_utils import Database

from menwei.core.model import HouseholdState
from menwei.core.ordering import settle, way_of

# "Event e was not annulled", written against the two tables so both use their `ref` index
# (a NOT EXISTS over the all_events view scans the whole log).
NOT_ANNULLED = (
    "not exists (select 1 from events a where a.ref = e.event_id and a.kind = 'annul') "
    "and not exists (select 1 from remote_events r where r.ref = e.event_id and r.kind = 'annul')"
)


def direction_of(kind: str, direction: str | None) -> str | None:
    """The way an event moves a household: 'exit', 'entry', or None."""
    return way_of(kind, direction)


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
        row.get("okey"),
    )


def _put(db: Database, household: int, event: dict[str, Any]) -> None:
    way = direction_of(event["kind"], event.get("direction"))
    db.execute(
        "insert into household_state (household, state, since, gate_id, event_id, headcount,"
        " window, okey) values (?, ?, ?, ?, ?, ?, ?, ?) on conflict(household) do update set"
        " state = excluded.state, since = excluded.since, gate_id = excluded.gate_id,"
        " event_id = excluded.event_id, headcount = excluded.headcount,"
        " window = excluded.window, okey = excluded.okey",
        [
            household,
            "out" if way == "exit" else "in",
            event["wall_time"],
            event["gate_id"],
            event["event_id"],
            event.get("headcount"),
            event.get("window"),
            event.get("okey"),
        ],
    )


def apply(db: Database, household: int, event: dict[str, Any]) -> None:
    """Move a household by one new event that sorts after everything known of it (the gate's
    own events do, by construction of their `hlc_ms`); anything else is a `rebuild`."""
    if direction_of(event["kind"], event.get("direction")) is None:
        return
    current = get(db, household)
    if current.okey is not None and str(event.get("okey") or "") <= current.okey:
        rebuild(db, [household])
        return
    _put(db, household, event)


def rebuild(db: Database, households: Iterable[int]) -> None:
    """Re-derive the state of these households from all their events, in the shared order."""
    for household in set(households):
        rows = list(
            db.query(
                "select * from all_events e where household = ? and kind in "
                f"('exit', 'entry', 'override', 'register') and {NOT_ANNULLED}",
                [household],
            )
        )
        last = settle(rows)
        if last is None:
            db.execute("delete from household_state where household = ?", [household])
        else:
            _put(db, household, dict(last))


def rebuild_all(db: Database) -> None:
    ids = [
        r["household"]
        for r in db.query("select distinct household from all_events where household is not null")
    ]
    db.execute("delete from household_state")
    rebuild(db, ids)
