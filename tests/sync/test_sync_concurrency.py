"""Concurrency on PostgreSQL: a community's pushes take turns on its gseq counter, held to the
commit (so a pull after N never skips an event that commits late); other communities' pushes
never wait for them."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from menwei.core.clock import SystemClock
from menwei.core.eventlog import GENESIS, canonical, chain_hash
from menwei.sync.protocol import EnrollRequest, PushBatch, PushResult, WireEvent
from menwei.sync.server.postgres import PostgresStorage
from menwei.sync.server.reference import HomeReference
from tests.sync.helpers import T0, make_committee
from tests.sync.postgres import PostgresCluster


def a_batch(gate_id: str, n: int) -> PushBatch:
    events, prev = [], GENESIS
    for seq in range(1, n + 1):
        body = canonical(
            {
                "event_id": str(uuid.uuid4()),
                "seq": seq,
                "kind": "exit" if seq % 2 else "entry",
                "direction": "exit" if seq % 2 else "entry",
                "wall_time": f"2026-11-24T02:{seq:02d}:00.000Z",
                "reason": "ok",
                "operator": "t",
                "gate_id": gate_id,
                "epoch": 1,
                "household": 1203,
                "serial": 1,
            }
        )
        h = chain_hash(prev, body)
        events.append(WireEvent(seq=seq, prev_hash=prev, hash=h, body=body))
        prev = h
    return PushBatch(epoch=1, from_seq=1, head_seq=n, head_hash=prev, events=events)


def test_other_communities_never_wait_and_one_community_commits_in_gseq_order(
    tmp_path: Path, postgres_cluster: PostgresCluster
) -> None:
    name = f"conc_{uuid.uuid4().hex[:8]}"
    url = postgres_cluster.create_database(name)
    storage = PostgresStorage(url, max_size=6)
    try:
        gates = {}
        for community in (4201, 4202):
            home, _ = make_committee(tmp_path / str(community), community=community)
            HomeReference(home, storage, SystemClock()).refresh(force=True)
            for gate in ("A", "B"):
                token = storage.add_gate(community, gate, now=T0).token
                answer = storage.enroll(
                    None,
                    EnrollRequest(token=token, api_token=uuid.uuid4().hex * 2, public_key="0" * 64),
                    now=T0,
                )
                gates[(community, gate)] = answer.gate_id
        results: dict[str, PushResult] = {}

        def push(key: tuple[int, str]) -> None:
            gid = gates[key]
            results[gid] = storage.push(gid, a_batch(gid, 5), now=datetime.now(UTC))

        # A long transaction of community 4201 holds its counter row (as a push does until it
        # commits).
        with psycopg.connect(url) as holder:
            holder.execute("update communities set event_seq = event_seq where community_id = 4201")
            waiting = threading.Thread(target=push, args=((4201, "A"),))
            waiting.start()
            other = threading.Thread(target=push, args=((4202, "A"),))
            other.start()
            other.join(30)
            assert not other.is_alive(), "a push of another community waited"
            assert results[gates[(4202, "A")]].inserted == 5
            waiting.join(1.5)
            assert waiting.is_alive(), "a push of the same community must wait for the commit"
            holder.rollback()
        waiting.join(30)
        assert results[gates[(4201, "A")]].inserted == 5
        push((4201, "B"))
        rows = storage.query(
            "select community_id, gseq, gate_id from events order by community_id, gseq"
        )
        by_community: dict[int, list[int]] = {}
        for r in rows:
            by_community.setdefault(int(r["community_id"]), []).append(int(r["gseq"]))
        assert by_community == {4201: list(range(1, 11)), 4202: list(range(1, 6))}
        first_a = [r["gate_id"] for r in rows if r["community_id"] == 4201][:5]
        assert set(first_a) == {gates[(4201, "A")]}, "gseq follows commit order"
    finally:
        storage.close()
        postgres_cluster.drop_database(name)


def test_sqlite_finds_a_communitys_head_and_next_page_by_index(tmp_path: Path) -> None:
    """On a district's SQLite server the head of a community (asked on every push and pull) and
    a pull page are seeks in an index of the community's events in commit order, never a scan of
    all its events with a sort (which grew with the log)."""
    import sqlite3

    from menwei.sync.server.sqlite import SqliteStorage

    path = tmp_path / "server.db"
    SqliteStorage(path).close()
    conn = sqlite3.connect(path)
    try:

        def plan(sql: str) -> str:
            return " | ".join(str(r[3]) for r in conn.execute("explain query plan " + sql))

        head = plan("select coalesce(max(gseq), 0) from events where community_id = 1")
        assert "USING COVERING INDEX events_community (community_id=?)" in head
        page = plan(
            "select gseq, gate_id, epoch, seq, body from events where community_id = 1"
            " and gseq > 5 and not (gate_id = 'g' and orphan = 0) order by gseq limit 500"
        )
        assert "events_community (community_id=? AND gseq>?)" in page
        assert "TEMP B-TREE" not in page
        indexes = {r[1] for r in conn.execute("pragma index_list(events)")}
        assert "events_household" not in indexes  # superseded by events_household_order
    finally:
        conn.close()
