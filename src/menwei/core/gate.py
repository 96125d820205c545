"""The gate service: scanned text in, a `Decision` out, recorded in the same transaction.

The rules themselves are the pure function `rules.decide()`; this module reads the facts they need,
records the decision with its hooks, and keeps the corrections (override, undo, registration of a
returning resident). Shifts and PINs live in `shift.py`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlite_utils import Database

from menwei.core import eventlog, passes, rules, state
from menwei.core.clock import Clock, SystemClock, boot_id, iso, parse_iso
from menwei.core.community import community_info, current_policy, public_keys
from menwei.core.decision import Decision, title_for
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
from menwei.core.reasons import REASON_WORDS, reason_words
from menwei.core.rules import MAX_HEADCOUNT, Facts, Presented
from menwei.core.store import Store
from menwei.core.text import Text

# Re-exported: screens and registers import these names from here.
__all__ = ["MAX_HEADCOUNT", "REASON_WORDS", "EventHook", "GateService", "household_from_row"]

UNDO_WINDOW = timedelta(minutes=2)
OVERRIDE_WINDOW = timedelta(minutes=10)

# Called inside the write transaction of every recorded decision (e.g. to queue a notification).
EventHook = Callable[[Database, Decision, Event], None]


def _scan_evidence(text: str) -> str:
    """What of the scanned text goes in the log: a pass verbatim, anything else only as a hash."""
    if text.startswith(passes.PREFIX) and text.isascii() and len(text) <= passes.MAX_TEXT:
        return text
    digest = hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:16]
    return f"sha256:{digest} len={len(text)}"


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
        presented = Presented(at or self.clock.now(), operator, source, headcount, direction)
        return self._decide(passes.parse(text), presented, _scan_evidence(text), dry_run)

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
        presented = Presented(at or self.clock.now(), operator, source, headcount, direction)
        return self._decide(number, presented, f"manual:{number}", dry_run)

    def _decide(
        self, scanned: rules.Scanned, presented: Presented, evidence: str, dry_run: bool
    ) -> Decision:
        self._fresh()
        decision = rules.decide(scanned, self.facts_for(scanned, presented.at), presented)
        if dry_run:
            return decision
        return self._commit(decision, _event_for(decision, evidence))

    def facts_for(self, scanned: rules.Scanned, at: datetime) -> Facts:
        """Everything `rules.decide()` looks at, read from this gate's database."""
        facts = Facts(
            community=self.community,
            keys=self._keys,
            policy=self.policy,
            policy_version=self.policy_version,
        )
        number = rules.household_of(scanned)
        if number is None:
            return facts
        row = self.store.one("select min_serial from revocations where household = ?", [number])
        current = self.state_of(number)
        trips = self.trips_in_quota_period(number, at) if self.policy.quota is not None else 0
        return replace(
            facts,
            revocation_floor=int(row["min_serial"]) if row is not None else None,
            household=self.household(number),
            state=current,
            trips_in_period=trips,
        )

    def _record(self, new: NewEvent, *, decision_args: dict[str, Any], dry_run: bool) -> Decision:
        args = dict(decision_args)
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
        return self._commit(decision, new)

    def _commit(self, decision: Decision, new: NewEvent) -> Decision:
        """Append the decision's event and run the hooks, in one write transaction."""
        new = replace(new, policy_version=self.policy_version)
        with self.store.write() as db:
            event = self._append(db, new, decision.at)
            decision = replace(decision, recorded=True, event_id=event.event_id, seq=event.seq)
            for hook in self.hooks:
                hook(db, decision, event)
        return decision

    def append(self, new: NewEvent, at: datetime | None = None) -> Event:
        """Append one event without a decision (shift start and end), in its own transaction."""
        with self.store.write() as db:
            return self._append(
                db, replace(new, policy_version=self.policy_version), at or self.clock.now()
            )

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

    # --- shifts (kept here for the screens and scripts; the logic is in shift.py) ----------------

    def set_pin(self, operator: str, pin: str | None) -> None:
        from menwei.core import shift

        shift.set_pin(self, operator, pin)

    def needs_pin(self, operator: str) -> bool:
        from menwei.core import shift

        return shift.needs_pin(self, operator)

    def start_shift(self, operator: str, *, pin: str | None = None) -> Event:
        from menwei.core import shift

        return shift.start_shift(self, operator, pin=pin)

    def end_shift(self, operator: str, *, note: str | None = None) -> Event:
        from menwei.core import shift

        return shift.end_shift(self, operator, note=note)

    def current_operator(self) -> str | None:
        from menwei.core import shift

        return shift.current_operator(self)

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
        return rules.proposed_direction(self.state_of(number))

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
        return reason_words(reason)


def _event_for(decision: Decision, evidence: str) -> NewEvent:
    """The event that records a decision of the rules (`evidence`: what of the scan is kept)."""
    return NewEvent(
        kind=decision.kind or "deny",
        reason=decision.reason,
        operator=decision.operator,
        direction=decision.direction,
        household=decision.household_number,
        serial=decision.serial,
        verdict=decision.verdict,
        headcount=decision.headcount if decision.household is not None else None,
        source=decision.source,
        scan=evidence,
        window=decision.window,
        overdue=decision.overdue,
    )


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
