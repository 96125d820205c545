"""The one total order of events that every gate and the server use to say where a household is.

Each event carries `hlc_ms`, a hybrid logical clock in milliseconds written by the gate that
recorded it (DESIGN.md §8, docs/sync.md "The shared order"):

    hlc_ms = max(wall time corrected by the clock offset measured at the last sync,
                 this gate's previous hlc_ms + 1,
                 the household's last known event's hlc_ms + 1)

so a gate's own events keep their log order even when its clock is set back, and an event decided
on a state always sorts after every event that state came from (a pulled exit stamped by a fast
clock cannot jump ahead of the entry that was decided after it). Events of gates that knew
nothing of each other fall in corrected wall-time order. Ties are broken by gate, then sequence,
then event id. The order is one comparable string, the same on every side:

    "{hlc_ms:015d}|{gate_id}|{seq:012d}|{event_id}"

Events written before `hlc_ms` existed use their corrected wall time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from menwei.core.clock import parse_iso

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def wall_ms(at: datetime | str) -> int:
    """Milliseconds since 1970 of a time (an aware datetime or the log's ISO text)."""
    when = parse_iso(at) if isinstance(at, str) else at
    delta = when - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def corrected_ms(at: datetime | str, clock_offset_ms: int | None) -> int:
    """The wall time put right by the measured offset (server minus gate), in milliseconds."""
    return max(0, wall_ms(at) + (clock_offset_ms or 0))


def next_hlc(
    at: datetime, clock_offset_ms: int | None, *, gate_last: int | None, household_last: int | None
) -> int:
    """The `hlc_ms` of a new event (see the module docstring)."""
    value = corrected_ms(at, clock_offset_ms)
    for floor in (gate_last, household_last):
        if floor is not None:
            value = max(value, floor + 1)
    return value


def hlc_of(body: Mapping[str, Any]) -> int:
    """An event's logical time: its `hlc_ms`, or the corrected wall time for older events."""
    value = body.get("hlc_ms")
    if type(value) is int and value >= 0:
        return value
    offset = body.get("clock_offset_ms")
    return corrected_ms(str(body["wall_time"]), offset if type(offset) is int else None)


def order_key(hlc_ms: int, gate_id: str, seq: int, event_id: str) -> str:
    """An event's place in the shared order, as one string (compare strings, never tuples)."""
    return f"{hlc_ms:015d}|{gate_id}|{seq:012d}|{event_id}"


def order_key_of(body: Mapping[str, Any]) -> str:
    """The order key of an event from its body (the JSON every side holds unchanged)."""
    return order_key(hlc_of(body), str(body["gate_id"]), int(body["seq"]), str(body["event_id"]))


def hlc_of_key(key: str | None) -> int | None:
    """The logical time at the front of an order key."""
    if not key:
        return None
    return int(key.split("|", 1)[0])


def key_floor(at_ms: int) -> str:
    """The smallest key at or after a logical time (for range queries over keys)."""
    return f"{at_ms:015d}"


def time_of_ms(ms: int) -> datetime:
    """The aware UTC datetime of a logical time (for policy periods counted in the order)."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def way_of(kind: str, direction: str | None) -> str | None:
    """The way an event moves a household: 'exit', 'entry', or None."""
    if kind == "exit":
        return "exit"
    if kind in ("entry", "register"):
        return "entry"
    if kind == "override":
        return direction
    return None


def settle(trips: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """Where a household is: the last event that moved it, in the shared order.

    `trips` are the household's non-annulled events (dicts with at least kind, direction and
    `okey`); the answer is the one whose way decides the state (None: never moved, so in).
    Gates and the server both call this: one state function.
    """
    last: Mapping[str, Any] | None = None
    for t in sorted(trips, key=lambda t: str(t["okey"])):
        if way_of(str(t["kind"]), t.get("direction")) is not None:
            last = t
    return last
