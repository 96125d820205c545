"""TLS for a community server on a LAN: a self-signed certificate, pinned by each gate.

A compound's server is usually a laptop with no public name, so no public CA vouches for it.
Instead a gate pins the certificate it saw at enrollment (checked against the fingerprint the
IT person read off `menwei server gate add`) and from then on trusts that certificate only.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import socket
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from menwei.core.errors import MenweiError


def fingerprint(pem: str) -> str:
    """SHA-256 of the certificate (DER), as lowercase hex."""
    der = ssl.PEM_cert_to_DER_cert(pem)
    return hashlib.sha256(der).hexdigest()


def short(fp: str) -> str:
    """A fingerprint in groups of four, easier to compare by eye."""
    return " ".join(fp[i : i + 4] for i in range(0, len(fp), 4))


def normalise_fingerprint(text: str) -> str:
    fp = "".join(c for c in text.lower() if c in "0123456789abcdef")
    if len(fp) != 64:
        raise MenweiError("A certificate fingerprint is 64 hex digits (SHA-256).")
    return fp


def fetch_server_certificate(host: str, port: int, timeout: float = 10.0) -> str:
    """The certificate a TLS server presents (not verified: the caller pins it)."""
    try:
        return ssl.get_server_certificate((host, port), timeout=timeout)
    except (OSError, ssl.SSLError) as exc:
        raise MenweiError(
            f"Could not read the server's certificate at {host}:{port}: {exc}"
        ) from None


def pinned_context(pem: str) -> ssl.SSLContext:
    """A client context that trusts exactly this certificate, whatever name the server has."""
    ctx = ssl.create_default_context(cadata=pem)
    ctx.check_hostname = False
    ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    return ctx


def make_self_signed(cert_path: Path, key_path: Path, *, hosts: list[str] | None = None) -> str:
    """Write a self-signed certificate and key (mode 0600) valid 10 years; return its PEM."""
    names = {"localhost", socket.gethostname(), *(hosts or [])}
    sans: list[x509.GeneralName] = []
    for name in sorted(n for n in names if n):
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            sans.append(x509.DNSName(name))
    sans.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "menwei community server")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    key_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    pem = cert.public_bytes(serialization.Encoding.PEM).decode("ascii")
    cert_path.write_text(pem, encoding="ascii")
    return pem
