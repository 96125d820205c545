"""Benchmark: QR decoding on degraded webcam-like frames of printed passes, per frame and per
presentation, against the best single off-the-shelf decoder with preprocessing.

    python scripts/bench_decode.py [--per-kind 60] [--empty 80] [--presentations 12] [--seed 1]

Two seeded sets of 640x480 frames of real printed passes, each with every kind of trouble
(`synth.KINDS`: low light, glare, steep tilt, motion blur, defocus, a phone screen with moiré,
a thumb over the symbol, 2-3 px modules) and frames without a card: a tuning set, on which the
baseline is chosen and menwei's stages are measured one by one, and a held-out set (other
passes, other seed) that is only measured. Each reader's read rate per kind, wrong reads, and
per-frame median and p95 in ms over every frame (greyscale conversion included), with and
without a card. Then presentations: a pass brought towards the camera over about a second at
30 fps through the real `CameraPipeline`, with the time to the first decision (median, p95) and
the share never read within 2 s. Last, a generated video through the real VideoCapture path.

Runs on one core (CPU affinity and OpenCV's thread pool) unless --all-cores. On a shared
machine the wall-clock times include the time other processes held the core; the "cpu" columns
(this thread's CPU time, the lowest of --repeat reads) are what a frame costs on a core of its own.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from pathlib import Path
from typing import cast

import cv2
import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from menwei.core.model import Household
from menwei.core.passes import PassData, sign
from menwei.output.printing import PrintedPass
from menwei.scanner import synth
from menwei.scanner.debounce import Debouncer
from menwei.scanner.decoders import (
    DEFAULT_CASCADE,
    Cascade,
    Decoder,
    DecoderUnavailable,
    build_cascade,
    make_decoder,
    to_gray,
)
from menwei.scanner.hints import Hint
from menwei.scanner.pipeline import CameraPipeline, ScannedCode
from menwei.scanner.sources import CameraSource, Frame
from menwei.scanner.synth import Look, Shot

CASCADES: dict[str, tuple[str, ...]] = {
    "cascade: zxing > zxing-2x (before)": ("zxing", "zxing-2x"),
    "cascade: menwei default": DEFAULT_CASCADE,
    "cascade: default > zxing-3x": (*DEFAULT_CASCADE, "zxing-3x"),
}
ALL_KINDS = (*synth.KINDS, "none")


def clahe(gray: np.ndarray) -> np.ndarray:
    return np.asarray(cv2.createCLAHE(2.0, (8, 8)).apply(gray))


def adaptive(gray: np.ndarray) -> np.ndarray:
    return np.asarray(
        cv2.adaptiveThreshold(gray, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY, 31, 5)
    )


def upscale2(gray: np.ndarray) -> np.ndarray:
    return np.asarray(cv2.resize(gray, None, fx=2, fy=2, interpolation=cv2.INTER_LINEAR))


def unsharp(gray: np.ndarray) -> np.ndarray:
    return np.asarray(cv2.addWeighted(gray, 1.8, cv2.GaussianBlur(gray, (0, 0), 2.0), -0.8, 0))


PREPROCESSINGS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "gray": lambda g: g,
    "CLAHE": clahe,
    "adaptive threshold": adaptive,
    "2x upscale": upscale2,
    "unsharp mask": unsharp,
}
OFF_THE_SHELF = ("zxing", "zbar", "opencv")


class Prepared:
    """An off-the-shelf decoder with one preprocessing: the baseline's single decoders."""

    def __init__(self, decoder: Decoder, how: str) -> None:
        self.decoder = decoder
        self.how = how
        self.pre = PREPROCESSINGS[how]
        self.name = f"{decoder.name} + {how}"

    def decode(self, gray: np.ndarray) -> list[str]:
        return self.decoder.decode(self.pre(gray))


def one_core() -> str:
    cv2.setNumThreads(1)
    if hasattr(os, "sched_setaffinity"):
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        return f"one core (cpu {cpu}, OpenCV threads 1)"
    return "OpenCV threads 1 (no CPU affinity on this platform)"


def cards(n: int, first: int = 0) -> list[synth.Card]:
    # A fixed key: Ed25519 signs deterministically, so the corpus is the same on every run.
    key = Ed25519PrivateKey.from_private_bytes(bytes([7]) * 32)
    out = []
    for i in range(first, first + n):
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


@dataclass
class Result:
    """One reader on one set of frames."""

    times: list[float] = field(default_factory=list)  # ms per frame, every frame (wall clock)
    cpu: list[float] = field(default_factory=list)  # ms of this thread's CPU time per frame
    read: dict[str, list[bool]] = field(default_factory=dict)  # per kind
    wrong: int = 0  # a text other than the one shown (or any text on a frame without a card)

    def rate(self, kind: str | None = None) -> float:
        got = [ok for k, oks in self.read.items() if k != "none" for ok in oks]
        if kind is not None:
            got = self.read.get(kind, [])
        return sum(got) / len(got) if got else 0.0

    def p95(self) -> float:
        return percentile(self.times, 0.95)


def measure(
    read: Callable[[np.ndarray], Sequence[str]],
    samples: Sequence[synth.KindSample],
    repeat: int = 1,
) -> Result:
    """Each frame read `repeat` times; its time is the lowest, which on a shared machine is the
    closest to what the frame costs (other processes only ever add time)."""
    out = Result()
    for sample in samples:
        best = cpu = float("inf")
        for _ in range(repeat):
            start, start_cpu = time.perf_counter(), time.thread_time()
            texts = read(sample.image)
            best = min(best, (time.perf_counter() - start) * 1000)
            cpu = min(cpu, (time.thread_time() - start_cpu) * 1000)
        out.times.append(best)
        out.cpu.append(cpu)
        ok = sample.expected is not None and sample.expected in texts
        if texts and not ok:
            out.wrong += 1
        out.read.setdefault(sample.kind, []).append(ok)
    return out


def alone(decoder: Decoder) -> Callable[[np.ndarray], Sequence[str]]:
    return lambda frame: decoder.decode(to_gray(frame))


def via(cascade: Cascade) -> Callable[[np.ndarray], Sequence[str]]:
    return lambda frame: cascade.decode(frame).texts


def kinds_table(
    title: str, results: dict[str, Result], samples: Sequence[synth.KindSample]
) -> None:
    with_card = [i for i, s in enumerate(samples) if s.expected is not None]
    without = [i for i, s in enumerate(samples) if s.expected is None]
    print(f"\n{title}")
    short = {k: k[:7] for k in synth.KINDS}
    head = " ".join(f"{short[k]:>7}" for k in synth.KINDS)
    print(
        f"  {'reader':<36} {'all':>6} {head} {'wrong':>5} {'med ms':>6} {'p95 ms':>6} "
        f"{'p95 card':>8} {'p95 none':>8} {'cpu p95':>7} {'cpu p95 none':>12}"
    )
    for name, r in results.items():
        cells = " ".join(f"{r.rate(k):>7.0%}" for k in synth.KINDS)
        card_p95 = percentile([r.times[i] for i in with_card], 0.95)
        none_p95 = percentile([r.times[i] for i in without], 0.95) if without else float("nan")
        cpu_none = percentile([r.cpu[i] for i in without], 0.95) if without else float("nan")
        print(
            f"  {name:<36} {r.rate():>6.1%} {cells} {r.wrong:>5} {statistics.median(r.times):>6.2f} "
            f"{r.p95():>6.2f} {card_p95:>8.2f} {none_p95:>8.2f} {percentile(r.cpu, 0.95):>7.2f} "
            f"{cpu_none:>12.2f}"
        )


def baseline_grid(
    samples: Sequence[synth.KindSample], decoders: Sequence[str] = OFF_THE_SHELF
) -> dict[str, tuple[Prepared, Result]]:
    """Every off-the-shelf decoder with every preprocessing, on `samples`."""
    out = {}
    for name in decoders:
        try:
            decoder = make_decoder(name)
        except DecoderUnavailable as exc:
            print(f"  ({name} skipped: {exc})")
            continue
        for how in PREPROCESSINGS:
            single = Prepared(decoder, how)
            out[single.name] = (single, measure(alone(single), samples))
    return out


# --- presentations ---------------------------------------------------------------------------


def _note_hint(hints: list[str], hint: Hint | None) -> None:
    hints.append(hint.code if hint else "-")


@dataclass
class Presented:
    kind: str
    first_read_ms: float | None  # from the first frame (card in view) to the decision
    decisions: int
    wrong: int
    frame_ms: list[float]  # each frame through the pipeline: decode, debounce, hint look
    hints: list[str]  # the hints given, in order


def present(
    cascade: Cascade,
    passes: Sequence[synth.Card],
    per_kind: int,
    seed: int,
    fps: float = 30.0,
    seconds: float = 2.0,
) -> list[Presented]:
    """Each presentation through a fresh `CameraPipeline` (decode, debounce, hand-over), frame by
    frame on the media clock; the time to first read is the media time of the frame that gave
    the decision plus its decode time."""
    rng = np.random.default_rng(seed)
    backgrounds = [synth.Background(seed=seed * 100 + i).image() for i in range(4)]
    out = []
    n = 0
    for kind in synth.PRESENTATION_KINDS:
        for _ in range(per_kind):
            card = passes[n % len(passes)]
            frames = synth.presentation(
                card, kind, rng, backgrounds[n % len(backgrounds)], fps=fps, seconds=seconds
            )
            codes: list[ScannedCode] = []
            hints: list[str] = []
            pipeline = CameraPipeline(
                cast(CameraSource, None),
                codes.append,
                cascade=cascade,
                on_hint=partial(_note_hint, hints),
            )
            frame_ms = []
            for index, image in enumerate(frames):
                start = time.perf_counter()
                pipeline.process(Frame(image, index, index / fps, time.monotonic()))
                frame_ms.append((time.perf_counter() - start) * 1000)
            right = [c for c in codes if c.text == card.text]
            first = None
            if right and right[0].frame_index is not None:
                first = right[0].frame_index * 1000 / fps + (right[0].decode_ms or 0.0)
            out.append(Presented(kind, first, len(codes), len(codes) - len(right), frame_ms, hints))
            n += 1
    return out


def presentation_table(title: str, results: dict[str, list[Presented]], limit_s: float) -> None:
    print(f"\n{title}")
    print(
        f"  {'reader':<36} {'kind':<10} {'n':>3} {'median ms':>9} {'p95 ms':>7} "
        f"{'not read':>8} {'decisions':>9} {'wrong':>5}"
    )
    for name, runs in results.items():
        for kind in (*synth.PRESENTATION_KINDS, "all"):
            chosen = [r for r in runs if kind in ("all", r.kind)]
            times = [r.first_read_ms for r in chosen if r.first_read_ms is not None]
            within = [t for t in times if t <= limit_s * 1000]
            never = 1 - len(within) / len(chosen)
            median = f"{statistics.median(times):9.0f}" if times else f"{'-':>9}"
            p95 = f"{percentile(times, 0.95):7.0f}" if times else f"{'-':>7}"
            # A presentation never read counts as slower than any read one for the p95.
            if times and len(times) < len(chosen):
                padded = times + [float("inf")] * (len(chosen) - len(times))
                p95v = percentile(padded, 0.95)
                p95 = f"{p95v:7.0f}" if p95v != float("inf") else f"{'>2000':>7}"
            decisions = sum(r.decisions for r in chosen)
            wrong = sum(r.wrong for r in chosen)
            print(
                f"  {name if kind == synth.PRESENTATION_KINDS[0] else '':<36} {kind:<10} "
                f"{len(chosen):>3} {median} {p95} {never:>8.0%} {decisions:>9} {wrong:>5}"
            )
        every = [ms for r in runs for ms in r.frame_ms]
        hinted = [r for r in runs if any(h != "-" for h in r.hints)]
        print(
            f"  {'':<36} per frame through the pipeline (decode + hint look): median "
            f"{statistics.median(every):.2f} ms, p95 {percentile(every, 0.95):.2f} ms over "
            f"{len(every)} frames; presentations that got a hint: {len(hinted)}"
            + (
                f" ({', '.join(sorted({h for r in hinted for h in r.hints if h != '-'}))})"
                if hinted
                else ""
            )
        )


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
    parser.add_argument("--per-kind", type=int, default=60, help="frames of each kind per set")
    parser.add_argument("--empty", type=int, default=80, help="frames without a card per set")
    parser.add_argument("--presentations", type=int, default=12, help="per kind")
    parser.add_argument("--seed", type=int, default=1, help="tuning set; held-out: seed + 1000")
    parser.add_argument("--all-cores", action="store_true")
    parser.add_argument("--skip-video", action="store_true", help="no VideoCapture latency run")
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="times each held-out frame is read by the headline readers; the lowest time counts",
    )
    parser.add_argument(
        "--grid",
        default=",".join(OFF_THE_SHELF),
        help="off-the-shelf decoders for the baseline grid (zbar and OpenCV take most of the "
        "run; on these frames neither comes near zxing)",
    )
    args = parser.parse_args(argv)
    grid_decoders = [name for name in args.grid.split(",") if name]

    where = "all cores" if args.all_cores else one_core()
    held_seed = args.seed + 1000
    size = args.per_kind * len(synth.KINDS) + args.empty
    print(
        f"menwei decode benchmark: 640x480 frames, {where}\n"
        f"  tuning set: seed {args.seed}, passes 0-3; held-out set: seed {held_seed}, passes 4-7;"
        f" each {size} frames ({args.per_kind} per kind x {len(synth.KINDS)} kinds,"
        f" {args.empty} without a card)"
    )
    t0 = time.perf_counter()
    tuning = list(synth.kind_corpus(cards(4), args.per_kind, seed=args.seed, empty=args.empty))
    held = list(synth.kind_corpus(cards(4, 4), args.per_kind, seed=held_seed, empty=args.empty))
    print(f"  frames generated in {time.perf_counter() - t0:.1f} s")

    # 1. The baseline: the best single off-the-shelf decoder + preprocessing, chosen on the
    # tuning set and then measured on the held-out set.
    grid = baseline_grid(tuning, grid_decoders)
    best_name = max(grid, key=lambda name: grid[name][1].rate())
    kinds_table(
        "tuning set: every off-the-shelf decoder with every preprocessing",
        {name: r for name, (_, r) in grid.items()},
        tuning,
    )
    print(f"  -> best single on the tuning set: {best_name}")

    # 2. menwei's stages, each left out in turn, on the tuning set: what each one pays.
    ablation = {"menwei default": via(build_cascade())}
    for stage in DEFAULT_CASCADE:
        rest = tuple(n for n in DEFAULT_CASCADE if n != stage)
        ablation[f"default without {stage}"] = via(build_cascade(rest))
    for label, names in CASCADES.items():
        ablation[label] = via(build_cascade(names))
    kinds_table(
        "tuning set: menwei's cascade, and without each of its stages",
        {name: measure(read, tuning) for name, read in ablation.items()},
        tuning,
    )

    # 3. The held-out set, touched only here.
    held_grid = baseline_grid(held, grid_decoders)
    best_held = max(held_grid, key=lambda name: held_grid[name][1].rate())
    best_single = grid[best_name][0]
    rows = {f"best single: {best_name}": measure(alone(best_single), held, args.repeat)}
    if best_held != best_name:
        rows[f"best on held-out: {best_held}"] = held_grid[best_held][1]
    rows["zxing + gray (alone)"] = measure(alone(make_decoder("zxing")), held, args.repeat)
    for label, names in CASCADES.items():
        rows[label] = measure(via(build_cascade(names)), held, args.repeat)
    kinds_table(
        f"HELD-OUT set: baseline vs menwei (p95 over every frame, with and without a card;"
        f" each frame's time the lowest of {args.repeat} reads)",
        rows,
        held,
    )
    kinds_table(
        "held-out set: every off-the-shelf decoder with every preprocessing",
        {name: r for name, (_, r) in held_grid.items()},
        held,
    )

    # 4. Presentations (held-out seed): time from the card in view to the decision.
    baseline_single = Cascade([grid[best_name][0]])
    runs = {
        f"best single: {best_name}": present(
            baseline_single, cards(2, 8), args.presentations, held_seed + 1
        ),
        "menwei default": present(build_cascade(), cards(2, 8), args.presentations, held_seed + 1),
    }
    presentation_table(
        "presentations (held-out seed): a pass brought towards the camera over 1 s at 30 fps, "
        "then held; time from the first frame to the decision, on the media clock",
        runs,
        2.0,
    )

    if not args.skip_video:
        with tempfile.TemporaryDirectory() as tmp:
            passes = cards(2)
            latency(passes[0], passes[1], Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
