"""Camera feeds for the gate app: the scanner's sources, decoders and debouncer behind the small
`CodeFeed` protocol the app runs in a worker thread.

`--camera` takes a device number (`0`), `/dev/videoN`, a video file, a folder of images, a stream
URL, `auto` (the first camera if there is one), `none`, or `demo`: a simulated camera that is
"shown" the demo community's printed pass PNGs and decodes them with the real decoders.
"""

from __future__ import annotations

import queue
import threading
import time
from pathlib import Path

from menwei.core.errors import MenweiError
from menwei.core.home import Home
from menwei.gateapp.feed import CodeCallback, CodeFeed, FeedStatus, StatusCallback
from menwei.scanner.debounce import Debouncer

STATUS_EVERY_S = 1.0


class CameraFeed:
    """A real camera (or video, folder, stream) through the scanner's pipeline: the newest frame
    decoded, each card counted once while it is held up."""

    def __init__(self, source: str, *, debounce_s: float = 3.0) -> None:
        self.source = source
        self.label = f"camera {source}"
        self._debounce = Debouncer(debounce_s)
        # Undone codes, forgotten by the camera thread itself (the debouncer is not shared).
        self._forget: queue.SimpleQueue[str] = queue.SimpleQueue()

    def run(self, on_code: CodeCallback, on_status: StatusCallback, stop: threading.Event) -> None:
        from menwei.scanner.decoders import Decoding
        from menwei.scanner.hints import Hint
        from menwei.scanner.pipeline import CameraPipeline, ScannedCode
        from menwei.scanner.sources import CameraSource, CameraStatus, Frame, parse_source

        def report(status: CameraStatus) -> None:
            on_status(FeedStatus(status.state, status.message, status.fps))

        last_report = [0.0]
        hint: list[Hint | None] = [None]

        def open_status() -> FeedStatus:
            said = hint[0]
            zh, en = (said.zh, said.en) if said else ("", "")
            return FeedStatus("open", self.label, round(camera.fps, 1), zh, en)

        def each_frame(frame: Frame, decoding: Decoding) -> None:
            while not self._forget.empty():
                self._debounce.reset(self._forget.get_nowait())
            if frame.captured - last_report[0] >= STATUS_EVERY_S:
                last_report[0] = frame.captured
                on_status(open_status())

        def advised(said: Hint | None) -> None:
            hint[0] = said
            on_status(open_status())

        def found(code: ScannedCode) -> None:
            on_code(code.text, time.monotonic() - (code.latency_ms or 0.0) / 1000)

        on_status(FeedStatus("starting", self.label))
        camera = CameraSource(
            parse_source(self.source), realtime=True, on_status=report, retry_initial=True
        )
        pipeline = CameraPipeline(
            camera, debouncer=self._debounce, on_frame=each_frame, on_hint=advised
        )
        with camera:  # the device is released however the loop ends
            pipeline.run(found, stop)

    def forget(self, text: str) -> None:
        self._forget.put(text)


class SimulatedCamera:
    """The demo's camera: shows a printed pass PNG on request and decodes it like a frame."""

    def __init__(self, passes_dir: Path) -> None:
        self.passes_dir = passes_dir
        self.label = "demo"
        self._shown: queue.Queue[int] = queue.Queue()

    def households(self) -> list[int]:
        numbers = [int(p.stem) for p in self.passes_dir.glob("*.png") if p.stem.isdigit()]
        return sorted(numbers)

    def present(self, household: int) -> None:
        self._shown.put(household)

    def run(self, on_code: CodeCallback, on_status: StatusCallback, stop: threading.Event) -> None:
        import cv2
        import numpy as np

        from menwei.scanner.decoders import build_cascade

        cascade = build_cascade()
        on_status(FeedStatus("simulated", self.label))
        while not stop.is_set():
            try:
                number = self._shown.get(timeout=0.1)
            except queue.Empty:
                continue
            image = cv2.imread(str(self.passes_dir / f"{number}.png"), cv2.IMREAD_COLOR)
            if image is None:
                on_status(FeedStatus("simulated", f"no printed pass for {number}"))
                continue
            seen_at = time.monotonic()
            for text in cascade.decode(np.asarray(image, dtype=np.uint8)).texts:
                on_code(text, seen_at)

    def forget(self, text: str) -> None:
        """Each presentation is deliberate: nothing to forget."""


def build_feed(source: str, home: Home) -> CodeFeed | None:
    """The feed `--camera SOURCE` names, or None for no camera."""
    spec = source.strip()
    if spec in ("", "none", "off"):
        return None
    if spec == "demo":
        if not home.passes_dir.is_dir():
            raise MenweiError(
                f"No printed passes in {home.passes_dir}: the simulated camera needs the demo "
                "community (run `menwei demo`)."
            )
        return SimulatedCamera(home.passes_dir)
    if spec == "auto":
        from menwei.scanner.sources import list_cameras

        cameras = list_cameras()
        return CameraFeed(cameras[0]) if cameras else None
    return CameraFeed(spec)
