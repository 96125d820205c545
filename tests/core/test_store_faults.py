"""A write that fails at COMMIT: nothing of it stays, the gate says so, the next one is saved."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from menwei.core import eventlog
from menwei.core.store import Store, StoreError
from tests.conftest import Community


@contextmanager
def failing_commit(store: Store) -> Iterator[list[str]]:
    """Interrupt the next COMMIT on this connection, as a disk error at commit time would."""
    conn = store.db.conn
    seen: list[str] = []
    armed = {"on": False}

    def trace(sql: str) -> None:
        seen.append(sql)
        armed["on"] = sql.strip().upper() == "COMMIT" and seen.count(sql) == 1

    conn.set_trace_callback(trace)
    conn.set_progress_handler(lambda: 1 if armed["on"] else 0, 1)
    try:
        yield seen
    finally:
        conn.set_progress_handler(None, 1)
        conn.set_trace_callback(None)


def test_a_failed_commit_records_nothing_and_the_gate_goes_on(c: Community) -> None:
    with failing_commit(c.store) as seen, pytest.raises(StoreError) as err:
        c.gate.decide(c.codes[1203], operator="t")
    assert "COMMIT" in [s.strip().upper() for s in seen]
    assert "nothing was recorded" in str(err.value)
    assert not c.store.db.conn.in_transaction
    assert list(eventlog.iter_events(c.store)) == []
    assert c.gate.state_of(1203).state == "in"
    d = c.gate.decide(c.codes[1203], operator="t")
    assert d.recorded and c.gate.state_of(1203).state == "out"
    assert [e.kind for e in eventlog.iter_events(c.store)] == ["exit"]
    assert eventlog.verify(c.store).ok


def test_a_failed_begin_is_a_store_error(c: Community) -> None:
    other = sqlite3.connect(c.home.db_path, timeout=0)
    try:
        other.execute("BEGIN IMMEDIATE")
        c.store.db.conn.execute("pragma busy_timeout = 0")
        with pytest.raises(StoreError, match="busy or unwritable"):
            c.gate.decide(c.codes[1203], operator="t")
    finally:
        other.rollback()
        other.close()
    assert c.gate.decide(c.codes[1203], operator="t").recorded
