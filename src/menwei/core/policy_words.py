"""The policy in plain words, for `menwei policy show` and the gate app."""

from __future__ import annotations

from menwei.core.names import building_display, natural_key
from menwei.core.policy import LEVEL_NAMES, OVERRIDE_REASONS, WEEKDAY_NAMES, Policy, Window
from menwei.core.text import Text, category_label, duration, group_label, join


def _days(w: Window) -> Text:
    if len(w.weekdays) == 7:
        return Text("每天", "daily")
    names = [WEEKDAY_NAMES[d] for d in sorted(w.weekdays)]
    return join(names, "、", ", ")


def describe_window(w: Window) -> Text:
    who = join(
        [group_label(g) for g in w.groups] + [category_label(c) for c in w.categories], "、", ", "
    )
    return Text(
        f"{who.zh}:{_days(w).zh} {w.label()} 可外出",
        f"{who.en}: {_days(w).en} {w.label()} may leave",
    )


def describe(policy: Policy) -> list[Text]:
    lines = [
        Text(
            f"时区 {policy.timezone.key},每天从 {policy.day_starts:%H:%M} 起算",
            f"timezone {policy.timezone.key}; days start at {policy.day_starts:%H:%M}",
        )
    ]
    if policy.windows:
        lines.extend(describe_window(w) for w in policy.windows)
        lines.append(
            Text(
                "不在以上时段的住户不能外出(返回不受限)",
                "others may not leave (coming home is never refused)",
            )
        )
    else:
        lines.append(Text("没有外出时段限制", "no release windows: anyone may leave at any time"))
    q = policy.quota
    if q is None:
        lines.append(Text("没有外出次数限制", "no trip quota"))
    else:
        levels = join([LEVEL_NAMES[lv] for lv in q.applies_to], "、", ", ")
        persons = (
            Text(f",每次限{q.persons}人", f", at most {q.persons} per trip")
            if q.persons
            else Text("", "")
        )
        lines.append(
            Text(
                f"每户每{q.days}天限外出{q.trips}次{persons.zh}(适用于{levels.zh})",
                f"{q.trips} trip(s) per household every {q.days} day(s){persons.en} "
                f"(for {levels.en})",
            )
        )
    if policy.max_time_out is None:
        lines.append(Text("外出时长不限", "no limit on time out"))
    else:
        d = duration(int(policy.max_time_out.total_seconds() // 60))
        lines.append(Text(f"外出超过{d.zh}未回记为超时", f"a return after {d.en} is overdue"))
    lines.append(
        Text(
            f"楼栋默认为{LEVEL_NAMES[policy.default_level].zh}",
            f"buildings are {LEVEL_NAMES[policy.default_level].en} by default",
        )
    )
    for building, level in sorted(policy.levels.items(), key=lambda kv: natural_key(kv[0])):
        b_zh, b_en = building_display(building)
        lines.append(Text(f"{b_zh}:{LEVEL_NAMES[level].zh}", f"{b_en}: {LEVEL_NAMES[level].en}"))
    reasons = join([OVERRIDE_REASONS[r] for r in policy.override_reasons], "、", ", ")
    lines.append(Text(f"可特批的理由:{reasons.zh}", f"override reasons: {reasons.en}"))
    return lines
