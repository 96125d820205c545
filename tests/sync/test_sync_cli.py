"""The sync commands as the IT person and cron use them, against a real server on 127.0.0.1."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result

from menwei.cli import cli
from menwei.core.gate import GateService
from menwei.core.home import Home
from menwei.core.store import Store
from menwei.sync.credentials import sync_dir
from menwei.sync.tls import short as tls_short
from tests.sync.helpers import COMMUNITY, ThreadedServer, free_port, make_committee, running


def run(home: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--home", str(home), *args], catch_exceptions=False)


def run_json(home: Path, *args: str) -> Any:
    result = run(home, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


@pytest.fixture
def committee(tmp_path: Path) -> Iterator[tuple[Home, dict[int, str], ThreadedServer]]:
    home, codes = make_committee(tmp_path / "committee")
    with running(home) as server:  # the real clock: the commands use it too
        yield home, codes, server


def enroll_gate(committee_home: Home, gate_home: Path, name: str, url: str) -> dict[str, Any]:
    token = run_json(committee_home.root, "server", "gate", "add", name, "--url", url)
    assert token["name"] == name and token["gate_id"].startswith(f"c{COMMUNITY}-g")
    result: dict[str, Any] = run_json(gate_home, "enroll", url, token["token"])
    return result


def test_enroll_sync_exit_codes_revoke_and_anomalies(
    committee: tuple[Home, dict[int, str], ThreadedServer], tmp_path: Path
) -> None:
    home, codes, server = committee
    a, b = tmp_path / "a", tmp_path / "b"
    assert enroll_gate(home, a, "东门", server.url)["households"] == 5
    enroll_gate(home, b, "西门", server.url)
    assert run(a, "check", codes[1204]).exit_code == 0
    assert run(b, "check", codes[1204]).exit_code == 0  # a copy of the pass, at the other gate
    assert run_json(a, "sync")["pushed"] == 1
    synced = run_json(b, "sync")
    assert synced["ok"] and synced["pulled"] == 1 and synced["anomalies"] == 1
    assert run(a, "sync", "--quiet").output == ""
    for side in (home.root, a, b):
        [anomaly] = run_json(side, "anomalies")
        assert anomaly["kind"] == "double_exit" and anomaly["household"] == 1204
    assert "重复外出" in run(home.root, "anomalies").output
    assert "double exit" in run(a, "anomalies", "--lang", "en").output
    gates = run_json(home.root, "server", "gate", "list")
    assert [(g["name"], g["events"]) for g in gates] == [("东门", 1), ("西门", 1)]

    # Unreachable server: exit 2, nothing lost.
    settings = sync_dir(Home(a)) / "server.json"
    saved = settings.read_text()
    doc = json.loads(saved)
    settings.write_text(json.dumps({**doc, "url": f"http://127.0.0.1:{free_port()}"}))
    run(a, "check", codes[1203])
    offline = run(a, "sync", "--json")
    assert offline.exit_code == 2
    said = json.loads(offline.output)
    assert said["outcome"] == "offline" and said["ok"] is False
    # The shared error shape: a code and the message in both languages.
    assert said["code"] and said["message"] and said["message_zh"]
    assert said["message_zh"] != said["message"]
    plain = run(a, "sync")
    assert plain.exit_code == 2 and "cannot be reached" in plain.output
    assert "Traceback" not in plain.output
    settings.write_text(saved)
    assert run_json(a, "sync")["pushed"] == 1

    # Revoked: exit 3.
    assert run_json(home.root, "server", "gate", "revoke", "西门")["status"] == "revoked"
    refused = run(b, "sync")
    assert refused.exit_code == 3 and "refused" in refused.output


def test_not_enrolled_and_bad_addresses(tmp_path: Path) -> None:
    result = run(tmp_path / "nowhere", "sync")
    assert result.exit_code == 1 and "not enrolled" in result.output
    assert (
        json.loads(run(tmp_path / "nowhere", "sync", "--json").output)["outcome"] == "not_enrolled"
    )
    bad = run(tmp_path / "g", "enroll", "ftp://x", "t" * 30)
    assert bad.exit_code == 1 and "not a server address" in bad.output
    down = run(tmp_path / "g", "enroll", f"http://127.0.0.1:{free_port()}", "t" * 30)
    assert down.exit_code == 1 and "cannot be reached" in down.output
    assert not (tmp_path / "g" / "menwei.db").exists()


def test_usb_export_and_import(
    committee: tuple[Home, dict[int, str], ThreadedServer], tmp_path: Path
) -> None:
    home, codes, server = committee
    a = tmp_path / "a"
    enroll_gate(home, a, "A", server.url)
    for n in (1203, 1204, 1203):
        assert run(a, "check", codes[n]).exit_code == 0
    stick = tmp_path / "usb" / "gate-a.menwei"
    exported = run_json(a, "export", "--out", str(stick))
    assert (exported["events"], exported["from_seq"], exported["to_seq"]) == (3, 1, 3)
    first = run_json(home.root, "server", "import", str(stick))
    assert (first["inserted"], first["duplicates"]) == (3, 0)
    again = run_json(home.root, "server", "import", str(stick))
    assert (again["inserted"], again["duplicates"]) == (0, 3)
    synced = run_json(a, "sync")
    assert (synced["pushed"], synced["duplicates"], synced["waiting"]) == (0, 3, 0)
    assert run_json(a, "export", "--out", str(stick))["events"] == 0
    assert len(server.storage.event_ids(COMMUNITY)) == 3
    # An altered bundle is refused whole.
    run_json(a, "export", "--all", "--out", str(stick))
    doc = json.loads(gzip.decompress(stick.read_bytes()))
    event = doc["batches"][0]["events"][0]
    event["body"] = event["body"].replace('"household":1203', '"household":2101')
    assert "2101" in event["body"]
    stick.write_bytes(gzip.compress(json.dumps(doc).encode()))
    forged = run(home.root, "server", "import", str(stick))
    assert forged.exit_code == 1 and "signature" in forged.output
    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"hello")
    assert "not a menwei bundle" in run(home.root, "server", "import", str(garbage)).output


def _start(home: Home, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "MENWEI_HOME": str(home.root)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "menwei", "server", "run", "--port", str(port), "--tls-self-signed"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            httpx.get(f"https://127.0.0.1:{port}/v1/health", verify=False, timeout=1)
            return proc
        except httpx.HTTPError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                proc.wait(10)
                raise RuntimeError("the server did not start") from None
            time.sleep(0.1)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def test_the_walkthrough_over_tls_with_a_pinned_certificate(tmp_path: Path) -> None:
    """docs/sync.md: one server, two gate homes, a household out at one gate, in at the other."""
    home, codes = make_committee(tmp_path / "committee")
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    proc = _start(home, port)
    try:
        token = run_json(home.root, "server", "gate", "add", "东门")
        assert len(token["cert_sha256"]) == 64 and token["url"] == url
        wrong = run(tmp_path / "x", "enroll", url, token["token"], "--fingerprint", "ab" * 32)
        assert wrong.exit_code == 4 and "does not match" in wrong.output
        # No fingerprint: refused (the one seen is shown), unless trusting the first use.
        guess = run(tmp_path / "x", "enroll", url, token["token"])
        assert guess.exit_code == 1 and "--trust-first-use" in guess.output
        assert tls_short(token["cert_sha256"]) in guess.output
        assert not (tmp_path / "x" / "menwei.db").exists()
        a, b = tmp_path / "a", tmp_path / "b"
        # The QR text carries the address and the fingerprint.
        assert run_json(a, "enroll", url, token["qr_text"])["cert_sha256"] == token["cert_sha256"]
        other = run_json(home.root, "server", "gate", "add", "西门")
        run_json(b, "enroll", url, other["token"], "--fingerprint", other["cert_sha256"])
        assert run(a, "check", codes[1203]).exit_code == 0  # out at the east gate
        gate_b = GateService(Store.open(b / "menwei.db"))
        refused = gate_b.decide(codes[1203], operator="王", direction="entry")
        assert refused.reason == "already_in" and refused.event_id  # B cannot know yet
        gate_b.override(refused.event_id, reason="other", note="东门出", operator="王")
        gate_b.store.close()
        for gate in (a, b, a):
            assert run(gate, "sync").exit_code == 0
        assert run_json(home.root, "anomalies") == []
        states = []
        for gate in (a, b):
            s = Store.open(gate / "menwei.db")
            states.append(
                {r["household"]: r["state"] for r in s.query("select * from household_state")}
            )
            s.close()
        assert states == [{1203: "in"}, {1203: "in"}]
    finally:
        _stop(proc)
    # The server comes back with another certificate: the gates refuse to talk to it.
    shutil.rmtree(home.server_dir / "tls")
    proc = _start(home, port)
    try:
        changed = run(a, "sync")
        assert changed.exit_code == 4 and "certificate" in changed.output
        as_json = run(a, "sync", "--json")
        assert as_json.exit_code == 4
        assert json.loads(as_json.output)["outcome"] == "certificate_mismatch"
        trusting = run(tmp_path / "t", "enroll", url, token["token"], "--trust-first-use")
        assert trusting.exit_code == 1 and "already used" in trusting.output  # got that far
    finally:
        _stop(proc)
