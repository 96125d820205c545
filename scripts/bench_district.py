"""A district on one server: many communities, many gates pushing a day's events at once.

Both backends side by side: the server (`menwei server run`, its own process; two worker
processes on PostgreSQL, one on SQLite, whose single writer makes more pointless) on a
throwaway PostgreSQL started here from the Debian packages (fsync and synchronous_commit on:
an acknowledged push survives a power cut), and on SQLite (WAL, synchronous=FULL).

What it prints, per backend: aggregate push + ingest in events/s over HTTP (every gate pushing
its day in batches, concurrently), the p95 and max of a `/v1/events` page pulled while the
pushes run, a 3,000-household community's `/v1/snapshot` time, and the worst `/v1/status`
answer while that snapshot runs. It asserts nothing.

    python scripts/bench_district.py                 # scaled for a shared 2-core machine
    python scripts/bench_district.py --full          # the district: 2,000,000 events
    python scripts/bench_district.py --events 400000 --backends postgresql
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import secrets
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.sync.postgres import PostgresCluster, _free_port

from menwei.core.clock import iso
from menwei.core.community import init_community
from menwei.core.eventlog import GENESIS, canonical, chain_hash
from menwei.core.home import Home
from menwei.core.ordering import wall_ms
from menwei.core.store import Store
from menwei.sync.server.backends import open_storage
from menwei.sync.server.reference import HomeReference

BATCH = 1000
# One TLS context for every client: httpx builds a new one (loading the CA bundle, ~25 ms of CPU)
# per client otherwise, and each of the 250 gates has its own client.
_TLS = ssl.create_default_context()


def make_communities(root: Path, communities: int, households: int, big: int) -> list[Home]:
    """Committee homes; the first has `big` households, the rest share what is left."""
    homes = []
    rest = max(households - big, communities - 1)
    start = datetime.now(UTC) - timedelta(days=40)
    for c in range(communities):
        n = (
            big
            if c == 0
            else rest // (communities - 1) + (1 if c - 1 < rest % (communities - 1) else 0)
        )
        home = Home(root / f"c{c}")
        init_community(home, community=5000 + c, name=f"社区{c}", now=start)
        store = Store.open(home.db_path)
        with store.write() as db:
            db.conn.executemany(
                "insert into households (household, building, unit, room, building_group,"
                " members, category, updated_at) values (?, ?, '1', ?, ?, 3, 'normal', ?)",
                [
                    (
                        i,
                        str(1 + i // 12),
                        str(100 + i % 12),
                        str(1 + i // 60),
                        "2026-01-01T00:00:00.000Z",
                    )
                    for i in range(1, n + 1)
                ],
            )
        store.close()
        homes.append(home)
    return homes


class Server:
    def __init__(self, it_home: Path, database: str, workers: int) -> None:
        self.port = _free_port()
        env = {**os.environ, "MENWEI_SERVER_DATABASE": database}
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "menwei",
                "--home",
                str(it_home),
                "server",
                "run",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
                "--workers",
                str(workers),
            ],
            stdout=subprocess.DEVNULL,
            env=env,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(self.url + "/v1/health", timeout=1)
                return
            except httpx.HTTPError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the server did not start") from None
                time.sleep(0.1)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cpu_seconds(self) -> float:
        """CPU time (user + system) of the server and its worker processes so far (Linux)."""
        tick = os.sysconf("SC_CLK_TCK")
        total = 0
        pids = [self.proc.pid]
        while pids:
            pid = pids.pop()
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])  # utime, stime
                for task in Path(f"/proc/{pid}/task").iterdir():
                    pids += [int(c) for c in (task / "children").read_text().split()]
            except (OSError, ValueError, IndexError):
                continue
        return total / tick

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def day_of_events(
    gate_id: str, households: list[int], n: int, day: datetime, seed: int
) -> list[bytes]:
    """A gate's day as gzip'd push batches: its households going out and back, chained."""
    rng = random.Random(seed)
    out_now: set[int] = set()
    prev, bodies = GENESIS, []
    t = day
    step = timedelta(seconds=max(1, 86_000 // max(n, 1)))
    for seq in range(1, n + 1):
        t += step
        h = rng.choice(households)
        way = "entry" if h in out_now else "exit"
        out_now.symmetric_difference_update({h})
        body = canonical(
            {
                "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "seq": seq,
                "kind": way,
                "direction": way,
                "wall_time": iso(t),
                "reason": "ok",
                "operator": "值班员",
                "gate_id": gate_id,
                "epoch": 1,
                "household": h,
                "serial": 1,
                "headcount": 1,
                "clock_offset_ms": 0,
                # Every gate writes its hybrid logical clock (core/ordering.py).
                "hlc_ms": wall_ms(t),
            }
        )
        h_ = chain_hash(prev, body)
        bodies.append({"seq": seq, "prev_hash": prev, "hash": h_, "body": body})
        prev = h_
    batches = []
    for i in range(0, n, BATCH):
        chunk = bodies[i : i + BATCH]
        batches.append(
            gzip.compress(
                json.dumps(
                    {
                        "epoch": 1,
                        "from_seq": chunk[0]["seq"],
                        "head_seq": chunk[-1]["seq"],
                        "head_hash": chunk[-1]["hash"],
                        "clock_offset_ms": 0,
                        "events": chunk,
                    }
                ).encode(),
                compresslevel=1,
            )
        )
    return batches


def run_backend(
    name: str, database: str, homes: list[Home], args: argparse.Namespace, root: Path
) -> dict[str, object]:
    it_home = root / f"it-{name}"
    storage = open_storage(database, Home(it_home))
    now = datetime.now(UTC)
    t0 = time.perf_counter()
    for home in homes:
        HomeReference(home, storage, _Clock()).refresh(force=True)
    setup_s = time.perf_counter() - t0
    # Gates: spread over the communities (the big one gets its share), tokens made here.
    gates: list[tuple[int, str, str]] = []
    for g in range(args.gates):
        cid = 5000 + g % len(homes)
        token = storage.add_gate(cid, f"g{g}", now=now).token
        gates.append((cid, f"g{g}", token))
    households = {c.community_id: c.households for c in storage.list_communities()}
    storage.close()
    server = Server(it_home, database, 2 if name == "postgresql" else 1)
    try:
        client = httpx.Client(timeout=120, verify=_TLS)
        enrolled = []
        for cid, _name, token in gates:
            key = (
                Ed25519PrivateKey.generate()
                .public_key()
                .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            )
            api = secrets.token_urlsafe(32)
            answer = client.post(
                server.url + "/v1/enroll",
                json={"token": token, "api_token": api, "public_key": key.hex()},
            ).json()
            enrolled.append((cid, answer["gate_id"], api))
        per_gate = args.events // args.gates
        by_community: dict[int, list[str]] = {}
        for cid, gid, _ in enrolled:
            by_community.setdefault(cid, []).append(gid)
        day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(
            days=1
        )
        t0 = time.perf_counter()
        work = []
        for i, (cid, gid, api) in enumerate(enrolled):
            mates = by_community[cid]
            mine = [h for h in range(1, households[cid] + 1) if h % len(mates) == mates.index(gid)]
            work.append((gid, api, day_of_events(gid, mine or [1], per_gate, day, i)))
        gen_s = time.perf_counter() - t0

        stop = threading.Event()
        pulls: list[float] = []
        big_gate = next(e for e in enrolled if e[0] == 5000)

        def puller() -> None:
            with httpx.Client(timeout=60, verify=_TLS) as c:
                after = 0
                h = {"Authorization": f"Bearer {big_gate[2]}"}
                while not stop.is_set():
                    t = time.perf_counter()
                    page = c.get(
                        server.url + "/v1/events", params={"after": after, "limit": 500}, headers=h
                    ).json()
                    pulls.append(time.perf_counter() - t)
                    after = 0 if not page["more"] else page["next_after"]
                    time.sleep(0.05)

        def push(item: tuple[str, str, list[bytes]]) -> int:
            _gid, api, batches = item
            n = 0
            with httpx.Client(timeout=300, verify=_TLS) as c:
                for body in batches:
                    r = c.post(
                        server.url + "/v1/push",
                        content=body,
                        headers={
                            "Authorization": f"Bearer {api}",
                            "Content-Encoding": "gzip",
                            "Content-Type": "application/json",
                        },
                    )
                    r.raise_for_status()
                    n += int(r.json()["inserted"])
            return n

        pull_thread = threading.Thread(target=puller, daemon=True)
        pull_thread.start()
        cpu0, client0 = server.cpu_seconds(), time.process_time()
        t0 = time.perf_counter()
        with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
            inserted = sum(pool.map(push, work))
        push_s = time.perf_counter() - t0
        push_cpu_s = server.cpu_seconds() - cpu0
        client_cpu_s = time.process_time() - client0
        stop.set()
        pull_thread.join()

        # A 3,000-household community's snapshot, and /v1/status of another gate meanwhile.
        statuses: list[float] = []
        done = threading.Event()
        other = next(e for e in enrolled if e[0] != 5000)

        def status_loop() -> None:
            with httpx.Client(timeout=60, verify=_TLS) as c:
                while not done.is_set():
                    t = time.perf_counter()
                    c.get(
                        server.url + "/v1/status", headers={"Authorization": f"Bearer {other[2]}"}
                    )
                    statuses.append(time.perf_counter() - t)
                    time.sleep(0.02)

        st = threading.Thread(target=status_loop, daemon=True)
        st.start()
        time.sleep(0.2)
        t0 = time.perf_counter()
        snap = client.get(
            server.url + "/v1/snapshot", headers={"Authorization": f"Bearer {big_gate[2]}"}
        )
        snap_s = time.perf_counter() - t0
        snap.raise_for_status()
        done.set()
        st.join()
        snap_events = len(snap.json()["events"])
        client.close()
    finally:
        server.stop()
    pulls.sort()
    return {
        "backend": name,
        "communities": len(homes),
        "households": sum(households.values()),
        "gates": len(enrolled),
        "events": inserted,
        "reference_load_s": round(setup_s, 1),
        "batch_generation_s": round(gen_s, 1),
        "push_s": round(push_s, 1),
        "events_per_s": round(inserted / push_s),
        # The server's own CPU (its processes; not PostgreSQL's, not the pushing clients').
        "server_cpu_s": round(push_cpu_s, 1),
        "server_cpu_us_per_event": round(1e6 * push_cpu_s / max(inserted, 1)),
        "client_cpu_s": round(client_cpu_s, 1),
        "pull_pages": len(pulls),
        "pull_p95_ms": round(1000 * pulls[int(0.95 * (len(pulls) - 1))], 1) if pulls else None,
        "pull_max_ms": round(1000 * pulls[-1], 1) if pulls else None,
        "snapshot_households": households[5000],
        "snapshot_events": snap_events,
        "snapshot_s": round(snap_s, 2),
        "status_during_snapshot_max_ms": round(1000 * max(statuses), 1) if statuses else None,
        "status_during_snapshot_median_ms": round(1000 * statistics.median(statuses), 1)
        if statuses
        else None,
    }


class _Clock:
    def now(self) -> datetime:
        return datetime.now(UTC)


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--full", action="store_true", help="The district: 2,000,000 events.")
    p.add_argument("--communities", type=int, default=52)
    p.add_argument("--households", type=int, default=148_702)
    p.add_argument("--big", type=int, default=3000, help="Households of the snapshot's community.")
    p.add_argument("--gates", type=int, default=250)
    p.add_argument("--events", type=int, default=100_000)
    p.add_argument("--concurrency", type=int, default=16, help="Gates pushing at the same moment.")
    p.add_argument("--backends", default="postgresql,sqlite")
    args = p.parse_args()
    if args.full:
        args.events = 2_000_000
    with tempfile.TemporaryDirectory(prefix="menwei-district-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        homes = make_communities(root, args.communities, args.households, args.big)
        print(
            f"{len(homes)} committee homes, {args.households} households: {time.perf_counter() - t0:.1f} s"
        )
        results = []
        for name in args.backends.split(","):
            cluster = None
            if name == "postgresql":
                cluster = PostgresCluster(
                    durable=True, settings={"shared_buffers": "256MB"}
                ).start()
                database = cluster.create_database("district")
            else:
                database = str(root / "district.db")
            try:
                result = run_backend(name, database, homes, args, root)
            finally:
                if cluster is not None:
                    cluster.stop()
            results.append(result)
            print(json.dumps(result, ensure_ascii=False))
        print()
        keys = [k for k in results[0] if k != "backend"]
        print(f"{'':34}" + "".join(f"{r['backend']:>14}" for r in results))
        for k in keys:
            print(f"{k:34}" + "".join(f"{r[k]!s:>14}" for r in results))


if __name__ == "__main__":
    main()
