"""A USB keyboard-wedge scanner types the code it reads, then Enter, faster than any person.

`WedgeDetector` is fed every key with its arrival time. When Enter ends a burst of keys that came
too fast for a hand, it returns the burst as a scanned code, with how many keys it took, so that
the caller can take those characters back out of whatever input field received them. A person
typing a household number and Enter is left alone (`feed` returns None).
"""

from __future__ import annotations

from dataclasses import dataclass

from menwei.core.passes import PREFIX as PASS_PREFIX

ENTER_KEYS = frozenset({"\r", "\n", "enter"})


@dataclass(frozen=True)
class WedgeScan:
    text: str  # the characters of the burst, verbatim (spaces kept), without the Enter
    keys: int  # characters typed by the scanner before its Enter
    started_at: float
    ended_at: float  # when the Enter came


class WedgeDetector:
    """Tells a scanner's burst from a person's typing by the gaps between keys.

    A burst is a run of at least `min_length` keys ended by Enter whose mean gap is at most
    `max_mean_gap_s`: scanners type a key every 1-20 ms, people every 100-300 ms, and no one
    sustains 30 ms over six keys. Keys arriving in one chunk with the same timestamp, as a
    terminal may deliver them, count as a burst.

    A gap longer than `max_gap_s` ends a run, with one exception: inside a run that is already
    fast, a gap of up to `max_stall_s` is the event loop stalling (a database commit, a redraw)
    while the scanner's keys queue up, and is left out of the mean. Keys a person typed just
    before the scanner started are dropped when the burst holds `prefix` (the pass prefix "MW:"),
    so they do not end up in front of the code.
    """

    def __init__(
        self,
        *,
        max_gap_s: float = 0.1,
        max_mean_gap_s: float = 0.03,
        min_length: int = 6,
        max_length: int = 512,
        max_stall_s: float = 1.0,
        prefix: str | None = PASS_PREFIX,
    ) -> None:
        self.max_gap_s = max_gap_s
        self.max_mean_gap_s = max_mean_gap_s
        self.min_length = min_length
        self.max_length = max_length
        self.max_stall_s = max_stall_s
        self.prefix = prefix
        # (character, time, the gap before it was a stall)
        self._keys: list[tuple[str, float, bool]] = []
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
        stalled = False
        if self._keys:
            gap = at - self._keys[-1][1]
            if gap > self.max_gap_s:
                if gap <= self.max_stall_s and self._fast(self._keys):
                    stalled = True
                else:
                    self.reset()  # a pause: whatever came before is not part of this burst
        if len(self._keys) >= self.max_length:
            self._overflow = True
            self._keys = self._keys[-1:]
        self._keys.append((key, at, stalled))
        return None

    def _mean_gap(self, keys: list[tuple[str, float, bool]], end: float, end_stall: float) -> float:
        """The mean gap over `keys` and the Enter at `end`, stalls left out."""
        stalls = sum(keys[i][1] - keys[i - 1][1] for i in range(1, len(keys)) if keys[i][2])
        return (end - keys[0][1] - stalls - end_stall) / len(keys)

    def _fast(self, keys: list[tuple[str, float, bool]]) -> bool:
        """Whether the run so far is a scanner's (three keys at least, at a scanner's pace)."""
        if len(keys) < 3:
            return False
        return self._mean_gap(keys[:-1], keys[-1][1], 0.0) <= self.max_mean_gap_s

    def _enter(self, at: float) -> WedgeScan | None:
        keys, overflow = self._keys, self._overflow
        self.reset()
        if overflow or not keys:
            return None
        gap = at - keys[-1][1]
        end_stall = 0.0
        if gap > self.max_gap_s:
            if gap > self.max_stall_s or not self._fast(keys):
                return None
            end_stall = gap
        if self.prefix:
            start = "".join(k for k, _, _ in keys).find(self.prefix)
            if start > 0:
                keys = [(keys[start][0], keys[start][1], False), *keys[start + 1 :]]
        if len(keys) < self.min_length:
            return None
        if self._mean_gap(keys, at, end_stall) > self.max_mean_gap_s:
            return None
        return WedgeScan("".join(k for k, _, _ in keys), len(keys), keys[0][1], at)

    @property
    def pending(self) -> int:
        """Keys seen since the last pause: a caller may hold back echoing them while this grows."""
        return len(self._keys)

    def reset(self) -> None:
        self._keys = []
        self._overflow = False
