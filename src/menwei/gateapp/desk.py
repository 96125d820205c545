"""The gate desk: what the volunteer has on screen and what one key does to it.

A plain object over the gate service, with no Textual in it, so every flow can be tested without a
terminal. Keys act on the verdict on screen when there is one, and otherwise on the next scan:
a digit changes the headcount, F2 the direction. Changing a recorded trip is never an edit: the
record is annulled and the scan decided again, both as new events.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from menwei.core.decision import Decision
from menwei.core.errors import GateError
from menwei.core.eventlog import Event
from menwei.core.gate import MAX_HEADCOUNT, OVERRIDE_WINDOW, UNDO_WINDOW, GateService
from menwei.core.model import Direction, DirectionChoice, Household
from menwei.core.policy import SEALED_OVERRIDES
from menwei.core.shift import hand_over, last_undoable

DIRECTION_CYCLE: dict[DirectionChoice, DirectionChoice] = {
    "auto": "exit",
    "exit": "entry",
    "entry": "auto",
}


class DeskError(Exception):
    """Something the volunteer asked for that cannot be done; `key` names the words to show."""

    def __init__(self, key: str, **values: object) -> None:
        super().__init__(key)
        self.key = key
        self.values = values


@dataclass(frozen=True)
class Shown:
    """The verdict on screen and how to decide it again."""

    decision: Decision
    text: str | None  # the scanned text; None for a household typed in
    source: str


class Desk:
    """One volunteer's desk at one gate. Used from the UI thread only, like the gate service."""

    def __init__(self, gate: GateService) -> None:
        self.gate = gate
        self.operator: str | None = None
        self.shown: Shown | None = None
        self.next_headcount = 1
        self.next_direction: DirectionChoice = "auto"
        self.override_headcount: int | None = None

    # --- signing in -----------------------------------------------------------------------------

    def sign_in(self, name: str, pin: str | None = None) -> None:
        """Start `name`'s shift, ending the shift of whoever was signed in (a handover)."""
        name = name.strip()
        if not name:
            raise DeskError("error.name_needed")
        if self.gate.needs_pin(name) and not pin:
            raise DeskError("error.pin_needed")
        try:
            hand_over(self.gate, name, pin=pin)
        except GateError as exc:
            key = "error.wrong_pin" if "PIN" in exc.message else "error.gate"
            raise DeskError(key, message=exc.message, zh=exc.zh) from None
        self.operator = name
        self.clear()

    def sign_out(self) -> None:
        if self.operator is not None:
            self.gate.end_shift(self.operator)
        self.operator = None
        self.clear()

    def _who(self) -> str:
        if self.operator is None:
            raise DeskError("error.sign_in_first")
        return self.operator

    # --- scans ----------------------------------------------------------------------------------

    def scan(self, text: str, source: str, *, at: datetime | None = None) -> Decision:
        """Decide on a scanned code with the next scan's direction and headcount."""
        try:
            decision = self.gate.decide(
                text,
                direction=self.next_direction,
                operator=self._who(),
                headcount=self.next_headcount,
                source=source,
                at=at,
            )
        except GateError as exc:
            raise DeskError("error.gate", message=exc.message, zh=exc.zh) from None
        self._show(Shown(decision, text, source))
        return decision

    def household(self, number: int) -> Decision:
        """Decide for a household found by number or address (no pass in hand)."""
        try:
            decision = self.gate.decide_household(
                number,
                direction=self.next_direction,
                operator=self._who(),
                headcount=self.next_headcount,
                source="manual",
            )
        except GateError as exc:
            raise DeskError("error.gate", message=exc.message, zh=exc.zh) from None
        self._show(Shown(decision, None, "manual"))
        return decision

    def register(self, number: int, note: str) -> Decision:
        """Register a returning resident (an entry with no exit on record), with a note."""
        try:
            decision = self.gate.register_return(
                number, note=note, operator=self._who(), headcount=self.next_headcount
            )
        except GateError as exc:
            raise DeskError("error.gate", message=exc.message, zh=exc.zh) from None
        self._show(Shown(decision, None, "manual"))
        return decision

    def find(self, query: str) -> list[Household]:
        return self.gate.find_households(query)

    def _show(self, shown: Shown) -> None:
        self.shown = shown
        self.next_headcount = 1
        self.next_direction = "auto"
        self.override_headcount = None

    def clear(self) -> None:
        """The verdict timed out or was dismissed: keys now act on the next scan."""
        self.shown = None
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

    def set_headcount(self, count: int) -> Decision | None:
        """A digit key: the headcount of the verdict on screen, else of the next scan.

        Returns the new decision when a recorded trip was decided again.
        """
        if not 1 <= count <= MAX_HEADCOUNT:
            raise DeskError("error.headcount", max=MAX_HEADCOUNT)
        shown = self.shown
        if shown is not None and self.amendable():
            if shown.decision.headcount == count:
                return None
            return self._redo(shown, direction=shown.decision.direction, headcount=count)
        if shown is not None and self.overridable():
            self.override_headcount = count
            return None
        self.next_headcount = count
        return None

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
        self.next_direction = DIRECTION_CYCLE[self.next_direction]
        return None

    def _redo(self, shown: Shown, *, direction: Direction | None, headcount: int) -> Decision:
        """Annul the trip on screen and decide the same scan again."""
        try:
            self.gate.annul_last(operator=self._who())
        except GateError as exc:
            raise DeskError("error.gate", message=exc.message, zh=exc.zh) from None
        return self._decide_again(shown, direction=direction, headcount=headcount)

    def _decide_again(
        self, shown: Shown, *, direction: Direction | None, headcount: int
    ) -> Decision:
        way: DirectionChoice = direction or "auto"
        number = shown.decision.household_number
        try:
            if shown.text is not None:
                decision = self.gate.decide(
                    shown.text,
                    direction=way,
                    operator=self._who(),
                    headcount=headcount,
                    source=shown.source,
                )
            else:
                assert number is not None
                decision = self.gate.decide_household(
                    number,
                    direction=way,
                    operator=self._who(),
                    headcount=headcount,
                    source="manual",
                )
        except GateError as exc:
            raise DeskError("error.gate", message=exc.message, zh=exc.zh) from None
        self._show(replace(shown, decision=decision))
        return decision

    # --- refusals and mistakes ----------------------------------------------------------------

    def overridable(self) -> bool:
        shown = self.shown
        if shown is None:
            return False
        d = shown.decision
        return (
            d.overridable
            and d.recorded
            and d.event_id is not None
            and self.gate.clock.now() - d.at <= OVERRIDE_WINDOW
        )

    def override_reasons(self) -> list[str]:
        """The reasons this refusal may be overridden for, in the policy's order."""
        reasons = list(self.gate.policy.override_reasons)
        if self.shown is not None and self.shown.decision.reason == "sealed":
            reasons = [r for r in reasons if r in SEALED_OVERRIDES]
        return reasons

    def override_count(self) -> int:
        if self.override_headcount is not None:
            return self.override_headcount
        return self.shown.decision.headcount if self.shown else 1

    def override(self, reason: str, note: str | None = None) -> Decision:
        """Let the refused household on screen through, for `reason`."""
        shown = self.shown
        if shown is None or not self.overridable():
            raise DeskError("error.not_overridable")
        event_id = shown.decision.event_id
        assert event_id is not None
        try:
            decision = self.gate.override(
                event_id,
                reason=reason,
                operator=self._who(),
                note=note,
                headcount=self.override_count(),
            )
        except GateError as exc:
            raise DeskError("error.gate", message=exc.message, zh=exc.zh) from None
        self._show(Shown(decision, None, shown.source))
        return decision

    def undoable(self) -> Event | None:
        """The record an undo would cancel, to show before asking."""
        return last_undoable(self.gate)

    def undo(self) -> Decision:
        try:
            decision = self.gate.annul_last(operator=self._who())
        except GateError as exc:
            raise DeskError("error.gate", message=exc.message, zh=exc.zh) from None
        self._show(Shown(decision, None, "manual"))
        return decision
