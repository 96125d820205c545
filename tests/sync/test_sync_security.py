"""The server attacked on 127.0.0.1: a revoked gate, oversized and malformed requests, a gate
speaking for another, pass texts, slow clients. Each test counts what the server kept."""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import stat
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from menwei.core import eventlog
from menwei.core.errors import MenweiError
from menwei.core.eventlog import GENESIS, NewEvent, canonical, chain_hash, uuid7
from menwei.sync.bundle import export_bundle, import_bundle
from menwei.sync.client import SyncRefused, build_batch
from menwei.sync.credentials import Credentials
from menwei.sync.protocol import (
    MAX_REJECTED_BATCHES_PER_GATE,
    MAX_REJECTED_PAYLOAD_BYTES,
    SERVER_TIME_HEADER,
)
from tests.sync import helpers
from tests.sync.helpers import COMMUNITY, Gate, World, world

# Revocation, authentication, limits and rejected batches are the storage's: both backends.
pytestmark = pytest.mark.usefixtures("backend")


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    with world(tmp_path) as w:
        yield w


def token_of(gate: Gate) -> str:
    return Credentials.load(gate.home).api_token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def query(w: World, sql: str) -> list[tuple[Any, ...]]:
    """Rows of the server's database, as tuples (through `storage.query`: either backend)."""
    return [tuple(r.values()) for r in w.server.storage.query(sql)]


def count(w: World, table: str) -> int:
    return int(query(w, f"select count(*) as n from {table}")[0][0])


def test_a_revoked_gate_stays_out_after_it_is_added_again(w: World, tmp_path: Path) -> None:
    stolen = w.add_gate("东门")
    stolen.scan(w.codes[1203])
    stolen.sync()
    old_token = token_of(stolen)
    stolen.scan(w.codes[1204])
    bundle = tmp_path / "stolen.bundle"
    export_bundle(stolen.home, bundle, now=w.clock.now())

    w.server.storage.revoke_gate(COMMUNITY, "东门", now=w.clock.now())
    row = query(w, "select token_hash, status from gates where name = '东门'")[0]
    assert row == (None, "revoked"), "the token hash is gone for good"
    w.clock.advance(timedelta(minutes=5))
    # The documented way to re-enroll the replacement laptop: the old token must stay dead,
    # before the new laptop enrolls and after.
    fresh = w.server.token("东门")
    for stage in ("pending", "enrolled"):
        for path in ("/v1/snapshot", "/v1/status", "/v1/events", "/v1/reference"):
            r = httpx.get(w.server.url + path, headers=bearer(old_token))
            assert r.status_code in (401, 403), (stage, path, r.status_code)
            assert "contact" not in r.text and "1203" not in r.text
        with pytest.raises(SyncRefused):
            stolen.sync()
        if stage == "pending":
            replacement = tmp_path / "replacement"
            from tests.sync.helpers import make_gate

            new = make_gate(replacement, w.server.url, fresh, w.clock)
            w.gates.append(new)
            assert new.sync().pushed == 0
    assert len(w.server_event_ids()) == 1, "nothing from the stolen laptop after revocation"
    # Its USB bundle is refused too, with words that say why.
    with pytest.raises(MenweiError) as refused:
        import_bundle(w.server.storage, COMMUNITY, bundle, now=w.clock.now())
    assert "revoked" in refused.value.message and "撤销" in refused.value.message
    assert len(w.server_event_ids()) == 1
    # The replacement laptop works, and its own bundles import.
    new.scan(w.codes[2101])
    mine = tmp_path / "new.bundle"
    export_bundle(new.home, mine, now=w.clock.now())
    assert import_bundle(w.server.storage, COMMUNITY, mine, now=w.clock.now()).inserted == 1


def test_a_revoked_gate_bundle_is_refused_before_it_is_added_again(
    w: World, tmp_path: Path
) -> None:
    a = w.add_gate("A")
    a.scan(w.codes[1203])
    bundle = tmp_path / "a.bundle"
    export_bundle(a.home, bundle, now=w.clock.now())
    w.server.storage.revoke_gate(COMMUNITY, "A", now=w.clock.now())
    with pytest.raises(MenweiError, match="revoked"):
        import_bundle(w.server.storage, COMMUNITY, bundle, now=w.clock.now())
    assert w.server_event_ids() == []


def test_enrollment_tokens_never_look_like_options(w: World) -> None:
    tokens = [w.server.token(f"g{i}") for i in range(300)]
    assert all(t[0].isalnum() for t in tokens)
    assert len(set(tokens)) == 300


# --- a gate speaks only for itself ----------------------------------------------------------------


def append_event(gate: Gate, **fields: Any) -> str:
    """Write an event straight into a gate's log (what a tampered laptop could do)."""
    new = NewEvent(**{"reason": "undo", "operator": "t", **fields})
    gate_id = str(gate.store.meta("gate_id"))
    with gate.store.write() as db:
        event = eventlog.append(
            db,
            new,
            gate_id=gate_id,
            epoch=int(gate.store.meta("device_epoch") or 1),
            wall=gate.clock.now(),
            mono_ns=0,
            boot_id=None,
            clock_offset_ms=None,
        )
    return event.event_id


def test_a_gate_cannot_annul_or_override_another_gates_events(w: World) -> None:
    a, b = w.add_gate("A"), w.add_gate("B")
    out = b.scan(w.codes[1203], direction="exit")
    b.sync()
    a.sync()
    assert w.server.storage.presence(COMMUNITY)[1203].state == "out"
    annul = append_event(a, kind="annul", household=1203, ref=out.event_id)
    override = append_event(a, kind="override", household=1203, direction="entry", ref=out.event_id)
    a.scan(w.codes[2101], direction="exit")  # an ordinary event after them still goes in
    result = a.sync()
    assert result.rejected == 2
    rows = {r["event_id"]: r["reason"] for r in w.server.storage.rejected(COMMUNITY)}
    assert rows == {annul: "foreign_ref", override: "foreign_ref"}
    assert annul not in w.server_event_ids() and override not in w.server_event_ids()
    assert len(w.server_event_ids()) == 2
    assert w.server.storage.presence(COMMUNITY)[1203].state == "out"
    b.sync()
    assert b.state()[1203] == "out", "the other gate's record is untouched"
    assert w.kinds() == []
    # Its own events it may annul.
    mine = a.scan(w.codes[3301], direction="exit")
    undo = append_event(a, kind="annul", household=3301, ref=mine.event_id)
    assert a.sync().rejected == 0
    assert undo in w.server_event_ids()


# --- pass texts stay where they were scanned ------------------------------------------------------


def test_pass_texts_never_reach_other_gates(w: World) -> None:
    a, b = w.add_gate("A"), w.add_gate("B")
    for number in (1203, 2101):
        a.scan(w.codes[number], direction="exit")
    a.sync()
    stored = [json.loads(r[0]) for r in query(w, "select body from events")]
    texts = [s["scan"] for s in stored]
    assert all(texts), "the server keeps the texts, for forensics"
    token = token_of(b)
    for path in ("/v1/events", "/v1/snapshot"):
        body = httpx.get(w.server.url + path, headers=bearer(token)).text
        for text in texts:
            assert text not in body
            assert hashlib.sha256(text.encode()).hexdigest() in body
        assert '"scan":' not in body
    b.sync()
    held = " ".join(r["body"] for r in b.store.query("select body from remote_events"))
    assert len(b.store.query("select * from remote_events")) == 2
    assert not any(text in held for text in texts)
    # A gate enrolled later gets a snapshot: no texts either.
    c = w.add_gate("C")
    held = " ".join(r["body"] for r in c.store.query("select body from remote_events"))
    assert held and not any(text in held for text in texts)
    assert "scan_sha256" in held


# --- what a request may be ------------------------------------------------------------------------


class Forger:
    """Events a tampered gate writes at the next position of its log on the server."""

    def __init__(self, gate: Gate, code: str) -> None:
        gate.scan(code)
        first = build_batch(gate.store, after=0, limit=1, epoch=1, offset_ms=0).events[0]
        self.template = json.loads(first.body)
        self.seq, self.prev = 1, GENESIS
        self.last: dict[str, Any] = {}

    def event(self, **changes: Any) -> dict[str, Any]:
        body = {**self.template, "seq": self.seq, "event_id": uuid7(), **changes}
        text = canonical(body)
        self.last = {
            "seq": self.seq,
            "prev_hash": self.prev,
            "hash": chain_hash(self.prev, text),
            "body": text,
        }
        return self.last

    def held(self, answer: httpx.Response) -> None:
        """The server answered the batch: it holds the last event's position now."""
        assert answer.json()["acked_through_seq"] == self.seq
        self.seq, self.prev = self.seq + 1, self.last["hash"]


def push_raw(w: World, gate: Gate, doc: Any) -> httpx.Response:
    data = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return httpx.post(
        w.server.url + "/v1/push",
        content=gzip.compress(data),
        headers={**bearer(token_of(gate)), "Content-Encoding": "gzip"},
    )


def batch_of(*events: dict[str, Any], **fields: Any) -> dict[str, Any]:
    first = events[0]["seq"] if events else 1
    return {
        "epoch": 1,
        "from_seq": first,
        "head_seq": events[-1]["seq"] if events else 0,
        "head_hash": events[-1]["hash"] if events else GENESIS,
        "events": list(events),
        **fields,
    }


def test_limits_on_events_fields_and_integers(w: World) -> None:
    a = w.add_gate("A")
    forge = Forger(a, w.codes[1203])
    # A 1 MB note: the batch is refused (an event is at most 8,192 characters).
    big = push_raw(w, a, batch_of(forge.event(note="x" * 1_000_000)))
    assert big.status_code == 400 and big.json()["error"] == "malformed"
    # A 600-character note fits in an event but not in a note: that event is refused.
    r = push_raw(w, a, batch_of(forge.event(note="长" * 600)))
    assert r.status_code == 200
    assert [x["reason"] for x in r.json()["rejected"]] == ["invalid"]
    assert "note" in r.json()["rejected"][0]["detail"]
    forge.held(r)
    # seq 0 and -5, unknown fields: refused, nothing stored.
    for bad in (
        batch_of({**forge.event(), "seq": 0}),
        batch_of({**forge.event(), "seq": -5}),
        batch_of(forge.event(), colour="red"),
        batch_of({**forge.event(), "extra": 1}),
    ):
        r = push_raw(w, a, bad)
        assert r.status_code == 400 and r.json()["error"] == "malformed", r.text
        assert r.headers[SERVER_TIME_HEADER]
    # Any request's body is limited: 1 KiB where none is expected, 4 KiB for an enrollment.
    r = httpx.request("GET", w.server.url + "/v1/health", content=b"x" * 2048)
    assert r.status_code == 413 and r.headers[SERVER_TIME_HEADER]
    r = httpx.post(w.server.url + "/v1/enroll", content=b"{" + b" " * 5000 + b"}")
    assert r.status_code == 413 and r.json()["error"] == "too_large"
    enroll_body = {"token": "t" * 32, "api_token": "a" * 40, "public_key": "0" * 64}
    r = httpx.post(w.server.url + "/v1/enroll", json={**enroll_body, "admin": True})
    assert r.status_code == 422
    # 2^63 and 2^64 in every integer of a query or a body: 422 or 400, never 500.
    for huge in (2**63, 2**64, -(2**64)):
        for path, name in (
            ("/v1/status", "cursor"),
            ("/v1/events", "after"),
            ("/v1/events", "limit"),
            ("/v1/reference", "since"),
            ("/v1/anomalies", "after"),
            ("/v1/anomalies", "limit"),
        ):
            r = httpx.get(
                w.server.url + path, params={name: str(huge)}, headers=bearer(token_of(a))
            )
            assert r.status_code == 422, (path, name, r.status_code, r.text)
            assert r.headers[SERVER_TIME_HEADER] and r.json()["error"] == "bad_request"
        for field in ("epoch", "from_seq", "head_seq", "clock_offset_ms", "protocol"):
            r = push_raw(w, a, batch_of(forge.event(), **{field: huge}))
            assert r.status_code == 400, (field, r.text)
        r = push_raw(w, a, batch_of({**forge.event(), "seq": huge}))
        assert r.status_code == 400
        for name in ("head_seq", "protocol"):
            r = httpx.post(w.server.url + "/v1/enroll", json={**enroll_body, name: huge})
            assert r.status_code == 422 and r.headers[SERVER_TIME_HEADER]
        # Inside an event's body: that event is refused, the batch is answered.
        for name in ("household", "serial", "headcount", "clock_offset_ms", "epoch", "seq"):
            r = push_raw(w, a, batch_of(forge.event(**{name: huge})))
            assert r.status_code == 200, (name, r.text)
            assert [x["reason"] for x in r.json()["rejected"]] == ["invalid"], name
            forge.held(r)
    assert count(w, "events") == 0
    # The forger's events are well formed otherwise: an ordinary one goes in.
    r = push_raw(w, a, batch_of(forge.event()))
    assert r.json()["inserted"] == 1 and count(w, "events") == 1


def test_unreadable_batches_are_kept_once_and_bounded(w: World) -> None:
    a = w.add_gate("A")
    for _ in range(50):
        assert push_raw(w, a, b'{"epoch": "same"}').status_code == 400
    assert count(w, "rejected") == 1
    for i in range(MAX_REJECTED_BATCHES_PER_GATE + 30):
        push_raw(w, a, json.dumps({"junk": i, "pad": "x" * 2000}).encode())
    assert count(w, "rejected") == MAX_REJECTED_BATCHES_PER_GATE
    size = query(w, "select max(length(payload)) as n from rejected")[0]
    assert size[0] <= MAX_REJECTED_PAYLOAD_BYTES


# --- failed logins, files --------------------------------------------------------------------------


def test_failed_logins_are_logged_and_throttled(w: World, caplog: pytest.LogCaptureFixture) -> None:
    a = w.add_gate("A")
    caplog.set_level(logging.WARNING, logger="menwei.server")
    answers = [
        httpx.get(w.server.url + "/v1/status", headers=bearer(f"guess-{i:040d}")).status_code
        for i in range(25)
    ]
    assert answers[:20] == [401] * 20 and set(answers[20:]) == {429}
    refused = httpx.get(w.server.url + "/v1/status", headers=bearer(token_of(a)))
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert refused.json()["error"] == "too_many_attempts"
    logged = [r.getMessage() for r in caplog.records if "authentication refused" in r.getMessage()]
    assert len(logged) == 20 and "127.0.0.1" in logged[0]
    assert not any("guess-" in r.getMessage() for r in caplog.records), "never the token"
    assert httpx.get(w.server.url + "/v1/health").status_code == 200


def test_databases_and_bundles_are_private(w: World, tmp_path: Path) -> None:
    a = w.add_gate("A")
    a.scan(w.codes[1203])
    a.sync()
    out = tmp_path / "a.bundle"
    export_bundle(a.home, out, now=w.clock.now())
    server_files = [] if helpers.BACKEND.cluster else [w.home.server_dir / "server.db"]
    for path in (
        *server_files,
        w.home.db_path,
        a.home.db_path,
        Path(f"{a.home.db_path}-wal"),
        out,
    ):
        assert path.exists(), path
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
