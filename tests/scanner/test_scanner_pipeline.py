"""The pipeline with plain callbacks: frames in, one ScannedCode per presentation out."""

from __future__ import annotations

import io
import threading
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np

from menwei.scanner import synth
from menwei.scanner.debounce import Debouncer
from menwei.scanner.decoders import Decoding
from menwei.scanner.pipeline import CameraPipeline, LineSource, ScannedCode
from menwei.scanner.sources import CameraSource, Frame
from menwei.scanner.synth import Look

NOON = datetime(2026, 11, 24, 4, 0, tzinfo=UTC)


def _folder(tmp_path: Path, frames: list[np.ndarray]) -> Path:
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, frame in enumerate(frames):
        cv2.imwrite(str(folder / f"{i:03d}.png"), frame)
    return folder


def test_a_card_held_over_many_frames_is_one_scanned_code(tmp_path: Path) -> None:
    card = synth.qr_card("MW:HELD UP CARD 1")
    other = synth.qr_card("MW:ANOTHER CARD 2")
    blank = synth.degrade(synth.Background().image(), Look(), np.random.default_rng(0))
    frames = [blank] * 2
    frames += [synth.frame_of(card, Look(module_px=4.0), seed=s) for s in range(6)]
    frames += [synth.frame_of(other, Look(module_px=4.0), seed=s) for s in range(3)]
    codes: list[ScannedCode] = []
    seen: list[tuple[int, Decoding]] = []
    pipeline = CameraPipeline(
        CameraSource(_folder(tmp_path, frames)),
        codes.append,
        wall=lambda: NOON,
        on_frame=lambda frame, decoding: seen.append((frame.index, decoding)),
    )
    stats = pipeline.run()
    assert [(c.text, c.frame_index, c.source, c.seen_at) for c in codes] == [
        ("MW:HELD UP CARD 1", 2, "camera", NOON),
        ("MW:ANOTHER CARD 2", 8, "camera", NOON),
    ]
    assert all(c.decoder == "zxing" and c.decode_ms and c.latency_ms is not None for c in codes)
    assert (stats.frames, stats.frames_with_code, stats.codes) == (11, 9, 2)
    assert [i for i, _ in seen] == list(range(11))
    summary = stats.summary(pipeline.source)
    assert summary["frames"] == 11 and summary["decode_ms_p95"] >= summary["decode_ms_median"]


def test_process_takes_frames_from_anywhere() -> None:
    codes: list[ScannedCode] = []
    pipeline = CameraPipeline(CameraSource("unused.avi"), codes.append, debouncer=Debouncer(2.0))
    card = synth.frame_of(synth.qr_card("MW:FRAME"), Look(module_px=4.0))
    blank = np.full_like(card, 128)
    # On the frames' own clock, 30 a second: held for 1 s, lowered for 1.5 s, raised again
    # (the same presentation), lowered for 2 s (a new one when it comes back).
    shown = set(range(30)) | set(range(75, 90)) | set(range(150, 160))
    for i in range(160):
        pipeline.process(Frame(card if i in shown else blank, i, i / 30, 0.0))
    assert [c.frame_index for c in codes] == [0, 150]


def test_stopping_the_pipeline_from_another_thread(tmp_path: Path) -> None:
    image = synth.frame_of(synth.qr_card("MW:STOP"), Look(module_px=4.0))
    stop = threading.Event()
    codes: list[ScannedCode] = []

    def on_code(code: ScannedCode) -> None:
        codes.append(code)
        stop.set()

    pipeline = CameraPipeline(CameraSource(_folder(tmp_path, [image] * 20)), on_code)
    stats = pipeline.run(stop=stop)
    assert len(codes) == 1
    assert stats.frames == 1


def test_lines_keep_their_spaces_and_lose_only_the_line_ending() -> None:
    stream = io.StringIO("MW:AB CD \r\n3-2-301\n\nMW:X\n")
    codes = list(LineSource(stream, wall=lambda: NOON).codes())
    assert [(c.text, c.source) for c in codes] == [
        ("MW:AB CD ", "wedge"),
        ("3-2-301", "manual"),
        ("MW:X", "wedge"),
    ]
