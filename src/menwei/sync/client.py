"""The gate side of sync: enroll once, then `sync_once` whenever the network is there.

One sync: measure the clock offset, bring the reference data up to date (revocations first of
all), push this gate's events from the last acknowledged one, pull the other gates' events and
the anomalies. Every step stores its cursor with its data; any failure leaves the gate as it
was, and the next sync goes on from there. Safe to run from its own thread: it opens (and
closes) its own database connection unless given one.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from menwei.core.clock import Clock, SystemClock, iso, parse_iso
from menwei.core.errors import MenweiError
from menwei.core.home import Home
from menwei.core.store import Store
from menwei.sync import apply, tls
from menwei.sync.credentials import Credentials, NotEnrolled
from menwei.sync.protocol import (
    CLOCK_WARN_MS,
    DEFAULT_BATCH_EVENTS,
    DEFAULT_PAGE,
    AnomaliesPage,
    EnrollRequest,
    EnrollResponse,
    EventsPage,
    PushBatch,
    PushResult,
    ReferenceDelta,
    Snapshot,
    StatusResponse,
    WireEvent,
    gzip_bytes,
)

M = TypeVar("M", bound=BaseModel)
# Further behind than this many events, a gate takes a snapshot rather than every event.
SNAPSHOT_LAG = 100_000

__all__ = [
    "CertificateMismatch",
    "NotEnrolled",
    "SyncClient",
    "SyncError",
    "SyncOffline",
    "SyncRefused",
    "SyncResult",
    "sync_once",
]


class SyncError(MenweiError):
    """Sync failed for a reason other than the network or the token (exit 1)."""

    outcome = "error"


class SyncOffline(SyncError):
    """The server could not be reached: nothing is lost, the next sync retries (exit 2)."""

    exit_code = 2
    outcome = "offline"


class SyncRefused(SyncError):
    """The server refused this gate's token: revoked or unknown (exit 3)."""

    exit_code = 3
    outcome = "auth"


class CertificateMismatch(SyncError):
    """The server shows a certificate other than the pinned (or given) one: maybe an impostor
    (exit 4, so that cron can tell it from any other failure)."""

    exit_code = 4
    outcome = "certificate_mismatch"


class _MustRefetch(Exception):
    pass


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) < 200 else text[:200] + "..."


class SyncClient:
    """HTTP to the community server: one method per endpoint, errors turned into words."""

    def __init__(
        self,
        url: str,
        *,
        api_token: str | None = None,
        cert_pem: str | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 30.0,
        clock: Clock | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.clock = clock or SystemClock()
        headers = {"User-Agent": "menwei-gate/1"}
        if api_token:
            headers["Authorization"] = f"Bearer {api_token}"
        verify: Any = tls.pinned_context(cert_pem) if cert_pem else True
        self.http = httpx.Client(
            base_url=self.url,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            transport=transport,
            verify=verify,
        )
        self.bytes_sent = 0
        self.bytes_received = 0

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.ConnectError as exc:
            if "CERTIFICATE_VERIFY_FAILED" in str(exc):
                raise CertificateMismatch(
                    f"服务器证书与接入时固定的不符,可能不是小区的服务器。\n"
                    f"The server at {self.url} shows a certificate other than the one pinned at "
                    "enrollment: it may not be the community's server. If the server's "
                    "certificate was really changed, enroll this gate again."
                ) from None
            raise SyncOffline(
                f"The server at {self.url} cannot be reached ({_reason(exc)}). Nothing is "
                "lost: the events wait here and the next sync sends them."
            ) from None
        except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
            raise SyncOffline(
                f"The connection to {self.url} broke off ({_reason(exc)}). Nothing is lost: "
                "the next sync picks up where this one stopped."
            ) from None
        except httpx.HTTPError as exc:
            raise SyncError(f"Talking to {self.url} failed: {_reason(exc)}") from None
        self.bytes_received += response.num_bytes_downloaded
        if response.status_code < 400:
            return response
        try:
            body = response.json()
            code, message = str(body.get("error", "")), str(body.get("message", ""))
        except (ValueError, AttributeError):
            code, message = "", response.text[:200]
        if response.status_code in (401, 403):
            raise SyncRefused(
                f"The server refused this gate ({message or response.status_code}). "
                "Ask the IT person for a new enrollment token."
            )
        if response.status_code == 409 and code == "must_refetch":
            raise _MustRefetch(message)
        if response.status_code in (502, 503, 504):
            raise SyncOffline(f"The server at {self.url} is not available right now ({message}).")
        raise SyncError(
            f"The server refused the request ({response.status_code} {code}): {message}"
        )

    def _model(self, model: type[M], response: httpx.Response) -> M:
        try:
            return model.model_validate_json(response.content)
        except ValidationError as exc:
            raise SyncError(
                f"The server at {self.url} answered something this gate does not understand "
                f"({exc.error_count()} problems): is it a menwei server of the same version?"
            ) from None

    # --- endpoints ----------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        data = self._request("GET", "/v1/health").json()
        if not isinstance(data, dict) or "community_id" not in data:
            raise SyncError(f"{self.url} does not look like a menwei server.")
        return data

    def enroll(self, request: EnrollRequest) -> EnrollResponse:
        return self._model(
            EnrollResponse, self._request("POST", "/v1/enroll", json=request.model_dump())
        )

    def status(self, cursor: int = 0) -> tuple[StatusResponse, int]:
        """The server's status and the clock offset measured with it (server minus gate, ms)."""
        sent = self.clock.now()
        response = self._request("GET", "/v1/status", params={"cursor": cursor})
        received = self.clock.now()
        status = self._model(StatusResponse, response)
        middle = sent + (received - sent) / 2
        offset = parse_iso(status.server_time) - middle
        return status, round(offset.total_seconds() * 1000)

    def push(self, batch: PushBatch | bytes, *, compressed: bool = False) -> PushResult:
        """Send a batch (a model, or its JSON as bytes, maybe already gzipped)."""
        data = batch if isinstance(batch, bytes) else batch.model_dump_json().encode("utf-8")
        body = data if compressed else gzip_bytes(data)
        self.bytes_sent += len(body)
        response = self._request(
            "POST",
            "/v1/push",
            content=body,
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        )
        return self._model(PushResult, response)

    def events(self, after: int, limit: int = DEFAULT_PAGE) -> EventsPage:
        response = self._request("GET", "/v1/events", params={"after": after, "limit": limit})
        return self._model(EventsPage, response)

    def reference(self, since: int) -> ReferenceDelta:
        return self._model(
            ReferenceDelta, self._request("GET", "/v1/reference", params={"since": since})
        )

    def snapshot(self) -> Snapshot:
        return self._model(Snapshot, self._request("GET", "/v1/snapshot"))

    def anomalies(self, after: int, limit: int = DEFAULT_PAGE) -> AnomaliesPage:
        response = self._request("GET", "/v1/anomalies", params={"after": after, "limit": limit})
        return self._model(AnomaliesPage, response)


def client_for(
    creds: Credentials,
    *,
    transport: httpx.BaseTransport | None = None,
    timeout: float = 30.0,
    clock: Clock | None = None,
) -> SyncClient:
    return SyncClient(
        creds.url,
        api_token=creds.api_token,
        cert_pem=creds.cert_pem,
        transport=transport,
        timeout=timeout,
        clock=clock,
    )


# --- one sync ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SyncResult:
    """What one sync did. `reload_needed`: call `GateService.reload()` on open gate services."""

    gate_id: str
    epoch: int
    pushed: int = 0
    duplicates: int = 0
    rejected: int = 0
    acked_through_seq: int = 0
    waiting: int = 0
    pulled: int = 0
    households: frozenset[int] = frozenset()
    reference_changed: bool = False
    snapshot: bool = False
    anomalies: int = 0
    clock_offset_ms: int = 0
    forked: bool = False
    bytes_sent: int = 0
    bytes_received: int = 0
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def clock_warning(self) -> bool:
        return abs(self.clock_offset_ms) > CLOCK_WARN_MS

    @property
    def reload_needed(self) -> bool:
        return bool(self.pulled or self.reference_changed or self.snapshot or self.forked)

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["households"] = sorted(self.households)
        d["warnings"] = list(self.warnings)
        d["clock_warning"] = self.clock_warning
        d["reload_needed"] = self.reload_needed
        return d


def _wire_events(rows: list[dict[str, Any]]) -> list[WireEvent]:
    return [
        WireEvent.model_construct(
            seq=int(r["seq"]), prev_hash=r["prev_hash"], hash=r["hash"], body=r["body"]
        )
        for r in rows
    ]


def build_batch(
    store: Store, *, after: int, limit: int, epoch: int, offset_ms: int | None
) -> PushBatch:
    """The next batch of this gate's events after seq `after`."""
    head_seq, head_hash = apply.local_head(store)
    rows = store.query(
        "select seq, prev_hash, hash, body from events where seq > ? order by seq limit ?",
        [after, limit],
    )
    return PushBatch.model_construct(
        protocol=1,
        epoch=epoch,
        from_seq=after + 1,
        head_seq=head_seq,
        head_hash=head_hash,
        clock_offset_ms=offset_ms,
        events=_wire_events(rows),
    )


_string = json.JSONEncoder(ensure_ascii=False).encode


@dataclass(frozen=True)
class RawBatch:
    """A push batch as wire JSON, built from the stored canonical bodies without parsing them."""

    data: bytes  # gzip-compressed
    count: int
    head_seq: int
    last_seq: int


def build_raw_batch(
    store: Store, *, after: int, limit: int, epoch: int, offset_ms: int | None
) -> RawBatch:
    head_seq, head_hash = apply.local_head(store)
    rows = store.db.execute(
        "select seq, prev_hash, hash, body from events where seq > ? order by seq limit ?",
        [after, limit],
    ).fetchall()
    events = ",".join(
        f'{{"seq":{r[0]},"prev_hash":"{r[1]}","hash":"{r[2]}","body":{_string(r[3])}}}'
        for r in rows
    )
    offset = "null" if offset_ms is None else str(int(offset_ms))
    data = (
        f'{{"protocol":1,"epoch":{int(epoch)},"from_seq":{after + 1},"head_seq":{head_seq},'
        f'"head_hash":"{head_hash}","clock_offset_ms":{offset},"events":[{events}]}}'
    )
    return RawBatch(
        gzip_bytes(data.encode("utf-8")), len(rows), head_seq, int(rows[-1][0]) if rows else after
    )


class _Sync:
    def __init__(
        self,
        store: Store,
        client: SyncClient,
        clock: Clock,
        *,
        batch_size: int,
        page_size: int,
        retries: int,
        backoff: float,
        snapshot_lag: int,
    ) -> None:
        self.snapshot_lag = snapshot_lag
        self.store = store
        self.client = client
        self.clock = clock
        self.batch_size = batch_size
        self.page_size = page_size
        self.retries = retries
        self.backoff = backoff
        self.pushed = self.duplicates = self.rejected = self.pulled = self.anomalies = 0
        self.households: set[int] = set()
        self.reference_changed = self.snapshot = self.forked = False
        self.warnings: list[str] = []

    def now(self) -> str:
        return iso(self.clock.now())

    def run(self) -> SyncResult:
        state = apply.get_state(self.store)
        after = apply.state_int(state, "pull_after_gseq")
        status, offset = self.client.status(after)
        with self.store.write() as db:
            apply.set_state(
                db,
                clock_offset_ms=offset,
                clock_measured_at=self.now(),
                last_attempt_at=self.now(),
            )
        if abs(offset) > CLOCK_WARN_MS:
            self.warnings.append(
                f"This laptop's clock is {abs(offset) / 60000:.1f} min "
                f"{'behind' if offset > 0 else 'ahead of'} the server's: set it right."
            )
        fresh_server = state.get("server_instance") not in (None, status.instance_id)
        # Another event (or none) where the cursor points: the server's database was restored
        # from a backup and filled up again differently. Start over from a snapshot.
        moved = status.cursor_event_id != state.get("pull_cursor_event")
        far_behind = status.head_gseq - after > self.snapshot_lag
        if fresh_server or moved or far_behind:
            self._snapshot()
        else:
            self._reference(apply.state_int(state, "ref_version"))
        with self.store.write() as db:
            apply.set_state(db, server_instance=status.instance_id)
        acked, epoch = self._push(status, offset)
        self._anchor(acked, epoch, status.gate_id)
        self._pull()
        self._anomalies()
        head_seq, _ = apply.local_head(self.store)
        return SyncResult(
            gate_id=status.gate_id,
            epoch=epoch,
            pushed=self.pushed,
            duplicates=self.duplicates,
            rejected=self.rejected,
            acked_through_seq=acked,
            waiting=max(0, head_seq - acked),
            pulled=self.pulled,
            households=frozenset(self.households),
            reference_changed=self.reference_changed,
            snapshot=self.snapshot,
            anomalies=self.anomalies,
            clock_offset_ms=offset,
            forked=self.forked,
            bytes_sent=self.client.bytes_sent,
            bytes_received=self.client.bytes_received,
            warnings=tuple(self.warnings),
        )

    def _anchor(self, acked: int, epoch: int, gate_id: str) -> None:
        """Keep, outside the database file, the head of the log the server acknowledged."""
        from menwei.core import integrity

        if self.store.path is None or acked <= 0:
            return
        row = self.store.one("select hash from events where seq = ?", [acked])
        if row is None:
            return
        anchor = integrity.Anchor(acked, str(row["hash"]), epoch, gate_id, self.now())
        try:
            integrity.write_anchor(self.store.path, anchor)
        except OSError as exc:
            self.warnings.append(f"The sync anchor beside the database was not written: {exc}")

    def _snapshot(self) -> None:
        snap = self.client.snapshot()
        self.households |= apply.apply_snapshot(self.store, snap, now=self.now())
        self.snapshot = True

    def _reference(self, since: int) -> None:
        try:
            delta = self.client.reference(since)
        except _MustRefetch:
            self._snapshot()
            return
        if delta.version != since or delta.households or delta.policy:
            self.reference_changed |= apply.apply_reference(self.store, delta, now=self.now())
        warning = apply.get_state(self.store).get("policy_warning")
        if warning:
            self.warnings.append(warning)

    def _push_with_retries(self, batch: bytes) -> tuple[PushResult, bool]:
        """The server's answer, and whether the batch was sent more than once (an earlier
        attempt may have been stored before its answer was lost)."""
        attempt = 0
        while True:
            try:
                return self.client.push(batch, compressed=True), attempt > 0
            except SyncOffline:
                attempt += 1
                if attempt > self.retries:
                    raise
                time.sleep(self.backoff * attempt)

    def _push(self, status: StatusResponse, offset: int) -> tuple[int, int]:
        """Push from the last acknowledged event until the server holds them all.

        While a batch is on the wire the next one is read and compressed (this thread owns the
        database; the request runs in a helper thread, the only one using the HTTP client).
        """
        values = apply.get_state(self.store)
        acked = apply.state_int(values, "acked_through_seq")
        epoch = apply.state_int(values, "push_epoch", status.epoch) or status.epoch
        stalled = rewinds = 0
        if status.epoch == epoch and status.acked_through_seq < acked:
            # The server holds less than it once acknowledged (restored from a backup): send
            # again from what it holds; it keeps nothing twice.
            acked = status.acked_through_seq
        # Send even an empty batch when the server holds more than this gate (restored from an
        # old copy) or names another epoch (an answer was lost): its answer says where we are.
        probe = status.acked_through_seq > apply.local_head(self.store)[0] or status.epoch != epoch

        def build(after: int) -> RawBatch:
            return build_raw_batch(
                self.store, after=after, limit=self.batch_size, epoch=epoch, offset_ms=offset
            )

        batch = build(acked)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="menwei-push") as sender:
            while True:
                if not batch.count and not probe:
                    return acked, epoch
                probe = False
                answer = sender.submit(self._push_with_retries, batch.data)
                ahead = build(batch.last_seq) if batch.count else None
                result, resent = answer.result()
                new = apply.apply_push_result(
                    self.store, result, head_seq=batch.head_seq, now=self.now()
                )
                # The summary counts what was new to the server: after a resend, what the
                # server calls duplicates came from this sync's own lost attempt.
                self.pushed += result.inserted + (result.duplicates if resent else 0)
                self.duplicates += 0 if resent else result.duplicates
                self.rejected += len(result.rejected)
                self.forked |= result.forked
                if new > acked:
                    stalled = 0
                elif new < acked:
                    # The server holds less than it acknowledged before (restored from a
                    # backup): send again from where it is.
                    rewinds += 1
                elif batch.count:
                    stalled += 1
                if stalled > 2 or rewinds > 3:
                    raise SyncError(
                        f"The server does not take this gate's events from seq {acked + 1} on; "
                        "they are kept here. Tell the IT person."
                    )
                acked = new
                if not batch.count:
                    return acked, result.epoch
                if ahead is not None and new == batch.last_seq and result.epoch == epoch:
                    batch = ahead
                else:
                    epoch = result.epoch
                    batch = build(acked)

    def _pull(self) -> None:
        after = apply.state_int(apply.get_state(self.store), "pull_after_gseq")
        while True:
            page = self.client.events(after, self.page_size)
            self.households |= apply.apply_events(
                self.store, page.events, page.next_after, page.cursor_event_id
            )
            self.pulled += len(page.events)
            after = page.next_after
            if not page.more:
                return

    def _anomalies(self) -> None:
        after = apply.state_int(apply.get_state(self.store), "anomaly_after")
        while True:
            page = self.client.anomalies(after, self.page_size)
            apply.apply_anomalies(self.store, page.anomalies, page.next_after)
            self.anomalies += len(page.anomalies)
            after = page.next_after
            if not page.more:
                return


@contextmanager
def _own_store(home: Home, store: Store | None) -> Iterator[Store]:
    if store is not None:
        yield store
        return
    opened = Store.open(home.db_path)
    # Everything sync writes can be fetched again (the server is idempotent), so its own
    # connection need not wait for the disk at every commit; the gate's events keep FULL.
    opened.db.execute("PRAGMA synchronous=NORMAL")
    try:
        yield opened
    finally:
        opened.close()


def sync_once(
    home: Home,
    *,
    store: Store | None = None,
    transport: httpx.BaseTransport | None = None,
    clock: Clock | None = None,
    batch_size: int = DEFAULT_BATCH_EVENTS,
    page_size: int = DEFAULT_PAGE,
    timeout: float = 30.0,
    retries: int = 2,
    backoff: float = 0.5,
    snapshot_lag: int = SNAPSHOT_LAG,
) -> SyncResult:
    """Sync this gate with its server once. Raises SyncOffline, SyncRefused or SyncError.

    A gate more than `snapshot_lag` events behind takes a snapshot (reference data, the last
    two weeks of events and every household's last trip) instead of every event. The outcome
    (time, error) is recorded in `sync_state` for the status bar either way.
    """
    clock = clock or SystemClock()
    creds = Credentials.load(home)
    with _own_store(home, store) as db_store:
        try:
            with client_for(creds, transport=transport, timeout=timeout, clock=clock) as client:
                result = _Sync(
                    db_store,
                    client,
                    clock,
                    batch_size=batch_size,
                    page_size=page_size,
                    retries=retries,
                    backoff=backoff,
                    snapshot_lag=snapshot_lag,
                ).run()
        except SyncError as exc:
            _record(db_store, clock, outcome=exc.outcome, error=exc.message)
            raise
        except MenweiError as exc:
            _record(db_store, clock, outcome="error", error=exc.message)
            raise
        _record(db_store, clock, outcome="ok", error=None, url=creds.url)
        return result


def _record(
    store: Store, clock: Clock, *, outcome: str, error: str | None, url: str | None = None
) -> None:
    now = iso(clock.now())
    try:
        with store.write() as db:
            values: dict[str, object] = {
                "last_sync_outcome": outcome,
                "last_sync_error": error,
                "last_attempt_at": now,
            }
            if outcome == "ok":
                values["last_sync_at"] = now
            if url:
                values["server_url"] = url
            apply.set_state(db, **values)
    except MenweiError:
        pass  # the database is busy: the outcome is still returned or raised
