"""The texts of notifications: short, in Chinese and English (each target reads one language).

Pure functions from plain values to a `Message`; nothing here reads the database or the network.
A message's `key` makes it unique in the outbox: queueing the same key twice queues it once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from menwei.core.model import Household
from menwei.core.register import (
    DaySummary,
    Register,
    anomaly_words,
    override_words,
    reason_words,
    summary_lines,
    summary_title,
)
from menwei.core.text import Text, duration, group_label

Severity = Literal["info", "warning", "failure"]
# Who receives a message: the community's targets, the building group's, or both.
Audience = Literal["both", "community", "group"]

# Refusals that alert the committee at once.
ALERT_REASONS = ("forged", "revoked", "foreign_community", "unknown_key")


@dataclass(frozen=True)
class Message:
    key: str
    topic: str
    title: Text
    body: Text
    severity: Severity = "warning"
    group: str | None = None
    audience: Audience = "both"
    event_id: str | None = None


def _hm(at: datetime) -> str:
    return f"{at:%H:%M}"


def _when(at: datetime, now: datetime) -> str:
    """'10:05' on the same day as `now`, else '11-23 22:10' (both local times)."""
    return _hm(at) if at.date() == now.date() else f"{at:%m-%d %H:%M}"


def _who(h: Household) -> Text:
    """'3栋2单元301室(户号 1203,第3楼组)' / 'Bldg 3, unit 2, room 301 (household 1203, group 3)'."""
    g = h.group_name()
    return Text(
        f"{h.address().zh}(户号 {h.number},{g.zh})",
        f"{h.address().en} (household {h.number}, {g.en})",
    )


def _claimed(number: int | None) -> Text:
    if number is None:
        return Text("", "")
    return Text(f"(证上户号 {number})", f" (it claims household {number})")


def refusal_alert(
    reason: str,
    *,
    key: str,
    at: datetime,
    gate: str,
    operator: str,
    household: Household | None,
    number: int | None,
    serial: int | None,
    other_community: int | None,
    event_id: str,
) -> Message:
    """A forged, revoked, foreign or unknown-key pass was presented at the gate."""
    hm = _hm(at)
    duty = Text(f"值班:{operator}。", f"On duty: {operator}.")
    if reason == "forged":
        title = Text("伪造通行证", "Forged pass")
        body = Text(
            f"{hm} {gate}:有人出示伪造或被篡改的通行证{_claimed(number).zh},未放行。"
            "证件应已留下,请居委会核实。",
            f"{hm} {gate}: a forged or altered pass was presented{_claimed(number).en} "
            "and refused. The card should have been kept: committee, please check.",
        )
        severity: Severity = "failure"
    elif reason == "revoked":
        title = Text("已作废的通行证", "Revoked pass")
        who = _who(household) if household else Text(f"户号 {number}", f"household {number}")
        body = Text(
            f"{hm} {gate}:{who.zh}出示已挂失作废的通行证(第{serial}版),未放行。",
            f"{hm} {gate}: {who.en} presented a revoked pass (serial {serial}) and was refused.",
        )
        severity = "warning"
    elif reason == "foreign_community":
        title = Text("外小区通行证", "Pass of another community")
        body = Text(
            f"{hm} {gate}:有人出示其他小区(编号 {other_community})的通行证,未放行。",
            f"{hm} {gate}: a pass of another community (#{other_community}) was presented "
            "and refused.",
        )
        severity = "warning"
    else:
        title = Text("密钥未知的通行证", "Pass with an unknown key")
        body = Text(
            f"{hm} {gate}:通行证的签发密钥本门岗不认识{_claimed(number).zh},未放行。"
            "可能是伪造,也可能是本门岗资料过旧:请同步后核实。",
            f"{hm} {gate}: a pass signed with a key this gate does not know{_claimed(number).en} "
            "was refused. Forged, or this gate's data is old: sync, then check.",
        )
        severity = "warning"
    return Message(
        key=key,
        topic=reason,
        title=title,
        body=body + Text(duty.zh, " " + duty.en),
        severity=severity,
        group=household.group if household and reason == "revoked" else None,
        audience="both" if household and reason == "revoked" else "community",
        event_id=event_id,
    )


def override_alert(
    *,
    key: str,
    at: datetime,
    gate: str,
    operator: str,
    household: Household,
    direction: str,
    headcount: int,
    override_reason: str,
    note: str | None,
    refused_for: str,
    event_id: str,
) -> Message:
    """A volunteer let a refused household through for a stated reason."""
    label = override_words(override_reason)
    said = Text(f"({note})", f": {note}") if note else Text("", "")
    who = _who(household)
    way = Text("外出", "out") if direction == "exit" else Text("返回", "in")
    why = reason_words(refused_for)
    return Message(
        key=key,
        topic="override",
        title=Text("特批通行", "Override used"),
        body=Text(
            f"{_hm(at)} {gate}:{who.zh}特批{way.zh} {headcount} 人,理由:{label.zh}{said.zh}。"
            f"原被拒原因:{why.zh}。值班:{operator}。",
            f"{_hm(at)} {gate}: {who.en}, {headcount} let {way.en} by override "
            f"({label.en}{said.en}). Refused for: {why.en}. On duty: {operator}.",
        ),
        severity="warning",
        group=household.group,
        event_id=event_id,
    )


def still_out_alert(
    *,
    key: str,
    household: Household,
    out_at: datetime,
    now: datetime,
    gate: str,
    headcount: int | None,
    limit_minutes: int,
    event_id: str,
) -> Message:
    """A household went out and is past the longest time out, not back yet (local times)."""
    who = _who(household)
    limit = duration(limit_minutes)
    took = duration(int((now - out_at).total_seconds() // 60))
    count = Text(f" {headcount} 人", f" {headcount}") if headcount else Text("", "")
    return Message(
        key=key,
        topic="overdue",
        title=Text("超时未归", "Not back in time"),
        body=Text(
            f"{who.zh}{_when(out_at, now)} 从{gate}外出{count.zh},已外出{took.zh},"
            f"超过外出时限{limit.zh},尚未返回。",
            f"{who.en}:{count.en or ' they'} went out at {_when(out_at, now)} via {gate}, "
            f"out for {took.en}, past the {limit.en} limit and not back yet.",
        ),
        severity="warning",
        group=household.group,
        event_id=event_id,
    )


def late_return_alert(
    *,
    key: str,
    household: Household,
    out_at: datetime | None,
    back_at: datetime,
    gate: str,
    limit_minutes: int | None,
    event_id: str,
) -> Message:
    """A household came back after the longest time out (local times)."""
    who = _who(household)
    took = (
        duration(int((back_at - out_at).total_seconds() // 60))
        if out_at
        else Text("时间未知", "an unknown time")
    )
    limit = duration(limit_minutes) if limit_minutes else None
    over = Text(f",超过时限{limit.zh}", f", over the {limit.en} limit") if limit else Text("", "")
    return Message(
        key=key,
        topic="overdue",
        title=Text("超时返回", "Late return"),
        body=Text(
            f"{who.zh}{_hm(back_at)} 从{gate}返回,外出{took.zh}{over.zh}。",
            f"{who.en} came back at {_hm(back_at)} via {gate} after {took.en}{over.en}.",
        ),
        severity="warning",
        group=household.group,
        event_id=event_id,
    )


def anomaly_alert(
    *,
    key: str,
    kind: str,
    household: Household | None,
    number: int | None,
    gate_id: str | None,
    detail: str | None,
) -> Message:
    """The community server found something wrong across the gates' logs."""
    words = anomaly_words(kind)
    if household is not None:
        who = _who(household)
    elif number is not None:
        who = Text(f"户号 {number}", f"household {number}")
    else:
        who = Text("", "")
    parts_zh = [p for p in (who.zh, f"门岗 {gate_id}" if gate_id else "", detail or "") if p]
    parts_en = [p for p in (who.en, f"gate {gate_id}" if gate_id else "", detail or "") if p]
    return Message(
        key=key,
        topic="anomaly",
        title=Text(f"异常:{words.zh}", f"Anomaly: {words.en}"),
        body=Text(
            f"同步后发现:{words.zh}。" + (";".join(parts_zh) + "。" if parts_zh else ""),
            f"Found after a sync: {words.en}."
            + (" " + "; ".join(parts_en) + "." if parts_en else ""),
        ),
        severity="warning",
        group=household.group if household else None,
        event_id=None,
    )


def group_summary(register: Register, *, key: str) -> Message:
    """A building group's day in a few lines: totals, who is still out, who came back late."""
    label = group_label(register.group)
    lines_zh = [register.totals_text().zh]
    lines_en = [register.totals_text().en]
    out = [t for t in register.trips if t.still_out]
    late = [t for t in register.trips if t.came_back_late]
    for trips, zh, en in ((out, "未归", "Still out"), (late, "超时返回", "Came back late")):
        if not trips:
            continue
        names = [t.household.address() for t in trips[:8]]
        more = len(trips) - len(names)
        tail = Text(f" 等{len(trips)}户", f" and {more} more") if more > 0 else Text("", "")
        lines_zh.append(f"{zh}:" + "、".join(n.zh for n in names) + tail.zh)
        lines_en.append(f"{en}: " + "; ".join(n.en for n in names) + tail.en)
    return Message(
        key=key,
        topic="summary",
        title=Text(
            f"{label.zh} {register.day:%m-%d} 出入小结",
            f"{label.en}: day summary {register.day:%m-%d}",
        ),
        body=Text("\n".join(lines_zh), "\n".join(lines_en)),
        severity="info",
        group=register.group,
        audience="group",
    )


def community_summary(summary: DaySummary, *, key: str) -> Message:
    """The community's day for the committee's chat."""
    return Message(
        key=key,
        topic="summary",
        title=summary_title(summary),
        body=Text("\n".join(summary_lines(summary, "zh")), "\n".join(summary_lines(summary, "en"))),
        severity="info",
        audience="community",
    )


def test_message(community: str, gate: str, at: datetime) -> Text:
    """The body of `menwei notify test`."""
    return Text(
        f"门卫测试消息:{community} {gate} {_hm(at)}。收到即表示通知已设好。",
        f"menwei test message: {community}, {gate}, {_hm(at)}. Notifications are set up.",
    )
