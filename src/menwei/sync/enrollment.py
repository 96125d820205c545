"""Enrollment: a laptop becomes one of the community's gates.

`enroll(home, url, token)` claims a one-time token from `menwei server gate add`, pins the
server's certificate, stores the gate's credentials and loads the server's snapshot. A gate
laptop needs no `menwei init`: enrollment creates its home.
"""

from __future__ import annotations

import json
import secrets
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from menwei.core.clock import Clock, SystemClock, iso
from menwei.core.community import community_info
from menwei.core.errors import MenweiError
from menwei.core.home import Home
from menwei.core.store import Store
from menwei.sync import apply, tls
from menwei.sync.client import CertificateMismatch, SyncClient, client_for
from menwei.sync.credentials import Credentials
from menwei.sync.protocol import EnrollRequest


@dataclass(frozen=True)
class EnrollResult:
    gate_id: str
    gate_name: str
    epoch: int
    community_id: int
    community_name: str
    server_url: str
    cert_sha256: str | None
    households: int

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def parse_enrollment(url: str | None, token: str) -> tuple[str, str, str | None]:
    """(url, token, fingerprint) from the command line or the QR text of `server gate add`."""
    fingerprint = None
    text = token.strip()
    if text.startswith("{"):
        try:
            doc = json.loads(text)
            text = str(doc["token"])
            fingerprint = doc.get("cert_sha256")
            url = url or doc.get("url")
        except (ValueError, KeyError, TypeError):
            raise MenweiError("The enrollment text is not readable: copy it again.") from None
    if not url:
        raise MenweiError("Say which server: menwei enroll URL TOKEN")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise MenweiError(f"{url!r} is not a server address like https://192.168.1.10:8470")
    return url.rstrip("/"), text, fingerprint


def enroll(
    home: Home,
    url: str,
    token: str,
    *,
    fingerprint: str | None = None,
    trust_first_use: bool = False,
    transport: httpx.BaseTransport | None = None,
    clock: Clock | None = None,
    hostname: str | None = None,
    timeout: float = 30.0,
) -> EnrollResult:
    """Enroll this home as a gate: claim the token, pin the certificate, load the snapshot.

    Over https the server's certificate must match `fingerprint` (or the one in the QR text);
    without one, enrollment is refused unless `trust_first_use` says to pin whatever
    certificate the server shows. Creates the gate's database when the laptop has none (a gate
    needs no `menwei init`).
    """
    clock = clock or SystemClock()
    url, token, qr_fingerprint = parse_enrollment(url, token)
    expected = fingerprint or qr_fingerprint
    expected = tls.normalise_fingerprint(expected) if expected else None
    parts = urlsplit(url)
    cert_pem = None
    cert_sha = None
    if parts.scheme == "https":
        cert_pem = tls.fetch_server_certificate(str(parts.hostname), parts.port or 443)
        cert_sha = tls.fingerprint(cert_pem)
        if expected and cert_sha != expected:
            raise CertificateMismatch(
                "服务器证书与给出的指纹不符,可能不是小区的服务器,未做任何改动。\n"
                "The server's certificate does not match the fingerprint given "
                f"({tls.short(cert_sha)} is not {tls.short(expected)}): it may not be the "
                "community's server. Nothing was changed."
            )
        if not expected and not trust_first_use:
            raise MenweiError(
                "通过 https 接入需要服务器证书指纹(`menwei server gate add` 会显示),"
                "请加 --fingerprint;确认无误时也可用 --trust-first-use。\n"
                f"The server shows a certificate with SHA-256 {tls.short(cert_sha)}. Compare it "
                "with the one `menwei server gate add` printed and give it with --fingerprint "
                "(or enroll with the QR text, which carries it); --trust-first-use pins whatever "
                "certificate the server shows. Nothing was changed."
            )
    with SyncClient(url, cert_pem=cert_pem, transport=transport, timeout=timeout, clock=clock) as c:
        server = c.health()
        # A district server serves many communities: the token says which one is this gate's.
        served = {int(c) for c in server.get("communities") or [server.get("community_id")] if c}
        existing = None
        if home.db_path.exists():
            current = Store.open(home.db_path)
            try:
                if current.meta("community_id") is not None:
                    existing = community_info(current)
            finally:
                current.close()
        if existing is not None and existing.community not in served:
            raise MenweiError(
                f"This home belongs to community {existing.community}, the server serves "
                f"community {', '.join(map(str, sorted(served)))}: use another MENWEI_HOME. "
                "Nothing was changed."
            )
        key = Ed25519PrivateKey.generate()
        api_token = secrets.token_urlsafe(32)
        store = Store.open(home.db_path, create=True)
        try:
            head_seq, _ = apply.local_head(store)
            answer = c.enroll(
                EnrollRequest(
                    token=token,
                    api_token=api_token,
                    public_key=Credentials(url, "", api_token, key).public_key_hex,
                    hostname=hostname or socket.gethostname(),
                    software="menwei",
                    head_seq=head_seq,
                )
            )
            creds = Credentials(url, answer.gate_id, api_token, key, cert_pem, cert_sha)
            creds.save(home)
            now = iso(clock.now())
            with store.write() as db:
                apply.set_meta(
                    db,
                    community_id=answer.community_id,
                    community_name=answer.community_name,
                    gate_id=answer.gate_id,
                    gate_name=answer.gate_name,
                    device_epoch=answer.epoch,
                )
                apply.set_state(
                    db,
                    server_url=url,
                    cert_sha256=cert_sha,
                    push_epoch=answer.epoch,
                    acked_through_seq=0,
                    pull_after_gseq=0,
                    ref_version=0,
                    anomaly_after=0,
                    enrolled_at=now,
                )
                db.execute(
                    "insert into meta (key, value) values ('created_at', ?) "
                    "on conflict(key) do nothing",
                    [now],
                )
            with client_for(creds, transport=transport, timeout=timeout, clock=clock) as authed:
                apply.apply_snapshot(store, authed.snapshot(), now=now)
                with store.write() as db:
                    apply.set_state(
                        db, last_sync_at=now, last_sync_outcome="ok", last_sync_error=None
                    )
            households = len(store.query("select household from households"))
        finally:
            store.close()
    return EnrollResult(
        gate_id=answer.gate_id,
        gate_name=answer.gate_name,
        epoch=answer.epoch,
        community_id=answer.community_id,
        community_name=answer.community_name,
        server_url=url,
        cert_sha256=cert_sha,
        households=households,
    )
