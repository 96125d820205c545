"""What the gate app's status bar says about sync: last sync, events waiting, offline or not.

Read-only and cheap (a few small queries): call it whenever the bar refreshes, from the thread
that owns the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from menwei.core.clock import parse_iso
from menwei.core.community import current_policy
from menwei.core.store import Store
from menwei.core.text import Text, duration
from menwei.sync.apply import get_state, state_int
from menwei.sync.protocol import CLOCK_WARN_MS

SyncState = Literal["not_enrolled", "never", "ok", "offline", "auth", "error"]


@dataclass(frozen=True)
class SyncStatus:
    state: SyncState
    server_url: str | None
    last_sync_at: str | None  # UTC ISO time of the last successful sync
    last_attempt_at: str | None
    last_error: str | None
    events_waiting: int  # this gate's events the server has not acknowledged
    clock_offset_ms: int | None
    open_anomalies: int
    rejected: int  # this gate's events the server refused (kept here, with the reason)
    text: Text  # one line for the status bar

    @property
    def enrolled(self) -> bool:
        return self.state != "not_enrolled"

    @property
    def clock_warning(self) -> bool:
        return self.clock_offset_ms is not None and abs(self.clock_offset_ms) > CLOCK_WARN_MS

    def as_dict(self) -> dict[str, object]:
        d = dict(self.__dict__)
        d["text"] = self.text.as_dict()
        d["clock_warning"] = self.clock_warning
        return d


def _local_hm(store: Store, at: str) -> str:
    try:
        _, policy = current_policy(store)
        return f"{policy.local(parse_iso(at)):%m-%d %H:%M}"
    except Exception:  # a status bar never fails over a time
        return at[5:16].replace("T", " ")


def sync_status(store: Store, *, now: datetime | None = None) -> SyncStatus:
    """The sync state of the gate whose database this is."""
    values = get_state(store)
    head = store.one("select coalesce(max(seq), 0) as n from events")
    head_seq = int(head["n"]) if head else 0
    waiting = max(0, head_seq - state_int(values, "acked_through_seq"))
    anomalies = store.one("select count(*) as n from anomalies where status = 'open'")
    rejected = store.one("select count(*) as n from sync_rejected")
    offset = int(values["clock_offset_ms"]) if "clock_offset_ms" in values else None
    url = values.get("server_url")
    last = values.get("last_sync_at")
    outcome = values.get("last_sync_outcome")
    state: SyncState
    if url is None:
        state = "not_enrolled"
    elif outcome is None:
        state = "never"
    elif outcome in ("ok", "offline", "auth"):
        state = outcome  # type: ignore[assignment]
    else:
        state = "error"
    when = _local_hm(store, last) if last else None
    ago = ""
    ago_en = ""
    if last and now is not None:
        minutes = int((now - parse_iso(last)).total_seconds() // 60)
        if minutes >= 1:
            d = duration(minutes)
            ago, ago_en = f"({d.zh}前)", f" ({d.en} ago)"
    last_zh = f"上次同步 {when}{ago}" if when else "尚未同步"
    last_en = f"last sync {when}{ago_en}" if when else "never synced"
    texts: dict[SyncState, Text] = {
        "not_enrolled": Text("未接入社区服务器", "not enrolled with a server"),
        "never": Text(f"尚未同步 · 待传 {waiting}", f"never synced · {waiting} waiting"),
        "ok": Text(f"已同步 {when} · 待传 {waiting}", f"synced {when} · {waiting} waiting"),
        "offline": Text(
            f"离线 · 待传 {waiting} · {last_zh}", f"offline · {waiting} waiting · {last_en}"
        ),
        "auth": Text(
            "同步被拒:本机已被撤销或口令无效,请联系信息员",
            "sync refused: this gate was revoked or its token is invalid; call the IT person",
        ),
        "error": Text(
            f"同步出错 · 待传 {waiting} · {last_zh}", f"sync error · {waiting} waiting · {last_en}"
        ),
    }
    text = texts[state]
    if offset is not None and abs(offset) > CLOCK_WARN_MS:
        minutes = max(1, round(abs(offset) / 60000))
        text = text + Text(f" · 本机时钟偏差 {minutes} 分钟", f" · clock off by {minutes} min")
    open_count = int(anomalies["n"]) if anomalies else 0
    if open_count:
        text = text + Text(f" · 异常 {open_count}", f" · {open_count} anomalies")
    return SyncStatus(
        state=state,
        server_url=url,
        last_sync_at=last,
        last_attempt_at=values.get("last_attempt_at"),
        last_error=values.get("last_sync_error"),
        events_waiting=waiting,
        clock_offset_ms=offset,
        open_anomalies=open_count,
        rejected=int(rejected["n"]) if rejected else 0,
        text=text,
    )
