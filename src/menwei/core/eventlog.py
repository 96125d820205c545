"""The gate's event log: append-only, UUIDv7 ids, a contiguous sequence and a hash chain.

Each event's `body` is its canonical JSON; `hash = sha256(prev_hash + "\\n" + body)`. The first
event links to GENESIS. A gap, an edit or a deletion breaks the chain and `verify()` names it.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from menwei.core.clock import iso
from menwei.core.ordering import hlc_of_key, next_hlc, order_key_of
from menwei.core.store import Store

GENESIS = "0" * 64
KINDS = ("exit", "entry", "deny", "override", "annul", "shift_start", "shift_end", "register")
# Events that move a household in or out.
TRIP_KINDS = ("exit", "entry", "override", "register")


def uuid7(at: datetime | None = None) -> str:
    """A UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then random bits."""
    ms = int(at.timestamp() * 1000) if at is not None else time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= ((rand >> 62) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@dataclass(frozen=True)
class NewEvent:
    """What the gate service asks to record; the log adds ids, times and the chain."""

    kind: str
    reason: str
    operator: str
    direction: str | None = None
    household: int | None = None
    serial: int | None = None
    verdict: str | None = None
    headcount: int | None = None
    source: str | None = None
    policy_version: int | None = None
    window: str | None = None
    ref: str | None = None
    override_reason: str | None = None
    note: str | None = None
    scan: str | None = None
    overdue: bool = False


@dataclass(frozen=True)
class Event(NewEvent):
    seq: int = 0
    event_id: str = ""
    gate_id: str = ""
    epoch: int = 0
    wall_time: str = ""
    mono_ns: int = 0
    boot_id: str | None = None
    clock_offset_ms: int | None = None
    prev_hash: str = GENESIS
    hash: str = ""
    hlc_ms: int | None = None  # its logical time in the shared order (core/ordering.py)

    def body_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("prev_hash")
        d.pop("hash")
        d["overdue"] = bool(d["overdue"])
        if d["hlc_ms"] is None:  # written before the shared order existed
            d.pop("hlc_ms")
        return d

    @property
    def okey(self) -> str:
        """Its place in the shared order of every gate and the server."""
        return order_key_of(self.body_dict())

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_EVENT_FIELDS = tuple(f.name for f in fields(Event))


def canonical(body: dict[str, Any]) -> str:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def chain_hash(prev_hash: str, body: str) -> str:
    return hashlib.sha256((prev_hash + "\n" + body).encode("utf-8")).hexdigest()


def append(
    db: Database,
    new: NewEvent,
    *,
    gate_id: str,
    epoch: int,
    wall: datetime,
    mono_ns: int,
    boot_id: str | None,
    clock_offset_ms: int | None,
    household_key: str | None = None,
) -> Event:
    """Append one event inside the caller's write transaction.

    `household_key` is the order key of the household's last known trip: the new event is
    placed after it, and after this gate's previous event, in the shared order.
    """
    if new.kind not in KINDS:
        raise ValueError(f"unknown event kind {new.kind!r}")
    last = next(
        iter(db.query("select seq, hash, okey from events order by seq desc limit 1")), None
    )
    seq = 1 if last is None else int(last["seq"]) + 1
    prev = GENESIS if last is None else str(last["hash"])
    hlc = next_hlc(
        wall,
        clock_offset_ms,
        gate_last=hlc_of_key(last["okey"]) if last is not None else None,
        household_last=hlc_of_key(household_key),
    )
    draft = Event(
        **asdict(new),
        seq=seq,
        event_id=uuid7(wall),
        gate_id=gate_id,
        epoch=epoch,
        wall_time=iso(wall),
        mono_ns=mono_ns,
        boot_id=boot_id,
        clock_offset_ms=clock_offset_ms,
        prev_hash=prev,
        hlc_ms=hlc,
    )
    body = canonical(draft.body_dict())
    event = Event(**{**asdict(draft), "hash": chain_hash(prev, body)})
    row = event.as_dict()
    row["overdue"] = int(event.overdue)
    row["body"] = body
    row["okey"] = event.okey
    cols = ", ".join(row)
    marks = ", ".join("?" for _ in row)
    db.execute(f"insert into events ({cols}) values ({marks})", list(row.values()))
    return event


def event_from_row(row: dict[str, Any]) -> Event:
    values = {k: row[k] for k in _EVENT_FIELDS if k in row}
    values["overdue"] = bool(values.get("overdue"))
    return Event(**values)


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    count: int
    head_seq: int
    head_hash: str
    first_break: int | None = None
    problem: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def verify(store: Store) -> ChainReport:
    """Walk the whole log: contiguous sequence, bodies matching their columns, linked hashes."""
    prev = GENESIS
    expected_seq = 1
    count = 0
    for row in store.db.query("select * from events order by seq"):
        seq = int(row["seq"])
        count += 1
        if seq != expected_seq:
            return ChainReport(
                False, count, seq, prev, expected_seq, f"event {expected_seq} is missing"
            )
        event = event_from_row(row)
        body = canonical(event.body_dict())
        if body != row["body"]:
            return ChainReport(False, count, seq, prev, seq, f"event {seq} was altered")
        if row["prev_hash"] != prev:
            return ChainReport(
                False, count, seq, prev, seq, f"event {seq} does not follow event {seq - 1}"
            )
        if chain_hash(prev, body) != row["hash"]:
            return ChainReport(False, count, seq, prev, seq, f"event {seq} has a wrong hash")
        prev = str(row["hash"])
        expected_seq += 1
    return ChainReport(True, count, expected_seq - 1, prev)


def iter_events(
    store: Store,
    *,
    since: datetime | None = None,
    after_seq: int = 0,
    household: int | None = None,
    limit: int | None = None,
    newest_first: bool = False,
) -> Iterator[Event]:
    where = ["seq > ?"]
    params: list[Any] = [after_seq]
    if since is not None:
        where.append("wall_time >= ?")
        params.append(iso(since))
    if household is not None:
        where.append("household = ?")
        params.append(household)
    sql = f"select * from events where {' and '.join(where)} order by seq"
    if newest_first:
        sql += " desc"
    if limit is not None:
        sql += f" limit {int(limit)}"
    for row in store.db.query(sql, params):
        yield event_from_row(row)
