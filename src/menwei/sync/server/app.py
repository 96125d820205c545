"""The community server as an ASGI app: `make_server_app(home)`, served by uvicorn.

The server serves the community of the home it runs in. Endpoints (all under /v1, JSON; the
OpenAPI description is at /docs):

- `GET  /v1/health`     no auth: alive, server time
- `POST /v1/enroll`     no auth: claim a one-time enrollment token
- `GET  /v1/status`     the calling gate's epoch and acked seq; the community's cursors
- `POST /v1/push`       a batch of the gate's own events (gzip)
- `GET  /v1/events`     other gates' events after a gseq
- `GET  /v1/reference`  roster, revocations, keys and policy changed since a version
- `GET  /v1/snapshot`   everything at once, for a new gate or one too far behind
- `GET  /v1/anomalies`  anomalies changed after an aseq

Gates authenticate with `Authorization: Bearer <api token>`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
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
    MAX_PAGE,
    PROTOCOL,
    SERVER_TIME_HEADER,
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
)
from menwei.sync.server.reference import HomeReference
from menwei.sync.server.sqlite import SqliteStorage
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

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


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
    """An `EventsPage` as JSON, with the stored canonical bodies written out as they are."""
    parts = [
        f'{{"gseq":{e.gseq},"gate_id":{json.dumps(e.gate_id)},"epoch":{e.epoch},"seq":{e.seq},'
        f'"body":{e.body}}}'
        for e in page.events
    ]
    return (
        f'{{"server_time":"{page.server_time}","events":[{",".join(parts)}],'
        f'"next_after":{page.next_after},"head_gseq":{page.head_gseq},'
        f'"more":{"true" if page.more else "false"},'
        f'"cursor_event_id":{json.dumps(page.cursor_event_id)}}}'
    ).encode()


class ServerTimeHeader:
    """Stamps the server's time on every HTTP response, errors included."""

    def __init__(self, app: ASGIApp, clock: Clock) -> None:
        self.app = app
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def stamped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append(
                    (SERVER_TIME_HEADER.lower().encode(), iso(self.clock.now()).encode())
                )
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, stamped)


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


def gate_auth(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> GateAuth:
    """The enrolled gate calling, from its bearer token."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise AuthRefused("No API token: this endpoint is for enrolled gates.")
    reference: HomeReference = request.app.state.reference
    storage: ServerStorage = request.app.state.storage
    clock: Clock = request.app.state.clock
    reference.refresh()
    gate = storage.authenticate(credentials.credentials, now=clock.now())
    if gate.community_id != reference.community_id:
        raise AuthRefused("This gate belongs to another community.")
    return gate


Gate = Annotated[GateAuth, Depends(gate_auth)]


def make_server_app(
    home: Home,
    *,
    storage: ServerStorage | None = None,
    clock: Clock | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
    max_decompressed_bytes: int = MAX_DECOMPRESSED_BYTES,
    snapshot_days: int = 14,
) -> FastAPI:
    """The server app for the community of `home` (its storage: `<home>/server/server.db`)."""
    clock = clock or SystemClock()
    store = storage or SqliteStorage(home.server_dir / "server.db")
    reference = HomeReference(home, store, clock)
    reference.refresh(force=True)

    app = FastAPI(
        title="menwei community server",
        version=str(PROTOCOL),
        description="Sync between the gate laptops of a residential compound and its committee.",
    )
    app.state.storage = store
    app.state.reference = reference
    app.state.clock = clock
    app.add_middleware(GZipMiddleware, minimum_size=1024)
    app.add_middleware(ServerTimeHeader, clock=clock)  # type: ignore[arg-type]

    def error(status: int, code: str, message: str) -> JSONResponse:
        body = ErrorBody(error=code, message=message, server_time=iso(clock.now()))
        return JSONResponse(body.model_dump(), status_code=status)

    @app.exception_handler(StorageError)
    async def storage_error(request: Request, exc: StorageError) -> JSONResponse:
        return error(status_of(exc), exc.code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()
        )
        return error(422, "bad_request", f"The request is not valid: {problems}"[:2000])

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error(exc.status_code, "http_error", str(exc.detail))

    @app.get("/v1/health", tags=["server"])
    def health() -> dict[str, Any]:
        """Whether the server is up, and its time."""
        return {
            "status": "ok",
            "server_time": iso(clock.now()),
            "protocol": PROTOCOL,
            "community_id": reference.community_id,
            "community_name": reference.community_name,
        }

    @app.post("/v1/enroll", tags=["gates"], responses={401: {"model": ErrorBody}})
    def enroll(request: EnrollRequest) -> EnrollResponse:
        """Claim a one-time enrollment token; the gate gets its id and epoch."""
        reference.refresh()
        return store.enroll(reference.community_id, request, now=clock.now())

    @app.get("/v1/status", tags=["sync"], responses={401: {"model": ErrorBody}})
    def status(
        gate: Gate,
        cursor: Annotated[int, Query(ge=0, description="The gate's pull cursor, to check")] = 0,
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
                data = gunzip_bounded(raw, max_decompressed_bytes)
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
            batch = PushBatch.model_validate_json(data)
        except ValidationError as exc:
            detail = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5]
            )
            await run_in_threadpool(
                store.reject_batch, gate.gate_id, data, "malformed", detail, now=clock.now()
            )
            raise StorageError(f"The batch is not valid: {detail}", code="malformed") from None
        result = await run_in_threadpool(store.push, gate.gate_id, batch, now=clock.now())
        return Response(result.model_dump_json(), media_type="application/json")

    @app.get("/v1/events", tags=["sync"], response_model=EventsPage)
    def events(
        gate: Gate,
        after: Annotated[int, Query(ge=0, description="Events with a gseq above this")] = 0,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
    ) -> Response:
        """Other gates' events after a gseq, in commit order."""
        page = store.events_page(gate, after, limit, now=clock.now())
        return Response(events_page_json(page), media_type="application/json")

    @app.get("/v1/reference", tags=["sync"], responses={409: {"model": ErrorBody}})
    def reference_delta(gate: Gate, since: Annotated[int, Query(ge=0)] = 0) -> ReferenceDelta:
        """Reference data changed since a version (409 must_refetch: get a snapshot)."""
        return store.reference_delta(gate.community_id, since, now=clock.now())

    @app.get("/v1/snapshot", tags=["sync"])
    def snapshot(gate: Gate) -> Snapshot:
        """The whole picture: reference data, recent events, anomalies, with their cursors."""
        return store.snapshot(gate, now=clock.now(), days=snapshot_days)

    @app.get("/v1/anomalies", tags=["sync"])
    def anomalies(
        gate: Gate,
        after: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
    ) -> AnomaliesPage:
        """Anomalies raised or changed after an aseq."""
        return store.anomalies_page(gate.community_id, after, limit, now=clock.now())

    return app
