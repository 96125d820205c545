"""A throwaway PostgreSQL from the Debian packages: initdb + pg_ctl on a temporary folder and a
free port of 127.0.0.1, stopped by its own pg_ctl (never by name).

`initdb` refuses to run as root: as root, the cluster is made and run as the `postgres` user.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def postgres_bin() -> Path:
    """The newest installed server's bin folder (Debian: /usr/lib/postgresql/N/bin)."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise RuntimeError(
        "PostgreSQL is not installed: `make debs` installs the Debian package `postgresql`"
    )


class PostgresCluster:
    def __init__(self, *, durable: bool = False, settings: dict[str, str] | None = None) -> None:
        self.bin = postgres_bin()
        self.root = Path(tempfile.mkdtemp(prefix="menwei-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.durable = durable
        self.settings = settings or {}
        self.as_root = os.geteuid() == 0
        self.started = False

    def _run(self, *args: str) -> None:
        cmd = list(args)
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)

    def start(self) -> PostgresCluster:
        if self.as_root:
            shutil.chown(self.root, "postgres", "postgres")
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        options = {
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(self.root),
            "max_connections": "200",
        }
        if not self.durable:
            options |= {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
        options |= self.settings
        flags = " ".join(f"-c {k}={v}" for k, v in options.items())
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-w",
            "-t",
            "60",
            "-l",
            str(self.root / "log"),
            "-o",
            f"-p {self.port} {flags}",
            "start",
        )
        self.started = True
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'create database "{name}"')  # type: ignore[arg-type]
        return self.url(name)

    def drop_database(self, name: str) -> None:
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')  # type: ignore[arg-type]

    def dump(self, database: str, dest: Path) -> None:
        subprocess.run(
            [str(self.bin / "pg_dump"), "-Fc", "-f", str(dest), self.url(database)],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def restore(self, database: str, src: Path) -> None:
        self.drop_database(database)
        self.create_database(database)
        subprocess.run(
            [str(self.bin / "pg_restore"), "-d", self.url(database), str(src)],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def stop(self) -> None:
        if self.started:
            try:
                self._run(
                    str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"
                )
            finally:
                self.started = False
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                shutil.rmtree(self.root)
                return
            except OSError:
                time.sleep(0.2)
