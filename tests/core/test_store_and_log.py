"""The store (migrations, newer-version refusal) and the event log's hash chain."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from menwei.core import eventlog
from menwei.core.errors import NotInitialised, SchemaTooNew
from menwei.core.eventlog import uuid7
from menwei.core.store import Store
from tests.conftest import Community


def test_database_settings(community: Community) -> None:
    db = community.store.db
    assert db.execute("pragma journal_mode").fetchone()[0] == "wal"
    assert db.execute("pragma synchronous").fetchone()[0] == 2  # FULL


def test_a_missing_database_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(NotInitialised, match="menwei init"):
        Store.open(tmp_path / "none.db")


def test_a_database_from_a_newer_version_is_refused_untouched(community: Community) -> None:
    path = community.home.db_path
    community.store.db.execute(
        "insert into _sqlite_migrations (migration_set, name, applied_at) "
        "values ('menwei', 'm099_from_the_future', 'x')"
    )
    community.store.close()
    before = path.read_bytes()
    with pytest.raises(SchemaTooNew, match="newer version"):
        Store.open(path)
    assert path.read_bytes() == before


def test_not_a_database(tmp_path: Path) -> None:
    bad = tmp_path / "menwei.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(Exception, match="not a SQLite database"):
        Store.open(bad)


def test_the_log_is_append_only(community: Community) -> None:
    c = community
    c.gate.decide(c.codes[1203], operator="t")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        c.store.db.execute("update events set household = 1 where seq = 1")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        c.store.db.execute("delete from events")


def _tamper(store: Store, sql: str) -> None:
    store.db.execute("drop trigger events_no_update")
    store.db.execute("drop trigger events_no_delete")
    store.db.execute(sql)


def test_verify_names_an_edit(community: Community) -> None:
    c = community
    for _ in range(3):
        c.gate.decide(c.codes[1203], operator="t")
    assert eventlog.verify(c.store).ok
    _tamper(c.store, "update events set operator = 'someone else' where seq = 2")
    report = eventlog.verify(c.store)
    assert (report.ok, report.first_break) == (False, 2)
    assert report.problem == "event 2 was altered"


def test_verify_names_a_gap(community: Community) -> None:
    c = community
    for _ in range(4):
        c.gate.decide(c.codes[1204], operator="t")
    _tamper(c.store, "delete from events where seq = 3")
    report = eventlog.verify(c.store)
    assert (report.ok, report.first_break, report.problem) == (False, 3, "event 3 is missing")


def test_verify_names_a_rewritten_body(community: Community) -> None:
    c = community
    for _ in range(2):
        c.gate.decide(c.codes[1204], operator="t")
    _tamper(
        c.store,
        'update events set body = replace(body, \'"operator":"t"\', \'"operator":"x"\'), '
        "operator = 'x' where seq = 1",
    )
    report = eventlog.verify(c.store)
    assert not report.ok and report.first_break == 1


def test_events_carry_ids_times_and_chain(community: Community) -> None:
    c = community
    c.gate.decide(c.codes[1203], operator="t")
    c.gate.decide(c.codes[1203], operator="t")
    e1, e2 = eventlog.iter_events(c.store)
    assert (e1.seq, e2.seq) == (1, 2)
    assert e1.prev_hash == eventlog.GENESIS and e2.prev_hash == e1.hash
    assert e1.event_id[14] == "7"  # UUID version 7
    assert e1.wall_time == "2026-11-24T02:00:00.000Z"
    assert e1.mono_ns > 0 and e1.boot_id


def test_uuid7_is_time_ordered_and_unique() -> None:
    from datetime import UTC, datetime, timedelta

    t = datetime(2026, 1, 1, tzinfo=UTC)
    ids = [uuid7(t + timedelta(milliseconds=i)) for i in range(100)]
    assert ids == sorted(ids) and len(set(ids)) == 100


def test_opening_the_store_again_keeps_the_first_connections_locks(community: Community) -> None:
    """The gate app opens the store again from background threads. If that open closed a
    descriptor of the file, the process's POSIX locks would go, another process's last close
    would checkpoint and delete the WAL, and later commits would land in a deleted file."""
    import subprocess
    import sys

    path = community.home.db_path
    Store.open(path).close()  # a second open and close in this process
    reader = (
        "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]);"
        " print(c.execute(\"select count(*) from meta where key like 'probe%'\").fetchone()[0]);"
        " c.close()"
    )
    assert subprocess.run([sys.executable, "-c", reader, str(path)], check=True).returncode == 0
    with community.store.write() as db:
        db.execute("insert into meta (key, value) values ('probe-1', 'written after')")
    seen = subprocess.run(
        [sys.executable, "-c", reader, str(path)], check=True, capture_output=True, text=True
    )
    assert seen.stdout.strip() == "1"
