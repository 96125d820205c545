"""Telling a USB scanner's keystrokes from a volunteer's, whatever has focus.

A keyboard-wedge scanner types the pass code and Enter in a burst. Where no text field has focus,
every printable key is held back for a moment (`hold_s`, about a tenth of a second): a lone key
is then handed on as the shortcut it is (digits start a household lookup), while a burst ended by Enter
becomes a scan and none of its characters act as shortcuts, even when the burst is broken. In a text field, only what could be a
pass (`MW:` ...) is held back, so typing is never delayed, and a pass scanned into a search box
goes to the gate instead of the box.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

from menwei.scanner.wedge import WedgeDetector

T = TypeVar("T")
PASS_PREFIX = "MW:"


@dataclass
class Outcome(Generic[T]):
    """What to do with a key: hand on the held keys, then this one; or take a scan."""

    release: list[T] = field(default_factory=list)
    forward: bool = False  # hand the current key on (after `release`)
    scan: str | None = None  # a scanner's burst: the code, Enter swallowed


class KeyGate(Generic[T]):
    """Feed it every key with its arrival time (the event's own timestamp, not the time it is
    handled: a busy event loop must not split a burst)."""

    def __init__(
        self, detector: WedgeDetector | None = None, *, hold_s: float | None = None
    ) -> None:
        self.detector = detector or WedgeDetector()
        self.hold_s = hold_s if hold_s is not None else self.detector.max_gap_s + 0.02
        self._held: list[tuple[T, str, float]] = []
        self._held_in_text = False

    @property
    def holding(self) -> bool:
        return bool(self._held)

    def _release(self) -> list[T]:
        """The held keys that a person typed: all of them in a text field, else a lone key.

        Outside a text field, a run of several fast keys without its Enter is a scanner's
        burst that lost its end (or was interrupted); it is dropped, because acting on it
        would turn the digits of a pass into headcount changes.
        """
        items = [item for item, _, _ in self._held]
        chars = "".join(c for _, c, _ in self._held)
        in_text = self._held_in_text
        self._held.clear()
        # Digits alone are a household number typed quickly: harmless, they start a lookup.
        return items if in_text or len(items) == 1 or chars.isdigit() else []

    def key(
        self, item: T, *, char: str | None, enter: bool, at: float, text_field: bool
    ) -> Outcome[T]:
        """One key event: its printable character (None for F-keys, arrows...), or Enter."""
        # The flush timer has not run yet: hand the held keys on first.
        late = bool(self._held) and at - self._held[-1][2] > self.hold_s
        stale = self._release() if late else []
        if enter:
            burst = self.detector.feed("enter", at)
            code = self._held_pass(at) if text_field else burst.text if burst else None
            if code is not None:
                self._held.clear()
                return Outcome(release=stale, scan=code)
            return Outcome(release=stale + self._release(), forward=True)
        if char is None:
            self.detector.feed("other", at)
            return Outcome(release=stale + self._release(), forward=True)
        self.detector.feed(char, at)
        if self._hold(char, text_field):
            if not self._held:
                self._held_in_text = text_field
            self._held.append((item, char, at))
            return Outcome(release=stale)
        return Outcome(release=stale + self._release(), forward=True)

    def _held_pass(self, at: float) -> str | None:
        """In a text field: the held keys, if they are a pass typed at a scanner's speed."""
        if not self._held:
            return None
        run = "".join(c for _, c, _ in self._held)
        first, last = self._held[0][2], self._held[-1][2]
        d = self.detector
        if (
            run.startswith(PASS_PREFIX)
            and len(run) >= d.min_length
            and at - last <= d.max_gap_s
            and (at - first) / len(run) <= d.max_mean_gap_s
        ):
            return run
        return None

    def _hold(self, char: str, text_field: bool) -> bool:
        if not text_field:
            return True
        run = "".join(c for _, c, _ in self._held) + char
        return run.startswith(PASS_PREFIX) or PASS_PREFIX.startswith(run)

    def flush(self) -> list[T]:
        """The hold timer ran out (no key for `hold_s`): the held keys were typed by a person."""
        return self._release()

    def due(self) -> float | None:
        """When the held keys should be handed on if nothing else comes (monotonic seconds)."""
        return self._held[-1][2] + self.hold_s if self._held else None
