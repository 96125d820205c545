"""Helpers for the gate app's tests: an app on the shared test community, keys typed like a USB
scanner, a forged pass, and a steady cursor for snapshots."""

from __future__ import annotations

import io
import time
from collections.abc import Callable

from rich.console import Console
from textual import events
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import Static

from menwei.core import base45, passes
from menwei.gateapp.app import GateApp, make_app
from menwei.gateapp.sound import Sound
from menwei.screens.scan import ScanScreen

# Longer than the key gate's hold time: a lone key is then handed on as a shortcut.
KEY_SETTLE_S = 0.2
SCANNER_KEYS = {
    " ": "space",
    ":": "colon",
    "$": "dollar_sign",
    "%": "percent_sign",
    "*": "asterisk",
    "+": "plus",
    "-": "minus",
    ".": "full_stop",
    "/": "slash",
}


def gate_app(
    community: object, *, lang: str = "zh", operator: str | None = "王阿姨", **kwargs: object
) -> GateApp:
    """The gate app on the `community` fixture (its frozen clock and gate service)."""
    home = community.home  # type: ignore[attr-defined]
    gate = community.gate  # type: ignore[attr-defined]
    # No speakers in tests: the cues stay silent and the bell stands in (counted by the tests).
    kwargs.setdefault("sound", Sound(cues=False, speech=False))
    return make_app(home, gate=gate, lang=lang, operator=operator, **kwargs)  # type: ignore[arg-type]


def scanner_keys(code: str) -> list[str]:
    """The key presses a USB wedge scanner makes for `code`, then Enter."""
    return [SCANNER_KEYS.get(c, c) for c in code] + ["enter"]


async def scan(pilot: Pilot[None], code: str) -> None:
    """Type `code` the way a USB scanner does, a key every millisecond or so, then Enter.

    (Pilot's `press` waits for the app between keys, which is a fast typist, not a scanner.)
    """
    for key in scanner_keys(code):
        char = None if key == "enter" else _char(key)
        pilot.app.post_message(events.Key(key, char))
    await pilot.pause()
    await pilot.pause()


def _char(key: str) -> str:
    for c, name in SCANNER_KEYS.items():
        if name == key:
            return c
    return key


async def press_digit(pilot: Pilot[None], digit: str) -> None:
    """A volunteer's single key: it waits out the scanner detection before acting."""
    await pilot.press(digit)
    await pilot.pause(KEY_SETTLE_S)
    await pilot.pause()


async def type_text(pilot: Pilot[None], text: str) -> None:
    """Type into the focused field like a person would (one key at a time)."""
    for c in text:
        await pilot.press(SCANNER_KEYS.get(c, c))


def scan_screen(app: GateApp) -> ScanScreen:
    return app.scan_screen


def plain(widget: Widget) -> str:
    """What a Static shows, as plain text (tables included)."""
    console = Console(width=200, file=io.StringIO(), record=True, color_system=None)
    content = widget.content if isinstance(widget, Static) else widget.render()
    console.print(content)
    return console.export_text()


def forged(code: str) -> str:
    """The same pass with one bit of its signature flipped: well-formed, but not signed by us."""
    raw = bytearray(base45.decode(code[len(passes.PREFIX) :]))
    raw[-1] ^= 0x01
    return passes.PREFIX + base45.encode(bytes(raw))


async def wait_until(
    pilot: Pilot[None], condition: Callable[[], bool], timeout: float = 10
) -> None:
    """Wait for the app to get there (a message handled, a timer fired), not for a fixed time:
    the deadline only stops a test that would otherwise hang."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"the app did not get there within {timeout} s")
        await pilot.pause(0.02)
