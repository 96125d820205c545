"""The QR decoders on real printed passes, degraded the way a gate webcam degrades them."""

from __future__ import annotations

import ctypes.util
import json
import sys
from datetime import date
from pathlib import Path

import cv2
import numpy as np
import pytest
import zxingcpp
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from menwei.cli import cli
from menwei.core.model import Household
from menwei.core.passes import PassData, sign
from menwei.output.printing import PrintedPass
from menwei.scanner import synth
from menwei.scanner.decoders import (
    DECODER_NAMES,
    Cascade,
    DecoderUnavailable,
    available_decoders,
    build_cascade,
    make_decoder,
    to_gray,
)
from menwei.scanner.synth import Card, Look

PAYMENT = "https://qr.alipay.com/fkx19283xyzABC?t=1700000000"


def _pass(number: int, key: Ed25519PrivateKey) -> PrintedPass:
    code = sign(
        PassData(kid=0, community=42, household=number, serial=1, valid_until=date(2027, 5, 1)),
        key,
    )
    household = Household(number, "3", "2", str(300 + number % 100), "3", 3)
    return PrintedPass(household, 1, code, date(2027, 5, 1), "测试小区")


def _key(seed: int) -> Ed25519PrivateKey:
    """A fixed key: Ed25519 signs deterministically, so every run sees the same symbols."""
    return Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32)


@pytest.fixture(scope="module")
def card() -> Card:
    return synth.printed_card(_pass(1203, _key(1)))


def _zbar_or_skip() -> None:
    if ctypes.util.find_library("zbar") is None:
        pytest.skip("libzbar0 is not installed here")


DEGRADED = {
    "clean": Look(module_px=4.5, blur_sigma=0.5, noise_sigma=2),
    "blur": Look(module_px=4.0, blur_sigma=1.6),
    "noise": Look(module_px=4.0, noise_sigma=25),
    "tilt": Look(module_px=4.5, angle_deg=40, tilt_x=35, tilt_y=20),
    "low_light": Look(module_px=4.0, gamma=2.6, contrast=0.35, noise_sigma=5),
    "glare": Look(module_px=4.5, glare=0.9),
    "jpeg": Look(module_px=4.0, jpeg_quality=15),
    "small": Look(module_px=2.3, blur_sigma=0.7),
    "everything": Look(
        module_px=3.5,
        blur_sigma=1.0,
        noise_sigma=6,
        angle_deg=15,
        tilt_x=20,
        gamma=1.6,
        contrast=0.6,
        glare=0.6,
        jpeg_quality=40,
    ),
}


@pytest.mark.parametrize("name", list(DEGRADED))
def test_the_cascade_reads_a_degraded_pass_verbatim(card: Card, name: str) -> None:
    cascade = build_cascade()
    for seed in range(3):
        frame = synth.frame_of(card, DEGRADED[name], seed=seed)
        assert frame.shape == (480, 640, 3)
        assert cascade.decode(frame).texts == (card.text,), f"{name}, seed {seed}"


@pytest.mark.parametrize("name", DECODER_NAMES)
def test_every_decoder_reads_a_clean_frame(card: Card, name: str) -> None:
    if name == "zbar":
        _zbar_or_skip()
    frame = to_gray(synth.frame_of(card, DEGRADED["clean"]))
    assert make_decoder(name).decode(frame) == [card.text]


@pytest.mark.parametrize("name", DECODER_NAMES)
def test_spaces_are_kept_by_every_decoder(name: str) -> None:
    # Base45 has a space; a trailing one is where a careless strip() would bite.
    if name == "zbar":
        _zbar_or_skip()
    text = "MW:AB  CD:$%*+-./ "
    frame = to_gray(synth.frame_of(synth.qr_card(text), Look(module_px=6.0)))
    assert make_decoder(name).decode(frame) == [text]


def test_the_upscaled_retry_rescues_tiny_modules(card: Card) -> None:
    frame = synth.frame_of(card, Look(module_px=2.0, blur_sigma=0.9))
    assert make_decoder("zxing").decode(to_gray(frame)) == []
    decoding = build_cascade(("zxing", "zxing-2x")).decode(frame)
    assert decoding.texts == (card.text,)
    assert decoding.stage == "zxing-2x"


def test_the_upscale_is_skipped_on_large_frames() -> None:
    big = np.full((720, 1280), 255, np.uint8)
    assert make_decoder("zxing-2x").decode(big) == []


def _blank() -> np.ndarray:
    return synth.degrade(synth.Background(seed=3).image(), Look(), np.random.default_rng(0))


def _on_background(symbol: np.ndarray) -> np.ndarray:
    frame = _blank().copy()
    h, w = symbol.shape[:2]
    frame[100 : 100 + h, 80 : 80 + w] = cv2.cvtColor(symbol, cv2.COLOR_GRAY2BGR)
    return frame


def _code128() -> np.ndarray:
    barcode = zxingcpp.create_barcode("6901234567892", zxingcpp.BarcodeFormat.Code128)
    bars = np.asarray(zxingcpp.write_barcode_to_image(barcode, scale=3), dtype=np.uint8)
    return np.asarray(cv2.resize(bars, (bars.shape[1], 120), interpolation=cv2.INTER_NEAREST))


def test_frames_without_a_qr_code_give_nothing() -> None:
    cascade = build_cascade(DECODER_NAMES)
    assert cascade.decode(_blank()).texts == ()
    barcode = _on_background(_code128())
    # The frame does hold a barcode (zxing finds it when asked for every format)...
    assert [b.text for b in zxingcpp.read_barcodes(barcode)] == ["6901234567892"]
    # ...but the gate reads QR codes only.
    assert cascade.decode(barcode).texts == ()


def test_another_qr_code_is_read_verbatim() -> None:
    frame = synth.frame_of(synth.qr_card(PAYMENT), Look(module_px=4.0))
    assert build_cascade().decode(frame).texts == (PAYMENT,)


def test_two_codes_in_one_frame_are_both_read(card: Card) -> None:
    other = synth.printed_card(_pass(2101, _key(2)))
    left = synth.frame_of(card, Look(module_px=2.6, center=(0.27, 0.5)))
    right = synth.frame_of(other, Look(module_px=2.6, center=(0.75, 0.5)))
    both = np.hstack([left[:, :320], right[:, 320:]])
    assert set(build_cascade().decode(both).texts) == {card.text, other.text}


class Fixed:
    def __init__(self, name: str, texts: list[str]) -> None:
        self.name = name
        self.texts = texts
        self.calls = 0

    def decode(self, gray: np.ndarray) -> list[str]:
        self.calls += 1
        return self.texts


def test_the_cascade_stops_at_the_first_stage_that_reads() -> None:
    first, second, third = Fixed("a", []), Fixed("b", ["X", "X", "Y"]), Fixed("c", ["Z"])
    decoding = Cascade([first, second, third]).decode(np.zeros((4, 4), np.uint8))
    assert decoding.texts == ("X", "Y")
    assert decoding.stage == "b"
    assert (first.calls, second.calls, third.calls) == (1, 1, 0)
    assert decoding.ms >= 0


def _without_zbar(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyzbar", None)
    monkeypatch.setattr("ctypes.util.find_library", lambda name: None)


def test_a_missing_zbar_is_reported_and_left_out(monkeypatch: pytest.MonkeyPatch) -> None:
    _without_zbar(monkeypatch)
    with pytest.raises(DecoderUnavailable, match="libzbar0"):
        make_decoder("zbar")
    assert build_cascade(("zxing", "zbar")).names == ("zxing",)
    with pytest.raises(DecoderUnavailable):
        build_cascade(("zbar",))
    with pytest.raises(DecoderUnavailable):
        build_cascade(("zxing", "zbar"), strict=True)
    status = {s.name: s for s in available_decoders()}
    assert status["zxing"].usable and status["zxing"].default
    assert not status["zbar"].usable
    assert "apt-get install --no-install-recommends libzbar0" in status["zbar"].detail


def test_doctor_says_which_decoders_work(monkeypatch: pytest.MonkeyPatch) -> None:
    _without_zbar(monkeypatch)
    result = CliRunner().invoke(cli, ["doctor", "--no-probe"])
    assert result.exit_code == 0, result.output
    assert "zxing" in result.output
    assert "libzbar0" in result.output
    result = CliRunner().invoke(cli, ["doctor", "--json", "--source", "97"])
    report = json.loads(result.output)
    assert report["ok"] is True
    assert {d["name"] for d in report["decoders"]} == set(DECODER_NAMES)
    camera = next(c for c in report["cameras"] if c["camera"] == "97")
    assert camera["usable"] is False
    assert "/dev/video97" in camera["detail"]


def test_decode_prints_what_each_image_holds(card: Card, tmp_path: Path) -> None:
    printed = tmp_path / "pass.png"
    cv2.imwrite(str(printed), card.image)
    webcam = tmp_path / "webcam.jpg"
    cv2.imwrite(str(webcam), synth.frame_of(card, DEGRADED["everything"]))
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), _blank())
    barcode = tmp_path / "barcode.png"
    cv2.imwrite(str(barcode), _on_background(_code128()))
    payment = tmp_path / "payment.png"
    cv2.imwrite(str(payment), synth.frame_of(synth.qr_card(PAYMENT), Look(module_px=4.0)))
    files = [printed, webcam, blank, barcode, payment]

    result = CliRunner().invoke(cli, ["decode", "--json", *map(str, files)])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert lines == [
        {"file": str(printed), "codes": [card.text]},
        {"file": str(webcam), "codes": [card.text]},
        {"file": str(blank), "codes": []},
        {"file": str(barcode), "codes": []},
        {"file": str(payment), "codes": [PAYMENT]},
    ]

    human = CliRunner().invoke(cli, ["decode", str(printed), str(blank)])
    assert f"[{card.text}]" in human.output
    assert "no QR code" in human.output


def test_decode_reports_an_unreadable_image(tmp_path: Path) -> None:
    junk = tmp_path / "junk.png"
    junk.write_text("not an image")
    result = CliRunner().invoke(cli, ["decode", "--json", str(junk), str(tmp_path / "missing.png")])
    assert result.exit_code == 1
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert [line["codes"] for line in lines] == [[], []]
    assert all("error" in line for line in lines)
