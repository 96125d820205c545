"""Sync benchmarks: push and ingest rates, bytes per event on the wire, a week's catch-up.

A real server (`menwei server run`, its own process) on 127.0.0.1 over SQLite; real gate homes;
a community of 2,808 households. Prints its figures; asserts nothing.

    python scripts/bench_sync.py [--events 20000] [--catchup 5000]
"""

from __future__ import annotations

import argparse
import random
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx

from menwei.core.clock import FrozenClock
from menwei.core.community import init_community
from menwei.core.gate import GateService
from menwei.core.home import Home
from menwei.core.issuing import issue
from menwei.core.store import Store
from menwei.sync.client import build_batch, sync_once
from menwei.sync.enrollment import enroll
from menwei.sync.protocol import DEFAULT_BATCH_EVENTS
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

    def __init__(self, home: Home, port: int | None = None) -> None:
        self.home = home
        self.port = port or free_port()
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


def _copy(src: Path, dst: Path) -> None:
    """A consistent copy of an SQLite database, whatever is in its WAL."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(str(dst) + suffix).unlink(missing_ok=True)
    with closing(sqlite3.connect(src)) as a, closing(sqlite3.connect(dst)) as b:
        a.backup(b)


def median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--catchup", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=3, help="Report the median of this many.")
    parser.add_argument(
        "--batch", type=int, default=DEFAULT_BATCH_EVENTS, help="Events per push batch."
    )
    args = parser.parse_args()
    n = args.events
    print(f"menwei sync benchmarks ({HOUSEHOLDS} households, SQLite, HTTP on 127.0.0.1)")
    print(f"median of {args.rounds} rounds (min-max)")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        home, codes = committee(root / "committee")

        # 1. Push over HTTP, and bytes on the wire: the same gate and server, from the same
        # starting point, in every round.
        server = Server(home)
        a = server.gate(root / "a", "A")
        port = server.port
        server.stop()
        record(a, codes, n, datetime.now(UTC) - timedelta(days=30), seed=1)
        saved = root / "saved"
        _copy(a.db_path, saved / "gate.db")
        _copy(home.server_dir / "server.db", saved / "server.db")
        rates: list[float] = []
        sent = 0
        for _ in range(args.rounds):
            _copy(saved / "gate.db", a.db_path)
            _copy(saved / "server.db", home.server_dir / "server.db")
            server = Server(home, port)
            t = time.perf_counter()
            result = sync_once(a, batch_size=args.batch)
            rates.append(n / (time.perf_counter() - t))
            server.stop()
            assert result.pushed == n, result
            sent = result.bytes_sent
        print(
            f"push + ingest over HTTP (gzip, {args.batch}/batch): {median(rates):>8,.0f} events/s"
            f"  ({min(rates):,.0f}-{max(rates):,.0f})"
        )
        print(f"bytes per event on the wire:               {sent / n:>8.1f} B (gzip)")

        # 2. Ingest alone (the same batches into a fresh server database), then replays.
        store = Store.open(a.db_path)
        batches = []
        after = 0
        while True:
            batch = build_batch(store, after=after, limit=args.batch, epoch=1, offset_ms=0)
            if not batch.events:
                break
            batches.append(batch)
            after = batch.events[-1].seq
        store.close()
        raw = sum(len(x.model_dump_json()) for x in batches) / n
        ingest: list[float] = []
        replays: list[float] = []
        for i in range(args.rounds):
            _copy(saved / "server.db", root / f"fresh{i}" / "server.db")
            fresh = SqliteStorage(root / f"fresh{i}" / "server.db")
            now = datetime.now(UTC)
            t = time.perf_counter()
            for batch in batches:
                fresh.push("c4201-g1", batch, now=now)
            ingest.append(n / (time.perf_counter() - t))
            t = time.perf_counter()
            for batch in batches:
                fresh.push("c4201-g1", batch, now=now)
            replays.append(n / (time.perf_counter() - t))
            fresh.close()
        print(
            f"ingest alone (storage, {args.batch}/batch):         {median(ingest):>8,.0f} events/s"
            f"  ({min(ingest):,.0f}-{max(ingest):,.0f})"
        )
        print(
            f"replayed batches (all duplicates):         {median(replays):>8,.0f} events/s"
            f"  ({min(replays):,.0f}-{max(replays):,.0f})"
        )
        print(f"bytes per event, uncompressed JSON:        {raw:>8.1f} B")

        # 3. A gate offline for a week catches up: it pushes its own week and pulls the others'.
        home2, codes2 = committee(root / "committee2")
        server = Server(home2)
        b = server.gate(root / "b", "B")
        c = server.gate(root / "c", "C")
        port2 = server.port
        week = datetime.now(UTC) - timedelta(days=7)
        record(b, codes2, args.catchup, week, seed=2)
        sync_once(b)
        server.stop()
        time.sleep(0.2)
        record(c, codes2, args.catchup, week, seed=3)
        _copy(c.db_path, saved / "c.db")
        _copy(home2.server_dir / "server.db", saved / "server2.db")
        times: list[float] = []
        for _ in range(args.rounds):
            _copy(saved / "c.db", c.db_path)
            _copy(saved / "server2.db", home2.server_dir / "server.db")
            server = Server(home2, port2)
            t = time.perf_counter()
            result = sync_once(c)
            times.append(time.perf_counter() - t)
            server.stop()
        print(
            f"a week offline: push {result.pushed:,} own + pull {result.pulled:,} others' events:"
            f" {median(times):.2f} s ({min(times):.2f}-{max(times):.2f});"
            f" {result.bytes_sent + result.bytes_received:,} bytes"
        )


if __name__ == "__main__":
    main()
