"""A USB keyboard-wedge scanner types the code it reads, then Enter, faster than any person.

`WedgeDetector` is fed every key with its arrival time. When Enter ends a burst of keys that came
too fast for a hand, it returns the burst as a scanned code, with how many keys it took, so that
the caller can take those characters back out of whatever input field received them. A person
typing a household number and Enter is left alone (`feed` returns None).
"""

from __future__ import annotations

from dataclasses import dataclass

ENTER_KEYS = frozenset({"\r", "\n", "enter"})


@dataclass(frozen=True)
class WedgeScan:
    text: str  # the characters of the burst, verbatim (spaces kept), without the Enter
    keys: int  # characters typed by the scanner before its Enter
    started_at: float
    ended_at: float  # when the Enter came


class WedgeDetector:
    """Tells a scanner's burst from a person's typing by the gaps between keys.

    A burst is the run of keys before Enter in which no gap exceeds `max_gap_s` (a scanner that
    stalls on a busy event loop stays one burst), whose mean gap is at most `max_mean_gap_s`
    (scanners type a key every 1-20 ms, people every 100-300 ms, and no one sustains 30 ms over
    six keys) and which has at least `min_length` characters. Keys arriving in one chunk with the
    same timestamp, as a terminal may deliver them, count as a burst.
    """

    def __init__(
        self,
        *,
        max_gap_s: float = 0.1,
        max_mean_gap_s: float = 0.03,
        min_length: int = 6,
        max_length: int = 512,
    ) -> None:
        self.max_gap_s = max_gap_s
        self.max_mean_gap_s = max_mean_gap_s
        self.min_length = min_length
        self.max_length = max_length
        self._keys: list[tuple[str, float]] = []
        self._overflow = False  # a burst longer than max_length is refused, never cut short

    def feed(self, key: str, at: float) -> WedgeScan | None:
        """One key: a single character, or Enter ("\\r", "\\n" or "enter").

        Any other key (arrows, function keys, "backspace") ends the burst in progress.
        """
        if key in ENTER_KEYS:
            return self._enter(at)
        if len(key) != 1:
            self.reset()
            return None
        if self._keys and at - self._keys[-1][1] > self.max_gap_s:
            self.reset()  # a pause: whatever came before is not part of this burst
        if len(self._keys) >= self.max_length:
            self._overflow = True
            self._keys = self._keys[-1:]
        self._keys.append((key, at))
        return None

    def _enter(self, at: float) -> WedgeScan | None:
        keys, overflow = self._keys, self._overflow
        self.reset()
        if overflow or len(keys) < self.min_length or at - keys[-1][1] > self.max_gap_s:
            return None
        started = keys[0][1]
        mean_gap = (at - started) / len(keys)  # len(keys) gaps, counting the one before Enter
        if mean_gap > self.max_mean_gap_s:
            return None
        return WedgeScan("".join(k for k, _ in keys), len(keys), started, at)

    @property
    def pending(self) -> int:
        """Keys seen since the last pause: a caller may hold back echoing them while this grows."""
        return len(self._keys)

    def reset(self) -> None:
        self._keys = []
        self._overflow = False
