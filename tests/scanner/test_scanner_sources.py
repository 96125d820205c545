"""Camera sources: files, folders, devices that are missing or get unplugged."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from menwei.cli import cli
from menwei.scanner.sources import (
    CameraSource,
    CameraStatus,
    CameraUnavailable,
    FpsMeter,
    SourceSpec,
    _set_up_camera,
    parse_source,
)
from tests.conftest import Community


class FakeCapture:
    """A camera that gives `frames` frames filled with `value`, then fails like an unplugged one.

    With `forever`, it keeps giving frames, one per `pace` seconds.
    """

    def __init__(self, value: int, frames: int, *, forever: bool = False, fps: float = 30.0):
        self.value = value
        self.left = frames
        self.forever = forever
        self.fps = fps
        self.released = False
        self.reads = 0
        self._pace = threading.Event()

    def isOpened(self) -> bool:
        return not self.released

    def read(self) -> tuple[bool, Any]:
        if self.released:
            return False, None
        if self.forever:
            self._pace.wait(0.002)  # a fast camera, not a busy loop
        elif self.left <= 0:
            return False, None
        self.left -= 1
        self.reads += 1
        return True, np.full((48, 64, 3), self.value, np.uint8)

    def release(self) -> None:
        self.released = True

    def get(self, prop_id: int) -> float:
        return {cv2.CAP_PROP_FPS: self.fps, cv2.CAP_PROP_FRAME_WIDTH: 64.0}.get(prop_id, 48.0)

    def set(self, prop_id: int, value: float) -> bool:
        return True


class Script:
    """An opener that plays a script: a capture to hand out, or an exception to raise."""

    def __init__(self, *steps: FakeCapture | Exception) -> None:
        self.steps = list(steps)
        self.opened: list[FakeCapture] = []

    def __call__(self, spec: SourceSpec) -> FakeCapture:
        step = self.steps.pop(0) if self.steps else CameraUnavailable("still unplugged")
        if isinstance(step, Exception):
            raise step
        self.opened.append(step)
        return step


@pytest.mark.parametrize(
    ("value", "spec"),
    [
        ("0", SourceSpec("device", 0)),
        (2, SourceSpec("device", 2)),
        ("/dev/video2", SourceSpec("device", "/dev/video2")),
        ("rtsp://10.0.0.5/stream", SourceSpec("url", "rtsp://10.0.0.5/stream")),
        ("http://cam.local/mjpg", SourceSpec("url", "http://cam.local/mjpg")),
        ("gate.avi", SourceSpec("file", "gate.avi")),
    ],
)
def test_parse_source(value: str | int, spec: SourceSpec) -> None:
    assert parse_source(value) == spec


def test_a_folder_is_a_folder(tmp_path: Path) -> None:
    assert parse_source(tmp_path) == SourceSpec("folder", str(tmp_path))
    assert parse_source(tmp_path).live is False
    assert SourceSpec("device", 0).live and SourceSpec("url", "rtsp://x").live


def test_an_unplugged_camera_is_released_and_reopened_with_backoff() -> None:
    first = FakeCapture(1, frames=3)
    second = FakeCapture(2, frames=0, forever=True)
    opener = Script(first, CameraUnavailable("gone"), CameraUnavailable("gone"), second)
    statuses: list[CameraStatus] = []
    waits: list[float] = []
    source = CameraSource(
        SourceSpec("device", 0), opener=opener, on_status=statuses.append, sleep=waits.append
    )
    stop = threading.Event()
    values = []
    for frame in source.frames(stop):
        values.append(int(frame.image[0, 0, 0]))
        if values[-1] == 2:
            stop.set()
    assert values[-1] == 2 and set(values) <= {1, 2}
    assert waits == [0.5, 1.0, 2.0]  # back-off between attempts
    assert source.reconnects == 1
    assert first.released and second.released
    states = [s.state for s in statuses]
    assert states[0] == "open"
    assert states[1] == "lost"
    assert states[2:5] == ["retrying"] * 3
    assert states[5] == "open"
    assert states[-1] == "closed"
    assert "no frame" in statuses[1].message


def test_a_camera_missing_at_start_can_be_waited_for() -> None:
    camera = FakeCapture(5, frames=0, forever=True)
    opener = Script(CameraUnavailable("no camera"), camera)
    waits: list[float] = []
    source = CameraSource(
        SourceSpec("device", 0), opener=opener, retry_initial=True, sleep=waits.append
    )
    stop = threading.Event()
    for _frame in source.frames(stop):
        stop.set()
    assert waits == [0.5]
    assert camera.released


def test_waiting_for_a_camera_stops_when_asked() -> None:
    stop = threading.Event()
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 7:
            stop.set()

    source = CameraSource(SourceSpec("device", 0), opener=Script(), retry_initial=True, sleep=sleep)
    assert list(source.frames(stop)) == []
    assert waits == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


def test_a_camera_that_does_not_exist_is_reported_in_words() -> None:
    with pytest.raises(CameraUnavailable, match="/dev/video97"):
        list(CameraSource(97).frames())


def test_scan_on_a_missing_camera_says_so_without_a_traceback(community: Community) -> None:
    result = CliRunner().invoke(cli, ["scan", "--source", "97", "--json"])
    assert result.exit_code == 1
    assert "/dev/video97" in result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_missing_files_and_empty_folders(tmp_path: Path) -> None:
    with pytest.raises(CameraUnavailable, match="no such file"):
        list(CameraSource(tmp_path / "nothing.avi").frames())
    with pytest.raises(CameraUnavailable, match="no images"):
        list(CameraSource(tmp_path).frames())
    junk = tmp_path / "junk.avi"
    junk.write_bytes(b"not a video")
    with pytest.raises(CameraUnavailable):
        list(CameraSource(junk).frames())


def test_a_folder_of_images_plays_in_name_order(tmp_path: Path) -> None:
    for i in (3, 1, 2):
        cv2.imwrite(str(tmp_path / f"frame{i:02d}.png"), np.full((48, 64, 3), i * 10, np.uint8))
    (tmp_path / "notes.txt").write_text("not a frame")
    source = CameraSource(tmp_path)
    frames = list(source.frames())
    assert [int(f.image[0, 0, 0]) for f in frames] == [10, 20, 30]
    assert [f.index for f in frames] == [0, 1, 2]
    assert [f.at for f in frames] == [0.0, 1 / 30, 2 / 30]  # the media clock
    assert (source.width, source.height) == (64, 48)


def test_leaving_early_releases_the_camera() -> None:
    for realtime in (False, True):
        capture = FakeCapture(1, frames=0, forever=True)
        source = CameraSource(
            SourceSpec("file", "x.avi"), opener=Script(capture), realtime=realtime
        )
        for _frame in source.frames():
            break
        assert capture.released, realtime


def test_a_realtime_source_hands_over_only_the_newest_frame() -> None:
    capture = FakeCapture(1, frames=200, fps=0.0)  # no frame rate: as fast as it reads
    source = CameraSource(SourceSpec("file", "x.avi"), opener=Script(capture), realtime=True)
    got = [f.index for f in source.frames()]
    assert got == sorted(set(got))
    assert got[-1] == 199
    assert len(got) + source.frames_dropped == 200 == source.frames_read


def test_a_reader_failure_reaches_the_consumer() -> None:
    class Broken(FakeCapture):
        def read(self) -> tuple[bool, Any]:
            raise RuntimeError("driver crashed")

    broken = Broken(1, frames=1)
    source = CameraSource(SourceSpec("device", 0), opener=Script(broken))
    with pytest.raises(RuntimeError, match="driver crashed"):
        list(source.frames())
    assert broken.released


def test_the_camera_asks_for_720p_and_falls_back_to_480p() -> None:
    class Only480(FakeCapture):
        def __init__(self) -> None:
            super().__init__(0, 0)
            self.size = [0.0, 0.0]
            self.calls: list[tuple[int, float]] = []

        def set(self, prop_id: int, value: float) -> bool:
            self.calls.append((prop_id, value))
            if prop_id == cv2.CAP_PROP_FRAME_WIDTH:
                self.size[0] = value if value <= 640 else 640
            if prop_id == cv2.CAP_PROP_FRAME_HEIGHT:
                self.size[1] = value if value <= 480 else 480
            return True

        def get(self, prop_id: int) -> float:
            if prop_id == cv2.CAP_PROP_FRAME_WIDTH:
                return self.size[0]
            if prop_id == cv2.CAP_PROP_FRAME_HEIGHT:
                return self.size[1]
            return 0.0

    cap = Only480()
    _set_up_camera(cap, (1280, 720))
    sizes = [v for p, v in cap.calls if p in (cv2.CAP_PROP_FRAME_WIDTH, cv2.CAP_PROP_FRAME_HEIGHT)]
    assert sizes == [1280, 720, 640, 480]
    assert cap.size == [640, 480]
    assert (cv2.CAP_PROP_BUFFERSIZE, 1) in cap.calls
    assert cap.calls[0][0] == cv2.CAP_PROP_FOURCC


def test_fps_is_measured() -> None:
    meter = FpsMeter()
    assert meter.fps == 0.0
    for i in range(60):
        meter.tick(i / 30)
    assert meter.fps == pytest.approx(30.0)
