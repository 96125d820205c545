"""Fixtures of the core tests: `c` is the shared community (tests/conftest.py) under a short name."""

from __future__ import annotations

import pytest

from tests.conftest import Community


@pytest.fixture
def c(community: Community) -> Community:
    return community
