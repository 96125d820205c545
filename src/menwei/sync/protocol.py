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


# --- errors --------------------------------------------------------------------------------------


class ErrorBody(WireModel):
    """Every refusal: a stable code, words for people, and the server's time."""

    error: str
    message: str
    server_time: str


# --- enrollment ----------------------------------------------------------------------------------


class EnrollRequest(WireModel):
    """A gate claims its one-time enrollment token.

    The gate makes up its own API secret and sends it once, here; the server keeps only its
    SHA-256, so a retry after a lost answer (same token, same secret) gets the same answer.
    """

    protocol: int = PROTOCOL
    token: str = Field(min_length=16, max_length=200)
    api_token: str = Field(min_length=32, max_length=200)
    public_key: str = Field(pattern=r"^[0-9a-f]{64}$", description="The gate's Ed25519 key, hex")
    hostname: str = Field(default="", max_length=200)
    software: str = Field(default="", max_length=100)
    head_seq: int = Field(default=0, ge=0, description="The gate's log already holds this many")


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


class WireEvent(WireModel):
    """One event of the gate's log: its sequence number, its chain link and its body.

    `body` is the event's canonical JSON text, exactly the bytes that were hashed:
    `hash = sha256(prev_hash + "\\n" + body)`. The server checks the hash on that text and
    stores it as it came.
    """

    seq: int
    prev_hash: str
    hash: str
    body: str


class PushBatch(WireModel):
    """Consecutive events of one gate's log, from `from_seq`.

    `head_seq`/`head_hash` name the last event the gate holds: a head below what the server
    already holds means the gate was restored from an old copy.
    """

    protocol: int = PROTOCOL
    epoch: int = Field(ge=1)
    from_seq: int = Field(ge=1)
    head_seq: int = Field(ge=0)
    head_hash: str
    clock_offset_ms: int | None = None
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
