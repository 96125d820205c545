"""The cascade's stages on generated frames of each kind of trouble a gate camera sees: each reads
the right text or nothing, never another text; negatives give nothing that could be a pass."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import zxingcpp

from menwei.scanner import synth
from menwei.scanner.decoders import DEFAULT_CASCADE, build_cascade, make_decoder, to_gray
from menwei.scanner.synth import KindSample, Look
from tests.scanner.cards import pass_card

PAYMENT = "https://qr.alipay.com/fkx19283xyzABC?t=1700000000"
PER_KIND = 10


@pytest.fixture(scope="module")
def frames() -> list[KindSample]:
    cards = [pass_card(1203), pass_card(2101)]
    return list(synth.kind_corpus(cards, PER_KIND, seed=7, empty=PER_KIND))


@pytest.fixture(scope="module")
def reads(frames: list[KindSample]) -> dict[str, list[list[str]]]:
    """What each default stage alone reads in each frame."""
    out = {}
    for name in DEFAULT_CASCADE:
        stage = make_decoder(name)
        out[name] = [stage.decode(to_gray(f.image)) for f in frames]
    return out


def _count(frames: list[KindSample], texts: list[list[str]], kind: str) -> int:
    return sum(f.expected in t for f, t in zip(frames, texts, strict=True) if f.kind == kind)


def test_no_stage_ever_reads_a_wrong_text(
    frames: list[KindSample], reads: dict[str, list[list[str]]]
) -> None:
    for name, texts in reads.items():
        for frame, got in zip(frames, texts, strict=True):
            assert got in ([], [frame.expected]), (name, frame.kind, got)


@pytest.mark.parametrize("kind", synth.KINDS)
def test_the_cascade_reads_a_frame_when_any_stage_can(
    kind: str, frames: list[KindSample], reads: dict[str, list[list[str]]]
) -> None:
    cascade = build_cascade()
    for i, frame in enumerate(frames):
        if frame.kind != kind:
            continue
        decoding = cascade.decode(frame.image)
        readers = [name for name in DEFAULT_CASCADE if frame.expected in reads[name][i]]
        if readers:
            assert decoding.texts == (frame.expected,)
            assert decoding.stage == readers[0]  # the cheapest stage that can
        else:
            assert decoding.texts == ()


def test_smoothing_reads_phone_screens_the_plain_frame_cannot(
    frames: list[KindSample], reads: dict[str, list[list[str]]]
) -> None:
    plain = _count(frames, reads["zxing"], "phone")
    smooth = _count(frames, reads["zxing-smooth"], "phone")
    assert plain <= 1
    assert smooth >= plain + 3


def test_sharpening_reads_blurred_and_tilted_frames_the_plain_frame_cannot(
    frames: list[KindSample], reads: dict[str, list[list[str]]]
) -> None:
    for kind in ("defocus", "tilt"):
        plain_misses = [
            i
            for i, f in enumerate(frames)
            if f.kind == kind and f.expected not in reads["zxing"][i]
        ]
        rescued = [i for i in plain_misses if frames[i].expected in reads["zxing-sharp"][i]]
        assert rescued, kind


def test_the_cascade_reads_more_of_every_kind_than_zxing_alone(
    frames: list[KindSample], reads: dict[str, list[list[str]]]
) -> None:
    cascade = build_cascade()
    total_plain = total = 0
    for kind in synth.KINDS:
        chosen = [f for f in frames if f.kind == kind]
        got = sum(f.expected in cascade.decode(f.image).texts for f in chosen)
        plain = _count(frames, reads["zxing"], kind)
        assert got >= plain, kind
        total += got
        total_plain += plain
    assert total >= total_plain + 8


def test_empty_views_give_nothing(frames: list[KindSample]) -> None:
    cascade = build_cascade()
    empty = [f for f in frames if f.expected is None]
    assert len(empty) == PER_KIND
    for frame in empty:
        assert cascade.decode(frame.image).texts == ()


def _noise(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (60, 80), dtype=np.uint8)
    fine = cv2.resize(coarse, (640, 480), interpolation=cv2.INTER_NEAREST)
    return np.asarray(fine, dtype=np.uint8)


@pytest.mark.parametrize("kind", ["low-light", "glare", "phone", "small"])
def test_a_payment_code_is_read_as_its_own_text(kind: str) -> None:
    card = synth.qr_card(PAYMENT)
    cascade = build_cascade()
    rng = np.random.default_rng(3)
    seen: set[str] = set()
    for _ in range(6):
        look = synth.kind_look(kind, rng)
        seen.update(cascade.decode(synth.frame_of(card, look, seed=5)).texts)
    assert seen == {PAYMENT}  # read, and as nothing else (the gate then refuses it)


def test_barcodes_and_noise_give_nothing() -> None:
    cascade = build_cascade()
    for text, fmt in [
        ("6901234567892", zxingcpp.BarcodeFormat.EAN13),
        ("MW1-NOT-A-QR", zxingcpp.BarcodeFormat.Code128),
    ]:
        bars = np.asarray(
            zxingcpp.write_barcode_to_image(zxingcpp.create_barcode(text, fmt), scale=3),
            dtype=np.uint8,
        )
        bars = np.asarray(
            cv2.resize(bars, (bars.shape[1], 140), interpolation=cv2.INTER_NEAREST), dtype=np.uint8
        )
        frame = np.full((480, 640), 200, np.uint8)
        frame[150 : 150 + bars.shape[0], 60 : 60 + bars.shape[1]] = bars[:, :580]
        for look in (Look(), Look(blur_sigma=1.5), Look(screen_px=0.0, glare=0.0, noise_sigma=8)):
            degraded = synth.degrade(frame.astype(np.float32), look, np.random.default_rng(1))
            assert cascade.decode(degraded).texts == (), (text, look)
    for seed in range(5):
        assert cascade.decode(_noise(seed)).texts == ()
