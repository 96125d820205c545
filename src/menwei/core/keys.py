"""The community's Ed25519 keys.

The private signing key stays in the committee's home (`keys/signing-<kid>.pem`, mode 0600); a gate
holds only the public-key set (`keys/public-keys.json` and the `keys` table).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from menwei.core.errors import MenweiError


@dataclass(frozen=True)
class PublicKey:
    kid: int
    public_hex: str
    status: str = "active"  # active | retired

    def load(self) -> Ed25519PublicKey:
        return Ed25519PublicKey.from_public_bytes(bytes.fromhex(self.public_hex))


def generate() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def public_hex(key: Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return raw.hex()


def write_private(path: Path, key: Ed25519PrivateKey) -> None:
    """Write a private key readable only by its owner; never overwrite one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
        f.flush()
        os.fsync(f.fileno())


def read_private(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError:
        raise MenweiError(
            f"No signing key at {path}: passes can only be issued on the committee's machine "
            "(or restore its backup with `menwei restore`).",
            zh=f"{path} 没有签名密钥:通行证只能在居委会的电脑上签发(或用 menwei restore 恢复它的备份)。",
            code="no_signing_key",
        ) from None
    except ValueError as exc:
        raise MenweiError(
            f"The signing key {path} is unreadable: {exc}",
            zh=f"签名密钥 {path} 无法读取:{exc}",
            code="no_signing_key",
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise MenweiError(f"{path} is not an Ed25519 key")
    return key


def write_public_set(path: Path, community: int, keys: list[PublicKey]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "community": community,
        "keys": [{"kid": k.kid, "public_key": k.public_hex, "status": k.status} for k in keys],
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
