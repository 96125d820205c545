"""Anomalies: what the events of several gates say together that no single gate could see.

They are facts, never merged away. Each has a stable id made from its kind and the events (or the
gate and day) it is about, so finding it again is a no-op. When a late sync brings an event that
changes the picture (the missing exit arrives from an offline gate), a sequence anomaly is
`withdrawn`, not deleted: it stays listed with `--all`.

The sequence rules fold a household's trips in the shared order the gates use to derive where a
household is (`core/ordering.py`: hybrid logical clock, then gate, sequence and event id;
annulled events left out), so the server and every gate agree on the state they are about.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from menwei.core.reasons import ANOMALY_WORDS, anomaly_words
from menwei.core.state import direction_of
from menwei.core.text import Text

# The words of every anomaly kind live in one module, with the reason codes'.
KIND_WORDS = ANOMALY_WORDS

SEQUENCE_KINDS = ("double_exit", "entry_without_exit")
# Anomalies about a single event; withdrawn when that event is annulled.
EVENT_KINDS = ("exit_outside_window", "revoked_pass_used", "overdue_return")


def anomaly_id(kind: str, *parts: str) -> str:
    """A stable id: the same facts always give the same id."""
    digest = hashlib.sha256("\x1f".join((kind, *parts)).encode("utf-8")).hexdigest()
    return f"{kind}:{digest[:20]}"


@dataclass(frozen=True)
class Trip:
    """One event that moves a household, as the sequence rules see it."""

    event_id: str
    wall_time: str
    kind: str
    direction: str | None
    gate_id: str
    okey: str | None = None  # its place in the shared order (core/ordering.py)

    @property
    def way(self) -> str | None:
        return direction_of(self.kind, self.direction)

    @property
    def key(self) -> str:
        return self.okey if self.okey is not None else sort_key(self.wall_time, self.event_id)


def sort_key(wall_time: str, event_id: str) -> str:
    """The order of events that carry no order key (wall time, then event id)."""
    return f"{wall_time}|{event_id}"


@dataclass(frozen=True)
class Finding:
    anomaly_id: str
    kind: str
    event_ids: tuple[str, ...]
    gate_id: str
    sort_key: str
    detail: str


@dataclass(frozen=True)
class Fold:
    state: str  # in | out
    last: Trip | None
    findings: tuple[Finding, ...]


def fold_trips(household: int, before: Trip | None, trips: Sequence[Trip]) -> Fold:
    """Walk trips in order from the state `before` left (no trip: the household is in).

    A returning resident's registration is an entry by design, never an anomaly.
    """
    state = "in" if before is None or before.way != "exit" else "out"
    last = before
    findings: list[Finding] = []
    for trip in trips:
        way = trip.way
        if way is None:
            continue
        if way == "exit" and state == "out" and last is not None:
            ids = (last.event_id, trip.event_id)
            findings.append(
                Finding(
                    anomaly_id("double_exit", *ids),
                    "double_exit",
                    ids,
                    trip.gate_id,
                    trip.key,
                    f"household {household}: exit at {last.gate_id} {last.wall_time}, "
                    f"again at {trip.gate_id} {trip.wall_time} with no entry between",
                )
            )
        elif way == "entry" and state == "in" and trip.kind != "register":
            findings.append(
                Finding(
                    anomaly_id("entry_without_exit", trip.event_id),
                    "entry_without_exit",
                    (trip.event_id,),
                    trip.gate_id,
                    trip.key,
                    f"household {household}: entry at {trip.gate_id} {trip.wall_time} "
                    "with no exit before it",
                )
            )
        state = "out" if way == "exit" else "in"
        last = trip
    return Fold(state, last, tuple(findings))


def expected_sequence_anomalies(
    trips_by_household: Mapping[int, Iterable[Trip]],
) -> set[tuple[str, tuple[str, ...]]]:
    """The sequence anomalies of a whole log (for checks): {(kind, event ids)}."""
    found: set[tuple[str, tuple[str, ...]]] = set()
    for household, trips in trips_by_household.items():
        ordered = sorted(trips, key=lambda t: t.key)
        for f in fold_trips(household, None, ordered).findings:
            found.add((f.kind, f.event_ids))
    return found


def words(kind: str) -> Text:
    return anomaly_words(kind)
