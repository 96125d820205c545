"""Time sources: wall clock plus monotonic clock, replaceable in tests."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The wall time, timezone-aware, in UTC."""

    def monotonic_ns(self) -> int:
        """A clock that never goes back while the machine runs."""


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic_ns(self) -> int:
        return time.monotonic_ns()


class FrozenClock:
    """A clock for tests: stands still until moved."""

    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FrozenClock needs an aware datetime")
        self._at = at
        self._mono = 1_000_000_000

    def now(self) -> datetime:
        return self._at

    def monotonic_ns(self) -> int:
        return self._mono

    def advance(self, delta: timedelta) -> None:
        self._at += delta
        self._mono += int(delta.total_seconds() * 1e9)

    def set(self, at: datetime) -> None:
        self.advance(at - self._at)


def boot_id() -> str:
    """This boot's id on Linux (monotonic times compare only within one boot)."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"


def iso(at: datetime) -> str:
    """UTC ISO-8601 with milliseconds and a Z, the form stored in the log."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
