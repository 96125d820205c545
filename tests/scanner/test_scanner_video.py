"""End to end: printed passes in a generated video, played through OpenCV's VideoCapture, decided
by the gate service; one decision per presentation, on the first frame the code is readable."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import zxingcpp
from click.testing import CliRunner

from menwei.cli import cli
from menwei.core.community import init_community
from menwei.core.home import Home
from menwei.core.issuing import issue
from menwei.core.store import Store
from menwei.gateapp.wiring import open_gate
from menwei.output.printing import PrintedPass
from menwei.scanner import synth
from menwei.scanner.debounce import Debouncer
from menwei.scanner.decoders import DEFAULT_CASCADE, build_cascade
from menwei.scanner.pipeline import CameraPipeline, ScannedCode, from_wedge, submit
from menwei.scanner.sources import CameraSource
from menwei.scanner.synth import Look, Shot
from menwei.scanner.wedge import WedgeDetector
from tests.conftest import HOUSEHOLDS, T0, add_households
from tests.scanner.cards import pass_card

WINDOW = "1.5"  # seconds: short, so the video can show a card coming back after it
PAYMENT = "https://qr.alipay.com/fkx19283xyzABC?t=1700000000"


@dataclass
class Gate:
    home: Home
    passes: dict[int, PrintedPass]
    video: Path
    truth: synth.VideoTruth

    def cli(self, *args: str, input: str | None = None) -> list[dict[str, Any]]:
        result = CliRunner().invoke(cli, ["--home", str(self.home.root), *args], input=input)
        assert result.exit_code == 0, result.output
        return [json.loads(line) for line in result.stdout.splitlines()]


@pytest.fixture(scope="module")
def gate(tmp_path_factory: pytest.TempPathFactory) -> Gate:
    root = tmp_path_factory.mktemp("gate")
    home = Home(root / "home")
    init_community(home, community=42, name="测试小区", now=T0)
    store = Store.open(home.db_path)
    try:
        add_households(store, HOUSEHOLDS)
        issued = issue(home, store, households=[1203, 2101], now=T0, valid_until=date(2099, 1, 1))
    finally:
        store.close()
    passes = {
        p.household.number: PrintedPass(p.household, p.serial, p.code, p.valid_until, "测试小区")
        for p in issued
    }
    a, b = synth.printed_card(passes[1203]), synth.printed_card(passes[2101])
    video = root / "gate.avi"
    truth = synth.write_video(
        video,
        [
            Shot(None, 0.3),
            Shot(a, 1.5),  # held up: one decision
            Shot(None, 0.4),
            Shot(a, 0.8),  # shown again at once: the same presentation, ignored
            Shot(b, 1.2),  # another household: at once
            Shot(None, 1.8),
            Shot(a, 0.8),  # back after the window: a new presentation
            Shot(None, 0.3),
        ],
        look=Look(module_px=4.0, blur_sigma=0.8, noise_sigma=4, tilt_x=15, angle_deg=-8),
    )
    return Gate(home, passes, video, truth)


def readable_frames(video: Path) -> list[tuple[str, ...]]:
    """What the cascade reads in each frame on its own, without debouncing."""
    cap = cv2.VideoCapture(str(video))
    cascade = build_cascade()
    out: list[tuple[str, ...]] = []
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                return out
            out.append(cascade.decode(np.asarray(frame, dtype=np.uint8)).texts)
    finally:
        cap.release()


def test_one_decision_per_presentation(gate: Gate) -> None:
    decisions = gate.cli(
        "scan", "--source", str(gate.video), "--json", "--dry-run", "--window", WINDOW
    )
    assert [d["household"] for d in decisions] == [1203, 2101, 1203]
    assert [d["verdict"] for d in decisions] == ["green"] * 3
    assert all(d["reason"] == "ok" and d["recorded"] is False for d in decisions)
    assert all(d["scan"]["source"] == "camera" and d["source"] == "camera" for d in decisions)


def test_each_decision_comes_on_the_first_readable_frame(gate: Gate) -> None:
    per_frame = readable_frames(gate.video)
    assert len(per_frame) == gate.truth.frames
    a, b = gate.passes[1203].code, gate.passes[2101].code
    # The card is readable for most of the time it is held up (not while it slides in).
    held = [(text, first, last) for text, first, last in gate.truth.presentations]
    for text, first, last in held:
        in_view = per_frame[first : last + 1]
        assert sum(text in texts for texts in in_view) >= 0.8 * len(in_view)

    codes: list[ScannedCode] = []
    pipeline = CameraPipeline(
        CameraSource(gate.video), codes.append, debouncer=Debouncer(float(WINDOW))
    )
    stats = pipeline.run()
    assert stats.frames == gate.truth.frames
    assert [c.text for c in codes] == [a, b, a]
    b_last = gate.truth.presentations[2][2]
    first_readable = [
        next(i for i, texts in enumerate(per_frame) if a in texts),
        next(i for i, texts in enumerate(per_frame) if b in texts),
        next(i for i in range(b_last + 1, len(per_frame)) if a in per_frame[i]),
    ]
    for n, code in enumerate(codes):
        assert code.frame_index == first_readable[n]
        assert code.decoder in DEFAULT_CASCADE
        assert code.decode_ms is not None and code.decode_ms > 0


def test_the_camera_is_released_at_the_end(gate: Gate) -> None:
    source = CameraSource(gate.video)
    pipeline = CameraPipeline(source)
    pipeline.run()
    assert source._cap is None


def test_a_usb_scanner_gives_the_same_decision_as_the_camera(gate: Gate) -> None:
    code = gate.passes[1203].code
    camera = gate.cli("scan", "--source", str(gate.video), "--json", "--dry-run")[0]

    # The scanner types the code and Enter, a key every 4 ms, into the gate app.
    detector = WedgeDetector()
    for i, ch in enumerate(code):
        assert detector.feed(ch, 50.0 + i * 0.004) is None
    scan = detector.feed("enter", 50.0 + len(code) * 0.004)
    assert scan is not None and scan.text == code
    service = open_gate(gate.home)
    try:
        typed = submit(service, from_wedge(scan), operator="scan", dry_run=True).to_json()
    finally:
        service.store.close()

    # ...or, without the app, into `menwei scan --source -`.
    piped = gate.cli("scan", "--source", "-", "--json", "--dry-run", input=code + "\n")[0]

    keys = ("verdict", "reason", "direction", "household", "serial")
    assert [typed[k] for k in keys] == [camera[k] for k in keys] == [piped[k] for k in keys]
    assert typed["source"] == piped["source"] == "wedge"


def test_typed_lines_can_be_household_numbers_or_addresses(gate: Gate) -> None:
    lines = gate.cli(
        "scan", "--source", "-", "--json", "--dry-run", input="3-2-301\n2101\n99栋1\n\n"
    )
    assert [line.get("household") for line in lines] == [1203, 2101, None]
    assert [line["scan"]["source"] for line in lines] == ["manual", "manual", "manual"]
    assert lines[0]["source"] == "manual"
    assert "no such household" in lines[2]["error"]


def test_recorded_scans_follow_the_household_out_and_back(gate: Gate, tmp_path: Path) -> None:
    home = tmp_path / "home"
    shutil.copytree(gate.home.root, home)
    result = CliRunner().invoke(
        cli,
        ["--home", str(home), "scan", "--source", str(gate.video), "--json", "--window", WINDOW],
    )
    assert result.exit_code == 0, result.output
    decisions = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(d["household"], d["direction"], d["recorded"]) for d in decisions] == [
        (1203, "exit", True),
        (2101, "exit", True),
        (1203, "entry", True),
    ]
    assert "frames" in result.stderr  # the closing summary


def _frame_with(symbol: np.ndarray) -> np.ndarray:
    frame = synth.degrade(synth.Background(seed=4).image(), Look(), np.random.default_rng(1))
    h, w = symbol.shape[:2]
    frame[120 : 120 + h, 100 : 100 + w] = cv2.cvtColor(symbol, cv2.COLOR_GRAY2BGR)
    return frame


def test_no_code_a_barcode_or_a_payment_code(gate: Gate, tmp_path: Path) -> None:
    barcode = zxingcpp.create_barcode("6901234567892", zxingcpp.BarcodeFormat.Code128)
    bars = np.asarray(zxingcpp.write_barcode_to_image(barcode, scale=3), dtype=np.uint8)
    bars = np.asarray(
        cv2.resize(bars, (bars.shape[1], 120), interpolation=cv2.INTER_NEAREST), dtype=np.uint8
    )
    payment = synth.frame_of(synth.qr_card(PAYMENT), Look(module_px=4.0))
    frames = [_frame_with(np.full((10, 10), 128, np.uint8))] * 3 + [_frame_with(bars)] * 3
    frames += [payment] * 3
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, frame in enumerate(frames):
        cv2.imwrite(str(folder / f"{i:03d}.png"), frame)
    decisions = gate.cli("scan", "--source", str(folder), "--json", "--dry-run")
    assert len(decisions) == 1
    assert decisions[0]["reason"] == "not_a_pass"
    assert decisions[0]["scan"]["frame"] == 6


def test_hard_presentations_through_the_camera_pipeline_are_one_code_each(tmp_path: Path) -> None:
    """A pass brought towards the camera in each kind of trouble, alternating two households
    (each comes back after more than the debounce window): one code handed to the gate per
    presentation, while the card is in view. The passes are signed with a fixed key (the
    gate's key is new on every run, and so would be the symbols)."""
    a, b = pass_card(1203), pass_card(2101)
    shown = [(a if i % 2 == 0 else b, kind) for i, kind in enumerate(synth.PRESENTATION_KINDS)]
    video = tmp_path / "presentations.avi"
    truth = synth.write_presentations(video, shown, seed=21, gap_s=1.2)
    codes: list[ScannedCode] = []
    pipeline = CameraPipeline(CameraSource(video), codes.append, debouncer=Debouncer(3.0))
    stats = pipeline.run()
    assert stats.frames == truth.frames
    assert [c.text for c in codes] == [text for text, _first, _last in truth.presentations]
    for code, (_text, first, last) in zip(codes, truth.presentations, strict=True):
        assert code.frame_index is not None and first <= code.frame_index <= last
