"""Out now: who is outside the compound, since when, overdue ones first; the groups' windows."""

from __future__ import annotations

from rich.text import Text as RichText
from textual import events
from textual.app import ComposeResult
from textual.containers import Container
from textual.widgets import DataTable, Static

from menwei.core.text import duration, group_label
from menwei.gateapp.session import Session
from menwei.gateapp.words import next_window
from menwei.screens.base import GateScreen
from menwei.screens.widgets import KeyBar, StatusBar

REFRESH_S = 5.0
WIDE = 140  # columns from which the two tables stand side by side


class BoardScreen(GateScreen):
    CSS_PATH = "board.tcss"

    def __init__(self, session: Session) -> None:
        super().__init__(session)

    def compose(self) -> ComposeResult:
        yield StatusBar(self.session)
        yield Static("", id="board-title", markup=False)
        with Container(id="board-body"):
            yield DataTable(id="board-out", cursor_type="row", zebra_stripes=True)
            yield DataTable(id="board-groups", cursor_type="row", zebra_stripes=True)
        yield KeyBar(self.session, self.key_hints())

    def key_hints(self) -> list[tuple[str, str]]:
        return [
            ("Esc", "key.back"),
            ("↑↓", "key.scroll"),
            ("Tab", "key.switch_table"),
            ("F7", "key.log"),
            ("F8", "key.handover"),
            ("F10", "key.language"),
        ]

    def on_mount(self) -> None:
        self.set_interval(REFRESH_S, self.refresh_board)
        self.relabel()

    def on_resize(self, event: events.Resize) -> None:
        self.set_class(event.size.width >= WIDE, "-wide")

    def relabel(self) -> None:
        super().relabel()
        self.refresh_board()

    def refresh_board(self) -> None:
        if not self.is_mounted:
            return
        s = self.session
        gate = s.gate
        now = gate.clock.now()
        out = gate.out_now(now)
        overdue = sum(1 for e in out if e.overdue)
        title = RichText(self.t("board.title", count=len(out)), style="bold")
        if overdue:
            title.append("   ")
            title.append(self.t("board.overdue", count=overdue), style="bold white on red")
        self.query_one("#board-title", Static).update(title)

        table = self.query_one("#board-out", DataTable)
        table.clear(columns=True)
        for key in (
            "board.col.household",
            "board.col.address",
            "board.col.group",
            "board.col.since",
            "board.col.out_for",
            "board.col.gate",
            "board.col.people",
        ):
            table.add_column(self.t(key))
        for e in out:
            style = "bold white on red" if e.overdue else ""
            h = e.household
            out_for = s.w(duration(e.minutes_out))
            if e.overdue:
                out_for = self.t("board.late", time=out_for)
            cells = [
                str(h.number),
                s.w(h.address()),
                s.w(h.group_name()),
                f"{s.local(e.since):%H:%M}",
                out_for,
                e.gate_id,
                str(e.headcount or ""),
            ]
            table.add_row(*[RichText(c, style=style) for c in cells], key=str(h.number))

        groups = self.query_one("#board-groups", DataTable)
        groups.clear(columns=True)
        for key in ("board.col.group", "board.col.out", "board.col.open", "board.col.next"):
            groups.add_column(self.t(key))
        for g in gate.group_windows(now):
            if g.open_now:
                window = RichText(g.open_now, style="bold green")
            elif not gate.policy.windows:
                window = RichText(self.t("board.any_time"), style="bold green")
            else:
                window = RichText(self.t("board.closed"), style="dim")
            if g.next_start is not None:
                upcoming = next_window(s.lang, s.local(now), s.local(g.next_start))
            else:
                upcoming = "—"
            groups.add_row(
                s.w(group_label(g.group)),
                f"{g.out_count}/{g.households}",
                window,
                upcoming,
                key=g.group,
            )
