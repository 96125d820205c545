"""A real Matrix homeserver (matrix-synapse) on 127.0.0.1 for the notification tests.

Synapse runs from its own virtual environment (`make .venv-synapse`, part of `make test`), never
the project's: it pins its own Twisted and friends. It is started on a free port with a generated
configuration (SQLite, registration by shared secret, rate limits relaxed), users are made through
the shared-secret admin API, and it is always stopped by its PID.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

ROOT = Path(__file__).resolve().parents[2]
SECRET = "menwei-test-shared-secret"
RELAXED = {"per_second": 1000, "burst_count": 1000}


def synapse_python() -> Path | None:
    """The Python of Synapse's own environment, if it is installed."""
    given = os.environ.get("MENWEI_SYNAPSE_PYTHON")
    path = Path(given) if given else ROOT / ".venv-synapse" / "bin" / "python"
    return path if path.exists() else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _config(folder: Path, port: int) -> str:
    import json

    # JSON is YAML: no YAML library needed on this side.
    config: dict[str, Any] = {
        "server_name": "localhost",
        "public_baseurl": f"http://127.0.0.1:{port}/",
        "pid_file": str(folder / "homeserver.pid"),
        "listeners": [
            {
                "port": port,
                "bind_addresses": ["127.0.0.1"],
                "type": "http",
                "tls": False,
                "x_forwarded": False,
                "resources": [{"names": ["client"], "compress": False}],
            }
        ],
        "database": {"name": "sqlite3", "args": {"database": str(folder / "homeserver.db")}},
        "media_store_path": str(folder / "media"),
        "signing_key_path": str(folder / "signing.key"),
        "log_config": str(folder / "log.yaml"),
        "report_stats": False,
        "registration_shared_secret": SECRET,
        "macaroon_secret_key": "menwei-test-macaroon",
        "form_secret": "menwei-test-form",
        "enable_registration": False,
        "bcrypt_rounds": 4,
        "trusted_key_servers": [],
        "suppress_key_server_warning": True,
        "enable_metrics": False,
        "url_preview_enabled": False,
        "presence": {"enabled": False},
        "rc_message": RELAXED,
        "rc_registration": RELAXED,
        "rc_login": {"address": RELAXED, "account": RELAXED, "failed_attempts": RELAXED},
        "rc_joins": {"local": RELAXED, "remote": RELAXED},
        "rc_invites": {"per_room": RELAXED, "per_user": RELAXED},
        "rc_admin_redaction": RELAXED,
    }
    return json.dumps(config, indent=1)


LOG_CONFIG = """\
version: 1
formatters:
  precise:
    format: '%(asctime)s - %(name)s - %(lineno)d - %(levelname)s - %(message)s'
handlers:
  file:
    class: logging.FileHandler
    formatter: precise
    filename: {path}
root:
  level: WARNING
  handlers: [file]
disable_existing_loggers: false
"""


@dataclass
class User:
    user_id: str
    password: str
    token: str


class Synapse:
    """One homeserver in `folder`; `start()`, `stop()` (SIGTERM), `kill()` (SIGKILL)."""

    def __init__(self, python: Path, folder: Path) -> None:
        self.python = python
        self.folder = folder
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "homeserver.yaml").write_text(_config(folder, self.port))
        (folder / "log.yaml").write_text(LOG_CONFIG.format(path=folder / "homeserver.log"))
        self.admin: User | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    # --- the process ---------------------------------------------------------------------------

    def start(self, timeout: float = 60.0) -> None:
        self.proc = subprocess.Popen(
            [str(self.python), "-m", "synapse.app.homeserver", "-c", "homeserver.yaml"],
            cwd=self.folder,
            stdout=open(self.folder / "stdout.log", "ab"),  # noqa: SIM115 (the child owns it)
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    "synapse exited at start:\n" + (self.folder / "stdout.log").read_text()[-3000:]
                )
            try:
                if httpx.get(self.base + "/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"synapse did not answer /health within {timeout} s")

    def _end(self, sig: int) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        try:
            os.kill(proc.pid, sig)
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(5)
        except ProcessLookupError:
            pass

    def stop(self) -> None:
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        self._end(signal.SIGKILL)

    # --- users and rooms -----------------------------------------------------------------------

    def register(self, name: str, password: str, *, admin: bool = False) -> User:
        url = self.base + "/_synapse/admin/v1/register"
        nonce = httpx.get(url).json()["nonce"]
        mac = hmac.new(SECRET.encode(), digestmod=hashlib.sha1)
        mac.update(b"\x00".join([nonce.encode(), name.encode(), password.encode()]))
        mac.update(b"\x00" + (b"admin" if admin else b"notadmin"))
        got = httpx.post(
            url,
            json={
                "nonce": nonce,
                "username": name,
                "password": password,
                "admin": admin,
                "mac": mac.hexdigest(),
            },
        )
        got.raise_for_status()
        body = got.json()
        return User(body["user_id"], password, body["access_token"])

    def call(
        self, method: str, path: str, token: str, body: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        got = httpx.request(
            method,
            self.base + path,
            json=body,
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        got.raise_for_status()
        result: dict[str, Any] = got.json()
        return result

    def create_room(
        self, owner: User, alias: str | None, invite: list[User], *, public: bool = False
    ) -> str:
        body: dict[str, Any] = {
            "invite": [u.user_id for u in invite],
            "preset": "public_chat" if public else "private_chat",
        }
        if alias:
            body["room_alias_name"] = alias
        room_id = str(
            self.call("POST", "/_matrix/client/v3/createRoom", owner.token, body)["room_id"]
        )
        for user in invite:
            self.join(user, room_id)
        return room_id

    def join(self, user: User, room: str) -> None:
        self.call("POST", f"/_matrix/client/v3/join/{quote(room, safe='')}", user.token, {})

    def texts(self, reader: User, room_id: str) -> list[str]:
        """The bodies of the text messages in a room, oldest first, as a reader sees them."""
        bodies: list[str] = []
        token: str | None = None
        while True:
            path = (
                f"/_matrix/client/v3/rooms/{quote(room_id, safe='')}/messages?dir=b&limit=100"
                + (f"&from={quote(token)}" if token else "")
            )
            page = self.call("GET", path, reader.token)
            for event in page.get("chunk", []):
                if event.get("type") == "m.room.message":
                    bodies.append(str(event["content"].get("body", "")))
            token = page.get("end")
            if not page.get("chunk") or not token:
                break
        return list(reversed(bodies))

    def events(self, reader: User, room_id: str) -> list[dict[str, Any]]:
        path = f"/_matrix/client/v3/rooms/{quote(room_id, safe='')}/messages?dir=b&limit=500"
        chunk = self.call("GET", path, reader.token).get("chunk", [])
        return [e for e in reversed(chunk) if e.get("type") == "m.room.message"]

    def all_rooms(self) -> list[dict[str, Any]]:
        """Every room on the server (admin API): a room nobody asked for shows here."""
        assert self.admin is not None
        rooms: list[dict[str, Any]] = self.call(
            "GET", "/_synapse/admin/v1/rooms?limit=500", self.admin.token
        )["rooms"]
        return rooms


def running_synapse(folder: Path) -> Iterator[Synapse]:
    python = synapse_python()
    if python is None:
        import pytest

        pytest.skip(
            "matrix-synapse is not installed: `make synapse-env` (part of `make test`) "
            "installs it into its own environment"
        )
    server = Synapse(python, folder)
    try:
        server.start()
        server.admin = server.register("admin", "admin-pass", admin=True)
        yield server
    finally:
        server.stop()
        print(f"synapse stopped (log: {folder / 'homeserver.log'})", file=sys.stderr)
