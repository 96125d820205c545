"""Fixtures of the sync tests. The server's contract tests run against every storage backend:
SQLite, and a real PostgreSQL started for the session from the Debian packages (and always
stopped). `w` is a committee, its server on 127.0.0.1 and no gates yet; every server a test starts
is stopped by the fixture (or the `world` context) that started it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sync import helpers
from tests.sync.helpers import World, world
from tests.sync.postgres import PostgresCluster


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    with world(tmp_path) as w:
        yield w


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    cluster = PostgresCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> Iterator[helpers.Backend]:
    """The backend of the module's servers (module-scoped: property tests may use it)."""
    if request.param == "sqlite":
        chosen = helpers.Backend("sqlite")
    else:
        chosen = helpers.Backend("postgresql", request.getfixturevalue("postgres_cluster"))
    previous, helpers.BACKEND = helpers.BACKEND, chosen
    try:
        yield chosen
    finally:
        helpers.BACKEND = previous
