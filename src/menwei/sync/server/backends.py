"""Which storage a server runs on: `--database` (or MENWEI_SERVER_DATABASE).

- nothing: the SQLite file `<home>/server/server.db` (a community's own server);
- `postgresql://user@host:port/db` (or `postgres://`): PostgreSQL (a district's server);
- `sqlite:///path/to/file.db` or a plain path: another SQLite file.
"""

from __future__ import annotations

from pathlib import Path

from menwei.core.errors import MenweiError
from menwei.core.home import Home
from menwei.sync.server.sqlite import SqliteStorage, SqlStorage

ENV = "MENWEI_SERVER_DATABASE"


def is_postgres(spec: str | None) -> bool:
    return bool(spec) and str(spec).startswith(("postgresql://", "postgres://"))


def sqlite_path(spec: str | None, home: Home) -> Path:
    if not spec:
        return home.server_dir / "server.db"
    if spec.startswith("sqlite:///"):
        return Path(spec.removeprefix("sqlite://"))
    if "://" in spec:
        raise MenweiError(
            f"数据库地址无法识别 / unknown database URL {spec.split('://')[0]}://… "
            "(use postgresql://… or a SQLite file path)"
        )
    return Path(spec)


def open_storage(spec: str | None, home: Home, *, pool_size: int = 8) -> SqlStorage:
    """The server's storage named by `spec` (see the module's doc)."""
    if is_postgres(spec):
        from menwei.sync.server.postgres import PostgresStorage

        assert spec is not None
        return PostgresStorage(spec, max_size=pool_size)
    return SqliteStorage(sqlite_path(spec, home))
