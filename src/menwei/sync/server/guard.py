"""What keeps one client from exhausting the community server: limits on requests and connections.

- `Guard` (ASGI, outermost): the server's time on every answer (errors included), a body limit
  per endpoint checked before and while reading, a deadline for the whole body, and a JSON 500
  (logged with its traceback) instead of a bare one if a bug ever slips through.
- `GuardedH11Protocol` (uvicorn): a connection must send a complete request head within
  `header_timeout` seconds (after connecting, or after its previous answer), and at most
  `max_connections` are open at once: past that, the longest-idle connection is closed to make
  room, so idle or slow clients can never keep a gate (or `/v1/health`) out.
- `AuthThrottle`: failed authentications are logged and, past a number per minute from one
  address, answered 429 without looking at the token.

The numbers are in `Limits`, and in docs/sync.md ("Limits").
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import resource
import socket
import sys
import time
import traceback
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import h11
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from uvicorn.protocols.http.h11_impl import H11Protocol

from menwei.core.clock import Clock, iso
from menwei.sync.protocol import (
    MAX_BODY_BYTES,
    MAX_ENROLL_BODY_BYTES,
    MAX_OTHER_BODY_BYTES,
    SERVER_TIME_HEADER,
)

log = logging.getLogger("menwei.server")

SWITCH_INTERVAL_S = 0.0005

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass(frozen=True)
class Limits:
    """The server's limits (sizes in bytes, times in seconds)."""

    push_body_bytes: int = MAX_BODY_BYTES
    enroll_body_bytes: int = MAX_ENROLL_BODY_BYTES
    other_body_bytes: int = MAX_OTHER_BODY_BYTES
    # A body must arrive within body_timeout + its size at body_min_rate bytes a second.
    body_timeout: float = 10.0
    body_min_rate: int = 32 * 1024
    header_timeout: float = 10.0
    # A TLS connection costs its memory from the moment it is accepted: its handshake must end
    # within this (asyncio's default is 60 s).
    tls_handshake_timeout: float = 10.0
    keep_alive: int = 5
    max_header_bytes: int = 16 * 1024
    # Each open TLS connection costs about 300 KB (asyncio's buffers): 512 stay under 160 MB.
    max_connections: int = 512
    auth_failures_per_minute: int = 20

    def body_limit(self, path: str) -> int:
        if path == "/v1/push":
            return self.push_body_bytes
        if path == "/v1/enroll":
            return self.enroll_body_bytes
        return self.other_body_bytes


class BodyRefused(StarletteHTTPException):
    """A body over its endpoint's limit, or one that arrives too slowly."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(status, message, headers={"Connection": "close"})
        self.code = code


def _error_body(clock: Clock, status: int, code: str, message: str) -> bytes:
    return json.dumps(
        {"error": code, "message": message, "server_time": iso(clock.now())}, ensure_ascii=False
    ).encode("utf-8")


class Guard:
    """The outermost ASGI layer of the server app (see the module's docstring)."""

    def __init__(self, app: ASGIApp, clock: Clock, limits: Limits) -> None:
        self.app = app
        self.clock = clock
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def stamped(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = list(message.get("headers", []))
                headers.append(
                    (SERVER_TIME_HEADER.lower().encode(), iso(self.clock.now()).encode())
                )
                message["headers"] = headers
            await send(message)

        async def refuse(status: int, code: str, message: str, *, close: bool) -> None:
            body = _error_body(self.clock, status, code, message)
            headers = [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ]
            if close:
                headers.append((b"connection", b"close"))
            await stamped({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        limit = self.limits.body_limit(str(scope.get("path", "")))
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await refuse(413, "too_large", f"The body is over {limit} bytes.", close=True)
            return
        loop = asyncio.get_running_loop()
        expected = declared if declared is not None else limit
        deadline = (
            loop.time() + self.limits.body_timeout + expected / max(1, self.limits.body_min_rate)
        )
        received = 0
        body_done = False

        async def guarded_receive() -> Message:
            nonlocal received, body_done
            if body_done:
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise BodyRefused(
                    408, "too_slow", "The body did not arrive in time: send it again."
                ) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyRefused(413, "too_large", f"The body is over {limit} bytes.")
                body_done = not message.get("more_body", False)
            return message

        try:
            await self.app(scope, guarded_receive, stamped)
        except BodyRefused as exc:
            if not started:
                await refuse(exc.status_code, exc.code, str(exc.detail), close=True)
        except ClientDisconnect:
            pass  # the client went away in the middle of its request: nobody to answer
        except Exception:
            log.error(
                "error answering %s %s:\n%s",
                scope.get("method"),
                scope.get("path"),
                traceback.format_exc(),
            )
            if not started:
                await refuse(500, "server_error", "The server failed on this request.", close=True)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


# --- failed authentications ----------------------------------------------------------------------


class AuthThrottle:
    """Failed authentications per client address over the last minute (monotonic time)."""

    WINDOW = 60.0
    MAX_ADDRESSES = 10_000

    def __init__(self, per_minute: int, now: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.now = now
        self.failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, address: str) -> deque[float]:
        times = self.failures.get(address)
        if times is None:
            return deque()
        cutoff = self.now() - self.WINDOW
        while times and times[0] < cutoff:
            times.popleft()
        if not times:
            del self.failures[address]
        return times

    def blocked(self, address: str) -> float:
        """Seconds until `address` may try again (0: it may now)."""
        times = self._recent(address)
        if len(times) < self.per_minute:
            return 0.0
        return max(1.0, times[-self.per_minute] + self.WINDOW - self.now())

    def failed(self, address: str) -> int:
        """Count a failure; return the failures in the last minute."""
        times = self._recent(address)
        times.append(self.now())
        self.failures[address] = times
        self.failures.move_to_end(address)
        while len(self.failures) > self.MAX_ADDRESSES:
            self.failures.popitem(last=False)
        return len(times)


# --- connections ---------------------------------------------------------------------------------


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a request-head timeout and a cap on open connections."""

    limits = Limits()

    _waiting_since: float | None = None
    _waiting_cycle: Any = None
    _head_timer: asyncio.TimerHandle | None = None
    _head_at: float | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # asyncio sets TCP_NODELAY only on sockets it made with proto=IPPROTO_TCP; a socket bound
        # beforehand (the worker processes share one) has proto 0, so a keep-alive answer would
        # wait ~40 ms on the client's delayed ACK (Nagle). Set it on every TCP connection.
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._wait_for_head()
        if len(self.connections) > self.limits.max_connections:
            self._make_room()

    def _make_room(self) -> None:
        """Close the longest-idle connection; failing that, the one whose body has been
        arriving the longest (a gate's push takes a second on a LAN: that is an attacker's
        trickle); failing that, refuse this one."""
        others = [
            c for c in self.connections if c is not self and isinstance(c, GuardedH11Protocol)
        ]
        idle = [c for c in others if c._waiting_since is not None]
        if idle:
            min(idle, key=lambda c: c._waiting_since or 0.0)._close_idle()
            return
        slow = [c for c in others if c._body_since is not None]
        if slow:
            oldest = min(slow, key=lambda c: c._body_since or 0.0)
            log.warning("closing the slowest body (from %s) to make room", _peer(oldest))
            oldest._close_idle()
            return
        log.warning("connection refused: %d connections are all busy", len(self.connections))
        self.transport.close()

    @property
    def _body_since(self) -> float | None:
        """Since when this connection's request body has been arriving (None: not now)."""
        if self._head_at is None or self.conn.their_state is not h11.SEND_BODY:
            return None
        return self._head_at

    def _wait_for_head(self) -> None:
        self._waiting_since = self.loop.time()
        self._waiting_cycle = self.cycle
        if self._head_timer is not None:
            self._head_timer.cancel()
        self._head_timer = self.loop.call_later(self.limits.header_timeout, self._close_idle)

    def _got_head(self) -> None:
        self._head_at = self.loop.time() if self._waiting_since is not None else self._head_at
        self._waiting_since = None
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _close_idle(self) -> None:
        self._got_head()
        if not self.transport.is_closing():
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._waiting_since is not None and self.cycle is not self._waiting_cycle:
            self._got_head()  # a new request's head is complete

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and (self.cycle is None or self.cycle.response_complete):
            self._wait_for_head()
            # A pipelined request may already have started with the previous answer.
            if self.cycle is not None and not self.cycle.response_complete:
                self._got_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._got_head()
        super().connection_lost(exc)


def make_server(config: Any) -> Any:
    """A uvicorn server for `config` (from `server_config`) that also bounds TLS handshakes."""
    import uvicorn

    class GuardedServer(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            limits: Limits = getattr(self.config.http_protocol_class, "limits", Limits())
            loop = asyncio.get_running_loop()
            original = loop.create_server

            async def create_server(*args: Any, **kwargs: Any) -> Any:
                if kwargs.get("ssl") is not None:
                    kwargs.setdefault("ssl_handshake_timeout", limits.tls_handshake_timeout)
                return await original(*args, **kwargs)

            loop.create_server = create_server  # type: ignore[method-assign]
            try:
                await super().startup(sockets)
            finally:
                del loop.create_server

    # Pushes are CPU work in threads; a pull or /v1/status waiting for the GIL would wait the
    # default 5 ms at each hand-over (tens of them per answer). A shorter interval keeps those
    # answers quick while pushes run, for a few percent of push throughput.
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    return GuardedServer(config)


def serve_workers(config: Any, workers: int) -> None:
    """Run `workers` processes of the server on one listening socket, until SIGTERM or SIGINT.

    Each worker is a fork of this process that builds its own app (and connection pool) from
    `config`'s factory and serves through `make_server`, so every worker keeps the same limits
    (connections, request heads, TLS handshakes). A worker that dies is started again, at most
    once a second; stopping the server stops every worker and waits for them.
    """
    import signal

    sock = config.bind_socket()
    children: set[int] = set()
    stopping = False

    def start() -> None:
        pid = os.fork()
        if pid == 0:  # the worker
            code = 0
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                make_server(config).run(sockets=[sock])
            except BaseException:
                log.exception("worker %d failed", os.getpid())
                code = 1
            finally:
                os._exit(code)
        children.add(pid)

    def stop(signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                children.discard(pid)

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        for _ in range(workers):
            start()
        last_restart = 0.0
        while children:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            except InterruptedError:  # pragma: no cover - PEP 475 retries os.wait
                continue
            children.discard(pid)
            if not stopping:
                log.warning("worker %d ended (status %d): starting another", pid, status)
                time.sleep(max(0.0, 1.0 - (time.monotonic() - last_restart)))
                last_restart = time.monotonic()
                if not stopping:
                    start()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        sock.close()


def _peer(protocol: H11Protocol) -> str:
    client = getattr(protocol, "client", None)
    return str(client[0]) if client else "?"


def guarded_protocol(limits: Limits) -> type[GuardedH11Protocol]:
    return type("GuardedH11", (GuardedH11Protocol,), {"limits": limits})


def raise_open_files_limit(wanted: int = 65536) -> int:
    """Raise this process's soft limit on open files towards its hard limit; return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return int(soft)


def server_config(
    app: Any,
    *,
    host: str,
    port: int,
    limits: Limits | None = None,
    ssl_certfile: str | None = None,
    ssl_keyfile: str | None = None,
    log_level: str = "info",
    factory: bool = False,
    workers: int = 1,
) -> Any:
    """The uvicorn configuration of the community server, with its limits on connections.

    `app` may be an import string naming an app factory (`factory=True`) for `workers` processes.
    """
    import uvicorn

    limits = limits or Limits()
    open_files = raise_open_files_limit()
    if open_files != resource.RLIM_INFINITY and limits.max_connections > open_files - 64:
        # Stay below the open-files limit so a new connection can always be accepted.
        limits = Limits(**{**limits.__dict__, "max_connections": max(16, open_files - 64)})
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=guarded_protocol(limits),
        ssl_certfile=ssl_certfile,
        ssl_keyfile=ssl_keyfile,
        log_level=log_level,
        lifespan="off",
        timeout_keep_alive=limits.keep_alive,
        h11_max_incomplete_event_size=limits.max_header_bytes,
        backlog=2048,
        factory=factory,
        workers=workers,
    )
