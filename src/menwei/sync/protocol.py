"""The sync protocol on the wire, version 1: what a gate and the community server exchange.

Every body is JSON. A push is gzip-compressed by the gate (`Content-Encoding: gzip`); the server
caps both the compressed and the decompressed size. Every response carries the server's time, in
the `X-Menwei-Server-Time` header and as `server_time` in the body, so a gate can measure its
clock offset at every sync.

Identities: a gate is named by the server (`c4201-g2`); its events are keyed on
(gate, epoch, seq) and on their UUIDv7 `event_id`. The server numbers each community's events in
commit order (`gseq`); gates pull "after gseq N".
"""

from __future__ import annotations

import gzip
import hashlib
import json
import zlib
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

PROTOCOL = 1
SERVER_TIME_HEADER = "X-Menwei-Server-Time"

# Batches and pages.
DEFAULT_BATCH_EVENTS = 1000
MAX_BATCH_EVENTS = 2000
DEFAULT_PAGE = 1000
MAX_PAGE = 5000
# A push body: at most this many bytes on the wire, and once decompressed.
MAX_BODY_BYTES = 4 * 1024 * 1024
MAX_DECOMPRESSED_BYTES = 16 * 1024 * 1024
# The largest integer anywhere on the wire (SQLite's and PostgreSQL's bigint).
MAX_INT = 2**63 - 1
# Other request bodies: an enrollment, and the (empty) body of any other request.
MAX_ENROLL_BODY_BYTES = 4 * 1024
MAX_OTHER_BODY_BYTES = 1024
# One event's canonical body text, and the longest text of its free fields.
MAX_EVENT_CHARS = 8 * 1024
MAX_NOTE_CHARS = 500
MAX_SCAN_CHARS = 2048
MAX_FIELD_CHARS = 200
# Batches that could not be read are kept for the IT person: the first bytes of each, once per
# distinct payload, the newest ones per gate.
MAX_REJECTED_PAYLOAD_BYTES = 64 * 1024
MAX_REJECTED_BATCHES_PER_GATE = 100
# A clock offset larger than this (about 285,000 years) is not a clock offset.
MAX_OFFSET_MS = 2**53
# Beyond this offset from the server's clock a gate warns and the server flags `clock_suspect`.
CLOCK_WARN_MS = 120_000

AnomalyKind = Literal[
    "double_exit",
    "entry_without_exit",
    "exit_outside_window",
    "revoked_pass_used",
    "overdue_return",
    "seq_reuse",
    "chain_break",
    "clock_suspect",
    "cloned_gate",
]
ANOMALY_KINDS: tuple[str, ...] = AnomalyKind.__args__  # type: ignore[attr-defined]


class WireModel(BaseModel):
    model_config = ConfigDict(extra="ignore")


class RequestModel(BaseModel):
    """What a client sends: the server refuses fields it does not know."""

    model_config = ConfigDict(extra="forbid")


# --- errors --------------------------------------------------------------------------------------


class ErrorBody(WireModel):
    """Every refusal: a stable code, words for people, and the server's time."""

    error: str
    message: str
    server_time: str


# --- enrollment ----------------------------------------------------------------------------------


class EnrollRequest(RequestModel):
    """A gate claims its one-time enrollment token.

    The gate makes up its own API secret and sends it once, here; the server keeps only its
    SHA-256, so a retry after a lost answer (same token, same secret) gets the same answer.
    """

    protocol: int = Field(default=PROTOCOL, ge=1, le=1000)
    token: str = Field(min_length=16, max_length=200)
    api_token: str = Field(min_length=32, max_length=200)
    public_key: str = Field(pattern=r"^[0-9a-f]{64}$", description="The gate's Ed25519 key, hex")
    hostname: str = Field(default="", max_length=200)
    software: str = Field(default="", max_length=100)
    head_seq: int = Field(
        default=0, ge=0, le=MAX_INT, description="The gate's log already holds this many"
    )


class EnrollResponse(WireModel):
    server_time: str
    community_id: int
    community_name: str
    gate_id: str
    gate_name: str
    epoch: int


# --- status --------------------------------------------------------------------------------------


class StatusResponse(WireModel):
    """What the server knows about the calling gate, and the community's cursors."""

    server_time: str
    protocol: int = PROTOCOL
    instance_id: str = Field(description="Changes when the server's database is a new one")
    community_id: int
    gate_id: str
    gate_name: str
    epoch: int
    acked_through_seq: int
    head_gseq: int
    ref_version: int
    anomaly_seq: int
    cursor_event_id: str | None = Field(
        default=None, description="The event at the gseq the gate asked about (its cursor)"
    )


# --- push ----------------------------------------------------------------------------------------


class WireEvent(RequestModel):
    """One event of the gate's log: its sequence number, its chain link and its body.

    `body` is the event's canonical JSON text, exactly the bytes that were hashed:
    `hash = sha256(prev_hash + "\\n" + body)`. The server checks the hash on that text and
    stores it as it came.
    """

    seq: int = Field(ge=1, le=MAX_INT)
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)
    body: str = Field(max_length=MAX_EVENT_CHARS)


class PushBatch(RequestModel):
    """Consecutive events of one gate's log, from `from_seq`.

    `head_seq`/`head_hash` name the last event the gate holds: a head below what the server
    already holds means the gate was restored from an old copy.
    """

    protocol: int = Field(default=PROTOCOL, ge=1, le=1000)
    epoch: int = Field(ge=1, le=MAX_INT)
    from_seq: int = Field(ge=1, le=MAX_INT)
    head_seq: int = Field(ge=0, le=MAX_INT)
    head_hash: str = Field(max_length=64)
    clock_offset_ms: int | None = Field(default=None, ge=-MAX_OFFSET_MS, le=MAX_OFFSET_MS)
    events: list[WireEvent] = Field(default_factory=list, max_length=MAX_BATCH_EVENTS)


class Rejection(WireModel):
    seq: int
    event_id: str | None
    reason: str
    detail: str


class PushResult(WireModel):
    """The server's answer to a batch; `acked_through_seq` is the gate's new starting point."""

    server_time: str
    gate_id: str
    epoch: int
    acked_through_seq: int
    inserted: int = 0
    duplicates: int = 0
    rejected: list[Rejection] = Field(default_factory=list)
    ignored: int = Field(default=0, description="Events past a gap: send them again")
    anomalies: int = Field(default=0, description="Anomalies raised or changed by this batch")
    head_gseq: int = 0
    forked: bool = Field(default=False, description="A new epoch began (restored gate)")
    repull_after: int | None = Field(
        default=None, description="Pull again from here: events this gate no longer holds"
    )
    repull_event_id: str | None = Field(default=None, description="The event at repull_after")


# --- pull ----------------------------------------------------------------------------------------


class RemoteEvent(WireModel):
    gseq: int
    gate_id: str
    epoch: int
    seq: int
    body: dict[str, Any]


class EventsPage(WireModel):
    """`cursor_event_id` is the event at `next_after`: the gate keeps it with its cursor and
    checks it at the next sync (a server restored from a backup holds other events there)."""

    server_time: str
    events: list[RemoteEvent]
    next_after: int
    head_gseq: int
    more: bool
    cursor_event_id: str | None = None


class HouseholdRecord(WireModel):
    household: int
    building: str = ""
    unit: str = ""
    room: str = ""
    group: str = ""
    members: int = 0
    category: str = "normal"
    contact: str | None = None
    deleted: bool = False


class RevocationRecord(WireModel):
    household: int
    min_serial: int
    reason: str | None = None
    revoked_at: str = ""
    deleted: bool = False


class KeyRecord(WireModel):
    kid: int
    public_key: str
    status: str = "active"


class PolicyRecord(WireModel):
    sha256: str
    text: str
    created_at: str


class ReferenceDelta(WireModel):
    """Reference data changed after version `since`; deleted rows come as tombstones."""

    server_time: str
    since: int
    version: int
    households: list[HouseholdRecord] = Field(default_factory=list)
    revocations: list[RevocationRecord] = Field(default_factory=list)
    keys: list[KeyRecord] = Field(default_factory=list)
    policy: PolicyRecord | None = None


class AnomalyRecord(WireModel):
    anomaly_id: str
    aseq: int
    kind: str
    household: int | None = None
    gate_id: str | None = None
    event_ids: list[str] = Field(default_factory=list)
    detail: str = ""
    status: Literal["open", "withdrawn"] = "open"
    detected_at: str
    updated_at: str


class AnomaliesPage(WireModel):
    server_time: str
    anomalies: list[AnomalyRecord]
    next_after: int
    more: bool


class Snapshot(WireModel):
    """Everything a new (or too far behind) gate needs, as one consistent picture."""

    server_time: str
    community_id: int
    community_name: str
    ref_version: int
    head_gseq: int
    cursor_event_id: str | None = None
    anomaly_seq: int
    households: list[HouseholdRecord]
    revocations: list[RevocationRecord]
    keys: list[KeyRecord]
    policy: PolicyRecord | None
    events: list[RemoteEvent]
    anomalies: list[AnomalyRecord]


# --- pass texts ----------------------------------------------------------------------------------


def scan_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def without_scan_text(body: dict[str, Any]) -> dict[str, Any]:
    """An event body as other gates receive it: the scanned text replaced by its SHA-256
    (`scan_sha256`). Pass texts stay on the gate that scanned them and on the server."""
    scan = body.get("scan")
    if "scan" not in body:
        return body
    out = {k: v for k, v in body.items() if k != "scan"}
    if isinstance(scan, str):
        out["scan_sha256"] = scan_sha256(scan)
    return out


def without_scan_text_json(text: str) -> str:
    """The same for a body as JSON text (left as it is when it holds no scanned text)."""
    if '"scan":' not in text:
        return text
    try:
        body = json.loads(text)
    except ValueError:
        return text
    if not isinstance(body, dict) or body.get("scan") is None:
        return text
    return json.dumps(
        without_scan_text(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )


# --- compression ---------------------------------------------------------------------------------


class TooLarge(ValueError):
    """A body over the size limit (compressed or decompressed)."""


def gzip_bytes(data: bytes, level: int = 6) -> bytes:
    return gzip.compress(data, compresslevel=level, mtime=0)


def gunzip_bounded(data: bytes, limit: int = MAX_DECOMPRESSED_BYTES) -> bytes:
    """Decompress gzip data, refusing to produce more than `limit` bytes (a zip-bomb guard)."""
    inflater = zlib.decompressobj(wbits=31)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise ValueError(f"not gzip data: {exc}") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise TooLarge(f"the body is larger than {limit} bytes once decompressed")
    if not inflater.eof:
        raise ValueError("truncated gzip data")
    return out
