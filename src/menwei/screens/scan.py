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
from textual.geometry import Size
from textual.widgets import Static

from menwei.core.clock import parse_iso
from menwei.core.decision import Decision
from menwei.core.eventlog import Event
from menwei.core.gate import REASON_WORDS
from menwei.gateapp.desk import DeskError, Outcome, Pending, Repeat
from menwei.gateapp.session import Session
from menwei.screens.base import GateScreen
from menwei.screens.verdict import BIG_ROWS, BIG_ROWS_TALL, VerdictPanel, look_of
from menwei.screens.widgets import KeyBar, StatusBar

RINGS = {"green": 1, "amber": 2, "red": 3, "grey": 1, "undone": 1}
RING_GAP_S = 0.35
RECENT_KINDS = ("exit", "entry", "deny", "override", "annul", "register")
# Refusals stay up longer than a green: the volunteer may need to read, ask, or override.
HOLD_FACTOR = {"green": 1.0, "amber": 3.0, "red": 3.0, "grey": 1.0, "undone": 1.0, "ask": 6.0}
TALL = 34  # rows from which the verdict's words get a taller band
SHORT = 22  # rows below which the last records give way to the verdict
NARROW = 70  # columns below which the key bar shows only the keys of the moment


class ScanScreen(GateScreen):
    CSS_PATH = "scan.tcss"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f2", "toggle_direction", show=False),
        Binding("f3", "override", show=False),
        Binding("f4", "undo", show=False),
        Binding("f5", "lookup", show=False),
        Binding("f11", "register", show=False),
        Binding("f9", "present", show=False),
        Binding("enter", "confirm", show=False),
        Binding("escape", "clear", show=False),
        Binding("plus,equals_sign", "headcount(1)", show=False),
        Binding("minus", "headcount(-1)", show=False),
        *[Binding(str(n), f"lookup('{n}')", show=False) for n in range(10)],
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
        self.fit(self.app.size)
        self.refresh_recent()
        self.refresh_next()
        self.set_interval(0.25, self.tick)

    def on_resize(self, event: events.Resize) -> None:
        self.fit(event.size)

    def on_screen_resume(self) -> None:
        self.fit(self.app.size)  # the terminal may have changed while a dialog was open
        super().on_screen_resume()

    def fit(self, size: Size) -> None:
        """Lay the screen out for the terminal's size (whoever has the focus when it changes)."""
        tall = size.height >= TALL
        short = size.height < SHORT
        narrow = size.width < NARROW
        self.panel.big_rows = BIG_ROWS_TALL if tall else BIG_ROWS if not short else 5
        changed = (tall, short, narrow) != (
            self.has_class("-tall"),
            self.has_class("-short"),
            self.has_class("-narrow"),
        )
        if changed:
            self.set_class(tall, "-tall")
            self.set_class(short, "-short")
            self.set_class(narrow, "-narrow")
            self.relabel()
        else:
            self.panel.redraw()

    def key_hints(self) -> list[tuple[str, str]]:
        if self.has_class("-narrow") or self.has_class("-short"):
            # Small screens: the keys of the moment (F3/F4 are also in the verdict's hint).
            return [
                ("F1", "key.help"),
                ("F2", "key.direction"),
                ("F3", "key.override"),
                ("F4", "key.undo"),
                ("F5", "key.lookup"),
                ("+/-", "key.headcount"),
                ("^Q", "key.quit"),
            ]
        hints = [
            ("F1", "key.help"),
            ("F2", "key.direction"),
            ("F3", "key.override"),
            ("F4", "key.undo"),
            ("F5", "key.lookup"),
            ("F11", "key.register"),
            ("+/-", "key.headcount"),
            ("F6", "key.board"),
            ("F7", "key.log"),
            ("F8", "key.handover"),
        ]
        if self.session.presenter is not None:
            hints.append(("F9", "key.present"))
        hints.append(("F10", "key.language"))
        hints.append(("Ctrl+Q", "key.quit"))
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

    def take_scan(self, text: str, source: str, seen_at: float | None = None) -> Outcome | None:
        """A code arrived: decide it, show it at once, sound it."""
        try:
            outcome = self.session.desk.scan(text, source)
        except DeskError as error:
            self.tell(error)
            return None
        if isinstance(outcome, Repeat):
            self.shown_at = self.session.mono()
            self.panel.show(
                outcome.decision,
                self.remaining(look_of(outcome.decision)),
                repeat_seconds=outcome.seconds,
            )
            self.call_after_refresh(self._rendered, seen_at)
        elif isinstance(outcome, Pending):
            # The same card still held up asks the same question, without another tone.
            self.ask(outcome, sound=outcome is not self.panel.shown.pending)
            self.call_after_refresh(self._rendered, seen_at)
        else:
            self.present_decision(outcome, seen_at)
        return outcome

    def ask(self, pending: Pending, *, sound: bool = True) -> None:
        self.shown_at = self.session.mono()
        self.panel.ask(pending)
        if sound:
            self.sound("amber", None)
        self.refresh_next()

    def present_decision(self, decision: Decision, seen_at: float | None = None) -> None:
        self.shown_at = self.session.mono()
        self.panel.show(decision, self.remaining(look_of(decision)))
        self.sound(look_of(decision), decision.direction)
        self.refresh_next()
        # The verdict goes to the screen first; the lines below it follow in the next frame.
        self.call_after_refresh(self._rendered, seen_at)

    def _rendered(self, seen_at: float | None) -> None:
        if seen_at is not None:
            self.latencies_ms.append((time.monotonic() - seen_at) * 1000)
        for bar in self.query(StatusBar):
            bar.refresh_status()
        self.refresh_recent()

    def sound(self, look: str, direction: str | None) -> None:
        """The cue through the speakers (on its own thread); the bell where there are none."""
        sound = self.session.sound
        sound.cue(look, direction)
        if not sound.audible:
            self.ring(look)

    def ring(self, verdict: str) -> None:
        """One bell for green, two for amber, three for red."""
        for i in range(RINGS.get(verdict, 1)):
            if i == 0:
                self.app.bell()
            else:
                self.set_timer(i * RING_GAP_S, self.app.bell)

    def tell(self, error: DeskError) -> None:
        if error.not_saved:
            from menwei.screens.dialogs import NotSavedScreen

            self.sound("red", None)
            self.app.push_screen(NotSavedScreen(self.session, error))
            return
        super().tell(error)

    def _look(self) -> str | None:
        state = self.panel.shown
        if state.pending is not None:
            return "ask"
        return look_of(state.decision) if state.decision is not None else None

    def remaining(self, look: str | None = None) -> int | None:
        look = look or self._look()
        if look is None or self.shown_at is None:
            return None
        hold = self.session.verdict_seconds * HOLD_FACTOR.get(look, 1.0)
        return max(0, math.ceil(hold - (self.session.mono() - self.shown_at)))

    def tick(self) -> None:
        if self.app.screen is not self:
            return  # a dialog is open over the verdict: it stays until the dialog closes
        left = self.remaining()
        if left is None:
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
        text.append(self.t("next.lane", lane=self.t(f"lane.{desk.lane}")))
        text.append("  ")
        text.append(self.t("next.direction", way=self.t(f"choice.{desk.next_direction}")))
        text.append("  ")
        count = self.t("next.headcount", count=desk.next_headcount)
        text.append(count, style="bold reverse" if desk.next_headcount != 1 else "")
        if self.session.presenter is not None and not self.has_class("-narrow"):
            text.append("  ")
            text.append(self.t("next.present"), style="italic")
        self.query_one("#scan-next", Static).update(text)

    def refresh_recent(self) -> None:
        if self.has_class("-short"):
            return
        gate = self.session.gate
        rows = 10 if self.has_class("-tall") else 3
        events_ = gate.recent_events(limit=40)
        annulled = {e.ref for e in events_ if e.kind == "annul" and e.ref}
        recent = [e for e in events_ if e.kind in RECENT_KINDS][:rows]
        table = Table.grid(padding=(0, 1))
        table.add_column(no_wrap=True)  # time
        table.add_column(justify="right", no_wrap=True, min_width=5)  # household: never cut
        table.add_column(no_wrap=True)  # what
        table.add_column(no_wrap=True, overflow="ellipsis", ratio=1)  # where
        table.add_column(no_wrap=True, overflow="ellipsis", max_width=10)  # who
        header = self.t("recent.title") if recent else self.t("recent.none")
        table.add_row(RichText(header, style="bold"), "", "", "", "")
        for e in recent:
            table.add_row(*self._recent_row(e, undone=e.event_id in annulled))
        self.query_one("#scan-recent", Static).update(table)

    def _recent_row(self, e: Event, *, undone: bool = False) -> list[str | RichText]:
        s = self.session
        when = f"{s.local(parse_iso(e.wall_time)):%H:%M:%S}"
        household = s.gate.household(e.household) if e.household is not None else None
        where = s.w(household.address()) if household else ""
        style = {"green": "green", "amber": "yellow", "red": "red"}.get(e.verdict or "", "")
        if e.kind == "deny":
            what = s.w(REASON_WORDS.get(e.reason, REASON_WORDS["not_a_pass"]))
        else:
            what = self.t(f"kind.{e.kind}")
        if e.direction in ("exit", "entry") and e.kind not in ("deny", "annul"):
            what += " " + self.t("recent.people", count=e.headcount or 1)
        if e.source == "manual" and e.kind in ("exit", "entry"):
            what += " " + self.t("recent.manual")
        if undone:
            what += " " + self.t("recent.undone")
            style = "dim"
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

    def action_headcount(self, step: int) -> None:
        desk = self.session.desk
        try:
            decision = desk.step_headcount(step)
        except DeskError as error:
            self.tell(error)
            return
        if desk.pending is not None:
            self.ask(desk.pending, sound=False)
        else:
            self._after(decision)

    def action_toggle_direction(self) -> None:
        desk = self.session.desk
        pending = desk.pending
        try:
            if pending is not None and pending.why == "manual":
                number = pending.preview.household_number
                assert number is not None
                way = pending.direction
                current = pending.preview.direction or ("exit" if way == "auto" else way)
                self.ask(desk.household(number, "entry" if current == "exit" else "exit"))
                return
            if pending is not None:
                desk.drop_pending()
            self._after(desk.toggle_direction())
        except DeskError as error:
            self.tell(error)

    def action_confirm(self) -> None:
        """Enter: record what waits for the volunteer's key (a quick return, a household typed in)."""
        if self.session.desk.pending is None:
            return
        try:
            decision = self.session.desk.confirm()
        except DeskError as error:
            self.tell(error)
            return
        self.present_decision(decision)

    def action_clear(self) -> None:
        self.session.desk.clear()
        self.shown_at = None
        self.panel.show(None)
        self.refresh_next()

    def action_override(self) -> None:
        from menwei.screens.dialogs import OverrideChoice, OverrideScreen

        desk = self.session.desk
        shown = desk.shown
        if shown is None or not desk.overridable():
            self.tell(DeskError("error.not_overridable"))
            return

        def done(choice: OverrideChoice | None) -> None:
            if choice is None:
                return
            try:
                # The refusal the dialog was opened on, however long the choice took.
                decision = desk.override(choice.reason, choice.note, shown=shown)
            except DeskError as error:
                self.tell(error)
                return
            self.present_decision(decision)

        self.app.push_screen(OverrideScreen(self.session, shown), done)

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

    def action_lookup(self, typed: str = "") -> None:
        """F5, or digits typed at the scan screen: find a household. Nothing is recorded until
        the volunteer confirms on the scan screen (marked: manual, no pass seen)."""
        from menwei.screens.dialogs import LookupScreen

        def done(number: int | None) -> None:
            if number is None:
                return
            try:
                pending = self.session.desk.household(number)
            except DeskError as error:
                self.tell(error)
                return
            self.ask(pending)

        self.app.push_screen(LookupScreen(self.session, typed), done)

    def action_register(self) -> None:
        from menwei.screens.dialogs import RegisterChoice, RegisterScreen

        def done(choice: RegisterChoice | None) -> None:
            if choice is None:
                return
            try:
                decision = self.session.desk.register(choice.household, choice.note)
            except DeskError as error:
                self.tell(error)
                return
            self.present_decision(decision)

        self.app.push_screen(RegisterScreen(self.session), done)

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
        if action == "confirm":
            return self.session.desk.pending is not None
        return True
