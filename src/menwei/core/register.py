"""The movement register (人员流动信息册) of a building group for a day, and the community's day summary.

Both are pure reads of the gate database. Trips are built from `all_events` (this gate's events
and those pulled from the others): each household's exit is paired with its next entry, annulled
events left out. A trip belongs to a day's register when it went out or came back that day, so a
trip over midnight appears on both days' pages. `register_files` writes them as CSV and PDF.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from menwei.core.clock import iso, parse_iso
from menwei.core.community import community_info, current_policy
from menwei.core.model import Household
from menwei.core.policy import OVERRIDE_REASONS, WEEKDAY_NAMES, Policy
from menwei.core.reasons import ANOMALY_WORDS, REASON_WORDS, anomaly_words, reason_words
from menwei.core.state import NOT_ANNULLED, direction_of
from menwei.core.store import Store
from menwei.core.text import Text, duration, group_label

__all__ = ["ANOMALY_WORDS", "REASON_WORDS", "anomaly_words", "reason_words"]

# Exits are paired with returns up to this long after them; older exits are not looked for.
LOOKBACK = timedelta(days=31)


def window_words(window: str | None) -> Text:
    """'08:00-09:00' as is; 'open' / 'override:medical' in words."""
    if not window:
        return Text("", "")
    if window == "open":
        return Text("不限时段", "any time")
    if window.startswith("override:"):
        label = override_words(window.split(":", 1)[1])
        return Text(f"特批({label.zh})", f"override ({label.en})")
    return Text(window, window)


def override_words(reason: str) -> Text:
    return OVERRIDE_REASONS.get(reason, Text(reason, reason))


# --- trips ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Trip:
    """One household's time out: an exit and the entry that ended it (either may be missing)."""

    household: Household
    out_at: datetime | None
    back_at: datetime | None
    out_gate: str | None
    back_gate: str | None
    headcount_out: int | None
    headcount_back: int | None
    window: str | None
    overrides: tuple[Text, ...]
    overdue: bool  # came back after the longest time out, or is still out past it
    note: str | None
    out_event: str | None
    back_event: str | None
    # Followed by another exit with no entry between (a missed scan): the return is unknown.
    unclosed: bool = False

    @property
    def still_out(self) -> bool:
        return self.out_at is not None and self.back_at is None and not self.unclosed

    @property
    def came_back_late(self) -> bool:
        return self.overdue and self.back_at is not None

    def minutes_out(self, as_of: datetime) -> int | None:
        if self.out_at is None:
            return None
        end = self.back_at or as_of
        return int((end - self.out_at).total_seconds() // 60)

    def as_dict(self, policy: Policy) -> dict[str, Any]:
        """For JSON: local times with their offset."""
        h = self.household
        return {
            "household": h.number,
            "building": h.building,
            "unit": h.unit,
            "room": h.room,
            "group": h.group,
            "headcount_out": self.headcount_out,
            "headcount_back": self.headcount_back,
            "out_at": policy.local(self.out_at).isoformat() if self.out_at else None,
            "back_at": policy.local(self.back_at).isoformat() if self.back_at else None,
            "out_gate": self.out_gate,
            "back_gate": self.back_gate,
            "window": self.window,
            "overrides": [o.zh for o in self.overrides],
            "overdue": self.overdue,
            "still_out": self.still_out,
            "return_unknown": self.unclosed,
            "note": self.note,
            "out_event": self.out_event,
            "back_event": self.back_event,
        }


def _household(row: dict[str, Any], number: int) -> Household:
    if row.get("building") is None:
        # No longer in the roster: keep the trip, say who it was by number.
        return Household(number, "?", "", "?", "?", 0)
    return Household(
        number=number,
        building=row["building"],
        unit=row["unit"],
        room=row["room"],
        group=row["building_group"],
        members=int(row["members"]),
        category=row["category"],
        contact=row["contact"],
    )


def _trip_events(store: Store, since: datetime, group: str | None) -> list[dict[str, Any]]:
    where = ["e.wall_time >= ?", "e.kind in ('exit', 'entry', 'override', 'register')"]
    params: list[Any] = [iso(since)]
    if group is not None:
        where.append("h.building_group = ?")
        params.append(group)
    return store.query(
        "select e.event_id, e.gate_id, e.kind, e.direction, e.household, e.reason, e.headcount,"
        " e.wall_time, e.window, e.overdue, h.building, h.unit, h.room, h.building_group,"
        " h.members, h.category, h.contact"
        " from all_events e left join households h on h.household = e.household"
        # Events of one gate in the same millisecond keep their gate's order (UUIDv7 ids do not).
        " left join events o on o.event_id = e.event_id"
        " left join remote_events r on r.event_id = e.event_id"
        f" where {' and '.join(where)} and e.household is not null"
        f" and {NOT_ANNULLED}"
        " order by e.household, e.wall_time, e.gate_id, coalesce(o.seq, r.seq), e.event_id",
        params,
    )


def _details(store: Store, event_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Override reason and note of overrides and registrations (not in the all_events view)."""
    if not event_ids:
        return {}
    marks = ", ".join("?" for _ in event_ids)
    rows = store.query(
        f"select event_id, override_reason, note from events where event_id in ({marks})"
        " union all select event_id, json_extract(body, '$.override_reason'),"
        f" json_extract(body, '$.note') from remote_events where event_id in ({marks})",
        [*event_ids, *event_ids],
    )
    return {r["event_id"]: r for r in rows}


def _override_text(detail: dict[str, Any] | None, way: str) -> Text:
    reason = override_words(str(detail["override_reason"])) if detail else Text("特批", "override")
    note = (detail or {}).get("note")
    said = Text(f"({note})", f" ({note})") if note else Text("", "")
    prefix = Text("出:", "out: ") if way == "exit" else Text("回:", "in: ")
    return prefix + reason + said


def build_trips(
    store: Store,
    policy: Policy,
    *,
    since: datetime,
    group: str | None = None,
    as_of: datetime,
) -> list[Trip]:
    """Every trip with an exit or an entry at or after `since`, for one group or all."""
    rows = _trip_events(store, since - LOOKBACK, group)
    detail_ids = [r["event_id"] for r in rows if r["kind"] in ("override", "register")]
    details = _details(store, detail_ids)
    trips: list[Trip] = []

    def emit(
        out: dict[str, Any] | None, back: dict[str, Any] | None, *, unclosed: bool = False
    ) -> None:
        first = out or back
        assert first is not None
        out_at = parse_iso(out["wall_time"]) if out else None
        back_at = parse_iso(back["wall_time"]) if back else None
        overrides = []
        if out and out["kind"] == "override":
            overrides.append(_override_text(details.get(out["event_id"]), "exit"))
        if back and back["kind"] == "override":
            overrides.append(_override_text(details.get(back["event_id"]), "entry"))
        overdue = bool(back and back["overdue"])
        if out_at is not None and back_at is None and not unclosed:
            overdue = policy.is_overdue(out_at, as_of)
        note = None
        if back and back["kind"] == "register":
            note = (details.get(back["event_id"]) or {}).get("note") or None
        trips.append(
            Trip(
                household=_household(first, int(first["household"])),
                out_at=out_at,
                back_at=back_at,
                out_gate=out["gate_id"] if out else None,
                back_gate=back["gate_id"] if back else None,
                headcount_out=out["headcount"] if out else None,
                headcount_back=back["headcount"] if back else None,
                window=out["window"] if out else None,
                overrides=tuple(overrides),
                overdue=overdue,
                note=note,
                out_event=out["event_id"] if out else None,
                back_event=back["event_id"] if back else None,
                unclosed=unclosed,
            )
        )

    current: int | None = None
    open_exit: dict[str, Any] | None = None
    for row in rows:
        if row["household"] != current:
            if open_exit is not None:
                emit(open_exit, None)
            current, open_exit = row["household"], None
        way = direction_of(row["kind"], row["direction"])
        if way == "exit":
            if open_exit is not None:  # two exits without a return between: both shown
                emit(open_exit, None, unclosed=True)
            open_exit = row
        elif way == "entry":
            emit(open_exit, row)
            open_exit = None
    if open_exit is not None:
        emit(open_exit, None)
    return [
        t
        for t in trips
        if t.still_out
        or (t.out_at is not None and t.out_at >= since)
        or (t.back_at is not None and t.back_at >= since)
    ]


def _on_day(policy: Policy, at: datetime | None, day: date) -> bool:
    return at is not None and policy.policy_day(at) == day


def _natural(value: str) -> tuple[tuple[int, int | str], ...]:
    parts: list[tuple[int, int | str]] = []
    num = ""
    text = ""
    for ch in value:
        if ch.isdigit():
            if text:
                parts.append((1, text))
                text = ""
            num += ch
        else:
            if num:
                parts.append((0, int(num)))
                num = ""
            text += ch
    if num:
        parts.append((0, int(num)))
    if text:
        parts.append((1, text))
    return tuple(parts)


def group_sort_key(group: str) -> tuple[tuple[int, int | str], ...]:
    return _natural(group)


# --- the register --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Register:
    """A building group's movement register for one day."""

    community_name: str
    group: str
    day: date
    policy: Policy
    as_of: datetime
    trips: tuple[Trip, ...]

    @property
    def title(self) -> Text:
        label = group_label(self.group)
        return Text(f"{label.zh} 人员流动信息册", f"Movement register, {label.en}")

    def subtitle(self, lang: str) -> str:
        wd = WEEKDAY_NAMES[self.day.weekday()].get(lang)
        printed = self.policy.local(self.as_of)
        if lang == "en":
            return (
                f"{self.community_name} · {self.day:%Y-%m-%d} ({wd}) · as of {printed:%m-%d %H:%M}"
            )
        return f"{self.community_name} · {self.day:%Y-%m-%d}({wd})· 截至 {printed:%m-%d %H:%M}"

    def totals(self) -> dict[str, int]:
        outs = [t for t in self.trips if _on_day(self.policy, t.out_at, self.day)]
        backs = [t for t in self.trips if _on_day(self.policy, t.back_at, self.day)]
        return {
            "trips": len(outs),
            "persons": sum(t.headcount_out or 0 for t in outs),
            "returns": len(backs),
            "still_out": sum(1 for t in self.trips if t.still_out),
            "overdue": sum(1 for t in self.trips if t.overdue),
            "overrides": sum(len(t.overrides) for t in self.trips),
        }

    def totals_text(self) -> Text:
        n = self.totals()
        return Text(
            f"外出 {n['trips']} 户次 {n['persons']} 人;返回 {n['returns']} 户次;"
            f"未归 {n['still_out']};超时 {n['overdue']};特批 {n['overrides']}",
            f"Out: {n['trips']} trips, {n['persons']} people; back: {n['returns']}; "
            f"still out: {n['still_out']}; overdue: {n['overdue']}; overrides: {n['overrides']}",
        )

    def _when(self, at: datetime | None) -> str:
        if at is None:
            return ""
        local = self.policy.local(at)
        if self.policy.policy_day(at) == self.day:
            return f"{local:%H:%M}"
        return f"{local:%m-%d %H:%M}"

    def header(self, lang: str) -> list[str]:
        return [h.get(lang) for h in REGISTER_COLUMNS]

    def rows(self, lang: str = "zh") -> list[list[str]]:
        """The register's lines as text, in the order of `header()`."""
        sep = "、" if lang == "zh" else "; "
        lines = []
        for i, t in enumerate(self.trips, 1):
            h = t.household
            count = "" if t.headcount_out is None else str(t.headcount_out)
            if t.headcount_back is not None and t.headcount_back != t.headcount_out:
                count = f"{count}→{t.headcount_back}" if count else str(t.headcount_back)
            gates = [g for g in (t.out_gate, t.back_gate) if g]
            if len(gates) == 2 and gates[0] == gates[1]:
                gates = gates[:1]
            if t.still_out:
                back = "未归" if lang == "zh" else "not back"
            elif t.unclosed:
                back = "无返回记录" if lang == "zh" else "no return recorded"
            else:
                back = self._when(t.back_at)
            overdue = ""
            if t.overdue:
                overdue = "超时" if lang == "zh" else "overdue"
            notes = [window_words(t.window).get(lang)] if t.window and t.window != "open" else []
            if t.out_at is None:
                notes.append("返回居民登记" if lang == "zh" else "returning resident")
            if t.note:
                notes.append(t.note)
            lines.append(
                [
                    str(i),
                    str(h.number),
                    h.building,
                    h.unit,
                    h.room,
                    count,
                    self._when(t.out_at),
                    back,
                    " → ".join(gates),
                    sep.join(o.get(lang) for o in t.overrides),
                    overdue,
                    sep.join(n for n in notes if n),
                ]
            )
        return lines

    def as_dict(self) -> dict[str, Any]:
        return {
            "community": self.community_name,
            "group": self.group,
            "date": self.day.isoformat(),
            "as_of": iso(self.as_of),
            "totals": self.totals(),
            "trips": [t.as_dict(self.policy) for t in self.trips],
        }


REGISTER_COLUMNS = (
    Text("序号", "No."),
    Text("户号", "Household"),
    Text("楼栋", "Bldg"),
    Text("单元", "Unit"),
    Text("室", "Room"),
    Text("人数", "People"),
    Text("外出时间", "Out at"),
    Text("返回时间", "Back at"),
    Text("门岗", "Gates"),
    Text("特批", "Overrides"),
    Text("超时", "Overdue"),
    Text("备注", "Notes"),
)


def _context(store: Store) -> tuple[str, Policy]:
    _, policy = current_policy(store)
    return community_info(store).name, policy


def movement_register(store: Store, group: str, day: date, *, as_of: datetime) -> Register:
    """The register of building group `group` for `day` (a policy day), as known at `as_of`."""
    name, policy = _context(store)
    start = policy.day_start(day)
    trips = [
        t
        for t in build_trips(store, policy, since=start, group=group, as_of=as_of)
        if _on_day(policy, t.out_at, day) or _on_day(policy, t.back_at, day)
    ]
    trips.sort(key=lambda t: (t.out_at or t.back_at or start, t.household.number))
    return Register(name, group, day, policy, as_of, tuple(trips))


# --- the community's day -------------------------------------------------------------------------


@dataclass(frozen=True)
class Anomaly:
    anomaly_id: str
    kind: str
    household: int | None
    gate_id: str | None
    detail: str | None
    detected_at: str


@dataclass(frozen=True)
class DaySummary:
    """A community's day: trips by window and group, overdue returns, refusals, anomalies."""

    community_name: str
    day: date
    policy: Policy
    as_of: datetime
    trips: tuple[Trip, ...]  # went out or came back this day
    refusals: dict[str, int]
    anomalies: tuple[Anomaly, ...]

    def _outs(self) -> list[Trip]:
        return [t for t in self.trips if _on_day(self.policy, t.out_at, self.day)]

    def trips_by_window_group(self) -> dict[str, dict[str, int]]:
        table: dict[str, Counter[str]] = {}
        for t in self._outs():
            table.setdefault(t.window or "open", Counter())[t.household.group] += 1
        return {
            w: dict(sorted(c.items(), key=lambda kv: group_sort_key(kv[0])))
            for w, c in sorted(table.items(), key=lambda kv: _window_order(kv[0]))
        }

    def trips_by_group(self) -> dict[str, int]:
        c = Counter(t.household.group for t in self._outs())
        return dict(sorted(c.items(), key=lambda kv: group_sort_key(kv[0])))

    def overdue_returns(self) -> list[Trip]:
        return [
            t for t in self.trips if t.came_back_late and _on_day(self.policy, t.back_at, self.day)
        ]

    def still_out(self) -> list[Trip]:
        return [t for t in self.trips if t.still_out]

    def as_dict(self) -> dict[str, Any]:
        outs = self._outs()
        return {
            "community": self.community_name,
            "date": self.day.isoformat(),
            "as_of": iso(self.as_of),
            "trips": len(outs),
            "persons": sum(t.headcount_out or 0 for t in outs),
            "returns": sum(1 for t in self.trips if _on_day(self.policy, t.back_at, self.day)),
            "trips_by_group": self.trips_by_group(),
            "trips_by_window_group": self.trips_by_window_group(),
            "overdue_returns": [t.as_dict(self.policy) for t in self.overdue_returns()],
            "still_out": [t.as_dict(self.policy) for t in self.still_out()],
            "refusals": self.refusals,
            "anomalies": [a.__dict__ for a in self.anomalies],
        }


def _window_order(window: str) -> tuple[int, str]:
    if window.startswith("override:"):
        return (2, window)
    if window == "open":
        return (1, window)
    return (0, window)


def day_summary(store: Store, day: date, *, as_of: datetime) -> DaySummary:
    """The community's `day` as this gate knows it (its own events and those it pulled)."""
    name, policy = _context(store)
    start = policy.day_start(day)
    end = policy.day_start(day + timedelta(days=1))
    trips = [
        t
        for t in build_trips(store, policy, since=start, as_of=as_of)
        if _on_day(policy, t.out_at, day) or _on_day(policy, t.back_at, day)
    ]
    trips.sort(key=lambda t: (t.out_at or t.back_at or start, t.household.number))
    refusals = {
        r["reason"]: int(r["n"])
        for r in store.query(
            "select reason, count(*) as n from all_events e where kind = 'deny'"
            f" and wall_time >= ? and wall_time < ? and {NOT_ANNULLED}"
            " group by reason order by n desc, reason",
            [iso(start), iso(end)],
        )
    }
    anomalies = tuple(
        Anomaly(
            r["anomaly_id"], r["kind"], r["household"], r["gate_id"], r["detail"], r["detected_at"]
        )
        for r in store.query(
            "select * from anomalies where detected_at >= ? and detected_at < ?"
            " order by detected_at, anomaly_id",
            [iso(start), iso(end)],
        )
    )
    return DaySummary(name, day, policy, as_of, tuple(trips), refusals, anomalies)


def summary_lines(s: DaySummary, lang: str = "zh", *, windows: bool = True) -> list[str]:
    """The day summary as short lines of text (the CLI and the PDF print these); details are
    indented by two spaces. Without `windows`, no lines per release window (a table has them)."""
    zh = lang == "zh"
    d = s.as_dict()
    lines = [
        (
            f"外出 {d['trips']} 户次 {d['persons']} 人,返回 {d['returns']} 户次"
            if zh
            else f"Out: {d['trips']} trips, {d['persons']} people; back: {d['returns']}"
        )
    ]
    by_group = s.trips_by_group()
    if by_group:
        parts = [f"{group_label(g).get(lang)} {n}" for g, n in by_group.items()]
        lines.append(("按楼组:" if zh else "By group: ") + ("," if zh else ", ").join(parts))
    for window, groups in s.trips_by_window_group().items() if windows else ():
        parts = [f"{group_label(g).get(lang)} {n}" for g, n in groups.items()]
        label = window_words(window).get(lang)
        lines.append(f"  {label}" + (":" if zh else ": ") + ("," if zh else ", ").join(parts))
    late = s.overdue_returns()
    lines.append(f"超时返回 {len(late)}" if zh else f"Overdue returns: {len(late)}")
    for t in late:
        lines.append("  " + _trip_line(s.policy, t, lang, s.as_of))
    out = s.still_out()
    lines.append(f"未归 {len(out)}" if zh else f"Still out: {len(out)}")
    for t in out:
        lines.append("  " + _trip_line(s.policy, t, lang, s.as_of))
    total = sum(s.refusals.values())
    parts = [f"{reason_words(r).get(lang)} {n}" for r, n in s.refusals.items()]
    head = f"被拒 {total} 次" if zh else f"Refusals: {total}"
    lines.append(
        head + ((":" if zh else ": ") + ("," if zh else ", ").join(parts) if parts else "")
    )
    lines.append(f"异常 {len(s.anomalies)}" if zh else f"Anomalies: {len(s.anomalies)}")
    for a in s.anomalies:
        who = f" {'户号' if zh else 'household'} {a.household}" if a.household else ""
        lines.append(
            f"  {anomaly_words(a.kind).get(lang)}{who}" + (f": {a.detail}" if a.detail else "")
        )
    return lines


def _trip_line(policy: Policy, t: Trip, lang: str, as_of: datetime) -> str:
    h = t.household
    addr = h.address().get(lang)
    out = f"{policy.local(t.out_at):%m-%d %H:%M}" if t.out_at else "?"
    minutes = t.minutes_out(as_of)
    took = duration(minutes).get(lang) if minutes is not None else "?"
    back = f"{policy.local(t.back_at):%H:%M}" if t.back_at else None
    if lang == "zh":
        tail = f"{back} 返回(外出{took})" if back else f"已外出{took}"
        return f"{addr}(户号 {h.number}){out} 外出,{tail}"
    tail = f"back {back} ({took} out)" if back else f"out for {took}"
    return f"{addr} (household {h.number}): out {out}, {tail}"


def summary_title(s: DaySummary) -> Text:
    return Text(
        f"{s.community_name} {s.day:%m-%d} 出入小结", f"{s.community_name}: day summary {s.day}"
    )
