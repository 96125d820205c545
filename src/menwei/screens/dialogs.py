"""Dialogs over the scan screen: override reason, undo, manual lookup, simulated pass, help."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text as RichText
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from menwei.core.clock import parse_iso
from menwei.core.eventlog import Event
from menwei.core.gate import REASON_WORDS
from menwei.core.policy import OVERRIDE_REASONS
from menwei.gateapp.desk import DeskError
from menwei.gateapp.desk import Shown as DeskShown
from menwei.gateapp.feed import Presenter
from menwei.gateapp.session import Session
from menwei.screens.base import GateModal
from menwei.screens.widgets import KeyBar


@dataclass(frozen=True)
class OverrideChoice:
    reason: str
    note: str | None


class OverrideScreen(GateModal[OverrideChoice | None]):
    """Why a refused household may go through anyway: one of the policy's reasons, with words."""

    CSS_PATH = "dialogs.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", show=False),
        *[Binding(str(n), f"pick({n})", show=False) for n in range(1, 10)],
    ]

    def __init__(self, session: Session, shown: DeskShown) -> None:
        super().__init__(session)
        self.shown = shown  # the refusal this dialog is about, kept whatever the screen does
        self.reasons = session.desk.override_reasons(shown)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static("", id="override-title", classes="dialog-title", markup=False)
            yield Static("", id="override-what", markup=False)
            yield Static("", id="override-ask", markup=False)
            yield OptionList(id="override-reasons")
            yield Input(id="override-note", max_length=200)
            yield Static("", id="override-error", classes="dialog-error", markup=False)
            yield KeyBar(self.session, [("Enter", "key.confirm"), ("Esc", "key.cancel")])

    def on_mount(self) -> None:
        self.relabel()
        options = self.query_one(OptionList)
        options.highlighted = 0
        options.focus()

    def relabel(self) -> None:
        s = self.session
        desk = s.desk
        shown = self.shown
        self.query_one("#override-title", Static).update(self.t("override.title"))
        if shown is not None:
            d = shown.decision
            where = s.w(d.household.address()) if d.household else ""
            why = s.w(REASON_WORDS.get(d.reason, REASON_WORDS["not_a_pass"]))
            self.query_one("#override-what", Static).update(
                "\n".join(
                    [
                        self.t("override.household", number=d.household_number, where=where),
                        self.t("override.refused", why=why),
                        self.t("override.count", count=desk.override_count(shown)),
                    ]
                )
            )
        self.query_one("#override-ask", Static).update(self.t("override.ask"))
        options = self.query_one(OptionList)
        keep = options.highlighted
        options.clear_options()
        for i, reason in enumerate(self.reasons, start=1):
            label = s.w(OVERRIDE_REASONS[reason])
            if reason == "other":
                label += self.t("override.other_hint")
            options.add_option(Option(f"{i}  {label}", id=reason))
        options.highlighted = keep
        self.query_one(Input).placeholder = self.t("override.note")
        for bar in self.query(KeyBar):
            bar.relabel()

    def _chosen(self) -> str | None:
        options = self.query_one(OptionList)
        index = options.highlighted
        return self.reasons[index] if index is not None else None

    def _confirm(self) -> None:
        reason = self._chosen()
        if reason is None:
            return
        note = self.query_one(Input).value.strip() or None
        if reason == "other" and note is None:
            self.query_one("#override-error", Static).update(self.t("override.need_note"))
            self.query_one(Input).focus()
            return
        self.dismiss(OverrideChoice(reason, note))

    def action_pick(self, number: int) -> None:
        if 1 <= number <= len(self.reasons):
            self.query_one(OptionList).highlighted = number - 1

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(OptionList.OptionSelected)
    def _option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self._confirm()

    @on(Input.Submitted)
    def _note_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._confirm()


class UndoScreen(GateModal[bool]):
    """Shows the record an undo would cancel and asks before cancelling it."""

    CSS_PATH = "dialogs.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "answer(True)", show=False),
        Binding("escape", "answer(False)", show=False),
    ]

    def __init__(self, session: Session, event: Event) -> None:
        super().__init__(session)
        self.event = event

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static("", id="undo-title", classes="dialog-title", markup=False)
            yield Static("", id="undo-what", markup=False)
            yield KeyBar(self.session, [("Enter", "key.undo_confirm"), ("Esc", "key.undo_keep")])

    def on_mount(self) -> None:
        self.relabel()

    def relabel(self) -> None:
        s = self.session
        e = self.event
        household = s.gate.household(e.household) if e.household is not None else None
        where = s.w(household.address()) if household else ""
        way = self.t(f"direction.{e.direction}") if e.direction in ("exit", "entry") else ""
        self.query_one("#undo-title", Static).update(self.t("undo.title"))
        self.query_one("#undo-what", Static).update(
            self.t(
                "undo.what",
                time=f"{s.local(parse_iso(e.wall_time)):%H:%M:%S}",
                kind=self.t(f"kind.{e.kind}"),
                number=e.household,
                where=where,
                way=way,
                count=e.headcount or 1,
                operator=e.operator,
            )
        )
        for bar in self.query(KeyBar):
            bar.relabel()

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class LookupScreen(GateModal[int | None]):
    """Find a household by number or building-room, when the pass is not at hand.

    Picking one records nothing: the scan screen then shows the household and where it is, and
    records only on the volunteer's Enter (marked manual: no pass seen). Digits typed at the
    scan screen open this dialog with what was typed so far.
    """

    CSS_PATH = "dialogs.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", show=False)]

    def __init__(self, session: Session, typed: str = "") -> None:
        super().__init__(session)
        self.typed = typed

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static("", id="lookup-title", classes="dialog-title", markup=False)
            yield Input(id="lookup-query", max_length=40, select_on_focus=False)
            yield OptionList(id="lookup-results")
            yield Static("", id="lookup-message", markup=False)
            yield KeyBar(
                self.session,
                [("Enter", "key.decide"), ("↑↓", "key.choose"), ("Esc", "key.cancel")],
            )

    def on_mount(self) -> None:
        field = self.query_one(Input)
        if self.typed:
            field.value = self.typed
            field.cursor_position = len(self.typed)
        self.relabel()
        field.focus()

    def relabel(self) -> None:
        self.query_one("#lookup-title", Static).update(self.t("lookup.title"))
        self.query_one(Input).placeholder = self.t("lookup.placeholder")
        self._search(self.query_one(Input).value)
        for bar in self.query(KeyBar):
            bar.relabel()

    def _search(self, query: str) -> list[int]:
        s = self.session
        options = self.query_one(OptionList)
        options.clear_options()
        message = self.query_one("#lookup-message", Static)
        if not query.strip():
            message.update(self.t("lookup.hint"))
            return []
        found = s.desk.find(query)
        for h in found[:50]:
            state = s.gate.state_of(h.number).state
            label = RichText()
            label.append(f"{h.number:>5}  ", style="bold")
            label.append(f"{s.w(h.address())}  {s.w(h.group_name())}  ")
            label.append(self.t(f"state.{state}"), style="bold")
            options.add_option(Option(label, id=str(h.number)))
        if found:
            options.highlighted = 0
            message.update(self.t("lookup.found", count=len(found)))
        else:
            message.update(self.t("lookup.none"))
        return [h.number for h in found]

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        self._search(event.value)

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        numbers = self._search(event.value)
        if len(numbers) == 1:
            self.dismiss(numbers[0])
        elif numbers:
            self.query_one(OptionList).focus()

    @on(OptionList.OptionSelected)
    def _picked(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id is not None:
            self.dismiss(int(event.option.id))

    def action_cancel(self) -> None:
        self.dismiss(None)


@dataclass(frozen=True)
class RegisterChoice:
    household: int
    note: str


class RegisterScreen(GateModal[RegisterChoice | None]):
    """Register a returning resident: which household, and a note on where from."""

    CSS_PATH = "dialogs.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", show=False)]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static("", id="register-title", classes="dialog-title", markup=False)
            yield Input(id="register-household", max_length=40)
            yield Input(id="register-note", max_length=200)
            yield Static("", id="register-message", markup=False)
            yield KeyBar(self.session, [("Enter", "key.decide"), ("Esc", "key.cancel")])

    def on_mount(self) -> None:
        self.relabel()
        self.query_one("#register-household", Input).focus()

    def relabel(self) -> None:
        self.query_one("#register-title", Static).update(self.t("register.title"))
        self.query_one("#register-household", Input).placeholder = self.t("register.household")
        self.query_one("#register-note", Input).placeholder = self.t("register.note")
        self.query_one("#register-message", Static).update(self.t("register.hint"))
        for bar in self.query(KeyBar):
            bar.relabel()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        query = self.query_one("#register-household", Input).value
        found = self.session.desk.find(query) if query.strip() else []
        message = self.query_one("#register-message", Static)
        if len(found) != 1:
            message.update(self.t("register.not_one", count=len(found)))
            self.query_one("#register-household", Input).focus()
            return
        note = self.query_one("#register-note", Input).value.strip()
        if not note:
            self.query_one("#register-note", Input).focus()
            return
        self.dismiss(RegisterChoice(found[0].number, note))

    def action_cancel(self) -> None:
        self.dismiss(None)


class PresentScreen(GateModal[int | None]):
    """The demo's simulated camera: which household's printed pass to hold up to it."""

    CSS_PATH = "dialogs.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", show=False)]

    def __init__(self, session: Session, presenter: Presenter) -> None:
        super().__init__(session)
        self.numbers = presenter.households()

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static("", id="present-title", classes="dialog-title", markup=False)
            yield Input(id="present-number", max_length=6)
            yield Static("", id="present-hint", markup=False)
            yield Static("", id="present-error", classes="dialog-error", markup=False)
            yield KeyBar(self.session, [("Enter", "key.present_go"), ("Esc", "key.cancel")])

    def on_mount(self) -> None:
        field = self.query_one(Input)
        self.relabel()
        field.focus()

    def relabel(self) -> None:
        sample = " ".join(str(n) for n in self.numbers[:12])
        self.query_one("#present-title", Static).update(self.t("present.title"))
        self.query_one(Input).placeholder = self.t("present.placeholder")
        self.query_one("#present-hint", Static).update(
            self.t("present.hint", count=len(self.numbers), sample=sample)
        )
        for bar in self.query(KeyBar):
            bar.relabel()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value.strip()
        if not text and self.numbers:
            self.dismiss(random.choice(self.numbers))
            return
        if text.isdigit() and int(text) in self.numbers:
            self.dismiss(int(text))
            return
        self.query_one("#present-error", Static).update(self.t("present.unknown", text=text))

    def action_cancel(self) -> None:
        self.dismiss(None)


class HelpScreen(GateModal[None]):
    """Every key and what it does, in the current language."""

    CSS_PATH = "dialogs.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", show=False),
        Binding("f1", "close", show=False),
        Binding("enter", "close", show=False),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog -wide"):
            yield Static("", id="help-title", classes="dialog-title", markup=False)
            yield Static("", id="help-body", markup=False)
            yield KeyBar(self.session, [("Esc", "key.close")])

    def on_mount(self) -> None:
        self.relabel()

    def relabel(self) -> None:
        self.query_one("#help-title", Static).update(self.t("help.title"))
        self.query_one("#help-body", Static).update(self.t("help.body"))
        for bar in self.query(KeyBar):
            bar.relabel()

    def action_close(self) -> None:
        self.dismiss(None)


class NotSavedScreen(GateModal[None]):
    """The database refused the write: the whole screen says NOT recorded and what to do."""

    CSS_PATH = "dialogs.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", show=False),
        Binding("enter", "close", show=False),
    ]

    def __init__(self, session: Session, error: DeskError) -> None:
        super().__init__(session)
        self.error = error

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static("", id="notsaved-big", markup=False)
            yield Static("", id="notsaved-what", markup=False)
            yield Static("", id="notsaved-detail", markup=False)
            yield KeyBar(self.session, [("Enter", "key.close")])

    def on_mount(self) -> None:
        self.relabel()

    def relabel(self) -> None:
        from menwei.gateapp.bigtext import banner
        from menwei.screens.verdict import spaced

        words = self.t("notsaved.title")
        width = max(20, self.app.size.width - 6)
        lines = banner(words, "red", width, 6, min_rows=4)
        self.query_one("#notsaved-big", Static).update(
            "\n".join(lines) if lines else "✖  " + spaced(words)
        )
        self.query_one("#notsaved-what", Static).update(self.t("notsaved.what"))
        self.query_one("#notsaved-detail", Static).update(
            self.t("notsaved.detail", message=self.error.values.get("message", ""))
        )
        for bar in self.query(KeyBar):
            bar.relabel()

    def action_close(self) -> None:
        self.dismiss(None)


class QuitScreen(GateModal[str | None]):
    """Ctrl+Q (or Ctrl+C): hand over first, end the shift, or just close the app."""

    CSS_PATH = "dialogs.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "answer(None)", show=False),
        Binding("f8", "answer('handover')", show=False),
        Binding("f2", "answer('finish')", show=False),
        Binding("ctrl+q", "answer('close')", show=False),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static("", id="quit-title", classes="dialog-title", markup=False)
            yield Static("", id="quit-what", markup=False)
            yield KeyBar(
                self.session,
                [
                    ("F8", "key.handover"),
                    ("F2", "key.finish"),
                    ("Ctrl+Q", "key.just_close"),
                    ("Esc", "key.stay"),
                ],
            )

    def on_mount(self) -> None:
        self.relabel()

    def relabel(self) -> None:
        self.query_one("#quit-title", Static).update(self.t("quit.title"))
        self.query_one("#quit-what", Static).update(
            self.t("quit.what", name=self.session.desk.operator or self.t("status.nobody"))
        )
        for bar in self.query(KeyBar):
            bar.relabel()

    def action_answer(self, answer: str | None) -> None:
        self.dismiss(answer)
