"""Sync benchmarks: push and ingest rates, bytes per event on the wire, a week's catch-up.

A real server (`menwei server run`, its own process) on 127.0.0.1 over SQLite; real gate homes;
a community of 2,808 households. Prints its figures; asserts nothing.

    python scripts/bench_sync.py [--events 20000] [--catchup 5000]
"""

from __future__ import annotations

import argparse
import random
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx

from menwei.core.clock import FrozenClock
from menwei.core.community import init_community
from menwei.core.gate import GateService
from menwei.core.home import Home
from menwei.core.issuing import issue
from menwei.core.store import Store
from menwei.sync.client import build_batch, enroll, sync_once
from menwei.sync.server.sqlite import SqliteStorage

COMMUNITY = 4201
HOUSEHOLDS = 2808


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def committee(root: Path) -> tuple[Home, list[str]]:
    home = Home(root)
    start = datetime.now(UTC) - timedelta(days=40)
    init_community(home, community=COMMUNITY, name="钟楼居民区", now=start)
    store = Store.open(home.db_path)
    with store.write() as db:
        for i in range(1, HOUSEHOLDS + 1):
            db.execute(
                "insert into households (household, building, unit, room, building_group,"
                " members, category, updated_at) values (?, ?, '1', ?, ?, 3, 'normal', ?)",
                [
                    i,
                    str(1 + i // 12),
                    str(100 + i % 12),
                    str(1 + i // 60),
                    "2026-01-01T00:00:00.000Z",
                ],
            )
    codes = [
        p.code for p in issue(home, store, households=None, now=start, valid_until=date(2099, 1, 1))
    ]
    store.close()
    return home, codes


class Server:
    """`menwei server run` in its own process, as on the committee's machine."""

    def __init__(self, home: Home) -> None:
        self.home = home
        self.port = free_port()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "menwei",
                "--home",
                str(home.root),
                "server",
                "run",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
            ],
            stdout=subprocess.DEVNULL,
        )
        while True:
            try:
                httpx.get(self.url + "/v1/health", timeout=1)
                break
            except httpx.HTTPError:
                if self.proc.poll() is not None:
                    raise SystemExit("the server did not start") from None
                time.sleep(0.05)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def gate(self, root: Path, name: str) -> Home:
        home = Home(root)
        storage = SqliteStorage(self.home.server_dir / "server.db")
        token = storage.add_gate(COMMUNITY, name, now=datetime.now(UTC)).token
        storage.close()
        enroll(home, self.url, token)
        return home

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def record(home: Home, codes: list[str], n: int, start: datetime, seed: int) -> None:
    """n scans at a gate (exits and returns of random households), one transaction."""
    rng = random.Random(seed)
    clock = FrozenClock(start)
    store = Store.open(home.db_path)
    gate = GateService(store, clock=clock)
    with store.write():
        for _ in range(n):
            clock.advance(timedelta(seconds=rng.randint(1, 60)))
            gate.decide(rng.choice(codes), operator="值班员", source="camera")
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--catchup", type=int, default=5_000)
    args = parser.parse_args()
    print(f"menwei sync benchmarks ({HOUSEHOLDS} households, SQLite, HTTP on 127.0.0.1)")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        home, codes = committee(root / "committee")

        # 1. Push over HTTP, and bytes on the wire.
        server = Server(home)
        a = server.gate(root / "a", "A")
        record(a, codes, args.events, datetime.now(UTC) - timedelta(days=30), seed=1)
        t = time.perf_counter()
        result = sync_once(a, batch_size=500)
        push_s = time.perf_counter() - t
        assert result.pushed == args.events, result
        print(
            f"push over HTTP (gzip, 500/batch):  {args.events / push_s:>9,.0f} events/s"
            f"  ({args.events} events in {push_s:.2f} s)"
        )
        print(
            f"bytes per event on the wire:       {result.bytes_sent / args.events:>9.1f} B (gzip)"
        )

        # 2. Ingest alone (the same batches into a fresh server database), then replays.
        store = Store.open(a.db_path)
        batches = []
        after = 0
        while True:
            batch = build_batch(store, after=after, limit=500, epoch=1, offset_ms=0)
            if not batch.events:
                break
            batches.append(batch)
            after = batch.events[-1].seq
        store.close()
        raw = sum(len(x.model_dump_json()) for x in batches) / args.events
        fresh = SqliteStorage(root / "fresh" / "server.db")
        fresh.ensure_community(COMMUNITY, "x", now=datetime.now(UTC))
        fresh.add_gate(COMMUNITY, "A", now=datetime.now(UTC))
        from menwei.sync.protocol import EnrollRequest

        gate_token = fresh.add_gate(COMMUNITY, "A", now=datetime.now(UTC)).token
        fresh.enroll(
            COMMUNITY,
            EnrollRequest(token=gate_token, api_token="b" * 40, public_key="0" * 64),
            now=datetime.now(UTC),
        )
        now = datetime.now(UTC)
        t = time.perf_counter()
        for batch in batches:
            fresh.push("c4201-g1", batch, now=now)
        ingest_s = time.perf_counter() - t
        t = time.perf_counter()
        for batch in batches:
            fresh.push("c4201-g1", batch, now=now)
        replay_s = time.perf_counter() - t
        fresh.close()
        print(f"ingest (storage, 500/batch):       {args.events / ingest_s:>9,.0f} events/s")
        print(f"replayed batches (deduplicated):   {args.events / replay_s:>9,.0f} events/s")
        print(f"bytes per event, uncompressed JSON:{raw:>9.1f} B")
        server.stop()

        # 3. A gate offline for a week catches up.
        home2, codes2 = committee(root / "committee2")
        server = Server(home2)
        b = server.gate(root / "b", "B")
        c = server.gate(root / "c", "C")
        week = datetime.now(UTC) - timedelta(days=7)
        record(b, codes2, args.catchup, week, seed=2)
        sync_once(b)
        record(c, codes2, args.catchup, week, seed=3)
        t = time.perf_counter()
        result = sync_once(c)
        catch_s = time.perf_counter() - t
        print(
            f"a week offline: push {result.pushed} own + pull {result.pulled} others' events"
            f" in {catch_s:.2f} s ({result.bytes_sent + result.bytes_received:,} bytes)"
        )
        server.stop()


if __name__ == "__main__":
    main()
