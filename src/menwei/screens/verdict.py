"""The verdict panel: the word drawn large with its shape, on a band of the verdict's colour.

Green ✔ 放行 / 欢迎回家, amber ! 请核实, red ✖ 禁止通行, grey ? 不是通行证 (a QR code that is not a
pass), a blue ↺ for an undo, and a question (请确认) when a record waits for the volunteer's key.
Colour is never the only signal: the shape and the word say the same. The reason is the bold line
under the word. The panel carries its own CSS; the screen only sets its size.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from rich.text import Text as RichText
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.reactive import reactive
from textual.widgets import Static

from menwei.core.clock import parse_iso
from menwei.core.decision import Decision
from menwei.core.text import duration
from menwei.gateapp.bigtext import banner
from menwei.gateapp.desk import Pending
from menwei.gateapp.session import Session

LOOKS = ("idle", "green", "amber", "red", "grey", "undone", "ask")
SHAPE_OF = {"green": "✔", "amber": "!", "red": "✖", "grey": "?", "undone": "↺", "ask": "?"}
BIG_ROWS_TALL = 8
BIG_ROWS = 7
# A title too wide to draw large on 80 columns, and the word drawn instead (the reason line
# under it still says the whole title).
SHORT_WORDS = {"Welcome home": "Welcome"}


def spaced(words: str) -> str:
    """Plain big words (no font): Chinese characters set apart, English in capitals."""
    if words.isascii():
        return "  ".join(words.upper().split())
    return " ".join(words)


def look_of(decision: Decision) -> str:
    """Which look a decision gets: its verdict, grey for a code that is not a pass, blue undo."""
    if decision.kind == "annul":
        return "undone"
    if decision.reason == "not_a_pass" and decision.kind == "deny":
        return "grey"
    return decision.verdict


@dataclass(frozen=True)
class PanelState:
    """What the panel shows: a decision, a repeat of one, or a question."""

    decision: Decision | None = None
    pending: Pending | None = None
    repeat_seconds: int | None = None
    remaining: int | None = None
    stamp: int = 0  # a new scan of the same decision still redraws


class VerdictPanel(Vertical):
    """Shows one decision (or, idle, what to do), with the keys that act on it at the bottom."""

    DEFAULT_CSS = """
    VerdictPanel { height: auto; padding: 0 1; }
    VerdictPanel.-idle { background: #1c1c1c; color: #ffffff; }
    VerdictPanel.-green { background: #1fbf4f; color: #000000; }
    VerdictPanel.-amber { background: #ffc233; color: #000000; }
    VerdictPanel.-red { background: #c81414; color: #ffffff; }
    VerdictPanel.-grey { background: #5c5c5c; color: #ffffff; }
    VerdictPanel.-undone { background: #2f5597; color: #ffffff; }
    VerdictPanel.-ask { background: #ffc233; color: #000000; }
    VerdictPanel #verdict-big { width: 1fr; height: auto; content-align: center middle;
        text-style: bold; margin-top: 1; }
    VerdictPanel #verdict-reason { width: 1fr; height: auto; text-style: bold; margin-top: 1; }
    VerdictPanel #verdict-facts { width: 1fr; height: auto; text-style: bold; }
    VerdictPanel #verdict-rule { width: 1fr; height: auto; }
    VerdictPanel #verdict-hint { width: 1fr; height: auto; dock: bottom; }
    VerdictPanel.-red #verdict-hint, VerdictPanel.-grey #verdict-hint,
    VerdictPanel.-undone #verdict-hint { color: #ffffff; }
    """

    shown: reactive[PanelState] = reactive(PanelState, always_update=True, init=False)

    def __init__(self, session: Session) -> None:
        super().__init__(classes="-idle")
        self.session = session
        self.big_rows = BIG_ROWS

    @property
    def decision(self) -> Decision | None:
        return self.shown.decision

    def compose(self) -> ComposeResult:
        yield Static("", id="verdict-big", markup=False)
        yield Static("", id="verdict-reason", markup=False)
        yield Static("", id="verdict-facts", markup=False)
        yield Static("", id="verdict-rule", markup=False)
        yield Static("", id="verdict-hint", markup=False)

    def on_mount(self) -> None:
        self.redraw()

    def watch_shown(self) -> None:
        self.redraw()

    def show(
        self,
        decision: Decision | None,
        remaining: int | None = None,
        *,
        repeat_seconds: int | None = None,
    ) -> None:
        self.shown = PanelState(
            decision=decision,
            remaining=remaining,
            repeat_seconds=repeat_seconds,
            stamp=self.shown.stamp + 1,
        )

    def ask(self, pending: Pending) -> None:
        """A record that waits for the volunteer's key."""
        self.shown = PanelState(pending=pending, stamp=self.shown.stamp + 1)

    def tick(self, remaining: int | None) -> None:
        if remaining != self.shown.remaining:
            self.shown = replace(self.shown, remaining=remaining)

    def redraw(self) -> None:
        shown = self.shown
        if shown.pending is not None:
            self._draw_pending(shown.pending)
        elif shown.decision is not None:
            self._draw(shown.decision)
        else:
            self._draw_idle()
        self._set("verdict-hint", self._hint())

    def redraw_clock(self) -> None:
        """Idle: keep the clock current."""
        if self.shown.decision is None and self.shown.pending is None:
            self._draw_idle()

    def _look(self, look: str) -> None:
        for name in LOOKS:
            self.set_class(name == look, f"-{name}")

    def _set(self, widget_id: str, value: str | RichText) -> None:
        self.query_one(f"#{widget_id}", Static).update(value)

    def _big(self, words: str, look: str) -> None:
        width = max(20, (self.size.width or self.app.size.width) - 2)
        lines = banner(words, look, width, self.big_rows, min_rows=4 if width < 70 else 5)
        if lines is None:
            shape = SHAPE_OF.get(look, "")
            self._set("verdict-big", f"{shape}  {spaced(words)}" if shape else spaced(words))
        else:
            self._set("verdict-big", "\n".join(lines))

    def _draw_idle(self) -> None:
        s = self.session
        self._look("idle")
        desk = s.desk
        if desk.next_headcount != 1:
            # A headcount other than 1 stays large until the scan: nobody forgets it is set.
            label = s.t("next.count_big", count=desk.next_headcount)
            lines = banner(str(desk.next_headcount), "", 20, 5, min_rows=3)
            if lines:
                middle = len(lines) // 2
                lines = tuple(
                    line + ("   " + label if i == middle else "") for i, line in enumerate(lines)
                )
            self._set("verdict-big", "\n".join(lines) if lines else spaced(label))
        else:
            self._set("verdict-big", spaced(s.t("idle.title")))
        how = [s.t("idle.camera_or_scanner"), s.t("idle.how")]
        self._set("verdict-reason", f"{s.now():%H:%M}  {s.t('idle.no_pass')}")
        self._set("verdict-facts", "\n".join(how))
        if desk.next_headcount != 1 or desk.next_direction != desk.lane:
            self._set("verdict-rule", self._next_big())
        else:
            self._set("verdict-rule", "")

    def _next_big(self) -> RichText:
        """A headcount other than 1 (or a one-off direction) for the next scan, shown large."""
        s = self.session
        desk = s.desk
        text = RichText(style="bold reverse")
        text.append(
            " "
            + s.t(
                "next.big",
                way=s.t(f"choice.{desk.next_direction}"),
                count=desk.next_headcount,
            )
            + " "
        )
        return text

    def _draw(self, d: Decision) -> None:
        s = self.session
        look = look_of(d)
        self._look(look)
        words = s.t("look.grey") if look == "grey" else s.w(d.title)
        self._big(SHORT_WORDS.get(words, words), look)
        # The word again in plain text (for a terminal without the font, and for tmux captures).
        reason = f"{spaced(words)}  ·  {s.w(d.message)}"
        if self.shown.repeat_seconds is not None:
            reason = s.t("repeat.title", seconds=self.shown.repeat_seconds) + "\n" + reason
        self._set("verdict-reason", reason)
        self._set("verdict-facts", self._facts(d))
        self._set("verdict-rule", s.w(d.rule) if d.rule is not None else "")

    def _draw_pending(self, p: Pending) -> None:
        s = self.session
        self._look("ask")
        self._big(s.t("ask.title"), "amber")
        d = p.preview
        if p.why == "quick_return":
            minutes, seconds = divmod(p.seconds_out or 0, 60)
            ago = (
                s.t("ask.ago_min", minutes=minutes, seconds=seconds)
                if minutes
                else s.t("ask.ago_s", seconds=seconds)
            )
            why = s.t("ask.quick_return", ago=ago)
        else:
            why = s.t("ask.manual")
        self._set("verdict-reason", f"{spaced(s.t('ask.title'))}  ·  {why}")
        facts = self._facts(d, preview=True)
        if p.why == "manual" and d.household_number is not None:
            facts += "\n" + self._where(d.household_number)
        self._set("verdict-facts", facts)
        state = ""
        if d.household_number is not None and d.kind != "deny":
            state = s.t("ask.would", way=s.t(f"direction.{d.direction}"), count=p.headcount)
        elif d.kind == "deny":
            state = s.t("ask.would_refuse", why=s.w(d.message))
        self._set("verdict-rule", state)

    def _where(self, number: int) -> str:
        """Where a household typed in by hand is now (in, or out since when and by which gate)."""
        s = self.session
        state = s.gate.state_of(number)
        if state.state != "out" or not state.since:
            return s.t("ask.where_in")
        since = s.local(parse_iso(state.since))
        minutes = int((s.gate.clock.now() - parse_iso(state.since)).total_seconds() // 60)
        return s.t(
            "ask.where_out",
            since=f"{since:%H:%M}",
            gate=state.gate_id or "?",
            out_for=s.w(duration(minutes)),
        )

    def _facts(self, d: Decision, *, preview: bool = False) -> str:
        s = self.session
        h = d.household
        if h is None:
            if d.household_number is not None:
                return s.t("verdict.household_line", number=d.household_number, where="")
            return ""
        where = f"{s.w(h.address())} {s.w(h.group_name())}"
        line = s.t("verdict.household_line", number=d.household_number, where=where)
        way = d.direction or d.proposed
        if preview or way is None:
            return line + "  " + s.t("verdict.members", count=h.members)
        if d.kind == "deny":
            return line + "\n" + s.t("verdict.refused_way", way=s.t(f"direction.{way}"))
        if d.kind == "annul":
            return (
                line
                + "\n"
                + s.t("verdict.undone_way", way=s.t(f"direction.{way}"), count=d.headcount)
            )
        count = s.t("verdict.way_people", way=s.t(f"direction.{way}"), count=d.headcount)
        if d.source == "manual":
            count += "  " + s.t("verdict.manual")
        return line + "\n" + count

    def _hint(self) -> str:
        s = self.session
        shown = self.shown
        if shown.pending is not None:
            p = shown.pending
            if p.preview.kind == "deny":
                keys = s.t("hint.ask_deny")
            elif p.why == "quick_return":
                keys = s.t("hint.ask_return")
            else:
                keys = s.t("hint.ask_manual", way=s.t(f"direction.{p.preview.direction}"))
            return keys
        d = shown.decision
        if d is None:
            return ""
        parts = [s.t("verdict.recorded") if d.recorded else s.t("verdict.not_recorded")]
        desk = s.desk
        if desk.overridable():
            parts.append(s.t("hint.override"))
            if desk.override_headcount is not None:
                parts.append(s.t("hint.override_count", count=desk.override_count()))
        elif d.kind == "deny" and d.verdict == "red":
            parts.append(s.t("hint.call_committee"))
        if desk.amendable():
            parts.append(s.t("hint.amend"))
        if d.kind == "deny" and d.household is not None:
            parts.append(s.t("hint.flip"))
        if shown.remaining is not None:
            parts.append(s.t("hint.clears", seconds=shown.remaining))
        return " · ".join(parts)
