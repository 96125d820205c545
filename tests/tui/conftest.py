"""Fixtures of the gate app's tests (helpers to drive the app are in tests.tui.helpers)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from textual.widgets import Input


@pytest.fixture
def anyio_backend() -> str:
    """The async tests run on asyncio (Textual's loop), through anyio's pytest plugin."""
    return "asyncio"


@pytest.fixture
def steady_cursor(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No blinking cursor: a snapshot must not depend on when it was taken."""
    monkeypatch.setattr(Input, "_toggle_cursor", lambda self: None)
    yield
