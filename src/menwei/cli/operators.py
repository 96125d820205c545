"""`menwei operators`: the committee's list of gate volunteers, their PINs, and whether only
listed volunteers may sign in."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from menwei.cli.common import emit_json, get_home, json_option, reports_errors

if TYPE_CHECKING:
    from menwei.core.store import Store


def _store() -> Store:
    from menwei.gateapp.wiring import open_store

    return open_store(get_home())


@click.group()
def operators() -> None:
    """The volunteers who may sign in at the gate, and their PINs."""


@operators.command("add")
@click.argument("name")
@click.option(
    "--pin",
    "pin",
    is_flag=False,
    flag_value="?",
    default=None,
    help="Set a PIN (4-12 digits). Give it as --pin 1234, or --pin alone to be asked for it.",
)
@click.option("--no-pin", is_flag=True, help="Remove the volunteer's PIN.")
@json_option
@reports_errors
def add(name: str, pin: str | None, no_pin: bool, as_json: bool) -> None:
    """List volunteer NAME (or change their PIN)."""
    from menwei.core.operators import add_operator

    if pin == "?":
        pin = click.prompt("PIN", hide_input=True, confirmation_prompt=True)
    if no_pin:
        pin = ""
    store = _store()
    try:
        op = add_operator(store, name, pin)
    finally:
        store.close()
    if as_json:
        emit_json({"ok": True, "name": op.name, "pin": op.has_pin})
    else:
        click.echo(f"{op.name}: listed{' with a PIN' if op.has_pin else ''} / 已登记")


@operators.command("list")
@json_option
@reports_errors
def list_(as_json: bool) -> None:
    """The listed volunteers, and whether only they may sign in."""
    from menwei.core.operators import list_operators, listed_only

    store = _store()
    try:
        ops = list_operators(store)
        only = listed_only(store)
    finally:
        store.close()
    if as_json:
        emit_json(
            {
                "ok": True,
                "listed_only": only,
                "operators": [{"name": o.name, "pin": o.has_pin, "role": o.role} for o in ops],
            }
        )
        return
    rule = (
        "only listed volunteers may sign in / 只有名单上的人能签到"
        if only
        else ("anyone may sign in / 任何人都能签到")
    )
    click.echo(rule)
    for o in ops:
        click.echo(f"  {o.name}{'  (PIN)' if o.has_pin else ''}")
    if not ops:
        click.echo("  (nobody listed / 名单为空)")


@operators.command("remove")
@click.argument("name")
@json_option
@reports_errors
def remove(name: str, as_json: bool) -> None:
    """Take NAME off the list (their past records keep their name)."""
    from menwei.core.errors import MenweiError
    from menwei.core.operators import remove_operator

    store = _store()
    try:
        removed = remove_operator(store, name)
    finally:
        store.close()
    if not removed:
        raise MenweiError(f"{name} is not listed. / {name} 不在名单上。")
    if as_json:
        emit_json({"ok": True, "name": name, "removed": True})
    else:
        click.echo(f"{name}: removed / 已移除")


@operators.command("only-listed")
@click.argument("state", type=click.Choice(["on", "off"]))
@json_option
@reports_errors
def only_listed(state: str, as_json: bool) -> None:
    """on: only listed volunteers may sign in at this gate; off: anyone may."""
    from menwei.core.operators import set_listed_only

    store = _store()
    try:
        set_listed_only(store, state == "on")
    finally:
        store.close()
    if as_json:
        emit_json({"ok": True, "listed_only": state == "on"})
    else:
        click.echo(f"only listed volunteers may sign in: {state}")
