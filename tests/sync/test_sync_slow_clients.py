"""Slow, idle and oversized clients against `menwei server run` (a real uvicorn process on
127.0.0.1) and against the app with short limits: the server answers the others all along."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from menwei.core.home import Home
from menwei.sync import tls
from menwei.sync.server.app import make_server_app
from menwei.sync.server.guard import Limits, make_server, raise_open_files_limit, server_config
from tests.sync.helpers import free_port, make_committee, running


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`menwei server run` on a free port, its log in tmp_path/server.log."""
    home, _ = make_committee(tmp_path / "committee")
    port = free_port()
    log = (tmp_path / "server.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "menwei", "server", "run", "--port", str(port)],
        env={**os.environ, "MENWEI_HOME": str(home.root)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(url + "/v1/health", timeout=1)
            break
        except httpx.HTTPError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                proc.wait(10)
                raise RuntimeError("the server did not start") from None
            time.sleep(0.1)
    try:
        yield url, proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()
        text = (tmp_path / "server.log").read_text(errors="replace")
        assert "Traceback" not in text, text[-3000:]


def closed(s: socket.socket) -> bool:
    """Whether the server closed this connection (within 5 s) without answering."""
    s.settimeout(5)
    try:
        return s.recv(1024) == b""
    except ConnectionResetError:
        return True


def connect(port: int, head: bytes) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(head)
    return s


def test_idle_connections_and_a_huge_enrollment_leave_health_answering(
    served: tuple[str, subprocess.Popen[bytes]],
) -> None:
    url, proc = served
    port = int(url.rsplit(":", 1)[1])
    raise_open_files_limit()
    before = rss_kib(proc.pid)
    # A 100 MB enrollment: refused from its header, the body never read.
    s = connect(
        port,
        b"POST /v1/enroll HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 104857600\r\n\r\n" + b"x" * 65536,
    )
    answer = s.recv(4096)
    s.close()
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"x-menwei-server-time" in answer.lower()
    # The same without a length (chunked): cut off after the first few KB.
    sent = 0

    def chunks() -> Iterator[bytes]:
        nonlocal sent
        for _ in range(20 * 1024):  # 20 MB in 1 KB pieces
            sent += 1024
            yield b"x" * 1024

    try:
        r = httpx.post(url + "/v1/enroll", content=chunks(), timeout=30)
        assert r.status_code == 413 and r.json()["error"] == "too_large"
    except httpx.TransportError:
        pass  # the server closed the connection while the body was still coming
    assert rss_kib(proc.pid) - before < 50 * 1024, "the server's memory did not grow"
    # 1,100 connections that send half a request head and then nothing.
    idle = []
    for _ in range(1100):
        try:
            idle.append(connect(port, b"GET /v1/health HTTP/1.1\r\nHost: x\r\n"))
        except OSError:
            break
    assert len(idle) == 1100
    try:
        health = httpx.get(url + "/v1/health", timeout=10)
        assert health.status_code == 200 and health.json()["status"] == "ok"
    finally:
        for s in idle:
            s.close()
    assert proc.poll() is None


def test_slow_heads_and_trickled_bodies_are_cut_off(tmp_path: Path) -> None:
    home, _ = make_committee(tmp_path / "committee")
    limits = Limits(header_timeout=1.0, body_timeout=1.0, max_connections=50)
    with running(Home(home.root), limits=limits) as server:
        port = server.port
        head = connect(port, b"GET /v1/health HTTP/1.1\r\n")
        body = connect(
            port,
            b"POST /v1/enroll HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 200\r\n\r\n{",
        )
        got = b""
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline and b"\r\n\r\n" not in got:
            try:
                body.sendall(b" ")  # one byte a second
            except OSError:
                break
            body.settimeout(1.0)
            with contextlib.suppress(TimeoutError):
                got += body.recv(4096)
        assert got.startswith(b"HTTP/1.1 408"), got[:200]
        assert b'"too_slow"' in got or b"too_slow" in body.recv(4096)
        assert closed(head), "an incomplete head is closed without an answer"
        # Past the cap, the longest-idle connection makes room: health still answers.
        idle = [connect(port, b"GET / HTTP/1.1\r\n") for _ in range(60)]
        try:
            assert httpx.get(server.url + "/v1/health", timeout=5).status_code == 200
            assert closed(idle[0])
        finally:
            for s in idle:
                s.close()
        head.close()
        body.close()


def test_a_tls_handshake_that_never_comes_is_cut_off(tmp_path: Path) -> None:
    home, _ = make_committee(tmp_path / "committee")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    tls.make_self_signed(cert, key)
    limits = Limits(tls_handshake_timeout=1.0)
    app = make_server_app(home, limits=limits)
    port = free_port()
    server = make_server(
        server_config(
            app,
            host="127.0.0.1",
            port=port,
            limits=limits,
            ssl_certfile=str(cert),
            ssl_keyfile=str(key),
            log_level="warning",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "no server"
            time.sleep(0.01)
        silent = socket.create_connection(("127.0.0.1", port))
        assert closed(silent), "no handshake: closed after the handshake timeout"
        pem = cert.read_text()
        with httpx.Client(verify=tls.pinned_context(pem)) as client:
            assert client.get(f"https://127.0.0.1:{port}/v1/health").status_code == 200
        silent.close()
    finally:
        server.should_exit = True
        thread.join(10)
        app.state.storage.close()


def test_trickled_bodies_cannot_hold_every_connection(tmp_path: Path) -> None:
    home, _ = make_committee(tmp_path / "committee")
    limits = Limits(body_timeout=60.0, max_connections=20)
    with running(Home(home.root), limits=limits) as server:
        slow = [
            connect(
                server.port,
                b"POST /v1/enroll HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 200\r\n\r\n{",
            )
            for _ in range(25)
        ]
        try:
            time.sleep(0.5)  # every one of them is reading its body now
            assert httpx.get(server.url + "/v1/health", timeout=5).status_code == 200
            assert closed(slow[0]), "the oldest trickle made room"
        finally:
            for s in slow:
                s.close()
