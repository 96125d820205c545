"""What an enrolled gate keeps to reach its server, in `<home>/sync/` (mode 0700):

- `server.json`: the server's URL, this gate's id and the pinned certificate's fingerprint;
- `server-cert.pem`: the pinned certificate (https only);
- `api-token` (0600): the gate's API secret (the server keeps only its SHA-256);
- `gate-key.pem` (0600): the gate's Ed25519 key that signs USB bundles.

They live beside the database, not in it, so a copy of the database (a backup, an export) never
carries the secrets, and restoring an old copy keeps the current enrollment.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from menwei.core.errors import MenweiError
from menwei.core.home import Home


class NotEnrolled(MenweiError):
    """This home has no server to sync with."""


def sync_dir(home: Home) -> Path:
    return home.root / "sync"


def _write_secret(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


@dataclass(frozen=True)
class Credentials:
    url: str
    gate_id: str
    api_token: str
    key: Ed25519PrivateKey
    cert_pem: str | None = None
    cert_sha256: str | None = None

    @property
    def public_key_hex(self) -> str:
        raw = self.key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return raw.hex()

    def save(self, home: Home) -> None:
        d = sync_dir(home)
        d.mkdir(parents=True, exist_ok=True)
        os.chmod(d, 0o700)
        _write_secret(d / "api-token", self.api_token.encode("utf-8"))
        _write_secret(
            d / "gate-key.pem",
            self.key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )
        cert = d / "server-cert.pem"
        if self.cert_pem:
            cert.write_text(self.cert_pem, encoding="ascii")
        elif cert.exists():
            cert.unlink()
        doc = {"url": self.url, "gate_id": self.gate_id, "cert_sha256": self.cert_sha256}
        _write_secret(d / "server.json", (json.dumps(doc, indent=2) + "\n").encode("utf-8"))

    @classmethod
    def load(cls, home: Home) -> Credentials:
        d = sync_dir(home)
        try:
            doc = json.loads((d / "server.json").read_text(encoding="utf-8"))
            token = (d / "api-token").read_text(encoding="utf-8").strip()
            key = serialization.load_pem_private_key((d / "gate-key.pem").read_bytes(), None)
        except FileNotFoundError:
            raise NotEnrolled(
                "This gate is not enrolled with a community server: "
                "run `menwei enroll URL TOKEN` with a token from the IT person."
            ) from None
        except (OSError, ValueError) as exc:
            raise MenweiError(f"The sync settings in {d} are unreadable: {exc}") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise MenweiError(f"{d / 'gate-key.pem'} is not an Ed25519 key")
        cert_path = d / "server-cert.pem"
        cert = cert_path.read_text(encoding="ascii") if cert_path.exists() else None
        return cls(
            url=str(doc["url"]),
            gate_id=str(doc["gate_id"]),
            api_token=token,
            key=key,
            cert_pem=cert,
            cert_sha256=doc.get("cert_sha256"),
        )
