"""What the community server needs from its storage, so a PostgreSQL backend can follow SQLite.

The rules every backend keeps:

- `push` is one transaction: events, stream bookkeeping, projections and anomalies commit
  together, or nothing does. It is idempotent on (gate, epoch, seq) and on `event_id`.
- `gseq` is assigned in commit order per community (SQLite: the rowid under one writer;
  PostgreSQL: a per-community counter row updated in the same transaction, so that concurrent
  transactions can never become visible out of order).
- Only hashes of tokens are stored.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime

from menwei.core.errors import MenweiError
from menwei.sync.protocol import (
    AnomaliesPage,
    AnomalyRecord,
    EnrollRequest,
    EnrollResponse,
    PushBatch,
    PushResult,
    ReferenceDelta,
    Snapshot,
    StatusResponse,
)


class StorageError(MenweiError):
    """A request the server refuses; `code` is the stable error code on the wire.

    Storage knows nothing of HTTP: the web layer (`app.py`) maps each class to a status code.
    """

    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None):
        super().__init__(message)
        if code is not None:
            self.code = code


class AuthRefused(StorageError):
    """An unknown, used or expired token."""

    code = "unauthorized"


class GateRevoked(StorageError):
    code = "gate_revoked"


class MustRefetch(StorageError):
    """The cursor is too old for a delta: fetch a snapshot."""

    code = "must_refetch"


class NotEnrolled(StorageError):
    """A gate pushed before it enrolled."""

    code = "not_enrolled"


class NotFound(StorageError):
    code = "not_found"


@dataclass(frozen=True)
class GateAuth:
    """The gate a valid API token belongs to."""

    gate_id: str
    community_id: int
    name: str
    epoch: int


@dataclass(frozen=True)
class GateInfo:
    gate_id: str
    name: str
    status: str
    epoch: int
    created_at: str
    enrolled_at: str | None
    revoked_at: str | None
    last_seen_at: str | None
    clock_offset_ms: int | None
    hostname: str | None
    events: int
    acked_through_seq: int

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class EnrollmentToken:
    gate_id: str
    name: str
    token: str
    expires_at: str


@dataclass(frozen=True)
class Presence:
    household: int
    state: str
    since: str
    gate_id: str
    event_id: str


@dataclass(frozen=True)
class HouseholdRef:
    household: int
    building: str
    unit: str
    room: str
    group: str
    members: int
    category: str
    contact: str | None


@dataclass(frozen=True)
class RevocationRef:
    household: int
    min_serial: int
    reason: str | None
    revoked_at: str


@dataclass(frozen=True)
class KeyRef:
    kid: int
    public_key: str
    status: str


@dataclass(frozen=True)
class PolicyRef:
    home_version: int
    sha256: str
    text: str
    created_at: str


@dataclass(frozen=True)
class StoredEvent:
    """An event as stored: `body` is its canonical JSON text, exactly as the gate hashed it."""

    gseq: int
    gate_id: str
    epoch: int
    seq: int
    body: str


@dataclass(frozen=True)
class StoredEventsPage:
    """A page of `/v1/events` as values; the web layer writes it out (`protocol.EventsPage`)
    without parsing the bodies again."""

    server_time: str
    events: tuple[StoredEvent, ...]
    next_after: int
    head_gseq: int
    more: bool
    cursor_event_id: str | None


@dataclass(frozen=True)
class ReferenceData:
    """The reference data the IT person maintains in the server's home (roster, keys, ...)."""

    households: dict[int, HouseholdRef] = field(default_factory=dict)
    revocations: dict[int, RevocationRef] = field(default_factory=dict)
    keys: dict[int, KeyRef] = field(default_factory=dict)
    policies: tuple[PolicyRef, ...] = ()


class ServerStorage(ABC):
    """The community server's storage. Implementations are safe to call from several threads."""

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def instance_id(self) -> str:
        """A random id made with the database: a gate that sees it change starts over."""

    # --- community and reference data ---------------------------------------------------------

    @abstractmethod
    def ensure_community(self, community_id: int, name: str, *, now: datetime) -> None: ...

    @abstractmethod
    def refresh_reference(self, community_id: int, data: ReferenceData, *, now: datetime) -> int:
        """Version what changed (one new version for all of it); return the current version."""

    @abstractmethod
    def prune_tombstones(self, community_id: int) -> int:
        """Drop tombstones; deltas from before now need a snapshot. Returns the new floor."""

    @abstractmethod
    def reference_delta(self, community_id: int, since: int, *, now: datetime) -> ReferenceDelta:
        """Raises MustRefetch when `since` is below the tombstone floor or above the version."""

    # --- gates --------------------------------------------------------------------------------

    @abstractmethod
    def add_gate(
        self, community_id: int, name: str, *, now: datetime, valid_for_hours: int = 72
    ) -> EnrollmentToken:
        """A one-time enrollment token for gate NAME (new, or re-enrolling an existing one)."""

    @abstractmethod
    def revoke_gate(self, community_id: int, name: str, *, now: datetime) -> GateInfo: ...

    @abstractmethod
    def list_gates(self, community_id: int) -> list[GateInfo]: ...

    @abstractmethod
    def enroll(self, community_id: int, request: EnrollRequest, *, now: datetime) -> EnrollResponse:
        """Claim an enrollment token: a new epoch and API token for the gate."""

    @abstractmethod
    def authenticate(self, api_token: str, *, now: datetime) -> GateAuth:
        """The gate of a token; AuthRefused or GateRevoked otherwise."""

    @abstractmethod
    def gate_public_keys(self, community_id: int, gate_id: str) -> list[str]:
        """Every Ed25519 key the gate enrolled with (a replaced laptop's bundles still verify)."""

    @abstractmethod
    def status(self, gate: GateAuth, *, now: datetime, cursor: int = 0) -> StatusResponse:
        """The gate's standing; `cursor_event_id` names the event at gseq `cursor`."""

    # --- events -------------------------------------------------------------------------------

    @abstractmethod
    def push(
        self,
        gate_id: str,
        batch: PushBatch,
        *,
        now: datetime,
        source: str = "push",
    ) -> PushResult: ...

    @abstractmethod
    def reject_batch(
        self, gate_id: str, payload: bytes, reason: str, detail: str, *, now: datetime
    ) -> None:
        """Keep a batch that could not even be read, with the reason."""

    @abstractmethod
    def events_page(
        self, gate: GateAuth, after: int, limit: int, *, now: datetime
    ) -> StoredEventsPage:
        """Other gates' events after `after`, in gseq order, with their stored bodies."""

    @abstractmethod
    def snapshot(self, gate: GateAuth, *, now: datetime, days: int = 14) -> Snapshot: ...

    @abstractmethod
    def anomalies_page(
        self, community_id: int, after: int, limit: int, *, now: datetime
    ) -> AnomaliesPage: ...

    @abstractmethod
    def list_anomalies(
        self, community_id: int, *, include_withdrawn: bool = False
    ) -> list[AnomalyRecord]: ...

    @abstractmethod
    def presence(self, community_id: int) -> dict[int, Presence]: ...

    @abstractmethod
    def event_ids(self, community_id: int) -> list[str]:
        """Every stored event id in gseq order (for checks and reports)."""
