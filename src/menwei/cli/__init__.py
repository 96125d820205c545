"""The `menwei` command: one subcommand per user job; `menwei` alone opens the gate app.

Subcommands load lazily so `menwei --help` is instant and heavy imports (Textual, OpenCV, httpx)
happen only in the command that needs them.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from menwei.cli.common import ErrorReportingGroup

# command name -> "module:attribute"
COMMANDS: dict[str, str] = {
    "init": "menwei.cli.setup:init",
    "roster": "menwei.cli.setup:roster",
    "passes": "menwei.cli.setup:passes",
    "policy": "menwei.cli.setup:policy",
    "check": "menwei.cli.gate_cmds:check",
    "log": "menwei.cli.gate_cmds:log",
    "override": "menwei.cli.gate_cmds:override",
    "undo": "menwei.cli.gate_cmds:undo",
    "register-return": "menwei.cli.gate_cmds:register_return",
    "demo": "menwei.cli.demo:demo",
    # scanner
    "scan": "menwei.cli.scan:scan",
    "decode": "menwei.cli.scan:decode",
    "doctor": "menwei.cli.scan:doctor",
    # the gate app
    "gate": "menwei.cli.home_cmds:gate",  # the app, and `gate rename`
    # --- issue 10 ---
    "backup": "menwei.cli.home_cmds:backup",
    "restore": "menwei.cli.home_cmds:restore",
    "operators": "menwei.cli.operators:operators",
    # sync
    "server": "menwei.cli.server_truth:server",  # sync_cmds.server + out-now, log, anomalies
    "enroll": "menwei.cli.sync_cmds:enroll",
    "sync": "menwei.cli.sync_cmds:sync",
    "export": "menwei.cli.sync_cmds:export",
    "anomalies": "menwei.cli.sync_cmds:anomalies",
    # notifications and registers
    "notify": "menwei.cli.notify_cmds:notify",
    "report": "menwei.cli.notify_cmds:report",
}


class LazyGroup(ErrorReportingGroup):
    def list_commands(self, ctx: click.Context) -> list[str]:
        names = set(super().list_commands(ctx)) | set(COMMANDS)
        return sorted(n for n in names if self.get_command(ctx, n) is not None)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMANDS:
            module_name, attr = COMMANDS[cmd_name].split(":")
            try:
                module = importlib.import_module(module_name)
            except ModuleNotFoundError as exc:
                if exc.name == module_name:
                    return None  # that part is not installed in this build
                raise
            command = getattr(module, attr)
            assert isinstance(command, click.Command)
            return command
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, invoke_without_command=True)
@click.version_option(package_name="menwei")
@click.option(
    "--home",
    type=click.Path(file_okay=False),
    envvar="MENWEI_HOME",
    help="The menwei home (default: $MENWEI_HOME, else the user data directory).",
)
@click.pass_context
def cli(ctx: click.Context, home: str | None) -> None:
    """门卫 menwei: household passes, staggered release windows and the gate log.

    Run `menwei` alone to open the gate app on this home's community.
    """
    ctx.ensure_object(dict)
    ctx.obj["home"] = home
    if ctx.invoked_subcommand is None:
        gate = cli.get_command(ctx, "gate")
        if gate is None:
            click.echo(ctx.get_help())
            return
        ctx.invoke(gate)


def main(**kwargs: Any) -> None:
    cli(**kwargs)
