"""`menwei demo`: build the demo community and open the gate app on it."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import platformdirs

from menwei.cli.common import emit_json, json_option, reports_errors


def default_demo_dir() -> Path:
    return Path(platformdirs.user_data_dir("menwei", appauthor=False)) / "demo"


@click.command()
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to build the demo home (default: menwei's data dir /demo). It is rebuilt.",
)
@click.option(
    "--no-open", is_flag=True, help="Build it, print where, and do not open the gate app."
)
@click.option("--lang", type=click.Choice(["zh", "en"]), default="zh", show_default=True)
@json_option
@reports_errors
def demo(directory: Path | None, no_open: bool, lang: str, as_json: bool) -> None:
    """Build a demo community (300 households, 10 building groups, staggered windows, printed
    passes) in a fresh home and open the gate app on it with a simulated camera."""
    from menwei.core.demo import build_demo

    root = directory or default_demo_dir()
    result = build_demo(root)
    if as_json:
        emit_json(
            {
                "home": str(result.home.root),
                "households": result.households,
                "groups": result.groups,
                "passes": str(result.passes_dir),
                "pdfs": [str(p) for p in result.pdfs],
                "sample_code": result.issued[0].code,
            }
        )
    else:
        click.echo(
            f"演示小区已建好 / demo community ready: {result.households} 户 households, "
            f"{result.groups} 楼组 groups"
        )
        click.echo(f"  home:   {result.home.root}")
        click.echo(f"  passes: {result.passes_dir}  (PNG per household, PDF per group)")
        click.echo(
            f"  try:    MENWEI_HOME={result.home.root} menwei check '{result.issued[0].code}'"
        )
    if no_open or as_json:
        return
    if not sys.stdin.isatty() or not sys.stdout.isatty():
        click.echo("(not a terminal: the gate app was not opened)")
        return
    from menwei.cli import cli

    gate_cmd = cli.get_command(click.get_current_context(), "gate")
    if gate_cmd is None:
        return
    click.get_current_context().find_root().obj["home"] = str(result.home.root)
    click.get_current_context().invoke(gate_cmd, camera="demo", lang=lang)
