"""Checking a Matrix target before it swallows alerts, and what apprise needs to send to Matrix.

apprise delivers to Matrix, but with a misspelt room alias it creates a new private room that
nobody reads, and it reports success. `probe` asks the homeserver itself, read-only apart from
joining the room (which apprise would do anyway): can it be reached, does it accept the login,
does the room exist, can the bot be in it. It never creates a room. It is run by `notify add`
and `notify test`.

Room ids of current rooms (room version 12: `!opaque`, no `:server` part) only work in apprise
with `hsreq=no`; `with_hsreq_off` adds it to such URLs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

MATRIX_SCHEMES = ("matrix", "matrixs")

# Failure codes (their words, in both languages, are in `messages.failure_words`).
CANNOT_CONNECT = "cannot_connect"
LOGIN_REFUSED = "login_refused"
UNKNOWN_ROOM = "unknown_room"
CANNOT_JOIN = "cannot_join"
NO_ROOM = "no_room"


def is_matrix(url: str) -> bool:
    return url.strip().split("://", 1)[0].lower() in MATRIX_SCHEMES


def _plugin(url: str) -> Any:
    import apprise

    return apprise.Apprise.instantiate(url.strip())


def _serverless_room_ids(plugin: Any) -> list[str]:
    return [r for r in plugin.rooms if r.startswith("!") and ":" not in r]


def with_hsreq_off(url: str) -> str:
    """The URL with `hsreq=no` when it names a room id without `:server` (room version 12);
    unchanged otherwise, or when the user already said hsreq."""
    url = url.strip()
    if not is_matrix(url):
        return url
    plugin = _plugin(url)
    if plugin is None or not _serverless_room_ids(plugin):
        return url
    query = url.partition("?")[2]
    if any(part.split("=", 1)[0].lower() == "hsreq" for part in query.split("&") if part):
        return url
    return url + ("&" if "?" in url else "?") + "hsreq=no"


def uses_token(plugin: Any) -> bool:
    """A `matrix://TOKEN@host` URL: apprise sends with the token, without logging in."""
    return bool(plugin.password) and not plugin.user


@dataclass(frozen=True)
class Problem:
    code: str
    detail: str

    def __str__(self) -> str:
        return f"{self.code}: {self.detail}" if self.detail else self.code


@dataclass
class Probe:
    """What the homeserver said about a target: the rooms found and the problems, if any."""

    url: str
    user_id: str | None = None
    rooms: dict[str, str] = field(default_factory=dict)  # as written -> room id
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def probe(url: str, *, timeout: float = 10.0) -> Probe:
    """Ask the homeserver whether this target can deliver: reachable, login accepted, every
    room it names exists and the bot is (or can become) a member. Creates no room."""
    import httpx

    result = Probe(url)
    plugin = _plugin(url)
    if plugin is None or plugin.mode not in ("off", None):
        return result  # a webhook mode (t2bot, slack...): nothing to ask a homeserver
    port = f":{plugin.port}" if plugin.port else ""
    where = f"{plugin.host}{port}"
    try:
        # apprise's own answer, with its .well-known discovery for matrixs:// (a homeserver
        # delegated elsewhere is asked where apprise will send).
        root = str(plugin.base_url).rstrip("/")
    except Exception as exc:  # apprise's MatrixDiscoveryException: the delegation is broken
        result.problems.append(Problem(CANNOT_CONNECT, f"{where} ({type(exc).__name__})"))
        return result
    base = f"{root}/_matrix/client/v3"
    logged_in = False
    with httpx.Client(timeout=timeout, verify=bool(plugin.verify_certificate)) as http:
        try:
            if uses_token(plugin):
                token = str(plugin.password)
            else:
                got = http.post(
                    base + "/login",
                    json={
                        "type": "m.login.password",
                        "identifier": {"type": "m.id.user", "user": plugin.user},
                        "password": plugin.password or "",
                        "initial_device_display_name": "menwei check",
                    },
                )
                if got.status_code in (400, 401, 403):
                    result.problems.append(Problem(LOGIN_REFUSED, str(plugin.user)))
                    return result
                got.raise_for_status()
                token = got.json()["access_token"]
                logged_in = True
            auth = {"Authorization": f"Bearer {token}"}
            try:
                who = http.get(base + "/account/whoami", headers=auth)
                if who.status_code in (401, 403):
                    result.problems.append(Problem(LOGIN_REFUSED, "token"))
                    return result
                who.raise_for_status()
                result.user_id = str(who.json()["user_id"])
                _check_rooms(http, base, auth, plugin, result)
            finally:
                if logged_in:
                    http.post(base + "/logout", headers=auth, json={})
        except httpx.TransportError as exc:
            result.problems.append(Problem(CANNOT_CONNECT, f"{where} ({type(exc).__name__})"))
        except httpx.HTTPStatusError as exc:
            result.problems.append(
                Problem(CANNOT_CONNECT, f"{where} (HTTP {exc.response.status_code})")
            )
    return result


def _check_rooms(http: Any, base: str, auth: dict[str, str], plugin: Any, result: Probe) -> None:
    joined = set(http.get(base + "/joined_rooms", headers=auth).json().get("joined_rooms", []))
    rooms = list(plugin.rooms)
    if not rooms:
        if not joined and not plugin.users:
            result.problems.append(Problem(NO_ROOM, ""))
        return
    server = (result.user_id or "").partition(":")[2]
    for room in rooms:
        if room.startswith("#"):
            alias = room if ":" in room else f"{room}:{server}"
            got = http.get(f"{base}/directory/room/{quote(alias, safe='')}", headers=auth)
            if got.status_code == 404:
                result.problems.append(Problem(UNKNOWN_ROOM, alias))
                continue
            got.raise_for_status()
            room_id = str(got.json()["room_id"])
        else:
            room_id = room
        if room_id not in joined:
            join = http.post(f"{base}/join/{quote(room_id, safe='')}", headers=auth, json={})
            if join.status_code != 200:
                errcode = _errcode(join)
                code = UNKNOWN_ROOM if join.status_code == 404 else CANNOT_JOIN
                result.problems.append(Problem(code, f"{room} ({errcode})"))
                continue
        result.rooms[room] = room_id


def _errcode(response: Any) -> str:
    try:
        return str(response.json().get("errcode") or response.status_code)
    except ValueError:
        return str(response.status_code)
