"""Snapshots of every screen of the gate app, in Chinese and English, at 80x24 and 120x40.

The clock is frozen (the community fixture's), the cursor does not blink, and no timer shows a
value that moves while the clock stands still. Review changes with the HTML report before
accepting them with `--snapshot-update`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest
from textual.pilot import Pilot

from tests.conftest import Community
from tests.tui.helpers import forged, gate_app, scan, type_text

SIZES = [(80, 24), (120, 40)]
LANGS = ["zh", "en"]

Setup = Callable[[Community, Pilot[None]], Awaitable[None]]


async def idle(c: Community, pilot: Pilot[None]) -> None:
    await scan(pilot, c.codes[1203])
    await pilot.press("escape")


async def green(c: Community, pilot: Pilot[None]) -> None:
    await scan(pilot, c.codes[1203])


async def amber(c: Community, pilot: Pilot[None]) -> None:
    await scan(pilot, c.codes[1203])
    await pilot.press("escape")
    await pilot.press("f2")
    await scan(pilot, c.codes[1203])


async def red(c: Community, pilot: Pilot[None]) -> None:
    await scan(pilot, forged(c.codes[1204]))


async def grey(c: Community, pilot: Pilot[None]) -> None:
    await scan(pilot, "WIFI:S:lobby;T:WPA;P:secret;;")


async def ask(c: Community, pilot: Pilot[None]) -> None:
    await scan(pilot, c.codes[1203])
    c.clock.advance(timedelta(seconds=40))
    await scan(pilot, c.codes[1203])


async def undone(c: Community, pilot: Pilot[None]) -> None:
    await pilot.press("plus")
    await pilot.pause(0.2)
    await scan(pilot, c.codes[1203])
    await pilot.press("f4")
    await pilot.pause()
    await pilot.press("enter")


async def quit_(c: Community, pilot: Pilot[None]) -> None:
    await pilot.press("ctrl+q")


async def override(c: Community, pilot: Pilot[None]) -> None:
    await amber(c, pilot)
    await pilot.press("f3")


async def lookup(c: Community, pilot: Pilot[None]) -> None:
    await pilot.press("f5")
    await type_text(pilot, "3-301")


async def undo(c: Community, pilot: Pilot[None]) -> None:
    await scan(pilot, c.codes[2101])
    await pilot.press("f4")


async def signin(c: Community, pilot: Pilot[None]) -> None:
    await pilot.pause()


async def handover(c: Community, pilot: Pilot[None]) -> None:
    await _two_out_one_late(c, pilot)
    await pilot.press("f8")


async def board(c: Community, pilot: Pilot[None]) -> None:
    await _two_out_one_late(c, pilot)
    await pilot.press("f6")


async def log(c: Community, pilot: Pilot[None]) -> None:
    await _two_out_one_late(c, pilot)
    await pilot.press("f7")


async def help_(c: Community, pilot: Pilot[None]) -> None:
    await pilot.press("f1")


async def _two_out_one_late(c: Community, pilot: Pilot[None]) -> None:
    c.set_policy(
        'timezone = "Asia/Shanghai"\nmax_time_out = "2h"\n'
        '[[windows]]\ngroups = ["3", "5"]\nstart = "08:00"\nend = "16:00"\n'
        '[[windows]]\ngroups = ["8"]\nstart = "14:00"\nend = "15:00"\n'
    )
    await scan(pilot, c.codes[1203])
    c.clock.advance(timedelta(hours=2, minutes=30))
    await scan(pilot, c.codes[2101])
    await pilot.press("escape")


SCREENS: dict[str, Setup] = {
    "scan_idle": idle,
    "scan_green": green,
    "scan_amber": amber,
    "scan_red": red,
    "scan_grey": grey,
    "scan_ask": ask,
    "scan_undone": undone,
    "quit": quit_,
    "override": override,
    "lookup": lookup,
    "undo": undo,
    "signin": signin,
    "handover": handover,
    "board": board,
    "log": log,
    "help": help_,
}


@pytest.mark.usefixtures("steady_cursor")
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("screen", list(SCREENS))
def test_screen(
    community: Community,
    snap_compare: Callable[..., bool],
    screen: str,
    lang: str,
    size: tuple[int, int],
) -> None:
    app = gate_app(community, lang=lang, operator=None if screen == "signin" else "王阿姨")

    async def run_before(pilot: Pilot[None]) -> None:
        await pilot.pause()
        await SCREENS[screen](community, pilot)
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=run_before)


SMALL = (60, 20)


@pytest.mark.usefixtures("steady_cursor")
@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize(
    "screen", ["scan_green", "scan_amber", "scan_red", "scan_grey", "scan_ask", "scan_undone"]
)
def test_verdict_at_60x20(
    community: Community, snap_compare: Callable[..., bool], screen: str, lang: str
) -> None:
    """A small terminal (or a big font) keeps the word, the reason and the F3/F4 hints."""
    app = gate_app(community, lang=lang)

    async def run_before(pilot: Pilot[None]) -> None:
        await pilot.pause()
        await SCREENS[screen](community, pilot)
        await pilot.pause()

    assert snap_compare(app, terminal_size=SMALL, run_before=run_before)
