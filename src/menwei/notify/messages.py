"""The texts of notifications: short, in Chinese and English (each target reads one language).

Pure functions from plain values to a `Message`; nothing here reads the database or the network.
A message's `key` makes it unique in the outbox: queueing the same key twice queues it once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from html import escape
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


def _stamp(at: datetime) -> str:
    """'11-24 10:20' (local time): a chat is read later, the day matters."""
    return f"{at:%m-%d %H:%M}"


def _head(*parts: Text) -> Text:
    """The first line of a body: where, who, when ('东门 · 3栋2单元301室 · 11-24 10:20')."""
    kept = [p for p in parts if p.zh or p.en]
    return Text(" · ".join(p.zh for p in kept), " · ".join(p.en for p in kept))


def _lines(head: Text, *rest: Text) -> Text:
    return Text(
        "\n".join([head.zh, *(r.zh for r in rest)]), "\n".join([head.en, *(r.en for r in rest)])
    )


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


def _addr(h: Household) -> Text:
    """'3栋2单元301室(户号 1203)': the short form for a first line."""
    return Text(f"{h.address().zh}(户号 {h.number})", f"{h.address().en} (household {h.number})")


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
    duty = Text(f"值班:{operator}。", f"On duty: {operator}.")
    claimed = Text(f"证上户号 {number}", f"claims household {number}") if number else Text("", "")
    if reason == "forged":
        title = Text("伪造通行证", "Forged pass")
        who = claimed
        detail = Text(
            "有人出示伪造或被篡改的通行证,未放行。证件应已留下,请居委会核实。",
            "A forged or altered pass was presented and refused. The card should have been "
            "kept: committee, please check.",
        )
        severity: Severity = "failure"
    elif reason == "revoked":
        title = Text("已作废的通行证", "Revoked pass")
        who = _addr(household) if household else Text(f"户号 {number}", f"household {number}")
        full = _who(household) if household else who
        detail = Text(
            f"{full.zh}出示已挂失作废的通行证(第{serial}版),未放行。",
            f"{full.en} presented a revoked pass (serial {serial}) and was refused.",
        )
        severity = "warning"
    elif reason == "foreign_community":
        title = Text("外小区通行证", "Pass of another community")
        who = Text(f"小区编号 {other_community}", f"community #{other_community}")
        detail = Text(
            f"有人出示其他小区(编号 {other_community})的通行证,未放行。",
            f"A pass of another community (#{other_community}) was presented and refused.",
        )
        severity = "warning"
    else:
        title = Text("密钥未知的通行证", "Pass with an unknown key")
        who = claimed
        detail = Text(
            "通行证的签发密钥本门岗不认识,未放行。可能是伪造,也可能是本门岗资料过旧:请同步后核实。",
            "A pass signed with a key this gate does not know was refused. Forged, or this "
            "gate's data is old: sync, then check.",
        )
        severity = "warning"
    return Message(
        key=key,
        topic=reason,
        title=title,
        body=_lines(
            _head(Text(gate, gate), who, Text(_stamp(at), _stamp(at))),
            detail + Text(duty.zh, " " + duty.en),
        ),
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
        body=_lines(
            _head(Text(gate, gate), _addr(household), Text(_stamp(at), _stamp(at))),
            Text(
                f"{who.zh}特批{way.zh} {headcount} 人,理由:{label.zh}{said.zh}。"
                f"原被拒原因:{why.zh}。值班:{operator}。",
                f"{who.en}, {headcount} let {way.en} by override "
                f"({label.en}{said.en}). Refused for: {why.en}. On duty: {operator}.",
            ),
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
        body=_lines(
            _head(Text(gate, gate), _addr(household), Text(_stamp(now), _stamp(now))),
            Text(
                f"{who.zh}{_when(out_at, now)} 从{gate}外出{count.zh},已外出{took.zh},"
                f"超过外出时限{limit.zh},尚未返回。",
                f"{who.en}:{count.en or ' they'} went out at {_when(out_at, now)} via {gate}, "
                f"out for {took.en}, past the {limit.en} limit and not back yet.",
            ),
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
        body=_lines(
            _head(Text(gate, gate), _addr(household), Text(_stamp(back_at), _stamp(back_at))),
            Text(
                f"{who.zh}{_hm(back_at)} 从{gate}返回,外出{took.zh}{over.zh}。",
                f"{who.en} came back at {_hm(back_at)} via {gate} after {took.en}{over.en}.",
            ),
        ),
        severity="warning",
        group=household.group,
        event_id=event_id,
    )


def escort_call(
    *,
    key: str,
    at: datetime,
    gate: str,
    operator: str,
    household: Household,
    headcount: int,
    note: str | None,
    event_id: str,
) -> Message:
    """A returning resident was registered at the gate: the building group's steward (红色管家)
    is asked to come and escort them home (点对点)."""
    g = household.group_name()
    said = Text(f"({note})", f" ({note})") if note else Text("", "")
    return Message(
        key=key,
        topic="escort",
        title=Text("请到门口接回", "Escort needed at the gate"),
        body=_lines(
            _head(Text(gate, gate), _addr(household), Text(_stamp(at), _stamp(at))),
            Text(
                f"{gate}:{household.address().zh} 返回 {headcount} 人已登记{said.zh},"
                f"请{g.zh}红色管家到门口接回。值班:{operator}。",
                f"{gate}: {headcount} returning resident(s) of {household.address().en} "
                f"registered{said.en}. Steward of {g.en}, please come to the gate and escort "
                f"them home. On duty: {operator}.",
            ),
        ),
        severity="info",
        group=household.group,
        audience="group",
        event_id=event_id,
    )


def withdrawal_notice(
    original: Text,
    *,
    key: str,
    at: datetime,
    gate: str,
    operator: str,
    group: str | None,
    audience: Audience,
    event_id: str,
) -> Message:
    """A short correction after an alert whose gate record was undone (annulled)."""
    return Message(
        key=key,
        topic="correction",
        title=Text("更正", "Correction"),
        body=_lines(
            _head(Text(gate, gate), Text(_stamp(at), _stamp(at))),
            Text(
                f"上一条「{original.zh}」的门岗记录已由值班员撤销(录错),请忽略。值班:{operator}。",
                f'The gate record behind "{original.en}" was undone by the volunteer '
                f"(entered by mistake): please disregard it. On duty: {operator}.",
            ),
        ),
        severity="info",
        group=group,
        audience=audience,
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


def _escort_line(escorts: tuple[int, int]) -> Text:
    n, people = escorts
    return Text(
        f"返回登记 {n} 次 {people} 人(由红色管家接回)",
        f"Returning residents registered: {n} ({people} people), escorted by the stewards",
    )


def group_summary(register: Register, *, key: str, escorts: tuple[int, int] = (0, 0)) -> Message:
    """A building group's day in a few lines: totals, escorts, who is still out, who came back
    late."""
    label = group_label(register.group)
    lines_zh = [register.totals_text().zh]
    lines_en = [register.totals_text().en]
    if escorts[0]:
        lines_zh.append(_escort_line(escorts).zh)
        lines_en.append(_escort_line(escorts).en)
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


def community_summary(
    summary: DaySummary, *, key: str, escorts: tuple[int, int] = (0, 0)
) -> Message:
    """The community's day for the committee's chat, with the escorts called."""
    zh, en = summary_lines(summary, "zh"), summary_lines(summary, "en")
    if escorts[0]:
        zh, en = [*zh, _escort_line(escorts).zh], [*en, _escort_line(escorts).en]
    return Message(
        key=key,
        topic="summary",
        title=summary_title(summary),
        body=Text("\n".join(zh), "\n".join(en)),
        severity="info",
        audience="community",
    )


def test_message(community: str, gate: str, at: datetime) -> Text:
    """The body of `menwei notify test`."""
    return _lines(
        _head(Text(community, community), Text(gate, gate), Text(_stamp(at), _stamp(at))),
        Text(
            "门卫测试消息:收到即表示通知已设好。",
            "menwei test message: notifications are set up.",
        ),
    )


# --- how a message reads in a chat ---------------------------------------------------------------


def compose(title: str, body: str, *, rich: bool) -> str:
    """One chat message: its first line says what happened, where, who and when, the details
    follow. `rich` (HTML: the target renders it, apprise converts it to the target's own markup)
    sets the first line in bold; otherwise plain text. No Markdown heading: clients that do not
    render it would show a literal '# '."""
    head, _, rest = body.partition("\n")
    first = f"{title} · {head}" if head else title
    if not rich:
        return first + ("\n" + rest if rest else "")
    lines = [f"<b>{escape(title)}</b>" + (f" · {escape(head)}" if head else "")]
    lines += [escape(line) for line in rest.split("\n") if line]
    return "<br/>".join(lines)


FAILURE_WORDS: dict[str, Text] = {
    "cannot_connect": Text("连不上聊天服务器", "cannot connect to the chat server"),
    "login_refused": Text(
        "聊天服务器拒绝登录(用户名、密码或令牌不对)",
        "the chat server refused the login (user, password or token)",
    ),
    "unknown_room": Text("聊天室不存在(房间名写错?)", "no such room (is the room name misspelt?)"),
    "cannot_join": Text(
        "机器人进不了这个聊天室(请先邀请它)", "the bot cannot join the room (invite it first)"
    ),
    "no_room": Text(
        "网址里没有写聊天室,机器人也不在任何聊天室", "the URL names no room and the bot is in none"
    ),
    "bad_url": Text("apprise 看不懂这个网址", "apprise does not understand this URL"),
    "not_accepted": Text("对方没有接收这条消息", "the target did not accept the message"),
}


def failure_words(error: str) -> Text:
    """Why a delivery failed, from its stored form `code: detail`; any other text as it is."""
    code, _, detail = error.partition(": ")
    words = FAILURE_WORDS.get(code.strip())
    if words is None:
        return Text(error, error)
    if not detail.strip():
        return words
    return Text(f"{words.zh}:{detail}", f"{words.en}: {detail}")
