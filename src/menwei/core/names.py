"""Names as the roster writes them, and the one resolver every command uses to find them.

A roster says `第3楼组` and `12号楼`; people type `3楼组`, `3`, `12栋`, `12`. menwei keeps the name
as written for display and print, and compares names by a *key* that drops the usual decorations:

| kind     | written                          | key   |
|----------|----------------------------------|-------|
| group    | 第3楼组, 3楼组, 3组, 第3组, 3, ３ | 3     |
| group    | A区1组, 东区第一楼组             | a区1, 东区第一 |
| building | 12号楼, 12栋, 12幢, 12号, 12     | 12    |

`resolve_group` / `resolve_building` turn what a person typed into the roster's own name (exact
match first, then by key); every option and policy key that names a group or building goes
through them (`roster list --group`, `report register --group`, `notify add --group`, the policy's
`levels` and windows, the gate app's log filter).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable, Iterable

_GROUP_DECOR = re.compile(r"^第?\s*(?P<k>.+?)\s*(?:楼组|组)$")
_BUILDING_DECOR = re.compile(r"^(?P<k>.+?)\s*(?:号楼|号栋|栋|幢|号|楼)$")
_UNIT_DECOR = re.compile(r"^(?P<k>.+?)\s*(?:单元|号)$")
_ROOM_DECOR = re.compile(r"^(?P<k>.+?)\s*(?:室|号)$")


def clean(value: str) -> str:
    """NFKC (full-width digits and letters to half-width), trimmed, inner runs of space as one."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", value)).strip()


def _key(value: str, pattern: re.Pattern[str]) -> str:
    text = clean(value).lower()
    match = pattern.match(text)
    if match and match.group("k").strip():
        text = match.group("k").strip()
    if text.isdigit():
        text = text.lstrip("0") or "0"
    return text


@functools.lru_cache(maxsize=65536)
def group_key(name: str) -> str:
    """'第3楼组', '3楼组', '3组', '3' -> '3'; 'A区1组' -> 'a区1'."""
    return _key(name, _GROUP_DECOR)


@functools.lru_cache(maxsize=65536)
def building_key(name: str) -> str:
    """'12号楼', '12栋', '12幢', '12' -> '12'."""
    return _key(name, _BUILDING_DECOR)


def unit_key(name: str) -> str:
    """'2单元', '2' -> '2'."""
    return _key(name, _UNIT_DECOR) if name.strip() else ""


def room_key(name: str) -> str:
    """'301室', '301' -> '301'."""
    return _key(name, _ROOM_DECOR)


def address_key(building: str, unit: str, room: str) -> str:
    """The key an address is known by across re-imports: '3号楼', '2单元', '301室' -> '3-2-301'."""
    return f"{building_key(building)}-{unit_key(unit)}-{room_key(room)}"


def natural_key(value: str) -> tuple[tuple[int, int | str], ...]:
    """A sort key that puts '2' before '10' and '第2楼组' before '第10楼组'."""
    return tuple(
        (0, int(part)) if part.isdigit() else (1, part)
        for part in re.split(r"(\d+)", clean(value))
        if part
    )


def natural_sorted(values: Iterable[str]) -> list[str]:
    return sorted(values, key=natural_key)


def _resolve(query: str, known: Iterable[str], keyfn: Callable[[str], str]) -> list[str]:
    names = list(dict.fromkeys(known))
    text = clean(query)
    if not text:
        return []
    exact = [n for n in names if clean(n) == text]
    if exact:
        return exact
    wanted = keyfn(text)
    return natural_sorted(n for n in names if keyfn(n) == wanted)


def resolve_group(query: str, known: Iterable[str]) -> str | None:
    """The roster's own name of the group a person typed, or None when no (or more than one)
    group matches. `known` is the roster's group names as written."""
    found = _resolve(query, known, group_key)
    return found[0] if len(found) == 1 else None


def resolve_building(query: str, known: Iterable[str]) -> str | None:
    """The roster's own name of the building a person typed, or None (see `resolve_group`)."""
    found = _resolve(query, known, building_key)
    return found[0] if len(found) == 1 else None


def group_matches(query: str, known: Iterable[str]) -> list[str]:
    """Every roster group a typed name could mean (more than one: ambiguous)."""
    return _resolve(query, known, group_key)


def building_matches(query: str, known: Iterable[str]) -> list[str]:
    return _resolve(query, known, building_key)


def building_display(name: str) -> tuple[str, str]:
    """(Chinese, English) of a building as printed: '12号楼' stays, a bare '12' becomes '12栋'."""
    text = clean(name)
    key = building_key(text)
    zh = text if key != text.lower() else f"{text}栋"
    return zh, f"Bldg {key}" if key.isascii() else f"Bldg {text}"


def suggest(word: str, choices: Iterable[str]) -> str | None:
    """The nearest of `choices` to a misspelt or unknown `word` (None when nothing is near)."""
    import difflib

    pool = list(choices)
    found = difflib.get_close_matches(word, pool, n=1, cutoff=0.5)
    if found:
        return found[0]
    # Chinese headers: a shared character is a good hint ('手机号码' ~ '手机号').
    best, best_score = None, 0.0
    for c in pool:
        common = len(set(word) & set(c))
        score = common / max(len(set(word)), 1)
        if common >= 2 and score > best_score:
            best, best_score = c, score
    return best
