"""One presentation, one scan: a card held in front of the camera is seen every frame."""

from __future__ import annotations

import time
from collections.abc import Callable

DEFAULT_WINDOW_S = 3.0


class Debouncer:
    """Passes a code the first time it is seen, then ignores it while it keeps being seen.

    A code is ignored while fewer than `window_s` seconds have passed since it was last seen, so a
    card held for a minute counts once, and so does a card lowered and shown again at once. Each
    code has its own memory: a different code goes through immediately, and two cards held up
    together, read in alternate frames, count once each.
    """

    def __init__(
        self, window_s: float = DEFAULT_WINDOW_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if window_s < 0:
            raise ValueError("the debounce window cannot be negative")
        self.window_s = window_s
        self._clock = clock
        self._last_seen: dict[str, float] = {}

    def accept(self, text: str, at: float | None = None) -> bool:
        """True when `text`, seen at `at` (default: now on the clock), is a new presentation."""
        now = self._clock() if at is None else at
        last = self._last_seen.get(text)
        self._last_seen[text] = now
        if len(self._last_seen) > 64:
            self._forget(now)
        return last is None or now - last >= self.window_s or now < last

    def _forget(self, now: float) -> None:
        self._last_seen = {
            t: seen for t, seen in self._last_seen.items() if now - seen < self.window_s
        }

    def reset(self, text: str | None = None) -> None:
        """Forget one code (or all), so its next sighting counts: after an undo, for instance."""
        if text is None:
            self._last_seen.clear()
        else:
            self._last_seen.pop(text, None)
