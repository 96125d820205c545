"""Domain values shared across the core: frozen dataclasses, no behaviour that touches storage."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from menwei.core.text import Text, group_label

Direction = Literal["exit", "entry"]
DirectionChoice = Literal["auto", "exit", "entry"]
Verdict = Literal["green", "amber", "red"]

# The reason codes of DESIGN.md §5, in decision order. A public contract: logs, sync, reports.
REASONS = (
    "not_a_pass",
    "malformed",
    "foreign_community",
    "unknown_key",
    "forged",
    "expired",
    "moved_out",  # the household left the roster (roster remove / import --replace)
    "revoked",
    "unknown_household",
    "already_out",
    "already_in",
    "sealed",
    "outside_window",
    "quota_exceeded",
    "ok",
    "overdue",  # an entry after the longest time out: let in (green) and flagged
)
# Refusals a volunteer may override with a reason; the others (forgery and the like) never.
OVERRIDABLE = frozenset(
    {
        "already_out",
        "already_in",
        "sealed",
        "outside_window",
        "quota_exceeded",
        "expired",
        "unknown_household",
    }
)


@dataclass(frozen=True)
class Household:
    """One household of the roster (一户一证: one pass each)."""

    number: int
    building: str
    unit: str
    room: str
    group: str
    members: int
    category: str = "normal"
    contact: str | None = None

    def address(self) -> Text:
        """'3栋2单元301室' / 'Bldg 3, unit 2, room 301'; a building written '3号楼' stays so."""
        from menwei.core.names import building_display

        b_zh, b_en = building_display(self.building)
        if self.unit:
            return Text(
                f"{b_zh}{self.unit}单元{self.room}室",
                f"{b_en}, unit {self.unit}, room {self.room}",
            )
        return Text(f"{b_zh}{self.room}室", f"{b_en}, room {self.room}")

    def group_name(self) -> Text:
        return group_label(self.group)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class HouseholdState:
    """Where a household is now, as this gate knows it."""

    household: int
    state: Literal["in", "out"]
    since: str | None  # UTC ISO time of the event that put it there
    gate_id: str | None
    event_id: str | None
    headcount: int | None = None
    okey: str | None = None  # the place of that event in the shared order (core/ordering.py)
