"""Fixtures for the notification tests: one real Matrix homeserver for the whole session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.notify.synapse import Synapse, User, running_synapse


@pytest.fixture(scope="session")
def synapse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synapse]:
    """matrix-synapse on 127.0.0.1 (started once, stopped by its PID at the end)."""
    yield from running_synapse(tmp_path_factory.mktemp("synapse"))


@pytest.fixture(scope="session")
def bot(synapse: Synapse) -> User:
    return synapse.register("gatebot", "bot-pass")


@pytest.fixture(scope="session")
def reader(synapse: Synapse) -> User:
    return synapse.register("reader", "reader-pass")
