"""The server attacked on 127.0.0.1: a revoked gate, oversized and malformed requests, a gate
speaking for another, pass texts, slow clients. Each test counts what the server kept."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from menwei.core.errors import MenweiError
from menwei.sync.bundle import export_bundle, import_bundle
from menwei.sync.client import SyncRefused
from menwei.sync.credentials import Credentials
from tests.sync.helpers import COMMUNITY, Gate, World, world


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    with world(tmp_path) as w:
        yield w


def token_of(gate: Gate) -> str:
    return Credentials.load(gate.home).api_token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def count(w: World, table: str) -> int:
    return int(w.server.storage.db.execute(f"select count(*) from {table}").fetchone()[0])


def test_a_revoked_gate_stays_out_after_it_is_added_again(w: World, tmp_path: Path) -> None:
    stolen = w.add_gate("东门")
    stolen.scan(w.codes[1203])
    stolen.sync()
    old_token = token_of(stolen)
    stolen.scan(w.codes[1204])
    bundle = tmp_path / "stolen.bundle"
    export_bundle(stolen.home, bundle, now=w.clock.now())

    w.server.storage.revoke_gate(COMMUNITY, "东门", now=w.clock.now())
    row = w.server.storage.db.execute(
        "select token_hash, status from gates where name = '东门'"
    ).fetchone()
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
