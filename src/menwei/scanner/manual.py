"""Manual entry: the volunteer types a household number or an address when the card will not read.

Accepted forms, in ASCII or full-width characters: a household number ("1203"), building-room
("3-301", "3栋301", "3号楼301室", "3#301"), building-unit-room ("3-2-301", "3栋2单元301"). The
result is looked up in the roster and recorded as a manual scan.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from menwei.core.errors import MenweiError

# Words that end a building or a unit, and words that may close a room number.
_BUILDING = re.compile(r"\s*(?:号楼|号|栋|幢|座|#)\s*")
_UNIT = re.compile(r"\s*(?:单元|门)\s*")
_ROOM_END = re.compile(r"\s*(?:室|户|号)$")
_SEPARATORS = re.compile(r"\s*[-–—‐/._\s]\s*")  # dashes as people type them
_PART = re.compile(r"[0-9A-Za-z]{1,8}")


class ManualEntryError(MenweiError):
    """Typed text that is neither a household number nor an address, or matches no household."""


@dataclass(frozen=True)
class ManualQuery:
    """A parsed manual entry: either a household number or an address."""

    raw: str
    number: int | None = None
    building: str | None = None
    unit: str | None = None
    room: str | None = None

    @property
    def text(self) -> str:
        """The canonical form the roster lookup takes: "1203", "3-301" or "3-2-301"."""
        if self.number is not None:
            return str(self.number)
        parts = [self.building, self.unit, self.room]
        return "-".join(p for p in parts if p)


def parse(raw: str) -> ManualQuery:
    """Parse what the volunteer typed; raise ManualEntryError when it is neither form."""
    text = unicodedata.normalize("NFKC", raw).strip()
    text = _ROOM_END.sub("", text)
    text, marked = _BUILDING.subn("-", text, count=1)
    text = _UNIT.sub("-", text, count=1)
    parts = [p for p in _SEPARATORS.split(text) if p]
    if (
        not parts
        or not all(_PART.fullmatch(p) for p in parts)
        or len(parts) > 3
        or (marked and len(parts) < 2)  # "3栋" alone: a building, no room
    ):
        raise ManualEntryError(
            f"{raw!r}: type a household number (1203) or building-room (3-301, 3-2-301, 3栋301)"
        )
    if len(parts) == 1:
        if not parts[0].isdigit() or not 1 <= int(parts[0]) <= 0xFFFF:
            raise ManualEntryError(f"{raw!r}: a household number is 1-65535")
        return ManualQuery(raw, number=int(parts[0]))
    if len(parts) == 2:
        return ManualQuery(raw, building=parts[0].upper(), room=parts[1].upper())
    return ManualQuery(raw, building=parts[0].upper(), unit=parts[1].upper(), room=parts[2].upper())


class HasNumber(Protocol):
    @property
    def number(self) -> int: ...


H = TypeVar("H", bound=HasNumber)


def find_one(raw: str, find: Callable[[str], Sequence[H]]) -> H:
    """The one household `raw` names, looked up with `find` (the gate's `find_households`).

    Raises ManualEntryError when the text does not parse, matches nothing, or matches several
    (the message lists them, so the volunteer can type the household number instead).
    """
    query = parse(raw)
    found = list(find(query.text))
    if len(found) == 1:
        return found[0]
    if not found:
        raise ManualEntryError(f"{raw!r}: no such household in the roster")
    numbers = ", ".join(str(h.number) for h in found[:10])
    raise ManualEntryError(f"{raw!r} matches {len(found)} households ({numbers}): type the number")
