"""A district server: a community's SQLite server migrated into PostgreSQL, a second community
added, gates of both enrolled; each gate and each committee sees only its own."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from click.testing import CliRunner, Result

from menwei.cli import cli
from menwei.core.home import Home
from menwei.sync.server.postgres import PostgresStorage
from menwei.sync.server.sqlite import SqliteStorage
from tests.sync.helpers import ThreadedServer, make_committee
from tests.sync.postgres import PostgresCluster


def run(home: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, ["--home", str(home), *args], catch_exceptions=False, env=env)


def run_json(home: Path, *args: str) -> Any:
    result = run(home, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


@pytest.fixture
def district_url(postgres_cluster: PostgresCluster) -> Iterator[str]:
    name = f"district_{abs(hash(datetime.now(UTC))) % 10**8}"
    yield postgres_cluster.create_database(name)
    postgres_cluster.drop_database(name)


def served(home: Home, storage: Any) -> ThreadedServer:
    return ThreadedServer(home, kwargs={"storage": storage}).start()


def count(url: str, sql: str) -> int:
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute(sql).fetchone()  # type: ignore[arg-type]
        assert row is not None
        return int(row[0])


def test_a_laptop_server_moves_up_and_a_second_community_joins(
    tmp_path: Path, district_url: str, postgres_cluster: PostgresCluster
) -> None:
    zl_home, zl_codes = make_committee(tmp_path / "zhonglou")
    # 1. The community's own server on its laptop (SQLite), one gate syncing.
    laptop = served(zl_home, SqliteStorage(zl_home.server_dir / "server.db"))
    try:
        token = run_json(zl_home.root, "server", "gate", "add", "东门", "--url", laptop.url)
        a = tmp_path / "gate-a"
        run_json(a, "enroll", laptop.url, token["token"])
        for number in (1203, 1204, 1203):
            assert run(a, "check", zl_codes[number]).exit_code == 0
        assert run_json(a, "sync")["pushed"] == 3
    finally:
        laptop.stop()

    # 2. Moving up: migrate, twice (the second run copies nothing and verifies again).
    first = run_json(zl_home.root, "server", "migrate", "--to", district_url)
    assert first["ok"] and first["communities"] == [4201]
    assert first["copied"]["events"] == 3 and first["copied"]["gates"] == 1
    again = run_json(zl_home.root, "server", "migrate", "--to", district_url)
    assert again["ok"] and all(v == 0 for v in again["copied"].values())
    assert count(district_url, "select count(*) from events") == 3
    # The shared order moves with the events (and presence), and a database whose events lack
    # their order keys gets them back from the bodies when it is migrated.
    assert count(district_url, "select count(*) from events where okey is null") == 0
    assert count(district_url, "select count(*) from presence where okey is null") == 0
    with psycopg.connect(district_url, autocommit=True) as conn:
        settled = conn.execute("select household, state from presence order by 1").fetchall()
        assert settled  # households moved
        # Presence as an older server may have left it (by wall time): the migration re-derives it.
        conn.execute("update presence set state = case state when 'in' then 'out' else 'in' end")
        conn.execute("drop index events_household_order")
        conn.execute("alter table events drop column okey")
        conn.execute("alter table presence drop column okey")
        conn.execute("delete from menwei_migrations where name = 'm110_shared_order'")
    PostgresStorage(district_url, max_size=1).close()
    assert count(district_url, "select count(*) from events where okey is null") == 0
    assert count(district_url, "select count(*) from presence where okey is null") == 0
    with psycopg.connect(district_url, autocommit=True) as conn:
        assert (
            conn.execute("select household, state from presence order by 1").fetchall() == settled
        )

    # 3. The district server on PostgreSQL; a second community joins with its own gate.
    sh_home, sh_codes = make_committee(tmp_path / "shanhu", community=4202, name="山湖社区")
    it_home = tmp_path / "it-office"
    added = run_json(
        it_home, "server", "--database", district_url, "community", "add", str(sh_home.root)
    )
    assert (added["community_id"], added["households"]) == (4202, 5)
    district = served(Home(it_home), PostgresStorage(district_url, max_size=4))
    try:
        # The migrated gate goes on where it was: the same cursors, only its new event sent.
        settings = a / "sync" / "server.json"
        doc = json.loads(settings.read_text())
        settings.write_text(json.dumps({**doc, "url": district.url}))
        assert run(a, "check", zl_codes[2101]).exit_code == 0
        synced = run_json(a, "sync")
        assert synced["ok"] and synced["pushed"] == 1 and not synced.get("snapshot")

        db = ["server", "--database", district_url]
        token_b = run_json(it_home, *db, "--community", "4202", "gate", "add", "北门")
        assert token_b["gate_id"] == "c4202-g1"
        b = tmp_path / "gate-b"
        enrolled = run_json(b, "enroll", district.url, token_b["token"])
        assert enrolled["community_id"] == 4202
        for number in (1203, 1203):  # a double exit in 山湖
            assert run(b, "check", sh_codes[number], "--direction", "exit").exit_code in (0, 1)
        assert run_json(b, "sync")["ok"]
        # Each gate sees only its own community's events.
        assert run_json(a, "sync")["pulled"] == 0
        listed = {c["community_id"]: c for c in run_json(it_home, *db, "community", "list")}
        assert listed[4201]["events"] == 4 and listed[4202]["events"] >= 1
        assert listed[4201]["gates"] == 1 and listed[4202]["gates"] == 1

        # Committee tokens read one community each.
        tokens = {
            c: run_json(it_home, *db, "community", "token", str(c))["token"] for c in (4201, 4202)
        }
        for c, t in tokens.items():
            gates = httpx.get(
                district.url + "/v1/committee/gates", headers={"Authorization": f"Bearer {t}"}
            ).json()
            assert {g["gate_id"] for g in gates} == {f"c{c}-g1"}
            page = httpx.get(
                district.url + "/v1/committee/anomalies", headers={"Authorization": f"Bearer {t}"}
            ).json()
            assert all(x["gate_id"] in (None, f"c{c}-g1") for x in page["anomalies"])
        refused = httpx.get(
            district.url + "/v1/committee/gates", headers={"Authorization": "Bearer nope"}
        )
        assert refused.status_code == 401

        checked = run(it_home, *db, "doctor", "--json")
        assert checked.exit_code == 1, "the throwaway cluster runs without fsync: doctor says so"
        doctor = json.loads(checked.output)
        assert len(doctor["checks"]) > 10
        failed = [c for c in doctor["checks"] if not c["ok"]]
        # The throwaway cluster runs without fsync: the only findings allowed.
        assert {c["name"] for c in failed} <= {"postgresql fsync", "postgresql synchronous_commit"}
    finally:
        district.stop()


def test_migrate_refuses_what_is_not_postgresql(tmp_path: Path) -> None:
    home, _ = make_committee(tmp_path / "c")
    SqliteStorage(home.server_dir / "server.db").close()
    result = run(home.root, "server", "migrate", "--to", "mysql://x")
    assert result.exit_code != 0
    assert "postgresql://" in result.output and "Traceback" not in result.output


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found.update(int(c) for c in (task / "children").read_text().split())
    return found


def _wait_for(predicate: Any, what: str, seconds: float = 30) -> None:
    import time

    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {seconds} s for {what}")
        time.sleep(0.05)


def test_two_worker_processes_serve_a_district_and_stop_together(
    tmp_path: Path, district_url: str
) -> None:
    import os
    import signal
    import subprocess
    import sys

    from tests.sync.postgres import _free_port

    home, codes = make_committee(tmp_path / "zhonglou")
    it_home = tmp_path / "it-office"
    db = ["server", "--database", district_url]
    run_json(it_home, *db, "community", "add", str(home.root))
    tokens = [run_json(it_home, *db, "gate", "add", name)["token"] for name in ("东门", "西门")]
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "menwei", "--home", str(it_home), *db, "run"),
            *("--port", str(port), "--workers", "2", "--log-level", "warning"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:

        def answering() -> bool:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            try:
                return httpx.get(url + "/v1/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        _wait_for(answering, "the server")
        workers = _children(proc.pid)
        assert len(workers) == 2
        # Both gates enroll and sync through the workers; each gets the other's events.
        east, west = tmp_path / "east", tmp_path / "west"
        run_json(east, "enroll", url, tokens[0])
        run_json(west, "enroll", url, tokens[1])
        for number in (1203, 2101):
            assert run(east, "check", codes[number]).exit_code == 0
        assert run_json(east, "sync")["pushed"] == 2
        assert run_json(west, "sync")["pulled"] == 2
        assert count(district_url, "select count(*) from events") == 2
        # A worker that dies is replaced; the server goes on answering.
        dead = min(workers)
        os.kill(dead, signal.SIGKILL)
        _wait_for(lambda: dead not in _children(proc.pid), "the dead worker to be reaped")
        _wait_for(lambda: len(_children(proc.pid)) == 2, "a new worker")
        _wait_for(answering, "the server after a worker died")
        assert run(west, "check", codes[1203]).exit_code == 0
        assert run_json(west, "sync")["pushed"] == 1
        # Stopping the server stops every worker.
        workers = _children(proc.pid)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        for pid in workers:
            _wait_for(lambda pid=pid: not Path(f"/proc/{pid}").exists(), f"worker {pid} to end")
    finally:
        if proc.poll() is None:
            for pid in _children(proc.pid):
                os.kill(pid, signal.SIGKILL)
            proc.kill()
            proc.wait(10)
        if proc.stderr is not None:
            proc.stderr.close()
