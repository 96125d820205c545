"""The scan screen: the verdict of the last scan, the next scan's settings, the last few records."""

from __future__ import annotations

import math
import time
from typing import ClassVar

from rich.table import Table
from rich.text import Text as RichText
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Static

from menwei.core.clock import parse_iso
from menwei.core.decision import Decision
from menwei.core.eventlog import Event
from menwei.core.gate import REASON_WORDS
from menwei.gateapp.desk import DeskError
from menwei.gateapp.session import Session
from menwei.screens.base import GateScreen
from menwei.screens.verdict import VerdictPanel
from menwei.screens.widgets import KeyBar, StatusBar

RINGS = {"green": 1, "amber": 2, "red": 3}
RING_GAP_S = 0.35
RECENT_KINDS = ("exit", "entry", "deny", "override", "annul", "register")
# Refusals stay up longer than a green: the volunteer may need to read, ask, or override.
HOLD_FACTOR = {"green": 1.0, "amber": 3.0, "red": 3.0}
TALL = 34  # rows from which the verdict's words get a taller band


class ScanScreen(GateScreen):
    CSS_PATH = "scan.tcss"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f2", "toggle_direction", show=False),
        Binding("f3", "override", show=False),
        Binding("f4", "undo", show=False),
        Binding("f5", "lookup", show=False),
        Binding("f11", "register", show=False),
        Binding("f9", "present", show=False),
        Binding("escape", "clear", show=False),
        *[Binding(str(n), f"headcount({n})", show=False) for n in range(1, 10)],
    ]

    def __init__(self, session: Session) -> None:
        super().__init__(session)
        self.shown_at: float | None = None
        self.latencies_ms: list[float] = []

    def compose(self) -> ComposeResult:
        yield StatusBar(self.session)
        yield VerdictPanel(self.session)
        yield Static("", id="scan-next", markup=False)
        yield Static("", id="scan-recent", markup=False)
        yield KeyBar(self.session, self.key_hints())

    def on_mount(self) -> None:
        self.refresh_recent()
        self.refresh_next()
        self.set_interval(0.25, self.tick)

    def on_resize(self, event: events.Resize) -> None:
        tall = event.size.height >= TALL
        if tall != self.has_class("-tall"):
            self.set_class(tall, "-tall")
            self.refresh_recent()

    def key_hints(self) -> list[tuple[str, str]]:
        hints = [
            ("F1", "key.help"),
            ("F2", "key.direction"),
            ("F3", "key.override"),
            ("F4", "key.undo"),
            ("F5", "key.lookup"),
            ("F11", "key.register"),
            ("1-9", "key.headcount"),
            ("F6", "key.board"),
            ("F7", "key.log"),
            ("F8", "key.handover"),
        ]
        if self.session.presenter is not None:
            hints.append(("F9", "key.present"))
        hints.append(("F10", "key.language"))
        return hints

    def relabel(self) -> None:
        super().relabel()
        self.panel.redraw()
        self.refresh_next()
        self.refresh_recent()

    @property
    def panel(self) -> VerdictPanel:
        return self.query_one(VerdictPanel)

    # --- showing decisions ----------------------------------------------------------------------

    def take_scan(self, text: str, source: str, seen_at: float | None = None) -> Decision | None:
        """A code arrived: decide it, show it at once, ring."""
        try:
            decision = self.session.desk.scan(text, source)
        except DeskError as error:
            self.tell(error)
            return None
        self.present_decision(decision, seen_at)
        return decision

    def present_decision(self, decision: Decision, seen_at: float | None = None) -> None:
        self.shown_at = self.session.mono()
        self.panel.show(decision, self.remaining())
        self.ring(decision.verdict)
        self.refresh_next()
        # The verdict goes to the screen first; the lines below it follow in the next frame.
        self.call_after_refresh(self._rendered, seen_at)

    def _rendered(self, seen_at: float | None) -> None:
        if seen_at is not None:
            self.latencies_ms.append((time.monotonic() - seen_at) * 1000)
        for bar in self.query(StatusBar):
            bar.refresh_status()
        self.refresh_recent()

    def ring(self, verdict: str) -> None:
        """One bell for green, two for amber, three for red."""
        for i in range(RINGS.get(verdict, 1)):
            if i == 0:
                self.app.bell()
            else:
                self.set_timer(i * RING_GAP_S, self.app.bell)

    def remaining(self) -> int | None:
        d = self.session.desk.shown
        if d is None or self.shown_at is None:
            return None
        hold = self.session.verdict_seconds * HOLD_FACTOR.get(d.decision.verdict, 1.0)
        return max(0, math.ceil(hold - (self.session.mono() - self.shown_at)))

    def tick(self) -> None:
        left = self.remaining()
        if left is None:
            if self.panel.decision is not None:
                self.panel.show(None)
            else:
                self.panel.redraw_clock()
            return
        if left <= 0:
            self.action_clear()
        else:
            self.panel.tick(left)

    def refresh_next(self) -> None:
        desk = self.session.desk
        text = RichText()
        text.append(self.t("next.label"), style="bold")
        text.append("  ")
        text.append(self.t("next.direction", way=self.t(f"choice.{desk.next_direction}")))
        text.append("   ")
        text.append(self.t("next.headcount", count=desk.next_headcount))
        if self.session.presenter is not None:
            text.append("   ")
            text.append(self.t("next.present"), style="italic")
        self.query_one("#scan-next", Static).update(text)

    def refresh_recent(self) -> None:
        gate = self.session.gate
        rows = 10 if self.has_class("-tall") else 5
        recent = [e for e in gate.recent_events(limit=30) if e.kind in RECENT_KINDS][:rows]
        table = Table.grid(padding=(0, 2))
        table.add_column(no_wrap=True)
        table.add_column(justify="right", no_wrap=True)
        table.add_column(no_wrap=True)
        table.add_column(no_wrap=True)
        table.add_column(no_wrap=True, overflow="ellipsis")
        header = self.t("recent.title") if recent else self.t("recent.none")
        table.add_row(RichText(header, style="bold"), "", "", "", "")
        for e in recent:
            table.add_row(*self._recent_row(e))
        self.query_one("#scan-recent", Static).update(table)

    def _recent_row(self, e: Event) -> list[str | RichText]:
        s = self.session
        when = f"{s.local(parse_iso(e.wall_time)):%H:%M:%S}"
        household = s.gate.household(e.household) if e.household is not None else None
        where = s.w(household.address()) if household else ""
        style = {"green": "green", "amber": "yellow", "red": "red"}.get(e.verdict or "", "")
        if e.kind == "deny":
            what = s.w(REASON_WORDS.get(e.reason, REASON_WORDS["not_a_pass"]))
        else:
            what = self.t(f"kind.{e.kind}")
        if e.direction in ("exit", "entry") and e.kind != "deny":
            what += " " + self.t("recent.people", count=e.headcount or 1)
        return [
            when,
            str(e.household or ""),
            RichText(what, style=f"bold {style}".strip()),
            where,
            e.operator,
        ]

    # --- keys -----------------------------------------------------------------------------------

    def _after(self, decision: Decision | None) -> None:
        if decision is not None:
            self.present_decision(decision)
        else:
            self.panel.redraw()
            self.refresh_next()

    def action_headcount(self, count: int) -> None:
        try:
            self._after(self.session.desk.set_headcount(count))
        except DeskError as error:
            self.tell(error)

    def action_toggle_direction(self) -> None:
        try:
            self._after(self.session.desk.toggle_direction())
        except DeskError as error:
            self.tell(error)

    def action_clear(self) -> None:
        self.session.desk.clear()
        self.shown_at = None
        self.panel.show(None)
        self.refresh_next()

    def action_override(self) -> None:
        from menwei.screens.dialogs import OverrideChoice, OverrideScreen

        desk = self.session.desk
        if not desk.overridable():
            self.tell(DeskError("error.not_overridable"))
            return

        def done(choice: OverrideChoice | None) -> None:
            if choice is None:
                return
            try:
                decision = desk.override(choice.reason, choice.note)
            except DeskError as error:
                self.tell(error)
                return
            self.present_decision(decision)

        self.app.push_screen(OverrideScreen(self.session), done)

    def action_undo(self) -> None:
        from menwei.screens.dialogs import UndoScreen

        event = self.session.desk.undoable()
        if event is None:
            self.tell(DeskError("error.nothing_to_undo"))
            return

        def done(confirmed: bool | None) -> None:
            if not confirmed:
                return
            try:
                decision = self.session.desk.undo()
            except DeskError as error:
                self.tell(error)
                return
            if self.session.undone is not None and event.scan:
                self.session.undone(event.scan)
            self.present_decision(decision)

        self.app.push_screen(UndoScreen(self.session, event), done)

    def action_lookup(self) -> None:
        from menwei.screens.dialogs import LookupScreen

        def done(number: int | None) -> None:
            if number is None:
                return
            try:
                decision = self.session.desk.household(number)
            except DeskError as error:
                self.tell(error)
                return
            self.present_decision(decision)

        self.app.push_screen(LookupScreen(self.session), done)

    def action_register(self) -> None:
        from menwei.screens.dialogs import RegisterChoice, RegisterScreen

        shown = self.session.desk.shown
        number = shown.decision.household_number if shown is not None else None

        def done(choice: RegisterChoice | None) -> None:
            if choice is None:
                return
            try:
                decision = self.session.desk.register(choice.household, choice.note)
            except DeskError as error:
                self.tell(error)
                return
            self.present_decision(decision)

        self.app.push_screen(RegisterScreen(self.session, number), done)

    def action_present(self) -> None:
        from menwei.screens.dialogs import PresentScreen

        presenter = self.session.presenter
        if presenter is None:
            return

        def done(number: int | None) -> None:
            if number is not None:
                self.session.last_presented = number
                presenter.present(number)

        self.app.push_screen(PresentScreen(self.session, presenter), done)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "present":
            return self.session.presenter is not None
        return True
