"""What a volunteer's shift needs besides single decisions: signing in and out with a PIN, the
handover summary, the record an undo would cancel, a check that the clock is plausible, and a log
check that runs off the UI thread.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass
from datetime import datetime, timedelta

from menwei.core.clock import iso, parse_iso
from menwei.core.errors import GateError
from menwei.core.eventlog import TRIP_KINDS, ChainReport, Event, NewEvent, event_from_row, verify
from menwei.core.gate import UNDO_WINDOW, GateService, OutEntry
from menwei.core.home import Home
from menwei.core.store import Store
from menwei.core.text import Text

# A clock further than this from the community server's (measured at sync) is suspect.
CLOCK_OFFSET_LIMIT_MS = 2 * 60 * 1000
# Events written "in the future" of the clock by more than this mean the clock went back.
CLOCK_BEHIND_LIMIT = timedelta(minutes=1)
EARLIEST_PLAUSIBLE_YEAR = 2024


@dataclass(frozen=True)
class ShiftCounts:
    exits: int = 0
    entries: int = 0
    refusals: int = 0
    overrides: int = 0
    undone: int = 0


@dataclass(frozen=True)
class ShiftSummary:
    """What the next volunteer is told at handover."""

    operator: str | None
    started_at: datetime | None
    counts: ShiftCounts
    out_now: list[OutEntry]

    @property
    def overdue(self) -> list[OutEntry]:
        return [e for e in self.out_now if e.overdue]


def hash_pin(pin: str, salt: bytes | None = None) -> str:
    salt = salt or os.urandom(16)
    dk = hashlib.pbkdf2_hmac("sha256", pin.encode(), salt, 100_000)
    return f"pbkdf2${salt.hex()}${dk.hex()}"


def check_pin(pin: str, stored: str) -> bool:
    try:
        _, salt, _ = stored.split("$")
        expected = hash_pin(pin, bytes.fromhex(salt))
    except ValueError:
        return False
    return hmac.compare_digest(expected, stored)


def set_pin(gate: GateService, operator: str, pin: str | None) -> None:
    """Set (or with None, clear) the PIN `operator` signs in with."""
    now = iso(gate.clock.now())
    with gate.store.write() as db:
        db.execute(
            "insert into operators(name, pin_hash, created_at) values (?, ?, ?) "
            "on conflict(name) do update set pin_hash = excluded.pin_hash",
            [operator, hash_pin(pin) if pin else None, now],
        )


def needs_pin(gate: GateService, operator: str) -> bool:
    row = gate.store.one("select pin_hash from operators where name = ?", [operator])
    return bool(row and row["pin_hash"])


def start_shift(gate: GateService, operator: str, *, pin: str | None = None) -> Event:
    """Sign `operator` in (checking their PIN, if they have one): a shift_start event."""
    operator = operator.strip()
    if not operator:
        raise GateError("Sign in with your name.", "请输入名字签到")
    row = gate.store.one("select pin_hash from operators where name = ?", [operator])
    if row and row["pin_hash"] and not (pin and check_pin(pin, row["pin_hash"])):
        raise GateError("Wrong PIN.", "密码不对")
    return gate.append(NewEvent(kind="shift_start", reason="ok", operator=operator))


def end_shift(gate: GateService, operator: str, *, note: str | None = None) -> Event:
    return gate.append(NewEvent(kind="shift_end", reason="ok", operator=operator, note=note))


def current_operator(gate: GateService) -> str | None:
    """Who is signed in at this gate (the last shift event), if anyone."""
    row = gate.store.one(
        "select kind, operator from events where kind in ('shift_start', 'shift_end') "
        "order by seq desc limit 1"
    )
    return row["operator"] if row and row["kind"] == "shift_start" else None


def pin_ok(gate: GateService, operator: str, pin: str | None) -> bool:
    """Whether `pin` lets `operator` sign in (always, when the committee set no PIN for them)."""
    row = gate.store.one("select pin_hash from operators where name = ?", [operator])
    if not (row and row["pin_hash"]):
        return True
    return bool(pin) and check_pin(pin or "", row["pin_hash"])


def hand_over(gate: GateService, to: str, *, pin: str | None = None) -> None:
    """End the current shift (if any) and start `to`'s, checking the PIN before writing anything."""
    to = to.strip()
    if not to:
        raise GateError("Sign in with your name.", "请输入名字签到")
    if not pin_ok(gate, to, pin):
        raise GateError("Wrong PIN.", "密码不对")
    before = gate.current_operator()
    if before is not None and before != to:
        gate.end_shift(before, note=f"handed over to {to}")
    gate.start_shift(to, pin=pin)


def shift_started_at(gate: GateService, operator: str) -> datetime | None:
    """When `operator`'s current shift began (their last sign-in), if they are signed in."""
    row = gate.store.one(
        "select wall_time from events where kind = 'shift_start' and operator = ? "
        "order by seq desc limit 1",
        [operator],
    )
    return parse_iso(row["wall_time"]) if row else None


def shift_summary(
    gate: GateService, operator: str | None, at: datetime | None = None
) -> ShiftSummary:
    """The handover summary: this shift's counts and every household out now."""
    at = at or gate.clock.now()
    started = shift_started_at(gate, operator) if operator else None
    counts = ShiftCounts()
    if started is not None:
        rows = gate.store.query(
            "select kind, direction, count(*) as n from events where wall_time >= ? "
            "and kind in ('exit', 'entry', 'deny', 'override', 'annul', 'register') "
            "group by kind, direction",
            [iso(started)],
        )
        tally = {"exit": 0, "entry": 0, "deny": 0, "override": 0, "annul": 0}
        for r in rows:
            kind = "entry" if r["kind"] == "register" else r["kind"]
            tally[kind] += int(r["n"])
        counts = ShiftCounts(
            exits=tally["exit"],
            entries=tally["entry"],
            refusals=tally["deny"],
            overrides=tally["override"],
            undone=tally["annul"],
        )
    return ShiftSummary(operator, started, counts, gate.out_now(at))


def last_undoable(gate: GateService, at: datetime | None = None) -> Event | None:
    """The trip record `GateService.annul_last` would cancel now, or None if there is none."""
    at = at or gate.clock.now()
    kinds = ", ".join(f"'{k}'" for k in TRIP_KINDS)
    row = gate.store.one(f"select * from events where kind in ({kinds}) order by seq desc limit 1")
    if row is None:
        return None
    if gate.store.one("select 1 from events where kind = 'annul' and ref = ?", [row["event_id"]]):
        return None
    if at - parse_iso(row["wall_time"]) > UNDO_WINDOW:
        return None
    return event_from_row(row)


def clock_warning(gate: GateService, at: datetime | None = None) -> Text | None:
    """Words for the status bar when this laptop's clock looks wrong, else None."""
    at = at or gate.clock.now()
    if at.year < EARLIEST_PLAUSIBLE_YEAR:
        return Text("时钟不对:日期太早", "clock wrong: date too early")
    offset = gate.clock_offset_ms()
    if offset is not None and abs(offset) > CLOCK_OFFSET_LIMIT_MS:
        minutes = round(abs(offset) / 60000)
        way = Text("快", "fast") if offset > 0 else Text("慢", "slow")
        return Text(f"时钟{way.zh}约{minutes}分钟", f"clock ~{minutes} min {way.en}")
    row = gate.store.one("select wall_time from events order by seq desc limit 1")
    if row is not None and parse_iso(row["wall_time"]) - at > CLOCK_BEHIND_LIMIT:
        return Text("时钟倒退了:早于最后一条记录", "clock went back: before the last record")
    return None


def today_start(gate: GateService, at: datetime | None = None) -> datetime:
    """Where the community's current day began (policy `day_starts`), as an aware datetime."""
    at = at or gate.clock.now()
    policy = gate.policy
    return policy.day_start(policy.policy_day(at))


def verify_home_log(home: Home) -> ChainReport:
    """Walk the whole log of `home` on a connection of its own (safe in a worker thread)."""
    store = Store.open(home.db_path)
    try:
        return verify(store)
    finally:
        store.close()
