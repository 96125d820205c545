"""Today's log at this gate: filter by household, group, reason or operator; verify the chain."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text as RichText
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import DataTable, Input, Select, Static

from menwei.core.clock import parse_iso
from menwei.core.eventlog import ChainReport, Event
from menwei.core.gate import REASON_WORDS
from menwei.core.policy import OVERRIDE_REASONS
from menwei.core.shift import today_start
from menwei.gateapp.session import Session
from menwei.gateapp.words import group_key
from menwei.screens.base import GateScreen
from menwei.screens.widgets import KeyBar, StatusBar

LIMIT = 500
FILTER_REASONS = (
    "ok",
    "overdue",
    "already_out",
    "already_in",
    "outside_window",
    "quota_exceeded",
    "sealed",
    "forged",
    "revoked",
    "expired",
    "unknown_household",
    "not_a_pass",
    "foreign_community",
)


class LogScreen(GateScreen):
    CSS_PATH = "log.tcss"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f2", "verify", show=False),
        Binding("f3", "clear_filters", show=False),
    ]

    class Verified(Message):
        """The chain check finished (it runs in a thread: the log may be long)."""

        def __init__(self, report: ChainReport) -> None:
            super().__init__()
            self.report = report

    def __init__(self, session: Session) -> None:
        super().__init__(session)
        self.events: list[Event] = []
        self.report: ChainReport | None = None

    def compose(self) -> ComposeResult:
        yield StatusBar(self.session)
        with Horizontal(id="log-filters"):
            yield Input(id="log-household", max_length=6, restrict=r"\d*")
            yield Input(id="log-group", max_length=20)
            yield Select[str]([], id="log-reason")
            yield Input(id="log-operator", max_length=40)
        yield DataTable(id="log-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="log-status", markup=False)
        yield KeyBar(self.session, self.key_hints())

    def key_hints(self) -> list[tuple[str, str]]:
        return [
            ("Esc", "key.back"),
            ("Tab", "key.next_field"),
            ("Enter", "key.filter"),
            ("F2", "key.verify"),
            ("F3", "key.clear_filters"),
            ("F6", "key.board"),
            ("F10", "key.language"),
        ]

    def on_mount(self) -> None:
        self.relabel()
        self.query_one(DataTable).focus()

    def relabel(self) -> None:
        super().relabel()
        s = self.session
        self.query_one("#log-household", Input).placeholder = self.t("log.household")
        self.query_one("#log-group", Input).placeholder = self.t("log.group")
        self.query_one("#log-operator", Input).placeholder = self.t("log.operator")
        select = self.query_one("#log-reason", Select)
        keep = select.value
        select.set_options([(s.w(REASON_WORDS[r]), r) for r in FILTER_REASONS])
        select.prompt = self.t("log.reason")
        if isinstance(keep, str):
            select.value = keep
        self.refresh_log()

    def refresh_log(self) -> None:
        if not self.is_mounted:
            return
        s = self.session
        gate = s.gate
        household_text = self.query_one("#log-household", Input).value.strip()
        group = group_key(self.query_one("#log-group", Input).value)
        operator = self.query_one("#log-operator", Input).value.strip() or None
        reason = self.query_one("#log-reason", Select).value
        self.events = gate.recent_events(
            since=today_start(gate),
            household=int(household_text) if household_text else None,
            group=group,
            reason=reason if isinstance(reason, str) else None,
            operator=operator,
            limit=LIMIT,
        )
        table = self.query_one(DataTable)
        table.clear(columns=True)
        for key in (
            "log.col.time",
            "log.col.event",
            "log.col.household",
            "log.col.direction",
            "log.col.people",
            "log.col.result",
            "log.col.operator",
            "log.col.note",
        ):
            table.add_column(self.t(key))
        # Trips undone since: marked, so nobody counts them (the undo is its own row too).
        everything = gate.recent_events(since=today_start(gate), limit=LIMIT)
        annulled = {e.ref for e in everything if e.kind == "annul" and e.ref}
        for e in self.events:
            table.add_row(*self._row(e, undone=e.event_id in annulled), key=e.event_id)
        self._status()

    def _row(self, e: Event, *, undone: bool = False) -> list[str | RichText]:
        s = self.session
        style = {"green": "green", "amber": "bold yellow", "red": "bold red"}.get(
            e.verdict or "", ""
        )
        if e.kind == "override" and e.override_reason in OVERRIDE_REASONS:
            result = s.w(OVERRIDE_REASONS[e.override_reason])
        elif e.kind in ("shift_start", "shift_end"):
            result = ""
        else:
            result = s.w(REASON_WORDS.get(e.reason, REASON_WORDS["not_a_pass"]))
        way = self.t(f"direction.{e.direction}") if e.direction in ("exit", "entry") else ""
        kind = self.t(f"kind.{e.kind}")
        if undone:
            kind += self.t("recent.undone")
            style = "dim strike"
        if e.source == "manual" and e.kind in ("exit", "entry"):
            kind += self.t("recent.manual")
        return [
            f"{s.local(parse_iso(e.wall_time)):%H:%M:%S}",
            RichText(kind, style="dim strike" if undone else ""),
            str(e.household or ""),
            way,
            str(e.headcount or ""),
            RichText(result, style=style),
            e.operator,
            e.note or "",
        ]

    def _status(self) -> None:
        line = RichText(self.t("log.count", count=len(self.events)))
        report = self.report
        if report is not None:
            line.append("   ")
            if report.ok:
                line.append(self.t("log.chain_ok", count=report.count), style="bold green")
            else:
                line.append(
                    self.t("log.chain_broken", seq=report.first_break, problem=report.problem),
                    style="bold white on red",
                )
        self.query_one("#log-status", Static).update(line)

    # --- filters and checks ---------------------------------------------------------------------

    @on(Input.Submitted)
    def _filter(self, event: Input.Submitted) -> None:
        event.stop()
        self.refresh_log()

    @on(Select.Changed)
    def _reason(self, event: Select.Changed) -> None:
        self.refresh_log()

    def action_clear_filters(self) -> None:
        for field in self.query(Input):
            field.value = ""
        self.query_one(Select).clear()
        self.refresh_log()

    def action_verify(self) -> None:
        self.query_one("#log-status", Static).update(self.t("log.verifying"))
        self._verify()

    @work(thread=True, exclusive=True, group="verify", exit_on_error=False)
    def _verify(self) -> None:
        self.post_message(self.Verified(self.session.verify_log()))

    def on_log_screen_verified(self, message: Verified) -> None:
        self.report = message.report
        self._status()
