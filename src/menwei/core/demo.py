"""The built-in demo community: a realistic roster, staggered windows and printed passes, so the
gate app can be tried with no camera, no roster and no server.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from menwei.core.clock import iso
from menwei.core.community import adopt_policy, init_community
from menwei.core.home import Home
from menwei.core.issuing import IssuedPass, issue
from menwei.core.store import Store

DEMO_COMMUNITY = 4242
DEMO_NAME = "钟楼居民区(演示)"
TZ = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True)
class DemoResult:
    home: Home
    households: int
    groups: int
    passes_dir: Path
    pdfs: list[Path]
    issued: list[IssuedPass]


def _hm(minutes: int) -> str:
    minutes = max(0, min(minutes, 24 * 60))
    return "24:00" if minutes == 24 * 60 else f"{minutes // 60:02d}:{minutes % 60:02d}"


def demo_policy(
    now: datetime, groups: list[str], sealed_building: str, precaution_building: str
) -> str:
    """Staggered windows placed around `now`: some groups may leave now, others later."""
    local = now.astimezone(TZ)
    m = local.hour * 60  # windows start on the hour, as a committee would set them
    lines = [
        f"# Demo policy, made {local:%Y-%m-%d %H:%M}: some groups may leave now, others later.",
        'timezone = "Asia/Shanghai"',
        'day_starts = "04:00"',
        'max_time_out = "2h"',
        'override_reasons = ["medical", "emergency", "work", "other"]',
        'default_level = "normal"',
        "",
        "[quota]",
        "trips = 2",
        "days = 1",
        "persons = 2",
        'applies_to = ["precaution"]',
        "",
        "[levels]",
        f'"{sealed_building}" = "sealed"',
        f'"{precaution_building}" = "precaution"',
        "",
    ]
    half = max(1, len(groups) // 2)
    for i, group in enumerate(groups):
        if i < half:  # open now
            start, end = max(0, m - 60 - 30 * i), min(24 * 60, m + 120)
        else:  # opens later today (or, late at night, early tomorrow morning)
            k = i - half
            start = m + 60 + 60 * k
            end = start + 60
            if end > 24 * 60:
                start, end = 6 * 60 + 30 * k, 7 * 60 + 30 * k
        if start >= end:
            start, end = 0, 24 * 60
        lines += [
            "[[windows]]",
            f'groups = ["{group}"]',
            f'start = "{_hm(start)}"',
            f'end = "{_hm(end)}"',
            "",
        ]
    lines += [
        "[[windows]]  # returning workers (返岗) may leave early every day",
        'categories = ["returning_worker"]',
        'start = "05:30"',
        'end = "07:30"',
        "",
    ]
    return "\n".join(lines)


def build_demo(root: Path, *, now: datetime | None = None, households: int = 300) -> DemoResult:
    """Build the demo community in `root`, replacing any earlier demo there."""
    from menwei.core.demo_data import demo_households
    from menwei.core.roster import import_roster
    from menwei.output.printing import PrintedPass, print_passes

    now = now or datetime.now(UTC)
    if (root / "menwei.db").exists() or (root / "keys").exists():
        shutil.rmtree(root)
    home = Home(root)
    init_community(home, community=DEMO_COMMUNITY, name=DEMO_NAME, gate="东门", now=now)
    roster = demo_households(households)
    store = Store.open(home.db_path)
    try:
        import_roster(store, roster, now=iso(now))
        groups = sorted({h.group for h in roster}, key=lambda g: (len(g), g))
        buildings = sorted({h.building for h in roster}, key=lambda b: (len(b), b))
        text = demo_policy(now, groups, buildings[-1], buildings[-2])
        home.policy_path.write_text(text, encoding="utf-8")
        adopt_policy(store, text, origin="file", now=iso(now))
        issued = issue(
            home, store, households=None, now=now, valid_until=(now + timedelta(days=180)).date()
        )
    finally:
        store.close()
    printed = [
        PrintedPass(
            household=p.household,
            serial=p.serial,
            code=p.code,
            valid_until=p.valid_until,
            community_name=DEMO_NAME,
        )
        for p in issued
    ]
    result = print_passes(home.passes_dir, printed, community_name=DEMO_NAME)
    return DemoResult(
        home=home,
        households=len(roster),
        groups=len(groups),
        passes_dir=home.passes_dir,
        pdfs=list(result.pdfs),
        issued=issued,
    )
