"""The community server as an ASGI app: `make_server_app(home)`, served by uvicorn
(`menwei.sync.server.guard.server_config` adds the limits on connections).

The server serves the community of the home it runs in. Endpoints (all under /v1, JSON; the
OpenAPI description at /openapi.json only when the app is made with `api_docs=True`):

- `GET  /v1/health`     no auth: alive, server time
- `POST /v1/enroll`     no auth: claim a one-time enrollment token
- `GET  /v1/status`     the calling gate's epoch and acked seq; the community's cursors
- `POST /v1/push`       a batch of the gate's own events (gzip)
- `GET  /v1/events`     other gates' events after a gseq
- `GET  /v1/reference`  roster, revocations, keys and policy changed since a version
- `GET  /v1/snapshot`   everything at once, for a new gate or one too far behind
- `GET  /v1/anomalies`  anomalies changed after an aseq

Gates authenticate with `Authorization: Bearer <api token>`. Failed authentications are logged
and throttled per client address. Every limit is in `guard.Limits` and docs/sync.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.gzip import GZipMiddleware

from menwei.core.clock import Clock, SystemClock, iso
from menwei.core.home import Home
from menwei.sync.protocol import (
    DEFAULT_PAGE,
    MAX_BODY_BYTES,
    MAX_DECOMPRESSED_BYTES,
    MAX_INT,
    MAX_PAGE,
    PROTOCOL,
    AnomaliesPage,
    EnrollRequest,
    EnrollResponse,
    ErrorBody,
    EventsPage,
    PushBatch,
    PushResult,
    ReferenceDelta,
    Snapshot,
    StatusResponse,
    TooLarge,
    gunzip_bounded,
    without_scan_text,
    without_scan_text_json,
)
from menwei.sync.server.guard import AuthThrottle, BodyRefused, Guard, Limits
from menwei.sync.server.reference import ServedCommunities
from menwei.sync.server.sqlite import SqliteStorage, SqlStorage
from menwei.sync.server.storage import (
    AuthRefused,
    GateAuth,
    GateRevoked,
    MustRefetch,
    NotEnrolled,
    NotFound,
    ServerStorage,
    StorageError,
    StoredEventsPage,
)

log = logging.getLogger("menwei.server")

# The HTTP status of each refusal: storage raises domain errors, this layer speaks HTTP.
STATUS_OF: tuple[tuple[type[StorageError], int], ...] = (
    (AuthRefused, 401),
    (GateRevoked, 403),
    (NotFound, 404),
    (MustRefetch, 409),
    (NotEnrolled, 409),
)


def status_of(exc: StorageError) -> int:
    for cls, status in STATUS_OF:
        if isinstance(exc, cls):
            return status
    return exc.status if isinstance(exc, RequestRefused) else 400


class RequestRefused(StorageError):
    """A request the web layer refuses before storage sees it (size, encoding)."""

    def __init__(self, message: str, *, code: str, status: int) -> None:
        super().__init__(message, code=code)
        self.status = status


def events_page_json(page: StoredEventsPage) -> bytes:
    """An `EventsPage` as JSON, with the stored canonical bodies written out as they are, but
    for the scanned pass text, which goes out as its hash (other gates get no printable pass)."""
    parts = [
        f'{{"gseq":{e.gseq},"gate_id":{json.dumps(e.gate_id)},"epoch":{e.epoch},"seq":{e.seq},'
        f'"body":{without_scan_text_json(e.body)}}}'
        for e in page.events
    ]
    return (
        f'{{"server_time":"{page.server_time}","events":[{",".join(parts)}],'
        f'"next_after":{page.next_after},"head_gseq":{page.head_gseq},'
        f'"more":{"true" if page.more else "false"},'
        f'"cursor_event_id":{json.dumps(page.cursor_event_id)}}}'
    ).encode()


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestRefused(f"The body is over {limit} bytes.", code="too_large", status=413)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestRefused(f"The body is over {limit} bytes.", code="too_large", status=413)
        chunks.append(chunk)
    return b"".join(chunks)


_bearer = HTTPBearer(auto_error=False, description="The gate's API token from enrollment")


def _address(request: Request) -> str:
    return request.client.host if request.client else "?"


def check_throttle(request: Request) -> None:
    """Refuse (429) an address that failed to authenticate too often in the last minute."""
    throttle: AuthThrottle = request.app.state.throttle
    wait = throttle.blocked(_address(request))
    if wait:
        raise RequestRefused(
            f"Too many failed attempts from this address: try again in {wait:.0f} s.",
            code="too_many_attempts",
            status=429,
        )


def auth_failed(request: Request, exc: StorageError) -> None:
    """Log a failed authentication (never the token) and count it against the address."""
    throttle: AuthThrottle = request.app.state.throttle
    address = _address(request)
    n = throttle.failed(address)
    log.warning(
        "authentication refused: %s %s from %s (%s; %d in the last minute)",
        request.method,
        request.url.path,
        address,
        exc.code,
        n,
    )
    if n == throttle.per_minute:
        log.warning("throttling %s: %d failed authentications in a minute", address, n)


def gate_auth(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> GateAuth:
    """The enrolled gate calling, from its bearer token."""
    check_throttle(request)
    communities: ServedCommunities = request.app.state.communities
    storage: ServerStorage = request.app.state.storage
    clock: Clock = request.app.state.clock
    try:
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise AuthRefused("No API token: this endpoint is for enrolled gates.")
        gate = storage.authenticate(credentials.credentials, now=clock.now())
    except (AuthRefused, GateRevoked) as exc:
        auth_failed(request, exc)
        raise
    # Everything a gate asks is about its own community: every query is scoped by it.
    communities.refresh(gate.community_id)
    return gate


def committee_auth(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> int:
    """The community a committee token reads."""
    check_throttle(request)
    storage: SqlStorage = request.app.state.storage
    try:
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise AuthRefused("No committee token.")
        return storage.committee_community(credentials.credentials)
    except AuthRefused as exc:
        auth_failed(request, exc)
        raise


Gate = Annotated[GateAuth, Depends(gate_auth)]
Committee = Annotated[int, Depends(committee_auth)]


# Pushes run on threads of their own at a lower OS priority: ingest is bulk CPU work, while a
# pull, /v1/status or a snapshot is somebody waiting. On a busy machine the scheduler then gives
# those (and PostgreSQL) the cores first. One pool per process; each app caps its own pushes.
PUSH_NICE = 5
_push_pool: ThreadPoolExecutor | None = None
_push_pool_lock = threading.Lock()


def _lower_priority() -> None:
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), PUSH_NICE)


def push_pool() -> ThreadPoolExecutor:
    global _push_pool
    with _push_pool_lock:
        if _push_pool is None:
            _push_pool = ThreadPoolExecutor(
                max_workers=8, thread_name_prefix="menwei-push", initializer=_lower_priority
            )
        return _push_pool


def make_server_app(
    home: Home,
    *,
    storage: ServerStorage | None = None,
    clock: Clock | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
    max_decompressed_bytes: int = MAX_DECOMPRESSED_BYTES,
    snapshot_days: int = 14,
    limits: Limits | None = None,
    api_docs: bool = False,
    concurrent_pushes: int = 4,
) -> FastAPI:
    """The server app for the community of `home` and those added to its storage (its
    storage by default: `<home>/server/server.db`).

    `api_docs`: serve the OpenAPI description at /openapi.json (off by default; there is no
    documentation UI, whose assets would come from the internet).
    """
    clock = clock or SystemClock()
    limits = limits or Limits(push_body_bytes=max_body_bytes)
    store = storage or SqliteStorage(home.server_dir / "server.db")
    communities = ServedCommunities(home, store, clock)
    own = communities.home_community
    # Pushes beyond these wait their turn without a thread: ingest is CPU work under one GIL,
    # and pulls, status and snapshots of the same worker must still get their share. Four, not
    # fewer: a push also waits on the database (its commit, its community's counter row), and
    # with two a worker sat idle (scripts/bench_district.py: ≈ 9,300 events/s with 2, 13,000
    # with 4, no more with 8, on PostgreSQL with two workers).
    push_slots = asyncio.Semaphore(concurrent_pushes)

    app = FastAPI(
        title="menwei community server",
        version=str(PROTOCOL),
        description="Sync between the gate laptops of a residential compound and its committee.",
        openapi_url="/openapi.json" if api_docs else None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.storage = store
    app.state.communities = communities
    app.state.clock = clock
    app.state.limits = limits
    app.state.throttle = AuthThrottle(limits.auth_failures_per_minute)
    # zlib's default level: a 500-event page compresses in ~4 ms (Starlette's default, 9, took
    # ~17 ms on the event loop for 0.3% fewer bytes).
    app.add_middleware(GZipMiddleware, minimum_size=1024, compresslevel=6)
    app.add_middleware(Guard, clock=clock, limits=limits)  # type: ignore[arg-type]

    def error(
        status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> JSONResponse:
        body = ErrorBody(error=code, message=message, server_time=iso(clock.now()))
        return JSONResponse(body.model_dump(), status_code=status, headers=headers)

    @app.exception_handler(StorageError)
    async def storage_error(request: Request, exc: StorageError) -> JSONResponse:
        status = status_of(exc)
        headers = None
        if status == 429:
            wait = app.state.throttle.blocked(_address(request))
            headers = {"Retry-After": str(max(1, round(wait)))}
        elif status == 413:
            headers = {"Connection": "close"}
        return error(status, exc.code, exc.message, headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()
        )
        return error(422, "bad_request", f"The request is not valid: {problems}"[:2000])

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc, BodyRefused):
            return error(exc.status_code, exc.code, str(exc.detail), {"Connection": "close"})
        return error(exc.status_code, "http_error", str(exc.detail))

    @app.get("/v1/health", tags=["server"])
    def health() -> dict[str, Any]:
        """Whether the server is up, and its time."""
        return {
            "status": "ok",
            "server_time": iso(clock.now()),
            "protocol": PROTOCOL,
            "community_id": own.community_id if own else None,
            "community_name": own.community_name if own else None,
            "communities": communities.ids(),
        }

    @app.post("/v1/enroll", tags=["gates"], responses={401: {"model": ErrorBody}})
    def enroll(request: EnrollRequest, http: Request) -> EnrollResponse:
        """Claim a one-time enrollment token; the gate gets its id and epoch."""
        check_throttle(http)
        try:
            # The token names the gate, and so its community.
            answer = store.enroll(None, request, now=clock.now())
        except AuthRefused as exc:
            auth_failed(http, exc)
            raise
        communities.refresh(answer.community_id)
        return answer

    @app.get("/v1/status", tags=["sync"], responses={401: {"model": ErrorBody}})
    def status(
        gate: Gate,
        cursor: Annotated[
            int, Query(ge=0, le=MAX_INT, description="The gate's pull cursor, to check")
        ] = 0,
    ) -> StatusResponse:
        """The calling gate's epoch and acknowledged sequence; the community's cursors."""
        return store.status(gate, now=clock.now(), cursor=cursor)

    push_schema = PushBatch.model_json_schema(ref_template="#/components/schemas/{model}")
    push_schema.pop("$defs", None)

    @app.post(
        "/v1/push",
        tags=["sync"],
        response_model=PushResult,
        responses={
            400: {"model": ErrorBody},
            401: {"model": ErrorBody},
            413: {"model": ErrorBody},
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "description": "A PushBatch as JSON, usually with Content-Encoding: gzip.",
                "content": {"application/json": {"schema": push_schema}},
            }
        },
    )
    async def push(request: Request, gate: Gate) -> Response:
        """Store a batch of the gate's own events; idempotent on (gate, epoch, seq) and event id."""
        raw = await _read_body(request, max_body_bytes)
        encoding = request.headers.get("content-encoding", "identity").strip().lower()
        try:
            if encoding == "gzip":
                data = await run_in_threadpool(gunzip_bounded, raw, max_decompressed_bytes)
            elif encoding in ("identity", ""):
                if len(raw) > max_decompressed_bytes:
                    raise TooLarge("too large")
                data = raw
            else:
                raise RequestRefused(
                    f"Unsupported Content-Encoding {encoding!r} (use gzip).",
                    code="bad_encoding",
                    status=415,
                )
        except TooLarge:
            raise RequestRefused(
                f"The batch is over {max_decompressed_bytes} bytes once decompressed.",
                code="too_large",
                status=413,
            ) from None
        except ValueError as exc:
            raise StorageError(f"The body is not valid gzip: {exc}", code="malformed") from None
        try:
            # Off the event loop: a worker keeps answering pulls while it reads a batch.
            batch = await run_in_threadpool(PushBatch.model_validate_json, data)
        except ValidationError as exc:
            detail = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5]
            )
            await run_in_threadpool(
                store.reject_batch, gate.gate_id, data, "malformed", detail, now=clock.now()
            )
            raise StorageError(f"The batch is not valid: {detail}", code="malformed") from None
        async with push_slots:
            result = await asyncio.get_running_loop().run_in_executor(
                push_pool(), functools.partial(store.push, gate.gate_id, batch, now=clock.now())
            )
        return Response(result.model_dump_json(), media_type="application/json")

    @app.get("/v1/events", tags=["sync"], response_model=EventsPage)
    def events(
        gate: Gate,
        after: Annotated[
            int, Query(ge=0, le=MAX_INT, description="Events with a gseq above this")
        ] = 0,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
    ) -> Response:
        """Other gates' events after a gseq, in commit order."""
        page = store.events_page(gate, after, limit, now=clock.now())
        return Response(events_page_json(page), media_type="application/json")

    @app.get("/v1/reference", tags=["sync"], responses={409: {"model": ErrorBody}})
    def reference_delta(
        gate: Gate, since: Annotated[int, Query(ge=0, le=MAX_INT)] = 0
    ) -> ReferenceDelta:
        """Reference data changed since a version (409 must_refetch: get a snapshot)."""
        return store.reference_delta(gate.community_id, since, now=clock.now())

    @app.get("/v1/snapshot", tags=["sync"], response_model=Snapshot)
    def snapshot(gate: Gate) -> Response:
        """The whole picture: reference data, recent events, anomalies, with their cursors."""
        snap = store.snapshot(gate, now=clock.now(), days=snapshot_days)
        for event in snap.events:
            event.body = without_scan_text(event.body)
        # Serialised by pydantic in one go (tens of thousands of events): FastAPI's own path
        # would turn the model into Python objects first, then json.dumps them.
        return Response(snap.model_dump_json(), media_type="application/json")

    @app.get("/v1/anomalies", tags=["sync"])
    def anomalies(
        gate: Gate,
        after: Annotated[int, Query(ge=0, le=MAX_INT)] = 0,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
    ) -> AnomaliesPage:
        """Anomalies raised or changed after an aseq."""
        return store.anomalies_page(gate.community_id, after, limit, now=clock.now())

    @app.get("/v1/committee/anomalies", tags=["committee"])
    def committee_anomalies(
        community: Committee,
        after: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
    ) -> AnomaliesPage:
        """The anomalies of the committee's own community (a committee token)."""
        return store.anomalies_page(community, after, limit, now=clock.now())

    @app.get("/v1/committee/gates", tags=["committee"])
    def committee_gates(community: Committee) -> list[dict[str, object]]:
        """The gates of the committee's own community."""
        return [g.as_dict() for g in store.list_gates(community)]

    return app


def app_from_environment() -> FastAPI:
    """The app a worker process builds (`menwei server run --workers N`): the home from
    MENWEI_HOME, the database from MENWEI_SERVER_DATABASE."""
    import os

    from menwei.sync.server.backends import open_storage

    home = Home.resolve(None)
    failures = os.environ.get("MENWEI_SERVER_AUTH_FAILURES_PER_MINUTE")
    limits = Limits(auth_failures_per_minute=int(failures)) if failures else None
    api_docs = os.environ.get("MENWEI_SERVER_API_DOCS") == "1"
    return make_server_app(
        home,
        storage=open_storage(os.environ.get("MENWEI_SERVER_DATABASE"), home),
        limits=limits,
        api_docs=api_docs,
    )
