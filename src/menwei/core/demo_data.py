"""A made-up but realistic roster for the demo community, and a writer for roster files."""

from __future__ import annotations

import csv
import math
import os
import random
import tempfile
from collections.abc import Sequence
from pathlib import Path

from menwei.core.model import Household
from menwei.core.policy import CATEGORY_ALIASES

MAX_GROUP_SIZE = 60  # 楼组: at most 60 households each
FLOORS = 6
DOORS = 2  # rooms 101, 102, 201 ... 602
_MEMBERS = (1, 2, 3, 4, 5)
_MEMBER_WEIGHTS = (15, 30, 28, 18, 9)
_CATEGORIES = ("normal", "returning_worker", "elderly_alone")
_CATEGORY_WEIGHTS = (85, 10, 5)
_PHONE_PREFIXES = (
    *("133", "135", "136", "137", "138", "139", "150", "151"),
    *("158", "159", "177", "180", "186", "187", "188", "189"),
)

HEADERS_EN = ("household", "building", "unit", "room", "group", "members", "category", "contact")
HEADERS_ZH = ("户号", "楼栋", "单元", "室号", "楼组", "人数", "类别", "联系电话")


def _split(total: int, parts: int, rng: random.Random) -> list[int]:
    """`total` split into `parts` near-equal positive shares, in shuffled order."""
    base, extra = divmod(total, parts)
    shares = [base + (1 if i < extra else 0) for i in range(parts)]
    rng.shuffle(shares)
    return shares


def demo_households(count: int = 300, groups: int = 10, seed: int = 7) -> list[Household]:
    """`count` households in `groups` building groups of 3-5 buildings each, the same every time
    for the same arguments. Household numbers are shuffled (4-digit while they fit)."""
    if count < 1 or groups < 1:
        raise ValueError("count and groups must be at least 1")
    if count > 0xFFFF:
        raise ValueError("household numbers are 1-65535: at most 65,535 households")
    if math.ceil(count / groups) > MAX_GROUP_SIZE:
        raise ValueError(
            f"{count} households in {groups} groups is more than {MAX_GROUP_SIZE} per group"
        )
    rng = random.Random(seed)
    pool = range(1001, 10000) if count <= 8999 else range(1, 0x10000)
    numbers = rng.sample(pool, count)
    households: list[Household] = []
    building = 0
    for group, size in enumerate(_split(count, min(groups, count), rng), 1):
        buildings = min(size, rng.randint(3, 5))
        for in_building in _split(size, buildings, rng):
            building += 1
            units = min(in_building, max(rng.randint(1, 3), math.ceil(in_building / 12)))
            for unit, in_unit in enumerate(_split(in_building, units, rng), 1):
                flats = sorted(rng.sample(range(FLOORS * DOORS), in_unit))
                for flat in flats:
                    floor, door = divmod(flat, DOORS)
                    category = rng.choices(_CATEGORIES, _CATEGORY_WEIGHTS)[0]
                    members = (
                        1
                        if category == "elderly_alone"
                        else rng.choices(_MEMBERS, _MEMBER_WEIGHTS)[0]
                    )
                    contact = f"{rng.choice(_PHONE_PREFIXES)}****{rng.randrange(10000):04d}"
                    households.append(
                        Household(
                            number=numbers[len(households)],
                            building=str(building),
                            unit=str(unit) if units > 1 else "",
                            room=f"{floor + 1}{door + 1:02d}",
                            group=str(group),
                            members=members,
                            category=category,
                            contact=contact,
                        )
                    )
    return households


def _chinese_category(category: str) -> str:
    for alias, canonical in CATEGORY_ALIASES.items():
        if canonical == category:
            return alias
    return category


def write_roster_csv(
    path: Path,
    households: Sequence[Household],
    *,
    encoding: str = "utf-8-sig",
    chinese_headers: bool = True,
) -> Path:
    """Write a roster file `read_roster` accepts (atomically). With `chinese_headers` the
    categories are written in Chinese too (普通, 返岗, 独居老人)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # mkstemp makes the file private (0600), which suits a list of households and phones.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding=encoding, newline="") as f:
            writer = csv.writer(f)
            writer.writerow(HEADERS_ZH if chinese_headers else HEADERS_EN)
            for h in households:
                category = _chinese_category(h.category) if chinese_headers else h.category
                writer.writerow(
                    [
                        h.number,
                        h.building,
                        h.unit,
                        h.room,
                        h.group,
                        h.members,
                        category,
                        h.contact or "",
                    ]
                )
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
