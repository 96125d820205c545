"""Fixtures of the sync tests: `w` is a committee, its server on 127.0.0.1 and no gates yet.

Every server a test starts is stopped by the fixture (or the `world` context) that started it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sync.helpers import World, world


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    with world(tmp_path) as w:
        yield w
