"""The server over real HTTP: tokens, enrollment, bodies it must refuse, events it must keep."""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from menwei.core.eventlog import canonical, chain_hash
from menwei.sync.client import SyncRefused, build_batch
from menwei.sync.credentials import Credentials
from menwei.sync.protocol import SERVER_TIME_HEADER, PushBatch, WireEvent
from menwei.sync.server.app import make_server_app
from tests.sync.helpers import COMMUNITY, Backend, Gate, World, world

pytestmark = pytest.mark.usefixtures("backend")


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    with world(tmp_path, max_body_bytes=64 * 1024, max_decompressed_bytes=256 * 1024) as w:
        yield w


def test_the_server_runs_on_the_backend_under_test(w: World, backend: Backend) -> None:
    expected = {"sqlite": "SqliteStorage", "postgresql": "PostgresStorage"}[backend.name]
    assert type(w.server.storage).__name__ == expected
    assert w.server.storage.dialect == backend.name


def token_of(gate: Gate) -> str:
    return Credentials.load(gate.home).api_token


def post(w: World, body: bytes, token: str | None, **headers: str) -> httpx.Response:
    h = {"Content-Type": "application/json", **headers}
    if token:
        h["Authorization"] = f"Bearer {token}"
    return httpx.post(w.server.url + "/v1/push", content=body, headers=h)


def push(w: World, gate: Gate, batch: PushBatch | dict[str, Any]) -> dict[str, Any]:
    data = batch.model_dump_json() if isinstance(batch, PushBatch) else json.dumps(batch)
    r = post(w, gzip.compress(data.encode()), token_of(gate), **{"Content-Encoding": "gzip"})
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


def edit(ev: WireEvent, **changes: Any) -> None:
    """Change an event's body (its hash is left as it was)."""
    ev.body = canonical({**json.loads(ev.body), **changes})


def test_health_docs_and_the_server_time_on_every_answer(w: World) -> None:
    health = httpx.get(w.server.url + "/v1/health")
    assert health.json()["community_id"] == COMMUNITY
    assert health.json()["server_time"] == "2026-11-24T02:00:00.000Z"
    # No API documentation unless asked for (`server run --api-docs`), and never a UI.
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert httpx.get(w.server.url + path).status_code == 404
    spec = make_server_app(w.home, storage=w.server.storage, api_docs=True).openapi()
    assert {"/v1/push", "/v1/events", "/v1/reference", "/v1/snapshot", "/v1/enroll"} <= set(
        spec["paths"]
    )
    assert "requestBody" in spec["paths"]["/v1/push"]["post"]
    refused = httpx.get(w.server.url + "/v1/status")
    assert refused.status_code == 401
    assert refused.headers[SERVER_TIME_HEADER] == "2026-11-24T02:00:00.000Z"
    assert refused.json()["server_time"] == "2026-11-24T02:00:00.000Z"
    assert httpx.get(w.server.url + "/nowhere").headers[SERVER_TIME_HEADER]


def test_missing_wrong_and_revoked_tokens(w: World) -> None:
    a = w.add_gate("A")
    assert post(w, b"{}", None).json()["error"] == "unauthorized"
    wrong = post(w, b"{}", "x" * 43)
    assert wrong.status_code == 401 and wrong.json()["error"] == "unauthorized"
    for path in ("/v1/events", "/v1/reference", "/v1/snapshot", "/v1/anomalies", "/v1/status"):
        assert (
            httpx.get(w.server.url + path, headers={"Authorization": "Basic abc"}).status_code
            == 401
        )
    a.scan(w.codes[1203])
    a.sync()
    w.server.storage.revoke_gate(COMMUNITY, "A", now=w.clock.now())
    r = httpx.get(w.server.url + "/v1/status", headers={"Authorization": f"Bearer {token_of(a)}"})
    # Its token hash is gone: the server no longer knows the token at all.
    assert r.status_code == 401 and r.json()["error"] == "unauthorized"
    a.scan(w.codes[1203])
    with pytest.raises(SyncRefused) as refused:
        a.sync()
    assert refused.value.exit_code == 3
    assert "IT person" in refused.value.message
    assert len(w.server_event_ids()) == 1, "nothing from a revoked gate"
    # Enrolled again (same name, new token): its log goes on in a new epoch, nothing twice.
    from menwei.sync.enrollment import enroll

    enroll(a.home, w.server.url, w.server.token("A"), clock=w.clock)
    a.reopen()
    assert a.service.epoch == 2
    result = a.sync()
    assert (result.pushed, result.duplicates) == (1, 1)
    assert len(w.server_event_ids()) == 2
    assert w.anomalies() == set()


def test_enrollment_tokens_are_one_time(w: World, tmp_path: Path) -> None:
    token = w.server.token("A")
    body = {"token": token, "api_token": "a" * 40, "public_key": "0" * 64}
    first = httpx.post(w.server.url + "/v1/enroll", json=body)
    assert first.status_code == 200 and first.json()["gate_id"] == "c4201-g1"
    again = httpx.post(w.server.url + "/v1/enroll", json=body)  # the answer was lost: same one
    assert again.json() == first.json()
    other = httpx.post(w.server.url + "/v1/enroll", json={**body, "api_token": "b" * 40})
    assert other.status_code == 401 and other.json()["error"] == "enroll_token_used"
    unknown = httpx.post(w.server.url + "/v1/enroll", json={**body, "token": "z" * 32})
    assert unknown.json()["error"] == "enroll_token_unknown"
    late = w.server.token("B")
    w.clock.advance(timedelta(hours=73))
    expired = httpx.post(w.server.url + "/v1/enroll", json={**body, "token": late})
    assert expired.json()["error"] == "enroll_token_expired"
    short = httpx.post(w.server.url + "/v1/enroll", json={**body, "api_token": "short"})
    assert short.status_code == 422 and short.json()["error"] == "bad_request"


def test_oversized_and_malformed_bodies(w: World) -> None:
    a = w.add_gate("A")
    token = token_of(a)
    big = post(w, b"x" * (65 * 1024), token)
    assert big.status_code == 413 and big.json()["error"] == "too_large"
    bomb = gzip.compress(b" " * (300 * 1024))  # small on the wire, too big unpacked
    assert len(bomb) < 64 * 1024
    r = post(w, bomb, token, **{"Content-Encoding": "gzip"})
    assert r.status_code == 413
    assert (
        post(w, b"not gzip", token, **{"Content-Encoding": "gzip"}).json()["error"] == "malformed"
    )
    assert post(w, b"{}", token, **{"Content-Encoding": "br"}).status_code == 415
    for body in (b"{not json", b'{"epoch": 1, "from_seq": 1, "head_seq": 0, "events": 5}', b"[]"):
        r = post(w, body, token)
        assert r.status_code == 400 and r.json()["error"] == "malformed", body
    too_many = {
        "epoch": 1,
        "from_seq": 1,
        "head_seq": 0,
        "head_hash": "0" * 64,
        "events": [{"seq": 1, "prev_hash": "0", "hash": "0", "body": {}}] * 2001,
    }
    assert post(w, json.dumps(too_many).encode(), token).status_code in (400, 413)
    kept = w.server.storage.query("select count(*) as n from rejected")[0]["n"]
    assert kept == 3, "batches that could not be read are kept, with the reason"


def test_what_cannot_be_accepted_is_kept_with_the_reason(w: World) -> None:
    a, b = w.add_gate("A"), w.add_gate("B")
    for number in (1203, 1204, 2101, 2102):
        a.scan(w.codes[number])
    batch = build_batch(a.store, after=0, limit=10, epoch=1, offset_ms=0)
    ev = batch.events
    edit(ev[1], kind="teleport")  # a kind the server does not know
    ev[1].hash = chain_hash(ev[1].prev_hash, ev[1].body)
    ev[2].prev_hash = ev[1].hash
    ev[2].hash = chain_hash(ev[2].prev_hash, ev[2].body)
    edit(ev[3], operator="edited afterwards")  # the hash no longer matches the body
    result = push(w, a, batch)
    assert result["inserted"] == 2 and result["acked_through_seq"] == 4
    assert [(r["seq"], r["reason"]) for r in result["rejected"]] == [
        (2, "invalid"),
        (4, "bad_hash"),
    ]
    assert push(w, a, batch)["duplicates"] == 4, "a retry of refused events refuses nothing new"
    assert w.kinds() == ["chain_break"]
    rows = w.server.storage.rejected(COMMUNITY)
    assert [(r["seq"], r["reason"]) for r in rows] == [(2, "invalid"), (4, "bad_hash")]
    # A gate writes only its own events.
    b.scan(w.codes[3301])
    foreign = build_batch(b.store, after=0, limit=10, epoch=1, offset_ms=0)
    foreign.from_seq, foreign.events[0].seq = 5, 5
    edit(foreign.events[0], seq=5)
    foreign.events[0].prev_hash = ev[3].hash
    foreign.events[0].hash = chain_hash(ev[3].hash, foreign.events[0].body)
    r = push(w, a, foreign)
    assert [x["reason"] for x in r["rejected"]] == ["foreign_gate"]
    assert len(w.server_event_ids()) == 2


def test_a_broken_link_is_flagged_and_the_event_kept(w: World) -> None:
    a = w.add_gate("A")
    a.scan(w.codes[1203]), a.scan(w.codes[1203])
    batch = build_batch(a.store, after=0, limit=10, epoch=1, offset_ms=0)
    second = batch.events[1]
    second.prev_hash = "f" * 64  # as if an event between them had been deleted
    second.hash = chain_hash(second.prev_hash, second.body)
    result = push(w, a, batch)
    assert result["inserted"] == 2 and not result["rejected"]
    assert w.kinds() == ["chain_break"]


def test_a_long_read_never_holds_up_pushes_or_status(w: World) -> None:
    """A snapshot or a long pull reads in a transaction of its own: the writer never waits."""
    a = w.add_gate("A")
    a.scan(w.codes[1203])
    storage = w.server.storage
    reading, release = threading.Event(), threading.Event()
    seen: list[int] = []

    def long_read() -> None:
        with storage._read() as db:
            seen.append(int(db.execute("select count(*) from events").fetchone()[0]))
            reading.set()
            release.wait(30)
            seen.append(int(db.execute("select count(*) from events").fetchone()[0]))

    reader = threading.Thread(target=long_read)
    reader.start()
    try:
        assert reading.wait(10)
        result = a.sync()
        finished_while_reading = not release.is_set() and reader.is_alive()
    finally:
        release.set()
        reader.join(30)
    assert result.pushed == 1 and finished_while_reading
    assert seen == [0, 0], "the long read kept its own consistent picture"
    assert w.server_event_ids() and len(w.server_event_ids()) == 1
