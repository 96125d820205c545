"""Screens and dialogs that speak the session's language and redraw their words on F10."""

from __future__ import annotations

from typing import TypeVar

from textual.screen import ModalScreen, Screen

from menwei.gateapp.desk import DeskError
from menwei.gateapp.i18n import desk_error
from menwei.gateapp.session import Session
from menwei.screens.widgets import KeyBar, StatusBar

R = TypeVar("R")


class GateScreen(Screen[None]):
    """A top-level area (scan, out now, log) with the status bar on top and the keys below."""

    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session

    def t(self, key: str, **values: object) -> str:
        return self.session.t(key, **values)

    def key_hints(self) -> list[tuple[str, str]]:
        return []

    def relabel(self) -> None:
        """Redraw every word in the current language."""
        for bar in self.query(StatusBar):
            bar.refresh_status()
        for keys in self.query(KeyBar):
            keys.set_hints(self.key_hints())
            keys.relabel()

    def on_screen_resume(self) -> None:
        self.relabel()

    def tell(self, error: DeskError) -> None:
        """Show what could not be done, in words, and ring once."""
        self.app.bell()
        self.notify(desk_error(self.session.lang, error), severity="warning", timeout=6)


class GateModal(ModalScreen[R]):
    """A question over the current screen; Esc answers None unless the dialog says otherwise."""

    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session

    def t(self, key: str, **values: object) -> str:
        return self.session.t(key, **values)

    def relabel(self) -> None:
        """Redraw every word in the current language."""
