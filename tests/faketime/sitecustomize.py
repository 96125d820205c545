"""Loaded by every Python process of a test run at another date (docs/testing.md, "Dates").

The run is `FAKETIME_DONT_FAKE_MONOTONIC=1 PYTHONPATH=tests/faketime faketime DATE pytest`.
libfaketime 0.9.10 (Debian 12) must leave the monotonic clock alone (else every wait with a
timeout waits for years), but then it answers Python's `time.sleep` (an absolute deadline on the
monotonic clock) with EINVAL. This sleeps through `select`'s relative timeout instead, which
libfaketime passes through unchanged. Nothing here runs outside such a run.
"""

from __future__ import annotations

import os
import select
import time
from typing import SupportsIndex

if os.environ.get("FAKETIME") and os.environ.get("FAKETIME_DONT_FAKE_MONOTONIC") == "1":
    _sleep = time.sleep

    def _relative_sleep(seconds: float | SupportsIndex) -> None:
        try:
            _sleep(seconds)
        except OSError:
            wait = seconds if isinstance(seconds, float | int) else seconds.__index__()
            deadline = time.monotonic() + wait
            while (left := deadline - time.monotonic()) > 0:
                select.select([], [], [], left)

    time.sleep = _relative_sleep
