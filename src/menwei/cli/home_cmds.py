"""The home as a whole: `backup`, `restore`, and `gate` (the app, and `gate rename`)."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import click

from menwei.cli.common import emit_json, get_home, json_option, reports_errors

passphrase_option = click.option(
    "--passphrase",
    envvar="MENWEI_BACKUP_PASSPHRASE",
    prompt="备份口令 / backup passphrase",
    hide_input=True,
    help="Protects the signing key in the backup (at least 8 characters; asked when not given; "
    "or $MENWEI_BACKUP_PASSPHRASE). Without it the backup cannot be restored.",
)


@click.command()
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    required=True,
    help="The backup file (a .zip), or a folder to put a dated one in.",
)
@click.option(
    "--passphrase",
    envvar="MENWEI_BACKUP_PASSPHRASE",
    prompt="备份口令 / backup passphrase",
    hide_input=True,
    confirmation_prompt=True,
    help="Protects the signing key in the backup (at least 8 characters; asked when not given; "
    "or $MENWEI_BACKUP_PASSPHRASE). Without it the backup cannot be restored.",
)
@json_option
@reports_errors
def backup(out: Path, passphrase: str, as_json: bool) -> None:
    """Write a backup of this home: database (while gates keep scanning), signing key (protected
    by the passphrase), policy and settings. Restore it with `menwei restore FILE`."""
    from menwei.core.backup import backup_home

    info = backup_home(get_home(), out, passphrase)
    if as_json:
        emit_json(
            {
                "ok": True,
                "file": str(info.path),
                "households": info.households,
                "events": info.events,
                "signing_keys": info.keys,
            }
        )
        return
    click.echo(
        f"已备份 {info.households} 户、{info.events} 条记录、{info.keys} 把签名密钥 -> {info.path}"
    )
    click.echo(
        f"backed up {info.households} households, {info.events} events, {info.keys} signing "
        f"key(s) -> {info.path}"
    )
    click.echo("请把备份存到这台电脑以外的地方(U 盘,放在居委会办公室),口令另外记下。")
    click.echo(
        "Keep the file off this laptop (a USB stick in the committee office); note the "
        "passphrase elsewhere."
    )


@click.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@passphrase_option
@json_option
@reports_errors
def restore(file: Path, passphrase: str, as_json: bool) -> None:
    """Restore a backup FILE into this (empty) home, e.g. on a new laptop: every pass already
    printed is accepted again."""
    from menwei.core.backup import restore_home

    home = get_home()
    info = restore_home(home, file, passphrase)
    if as_json:
        emit_json(
            {
                "ok": True,
                "home": str(home.root),
                "community": info.community,
                "households": info.households,
                "events": info.events,
                "signing_keys": info.keys,
            }
        )
        return
    click.echo(
        f"已恢复小区 {info.name} (#{info.community}):{info.households} 户、{info.events} 条记录"
        f" -> {home.root}"
    )
    click.echo(
        f"restored community {info.name} (#{info.community}): {info.households} households, "
        f"{info.events} events -> {home.root}"
    )


# --- gate ----------------------------------------------------------------------------------------


def _app_command() -> click.Command:
    from menwei.cli.gate_app import gate as app

    return app


class _GateGroup(click.Group):
    """`menwei gate` opens the app (its options are the app's); `menwei gate rename` renames."""


def _open_app(**options: Any) -> None:
    ctx = click.get_current_context()
    if ctx.invoked_subcommand is None:
        ctx.invoke(_app_command(), **options)


gate = _GateGroup(
    "gate",
    params=list(_app_command().params),
    callback=_open_app,
    invoke_without_command=True,
    help=inspect.cleandoc(_app_command().help or "Open the gate app.")
    + "\n\n`menwei gate rename NAME` gives this gate a new name (e.g. 东门).",
)


@gate.command("rename")
@click.argument("name")
@json_option
@reports_errors
def gate_rename(name: str, as_json: bool) -> None:
    """Give this gate a new NAME (e.g. 东门), shown in alerts, registers and the app."""
    from menwei.core.community import rename_gate
    from menwei.gateapp.wiring import open_store

    info = rename_gate(open_store(get_home()), name)
    if as_json:
        emit_json({"ok": True, "gate_id": info.gate_id, "gate_name": info.gate_name})
        return
    click.echo(f"本门岗现名 {info.gate_name}(编号 {info.gate_id} 不变)")
    click.echo(f"this gate is now called {info.gate_name} (its id {info.gate_id} stays)")
