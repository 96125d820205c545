"""The camera path end to end: a thread worker reads frames, decodes them with the real
decoders and posts `CodeScanned`; the verdict shows as for a USB scanner."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from menwei.gateapp.app import GateApp
from menwei.gateapp.camera import CameraFeed, SimulatedCamera, build_feed
from menwei.output.printing import PrintedPass, print_passes
from menwei.screens.dialogs import PresentScreen
from menwei.screens.widgets import StatusBar
from tests.conftest import Community
from tests.tui.helpers import gate_app, plain, type_text, wait_until

pytestmark = pytest.mark.anyio


def print_some(community: Community, numbers: list[int]) -> Path:
    passes = []
    for n in numbers:
        household = community.gate.household(n)
        assert household is not None
        passes.append(PrintedPass(household, 1, community.codes[n], date(2027, 5, 1), "测试小区"))
    print_passes(community.home.passes_dir, passes, community_name="测试小区")
    return community.home.passes_dir


async def wait_for_verdict(app: GateApp, pilot: object) -> None:
    """The camera thread takes a moment: wait for its message, not for a fixed time."""
    await wait_until(pilot, lambda: app.scan_screen.panel.decision is not None)  # type: ignore[arg-type]


async def test_the_demo_camera_shows_a_printed_pass(community: Community) -> None:
    print_some(community, [1203, 2101])
    app = gate_app(community, camera="demo")
    async with app.run_test(size=(80, 24)) as pilot:
        assert isinstance(app.feed, SimulatedCamera)
        assert app.session.presenter is not None
        await pilot.press("f9")
        await pilot.pause()
        assert isinstance(app.screen, PresentScreen)
        await type_text(pilot, "1203")
        await pilot.press("enter")
        await wait_for_verdict(app, pilot)
        d = app.scan_screen.panel.decision
        assert d is not None and d.household_number == 1203 and d.source == "camera"
        assert "摄像头:模拟" in plain(app.scan_screen.query_one(StatusBar))
    assert app.session.camera is not None


async def test_a_camera_reads_each_card_once(community: Community, tmp_path: Path) -> None:
    passes = print_some(community, [2102])
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(3):  # the same card held up for three frames
        shutil.copy(passes / "2102.png", frames / f"{i:03d}.png")
    app = gate_app(community, camera=CameraFeed(str(frames)))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for_verdict(app, pilot)
        await app.workers.wait_for_complete()
        await pilot.pause()
        d = app.scan_screen.panel.decision
        assert d is not None and d.household_number == 2102 and d.direction == "exit"
    assert community.gate.state_of(2102).state == "out"
    rows = community.store.query("select kind from events where household = 2102")
    assert [r["kind"] for r in rows] == ["exit"]


def test_camera_choices(community: Community, tmp_path: Path) -> None:
    assert build_feed("none", community.home) is None
    with pytest.raises(Exception, match="menwei demo"):
        build_feed("demo", community.home)
    assert isinstance(build_feed("/dev/video9", community.home), CameraFeed)


def test_gate_command_has_help() -> None:
    from menwei.cli import cli

    result = CliRunner().invoke(cli, ["gate", "--help"])
    assert result.exit_code == 0
    assert "--camera" in result.output and "--lang" in result.output


def test_gate_command_on_a_home_without_community(tmp_path: Path) -> None:
    from menwei.cli import cli

    result = CliRunner().invoke(cli, ["--home", str(tmp_path / "none"), "gate"])
    assert result.exit_code != 0
    assert "menwei init" in result.output
