"""Sync commands: the community server (`server ...`) and the gate's `enroll`, `sync`, `export`,
`anomalies`.

`menwei sync` exits 0 when it synced, 2 when the server could not be reached (nothing is lost;
the next run retries), 3 when the server refused this gate's token, 4 when the server showed a
certificate other than the pinned one (maybe an impostor), 1 for anything else.
"""

from __future__ import annotations

import io
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from menwei.cli.common import emit_json, get_home, json_option, reports_errors, zh_of
from menwei.core.errors import MenweiError
from menwei.core.home import Home

if TYPE_CHECKING:
    from menwei.sync.server.sqlite import SqlStorage

DEFAULT_PORT = 8470


def _now() -> datetime:
    return datetime.now(UTC)


def _database(home: Home) -> str | None:
    """The server's database: `--database`, else MENWEI_SERVER_DATABASE, else the one this
    home's server was last run or migrated with (`<home>/server/database`), else SQLite."""
    import os

    ctx = click.get_current_context(silent=True)
    explicit = ctx.meta.get("menwei.database") if ctx else None
    if explicit:
        return str(explicit)
    if os.environ.get("MENWEI_SERVER_DATABASE"):
        return os.environ["MENWEI_SERVER_DATABASE"]
    remembered = home.server_dir / "database"
    if remembered.exists():
        return remembered.read_text(encoding="utf-8").strip() or None
    return None


def _server_storage(home: Home, *, district: bool = False) -> tuple[SqlStorage, int]:
    """The server's storage in this home, with the community brought up to date: the home's
    own, or the one named with `menwei server --community ID ...` (a district server)."""
    from menwei.core.clock import SystemClock
    from menwei.sync.server.backends import open_storage
    from menwei.sync.server.reference import HomeReference

    ctx = click.get_current_context(silent=True)
    chosen: int | None = ctx.meta.get("menwei.community") if ctx else None
    database = _database(home)
    if not home.db_path.exists() and database is None:
        raise MenweiError(
            f"{home.root} holds no community: the server runs in the committee's home "
            "(`menwei init` there first, or set MENWEI_HOME), or on a district database "
            "(`menwei server --database postgresql://...`)."
        )
    storage = open_storage(database, home)
    try:
        community = None
        if home.db_path.exists():
            reference = HomeReference(home, storage, SystemClock())
            reference.refresh(force=True)
            community = reference.community_id
        if chosen is not None:
            known = storage.community_homes()
            if chosen not in known:
                raise MenweiError(
                    f"此服务器没有小区 #{chosen} / this server holds no community #{chosen} "
                    "(`menwei server community add HOME`)"
                )
            community = chosen
        if community is None:
            known = storage.community_homes()
            if district and len(known) != 1:
                return storage, 0  # a district server run from the IT office's home
            if len(known) != 1:
                raise MenweiError(
                    "请用 --community 指定小区 / name the community: "
                    "`menwei server --community ID ...` (see `menwei server community list`)"
                )
            community = next(iter(known))
    except BaseException:
        storage.close()
        raise
    return storage, community


def _cert_fingerprint(storage: SqlStorage, home: Home) -> str | None:
    from menwei.sync import tls

    path = storage.setting("tls_cert")
    if not path:
        # Not served yet, or served over plain HTTP: the self-signed certificate, if made.
        made = home.server_dir / "tls" / "cert.pem"
        if not made.exists():
            return None
        path = str(made)
    try:
        return tls.fingerprint(Path(path).read_text(encoding="ascii"))
    except (OSError, ValueError):
        return None


def _redact(url: str) -> str:
    from menwei.sync.server.postgres import redact

    return redact(url)


def _qr(text: str) -> str:
    import qrcode

    qr = qrcode.QRCode(border=1, error_correction=qrcode.constants.ERROR_CORRECT_M)
    qr.add_data(text)
    qr.make(fit=True)
    out = io.StringIO()
    qr.print_ascii(out=out, invert=True)
    return out.getvalue()


# --- the server ----------------------------------------------------------------------------------


@click.group()
@click.option(
    "--database",
    envvar="MENWEI_SERVER_DATABASE",
    help="postgresql://… for a district server (default: <home>/server/server.db).",
)
@click.option("--community", type=int, help="The community a command is about (district server).")
@click.pass_context
def server(ctx: click.Context, database: str | None, community: int | None) -> None:
    """The community server, on the committee's machine: run it, enroll gates, import bundles.

    It serves the community of this home: the roster, revocations, policy and public keys kept
    here are what the gates receive (the signing key never leaves this home). A district server
    (PostgreSQL) serves many: `menwei server community add HOME`.
    """
    if database:
        ctx.meta["menwei.database"] = database
    if community is not None:
        ctx.meta["menwei.community"] = community


@server.command("run")
@click.option("--host", default="127.0.0.1", show_default=True, help="0.0.0.0 to serve the LAN.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=int)
@click.option("--tls-cert", type=click.Path(dir_okay=False, path_type=Path), help="PEM file.")
@click.option("--tls-key", type=click.Path(dir_okay=False, path_type=Path), help="PEM file.")
@click.option(
    "--tls-self-signed",
    is_flag=True,
    help="Use (and make once) a self-signed certificate in <home>/server/tls/.",
)
@click.option("--log-level", default="info", show_default=True)
@click.option(
    "--api-docs",
    is_flag=True,
    help="Serve the OpenAPI description at /openapi.json (off by default; no docs UI).",
)
@click.option(
    "--auth-failures-per-minute",
    default=20,  # guard.Limits.auth_failures_per_minute
    show_default=True,
    type=click.IntRange(1, 1_000_000),
    help="Failed logins from one address in a minute before it is answered 429.",
)
@click.option("--database", help="postgresql://… (a district server); remembered in this home.")
@click.option(
    "--workers", default=1, show_default=True, type=int, help="Worker processes (PostgreSQL)."
)
@reports_errors
def server_run(
    host: str,
    port: int,
    tls_cert: Path | None,
    tls_key: Path | None,
    tls_self_signed: bool,
    log_level: str,
    api_docs: bool,
    auth_failures_per_minute: int,
    database: str | None,
    workers: int,
) -> None:
    """Serve this home's community to its gates (FastAPI on uvicorn).

    Limits on bodies, connections and failed logins: docs/sync.md ("Limits").
    """
    from menwei.sync import tls
    from menwei.sync.server.app import make_server_app
    from menwei.sync.server.backends import is_postgres
    from menwei.sync.server.guard import Limits, make_server, serve_workers, server_config

    home = get_home()
    if database:
        click.get_current_context().meta["menwei.database"] = database
    database = _database(home)
    if workers > 1 and not is_postgres(database):
        raise MenweiError(
            "多个工作进程需要 PostgreSQL / --workers above 1 needs a postgresql:// database "
            "(SQLite has one writer)"
        )
    if tls_self_signed:
        if tls_cert or tls_key:
            raise MenweiError("Use either --tls-self-signed or --tls-cert/--tls-key.")
        tls_cert = home.server_dir / "tls" / "cert.pem"
        tls_key = home.server_dir / "tls" / "key.pem"
        if not tls_cert.exists() or not tls_key.exists():
            tls.make_self_signed(tls_cert, tls_key, hosts=[host] if host != "0.0.0.0" else [])
    if bool(tls_cert) != bool(tls_key):
        raise MenweiError("--tls-cert and --tls-key go together.")
    storage, community = _server_storage(home, district=True)
    if database:
        home.server_dir.mkdir(parents=True, exist_ok=True)
        (home.server_dir / "database").write_text(database + "\n", encoding="utf-8")
        (home.server_dir / "database").chmod(0o600)
    fp = None
    if tls_cert:
        try:
            fp = tls.fingerprint(tls_cert.read_text(encoding="ascii"))
        except (OSError, ValueError) as exc:
            raise MenweiError(f"Cannot read the certificate {tls_cert}: {exc}") from None
    storage.set_setting("tls_cert", str(tls_cert.resolve()) if tls_cert else None)
    scheme = "https" if tls_cert else "http"
    storage.set_setting("url", f"{scheme}://{host}:{port}" if host != "0.0.0.0" else None)
    limits = Limits(auth_failures_per_minute=auth_failures_per_minute)
    app = make_server_app(home, storage=storage, api_docs=api_docs, limits=limits)
    docs = " (OpenAPI: /openapi.json)" if api_docs else ""
    if community:
        click.echo(
            f"社区服务器:小区 #{community} / community server for #{community} on "
            f"{scheme}://{host}:{port}{docs}"
        )
    else:
        served = len(storage.community_homes())
        click.echo(
            f"区级服务器:{served} 个小区 / district server for {served} communities on "
            f"{scheme}://{host}:{port}{docs}"
        )
    if fp:
        click.echo(f"  服务器证书指纹 / certificate SHA-256: {tls.short(fp)}")
        click.echo(f"  menwei enroll {scheme}://HOST:{port} TOKEN --fingerprint {fp}")
    if scheme == "http":
        click.echo("  plain HTTP: use it only on a network you trust (or add --tls-self-signed)")
    if workers > 1:
        # Each worker process builds its own app (and connection pool) from the environment.
        import os

        storage.close()
        os.environ["MENWEI_HOME"] = str(home.root)
        os.environ["MENWEI_SERVER_DATABASE"] = str(database)
        os.environ["MENWEI_SERVER_AUTH_FAILURES_PER_MINUTE"] = str(auth_failures_per_minute)
        os.environ["MENWEI_SERVER_API_DOCS"] = "1" if api_docs else "0"
        click.echo(f"  {workers} worker processes on {_redact(str(database))}")
        config = server_config(
            "menwei.sync.server.app:app_from_environment",
            host=host,
            port=port,
            ssl_certfile=str(tls_cert) if tls_cert else None,
            ssl_keyfile=str(tls_key) if tls_key else None,
            log_level=log_level,
            limits=limits,
            factory=True,
            workers=workers,
        )
        serve_workers(config, workers)
        return
    config = server_config(
        app,
        host=host,
        port=port,
        ssl_certfile=str(tls_cert) if tls_cert else None,
        ssl_keyfile=str(tls_key) if tls_key else None,
        log_level=log_level,
        limits=limits,
    )
    try:
        make_server(config).run()
    finally:
        storage.close()


@server.group("gate")
def server_gate() -> None:
    """The gates enrolled with this server: add (enrollment token), revoke, list."""


@server_gate.command("add")
@click.argument("name")
@click.option("--url", help="The server's address as the gates reach it (goes into the QR).")
@click.option("--valid-hours", default=72, show_default=True, type=int, help="Token lifetime.")
@json_option
@reports_errors
def gate_add(name: str, url: str | None, valid_hours: int, as_json: bool) -> None:
    """Make a one-time enrollment token for gate NAME (new, or re-enrolling a gate)."""
    from menwei.sync import tls

    home = get_home()
    storage, community = _server_storage(home)
    try:
        before = {g.name: g.status for g in storage.list_gates(community)}
        token = storage.add_gate(community, name, now=_now(), valid_for_hours=valid_hours)
        fp = _cert_fingerprint(storage, home)
        url = url or storage.setting("url")
    finally:
        storage.close()
    qr_text = json.dumps(
        {"v": 1, "url": url, "token": token.token, "cert_sha256": fp}, separators=(",", ":")
    )
    command = f"menwei enroll {url or 'URL'} {token.token}" + (f" --fingerprint {fp}" if fp else "")
    if as_json:
        emit_json(
            {
                "gate_id": token.gate_id,
                "name": token.name,
                "token": token.token,
                "expires_at": token.expires_at,
                "url": url,
                "cert_sha256": fp,
                "qr_text": qr_text,
                "command": command,
            }
        )
        return
    click.echo(f"门岗 {token.name} ({token.gate_id}) 的一次性接入口令 / one-time enrollment token:")
    click.echo(f"  {token.token}")
    click.echo(f"  有效至 / valid until {token.expires_at} (UTC)")
    if fp:
        click.echo(f"  服务器证书 / server certificate SHA-256: {tls.short(fp)}")
    click.echo("在门岗电脑上运行 / on the gate laptop run:")
    click.echo(f"  {command}")
    click.echo(_qr(qr_text))
    if before.get(token.name) == "active":
        click.echo(
            "注意:该门岗现用的电脑在新电脑接入前仍可同步;若电脑被盗,请先 `menwei server gate "
            "revoke`。"
        )
        click.echo(
            "Note: the gate's current laptop keeps syncing until the new one enrolls; if it was "
            "stolen, run `menwei server gate revoke` first."
        )


@server_gate.command("revoke")
@click.argument("name")
@json_option
@reports_errors
def gate_revoke(name: str, as_json: bool) -> None:
    """Cut gate NAME off: its token stops working at once (re-enroll with `gate add`)."""
    storage, community = _server_storage(get_home())
    try:
        info = storage.revoke_gate(community, name, now=_now())
    finally:
        storage.close()
    if as_json:
        emit_json(info.as_dict())
        return
    click.echo(f"门岗 {info.name} ({info.gate_id}) 已撤销 / gate revoked")


@server_gate.command("list")
@json_option
@reports_errors
def gate_list(as_json: bool) -> None:
    """The gates of this server: status, epoch, events held, last contact, clock offset."""
    storage, community = _server_storage(get_home())
    try:
        gates = storage.list_gates(community)
    finally:
        storage.close()
    if as_json:
        emit_json([g.as_dict() for g in gates])
        return
    click.echo(f"{'gate':<10} {'name':<12} {'status':<8} {'epoch':>5} {'events':>7}  last seen")
    for g in gates:
        offset = "" if g.clock_offset_ms is None else f"  clock {g.clock_offset_ms / 1000:+.1f}s"
        click.echo(
            f"{g.gate_id:<10} {g.name:<12} {g.status:<8} {g.epoch:>5} {g.events:>7}  "
            f"{g.last_seen_at or '-'}{offset}"
        )


@server.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@json_option
@reports_errors
def server_import(file: Path, as_json: bool) -> None:
    """Import a gate's USB bundle (from `menwei export`): same checks as a push, never twice."""
    from menwei.sync.bundle import import_bundle

    storage, community = _server_storage(get_home())
    try:
        result = import_bundle(storage, community, file, now=_now())
    finally:
        storage.close()
    if as_json:
        emit_json(result.as_dict())
        return
    click.echo(
        f"导入门岗 {result.gate_id}:新增 {result.inserted},重复 {result.duplicates},"
        f"拒收 {len(result.rejected)} / imported gate {result.gate_id}: {result.inserted} new, "
        f"{result.duplicates} already here, {len(result.rejected)} refused"
    )
    for r in result.rejected:
        click.echo(f"  refused seq {r['seq']}: {r['reason']} ({r['detail']})")
    if result.ignored:
        click.echo(
            f"  {result.ignored} events wait for earlier ones: import the gate's older bundle "
            "first, or let it sync"
        )


# --- the gate ------------------------------------------------------------------------------------


@click.command()
@click.argument("url")
@click.argument("token")
@click.option("--fingerprint", help="The server certificate's SHA-256, from `server gate add`.")
@click.option(
    "--trust-first-use",
    is_flag=True,
    help="Over https without --fingerprint: pin whatever certificate the server shows.",
)
@json_option
@reports_errors
def enroll(
    url: str, token: str, fingerprint: str | None, trust_first_use: bool, as_json: bool
) -> None:
    """Enroll this laptop as a gate of the server at URL, with a one-time TOKEN.

    Creates the gate's home if there is none; pins the server's certificate (https: give its
    --fingerprint from `server gate add`, or use the QR text, which carries it); loads the
    roster, revocations, policy and public keys. Exit 4: the certificate does not match.
    """
    from menwei.sync import tls
    from menwei.sync.client import CertificateMismatch, SyncError
    from menwei.sync.enrollment import enroll as do_enroll

    home = get_home()
    try:
        result = do_enroll(
            home, url, token, fingerprint=fingerprint, trust_first_use=trust_first_use
        )
    except CertificateMismatch:
        raise  # exit 4, for scripts
    except SyncError as exc:
        raise MenweiError(exc.message) from None
    if as_json:
        emit_json(result.as_dict())
        return
    click.echo(
        f"已接入 {result.community_name} (#{result.community_id}):本机为门岗 {result.gate_name} "
        f"({result.gate_id}) / enrolled as gate {result.gate_name} ({result.gate_id}), "
        f"epoch {result.epoch}; {result.households} households"
    )
    if result.cert_sha256:
        click.echo(f"  pinned certificate SHA-256: {tls.short(result.cert_sha256)}")
    click.echo(
        "Next: `menwei` opens the gate app; `menwei sync` syncs now (cron: see docs/sync.md)"
    )


@click.command()
@click.option("--quiet", is_flag=True, help="Print only problems (for cron).")
@json_option
@reports_errors
def sync(quiet: bool, as_json: bool) -> None:
    """Sync this gate with its server now: push its events, pull the others', reference data.

    Exit status: 0 synced; 2 server unreachable (nothing lost, retry later); 3 this gate's token
    was refused (revoked); 4 the server's certificate is not the pinned one; 1 any other problem.
    """
    from menwei.sync.client import sync_once
    from menwei.sync.credentials import NotEnrolled

    home = get_home()
    try:
        result = sync_once(home)
    except MenweiError as exc:
        if as_json:
            outcome = "not_enrolled" if isinstance(exc, NotEnrolled) else "error"
            # The shared error shape (code, message, message_zh), with the sync's own outcome.
            emit_json(
                {
                    "ok": False,
                    "code": exc.code,
                    "message": exc.message,
                    "message_zh": exc.zh or zh_of(exc),
                    "outcome": getattr(exc, "outcome", outcome),
                    "error": exc.message,
                }
            )
            sys.exit(exc.exit_code)
        raise
    if as_json:
        emit_json({"ok": True, **result.as_dict()})
        return
    for warning in result.warnings:
        click.secho(f"menwei: {warning}", fg="yellow", err=True)
    if quiet:
        return
    click.echo(
        f"已同步 / synced: 上传 {result.pushed} pushed ({result.duplicates} already there), "
        f"下载 {result.pulled} pulled, 待传 {result.waiting} waiting, "
        f"时钟偏差 clock offset {result.clock_offset_ms / 1000:+.1f}s"
        + (f", {result.rejected} refused" if result.rejected else "")
        + (", new epoch (restored gate)" if result.forked else "")
    )


@click.command()
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Bundle file."
)
@click.option("--all", "everything", is_flag=True, help="All events, not only unacknowledged.")
@json_option
@reports_errors
def export(out: Path, everything: bool, as_json: bool) -> None:
    """Write this gate's events for a USB stick (`menwei server import FILE` on the server)."""
    from menwei.sync.bundle import export_bundle

    result = export_bundle(get_home(), out, everything=everything, now=_now())
    if as_json:
        emit_json(result.as_dict())
        return
    click.echo(
        f"已导出 {result.events} 条 / exported {result.events} events "
        f"(seq {result.from_seq}-{result.to_seq}) of gate {result.gate_id} -> {out} "
        f"({result.bytes} bytes)"
    )


@click.command()
@click.option("--all", "everything", is_flag=True, help="Also the withdrawn ones.")
@click.option("--lang", type=click.Choice(["zh", "en"]), default="zh", show_default=True)
@json_option
@reports_errors
def anomalies(everything: bool, lang: str, as_json: bool) -> None:
    """List anomalies: the server's own on the committee's machine, the pulled ones on a gate."""
    from menwei.sync.anomalies import words

    home = get_home()
    rows: list[dict[str, Any]]
    if (home.server_dir / "server.db").exists() or _database(home):
        storage, community = _server_storage(home)
        try:
            rows = [
                a.model_dump()
                for a in storage.list_anomalies(community, include_withdrawn=everything)
            ]
        finally:
            storage.close()
    else:
        from menwei.gateapp.wiring import open_store

        store = open_store(home)
        try:
            where = "" if everything else "where status = 'open'"
            rows = [
                {**r, "event_ids": json.loads(r["event_ids"])}
                for r in store.query(
                    "select anomaly_id, kind, household, gate_id, event_ids, detail, status,"
                    f" detected_at, updated_at from anomalies {where} order by detected_at"
                )
            ]
        finally:
            store.close()
    if as_json:
        emit_json(rows)
        return
    if not rows:
        click.echo("没有异常 / no anomalies")
        return
    for r in rows:
        mark = "" if r["status"] == "open" else " [withdrawn]"
        click.echo(
            f"{r['detected_at'][:16]}  {words(r['kind']).get(lang)}{mark}  "
            f"household {r['household'] or '-'}  gate {r['gate_id'] or '-'}"
        )
        click.echo(f"    {r['detail']}")
    click.echo(f"共 {len(rows)} 条 / {len(rows)} anomalies")


# The district server's commands (communities, migrate, doctor) join the `server` group.
from menwei.cli import district_cmds  # noqa: E402, F401
