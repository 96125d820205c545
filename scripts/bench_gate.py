"""Benchmark: decide and record one scan with many households and a long log.

    python scripts/bench_gate.py [--households 150000] [--events 10000000] [--scans 2000]

A community holds at most 65,535 households (the pass format's household field is 16 bits), so
--households above that is capped: 150,000 households only exist across a district's communities,
each with its own gate database. Builds a community in a temporary home (kept with --keep), fills the log with synthetic events
spread over a year, then times `GateService.decide` on real signed passes: recorded (WAL,
synchronous=FULL) and dry-run. Prints median, p95 and p99 in milliseconds.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from menwei.core import integrity
from menwei.core import keys as keymod
from menwei.core.clock import FrozenClock, iso
from menwei.core.community import adopt_policy, init_community
from menwei.core.eventlog import uuid7
from menwei.core.gate import GateService
from menwei.core.home import Home
from menwei.core.ordering import order_key, wall_ms
from menwei.core.passes import PassData, sign
from menwei.core.store import Store

POLICY = """
max_time_out = "2h"
[quota]
trips = 3
days = 2
""" + "".join(
    f'[[windows]]\ngroups = ["{g}"]\nstart = "06:00"\nend = "22:00"\n' for g in range(1, 51)
)


def fill(store: Store, households: int, events: int) -> None:
    rng = random.Random(1)
    now = iso(datetime.now(UTC))
    with store.write() as db:
        db.conn.executemany(
            "insert into households (household, building, unit, room, building_group, members,"
            " category, updated_at) values (?, ?, ?, ?, ?, ?, 'normal', ?)",
            (
                (n, str(n // 60 + 1), "1", str(100 + n % 60), str(n % 50 + 1), 3, now)
                for n in range(1, households + 1)
            ),
        )
    start = datetime(2025, 11, 24, tzinfo=UTC)
    step = timedelta(days=365) / max(events, 1)
    batch = 200_000
    seq = 0
    t0 = time.perf_counter()
    while seq < events:
        rows = []
        for _ in range(min(batch, events - seq)):
            seq += 1
            at = start + step * seq
            h = rng.randint(1, households)
            kind = "exit" if seq % 2 else "entry"
            eid = uuid7(at)
            rows.append(
                (
                    seq,
                    eid,
                    "gate-1",
                    1,
                    kind,
                    kind,
                    h,
                    1,
                    "green",
                    "ok",
                    "bench",
                    1,
                    "camera",
                    iso(at),
                    seq,
                    1,
                    "{}",
                    "0" * 64,
                    "0" * 64,
                    order_key(wall_ms(at), "gate-1", seq, eid),
                )
            )
        with store.write() as db:
            db.conn.executemany(
                "insert into events (seq, event_id, gate_id, epoch, kind, direction, household,"
                " serial, verdict, reason, operator, headcount, source, wall_time, mono_ns,"
                " policy_version, body, prev_hash, hash, okey) values"
                " (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        print(f"  {seq:>10,} events  ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--households", type=int, default=150_000)
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--scans", type=int, default=2000)
    ap.add_argument("--dir", type=Path)
    args = ap.parse_args()
    if args.households > 65535:
        print(f"capping {args.households:,} households at 65,535 (one community's maximum)")
        args.households = 65535
    root = args.dir or Path(tempfile.mkdtemp(prefix="menwei-bench-"))
    home = Home(root / "home")
    at = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
    if not home.db_path.exists():
        init_community(home, community=42, name="bench", now=at)
        store = Store.open(home.db_path)
        t = time.perf_counter()
        fill(store, args.households, args.events)
        print(f"filled in {time.perf_counter() - t:.0f} s", file=sys.stderr)
        adopt_policy(store, POLICY)
        store.close()
    store = Store.open(home.db_path)
    key = keymod.read_private(home.signing_key_path(0))
    rng = random.Random(2)
    codes = [
        sign(PassData(0, 42, rng.randint(1, args.households), 1, date(2027, 6, 1)), key)
        for _ in range(args.scans)
    ]
    clock = FrozenClock(at)
    gate = GateService(store, clock=clock)
    for label, dry in (("dry-run (decide only)", True), ("recorded (decide + commit)", False)):
        times = []
        for code in codes:
            clock.advance(timedelta(seconds=7))
            t = time.perf_counter()
            gate.decide(code, operator="bench", dry_run=dry)
            times.append((time.perf_counter() - t) * 1000)
        print(
            f"{label:<28} n={len(times)}  median {statistics.median(times):.3f} ms  "
            f"p95 {pct(times, 0.95):.3f} ms  p99 {pct(times, 0.99):.3f} ms"
        )
    t = time.perf_counter()
    # What the gate app and `menwei check` run at start (the synthetic events carry no real
    # chain, so the chain part reports a break here; only its time matters).
    integrity.quick_check(store.db.conn, home.db_path)
    print(f"start-up quick check (quick_check + newest chain)  {time.perf_counter() - t:.2f} s")
    count = store.one("select count(*) as n from events")
    size = home.db_path.stat().st_size / 1e9
    print(
        f"households {args.households:,}  events {count['n'] if count else 0:,}  "
        f"database {size:.2f} GB  ({root})"
    )


if __name__ == "__main__":
    main()
