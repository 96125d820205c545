"""The district server's commands, in the `server` group: communities, committee tokens,
`migrate` (SQLite to PostgreSQL) and `doctor`."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from menwei.cli.common import emit_json, get_home, json_option, reports_errors
from menwei.cli.sync_cmds import _database, _redact, server
from menwei.core.errors import MenweiError
from menwei.core.home import Home

if TYPE_CHECKING:
    from menwei.sync.server.sqlite import SqlStorage


def _open(home: Home) -> SqlStorage:
    from menwei.sync.server.backends import open_storage

    return open_storage(_database(home), home)


@server.group("community")
def server_community() -> None:
    """The communities a (district) server holds: add one from its committee's home, list."""


@server_community.command("add")
@click.argument("committee_home", type=click.Path(file_okay=False, path_type=Path))
@json_option
@reports_errors
def community_add(committee_home: Path, as_json: bool) -> None:
    """Serve the community of COMMITTEE_HOME (its roster, revocations, policy and keys)."""
    from menwei.core.clock import SystemClock
    from menwei.sync.server.reference import HomeReference

    source = Home(committee_home.expanduser().resolve())
    if not source.db_path.exists():
        raise MenweiError(
            f"{source.root} 不是居委会目录 / holds no community (`menwei init` there first)"
        )
    storage = _open(get_home())
    try:
        ref = HomeReference(source, storage, SystemClock())
        ref.refresh(force=True)
        info = next(c for c in storage.list_communities() if c.community_id == ref.community_id)
    finally:
        storage.close()
    if as_json:
        emit_json(info.as_dict())
        return
    click.echo(
        f"已加入小区 {info.name} (#{info.community_id}),{info.households} 户 / "
        f"community #{info.community_id} served, {info.households} households"
    )
    click.echo(
        f"  门岗接入 / enroll its gates: menwei server --community {info.community_id} gate add NAME"
    )


@server_community.command("list")
@json_option
@reports_errors
def community_list(as_json: bool) -> None:
    """The communities of this server: households, gates, events, open anomalies."""
    storage = _open(get_home())
    try:
        rows = storage.list_communities()
    finally:
        storage.close()
    if as_json:
        emit_json([c.as_dict() for c in rows])
        return
    click.echo(f"{'#':>6} {'name':<16} {'households':>10} {'gates':>5} {'events':>9} {'open':>5}")
    for c in rows:
        click.echo(
            f"{c.community_id:>6} {c.name:<16} {c.households:>10} {c.gates:>5} {c.events:>9} "
            f"{c.anomalies_open:>5}"
        )


@server_community.command("token")
@click.argument("community", type=int)
@json_option
@reports_errors
def community_token(community: int, as_json: bool) -> None:
    """A read token for COMMUNITY's committee (its anomalies and gates over /v1/committee/)."""
    storage = _open(get_home())
    try:
        if community not in storage.community_homes():
            raise MenweiError(
                f"此服务器没有小区 #{community} / this server holds no community #{community}"
            )
        token = storage.add_committee_token(community, now=datetime.now(UTC))
    finally:
        storage.close()
    if as_json:
        emit_json({"community_id": community, "token": token})
        return
    click.echo(f"小区 #{community} 居委会只读口令 / committee read token (shown once):")
    click.echo(f"  {token}")


@server.command("migrate")
@click.option("--to", "target", required=True, help="postgresql://… the district database.")
@click.option(
    "--from",
    "source_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The SQLite server database (default: <home>/server/server.db).",
)
@click.option("--community", "only", type=int, multiple=True, help="Only these communities.")
@json_option
@reports_errors
def server_migrate(
    target: str, source_path: Path | None, only: tuple[int, ...], as_json: bool
) -> None:
    """Copy this server's SQLite data into PostgreSQL: idempotent (run it again to resume),
    then verify the row counts and every gate's chain."""
    from menwei.sync.server.backends import is_postgres
    from menwei.sync.server.maintenance import migrate
    from menwei.sync.server.postgres import PostgresStorage
    from menwei.sync.server.sqlite import SqliteStorage

    home = get_home()
    if not is_postgres(target):
        raise MenweiError("--to 需要 postgresql:// 地址 / --to takes a postgresql:// URL")
    path = source_path or home.server_dir / "server.db"
    if not path.exists():
        raise MenweiError(f"没有服务器数据库 / no server database at {path}")
    source = SqliteStorage(path)
    try:
        dest = PostgresStorage(target, max_size=2)
        try:
            say = (lambda _: None) if as_json else (lambda m: click.echo(f"  {m}", err=True))
            report = migrate(source, dest, communities=list(only) or None, progress=say)
        finally:
            dest.close()
    finally:
        source.close()
    if as_json:
        emit_json(report.as_dict())
    else:
        click.echo(f"迁移到 / migrated to {_redact(target)}: communities {report.communities}")
        click.echo("  new rows: " + ", ".join(f"{k} {v}" for k, v in report.copied.items() if v))
        for c in report.checks:
            click.echo(f"  [{'ok' if c.ok else 'FAILED'}] {c.name}: {c.detail}")
        if report.ok:
            click.echo(
                f"下一步 / next: menwei server run --database {_redact(target)} "
                "(the gates keep their cursors)"
            )
    if not report.ok:
        sys.exit(1)


@server.command("doctor")
@json_option
@reports_errors
def server_doctor(as_json: bool) -> None:
    """Check the server's database: reachable, settings, gseq order, streams, event hashes."""
    from menwei.sync.server.maintenance import doctor

    home = get_home()
    database = _database(home)
    storage = _open(home)
    try:
        checks = doctor(storage)
    finally:
        storage.close()
    ok = all(c.ok for c in checks)
    if as_json:
        emit_json(
            {
                "ok": ok,
                "database": _redact(database) if database else "sqlite",
                "checks": [c.as_dict() for c in checks],
            }
        )
    else:
        click.echo(
            f"数据库 / database: {_redact(database) if database else home.server_dir / 'server.db'}"
        )
        for c in checks:
            click.echo(f"  [{'ok' if c.ok else 'FAILED'}] {c.name}: {c.detail}")
    if not ok:
        sys.exit(1)
