"""USB bundles: a gate's push batches in a file, for a gate with no network.

`menwei export --out FILE` on the gate writes its events not yet acknowledged (or all of them)
as the same batches a push would send, signed with the gate's own Ed25519 key (registered at
enrollment). `menwei server import FILE` checks the signature and feeds the batches to the same
idempotent ingest as a push: importing a bundle twice, or a bundle whose events were pushed
meanwhile, stores nothing twice.

File: gzip of one JSON document `{"format": "menwei-bundle/1", "community_id", "gate_id",
"epoch", "created_at", "head_seq", "head_hash", "batches": [...], "signature"}`; the signature is
over the SHA-256 of the canonical JSON of everything else.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import ValidationError

from menwei.core.clock import iso
from menwei.core.community import community_info
from menwei.core.errors import MenweiError
from menwei.core.eventlog import canonical
from menwei.core.home import Home
from menwei.core.store import Store
from menwei.sync import apply
from menwei.sync.client import build_batch
from menwei.sync.credentials import Credentials
from menwei.sync.protocol import DEFAULT_BATCH_EVENTS, PushBatch, gunzip_bounded, gzip_bytes
from menwei.sync.server.storage import ServerStorage

FORMAT = "menwei-bundle/1"
MAX_BUNDLE_BYTES = 512 * 1024 * 1024


class GateRevokedBundle(MenweiError):
    """A bundle from a revoked gate, or signed with a key it held before its revocation."""

    def __init__(self, message: str, *, zh: str) -> None:
        super().__init__(f"{zh}\n{message}")
        self.code = "gate_revoked"


def _digest(doc: dict[str, Any]) -> bytes:
    unsigned = {k: v for k, v in doc.items() if k != "signature"}
    return hashlib.sha256(canonical(unsigned).encode("utf-8")).digest()


@dataclass(frozen=True)
class ExportResult:
    path: str
    gate_id: str
    epoch: int
    from_seq: int
    to_seq: int
    events: int
    bytes: int

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def export_bundle(
    home: Home, out: Path, *, everything: bool = False, now: datetime, batch_size: int = 0
) -> ExportResult:
    """Write this gate's events not yet acknowledged (`everything`: all) to a signed bundle."""
    creds = Credentials.load(home)
    store = Store.open(home.db_path)
    try:
        values = apply.get_state(store)
        info = community_info(store)
        epoch = apply.state_int(values, "push_epoch", info.epoch) or info.epoch
        after = 0 if everything else apply.state_int(values, "acked_through_seq")
        first = after + 1
        batches: list[dict[str, Any]] = []
        head_seq, head_hash = apply.local_head(store)
        offset = values.get("clock_offset_ms")
        while True:
            batch = build_batch(
                store,
                after=after,
                limit=batch_size or DEFAULT_BATCH_EVENTS,
                epoch=epoch,
                offset_ms=int(offset) if offset is not None else None,
            )
            if not batch.events and batches:
                break
            batches.append(batch.model_dump(mode="json"))
            if not batch.events:
                break
            after = batch.events[-1].seq
    finally:
        store.close()
    doc: dict[str, Any] = {
        "format": FORMAT,
        "community_id": info.community,
        "gate_id": creds.gate_id,
        "epoch": epoch,
        "created_at": iso(now),
        "head_seq": head_seq,
        "head_hash": head_hash,
        "batches": batches,
    }
    doc["signature"] = creds.key.sign(_digest(doc)).hex()
    data = gzip_bytes(json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    # A bundle is a copy of the gate's log (pass texts included): its owner's eyes only.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, out)
    count = sum(len(b["events"]) for b in batches)
    return ExportResult(str(out), creds.gate_id, epoch, first, first + count - 1, count, len(data))


@dataclass
class ImportResult:
    gate_id: str
    batches: int = 0
    inserted: int = 0
    duplicates: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)
    ignored: int = 0
    anomalies: int = 0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def read_bundle(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise MenweiError(f"Cannot read {path}: {exc}") from None
    try:
        doc = json.loads(gunzip_bounded(raw, MAX_BUNDLE_BYTES))
    except ValueError as exc:
        raise MenweiError(f"{path} is not a menwei bundle: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise MenweiError(f"{path} is not a menwei bundle (format {FORMAT}).")
    return doc


def _verified(public_hex: str, doc: dict[str, Any]) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex)).verify(
            bytes.fromhex(str(doc.get("signature", ""))), _digest(doc)
        )
    except (InvalidSignature, ValueError):
        return False
    return True


def import_bundle(
    storage: ServerStorage, community_id: int, path: Path, *, now: datetime
) -> ImportResult:
    """Check a bundle's signature and store its batches through the ingest of pushes."""
    doc = read_bundle(path)
    if doc.get("community_id") != community_id:
        raise MenweiError(
            f"{path} is from community {doc.get('community_id')}, this server serves "
            f"community {community_id}."
        )
    gate_id = str(doc.get("gate_id"))
    gate = next((g for g in storage.list_gates(community_id) if g.gate_id == gate_id), None)
    if gate is None:
        raise MenweiError(f"{path} is from gate {gate_id}, which this server does not know.")
    if gate.status == "revoked":
        raise GateRevokedBundle(
            f"{path} is from gate {gate.name} ({gate_id}), which was revoked on "
            f"{gate.revoked_at}: its bundles are not imported. Nothing was imported.",
            zh=f"门岗 {gate.name} ({gate_id}) 已于 {gate.revoked_at} 撤销,不导入它的文件。",
        )
    keys = storage.gate_public_keys(community_id, gate_id)
    if not any(_verified(key, doc) for key in keys):
        if gate.revoked_at:
            raise GateRevokedBundle(
                f"{path} is not signed by a current key of gate {gate.name} ({gate_id}): the "
                f"keys it held until it was revoked on {gate.revoked_at} sign nothing any more "
                "(or the file was altered). Nothing was imported.",
                zh=f"该文件不是门岗 {gate.name} 现用密钥签名的(撤销前的密钥已作废),未导入。",
            )
        raise MenweiError(
            f"{path} does not carry a valid signature of gate {gate_id}: it was altered or "
            "is not from that gate. Nothing was imported."
        )
    result = ImportResult(gate_id)
    try:
        batches = [PushBatch.model_validate(b) for b in doc.get("batches", [])]
    except ValidationError as exc:
        raise MenweiError(f"{path} holds a batch that is not valid: {exc}") from None
    for batch in batches:
        r = storage.push(gate_id, batch, now=now, source="import")
        result.batches += 1
        result.inserted += r.inserted
        result.duplicates += r.duplicates
        result.rejected += [x.model_dump() for x in r.rejected]
        result.ignored += r.ignored
        result.anomalies += r.anomalies
    return result
