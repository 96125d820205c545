"""Signing in and handing over: every event carries the volunteer who was at the gate."""

from __future__ import annotations

import contextlib
from typing import ClassVar

from rich.table import Table
from rich.text import Text as RichText
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from menwei.core.model import DirectionChoice
from menwei.core.shift import shift_summary
from menwei.core.text import duration
from menwei.gateapp.desk import DeskError
from menwei.gateapp.i18n import desk_error
from menwei.gateapp.session import Session
from menwei.screens.base import GateModal
from menwei.screens.widgets import KeyBar

OVERDUE_SHOWN = 5
LANE_CYCLE: dict[DirectionChoice, DirectionChoice] = {
    "auto": "exit",
    "exit": "entry",
    "entry": "auto",
}


def sign_in(screen: GateModal[str | None], name: str, pin_field: Input, error: Static) -> bool:
    """Sign `name` in from a dialog: ask for the PIN first where one is set; say what failed."""
    if name and screen.session.gate.needs_pin(name) and not pin_field.display:
        pin_field.display = True
        pin_field.focus()
        error.update(screen.t("signin.pin_please"))
        return False
    try:
        screen.session.desk.sign_in(name, pin_field.value or None)
    except DeskError as exc:
        pin_field.value = ""
        error.update(desk_error(screen.session.lang, exc))
        screen.app.bell()
        if exc.not_saved:
            from menwei.screens.dialogs import NotSavedScreen

            screen.app.push_screen(NotSavedScreen(screen.session, exc))
        return False
    return True


class SignInScreen(GateModal[str | None]):
    """Sign in with a name, and a PIN where the committee set one. Cannot be skipped.

    The name field starts empty (typing never appends to someone else's name); the volunteers
    who signed in lately are a list to pick from. F2 chooses this gate's lane (exit, entry, both
    ways), remembered for the gate.
    """

    CSS_PATH = "shift.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f10", "app.language", show=False),
        Binding("f2", "lane", show=False),
    ]

    def __init__(self, session: Session) -> None:
        super().__init__(session)
        self.names = session.desk.recent_names()
        self.lane: DirectionChoice = session.desk.lane

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static("", id="signin-title", classes="dialog-title", markup=False)
            yield Static("", id="signin-where", markup=False)
            yield Input(id="signin-name", max_length=40)
            yield Input(id="signin-pin", password=True, max_length=12)
            yield Static("", id="signin-recent-label", markup=False)
            yield OptionList(id="signin-recent")
            yield Static("", id="signin-lane", markup=False)
            yield Static("", id="signin-error", classes="dialog-error", markup=False)
            yield KeyBar(
                self.session,
                [
                    ("Enter", "key.signin"),
                    ("↓", "key.pick_name"),
                    ("F2", "key.lane"),
                    ("F10", "key.language"),
                ],
            )

    def on_mount(self) -> None:
        self.query_one("#signin-pin", Input).display = False
        names = self.query_one("#signin-recent", OptionList)
        for name in self.names:
            names.add_option(Option(name, id=name))
        names.display = bool(self.names)
        self.relabel()
        self.query_one("#signin-name", Input).focus()

    def relabel(self) -> None:
        gate = self.session.gate
        self.query_one("#signin-title", Static).update(self.t("signin.title"))
        self.query_one("#signin-where", Static).update(
            self.t("signin.where", community=gate.community_name, gate=gate.gate_name)
        )
        self.query_one("#signin-name", Input).placeholder = self.t("signin.name")
        self.query_one("#signin-pin", Input).placeholder = self.t("signin.pin")
        self.query_one("#signin-recent-label", Static).update(
            self.t("signin.recent") if self.names else ""
        )
        self.query_one("#signin-lane", Static).update(
            self.t("signin.lane", lane=self.t(f"lane.{self.lane}"))
        )
        for bar in self.query(KeyBar):
            bar.relabel()

    def action_lane(self) -> None:
        self.lane = LANE_CYCLE[self.lane]
        self.relabel()

    def on_key(self, event: events.Key) -> None:
        name = self.query_one("#signin-name", Input)
        if event.key == "down" and name.has_focus and self.names:
            event.stop()
            options = self.query_one("#signin-recent", OptionList)
            options.highlighted = 0
            options.focus()

    @on(OptionList.OptionSelected, "#signin-recent")
    def _picked(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id is not None:
            self.query_one("#signin-name", Input).value = event.option.id
            self._try()

    @on(Input.Submitted, "#signin-name")
    def _name_entered(self, event: Input.Submitted) -> None:
        event.stop()
        self._try()

    @on(Input.Submitted, "#signin-pin")
    def _pin_entered(self, event: Input.Submitted) -> None:
        event.stop()
        self._try()

    def _try(self) -> None:
        name = self.query_one("#signin-name", Input).value.strip()
        pin_field = self.query_one("#signin-pin", Input)
        error = self.query_one("#signin-error", Static)
        if sign_in(self, name, pin_field, error):
            desk = self.session.desk
            if self.lane != desk.lane or self.session.save_settings is not None:
                desk.set_lane(self.lane)
                if self.session.save_settings is not None:
                    # The lane holds for this run even when the file cannot be written.
                    with contextlib.suppress(OSError):
                        self.session.save_settings()
            self.dismiss(name)


class HandoverScreen(GateModal[str | None]):
    """What is open now (households out, overdue ones), then the next volunteer signs in."""

    CSS_PATH = "shift.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", show=False),
        Binding("f2", "finish", show=False),
        Binding("f10", "app.language", show=False),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog -wide"):
            yield Static("", id="handover-title", classes="dialog-title", markup=False)
            yield Static("", id="handover-summary", markup=False)
            yield Static("", id="handover-next", markup=False)
            yield Input(id="handover-name", max_length=40)
            yield Input(id="handover-pin", password=True, max_length=12)
            yield Static("", id="handover-error", classes="dialog-error", markup=False)
            yield KeyBar(
                self.session,
                [
                    ("Enter", "key.handover_go"),
                    ("F2", "key.finish"),
                    ("Esc", "key.cancel"),
                    ("F10", "key.language"),
                ],
            )

    def on_mount(self) -> None:
        self.query_one("#handover-pin", Input).display = False
        self.relabel()
        self.query_one("#handover-name", Input).focus()

    def relabel(self) -> None:
        self.query_one("#handover-title", Static).update(self.t("handover.title"))
        self.query_one("#handover-summary", Static).update(self._summary())
        self.query_one("#handover-next", Static).update(self.t("handover.next"))
        self.query_one("#handover-name", Input).placeholder = self.t("signin.name")
        self.query_one("#handover-pin", Input).placeholder = self.t("signin.pin")
        for bar in self.query(KeyBar):
            bar.relabel()

    def _summary(self) -> Table:
        s = self.session
        summary = shift_summary(s.gate, s.desk.operator)
        c = summary.counts
        grid = Table.grid(padding=(0, 1))
        grid.add_column(no_wrap=True)
        since = f"{s.local(summary.started_at):%H:%M}" if summary.started_at else "-"
        grid.add_row(self.t("handover.shift", name=summary.operator or "-", since=since))
        grid.add_row(
            self.t(
                "handover.counts",
                exits=c.exits,
                entries=c.entries,
                refusals=c.refusals,
                overrides=c.overrides,
                undone=c.undone,
            )
        )
        overdue = summary.overdue
        line = RichText(self.t("handover.out", count=len(summary.out_now)), style="bold")
        if overdue:
            line.append("  ")
            line.append(self.t("handover.overdue", count=len(overdue)), style="bold white on red")
        grid.add_row(line)
        for entry in overdue[:OVERDUE_SHOWN]:
            h = entry.household
            grid.add_row(
                RichText(
                    self.t(
                        "handover.overdue_row",
                        number=h.number,
                        where=s.w(h.address()),
                        since=f"{s.local(entry.since):%H:%M}",
                        out_for=s.w(duration(entry.minutes_out)),
                    ),
                    style="bold red",
                )
            )
        if len(overdue) > OVERDUE_SHOWN:
            grid.add_row(self.t("handover.more", count=len(overdue) - OVERDUE_SHOWN))
        return grid

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        name = self.query_one("#handover-name", Input).value.strip()
        pin_field = self.query_one("#handover-pin", Input)
        error = self.query_one("#handover-error", Static)
        if not name:
            error.update(self.t("handover.name_needed"))
            return
        if sign_in(self, name, pin_field, error):
            self.dismiss(name)

    def action_finish(self) -> None:
        """End the shift with nobody taking over, and close the app."""
        try:
            self.session.desk.sign_out()
        except DeskError as exc:
            self.query_one("#handover-error", Static).update(desk_error(self.session.lang, exc))
            self.app.bell()
            return
        self.app.exit()

    def action_cancel(self) -> None:
        self.dismiss(None)
