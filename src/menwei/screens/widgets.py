"""Widgets every screen uses: the status bar, the key bar and the small building blocks."""

from __future__ import annotations

from rich.cells import cell_len
from rich.text import Text as RichText
from textual.widget import Widget
from textual.widgets import Static

from menwei.core.shift import clock_warning
from menwei.gateapp.session import Session


def pad(text: str, width: int) -> str:
    """`text` padded with spaces to `width` terminal cells (a Chinese character takes two)."""
    return text + " " * max(0, width - cell_len(text))


class StatusBar(Static):
    """Community, gate, operator, clock (with a warning when it looks wrong), camera and sync."""

    DEFAULT_CSS = """
    StatusBar {
        width: 1fr;
        height: 1;
        background: $foreground;
        color: $background;
        text-style: bold;
        padding: 0 1;
    }
    """

    def __init__(self, session: Session) -> None:
        super().__init__("", markup=False)
        self.session = session

    def on_mount(self) -> None:
        self.refresh_status()
        self.set_interval(1.0, self.refresh_status)

    def refresh_status(self) -> None:
        s = self.session
        gate = s.gate
        now = s.now()
        sep = " │ "
        text = RichText()
        text.append(f"{gate.community_name}·{gate.gate_name}")
        text.append(sep)
        who = s.desk.operator or s.t("status.nobody")
        text.append(s.t("status.operator", name=who))
        text.append(sep)
        text.append(f"{now:%m-%d %H:%M}")
        warning = clock_warning(gate, gate.clock.now())
        if warning is not None:
            text.append(" ")
            text.append(f" ⚠ {s.w(warning)} ", style="bold white on red")
        text.append(sep)
        text.append(self._camera())
        text.append(sep)
        text.append(self._sync())
        self.update(text)

    def _camera(self) -> str:
        s = self.session
        cam = s.camera
        if cam is None:
            return s.t("camera.none")
        if cam.state == "open":
            said = f" {cam.hint(s.lang)}" if cam.hint(s.lang) else ""
            if cam.fps:
                return s.t("camera.open_fps", fps=f"{cam.fps:.0f}") + said
            return s.t("camera.open") + said
        return s.t(f"camera.{cam.state}")

    def _sync(self) -> str:
        s = self.session
        if s.sync_status is None:
            return s.t("sync.none")
        try:
            return s.t("sync.label", state=s.sync_status(s.lang))
        except Exception:  # a broken provider must not take the gate down
            return s.t("sync.unknown")


class KeyBar(Widget):
    """The keys of the screen, in the current language: `F2 方向  F3 特批 ...`, wrapped by item."""

    DEFAULT_CSS = """
    KeyBar {
        width: 1fr;
        height: auto;
        background: $panel;
        color: $foreground;
    }
    """

    def __init__(self, session: Session, hints: list[tuple[str, str]]) -> None:
        super().__init__()
        self.session = session
        self.hints = hints

    def set_hints(self, hints: list[tuple[str, str]]) -> None:
        if hints != self.hints:
            self.hints = hints
            self.relabel()

    def relabel(self) -> None:
        self.refresh(layout=True)

    def render(self) -> RichText:
        width = max(20, self.size.width or 80)
        text = RichText(no_wrap=True, overflow="crop")
        used = 0
        for key, words in self.hints:
            label = f" {self.session.t(words)} "
            size = cell_len(key) + 2 + cell_len(label)
            if used and used + size > width:
                text.append("\n")
                used = 0
            text.append(f" {key} ", style="bold reverse")
            text.append(label)
            used += size
        return text
