"""From a source to the gate: camera -> decode the newest frame -> debounce -> `on_code`.

Every source ends in the same value, `ScannedCode`, and `submit` hands any of them to the gate
service: a camera or scanner code as text, a manual entry as a household looked up in the roster.
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

from menwei.scanner import manual
from menwei.scanner.debounce import Debouncer
from menwei.scanner.decoders import Cascade, Decoding, build_cascade, to_gray
from menwei.scanner.hints import Hint, HintTracker, Observation, find_finders, observe
from menwei.scanner.sources import CameraSource, Frame
from menwei.scanner.wedge import WedgeScan

CodeOrigin = Literal["camera", "wedge", "manual"]


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ScannedCode:
    """One presentation of a code, from whichever source, ready for the gate."""

    text: str  # verbatim; for a manual entry, what the volunteer typed
    source: CodeOrigin
    seen_at: datetime  # wall time, UTC
    frame_index: int | None = None
    decode_ms: float | None = None
    decoder: str | None = None  # the cascade stage that read it
    latency_ms: float | None = None  # from the frame's capture to the hand-over


def from_wedge(scan: WedgeScan, *, wall: Callable[[], datetime] = _utc_now) -> ScannedCode:
    return ScannedCode(scan.text, "wedge", wall())


def from_manual(raw: str, *, wall: Callable[[], datetime] = _utc_now) -> ScannedCode:
    return ScannedCode(raw, "manual", wall())


@dataclass
class PipelineStats:
    frames: int = 0
    frames_with_code: int = 0
    codes: int = 0
    decode_ms: list[float] = field(default_factory=list)
    hint_ms: list[float] = field(default_factory=list)  # looking for an unread symbol
    hints: int = 0

    def summary(self, source: CameraSource | None = None) -> dict[str, Any]:
        times = sorted(self.decode_ms)
        out: dict[str, Any] = {
            "frames": self.frames,
            "frames_with_code": self.frames_with_code,
            "codes": self.codes,
            "decode_ms_median": round(statistics.median(times), 2) if times else None,
            "decode_ms_p95": round(times[int(0.95 * (len(times) - 1))], 2) if times else None,
        }
        if source is not None:
            out.update(
                fps=round(source.fps, 1),
                frames_dropped=source.frames_dropped,
                reconnects=source.reconnects,
                size=f"{source.width}x{source.height}",
            )
        return out


HINT_LOOK_EVERY_S = 0.2  # look for an unread symbol at most five times a second


class CameraPipeline:
    """Decodes the newest camera frame, debounces, and calls `on_code` once per presentation.

    `on_code` runs on the caller's thread (the one that calls `run`); a TUI worker posts a message
    from it. `on_frame` sees every decoded frame, for a preview. `on_hint` is called when what to
    tell the person changes: a `Hint` once a QR symbol has been in view for a second without
    being read, None when that ends (a read, or the symbol gone). Looking for the symbol costs
    1-2 ms, so it is done on unread frames at most every `HINT_LOOK_EVERY_S`, and only when
    `on_hint` is given.
    """

    def __init__(
        self,
        source: CameraSource,
        on_code: Callable[[ScannedCode], None] | None = None,
        *,
        cascade: Cascade | None = None,
        debouncer: Debouncer | None = None,
        wall: Callable[[], datetime] = _utc_now,
        on_frame: Callable[[Frame, Decoding], None] | None = None,
        on_hint: Callable[[Hint | None], None] | None = None,
        hints: HintTracker | None = None,
    ) -> None:
        self.source = source
        self.on_code: Callable[[ScannedCode], None] = on_code or (lambda code: None)
        self.cascade = cascade or build_cascade()
        self.debouncer = debouncer or Debouncer()
        self.wall = wall
        self.on_frame = on_frame
        self.on_hint = on_hint
        self.hints = hints or HintTracker()
        self.stats = PipelineStats()
        self._looked_at: float | None = None
        self._seen: Observation | None = None

    def run(
        self,
        on_code: Callable[[ScannedCode], None] | None = None,
        stop: threading.Event | None = None,
    ) -> PipelineStats:
        """Run until the source ends or `stop` is set; the camera is released on the way out."""
        if on_code is not None:
            self.on_code = on_code
        for frame in self.source.frames(stop):
            self.process(frame)
        return self.stats

    def process(self, frame: Frame) -> list[ScannedCode]:
        decoding = self.cascade.decode(frame.image)
        self.stats.frames += 1
        self.stats.decode_ms.append(decoding.ms)
        if self.on_frame is not None:
            self.on_frame(frame, decoding)
        out = []
        if decoding.texts:
            self.stats.frames_with_code += 1
        if self.on_hint is not None:
            self._advise(frame, bool(decoding.texts))
        for text in decoding.texts:
            # The frame's own clock: media time for a file, so a video debounces the same
            # however fast it is played.
            if not self.debouncer.accept(text, frame.at):
                continue
            code = ScannedCode(
                text=text,
                source="camera",
                seen_at=self.wall(),
                frame_index=frame.index,
                decode_ms=round(decoding.ms, 3),
                decoder=decoding.stage,
                latency_ms=round((time.monotonic() - frame.captured) * 1000, 3),
            )
            self.stats.codes += 1
            self.on_code(code)
            out.append(code)
        return out

    def _advise(self, frame: Frame, read: bool) -> None:
        if read:
            self._seen = None
            self._looked_at = None
        elif self._looked_at is None or not 0 <= frame.at - self._looked_at < HINT_LOOK_EVERY_S:
            start = time.perf_counter()
            gray = to_gray(frame.image)
            self._seen = observe(gray, find_finders(gray))
            self._looked_at = frame.at
            self.stats.hint_ms.append((time.perf_counter() - start) * 1000)
        hint = self.hints.update(frame.at, read=read, seen=self._seen)
        if self.hints.changed and self.on_hint is not None:
            self.stats.hints += hint is not None
            self.on_hint(hint)


class LineSource:
    """Codes as lines of text, from a USB scanner typing into a terminal or from a pipe.

    Only the line ending is removed (a space is a legal base45 character). A line that reads as a
    household number or an address is a manual entry; anything else is a scanned code.
    """

    def __init__(self, stream: TextIO | None = None, wall: Callable[[], datetime] = _utc_now):
        self.stream = stream if stream is not None else sys.stdin
        self.wall = wall

    def codes(self) -> Iterable[ScannedCode]:
        for line in self.stream:
            text = line.removesuffix("\n").removesuffix("\r")
            if not text:
                continue
            try:
                manual.parse(text)
            except manual.ManualEntryError:
                yield ScannedCode(text, "wedge", self.wall())
            else:
                yield ScannedCode(text, "manual", self.wall())

    def run(self, on_code: Callable[[ScannedCode], None], stop: threading.Event) -> None:
        for code in self.codes():
            if stop.is_set():
                return
            on_code(code)


def submit(
    gate: Any,
    code: ScannedCode,
    *,
    operator: str,
    direction: str = "auto",
    headcount: int = 1,
    dry_run: bool = False,
) -> Any:
    """Hand a scanned code to the gate service and return its `Decision`.

    A camera or scanner code goes to `gate.decide` verbatim; a manual entry is looked up with
    `gate.find_households` and decided with `gate.decide_household`. Raises
    `manual.ManualEntryError` when a manual entry names no single household.
    """
    if code.source == "manual":
        household = manual.find_one(code.text, gate.find_households)
        return gate.decide_household(
            household.number,
            direction=direction,
            operator=operator,
            source="manual",
            headcount=headcount,
            dry_run=dry_run,
        )
    return gate.decide(
        code.text,
        direction=direction,
        operator=operator,
        headcount=headcount,
        source=code.source,
        dry_run=dry_run,
    )
