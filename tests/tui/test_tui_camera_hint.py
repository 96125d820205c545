"""The camera's hint (issue 15) reaches the scan screen's status bar: a pass held too far away
for a second is answered with 靠近一点 / Bring the pass closer."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from menwei.gateapp.camera import CameraFeed
from menwei.gateapp.feed import FeedStatus
from menwei.scanner import synth
from menwei.scanner.synth import Look, Shot
from menwei.screens.widgets import StatusBar
from tests.conftest import Community
from tests.scanner.cards import pass_card
from tests.tui.helpers import gate_app, plain

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def far_away(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pass held too far from the camera to be read, for four seconds."""
    video = tmp_path_factory.mktemp("hint") / "far.avi"
    # Played in real time, so a loaded machine drops frames: long enough for a second of them.
    tiny = Look(module_px=2.1, blur_sigma=1.1, noise_sigma=6, jpeg_quality=40)
    synth.write_video(video, [Shot(pass_card(1203), 4.0)], look=tiny, slide_s=0.1)
    return video


def test_the_camera_feed_reports_the_hint_in_both_languages(far_away: Path) -> None:
    statuses: list[FeedStatus] = []
    codes: list[str] = []
    CameraFeed(str(far_away)).run(
        lambda text, _at: codes.append(text), statuses.append, threading.Event()
    )
    assert codes == []
    hinted = [s for s in statuses if s.hint_zh]
    assert hinted, statuses
    assert (hinted[0].hint("zh"), hinted[0].hint("en")) == ("靠近一点", "Bring the pass closer")


async def test_the_status_bar_shows_the_hint(community: Community, far_away: Path) -> None:
    app = gate_app(community, camera=CameraFeed(str(far_away)))
    async with app.run_test(size=(80, 24)) as pilot:
        for _ in range(200):
            camera = app.session.camera
            if camera is not None and camera.hint_zh:
                break
            await pilot.pause(0.05)
        bar = app.scan_screen.query_one(StatusBar)
        bar.refresh_status()
        assert "靠近一点" in plain(bar)
