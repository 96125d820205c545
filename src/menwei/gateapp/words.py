"""Small phrasings the screens share, kept Textual-free so they are tested on their own."""

from __future__ import annotations

import re
from datetime import datetime

from menwei.core.text import duration
from menwei.gateapp.i18n import tr

_GROUP = re.compile(r"^(?:第\s*)?(.+?)(?:\s*楼组)?$")


def group_key(typed: str) -> str | None:
    """The building group a volunteer typed, as the roster stores it: `第5楼组`, `5楼组`,
    `group 5` and `5` are all group "5"; a named group stays as typed. None when empty."""
    text = typed.strip()
    if not text:
        return None
    lowered = text.lower()
    if lowered.startswith("group "):
        return text[6:].strip() or None
    match = _GROUP.match(text)
    return match.group(1).strip() if match else text


def next_window(lang: str, now: datetime, start: datetime) -> str:
    """When a group's next window opens, said as the volunteer says it: "今天 14:00(还有2小时)",
    "明天 08:00", or a date further away. Both times are local."""
    days = (start.date() - now.date()).days
    hm = f"{start:%H:%M}"
    if days <= 0:
        minutes = max(1, int((start - now).total_seconds() // 60) + 1)
        wait = duration(minutes).get(lang)
        return tr(lang, "board.next_today", time=hm, wait=wait)
    if days == 1:
        return tr(lang, "board.next_tomorrow", time=hm)
    return tr(lang, "board.next_later", date=f"{start:%m-%d}", time=hm)
