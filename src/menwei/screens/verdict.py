"""The verdict panel: green, amber or red across the full width, readable from a step away."""

from __future__ import annotations

from rich.text import Text as RichText
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Digits, Static

from menwei.core.decision import Decision
from menwei.gateapp.session import Session

VERDICT_CLASSES = ("-idle", "-green", "-amber", "-red")


def spaced(words: str) -> str:
    """Big words: Chinese characters set apart with a space, English in capitals."""
    if words.isascii():
        return "  ".join(words.upper().split())
    return " ".join(words)


class VerdictPanel(Vertical):
    """Shows one `Decision` (or, idle, what to do), with a countdown line at the bottom."""

    def __init__(self, session: Session) -> None:
        super().__init__(classes="-idle")
        self.session = session
        self.decision: Decision | None = None
        self.remaining: int | None = None

    def compose(self) -> ComposeResult:
        yield Static("", id="verdict-title", markup=False)
        with Horizontal(id="verdict-numbers"):
            with Vertical(classes="verdict-number", id="verdict-household-box"):
                yield Digits("", id="verdict-household")
                yield Static("", id="verdict-household-label", markup=False)
            with Vertical(classes="verdict-number"):
                yield Digits("", id="verdict-time")
                yield Static("", id="verdict-time-label", markup=False)
            yield Static("", id="verdict-facts", markup=False)
        yield Static("", id="verdict-message", markup=False)
        yield Static("", id="verdict-rule", markup=False)
        yield Static("", id="verdict-hint", markup=False)

    def on_mount(self) -> None:
        self.redraw()

    def show(self, decision: Decision | None, remaining: int | None = None) -> None:
        self.decision = decision
        self.remaining = remaining
        self.redraw()

    def tick(self, remaining: int | None) -> None:
        if remaining != self.remaining:
            self.remaining = remaining
            self.query_one("#verdict-hint", Static).update(self._hint())

    def redraw_clock(self) -> None:
        """Idle: keep the big clock current."""
        if self.decision is None:
            self.query_one("#verdict-time", Digits).update(f"{self.session.now():%H:%M}")

    def redraw(self) -> None:
        d = self.decision
        verdict = d.verdict if d is not None else "idle"
        for cls in VERDICT_CLASSES:
            self.set_class(cls == f"-{verdict}", cls)
        if d is None:
            self._draw_idle()
        else:
            self._draw(d)
        self.query_one("#verdict-hint", Static).update(self._hint())

    def _set(self, widget_id: str, value: str | RichText) -> None:
        self.query_one(f"#{widget_id}", Static).update(value)

    def _draw_idle(self) -> None:
        s = self.session
        self._set("verdict-title", spaced(s.t("idle.title")))
        self.query_one("#verdict-household-box").display = False
        self.query_one("#verdict-time", Digits).update(f"{s.now():%H:%M}")
        self._set("verdict-time-label", s.t("verdict.now"))
        self._set("verdict-facts", "\n".join([s.t("idle.camera"), s.t("idle.scanner")]))
        self._set("verdict-message", s.t("idle.how"))
        self._set("verdict-rule", s.t("idle.no_pass"))

    def _draw(self, d: Decision) -> None:
        s = self.session
        self._set("verdict-title", spaced(s.w(d.title)))
        box = self.query_one("#verdict-household-box")
        box.display = d.household_number is not None
        if d.household_number is not None:
            self.query_one("#verdict-household", Digits).update(str(d.household_number))
            self._set("verdict-household-label", s.t("verdict.household"))
        self.query_one("#verdict-time", Digits).update(f"{s.local(d.at):%H:%M}")
        self._set("verdict-time-label", s.t("verdict.time"))
        self._set("verdict-facts", self._facts(d))
        self._set("verdict-message", s.w(d.message))
        self._set("verdict-rule", s.w(d.rule) if d.rule is not None else "")

    def _facts(self, d: Decision) -> str:
        s = self.session
        h = d.household
        if h is None:
            return ""
        lines = [s.w(h.address()), s.w(h.group_name())]
        way = d.direction or d.proposed
        if way is not None:
            lines.append(
                s.t(
                    "verdict.way_people",
                    way=s.t(f"direction.{way}"),
                    count=d.headcount,
                )
            )
        return "\n".join(lines)

    def _hint(self) -> str:
        s = self.session
        d = self.decision
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
        if self.remaining is not None:
            parts.append(s.t("hint.clears", seconds=self.remaining))
        return " · ".join(parts)
