"""What the camera tells the person when it sees a QR symbol it cannot read for a second."""

from __future__ import annotations

import time
from typing import cast

import numpy as np
import pytest

from menwei.scanner import synth
from menwei.scanner.decoders import build_cascade, to_gray
from menwei.scanner.hints import HINTS, Hint, HintTracker, Observation, find_finders, observe
from menwei.scanner.pipeline import CameraPipeline, ScannedCode
from menwei.scanner.sources import CameraSource, Frame
from menwei.scanner.synth import Look
from tests.scanner.cards import pass_card

FPS = 30.0


@pytest.fixture(scope="module")
def card() -> synth.Card:
    return pass_card(1203)


def _play(images: list[np.ndarray]) -> tuple[list[tuple[int, Hint | None]], list[ScannedCode]]:
    """The frames through a real pipeline at 30 fps (media clock): the hints given, at which
    frame, and the codes read."""
    given: list[tuple[int, Hint | None]] = []
    codes: list[ScannedCode] = []
    index = [0]
    pipeline = CameraPipeline(
        cast(CameraSource, None),
        codes.append,
        on_hint=lambda hint: given.append((index[0], hint)),
    )
    for i, image in enumerate(images):
        index[0] = i
        pipeline.process(Frame(image, i, i / FPS, time.monotonic()))
    return given, codes


def _frames(card: synth.Card, look: Look, n: int, seeds: int = 4) -> list[np.ndarray]:
    stills = [synth.frame_of(card, look, seed=s) for s in range(seeds)]
    return [stills[i % seeds] for i in range(n)]


def test_a_symbol_too_small_to_read_asks_to_come_closer(card: synth.Card) -> None:
    frames = _frames(card, Look(module_px=2.0, blur_sigma=1.0, noise_sigma=5), 45)
    given, codes = _play(frames)
    assert codes == []
    assert len(given) == 1  # said once, not every frame
    at, hint = given[0]
    assert hint is HINTS["closer"]
    assert (hint.zh, hint.en) == ("靠近一点", "Bring the pass closer")
    assert at >= FPS  # only after a second of trying


def test_a_blurred_symbol_asks_to_hold_still(card: synth.Card) -> None:
    given, codes = _play(_frames(card, Look(module_px=4.5, blur_sigma=2.8), 45))
    assert codes == []
    assert [hint for _, hint in given] == [HINTS["steady"]]
    assert HINTS["steady"].text("zh") == "别晃"
    assert HINTS["steady"].text("en") == "Hold the pass still"


def test_a_blown_out_symbol_asks_to_avoid_the_glare(card: synth.Card) -> None:
    look = Look(module_px=3.5, glare=0.99, blur_sigma=1.0)
    unread = [
        f
        for f in (synth.frame_of(card, look, seed=s) for s in range(24))
        if not build_cascade().decode(f).texts
    ]
    assert len(unread) >= 2
    given, codes = _play([unread[i % len(unread)] for i in range(45)])
    assert codes == []
    assert [hint for _, hint in given] == [HINTS["glare"]]
    assert HINTS["glare"].zh == "避开反光"


def test_a_read_clears_the_hint_and_the_pass_counts(card: synth.Card) -> None:
    small = _frames(card, Look(module_px=2.0, blur_sigma=1.0, noise_sigma=5), 40)
    near = _frames(card, Look(module_px=4.5), 10)
    given, codes = _play(small + near)
    assert [hint for _, hint in given] == [HINTS["closer"], None]
    assert given[1][0] == 40  # cleared on the first readable frame
    assert [c.text for c in codes] == [card.text]
    assert codes[0].frame_index == 40


def test_no_symbol_no_hint() -> None:
    background = synth.Background(seed=4).image()
    rng = np.random.default_rng(2)
    frames = [synth.degrade(background, Look(noise_sigma=6), rng) for _ in range(45)]
    given, _ = _play(frames)
    assert given == []


def test_a_readable_card_gets_no_hint(card: synth.Card) -> None:
    given, codes = _play(_frames(card, Look(module_px=4.0), 45))
    assert given == []
    assert len(codes) == 1


def test_finders_are_found_with_their_size(card: synth.Card) -> None:
    gray = to_gray(synth.frame_of(card, Look(module_px=3.0)))
    finders = find_finders(gray)
    assert len(finders) == 3
    seen = observe(gray, finders)
    assert seen is not None
    assert 2.7 < seen.module_px < 3.3


def test_the_tracker_waits_a_second_and_tolerates_missed_sightings() -> None:
    tracker = HintTracker(after_s=1.0)
    tiny = Observation(module_px=1.9, sharpness=0.4, saturated=0.0)
    results = []
    for i in range(40):
        # The finder is missed in every third frame: still a sighting.
        results.append(tracker.update(i / FPS, read=False, seen=None if i % 3 == 0 else tiny))
    assert results[25] is None
    assert results[-1] is HINTS["closer"]
    assert tracker.update(40 / FPS, read=True, seen=None) is None
