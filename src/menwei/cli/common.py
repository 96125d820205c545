"""What every command shares: finding the home, printing JSON, turning errors into words."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import click

from menwei.core.errors import MenweiError
from menwei.core.home import Home

P = ParamSpec("P")
R = TypeVar("R")

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


def get_home(ctx: click.Context | None = None) -> Home:
    ctx = ctx or click.get_current_context()
    root = ctx.find_root()
    explicit = (root.obj or {}).get("home") if root.obj else None
    return Home.resolve(explicit)


def emit_json(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, indent=None, default=str))


def reports_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Print a MenweiError as a clear message and exit non-zero, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except MenweiError as exc:
            click.secho(f"menwei: {exc}", fg="red", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("menwei: interrupted", err=True)
            sys.exit(130)

    return wrapper
