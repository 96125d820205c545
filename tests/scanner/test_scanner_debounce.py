"""A card held in front of the camera counts once; a different card counts at once."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from menwei.scanner.debounce import Debouncer


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_held_card_counts_once() -> None:
    clock = FakeClock()
    debouncer = Debouncer(3.0, clock)
    seen = []
    for _ in range(30 * 10):  # ten seconds at 30 frames a second
        seen.append(debouncer.accept("A"))
        clock.now += 1 / 30
    assert seen.count(True) == 1
    assert seen[0] is True


def test_the_same_card_again_soon_is_ignored_then_counts() -> None:
    clock = FakeClock()
    debouncer = Debouncer(3.0, clock)
    assert debouncer.accept("A")
    clock.now += 2.0
    assert not debouncer.accept("A")  # lowered and shown again: still the same presentation
    clock.now += 2.9
    assert not debouncer.accept("A")  # the window runs from the last sighting
    clock.now += 3.0
    assert debouncer.accept("A")


def test_a_different_card_is_immediate() -> None:
    clock = FakeClock()
    debouncer = Debouncer(3.0, clock)
    assert debouncer.accept("A")
    clock.now += 0.033
    assert debouncer.accept("B")
    clock.now += 0.033
    assert not debouncer.accept("A")  # A is still in view: two cards held up together


def test_an_explicit_time_overrides_the_clock() -> None:
    debouncer = Debouncer(2.0, clock=lambda: pytest.fail("the clock must not be read"))
    assert debouncer.accept("A", at=0.0)
    assert not debouncer.accept("A", at=1.9)
    assert debouncer.accept("A", at=3.95)


def test_reset_forgets() -> None:
    clock = FakeClock()
    debouncer = Debouncer(3.0, clock)
    assert debouncer.accept("A") and debouncer.accept("B")
    debouncer.reset("A")
    assert debouncer.accept("A")
    assert not debouncer.accept("B")
    debouncer.reset()
    assert debouncer.accept("B")


def test_a_negative_window_is_refused() -> None:
    with pytest.raises(ValueError):
        Debouncer(-1)


@given(
    st.lists(
        st.tuples(st.sampled_from("ABC"), st.floats(min_value=0.0, max_value=5.0)),
        max_size=200,
    )
)
def test_each_accepted_sighting_follows_a_quiet_window(events: list[tuple[str, float]]) -> None:
    debouncer = Debouncer(3.0)
    now = 0.0
    last: dict[str, float] = {}
    for text, step in events:
        now += step
        accepted = debouncer.accept(text, at=now)
        assert accepted == (text not in last or now - last[text] >= 3.0)
        last[text] = now


def test_many_codes_do_not_grow_without_bound() -> None:
    clock = FakeClock()
    debouncer = Debouncer(1.0, clock)
    for i in range(10_000):
        assert debouncer.accept(f"code {i}")
        clock.now += 0.5
    assert len(debouncer._last_seen) <= 65
