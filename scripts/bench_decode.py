"""Benchmark: QR decoding on webcam-like frames of printed passes, and card-to-decision latency.

    python scripts/bench_decode.py [--frames 600] [--seed 1] [--all-cores]

Builds a seeded corpus of 640x480 frames (and a smaller 1280x720 one) of real printed passes,
degraded as a cheap webcam degrades them (2.8-5 px per module, tilt, blur, noise, low light,
glare, motion, JPEG), then times each decoder alone and each cascade on it: per-frame median and
p95 in milliseconds (greyscale conversion included) and the share of frames read correctly. Then
plays a generated video through the real VideoCapture path and reports, per presentation, how many
frames after the card became readable the decision came, and how long capture-to-decision took.

Runs on one core (CPU affinity and OpenCV's thread pool) unless --all-cores.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from menwei.core.model import Household
from menwei.core.passes import PassData, sign
from menwei.output.printing import PrintedPass
from menwei.scanner import synth
from menwei.scanner.debounce import Debouncer
from menwei.scanner.decoders import (
    DECODER_NAMES,
    Cascade,
    Decoder,
    DecoderUnavailable,
    build_cascade,
    make_decoder,
    to_gray,
)
from menwei.scanner.pipeline import CameraPipeline, ScannedCode
from menwei.scanner.sources import CameraSource
from menwei.scanner.synth import Look, Shot

CASCADES: dict[str, tuple[str, ...]] = {
    "cascade: zxing > zxing-2x (default)": ("zxing", "zxing-2x"),
    "cascade: zxing > zxing-2x > zxing-3x": ("zxing", "zxing-2x", "zxing-3x"),
    "cascade: zxing > zxing-2x > zbar": ("zxing", "zxing-2x", "zbar"),
    "cascade: zxing > zxing-2x > zbar > opencv": ("zxing", "zxing-2x", "zbar", "opencv"),
}


def one_core() -> str:
    cv2.setNumThreads(1)
    if hasattr(os, "sched_setaffinity"):
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        return f"one core (cpu {cpu}, OpenCV threads 1)"
    return "OpenCV threads 1 (no CPU affinity on this platform)"


def cards(n: int) -> list[synth.Card]:
    # A fixed key: Ed25519 signs deterministically, so the corpus is the same on every run.
    key = Ed25519PrivateKey.from_private_bytes(bytes([7]) * 32)
    out = []
    for i in range(n):
        number = 1201 + i * 97
        code = sign(
            PassData(kid=0, community=42, household=number, serial=1, valid_until=date(2027, 5, 1)),
            key,
        )
        household = Household(number, str(3 + i), "2", str(301 + i), str(3 + i), 3)
        out.append(
            synth.printed_card(PrintedPass(household, 1, code, date(2027, 5, 1), "样例小区"))
        )
    return out


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q * (len(ordered) - 1) + 0.5), len(ordered) - 1)]


def measure(
    read: Callable[[np.ndarray], Sequence[str]], samples: Sequence[synth.Sample]
) -> tuple[float, float, float, int]:
    """Median ms, p95 ms, decode rate, wrong reads."""
    times = []
    right = wrong = 0
    for sample in samples:
        start = time.perf_counter()
        texts = read(sample.image)
        times.append((time.perf_counter() - start) * 1000)
        if sample.expected in texts:
            right += 1
        elif texts:
            wrong += 1
    return statistics.median(times), percentile(times, 0.95), right / len(samples), wrong


def alone(decoder: Decoder) -> Callable[[np.ndarray], Sequence[str]]:
    return lambda frame: decoder.decode(to_gray(frame))


def via(cascade: Cascade) -> Callable[[np.ndarray], Sequence[str]]:
    return lambda frame: cascade.decode(frame).texts


def table(title: str, samples: Sequence[synth.Sample], rows: dict[str, Callable[..., Any]]) -> None:
    print(f"\n{title}")
    print(f"  {'decoder':<44} {'median ms':>9} {'p95 ms':>8} {'read':>7} {'wrong':>6}")
    for name, read in rows.items():
        median, p95, rate, wrong = measure(read, samples)
        print(f"  {name:<44} {median:>9.2f} {p95:>8.2f} {rate:>7.1%} {wrong:>6}")


def latency(card_a: synth.Card, card_b: synth.Card, workdir: Path) -> None:
    video = workdir / "presentations.avi"
    shots = [Shot(None, 0.5)]
    for i in range(6):
        shots += [Shot(card_a if i % 2 == 0 else card_b, 1.5), Shot(None, 3.2)]
    look = Look(module_px=3.8, blur_sigma=0.9, noise_sigma=4, tilt_x=18, angle_deg=-10)
    truth = synth.write_video(video, shots, look=look, seed=11)

    # What each frame holds on its own: when each card first becomes readable.
    cascade = build_cascade()
    cap = cv2.VideoCapture(str(video))
    per_frame = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        per_frame.append(cascade.decode(np.asarray(frame, dtype=np.uint8)).texts)
    cap.release()
    readable = []
    start = 0
    for text, first_full, last in truth.presentations:
        frame_no = next((i for i in range(start, last + 1) if text in per_frame[i]), None)
        readable.append((text, first_full, frame_no))
        start = last + 1

    print(f"\ncard appears -> decision ({len(readable)} presentations, {truth.fps:g} fps video)")
    for realtime in (False, True):
        codes: list[ScannedCode] = []
        source = CameraSource(video, realtime=realtime)
        CameraPipeline(source, codes.append, debouncer=Debouncer(3.0)).run()
        mode = (
            "played in real time (reader thread, newest frame)"
            if realtime
            else "every frame, media clock"
        )
        print(f"  {mode}: {len(codes)} decisions for {len(readable)} presentations")
        after_readable = []
        after_appear_ms = []
        in_process = []
        for code, (_text, first_full, frame_no) in zip(codes, readable, strict=False):
            assert code.frame_index is not None and code.latency_ms is not None
            if frame_no is not None:
                after_readable.append(code.frame_index - frame_no)
            after_appear_ms.append(
                (code.frame_index - first_full) * 1000 / truth.fps + (code.decode_ms or 0)
            )
            in_process.append(code.latency_ms)
        print(f"    frames after the code became readable: {after_readable}")
        print(
            "    ms from card fully in view to decision (video time + decode): "
            + ", ".join(f"{v:.0f}" for v in after_appear_ms)
            + "  (negative: read while still sliding in)"
        )
        print(
            f"    capture -> on_code in process: median {statistics.median(in_process):.2f} ms, "
            f"max {max(in_process):.2f} ms; frames dropped {source.frames_dropped}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=600)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--all-cores", action="store_true")
    args = parser.parse_args(argv)

    where = "all cores" if args.all_cores else one_core()
    print(f"menwei decode benchmark: {args.frames} frames 640x480, seed {args.seed}, {where}")
    passes = cards(4)
    t0 = time.perf_counter()
    samples = list(synth.corpus(passes, args.frames, seed=args.seed))
    print(f"corpus generated in {time.perf_counter() - t0:.1f} s")

    rows: dict[str, Callable[..., Any]] = {}
    for name in DECODER_NAMES:
        try:
            decoder = make_decoder(name)
        except DecoderUnavailable as exc:
            print(f"  ({name} skipped: {exc})")
            continue
        rows[f"{name} alone"] = alone(decoder)
    for label, names in CASCADES.items():
        try:
            rows[label] = via(build_cascade(names, strict=True))
        except DecoderUnavailable as exc:
            print(f"  ({label} skipped: {exc})")
    table("640x480 frames", samples, rows)

    # Most frames at a gate show no card, and on those every stage of a cascade runs.
    rng = np.random.default_rng(args.seed)
    empty = []
    for i in range(100):
        look = synth.random_look(rng)
        image = synth.degrade(synth.Background(seed=1000 + i).image(), look, rng)
        empty.append(synth.Sample(image, "(none)", look))
    table(
        "640x480 frames without a card (the usual case: every stage runs)",
        empty,
        {k: v for k, v in rows.items() if k.startswith("cascade")},
    )

    big = list(synth.corpus(passes, max(args.frames // 4, 50), seed=args.seed, size=(1280, 720)))
    default = build_cascade()
    table(
        "1280x720 frames (the camera's first choice; no 2x retry above 640x480)",
        big,
        {"zxing alone": alone(make_decoder("zxing")), "cascade (default)": via(default)},
    )

    with tempfile.TemporaryDirectory() as tmp:
        latency(passes[0], passes[1], Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
