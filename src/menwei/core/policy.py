"""The community's policy: release windows, trip quota, time out, building levels, overrides.

The IT person edits it as TOML (`policy.toml` in the home). A gate evaluates it at the scan's time
and explains every refusal in words. The levels:

- normal: release windows apply;
- precaution (防范): windows apply, and the quota when it names this level (it does by default);
- controlled (管控): nobody leaves the compound (reason `sealed`);
- sealed (封控): nobody leaves (reason `sealed`); only a medical or emergency override lets one out.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from menwei.core.errors import PolicyError
from menwei.core.text import Text, category_label, duration, group_label

LEVELS = ("normal", "precaution", "controlled", "sealed")
LEVEL_NAMES = {
    "normal": Text("常态", "normal"),
    "precaution": Text("防范区", "precaution"),
    "controlled": Text("管控区", "controlled"),
    "sealed": Text("封控区", "sealed"),
}
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WEEKDAY_NAMES = [
    Text("周一", "Mon"),
    Text("周二", "Tue"),
    Text("周三", "Wed"),
    Text("周四", "Thu"),
    Text("周五", "Fri"),
    Text("周六", "Sat"),
    Text("周日", "Sun"),
]
OVERRIDE_REASONS: dict[str, Text] = {
    "medical": Text("就医", "medical"),
    "emergency": Text("紧急", "emergency"),
    "work": Text("返岗", "work"),
    "other": Text("其他", "other"),
}
# Overrides that may let someone out of a sealed building.
SEALED_OVERRIDES = ("medical", "emergency")
CATEGORY_ALIASES = {
    "普通": "normal",
    "一般": "normal",
    "返岗": "returning_worker",
    "返岗人员": "returning_worker",
    "复工返岗": "returning_worker",
    "独居老人": "elderly_alone",
    "就医": "medical",
}

PERMISSIVE_TOML = """\
# menwei policy. Edit, then run `menwei policy check`. Until windows or a quota are set,
# everybody with a valid pass may go out at any time.
timezone = "Asia/Shanghai"
day_starts = "00:00"          # where a day begins, for quotas and daily summaries
max_time_out = ""             # e.g. "2h": a later return is flagged overdue ("" = no limit)
override_reasons = ["medical", "emergency", "work", "other"]
default_level = "normal"      # normal | precaution | controlled | sealed

# [quota]                     # N trips per M days per household
# trips = 1
# days = 2
# persons = 1                 # at most this many people per trip
# applies_to = ["normal", "precaution"]

# [[windows]]                 # 错峰放行: who may go out when
# groups = ["1", "2"]         # building groups (楼组), or categories = ["returning_worker"]
# weekdays = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
# start = "08:00"
# end = "09:00"

# [levels]                    # building -> level
# "12" = "sealed"
"""


def normalise_category(value: str) -> str:
    v = value.strip()
    return CATEGORY_ALIASES.get(v, v.lower().replace(" ", "_") if v.isascii() else v)


@dataclass(frozen=True)
class Window:
    start: time
    end: time
    groups: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    weekdays: frozenset[int] = frozenset(range(7))

    def applies(self, group: str, category: str) -> bool:
        return group in self.groups or category in self.categories

    def label(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"

    def who(self, group: str, category: str) -> Text:
        if group in self.groups:
            return group_label(group)
        return category_label(category)


@dataclass(frozen=True)
class Quota:
    trips: int
    days: int
    persons: int | None = None
    applies_to: tuple[str, ...] = ("normal", "precaution")


@dataclass(frozen=True)
class Refusal:
    reason: str  # sealed | outside_window | quota_exceeded
    rule: Text


@dataclass(frozen=True)
class WindowStatus:
    """Where a household (or group) stands against its release windows at a moment."""

    open_now: Window | None
    next_start: datetime | None  # local time of the next opening, within a week
    has_windows: bool


@dataclass(frozen=True)
class Policy:
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    day_starts: time = time(0, 0)
    max_time_out: timedelta | None = None
    override_reasons: tuple[str, ...] = tuple(OVERRIDE_REASONS)
    default_level: str = "normal"
    quota: Quota | None = None
    windows: tuple[Window, ...] = ()
    levels: dict[str, str] = field(default_factory=dict)

    # --- time ---------------------------------------------------------------------------------

    def local(self, at: datetime) -> datetime:
        return at.astimezone(self.timezone)

    def policy_day(self, at: datetime) -> date:
        """The day a moment belongs to, counting from `day_starts`."""
        local = self.local(at)
        start = datetime.combine(local.date(), self.day_starts, tzinfo=self.timezone)
        return local.date() if local >= start else local.date() - timedelta(days=1)

    def day_start(self, day: date) -> datetime:
        return datetime.combine(day, self.day_starts, tzinfo=self.timezone)

    def quota_period_start(self, at: datetime) -> datetime | None:
        if self.quota is None:
            return None
        return self.day_start(self.policy_day(at) - timedelta(days=self.quota.days - 1))

    # --- levels and windows -------------------------------------------------------------------

    def level_of(self, building: str) -> str:
        return self.levels.get(building, self.default_level)

    def windows_for(self, group: str, category: str) -> list[Window]:
        return [w for w in self.windows if w.applies(group, category)]

    def window_status(self, group: str, category: str, at: datetime) -> WindowStatus:
        mine = self.windows_for(group, category)
        if not mine:
            return WindowStatus(None, None, has_windows=bool(self.windows))
        local = self.local(at)
        now_t = local.time()
        open_now = next(
            (w for w in mine if local.weekday() in w.weekdays and w.start <= now_t < w.end), None
        )
        next_start: datetime | None = None
        for offset in range(8):
            day = local.date() + timedelta(days=offset)
            starts = sorted(
                datetime.combine(day, w.start, tzinfo=self.timezone)
                for w in mine
                if day.weekday() in w.weekdays
            )
            later = [s for s in starts if s > local]
            if later:
                next_start = later[0]
                break
        return WindowStatus(open_now, next_start, has_windows=True)

    # --- decisions ----------------------------------------------------------------------------

    def check_exit(
        self,
        *,
        building: str,
        group: str,
        category: str,
        at: datetime,
        trips_in_period: int,
        headcount: int,
    ) -> tuple[Refusal | None, str]:
        """The first policy rule an exit breaks (or None), and the window it falls in."""
        level = self.level_of(building)
        if level in ("sealed", "controlled"):
            name = LEVEL_NAMES[level]
            rule = Text(
                f"{building}号楼为{name.zh},暂停外出", f"building {building} is {name.en}: no exits"
            )
            return Refusal("sealed", rule), ""
        window_label = "open"
        status = self.window_status(group, category, at)
        if status.has_windows:
            if status.open_now is None:
                return Refusal("outside_window", self._window_rule(group, category, at, status)), ""
            window_label = f"{status.open_now.label()}"
        quota = self.quota
        if quota is not None and level in quota.applies_to:
            if quota.persons is not None and headcount > quota.persons:
                rule = Text(
                    f"每户每次限{quota.persons}人外出(本次{headcount}人)",
                    f"at most {quota.persons} per trip ({headcount} now)",
                )
                return Refusal("quota_exceeded", rule), window_label
            if trips_in_period >= quota.trips:
                period = (
                    Text("每天", "per day")
                    if quota.days == 1
                    else Text(f"每{quota.days}天", f"per {quota.days} days")
                )
                rule = Text(
                    f"每户{period.zh}限外出{quota.trips}次,已用{trips_in_period}次",
                    f"{quota.trips} trip(s) {period.en} per household, {trips_in_period} used",
                )
                return Refusal("quota_exceeded", rule), window_label
        return None, window_label

    def _window_rule(self, group: str, category: str, at: datetime, status: WindowStatus) -> Text:
        local = self.local(at)
        mine = self.windows_for(group, category)
        who = (mine[0] if mine else Window(time(0), time(0))).who(group, category)
        if not mine:
            return Text(f"{who.zh}没有外出时段", f"{who.en} has no release window")
        nxt = status.next_start
        if nxt is None:
            return Text(f"{who.zh}本周没有外出时段", f"{who.en} has no window this week")
        if nxt.date() == local.date():
            wait = int((nxt - local).total_seconds() // 60) + (
                1 if (nxt - local).total_seconds() % 60 else 0
            )
            d = duration(wait)
            return Text(
                f"{who.zh} {nxt:%H:%M} 起可外出(还有{d.zh})",
                f"{who.en} may leave from {nxt:%H:%M} (in {d.en})",
            )
        wd = WEEKDAY_NAMES[nxt.weekday()]
        if nxt.date() == local.date() + timedelta(days=1):
            day = Text(f"明天({wd.zh})", f"tomorrow ({wd.en})")
        else:
            day = wd
        today = [w for w in mine if local.weekday() in w.weekdays]
        ended = ""
        ended_en = ""
        if today:
            spans = "、".join(w.label() for w in today)
            ended = f"今天时段({spans})已过,"
            ended_en = f"today's window ({', '.join(w.label() for w in today)}) is over; "
        return Text(
            f"{who.zh} {ended}{day.zh} {nxt:%H:%M} 起可外出",
            f"{who.en}: {ended_en}may leave {day.en} from {nxt:%H:%M}",
        )

    def is_overdue(self, out_since: datetime, at: datetime) -> bool:
        return self.max_time_out is not None and at - out_since > self.max_time_out


# --- parsing -------------------------------------------------------------------------------------

_DURATION = re.compile(r"^\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m(?:in)?)?\s*$")


def _parse_time(value: Any, where: str, problems: list[str]) -> time | None:
    if not isinstance(value, str) or not re.fullmatch(r"\d{1,2}:\d{2}", value):
        problems.append(f'{where}: "{value}" is not a time like "08:30"')
        return None
    h, m = (int(x) for x in value.split(":"))
    if h == 24 and m == 0:
        return time(23, 59, 59, 999999)
    if not (0 <= h <= 23 and 0 <= m <= 59):
        problems.append(f'{where}: "{value}" is not a time of day')
        return None
    return time(h, m)


def _parse_duration(value: Any, where: str, problems: list[str]) -> timedelta | None:
    if value in ("", 0, None):
        return None
    if isinstance(value, int) and value > 0:
        return timedelta(minutes=value)
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m and (m.group(1) or m.group(2)):
            td = timedelta(hours=int(m.group(1) or 0), minutes=int(m.group(2) or 0))
            if td > timedelta(0):
                return td
    problems.append(f'{where}: "{value}" is not a duration like "2h" or "90m"')
    return None


def _str_list(value: Any, where: str, problems: list[str]) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str | int):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str | int) for v in value):
        problems.append(f"{where}: expected a list of names")
        return ()
    return tuple(str(v) for v in value)


def parse_policy(
    source: str, *, groups: set[str] | None = None, buildings: set[str] | None = None
) -> Policy:
    """Parse and check a policy document; raise PolicyError listing every problem.

    With `groups` and `buildings` (from the roster) unknown names are errors too.
    """
    problems: list[str] = []
    try:
        doc = tomllib.loads(source)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"The policy is not valid TOML: {exc}") from None
    known_keys = {
        "timezone",
        "day_starts",
        "max_time_out",
        "override_reasons",
        "default_level",
        "quota",
        "windows",
        "levels",
        "name",
    }
    for key in doc:
        if key not in known_keys:
            problems.append(f"unknown setting {key!r} (known: {', '.join(sorted(known_keys))})")

    tz_name = doc.get("timezone", "Asia/Shanghai")
    try:
        tz = ZoneInfo(str(tz_name))
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(f"timezone: unknown timezone {tz_name!r} (e.g. Asia/Shanghai)")
        tz = ZoneInfo("Asia/Shanghai")

    day_starts = _parse_time(doc.get("day_starts", "00:00"), "day_starts", problems) or time(0)
    max_out = _parse_duration(doc.get("max_time_out", ""), "max_time_out", problems)

    reasons = _str_list(
        doc.get("override_reasons", list(OVERRIDE_REASONS)), "override_reasons", problems
    )
    for r in reasons:
        if r not in OVERRIDE_REASONS:
            problems.append(
                f"override_reasons: unknown reason {r!r} (known: {', '.join(OVERRIDE_REASONS)})"
            )

    default_level = str(doc.get("default_level", "normal"))
    if default_level not in LEVELS:
        problems.append(f"default_level: {default_level!r} is not one of {', '.join(LEVELS)}")
        default_level = "normal"

    levels: dict[str, str] = {}
    raw_levels = doc.get("levels", {})
    if not isinstance(raw_levels, dict):
        problems.append("levels: expected a table of building = level")
        raw_levels = {}
    for building, level in raw_levels.items():
        if level not in LEVELS:
            problems.append(
                f"levels: building {building}: {level!r} is not one of {', '.join(LEVELS)}"
            )
            continue
        if buildings is not None and str(building) not in buildings:
            problems.append(f"levels: building {building!r} is not in the roster")
        levels[str(building)] = str(level)

    quota: Quota | None = None
    raw_quota = doc.get("quota")
    if raw_quota is not None:
        if not isinstance(raw_quota, dict):
            problems.append("quota: expected a table with trips and days")
        else:
            trips, days, persons = (
                raw_quota.get("trips"),
                raw_quota.get("days", 1),
                raw_quota.get("persons"),
            )
            applies = _str_list(
                raw_quota.get("applies_to", ["normal", "precaution"]), "quota.applies_to", problems
            )
            for lv in applies:
                if lv not in LEVELS:
                    problems.append(f"quota.applies_to: {lv!r} is not one of {', '.join(LEVELS)}")
            ok = True
            if not isinstance(trips, int) or trips < 0:
                problems.append("quota.trips: expected a whole number of trips (0 or more)")
                ok = False
            if not isinstance(days, int) or not 1 <= days <= 366:
                problems.append("quota.days: expected a number of days from 1 to 366")
                ok = False
            if persons is not None and (not isinstance(persons, int) or persons < 1):
                problems.append("quota.persons: expected a number of people, 1 or more")
                ok = False
            if ok:
                assert isinstance(trips, int) and isinstance(days, int)
                quota = Quota(trips, days, persons, applies)

    windows: list[Window] = []
    raw_windows = doc.get("windows", [])
    if not isinstance(raw_windows, list):
        problems.append("windows: expected [[windows]] tables")
        raw_windows = []
    for i, w in enumerate(raw_windows, 1):
        where = f"windows #{i}"
        if not isinstance(w, dict):
            problems.append(f"{where}: expected a table")
            continue
        for key in w:
            if key not in ("groups", "categories", "weekdays", "start", "end"):
                problems.append(f"{where}: unknown setting {key!r}")
        wgroups = _str_list(w.get("groups"), f"{where}.groups", problems)
        cats = tuple(
            normalise_category(c) for c in _str_list(w.get("categories"), f"{where}", problems)
        )
        if not wgroups and not cats:
            problems.append(f"{where}: name the groups or categories it is for")
        if groups is not None:
            for g in wgroups:
                if g not in groups:
                    problems.append(f"{where}: building group {g!r} is not in the roster")
        days_raw = _str_list(w.get("weekdays", list(WEEKDAYS)), f"{where}.weekdays", problems)
        wd: set[int] = set()
        for d in days_raw:
            key = d.lower()[:3]
            if key not in WEEKDAYS:
                problems.append(f'{where}.weekdays: "{d}" is not a weekday (mon..sun)')
            else:
                wd.add(WEEKDAYS.index(key))
        start = _parse_time(w.get("start"), f"{where}.start", problems)
        end = _parse_time(w.get("end"), f"{where}.end", problems)
        if start is not None and end is not None and start >= end:
            problems.append(
                f"{where}: start {start:%H:%M} is not before end {end:%H:%M} "
                "(a window cannot cross midnight; split it in two)"
            )
            continue
        if start is not None and end is not None:
            windows.append(Window(start, end, wgroups, cats, frozenset(wd)))

    if problems:
        raise PolicyError("The policy has errors; nothing was changed.", problems=problems)
    return Policy(
        timezone=tz,
        day_starts=day_starts,
        max_time_out=max_out,
        override_reasons=reasons,
        default_level=default_level,
        quota=quota,
        windows=tuple(windows),
        levels=levels,
    )


def digest(source: str) -> str:
    return hashlib.sha256(source.encode("utf-8")).hexdigest()
