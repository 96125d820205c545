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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from menwei.core.errors import PolicyError
from menwei.core.names import (
    building_display,
    building_key,
    building_matches,
    clean,
    group_key,
    group_matches,
    natural_sorted,
    suggest,
)
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
# The category words a roster or a policy may use, and the category each means (documented in
# README "Categories"). A word not in this table is kept as written, as a category of its own, and
# the roster import reports it with its count.
CATEGORY_ALIASES = {
    "普通": "normal",
    "普通户": "normal",
    "一般": "normal",
    "一般户": "normal",
    "常住": "normal",
    "居民": "normal",
    "返岗": "returning_worker",
    "返岗人员": "returning_worker",
    "复工返岗": "returning_worker",
    "复工": "returning_worker",
    "复工人员": "returning_worker",
    "独居老人": "elderly_alone",
    "独居": "elderly_alone",
    "空巢老人": "elderly_alone",
    "就医": "medical",
    "就医需求": "medical",
    "残疾人": "disabled",
    "残疾": "disabled",
}
KNOWN_CATEGORIES = ("normal", "returning_worker", "elderly_alone", "medical", "disabled")

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
    """A category word as its category: '返岗人员' -> 'returning_worker'; unknown words as written."""
    v = clean(value)
    if v in CATEGORY_ALIASES:
        return CATEGORY_ALIASES[v]
    return v.lower().replace(" ", "_") if v.isascii() else v


def is_known_category(category: str) -> bool:
    return category in KNOWN_CATEGORIES


@dataclass(frozen=True)
class Window:
    start: time
    end: time
    groups: tuple[str, ...] = ()  # as the policy writes them ('第3楼组', '3楼组', '3')
    categories: tuple[str, ...] = ()
    weekdays: frozenset[int] = frozenset(range(7))
    group_keys: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "group_keys", frozenset(group_key(g) for g in self.groups))

    def applies(self, group: str, category: str) -> bool:
        return (
            group in self.groups or group_key(group) in self.group_keys
        ) or category in self.categories

    def label(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"

    def who(self, group: str, category: str) -> Text:
        if group in self.groups or group_key(group) in self.group_keys:
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
    levels: dict[str, str] = field(default_factory=dict)  # building as written -> level
    level_keys: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "level_keys", {building_key(b): lv for b, lv in self.levels.items()}
        )

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
        """The level of a building, however either side writes it ('12号楼', '12栋', '12')."""
        if building in self.levels:
            return self.levels[building]
        return self.level_keys.get(building_key(building), self.default_level)

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
            b_zh, b_en = building_display(building)
            rule = Text(f"{b_zh}为{name.zh},暂停外出", f"{b_en} is {name.en}: no exits")
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
    if isinstance(value, str):
        value = clean(value)  # full-width '０８：００' -> '08:00'
    if not isinstance(value, str) or not re.fullmatch(r"\d{1,2}:\d{2}", value):
        problems.append(
            _pair(
                f'{where}: "{value}" 不是 "08:30" 这样的时间',
                f'{where}: "{value}" is not a time like "08:30"',
            )
        )
        return None
    h, m = (int(x) for x in value.split(":"))
    if h == 24 and m == 0:
        return time(23, 59, 59, 999999)
    if not (0 <= h <= 23 and 0 <= m <= 59):
        problems.append(
            _pair(
                f'{where}: "{value}" 不是一天中的时间', f'{where}: "{value}" is not a time of day'
            )
        )
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
    problems.append(
        _pair(
            f'{where}: "{value}" 不是 "2h" 或 "90m" 这样的时长',
            f'{where}: "{value}" is not a duration like "2h" or "90m"',
        )
    )
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
    source = source.removeprefix("\ufeff")
    try:
        doc = tomllib.loads(source)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(
            f"The policy is not valid TOML: {exc}",
            zh=f"策略文件格式不对(TOML):{exc}。检查引号、等号和方括号。",
        ) from None
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
            problems.append(_unknown_key(key, known_keys, ""))

    tz_name = doc.get("timezone", "Asia/Shanghai")
    try:
        tz = ZoneInfo(str(tz_name))
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(
            _pair(
                f"timezone: 不认识时区 {tz_name!r}(如 Asia/Shanghai)",
                f"timezone: unknown timezone {tz_name!r} (e.g. Asia/Shanghai)",
            )
        )
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
        level = LEVEL_WORDS.get(clean(str(level)), level)
        if level not in LEVELS:
            problems.append(
                _pair(
                    f"levels: 楼栋 {building} 的级别 {level!r} 不对,应是 封控、管控、防范 或 常态",
                    f"levels: building {building}: {level!r} is not one of {', '.join(LEVELS)}",
                )
            )
            continue
        name = str(building)
        if buildings is not None:
            found = building_matches(name, buildings)
            if len(found) != 1:
                problems.append(_not_in_roster("levels", "building", name, buildings, found))
                continue
            name = found[0]
        levels[name] = str(level)

    quota: Quota | None = None
    raw_quota = doc.get("quota")
    if raw_quota is not None:
        if not isinstance(raw_quota, dict):
            problems.append("quota: expected a table with trips and days")
        else:
            for key in raw_quota:
                if key not in ("trips", "days", "persons", "applies_to"):
                    problems.append(
                        _unknown_key(key, ("trips", "days", "persons", "applies_to"), "quota.")
                    )
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
                problems.append(
                    _pair(
                        "quota.trips: 应是外出次数(0 或更多的整数)",
                        "quota.trips: expected a whole number of trips (0 or more)",
                    )
                )
                ok = False
            if not isinstance(days, int) or not 1 <= days <= 366:
                problems.append(
                    _pair(
                        "quota.days: 应是 1 到 366 天",
                        "quota.days: expected a number of days from 1 to 366",
                    )
                )
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
            if key not in WINDOW_KEYS:
                zh, en = _unknown_key(key, WINDOW_KEYS, "").split("\n")
                problems.append(_pair(f"{where}: {zh}", f"{where}: {en}"))
        wgroups = _str_list(w.get("groups"), f"{where}.groups", problems)
        cats = tuple(
            normalise_category(c) for c in _str_list(w.get("categories"), f"{where}", problems)
        )
        if not wgroups and not cats:
            problems.append(
                _pair(
                    f"{where}: 请写明适用的楼组 (groups) 或类别 (categories)",
                    f"{where}: name the groups or categories it is for",
                )
            )
        if groups is not None:
            resolved: list[str] = []
            for g in wgroups:
                found = group_matches(g, groups)
                if len(found) != 1:
                    problems.append(_not_in_roster(where, "building group", g, groups, found))
                else:
                    resolved.append(found[0])
            wgroups = tuple(resolved)
        days_raw = _str_list(w.get("weekdays", list(WEEKDAYS)), f"{where}.weekdays", problems)
        wd: set[int] = set()
        for d in days_raw:
            day = weekday_number(d)
            if day is None:
                problems.append(
                    _pair(
                        f'{where}.weekdays: "{d}" 不是星期几(周一…周日)',
                        f'{where}.weekdays: "{d}" is not a weekday (mon..sun)',
                    )
                )
            else:
                wd.add(day)
        start = _parse_time(w.get("start"), f"{where}.start", problems)
        end = _parse_time(w.get("end"), f"{where}.end", problems)
        if start is not None and end is not None and start >= end:
            problems.append(
                _pair(
                    f"{where}: 开始 {start:%H:%M} 不早于结束 {end:%H:%M}(时段不能跨午夜,请分成两段)",
                    f"{where}: start {start:%H:%M} is not before end {end:%H:%M} "
                    "(a window cannot cross midnight; split it in two)",
                )
            )
            continue
        if start is not None and end is not None:
            windows.append(Window(start, end, wgroups, cats, frozenset(wd)))

    if problems:
        raise PolicyError(
            "The policy has errors; nothing was changed.",
            zh="策略文件有错误,没有做任何改动。",
            problems=problems,
        )
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


WINDOW_KEYS = ("groups", "categories", "weekdays", "start", "end")
LEVEL_WORDS = {
    "常态": "normal",
    "正常": "normal",
    "防范": "precaution",
    "防范区": "precaution",
    "管控": "controlled",
    "管控区": "controlled",
    "封控": "sealed",
    "封控区": "sealed",
}
_ZH_WEEKDAYS = "一二三四五六日"


def weekday_number(word: str) -> int | None:
    """0-6 for 'mon', 'Monday', '周一', '星期一', '礼拜一' ('日'/'天' for Sunday); else None."""
    text = clean(str(word)).lower()
    for prefix in ("星期", "礼拜", "周"):
        if text.startswith(prefix) and len(text) == len(prefix) + 1:
            char = text[-1].replace("天", "日").replace("七", "日")
            return _ZH_WEEKDAYS.index(char) if char in _ZH_WEEKDAYS else None
    key = text[:3]
    return WEEKDAYS.index(key) if key in WEEKDAYS and text.isascii() else None


def _unknown_key(key: str, known: Iterable[str], prefix: str) -> str:
    near = suggest(str(key), list(known))
    hint = f"; did you mean {prefix}{near!r}?" if near else ""
    hint_zh = f",是不是 {prefix}{near!r}?" if near else ""
    return _pair(
        f"不认识的设置 {prefix}{key!r}{hint_zh}(可用:{', '.join(sorted(known))})",
        f"unknown setting {prefix}{key!r}{hint} (known: {', '.join(sorted(known))})",
    )


def _not_in_roster(
    where: str, kind: str, name: str, known: Iterable[str], found: Sequence[str]
) -> str:
    kind_zh = {"building": "楼栋", "building group": "楼组"}.get(kind, kind)
    if found:
        return _pair(
            f"{where}: {kind_zh} {name!r} 可能是 {', '.join(found)},请写全名",
            f"{where}: {kind} {name!r} could mean {', '.join(found)}: write it in full",
        )
    names = natural_sorted(known)
    shown = ", ".join(names[:12]) + (" …" if len(names) > 12 else "")
    return _pair(
        f"{where}: 花名册里没有{kind_zh} {name!r}(有:{shown})",
        f"{where}: {kind} {name!r} is not in the roster ({shown})",
    )


def _pair(zh: str, en: str) -> str:
    """A problem in both languages: the Chinese line, then the English one."""
    return f"{zh}\n{en}"


def policy_text(data: bytes) -> str:
    """A policy file's text as people save it: UTF-8 with or without a BOM (Notepad), or GBK."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            return data.decode("gb18030")
        except UnicodeDecodeError:
            raise PolicyError(
                "The policy file is neither UTF-8 nor GBK text; save it as UTF-8.",
                zh="策略文件既不是 UTF-8 也不是 GBK 文本,请另存为 UTF-8。",
            ) from None


def policy_warnings(policy: Policy, households: Iterable[tuple[str, str]]) -> list[Text]:
    """What a valid policy may still get wrong, given the roster's (group, category) pairs:
    windows for categories no household has, groups nobody may leave (no window covers them),
    windows on no weekday, a quota of 0 trips."""
    pairs = set(households)
    warnings: list[Text] = []
    have_categories = {c for _, c in pairs}
    have_groups = {g for g, _ in pairs}
    for i, w in enumerate(policy.windows, 1):
        if not w.weekdays:
            warnings.append(
                Text(
                    f"时段 #{i} 没有星期(weekdays = []),永远不开放",
                    f"windows #{i} has no weekday (weekdays = []): it never opens",
                )
            )
        for c in w.categories:
            if pairs and c not in have_categories:
                label = category_label(c)
                warnings.append(
                    Text(
                        f"时段 #{i} 的类别 {label.zh} 在花名册里没有住户",
                        f"windows #{i}: no household has the category {label.en}",
                    )
                )
        for g in w.groups:
            if pairs and not any(group_key(h) == group_key(g) for h in have_groups):
                warnings.append(
                    Text(
                        f"时段 #{i} 的楼组 {g} 在花名册里没有住户",
                        f"windows #{i}: no household is in group {g}",
                    )
                )
    if policy.windows:
        locked: dict[str, int] = {}
        for g, c in sorted(pairs):
            if not any(w.applies(g, c) and w.weekdays for w in policy.windows):
                locked[g] = locked.get(g, 0) + 1
        for g in natural_sorted(locked):
            label = group_label(g)
            warnings.append(
                Text(
                    f"{label.zh} 有 {locked[g]} 户不在任何外出时段内,不能外出",
                    f"{locked[g]} households of {label.en} have no release window: they can "
                    "never go out",
                )
            )
    if policy.quota is not None and policy.quota.trips == 0:
        warnings.append(
            Text(
                "外出次数 trips = 0:这些楼栋的住户不能外出",
                "quota trips = 0: nobody it applies to may go out",
            )
        )
    return warnings


def digest(source: str) -> str:
    return hashlib.sha256(source.encode("utf-8")).hexdigest()
