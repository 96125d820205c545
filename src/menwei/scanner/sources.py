"""Where codes come from: the camera (through OpenCV's VideoCapture), a USB scanner, a person.

`CameraSource` opens a device index, a video file, a folder of images or a stream URL through the
same path. A live source (a device or a URL) is read by a thread that keeps only the newest frame,
so decoding never falls behind the camera; when reads fail (the camera was unplugged) it releases
the device, reports, and reopens it with back-off. A file or folder is played frame by frame on
its own media clock, so a test sees every frame; `realtime=True` plays it at its frame rate and
drops stale frames the way a camera does.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

from menwei.core.errors import MenweiError

if TYPE_CHECKING:
    from menwei.scanner.pipeline import ScannedCode

Image = npt.NDArray[np.uint8]
SourceKind = Literal["device", "file", "folder", "url"]
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".pgm"})
WANT_SIZE = (1280, 720)
FALLBACK_SIZE = (640, 480)
BACKOFF_S = (0.5, 1.0, 2.0, 4.0, 8.0)  # then 8 s between tries, for as long as the gate runs


class CameraUnavailable(MenweiError):
    """The camera or video could not be opened; the message says which and why."""


class CodeSource(Protocol):
    """Anything that yields scanned codes: the camera pipeline, a scanner typing lines.

    `run` calls `on_code` once per presentation until the source ends or `stop` is set. A
    keyboard-wedge scanner inside the gate app is not a thread of its own: the app feeds its key
    events to `WedgeDetector`, and a manual entry comes from a form; both end in the same
    `ScannedCode`.
    """

    def run(self, on_code: Callable[[ScannedCode], None], stop: threading.Event) -> None: ...


class Capture(Protocol):
    """The part of `cv2.VideoCapture` menwei uses (a folder of images or a fake fits it too)."""

    def isOpened(self) -> bool: ...
    def read(self) -> tuple[bool, Any]: ...
    def release(self) -> None: ...
    def get(self, prop_id: int) -> float: ...
    def set(self, prop_id: int, value: float) -> bool: ...


@dataclass(frozen=True)
class SourceSpec:
    """A parsed `--source`: a device index or path, a file, a folder of images, or a URL."""

    kind: SourceKind
    target: int | str

    @property
    def live(self) -> bool:
        """A camera or stream: frames come in real time and it may drop out and come back."""
        return self.kind in ("device", "url")

    def __str__(self) -> str:
        return f"camera {self.target}" if self.kind == "device" else str(self.target)


def parse_source(value: str | int | Path) -> SourceSpec:
    """`0` -> camera 0; `/dev/video2` -> that camera; a URL; a folder; otherwise a video file."""
    if isinstance(value, int):
        return SourceSpec("device", value)
    text = str(value)
    if text.isdigit():
        return SourceSpec("device", int(text))
    if "://" in text:
        return SourceSpec("url", text)
    if text.startswith("/dev/video"):
        return SourceSpec("device", text)
    if Path(text).is_dir():
        return SourceSpec("folder", text)
    return SourceSpec("file", text)


@dataclass(frozen=True)
class Frame:
    image: Image
    index: int  # frames read from the source so far, dropped ones included (0-based)
    at: float  # seconds on the source's clock: media time for files, monotonic for live sources
    captured: float  # time.monotonic() when the frame was read


@dataclass(frozen=True)
class CameraStatus:
    """A report from the camera: opened, lost, retrying, ended, closed."""

    state: Literal["open", "lost", "retrying", "ended", "closed"]
    message: str
    width: int = 0
    height: int = 0
    fps: float = 0.0


class FolderCapture:
    """A folder of images played as a video, in name order, through the `Capture` interface."""

    def __init__(self, folder: str | Path, fps: float = 30.0) -> None:
        self.files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        self.fps = fps
        self._next = 0
        self._size = (0, 0)
        self._open = bool(self.files)

    def isOpened(self) -> bool:
        return self._open

    def read(self) -> tuple[bool, Any]:
        import cv2

        while self._open and self._next < len(self.files):
            path = self.files[self._next]
            self._next += 1
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is not None:
                self._size = (image.shape[1], image.shape[0])
                return True, image
        return False, None

    def release(self) -> None:
        self._open = False

    def get(self, prop_id: int) -> float:
        import cv2

        if prop_id == cv2.CAP_PROP_FPS:
            return self.fps
        if prop_id == cv2.CAP_PROP_FRAME_COUNT:
            return float(len(self.files))
        if prop_id == cv2.CAP_PROP_FRAME_WIDTH:
            return float(self._size[0])
        if prop_id == cv2.CAP_PROP_FRAME_HEIGHT:
            return float(self._size[1])
        return 0.0

    def set(self, prop_id: int, value: float) -> bool:
        return False


def _quiet_opencv() -> None:
    """Keep OpenCV's own warnings (a missing /dev/videoN) off the terminal; we report in words."""
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
    import cv2

    with contextlib.suppress(AttributeError):
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)


def list_cameras() -> list[str]:
    """Video devices this machine has (Linux: /dev/video*)."""
    return sorted(str(p) for p in Path("/dev").glob("video*"))


def open_capture(spec: SourceSpec, want: tuple[int, int] = WANT_SIZE) -> Capture:
    """Open `spec` through OpenCV and set it up; raise CameraUnavailable with the reason."""
    _quiet_opencv()
    import cv2

    if spec.kind == "folder":
        folder = FolderCapture(str(spec.target))
        if not folder.isOpened():
            raise CameraUnavailable(f"{spec.target}: no images in this folder")
        return folder
    if spec.kind == "file" and not Path(str(spec.target)).exists():
        raise CameraUnavailable(f"{spec.target}: no such file")
    if spec.kind == "device":
        path = f"/dev/video{spec.target}" if isinstance(spec.target, int) else str(spec.target)
        if sys.platform.startswith("linux") and not Path(path).exists():
            others = list_cameras()
            here = f"cameras here: {', '.join(others)}" if others else "this machine has no camera"
            raise CameraUnavailable(f"camera {spec.target}: there is no {path} ({here})")
        backend = cv2.CAP_V4L2 if sys.platform.startswith("linux") else cv2.CAP_ANY
        cap: Any = cv2.VideoCapture(spec.target, backend)
    else:
        cap = cv2.VideoCapture(str(spec.target))
    if not cap.isOpened():
        cap.release()
        if spec.kind == "device":
            raise CameraUnavailable(
                f"camera {spec.target} could not be opened: another program may be using it, "
                "or this user may lack access to the video group"
            )
        raise CameraUnavailable(f"{spec.target}: OpenCV cannot open it as a video")
    if spec.kind == "device":
        _set_up_camera(cap, want)
    return cap  # type: ignore[no-any-return]


def _set_up_camera(cap: Any, want: tuple[int, int]) -> None:
    """Ask for `want` (MJPG, which cheap UVC webcams need for 720p at 30 fps), else 640x480."""
    import cv2

    cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*"MJPG"))
    for width, height in (want, FALLBACK_SIZE):
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        got = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        if got == (width, height):
            break
    # The reader thread keeps only the newest frame; a deep driver queue would only add lag.
    cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)


class FpsMeter:
    """Frames per second over the last `window` frames."""

    def __init__(self, window: int = 30) -> None:
        self._times: deque[float] = deque(maxlen=window)

    def tick(self, at: float) -> None:
        self._times.append(at)

    @property
    def fps(self) -> float:
        if len(self._times) < 2:
            return 0.0
        span = self._times[-1] - self._times[0]
        return (len(self._times) - 1) / span if span > 0 else 0.0


class CameraSource:
    """Frames from a camera, video file, image folder or stream URL.

    Use as a context manager, or call `close()`: the device is always released. `frames(stop)`
    yields frames until the source ends or `stop` is set.
    """

    def __init__(
        self,
        source: SourceSpec | str | int | Path,
        *,
        realtime: bool | None = None,
        want: tuple[int, int] = WANT_SIZE,
        opener: Callable[[SourceSpec], Capture] | None = None,
        on_status: Callable[[CameraStatus], None] | None = None,
        backoff: tuple[float, ...] = BACKOFF_S,
        retry_initial: bool = False,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.spec = source if isinstance(source, SourceSpec) else parse_source(source)
        self.realtime = self.spec.live if realtime is None else realtime
        self._opener = opener or (lambda spec: open_capture(spec, want))
        self._on_status = on_status
        self._backoff = backoff
        self._retry_initial = retry_initial
        self._sleep = sleep
        self._clock = clock
        self._cap: Capture | None = None
        self._lock = threading.Lock()
        self.width = 0
        self.height = 0
        self.nominal_fps = 0.0  # what the source says
        self.meter = FpsMeter()  # what it delivers
        self.frames_read = 0
        self.frames_dropped = 0
        self.reconnects = 0

    # -- lifecycle ------------------------------------------------------------------------------

    def __enter__(self) -> CameraSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            cap, self._cap = self._cap, None
        if cap is not None:
            cap.release()
            self._report("closed", f"{self.spec} released")

    @property
    def fps(self) -> float:
        """Frames per second actually delivered (the nominal rate until enough were read)."""
        return self.meter.fps or self.nominal_fps

    def _report(self, state: Any, message: str) -> None:
        if self._on_status is not None:
            self._on_status(
                CameraStatus(state, message, self.width, self.height, round(self.fps, 1))
            )

    def _open(self) -> Capture:
        import cv2

        cap = self._opener(self.spec)
        self.nominal_fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        self.height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        with self._lock:
            self._cap = cap
        size = f"{self.width}x{self.height}" if self.width else "size unknown"
        rate = f"{self.nominal_fps:g} fps" if self.nominal_fps else "fps unknown"
        self._report("open", f"{self.spec} open: {size}, {rate}")
        return cap

    def _wait(self, seconds: float, stop: threading.Event) -> bool:
        """Sleep `seconds` unless stopped first; True when stopped."""
        if self._sleep is not None:
            self._sleep(seconds)
            return stop.is_set()
        return stop.wait(seconds)

    def _reopen(self, stop: threading.Event, reason: str) -> Capture | None:
        """Release the lost device and try again with back-off until it opens or `stop`."""
        with self._lock:
            lost, self._cap = self._cap, None
        if lost is not None:
            lost.release()
        self._report("lost", f"{self.spec} unavailable: {reason}")
        attempt = 0
        while not stop.is_set():
            delay = self._backoff[min(attempt, len(self._backoff) - 1)]
            self._report("retrying", f"{self.spec}: trying again in {delay:g} s")
            if self._wait(delay, stop):
                return None
            attempt += 1
            try:
                cap = self._open()
            except CameraUnavailable as exc:
                reason = exc.message
                continue
            self.reconnects += 1
            return cap
        return None

    # -- frames ---------------------------------------------------------------------------------

    def frames(self, stop: threading.Event | None = None) -> Iterator[Frame]:
        """Frames until the source ends or `stop` is set; the device is released at the end."""
        stop = stop or threading.Event()
        try:
            try:
                self._open()
            except CameraUnavailable as exc:
                if not (self._retry_initial and self.spec.live):
                    raise
                if self._reopen(stop, exc.message) is None:
                    return
            if self.realtime:
                yield from self._newest_frames(stop)
            else:
                yield from self._every_frame(stop)
        finally:
            self.close()

    def _every_frame(self, stop: threading.Event) -> Iterator[Frame]:
        """Each frame in turn, timed by the media clock (index / fps)."""
        fps = self.nominal_fps if self.nominal_fps > 0 else 30.0
        index = 0
        while not stop.is_set():
            cap = self._cap
            if cap is None:
                return
            ok, image = cap.read()
            if not ok or image is None:
                self._report("ended", f"{self.spec}: end after {index} frames")
                return
            now = self._clock()
            self.meter.tick(now)
            self.frames_read = index + 1
            if not self.width:
                self.height, self.width = image.shape[:2]
            yield Frame(image, index, index / fps, now)
            index += 1

    def _newest_frames(self, stop: threading.Event) -> Iterator[Frame]:
        """A reader thread reads as fast as the source gives; the consumer gets the newest."""
        slot: list[Frame | None] = [None]
        halt = threading.Event()  # set by the consumer when it stops, for whatever reason
        done = threading.Event()  # set by the reader when it ends
        ready = threading.Condition()
        failure: list[BaseException] = []

        def reader() -> None:
            index = 0
            start = self._clock()
            try:
                while not halt.is_set():
                    cap = self._cap
                    if cap is None:
                        return
                    if not self.spec.live and self.nominal_fps > 0:
                        # A file played in real time: not faster than its frame rate.
                        delay = start + index / self.nominal_fps - self._clock()
                        if delay > 0 and self._wait(delay, halt):
                            return
                    ok, image = cap.read()
                    if not ok or image is None:
                        if not self.spec.live:
                            self._report("ended", f"{self.spec}: end after {index} frames")
                            return
                        if self._reopen(halt, "no frame from the camera") is None:
                            return
                        continue
                    now = self._clock()
                    self.meter.tick(now)
                    if not self.width:
                        self.height, self.width = image.shape[:2]
                    with ready:
                        if slot[0] is not None:
                            self.frames_dropped += 1
                        slot[0] = Frame(image, index, now, now)
                        self.frames_read = index + 1
                        ready.notify()
                    index += 1
            except BaseException as exc:  # handed over and raised in the consumer
                failure.append(exc)
            finally:
                done.set()
                with ready:
                    ready.notify()

        thread = threading.Thread(target=reader, name=f"camera:{self.spec}", daemon=True)
        thread.start()
        try:
            while not stop.is_set():
                with ready:
                    while slot[0] is None and not done.is_set() and not stop.is_set():
                        ready.wait(0.05)  # wakes to notice `stop`
                    frame, slot[0] = slot[0], None
                if frame is not None:
                    yield frame
                elif done.is_set():
                    break
        finally:
            halt.set()
            thread.join(timeout=10.0)
        if failure:
            raise failure[0]
