"""Helpers for the sync tests: a real server on 127.0.0.1, a committee home, gate homes, faults.

Run as a script, it serves a home's community (optionally dying in the middle of a batch):
`python -m tests.sync.helpers HOME PORT [--die-after N]`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from menwei.core.clock import Clock, FrozenClock
from menwei.core.community import init_community
from menwei.core.gate import GateService
from menwei.core.home import Home
from menwei.core.issuing import issue
from menwei.core.store import Store
from menwei.sync.client import SyncResult, sync_once
from menwei.sync.enrollment import enroll
from menwei.sync.server.app import make_server_app
from menwei.sync.server.backends import open_storage
from menwei.sync.server.guard import make_server, server_config
from menwei.sync.server.sqlite import SqlStorage
from tests.sync.postgres import PostgresCluster

T0 = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
# Valid at T0 and at the machine's date, whatever it is (some tests run the CLI on the real clock).
PASS_UNTIL = max(T0.date(), date.today()) + timedelta(days=400)
COMMUNITY = 4201
HOUSEHOLDS = [
    (1203, "3", "2", "301", "3", 3, "normal"),
    (1204, "3", "2", "302", "3", 2, "normal"),
    (2101, "7", "1", "101", "5", 1, "elderly_alone"),
    (2102, "7", "1", "102", "5", 4, "returning_worker"),
    (3301, "12", "1", "601", "8", 2, "normal"),
]
NUMBERS = [h[0] for h in HOUSEHOLDS]


@dataclass
class Backend:
    """The storage the servers of a test run on: SQLite files, or databases of a throwaway
    PostgreSQL (one per committee home). The contract tests run once for each."""

    name: str
    cluster: PostgresCluster | None = None
    databases: dict[Path, str] = field(default_factory=dict)

    def database(self, home: Home) -> str | None:
        """The `--database` of the home's server (None: its SQLite file)."""
        if self.cluster is None:
            return None
        root = home.root.resolve()
        if root not in self.databases:
            name = f"t{len(self.databases)}_{os.getpid()}_{abs(hash(root)) % 10**8}"
            self.cluster.create_database(name)
            self.databases[root] = name
        return self.cluster.url(self.databases[root])

    def open(self, home: Home) -> SqlStorage:
        return open_storage(self.database(home), home, pool_size=4)

    def backup(self, home: Home, dest: Path) -> None:
        """A consistent copy of the server's database (last night's backup)."""
        if self.cluster is None:
            copy_db(home.server_dir / "server.db", dest)
        else:
            self.database(home)
            self.cluster.dump(self.databases[home.root.resolve()], dest)

    def restore(self, home: Home, src: Path) -> None:
        if self.cluster is None:
            restore_db(src, home.server_dir / "server.db")
        else:
            self.database(home)
            self.cluster.restore(self.databases[home.root.resolve()], src)


# Set by the `backend` fixture (tests/sync/conftest.py) for the contract tests.
BACKEND = Backend("sqlite")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def add_households(store: Store, rows: list[tuple[int, str, str, str, str, int, str]]) -> None:
    with store.write() as db:
        for r in rows:
            db.execute(
                "insert into households (household, building, unit, room, building_group,"
                " members, category, updated_at) values (?, ?, ?, ?, ?, ?, ?, ?)",
                [*r, "2026-11-01T00:00:00.000Z"],
            )


def make_committee(
    root: Path,
    *,
    households: int | None = None,
    community: int = COMMUNITY,
    name: str = "钟楼居民区",
) -> tuple[Home, dict[int, str]]:
    """A committee home (the server's): a community, households and their passes."""
    home = Home(root)
    init_community(home, community=community, name=name, now=T0 - timedelta(days=30))
    store = Store.open(home.db_path)
    try:
        rows = HOUSEHOLDS
        if households is not None:
            rows = [
                (1000 + i, str(i % 50), "1", str(100 + i), str(i % 10), 2, "normal")
                for i in range(1, households + 1)
            ]
        add_households(store, rows)
        issued = issue(
            home, store, households=None, now=T0 - timedelta(days=30), valid_until=PASS_UNTIL
        )
    finally:
        store.close()
    return home, {p.household.number: p.code for p in issued}


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # runs in a thread
        pass


@dataclass
class ThreadedServer:
    """The real server app on uvicorn, in a thread, on a free port of 127.0.0.1."""

    home: Home
    clock: Clock | None = None
    port: int = field(default_factory=free_port)
    kwargs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        kwargs = dict(self.kwargs)
        kwargs.setdefault("storage", BACKEND.open(self.home))
        self.app = make_server_app(self.home, clock=self.clock, **kwargs)
        config = server_config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            limits=self.app.state.limits,
            log_level="warning",
        )
        self.server = _Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def storage(self) -> SqlStorage:
        storage = self.app.state.storage
        assert isinstance(storage, SqlStorage)
        return storage

    def start(self) -> ThreadedServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.storage.close()

    def token(self, name: str) -> str:
        # Made on the server's clock, which may be a frozen one: a token's expiry is its business.
        now = self.clock.now() if self.clock is not None else datetime.now(UTC)
        return self.storage.add_gate(COMMUNITY, name, now=now).token


@contextlib.contextmanager
def running(home: Home, clock: Clock | None = None, **kwargs: Any) -> Iterator[ThreadedServer]:
    server = ThreadedServer(home, clock=clock, kwargs=kwargs).start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class Gate:
    """An enrolled gate home with its gate service (a frozen clock shared with the test)."""

    home: Home
    clock: FrozenClock
    service: GateService

    @property
    def store(self) -> Store:
        return self.service.store

    def scan(
        self, code: str, *, direction: str = "auto", step: timedelta = timedelta(minutes=1)
    ) -> Any:
        self.clock.advance(step)
        return self.service.decide(code, operator="t", direction=direction)  # type: ignore[arg-type]

    def sync(self, transport: httpx.BaseTransport | None = None, **kwargs: Any) -> SyncResult:
        result = sync_once(
            self.home, store=self.store, transport=transport, clock=self.clock, **kwargs
        )
        self.service.reload()
        return result

    def state(self) -> dict[int, str]:
        return {
            int(r["household"]): r["state"]
            for r in self.store.query("select household, state from household_state")
        }

    def event_ids(self) -> set[str]:
        return {r["event_id"] for r in self.store.query("select event_id from events")}

    def reopen(self) -> None:
        self.service.store.close()
        self.service = GateService(Store.open(self.home.db_path), clock=self.clock)

    def close(self) -> None:
        self.service.store.close()


def make_gate(root: Path, server_url: str, token: str, clock: FrozenClock) -> Gate:
    home = Home(root)
    enroll(home, server_url, token, clock=clock)
    return Gate(home, clock, GateService(Store.open(home.db_path), clock=clock))


def copy_db(src: Path, dst: Path) -> None:
    """A consistent copy of a live SQLite database (what a backup tool would take)."""
    dst.unlink(missing_ok=True)
    for suffix in ("-wal", "-shm"):
        Path(str(dst) + suffix).unlink(missing_ok=True)
    with (
        contextlib.closing(sqlite3.connect(src)) as a,
        contextlib.closing(sqlite3.connect(dst)) as b,
    ):
        a.backup(b)


def restore_db(copy: Path, live: Path) -> None:
    for suffix in ("-wal", "-shm"):
        Path(str(live) + suffix).unlink(missing_ok=True)
    shutil.copyfile(copy, live)


def presence_states(server: ThreadedServer | SqlStorage) -> dict[int, str]:
    storage = server.storage if isinstance(server, ThreadedServer) else server
    return {h: p.state for h, p in storage.presence(COMMUNITY).items()}


@dataclass
class World:
    """A committee home, its server on 127.0.0.1 and enrolled gates, on one test clock."""

    root: Path
    home: Home
    codes: dict[int, str]
    clock: FrozenClock
    server: ThreadedServer
    gates: list[Gate] = field(default_factory=list)

    def add_gate(self, name: str, clock: FrozenClock | None = None) -> Gate:
        gate = make_gate(
            self.root / f"gate-{name}",
            self.server.url,
            self.server.token(name),
            clock or self.clock,
        )
        self.gates.append(gate)
        return gate

    def server_event_ids(self) -> list[str]:
        return self.server.storage.event_ids(COMMUNITY)

    def anomalies(self, *, withdrawn: bool = False) -> set[tuple[str, tuple[str, ...]]]:
        return {
            (a.kind, tuple(a.event_ids))
            for a in self.server.storage.list_anomalies(COMMUNITY, include_withdrawn=withdrawn)
            if withdrawn or a.status == "open"
        }

    def kinds(self) -> list[str]:
        return sorted(a.kind for a in self.server.storage.list_anomalies(COMMUNITY))

    def close(self) -> None:
        for g in self.gates:
            g.close()


@contextlib.contextmanager
def world(root: Path, *, clock: FrozenClock | None = None, **kwargs: Any) -> Iterator[World]:
    home, codes = make_committee(root / "committee")
    clock = clock or FrozenClock(T0)
    with running(home, clock=clock, **kwargs) as server:
        w = World(root, home, codes, clock, server)
        try:
            yield w
        finally:
            w.close()
            if w.server is not server:  # a test put another server in its place: stop it too
                w.server.stop()


# --- fault injection -----------------------------------------------------------------------------


class FaultyTransport(httpx.BaseTransport):
    """A real HTTP transport with faults on chosen pushes.

    `plan` maps the n-th push (1-based) to a fault: "before" (the connection drops before the
    request leaves), "after" (the server commits, the answer is lost), "duplicate" (sent twice).
    Every push body that reached the server is kept in `delivered`, for replays.
    """

    def __init__(self, plan: dict[int, str] | None = None, verify: Any = True) -> None:
        self.inner = httpx.HTTPTransport(verify=verify)
        self.plan = dict(plan or {})
        self.pushes = 0
        self.delivered: list[httpx.Request] = []
        self.offline = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.offline:
            raise httpx.ConnectError("network unreachable", request=request)
        if not request.url.path.endswith("/v1/push"):
            return self.inner.handle_request(request)
        self.pushes += 1
        fault = self.plan.get(self.pushes)
        if fault == "before":
            raise httpx.ConnectError("connection dropped before sending", request=request)
        request.read()
        response = self.inner.handle_request(request)
        response.read()
        self.delivered.append(request)
        if fault == "after":
            raise httpx.ReadError("connection dropped after the server committed", request=request)
        if fault == "duplicate":
            again = self.inner.handle_request(request)
            again.read()
            return again
        return response

    def close(self) -> None:
        self.inner.close()


def replay(url: str, request: httpx.Request) -> httpx.Response:
    """Send a captured push again, as a late or duplicated packet would arrive."""
    with httpx.Client() as c:
        return c.post(
            url + "/v1/push",
            content=request.content,
            headers={k: v for k, v in request.headers.items() if k.lower() != "host"},
        )


# --- a server process ----------------------------------------------------------------------------


class ServerProcess:
    """`python -m tests.sync.helpers HOME PORT`, killable with SIGKILL."""

    def __init__(self, home: Home, port: int, *, die_after: int | None = None) -> None:
        args = [sys.executable, "-m", "tests.sync.helpers", str(home.root), str(port)]
        database = BACKEND.database(home)
        if database is not None:
            args += ["--database", database]
        if die_after is not None:
            args += ["--die-after", str(die_after)]
        self.port = port
        self.proc = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=Path(__file__).parents[2]
        )
        deadline = time.monotonic() + 20
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited: {self.proc.stderr.read()!r}")  # type: ignore[union-attr]
            try:
                httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=1)
                return
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    self.kill()
                    raise RuntimeError("the server did not start") from None
                time.sleep(0.05)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        if self.proc.stderr is not None:
            self.proc.stderr.close()


def _serve(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("home")
    parser.add_argument("port", type=int)
    parser.add_argument("--die-after", type=int)
    parser.add_argument("--database")
    args = parser.parse_args(argv)
    home = Home(Path(args.home))
    storage = open_storage(args.database, home)
    if args.die_after is not None:
        # Die (as a power cut would) in the middle of a push, after N events went in.
        from menwei.sync.server import ingest

        count = {"n": 0}
        original: Callable[..., None] = ingest.Ingest._store_event

        def dying(self: ingest.Ingest, *a: Any, **kw: Any) -> None:
            count["n"] += 1
            if count["n"] > args.die_after:
                os._exit(9)
            original(self, *a, **kw)

        ingest.Ingest._store_event = dying  # type: ignore[method-assign]
    app = make_server_app(home, storage=storage)
    config = server_config(
        app, host="127.0.0.1", port=args.port, limits=app.state.limits, log_level="warning"
    )
    make_server(config).run()


if __name__ == "__main__":
    _serve(sys.argv[1:])
