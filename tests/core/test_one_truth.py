"""One truth on one gate: the shared order, the quota in that order, two writers on one home,
and damage to the database file found and said (never recorded over)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from menwei.cli import cli
from menwei.core import integrity, ordering, state
from menwei.core.errors import MenweiError
from menwei.core.gate import GateService
from menwei.core.store import Store
from tests.conftest import T0, Community


def run(*args: str) -> object:
    return CliRunner().invoke(cli, list(args))


def _rebuilt(c: Community, household: int) -> tuple[str, str | None]:
    saved = c.gate.state_of(household)
    with c.store.write() as db:
        state.rebuild(db, [household])
    again = c.gate.state_of(household)
    assert (saved.state, saved.event_id) == (again.state, again.event_id)
    return again.state, again.event_id


def test_a_clock_set_back_cannot_buy_a_trip(community: Community) -> None:
    c = community
    c.set_policy("[quota]\ntrips = 1\ndays = 1\n")
    at = T0  # 10:00 local
    assert c.gate.decide(c.codes[1203], operator="t", at=at).reason == "ok"
    assert c.gate.decide(c.codes[1203], operator="t", at=at + timedelta(minutes=30)).reason == "ok"
    late = c.gate.decide(c.codes[1203], operator="t", at=at + timedelta(hours=1))
    assert late.reason == "quota_exceeded"
    # The clock is set back to 09:30: the scan still falls after today's trip in the order.
    back = c.gate.decide(c.codes[1203], operator="t", at=at - timedelta(minutes=30))
    assert (back.verdict, back.reason) == ("red", "quota_exceeded")
    back = c.gate.decide(c.codes[1203], operator="t", at=at - timedelta(days=1))
    assert (back.verdict, back.reason) == ("red", "quota_exceeded")
    exits = c.store.query("select count(*) as n from events where kind = 'exit'")[0]["n"]
    assert exits == 1


def test_an_entry_stamped_before_its_exit_leaves_the_household_in(community: Community) -> None:
    c = community
    out = c.gate.decide(c.codes[1204], operator="t", at=T0)
    back = c.gate.decide(c.codes[1204], operator="t", at=T0 - timedelta(hours=1))
    assert (out.direction, back.direction, back.verdict) == ("exit", "entry", "green")
    # The saved state and a rebuild from the log (as sync and undo do) agree: in.
    assert _rebuilt(c, 1204) == ("in", back.event_id)
    rows = c.store.query("select hlc_ms, okey from events order by seq")
    keys = [r["okey"] for r in rows]
    assert keys == sorted(keys) and rows[1]["hlc_ms"] > rows[0]["hlc_ms"]


def test_the_measured_offset_corrects_the_order(community: Community) -> None:
    c = community
    with c.store.write() as db:
        db.execute("insert into sync_state (key, value) values ('clock_offset_ms', '-90000')")
    d = c.gate.decide(c.codes[3301], operator="t", at=T0 + timedelta(seconds=90))
    row = c.store.one("select hlc_ms, wall_time from events where event_id = ?", [d.event_id])
    assert row is not None and row["wall_time"] == "2026-11-24T02:01:30.000Z"
    assert row["hlc_ms"] == int(T0.timestamp() * 1000)


def test_a_pulled_exit_stamped_ahead_cannot_jump_the_entry_decided_after_it(
    community: Community,
) -> None:
    # Another gate's clock runs 5 minutes fast: its exit of 1203, pulled here, is stamped
    # 10:05 while this gate's clock says 10:00 when the household comes back in.
    c = community
    ahead = int(T0.timestamp() * 1000) + 5 * 60_000
    okey = ordering.order_key(ahead, "gate-9", 1, "r-exit")
    with c.store.write() as db:
        db.execute(
            "insert into remote_events (event_id, gate_id, epoch, seq, kind, direction, household,"
            " reason, headcount, wall_time, ref, body, okey)"
            " values ('r-exit', 'gate-9', 1, 1, 'exit', 'exit', 1203, 'ok', 1,"
            " '2026-11-24T02:05:00.000Z', null, '{}', ?)",
            [okey],
        )
        state.rebuild(db, [1203])
    assert c.gate.state_of(1203).state == "out"
    back = c.gate.decide(c.codes[1203], operator="t", at=T0)
    assert (back.direction, back.verdict) == ("entry", "green")
    row = c.store.one("select hlc_ms, okey from events where event_id = ?", [back.event_id])
    assert row is not None and row["hlc_ms"] == ahead + 1 and row["okey"] > okey
    assert _rebuilt(c, 1203) == ("in", back.event_id)


_SCAN = """
import sys
from menwei.core.gate import GateService
from menwei.core.store import Store
from pathlib import Path
store = Store.open(Path(sys.argv[1]))
gate = GateService(store)
sys.stdin.readline()  # both processes start together
d = gate.decide(sys.argv[2], operator=sys.argv[3], direction="exit")
print(d.verdict, d.reason, flush=True)
"""


def test_two_processes_scanning_the_same_pass_at_once(community: Community) -> None:
    c = community
    verdicts: list[str] = []
    for round_ in range(5):
        number = [1203, 1204, 2101, 2102, 3301][round_]
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", _SCAN, str(c.home.db_path), c.codes[number], f"p{i}"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for i in range(2)
        ]
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
        for p in procs:
            assert p.stdin is not None
            p.stdin.flush()
        outs = sorted(p.communicate(timeout=60)[0].strip() for p in procs)
        verdicts += outs
        assert outs == ["amber already_out", "green ok"], outs
    exits = c.store.query("select count(*) as n from events where kind = 'exit'")[0]["n"]
    denies = c.store.query("select count(*) as n from events where kind = 'deny'")[0]["n"]
    assert (exits, denies) == (5, 5)


def _damage(path: Path, at: int, count: int = 64) -> None:
    data = bytearray(path.read_bytes())
    for i in range(count):
        data[at + i] ^= 0xFF
    path.write_bytes(bytes(data))


def _filled(c: Community, n: int = 300) -> None:
    for i in range(n):
        c.gate.decide(c.codes[1203], operator="t", at=T0 + timedelta(minutes=i))
    c.store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def test_a_flipped_byte_is_found_and_nothing_is_recorded_over_it(community: Community) -> None:
    c = community
    _filled(c)
    c.store.close()
    path = c.home.db_path
    _damage(path, path.stat().st_size // 2)
    r = run("check", c.codes[1204])
    assert r.exit_code != 0  # type: ignore[attr-defined]
    out = r.output  # type: ignore[attr-defined]
    assert "已损坏" in out and "damaged" in out and "Traceback" not in out
    r = run("log", "verify")
    assert r.exit_code == 1 and "Traceback" not in r.output  # type: ignore[attr-defined]
    assert "日志有问题" in r.output and "log damaged" in r.output  # type: ignore[attr-defined]
    r = run("log", "verify", "--json")
    assert json.loads(r.output)["ok"] is False  # type: ignore[attr-defined]
    conn = sqlite3.connect(path)
    try:
        n = conn.execute("select count(*) from events where household = 1204").fetchone()[0]
    except sqlite3.DatabaseError:
        n = 0
    conn.close()
    assert n == 0


def test_damage_to_an_index_is_not_called_intact(community: Community) -> None:
    c = community
    _filled(c)
    root = c.store.one("select rootpage from sqlite_master where name = 'events_time'")
    assert root is not None
    page_size = int(c.store.db.execute("PRAGMA page_size").fetchone()[0])
    c.store.close()
    # Garble the cell content at the end of the index's root page (the table is untouched).
    _damage(c.home.db_path, int(root["rootpage"]) * page_size - 40, 16)
    report = integrity.verify_file(c.home.db_path)
    assert not report.ok and report.sqlite


def test_an_emptied_file_is_named_and_never_initialised(community: Community) -> None:
    c = community
    c.store.close()
    c.home.db_path.write_bytes(b"")
    for args in (("check", c.codes[1203]), ("log", "verify"), ("log",)):
        r = run(*args)
        assert r.exit_code != 0, args  # type: ignore[attr-defined]
        assert "空的" in r.output and "is empty" in r.output  # type: ignore[attr-defined]
    r = run("init", "--community", "42", "--name", "x")
    assert r.exit_code != 0 and "is empty" in r.output  # type: ignore[attr-defined]
    assert c.home.db_path.stat().st_size == 0


def test_a_foreign_database_is_never_written_to(community: Community) -> None:
    c = community
    c.store.close()
    path = c.home.db_path
    path.unlink()
    for suffix in ("-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    conn = sqlite3.connect(path)
    conn.execute("create table photos (id integer primary key, name text)")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(MenweiError, match="another program"):
        Store.open(path)
    r = run("check", c.codes[1203])
    assert r.exit_code != 0 and "another program" in r.output  # type: ignore[attr-defined]
    assert path.read_bytes() == before


def test_a_deleted_wal_loses_a_tail_the_anchor_reports(community: Community) -> None:
    c = community
    for i in range(10):
        c.gate.decide(c.codes[1203], operator="t", at=T0 + timedelta(minutes=i))
    c.store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for i in range(10, 49):
        c.gate.decide(c.codes[1203], operator="t", at=T0 + timedelta(minutes=i))
    # The server acknowledged everything up to event 49 at the last sync.
    head = c.store.one("select seq, hash from events order by seq desc limit 1")
    assert head is not None and head["seq"] == 49
    integrity.write_anchor(
        c.home.db_path, integrity.Anchor(49, head["hash"], 1, "g", "2026-11-24T03:00:00.000Z")
    )
    wal = Path(str(c.home.db_path) + "-wal")
    assert wal.stat().st_size > 0
    wal.unlink()  # under the running process
    Path(str(c.home.db_path) + "-shm").unlink(missing_ok=True)

    # `menwei log verify` from another process, as the IT person would run it.
    def verify(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "menwei", "log", "verify", *extra],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "MENWEI_HOME": str(c.home.root)},
        )

    r = verify("--json")
    report = json.loads(r.stdout)
    assert r.returncode == 1 and report["chain_ok"] and report["count"] == 10
    assert not report["ok"] and report["missing_tail"] == [11, 49]
    r = verify()
    assert r.returncode == 1 and "11-49" in r.stdout and "Traceback" not in r.stderr
    assert "尾部丢失" in r.stdout and "lost tail" in r.stdout
    c.store.close()


def test_a_sound_file_verifies_with_its_anchor(community: Community) -> None:
    c = community
    d = c.gate.decide(c.codes[1203], operator="t")
    row = c.store.one("select hash from events where seq = 1")
    assert row is not None and d.seq == 1
    integrity.write_anchor(
        c.home.db_path, integrity.Anchor(1, row["hash"], 1, "g", "2026-11-24T03:00:00.000Z")
    )
    r = run("log", "verify")
    assert r.exit_code == 0 and "log intact: 1 events" in r.output  # type: ignore[attr-defined]
    integrity.write_anchor(
        c.home.db_path, integrity.Anchor(1, "0" * 64, 1, "g", "2026-11-24T03:00:00.000Z")
    )
    r = run("log", "verify", "--json")
    assert json.loads(r.output)["rewritten_at"] == 1  # type: ignore[attr-defined]


def test_gate_service_refuses_nothing_on_a_sound_file(community: Community) -> None:
    c = community
    c.store.require_sound()
    assert GateService(c.store, clock=c.clock).decide(c.codes[1203], operator="t").recorded
    assert os.path.exists(c.home.db_path)


def test_the_shared_order_migration_fills_in_older_logs(
    community: Community, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = community
    # Events as an older menwei wrote them: no hlc_ms in their bodies.
    monkeypatch.setattr("menwei.core.eventlog.next_hlc", lambda *a, **k: None)
    for i in range(4):
        c.gate.decide(c.codes[1203], operator="t", at=T0 + timedelta(minutes=i))
    monkeypatch.undo()
    assert c.store.one("select count(*) as n from events where hlc_ms is null") == {"n": 4}
    before = c.store.query("select seq, okey, hash from events order by seq")
    state_before = c.gate.state_of(1203)
    # Put the database back as it was before the migration (columns, view, record).
    c.store.db.executescript(
        """
        drop index events_household_order;
        drop index remote_events_household_order;
        drop view all_events;
        alter table events drop column okey;
        alter table events drop column hlc_ms;
        alter table remote_events drop column okey;
        alter table household_state drop column okey;
        create view all_events as
            select event_id, gate_id, kind, direction, household, reason, headcount, wall_time,
                   ref, window, overdue from events
            union all
            select event_id, gate_id, kind, direction, household, reason, headcount, wall_time,
                   ref, json_extract(body, '$.window'), coalesce(json_extract(body, '$.overdue'), 0)
              from remote_events;
        delete from _sqlite_migrations where name = 'm110_shared_order';
        """
    )
    c.store.close()
    store = Store.open(c.home.db_path)
    after = store.query("select seq, okey, hash from events order by seq")
    assert after == before and '"hlc_ms"' not in str(store.query("select body from events"))
    assert integrity.verify_file(c.home.db_path).ok
    assert state.get(store.db, 1203) == state_before
    assert store.one("select count(*) as n from sqlite_master where name = 'events_no_update'")
    store.close()


def test_a_large_files_start_check_walks_the_tables_a_decision_reads(
    community: Community, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = community
    monkeypatch.setattr(integrity, "QUICK_CHECK_MAX_BYTES", 0)  # as if the file were large
    c.store.require_sound()
    root = c.store.one("select rootpage from sqlite_master where name = 'households'")
    assert root is not None
    page_size = int(c.store.db.execute("PRAGMA page_size").fetchone()[0])
    c.store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    c.store.close()
    _damage(c.home.db_path, (int(root["rootpage"]) - 1) * page_size, 8)  # the page header
    r = run("check", c.codes[1203])
    assert r.exit_code != 0 and "damaged" in r.output  # type: ignore[attr-defined]
