"""The gate desk: what the volunteer has on screen and what one key does to it.

A plain object over the gate service, with no Textual in it, so every flow can be tested without a
terminal. Keys act on the verdict on screen when there is one, and otherwise on the next scan:
`+`/`-` change the headcount, F2 the direction. Changing a recorded trip is never an edit: the
record is annulled and the scan decided again, both as new events.

One presentation is one decision: the same pass read again within the repeat window (a scanner
that reads twice, the camera and the scanner both) shows the first decision again and records
nothing. A return that would follow its own exit within a few minutes, and any household typed
in by hand, wait for the volunteer's key (`Pending`) before anything is recorded.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from menwei.core import operators
from menwei.core.clock import parse_iso
from menwei.core.decision import Decision
from menwei.core.errors import GateError, MenweiError
from menwei.core.eventlog import Event
from menwei.core.gate import MAX_HEADCOUNT, OVERRIDE_WINDOW, UNDO_WINDOW, GateService
from menwei.core.model import Direction, DirectionChoice, Household
from menwei.core.policy import SEALED_OVERRIDES
from menwei.core.shift import hand_over, last_undoable
from menwei.core.store import StoreError
from menwei.gateapp.settings import GateSettings

DIRECTION_CYCLE: dict[DirectionChoice, DirectionChoice] = {
    "auto": "exit",
    "exit": "entry",
    "entry": "auto",
}
PASS_PREFIX = "MW:"


class DeskError(Exception):
    """Something the volunteer asked for that cannot be done; `key` names the words to show.

    `not_saved` is set when the database refused the write (disk full, locked, read-only):
    nothing was recorded, and the screen says so in full.
    """

    def __init__(self, key: str, *, not_saved: bool = False, **values: object) -> None:
        super().__init__(key)
        self.key = key
        self.not_saved = not_saved
        self.values = values


def not_saved(exc: BaseException) -> DeskError:
    return DeskError("error.not_saved", not_saved=True, message=str(exc))


def normalise(text: str) -> str:
    """The pass a scanner with Caps Lock on read in lower case is the same pass.

    Base45 has no lower-case letters, so upper-casing a text that starts `mw:` loses nothing;
    anything else is kept exactly as read (a space is a legal base45 character: never strip).
    """
    text = text.rstrip("\r\n")
    if text[:3].upper() == PASS_PREFIX and text.isascii():
        return text.upper()
    return text


@dataclass(frozen=True)
class Shown:
    """The verdict on screen and how to decide it again."""

    decision: Decision
    text: str | None  # the scanned text; None for a household typed in
    source: str


@dataclass(frozen=True)
class Repeat:
    """The same pass again within the repeat window: the first decision, nothing recorded."""

    decision: Decision
    seconds: int  # since the first read


@dataclass(frozen=True)
class Pending:
    """A decision that waits for the volunteer's key before it is recorded.

    `quick_return`: the household's own exit was only `seconds_out` ago (a copy, or a scanner
    that read twice). `manual`: a household typed in with no pass seen.
    """

    why: Literal["quick_return", "manual"]
    preview: Decision  # what recording would decide (not recorded)
    text: str | None
    source: str
    direction: DirectionChoice
    headcount: int
    seconds_out: int | None = None


Outcome = Decision | Repeat | Pending


class Desk:
    """One volunteer's desk at one gate. Used from the UI thread only, like the gate service."""

    def __init__(self, gate: GateService, settings: GateSettings | None = None) -> None:
        self.gate = gate
        self.settings = settings or GateSettings()
        self.operator: str | None = None
        self.shown: Shown | None = None
        self.pending: Pending | None = None
        self.lane: DirectionChoice = self.settings.lane(gate.gate_id)
        self.next_headcount = 1
        self.headcount_chosen = False  # the volunteer set the next headcount with +/-
        self.next_direction: DirectionChoice = self.lane
        self.override_headcount: int | None = None
        # normalised pass text -> (monotonic seconds of its first read, the decision shown)
        self._seen: dict[str, tuple[float, Decision]] = {}

    def _mono(self) -> float:
        return self.gate.clock.monotonic_ns() / 1e9

    # --- signing in -----------------------------------------------------------------------------

    def recent_names(self) -> list[str]:
        try:
            return operators.recent_names(self.gate.store)
        except (MenweiError, sqlite3.Error):
            return []

    def sign_in(self, name: str, pin: str | None = None) -> None:
        """Start `name`'s shift, ending the shift of whoever was signed in (a handover)."""
        name = name.strip()
        if not name:
            raise DeskError("error.name_needed")
        try:
            if operators.listed_only(self.gate.store) and not operators.is_listed(
                self.gate.store, name
            ):
                raise DeskError("error.not_listed", name=name)
            if self.gate.needs_pin(name) and not pin:
                raise DeskError("error.pin_needed")
            hand_over(self.gate, name, pin=pin)
        except GateError as exc:
            key = "error.wrong_pin" if "PIN" in exc.message else "error.gate"
            raise DeskError(key, message=exc.message, zh=exc.zh) from None
        except (StoreError, sqlite3.Error, OSError) as exc:
            raise not_saved(exc) from None
        self.operator = name
        self.clear()

    def set_lane(self, lane: DirectionChoice) -> None:
        """This gate's lane from now on: exit, entry or auto (both ways)."""
        self.lane = lane
        self.next_direction = lane
        self.settings = self.settings.with_lane(self.gate.gate_id, lane)

    def sign_out(self) -> None:
        if self.operator is not None:
            try:
                self.gate.end_shift(self.operator)
            except (StoreError, sqlite3.Error, OSError) as exc:
                raise not_saved(exc) from None
        self.operator = None
        self.clear()

    def _who(self) -> str:
        if self.operator is None:
            raise DeskError("error.sign_in_first")
        return self.operator

    # --- scans ----------------------------------------------------------------------------------

    def scan(self, text: str, source: str, *, at: datetime | None = None) -> Outcome:
        """Decide on a scanned code with the next scan's direction and headcount.

        The same pass within the repeat window is a `Repeat`; a return right after its own
        exit is `Pending` until confirmed. Raises DeskError (not_saved) when the record could
        not be written: nothing was recorded, and the next read of the pass tries again.
        """
        who = self._who()
        text = normalise(text)
        repeat = self.repeat_of(text)
        if repeat is not None:
            return repeat
        pending = self.pending
        if pending is not None and pending.text == text:
            return pending
        direction = self.next_direction
        headcount = self.next_headcount
        preview = self._call(
            lambda: self.gate.decide(
                text,
                direction=direction,
                operator=who,
                headcount=1,
                source=source,
                at=at,
                dry_run=True,
            )
        )
        headcount = self._headcount_for(preview, headcount)
        quick = self._quick_return(preview)
        if quick is not None:
            self.pending = Pending(
                "quick_return",
                replace(preview, headcount=headcount),
                text,
                source,
                "entry",
                headcount,
                quick,
            )
            return self.pending
        decision = self._call(
            lambda: self.gate.decide(
                text, direction=direction, operator=who, headcount=headcount, source=source, at=at
            )
        )
        self._remember(text, decision)
        self._show(Shown(decision, text, source))
        return decision

    def repeat_of(self, text: str) -> Repeat | None:
        """The first decision, when `text` is the same presentation as a pass read lately."""
        text = normalise(text)
        now = self._mono()
        self._forget_old(now)
        seen = self._seen.get(text)
        return Repeat(seen[1], int(now - seen[0])) if seen is not None else None

    def _headcount_for(self, preview: Decision, chosen: int) -> int:
        """The headcount to record: a return defaults to its exit's; never more than live there."""
        household = preview.household
        if household is None:
            return chosen
        count = chosen
        if not self.headcount_chosen and preview.direction == "entry":
            state = self.gate.state_of(household.number)
            if state.state == "out" and state.headcount:
                count = state.headcount
        return max(1, min(count, household.members or MAX_HEADCOUNT, MAX_HEADCOUNT))

    def _quick_return(self, preview: Decision) -> int | None:
        """Seconds since the household's own exit, when a return would follow it this soon."""
        if preview.verdict != "green" or preview.direction != "entry":
            return None
        number = preview.household_number
        if number is None:
            return None
        state = self.gate.state_of(number)
        if state.state != "out" or not state.since:
            return None
        seconds = (preview.at - parse_iso(state.since)).total_seconds()
        if 0 <= seconds < self.settings.return_confirm_s:
            return int(seconds)
        return None

    def _call(self, fn: Callable[[], Decision]) -> Decision:
        """Run one gate call; its refusals and the store's faults become DeskErrors."""
        try:
            result = fn()
        except GateError as exc:
            raise DeskError("error.gate", message=exc.message, zh=exc.zh) from None
        except (StoreError, sqlite3.Error, OSError) as exc:
            raise not_saved(exc) from None
        return result

    def _remember(self, text: str | None, decision: Decision) -> None:
        """`text` was decided: a read of it within the window shows this decision again (the
        window counts from the first read of the presentation)."""
        if text is not None and decision.recorded:
            first = self._seen.get(text, (self._mono(), decision))[0]
            self._seen[text] = (first, decision)

    def _forget_old(self, now: float) -> None:
        window = self.settings.repeat_window_s
        for key in [k for k, (t, _) in self._seen.items() if now - t >= window]:
            del self._seen[key]

    def forget(self, text: str) -> None:
        """The next read of `text` is a new presentation (after an undo)."""
        self._seen.pop(normalise(text), None)

    def confirm(self) -> Decision:
        """The volunteer's key on a pending decision: record it now."""
        pending = self.pending
        if pending is None:
            raise DeskError("error.nothing_pending")
        who = self._who()
        number = pending.preview.household_number
        if pending.text is not None:
            text = pending.text
            decision = self._call(
                lambda: self.gate.decide(
                    text,
                    direction=pending.direction,
                    operator=who,
                    headcount=pending.headcount,
                    source=pending.source,
                )
            )
        else:
            assert number is not None
            decision = self._call(
                lambda: self.gate.decide_household(
                    number,
                    direction=pending.direction,
                    operator=who,
                    headcount=pending.headcount,
                    source="manual",
                )
            )
        self.pending = None
        self._remember(pending.text, decision)
        self._show(Shown(decision, pending.text, pending.source))
        return decision

    def drop_pending(self) -> None:
        """Esc on a pending decision: nothing is recorded."""
        self.pending = None

    def household(self, number: int, direction: DirectionChoice | None = None) -> Pending:
        """A household found by number or address (no pass in hand): what recording would
        decide, waiting for the volunteer's key. Nothing is recorded yet."""
        who = self._who()
        way = direction or self.next_direction
        preview = self._call(
            lambda: self.gate.decide_household(
                number, direction=way, operator=who, headcount=1, source="manual", dry_run=True
            )
        )
        headcount = self._headcount_for(preview, self.next_headcount)
        self.pending = Pending(
            "manual", replace(preview, headcount=headcount), None, "manual", way, headcount
        )
        return self.pending

    def register(self, number: int, note: str) -> Decision:
        """Register a returning resident (an entry with no exit on record), with a note."""
        who = self._who()
        household = self.gate.household(number)
        count = self.next_headcount
        if household is not None:
            count = max(1, min(count, household.members or count))
        decision = self._call(
            lambda: self.gate.register_return(number, note=note, operator=who, headcount=count)
        )
        self._show(Shown(decision, None, "manual"))
        return decision

    def find(self, query: str) -> list[Household]:
        return self.gate.find_households(query)

    def _show(self, shown: Shown) -> None:
        self.shown = shown
        self.next_headcount = 1
        self.headcount_chosen = False
        self.next_direction = self.lane
        self.override_headcount = None

    def clear(self) -> None:
        """The verdict timed out or was dismissed: keys now act on the next scan."""
        self.shown = None
        self.pending = None
        self.override_headcount = None

    # --- one key on the verdict ---------------------------------------------------------------

    def amendable(self) -> bool:
        """A green trip on screen, still recent enough to be undone and decided again."""
        shown = self.shown
        if shown is None or not shown.decision.recorded:
            return False
        d = shown.decision
        if d.kind not in ("exit", "entry") or d.verdict != "green":
            return False
        return self.gate.clock.now() - d.at <= UNDO_WINDOW

    def members_cap(self) -> int:
        shown = self.shown
        if shown is not None and shown.decision.household is not None:
            return max(1, min(shown.decision.household.members or MAX_HEADCOUNT, MAX_HEADCOUNT))
        return MAX_HEADCOUNT

    def step_headcount(self, step: int) -> Decision | None:
        """`+`/`-`: one more or one fewer, on the verdict on screen, else for the next scan.

        Capped at the household's members (an override may pass more: it has its own count).
        Returns the new decision when a recorded trip was decided again.
        """
        pending = self.pending
        if pending is not None:
            count = pending.headcount + step
            household = pending.preview.household
            cap = min(household.members or MAX_HEADCOUNT, MAX_HEADCOUNT) if household else 1
            if count < 1 or count > max(1, cap):
                raise DeskError("error.headcount", max=max(1, cap))
            self.pending = replace(
                pending, headcount=count, preview=replace(pending.preview, headcount=count)
            )
            return None
        shown = self.shown
        if shown is not None and self.amendable():
            count = shown.decision.headcount + step
            cap = self.members_cap()
            if count < 1 or count > cap:
                raise DeskError("error.headcount", max=cap)
            return self._redo(shown, direction=shown.decision.direction, headcount=count)
        if shown is not None and self.overridable():
            count = self.override_count() + step
            if not 1 <= count <= MAX_HEADCOUNT:
                raise DeskError("error.headcount", max=MAX_HEADCOUNT)
            self.override_headcount = count
            return None
        count = self.next_headcount + step
        if not 1 <= count <= MAX_HEADCOUNT:
            raise DeskError("error.headcount", max=MAX_HEADCOUNT)
        self.clear()
        self._seen.clear()  # the volunteer set up the next scan: it is a new presentation
        self.next_headcount = count
        self.headcount_chosen = count != 1
        return None

    def set_headcount(self, count: int) -> Decision | None:
        """Set the headcount outright (scripts and tests; the keyboard steps with +/-)."""
        current = (
            self.shown.decision.headcount
            if self.shown is not None and self.amendable()
            else self.override_count()
            if self.shown is not None and self.overridable()
            else self.next_headcount
        )
        if count == current:
            return None
        return self.step_headcount(count - current)

    def toggle_direction(self) -> Decision | None:
        """F2: the other direction for the verdict on screen, else for the next scan."""
        shown = self.shown
        if shown is not None and shown.decision.household is not None:
            d = shown.decision
            current = d.direction or d.proposed or "exit"
            other: Direction = "entry" if current == "exit" else "exit"
            if d.kind == "deny":
                return self._decide_again(shown, direction=other, headcount=d.headcount)
            if self.amendable():
                return self._redo(shown, direction=other, headcount=d.headcount)
        self.clear()
        self._seen.clear()  # the volunteer set up the next scan: it is a new presentation
        self.next_direction = DIRECTION_CYCLE[self.next_direction]
        return None

    def _redo(self, shown: Shown, *, direction: Direction | None, headcount: int) -> Decision:
        """Annul the trip on screen and decide the same scan again."""
        who = self._who()
        self._call(lambda: self.gate.annul_last(operator=who))
        return self._decide_again(shown, direction=direction, headcount=headcount)

    def _decide_again(
        self, shown: Shown, *, direction: Direction | None, headcount: int
    ) -> Decision:
        way: DirectionChoice = direction or "auto"
        number = shown.decision.household_number
        who = self._who()
        text = shown.text
        if text is not None:
            decision = self._call(
                lambda: self.gate.decide(
                    text, direction=way, operator=who, headcount=headcount, source=shown.source
                )
            )
        else:
            assert number is not None
            decision = self._call(
                lambda: self.gate.decide_household(
                    number, direction=way, operator=who, headcount=headcount, source="manual"
                )
            )
        self._remember(text, decision)
        self._show(replace(shown, decision=decision))
        return decision

    # --- refusals and mistakes ----------------------------------------------------------------

    def overridable(self, shown: Shown | None = None) -> bool:
        """Whether the refusal on screen (or `shown`, the one a dialog was opened on) may still
        be overridden: the policy's override time counts from the refusal, not the screen."""
        shown = shown if shown is not None else self.shown
        if shown is None:
            return False
        d = shown.decision
        return (
            d.overridable
            and d.recorded
            and d.event_id is not None
            and self.gate.clock.now() - d.at <= OVERRIDE_WINDOW
        )

    def override_reasons(self, shown: Shown | None = None) -> list[str]:
        """The reasons this refusal may be overridden for, in the policy's order."""
        shown = shown if shown is not None else self.shown
        reasons = list(self.gate.policy.override_reasons)
        if shown is not None and shown.decision.reason == "sealed":
            reasons = [r for r in reasons if r in SEALED_OVERRIDES]
        return reasons

    def override_count(self, shown: Shown | None = None) -> int:
        if self.override_headcount is not None:
            return self.override_headcount
        shown = shown if shown is not None else self.shown
        return shown.decision.headcount if shown else 1

    def override(
        self, reason: str, note: str | None = None, shown: Shown | None = None
    ) -> Decision:
        """Let the refused household through anyway, for `reason`: the refusal on screen, or
        `shown`, the refusal the override dialog was opened on (kept however long it took)."""
        shown = shown if shown is not None else self.shown
        if shown is None or not self.overridable(shown):
            raise DeskError("error.override_too_late" if shown else "error.not_overridable")
        event_id = shown.decision.event_id
        assert event_id is not None
        who = self._who()
        count = self.override_count(shown)
        decision = self._call(
            lambda: self.gate.override(
                event_id, reason=reason, operator=who, note=note, headcount=count
            )
        )
        self._remember(shown.text, decision)
        self._show(Shown(decision, None, shown.source))
        return decision

    def undoable(self) -> Event | None:
        """The record an undo would cancel, to show before asking."""
        try:
            return last_undoable(self.gate)
        except (StoreError, sqlite3.Error, OSError):
            return None

    def undo(self) -> Decision:
        """Cancel the last trip; its pass, read again, is a new presentation."""
        who = self._who()
        event = self.undoable()
        decision = self._call(lambda: self.gate.annul_last(operator=who))
        if event is not None and event.scan:
            self.forget(event.scan)
        self._show(Shown(decision, None, "manual"))
        return decision
