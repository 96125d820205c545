"""The gate service: scanned text in, a `Decision` out, recorded in the same transaction.

Decision order (DESIGN.md §5, the first failing check wins): not_a_pass/malformed,
foreign_community, unknown_key, forged, expired, revoked, unknown_household, already_out/already_in,
sealed/outside_window/quota_exceeded, ok. Coming home is never refused for policy reasons; a late
return is let in and flagged `overdue`.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlite_utils import Database

from menwei.core import eventlog, passes, state
from menwei.core.clock import Clock, SystemClock, boot_id, iso, parse_iso
from menwei.core.community import community_info, current_policy, public_keys
from menwei.core.decision import Decision, LastUse, title_for
from menwei.core.errors import GateError
from menwei.core.eventlog import Event, NewEvent
from menwei.core.model import (
    OVERRIDABLE,
    Direction,
    DirectionChoice,
    Household,
    HouseholdState,
    Verdict,
)
from menwei.core.policy import OVERRIDE_REASONS, SEALED_OVERRIDES, Policy
from menwei.core.store import Store
from menwei.core.text import Text, duration

UNDO_WINDOW = timedelta(minutes=2)
OVERRIDE_WINDOW = timedelta(minutes=10)
MAX_HEADCOUNT = 20

# Called inside the write transaction of every recorded decision (e.g. to queue a notification).
EventHook = Callable[[Database, Decision, Event], None]

REFUSALS: dict[str, tuple[Verdict, Text]] = {
    "not_a_pass": (
        "red",
        Text("这不是本小区的通行证二维码", "This QR code is not a compound pass"),
    ),
    "malformed": (
        "red",
        Text("通行证无法识别或版本不支持", "Unreadable pass or unsupported pass version"),
    ),
    "unknown_key": (
        "red",
        Text(
            "签发密钥未知:不是本居委会签发的证(或本机资料过旧)",
            "Unknown signing key: not issued by this committee (or this gate's data is outdated)",
        ),
    ),
    "forged": (
        "red",
        Text(
            "伪造或被篡改的通行证:请留下证件,联系居委会",
            "Forged or altered pass: keep the card and call the committee",
        ),
    ),
}


def _scan_evidence(text: str) -> str:
    """What of the scanned text goes in the log: a pass verbatim, anything else only as a hash."""
    if text.startswith(passes.PREFIX) and text.isascii() and len(text) <= passes.MAX_TEXT:
        return text
    digest = hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:16]
    return f"sha256:{digest} len={len(text)}"


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


@dataclass(frozen=True)
class Scan:
    """One presentation at the gate: when, by whom, from which source."""

    at: datetime
    operator: str
    source: str
    headcount: int
    scan: str  # what of the scanned text is kept as evidence
    dry_run: bool


@dataclass(frozen=True)
class Ids:
    household: int
    serial: int | None


@dataclass(frozen=True)
class Who:
    household: Household
    direction: Direction
    proposed: Direction


@dataclass(frozen=True)
class OutEntry:
    household: Household
    since: datetime
    gate_id: str
    headcount: int | None
    minutes_out: int
    overdue: bool


@dataclass(frozen=True)
class GroupWindow:
    group: str
    out_count: int
    households: int
    open_now: str | None  # "08:00-09:00" while a window is open
    next_start: datetime | None


class GateService:
    """One gate's decisions. Not thread-safe: one service per thread (it owns its connection)."""

    def __init__(
        self,
        store: Store,
        *,
        clock: Clock | None = None,
        hooks: Sequence[EventHook] = (),
    ) -> None:
        self.store = store
        self.clock: Clock = clock or SystemClock()
        self.hooks = list(hooks)
        self.warnings: list[str] = []
        self._boot = boot_id()
        self.reload()

    def reload(self) -> None:
        """Re-read identity, keys and policy (after sync brought new reference data)."""
        info = community_info(self.store)
        self.community = info.community
        self.community_name = info.name
        self.gate_id = info.gate_id
        self.gate_name = info.gate_name
        self.epoch = info.epoch
        self._keys = public_keys(self.store)
        self.policy_version, self.policy = current_policy(self.store)
        self._reference = self._reference_mark()

    def _reference_mark(self) -> tuple[object, ...]:
        row = self.store.one(
            "select (select max(version) from policy_versions) as p, "
            "(select group_concat(kid || status || public_key) from keys) as k, "
            "(select value from meta where key = 'device_epoch') as e, "
            "(select value from meta where key = 'gate_id') as g"
        )
        return tuple(row.values()) if row else ()

    def _fresh(self) -> None:
        """Reload when another connection (sync, the IT person) changed the reference data."""
        if self._reference_mark() != self._reference:
            self.reload()

    # --- the decision ---------------------------------------------------------------------------

    def decide(
        self,
        text: str,
        *,
        direction: DirectionChoice = "auto",
        operator: str,
        at: datetime | None = None,
        headcount: int = 1,
        source: str = "cli",
        dry_run: bool = False,
    ) -> Decision:
        """Decide on one scanned text and record it (unless `dry_run`)."""
        self._fresh()
        scan = Scan(
            at or self.clock.now(), operator, source, headcount, _scan_evidence(text), dry_run
        )
        parsed = passes.parse(text)
        if isinstance(parsed, passes.ParseFailure):
            return self._refuse(parsed.value, scan)
        data = parsed.data
        ids = Ids(data.household, data.serial)
        if data.community != self.community:
            msg = Text(
                f"外小区的通行证(小区编号 {data.community}),本门岗不通行",
                f"Pass of another community (#{data.community}), not valid here",
            )
            return self._refuse("foreign_community", scan, ids, message=msg)
        key = self._keys.get(data.kid)
        if key is None or key[1] != "active":
            return self._refuse("unknown_key", scan, ids)
        if not parsed.verify(key[0]):
            return self._refuse("forged", scan, ids)
        if data.valid_until < self.policy.local(scan.at).date():
            msg = Text(
                f"通行证已于 {data.valid_until:%Y-%m-%d} 过期,请到居委会换证",
                f"Pass expired on {data.valid_until:%Y-%m-%d}: renew it at the committee office",
            )
            return self._refuse("expired", scan, ids, message=msg)
        row = self.store.one(
            "select min_serial from revocations where household = ?", [data.household]
        )
        if row is not None and data.serial < int(row["min_serial"]):
            current = int(row["min_serial"])
            msg = Text(
                f"此证已挂失作废(现行第{current}版),请留下证件,联系居委会",
                f"Revoked pass (the current one is serial {current}): "
                "keep the card and call the committee",
            )
            return self._refuse("revoked", scan, ids, message=msg)
        return self._decide_household(ids, direction, scan)

    def decide_household(
        self,
        number: int,
        *,
        direction: DirectionChoice = "auto",
        operator: str,
        at: datetime | None = None,
        headcount: int = 1,
        source: str = "manual",
        dry_run: bool = False,
    ) -> Decision:
        """Decide for a household typed in by number (no pass to check): a manual scan."""
        self._fresh()
        scan = Scan(
            at or self.clock.now(), operator, source, headcount, f"manual:{number}", dry_run
        )
        return self._decide_household(Ids(number, None), direction, scan)

    def _decide_household(self, ids: Ids, direction: DirectionChoice, scan: Scan) -> Decision:
        number, at, headcount = ids.household, scan.at, scan.headcount
        household = self.household(number)
        if household is None:
            msg = Text(f"户号 {number} 不在花名册中", f"Household {number} is not in the roster")
            return self._refuse("unknown_household", scan, ids, message=msg)
        if not 1 <= headcount <= MAX_HEADCOUNT:
            raise GateError(
                f"Headcount must be 1-{MAX_HEADCOUNT}, not {headcount}.",
                f"人数应为1到{MAX_HEADCOUNT}人",
            )
        current = self.state_of(number)
        proposed: Direction = "entry" if current.state == "out" else "exit"
        way: Direction = proposed if direction == "auto" else direction
        who = Who(household, way, proposed)
        if way == "exit" and current.state == "out":
            return self._refuse("already_out", scan, ids, who=who, last=current)
        if way == "entry" and current.state == "in":
            return self._refuse("already_in", scan, ids, who=who, last=current)
        base: dict[str, Any] = dict(
            at=at,
            operator=scan.operator,
            source=scan.source,
            headcount=headcount,
            household_number=number,
            serial=ids.serial,
            household=household,
            direction=way,
            proposed=proposed,
        )
        trip = NewEvent(
            kind=way,
            reason="ok",
            operator=scan.operator,
            direction=way,
            household=number,
            serial=ids.serial,
            verdict="green",
            headcount=headcount,
            source=scan.source,
            scan=scan.scan,
        )
        if way == "exit":
            trips = self.trips_in_quota_period(number, at)
            refusal, window = self.policy.check_exit(
                building=household.building,
                group=household.group,
                category=household.category,
                at=at,
                trips_in_period=trips,
                headcount=headcount,
            )
            if refusal is not None:
                return self._refuse(refusal.reason, scan, ids, who=who, rule=refusal.rule)
            msg = Text(
                f"{household.address().zh} {household.group_name().zh} 外出{headcount}人",
                f"{household.address().en}, {household.group_name().en}: {headcount} going out",
            )
            rule = (
                None if window == "open" else Text(f"外出时段 {window}", f"release window {window}")
            )
            return self._record(
                replace(trip, window=window),
                decision_args=dict(base, message=msg, rule=rule, window=window),
                dry_run=scan.dry_run,
            )
        # Entry: never refused for policy; flagged when late.
        since = parse_iso(current.since) if current.since else at
        minutes = int((at - since).total_seconds() // 60)
        overdue = self.policy.is_overdue(since, at)
        out_for = duration(minutes)
        msg = Text(
            f"{household.address().zh} 返回{headcount}人,外出{out_for.zh}",
            f"{household.address().en}: {headcount} back after {out_for.en}",
        )
        rule = None
        if overdue and self.policy.max_time_out is not None:
            limit = duration(int(self.policy.max_time_out.total_seconds() // 60))
            rule = Text(
                f"超过外出时限{limit.zh},已记录超时", f"over the {limit.en} limit: recorded overdue"
            )
        return self._record(
            replace(trip, reason="overdue" if overdue else "ok", overdue=overdue),
            decision_args=dict(base, message=msg, rule=rule, overdue=overdue),
            dry_run=scan.dry_run,
        )

    def _refuse(
        self,
        reason: str,
        scan: Scan,
        ids: Ids | None = None,
        *,
        who: Who | None = None,
        message: Text | None = None,
        rule: Text | None = None,
        last: HouseholdState | None = None,
    ) -> Decision:
        verdict: Verdict = "red"
        last_use = None
        household = who.household if who else None
        if reason in REFUSALS:
            verdict, default = REFUSALS[reason]
            message = message or default
        if reason in ("already_out", "already_in"):
            verdict = "amber"
            assert last is not None
            last_use, message = self._last_use(reason, last)
        if message is None:
            assert household is not None
            message = Text(
                f"{household.address().zh} {household.group_name().zh}",
                f"{household.address().en}, {household.group_name().en}",
            )
        new = NewEvent(
            kind="deny",
            reason=reason,
            operator=scan.operator,
            direction=who.direction if who else None,
            household=ids.household if ids else None,
            serial=ids.serial if ids else None,
            verdict=verdict,
            headcount=scan.headcount if household is not None else None,
            source=scan.source,
            scan=scan.scan,
        )
        args: dict[str, Any] = dict(
            at=scan.at,
            operator=scan.operator,
            source=scan.source,
            headcount=scan.headcount,
            household_number=ids.household if ids else None,
            serial=ids.serial if ids else None,
            household=household,
            direction=who.direction if who else None,
            proposed=who.proposed if who else None,
            message=message,
            rule=rule,
            last_use=last_use,
            verdict=verdict,
            reason=reason,
        )
        return self._record(new, decision_args=args, dry_run=scan.dry_run)

    def _last_use(self, reason: str, last: HouseholdState) -> tuple[LastUse | None, Text]:
        """The amber 'possible copy' message, with the time and gate of the last use."""
        if not last.since:
            return None, Text(
                "该户没有外出记录:返回的居民请登记",
                "No exit on record: register a returning resident",
            )
        when = self.policy.local(parse_iso(last.since))
        gate = last.gate_id or "?"
        if reason == "already_out":
            text = Text(
                f"该户 {when:%m-%d %H:%M} 已从{gate}外出,未回:可能是复印件,请核实身份",
                f"Household already out since {when:%m-%d %H:%M} ({gate}): "
                "possible copy, check who this is",
            )
        else:
            text = Text(
                f"该户 {when:%m-%d %H:%M} 已从{gate}返回:可能是复印件,请核实身份",
                f"Household already came in at {when:%m-%d %H:%M} ({gate}): "
                "possible copy, check who this is",
            )
        return LastUse(last.since, gate), text

    def _record(self, new: NewEvent, *, decision_args: dict[str, Any], dry_run: bool) -> Decision:
        args = dict(decision_args)
        args.pop("scan", None)
        verdict: Verdict = args.pop("verdict", new.verdict or "green")
        reason = args.pop("reason", new.reason)
        direction = args.pop("direction", new.direction)
        decision = Decision(
            verdict=verdict,
            reason=reason,
            direction=direction,
            title=title_for(verdict, direction),
            kind=new.kind,
            overridable=new.kind == "deny" and reason in OVERRIDABLE,
            policy_version=self.policy_version,
            **args,
        )
        if dry_run:
            return decision
        new = replace(new, policy_version=self.policy_version)
        with self.store.write() as db:
            event = self._append(db, new, decision.at)
            decision = replace(decision, recorded=True, event_id=event.event_id, seq=event.seq)
            for hook in self.hooks:
                hook(db, decision, event)
        return decision

    def _append(self, db: Database, new: NewEvent, at: datetime) -> Event:
        event = eventlog.append(
            db,
            new,
            gate_id=self.gate_id,
            epoch=self.epoch,
            wall=at,
            mono_ns=self.clock.monotonic_ns(),
            boot_id=self._boot,
            clock_offset_ms=self.clock_offset_ms(),
        )
        if new.household is not None and state.direction_of(new.kind, new.direction):
            state.apply(db, new.household, event.as_dict())
        return event

    # --- corrections and exceptions ----------------------------------------------------------

    def override(
        self,
        event_id: str,
        *,
        reason: str,
        operator: str,
        note: str | None = None,
        at: datetime | None = None,
        headcount: int | None = None,
    ) -> Decision:
        """Let a refused household through anyway, for a stated reason: its own event."""
        at = at or self.clock.now()
        row = self.store.one("select * from events where event_id = ?", [event_id])
        if row is None or row["kind"] != "deny":
            raise GateError(
                "Only a refusal recorded at this gate can be overridden.",
                "只能特批本门岗记录的拒绝",
            )
        if row["reason"] not in OVERRIDABLE:
            raise GateError(
                f"A refusal for {row['reason']} cannot be overridden: call the committee.",
                "这种拒绝不能特批,请联系居委会",
            )
        if reason not in self.policy.override_reasons:
            allowed = ", ".join(self.policy.override_reasons)
            raise GateError(
                f"Override reason {reason!r} is not allowed here ({allowed}).",
                "本小区不允许这个特批原因",
            )
        if reason == "other" and not (note and note.strip()):
            raise GateError(
                "An override for 'other' needs the reason in words.", "选“其他”要写明原因"
            )
        if row["reason"] == "sealed" and reason not in SEALED_OVERRIDES:
            raise GateError(
                "A sealed building opens only for a medical or emergency trip.",
                "封控楼只能因就医或紧急情况特批",
            )
        if at - parse_iso(row["wall_time"]) > OVERRIDE_WINDOW:
            raise GateError(
                "That refusal is too old to override: scan the pass again.",
                "这次拒绝已超过10分钟,请重新扫码",
            )
        done = self.store.one(
            "select 1 from events where ref = ? and kind in ('override', 'annul')", [event_id]
        )
        if done is not None:
            raise GateError(
                "That refusal was already overridden or undone.", "这次拒绝已特批或撤销过了"
            )
        household = self.household(int(row["household"])) if row["household"] else None
        if household is None:
            raise GateError(
                "An override needs a household in the roster.", "不在花名册的户不能特批"
            )
        way: Direction = row["direction"] or "exit"
        count = headcount or int(row["headcount"] or 1)
        label = OVERRIDE_REASONS[reason]
        said = f"({note.strip()})" if note and note.strip() else ""
        msg = Text(
            f"{household.address().zh} 特批{'外出' if way == 'exit' else '返回'}{count}人:"
            f"{label.zh}{said}",
            f"{household.address().en}: {count} {'out' if way == 'exit' else 'in'} by override "
            f"({label.en}{': ' + note.strip() if note and note.strip() else ''})",
        )
        rule = Text(
            f"原因:{self._reason_words(row['reason']).zh}",
            f"was refused: {self._reason_words(row['reason']).en}",
        )
        return self._record(
            NewEvent(
                kind="override",
                reason=row["reason"],
                operator=operator,
                direction=way,
                household=household.number,
                serial=row["serial"],
                verdict="green",
                headcount=count,
                source=row["source"],
                window=f"override:{reason}" if way == "exit" else None,
                ref=event_id,
                override_reason=reason,
                note=note.strip() if note else None,
            ),
            decision_args=dict(
                at=at,
                operator=operator,
                source=row["source"] or "cli",
                headcount=count,
                household_number=household.number,
                serial=row["serial"],
                household=household,
                message=msg,
                rule=rule,
                window=f"override:{reason}" if way == "exit" else None,
            ),
            dry_run=False,
        )

    def annul_last(self, *, operator: str, at: datetime | None = None) -> Decision:
        """Undo this gate's last trip event (exit, entry, override, registration) within 2 minutes."""
        at = at or self.clock.now()
        row = self.store.one(
            "select * from events where kind in ('exit', 'entry', 'override', 'register') "
            "order by seq desc limit 1"
        )
        if row is None:
            raise GateError("Nothing to undo.", "没有可撤销的记录")
        if self.store.one(
            "select 1 from events where kind = 'annul' and ref = ?", [row["event_id"]]
        ):
            raise GateError("The last scan was already undone.", "上一条记录已撤销过了")
        age = at - parse_iso(row["wall_time"])
        if row["boot_id"] == self._boot:
            age = max(
                age, timedelta(microseconds=(self.clock.monotonic_ns() - row["mono_ns"]) / 1000)
            )
        if age > UNDO_WINDOW:
            raise GateError("Undo works only within 2 minutes of a scan.", "只能撤销2分钟内的记录")
        number = int(row["household"])
        household = self.household(number)
        msg = Text(
            f"已撤销户号 {number} 的上一条记录({row['kind']} {self._local_hm(row['wall_time'])})",
            f"Undid household {number}'s last record ({row['kind']} "
            f"{self._local_hm(row['wall_time'])})",
        )
        new = NewEvent(
            kind="annul",
            reason=row["reason"],
            operator=operator,
            direction=row["direction"],
            household=number,
            serial=row["serial"],
            ref=row["event_id"],
        )
        decision = Decision(
            verdict="amber",
            reason=row["reason"],
            direction=row["direction"],
            household_number=number,
            household=household,
            serial=row["serial"],
            headcount=int(row["headcount"] or 1),
            at=at,
            title=Text("已撤销", "Undone"),
            message=msg,
            kind="annul",
            operator=operator,
            policy_version=self.policy_version,
        )
        with self.store.write() as db:
            event = self._append(db, replace(new, policy_version=self.policy_version), at)
            state.rebuild(db, [number])
            decision = replace(decision, recorded=True, event_id=event.event_id, seq=event.seq)
            for hook in self.hooks:
                hook(db, decision, event)
        return decision

    def register_return(
        self,
        number: int,
        *,
        note: str,
        operator: str,
        headcount: int = 1,
        at: datetime | None = None,
    ) -> Decision:
        """Register a returning resident (work, hospital discharge): an entry with no exit."""
        at = at or self.clock.now()
        if not note.strip():
            raise GateError(
                "Registering a returning resident needs a note (where from, why).",
                "返回登记要写明说明(从哪里回来、为什么)",
            )
        household = self.household(number)
        if household is None:
            raise GateError(
                f"Household {number} is not in the roster.", f"户号 {number} 不在花名册中"
            )
        if self.state_of(number).state == "out":
            raise GateError(
                "This household is out: scan its pass to let it back in.",
                "该户正在外出:请扫码让其返回",
            )
        msg = Text(
            f"{household.address().zh} 返回居民登记{headcount}人:{note.strip()}",
            f"{household.address().en}: {headcount} returning resident(s) registered: "
            f"{note.strip()}",
        )
        return self._record(
            NewEvent(
                kind="register",
                reason="ok",
                operator=operator,
                direction="entry",
                household=number,
                verdict="green",
                headcount=headcount,
                source="manual",
                note=note.strip(),
            ),
            decision_args=dict(
                at=at,
                operator=operator,
                source="manual",
                headcount=headcount,
                household_number=number,
                serial=None,
                household=household,
                message=msg,
                rule=Text(
                    "请联系楼组红色管家护送到家", "ask the building steward to escort them home"
                ),
            ),
            dry_run=False,
        )

    # --- shifts -------------------------------------------------------------------------------

    def set_pin(self, operator: str, pin: str | None) -> None:
        now = iso(self.clock.now())
        with self.store.write() as db:
            db.execute(
                "insert into operators(name, pin_hash, created_at) values (?, ?, ?) "
                "on conflict(name) do update set pin_hash = excluded.pin_hash",
                [operator, hash_pin(pin) if pin else None, now],
            )

    def needs_pin(self, operator: str) -> bool:
        row = self.store.one("select pin_hash from operators where name = ?", [operator])
        return bool(row and row["pin_hash"])

    def start_shift(self, operator: str, *, pin: str | None = None) -> Event:
        operator = operator.strip()
        if not operator:
            raise GateError("Sign in with your name.", "请输入名字签到")
        row = self.store.one("select pin_hash from operators where name = ?", [operator])
        if row and row["pin_hash"] and not (pin and check_pin(pin, row["pin_hash"])):
            raise GateError("Wrong PIN.", "密码不对")
        return self._shift_event("shift_start", operator)

    def end_shift(self, operator: str, *, note: str | None = None) -> Event:
        return self._shift_event("shift_end", operator, note)

    def _shift_event(self, kind: str, operator: str, note: str | None = None) -> Event:
        with self.store.write() as db:
            return self._append(
                db,
                NewEvent(
                    kind=kind,
                    reason="ok",
                    operator=operator,
                    note=note,
                    policy_version=self.policy_version,
                ),
                self.clock.now(),
            )

    def current_operator(self) -> str | None:
        row = self.store.one(
            "select kind, operator from events where kind in ('shift_start', 'shift_end') "
            "order by seq desc limit 1"
        )
        return row["operator"] if row and row["kind"] == "shift_start" else None

    # --- what the screens show ----------------------------------------------------------------

    def household(self, number: int) -> Household | None:
        row = self.store.one("select * from households where household = ?", [number])
        return household_from_row(row) if row else None

    def find_households(self, query: str) -> list[Household]:
        from menwei.core.roster import find_households

        return find_households(self.store, query)

    def state_of(self, number: int) -> HouseholdState:
        return state.get(self.store.db, number)

    def proposed_direction(self, number: int) -> Direction:
        return "entry" if self.state_of(number).state == "out" else "exit"

    def trips_in_quota_period(self, number: int, at: datetime) -> int:
        start = self.policy.quota_period_start(at)
        if start is None:
            return 0
        row = self.store.one(
            "select count(*) as n from all_events e where household = ? and wall_time >= ? "
            "and wall_time <= ? and (kind = 'exit' or (kind = 'override' and direction = 'exit'))"
            f" and {state.NOT_ANNULLED}",
            [number, iso(start), iso(at)],
        )
        return int(row["n"]) if row else 0

    def out_now(self, at: datetime | None = None) -> list[OutEntry]:
        """Households out now, overdue ones first, then the longest out."""
        at = at or self.clock.now()
        entries = []
        for row in self.store.query(
            "select s.*, h.* from household_state s join households h using (household) "
            "where s.state = 'out'"
        ):
            since = parse_iso(row["since"])
            entries.append(
                OutEntry(
                    household=household_from_row(row),
                    since=since,
                    gate_id=row["gate_id"],
                    headcount=row["headcount"],
                    minutes_out=int((at - since).total_seconds() // 60),
                    overdue=self.policy.is_overdue(since, at),
                )
            )
        entries.sort(key=lambda e: (not e.overdue, e.since))
        return entries

    def group_windows(self, at: datetime | None = None) -> list[GroupWindow]:
        """Per building group: how many are out, and its current and next release window."""
        at = at or self.clock.now()
        rows = self.store.query(
            "select h.building_group as g, count(*) as n, "
            "sum(case when s.state = 'out' then 1 else 0 end) as out "
            "from households h left join household_state s using (household) "
            "group by h.building_group"
        )
        result = []
        for r in rows:
            status = self.policy.window_status(r["g"], "", at)
            result.append(
                GroupWindow(
                    group=r["g"],
                    out_count=int(r["out"] or 0),
                    households=int(r["n"]),
                    open_now=status.open_now.label() if status.open_now else None,
                    next_start=status.next_start,
                )
            )
        result.sort(
            key=lambda g: (not g.group.isdigit(), int(g.group) if g.group.isdigit() else 0, g.group)
        )
        return result

    def recent_events(
        self,
        *,
        since: datetime | None = None,
        household: int | None = None,
        group: str | None = None,
        reason: str | None = None,
        operator: str | None = None,
        limit: int = 200,
    ) -> list[Event]:
        """This gate's events, newest first, filtered as the log screen asks."""
        where = ["1 = 1"]
        params: list[Any] = []
        if since is not None:
            where.append("e.wall_time >= ?")
            params.append(iso(since))
        if household is not None:
            where.append("e.household = ?")
            params.append(household)
        if group is not None:
            where.append("h.building_group = ?")
            params.append(group)
        if reason is not None:
            where.append("e.reason = ?")
            params.append(reason)
        if operator is not None:
            where.append("e.operator = ?")
            params.append(operator)
        rows = self.store.query(
            "select e.* from events e left join households h on h.household = e.household "
            f"where {' and '.join(where)} order by e.seq desc limit {int(limit)}",
            params,
        )
        return [eventlog.event_from_row(r) for r in rows]

    def verify_log(self) -> eventlog.ChainReport:
        return eventlog.verify(self.store)

    def clock_offset_ms(self) -> int | None:
        row = self.store.one("select value from sync_state where key = 'clock_offset_ms'")
        return int(row["value"]) if row else None

    def explain_policy(self) -> Policy:
        return self.policy

    # --- helpers --------------------------------------------------------------------------------

    def _local_hm(self, wall_time: str) -> str:
        return f"{self.policy.local(parse_iso(wall_time)):%H:%M}"

    @staticmethod
    def _reason_words(reason: str) -> Text:
        return REASON_WORDS.get(reason, Text(reason, reason))


REASON_WORDS: dict[str, Text] = {
    "not_a_pass": Text("不是通行证", "not a pass"),
    "malformed": Text("无法识别", "unreadable"),
    "foreign_community": Text("外小区的证", "another community's pass"),
    "unknown_key": Text("密钥未知", "unknown key"),
    "forged": Text("伪造", "forged"),
    "expired": Text("过期", "expired"),
    "revoked": Text("已作废", "revoked"),
    "unknown_household": Text("不在花名册", "not in the roster"),
    "already_out": Text("已外出未回", "already out"),
    "already_in": Text("已在小区内", "already in"),
    "sealed": Text("封控/管控", "sealed"),
    "outside_window": Text("不在外出时段", "outside the release window"),
    "quota_exceeded": Text("超出外出次数", "quota used up"),
    "ok": Text("通过", "ok"),
    "overdue": Text("超时返回", "overdue return"),
}


def household_from_row(row: dict[str, Any]) -> Household:
    return Household(
        number=int(row["household"]),
        building=row["building"],
        unit=row["unit"],
        room=row["room"],
        group=row["building_group"],
        members=int(row["members"]),
        category=row["category"],
        contact=row["contact"],
    )
