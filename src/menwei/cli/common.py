"""What every command shares: finding the home, printing JSON, turning errors into words.

Errors take one road, whatever raised them: `fail` prints a command error in Chinese and then in
English (lines of their own), or with `--json` one object on stdout
`{"ok": false, "code": ..., "message": ..., "message_zh": ..., "problems": [...]}`, and exits
non-zero. `reports_errors` (on every command) sends the command's own errors there; the root group
(`ErrorReportingGroup`) sends Click's usage errors (a bad option value) there too.
"""

from __future__ import annotations

import errno
import functools
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, ParamSpec, TypeVar

import click

from menwei.core.errors import MenweiError
from menwei.core.home import Home

P = ParamSpec("P")
R = TypeVar("R")

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")

# A long list of problems (a 100,000-line bad roster) is cut to this many lines on the terminal,
# then "and N more"; --json carries the list as the command made it.
SHOWN_PROBLEMS = 20
_JSON_META = "menwei.json"


def get_home(ctx: click.Context | None = None) -> Home:
    ctx = ctx or click.get_current_context()
    root = ctx.find_root()
    explicit = (root.obj or {}).get("home") if root.obj else None
    return Home.resolve(explicit)


def emit_json(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, indent=None, default=str))


def wants_json(ctx: click.Context | None = None) -> bool:
    """Whether the command line asked for --json (also before its options were parsed)."""
    ctx = ctx or click.get_current_context(silent=True)
    if ctx is None:
        return False
    if ctx.params.get("as_json"):
        return True
    return bool(ctx.find_root().meta.get(_JSON_META))


def fail(
    message: str,
    *,
    zh: str | None = None,
    code: str = "error",
    problems: Sequence[str] = (),
    more: int = 0,
    exit_code: int = 1,
    as_json: bool | None = None,
) -> NoReturn:
    """Report a command error and exit with `exit_code` (see the module docstring)."""
    if as_json is None:
        as_json = wants_json()
    if as_json:
        emit_json(
            {
                "ok": False,
                "code": code,
                "message": message,
                "message_zh": zh or message,
                "problems": [p.split("\n")[-1] for p in problems],
                "problems_zh": [p.split("\n")[0] for p in problems],
                "more_problems": more,
            }
        )
        sys.exit(exit_code)
    if zh and zh != message:
        click.secho(f"menwei: {zh}", fg="red", err=True)
    click.secho(f"menwei: {message}", fg="red", err=True)
    for p in problems[:SHOWN_PROBLEMS]:
        first, *rest = p.split("\n")
        click.echo(f"  - {first}", err=True)
        for line in rest:
            click.echo(f"    {line}", err=True)
    hidden = max(0, len(problems) - SHOWN_PROBLEMS) + more
    if hidden:
        click.echo(f"  … 还有 {hidden} 条", err=True)
        click.echo(f"  … and {hidden} more", err=True)
    sys.exit(exit_code)


def fail_with(exc: MenweiError, *, as_json: bool | None = None) -> NoReturn:
    fail(
        exc.message,
        zh=exc.zh or zh_of(exc),
        code=exc.code,
        problems=exc.problems,
        more=exc.more,
        exit_code=exc.exit_code,
        as_json=as_json,
    )


def zh_of(exc: MenweiError) -> str:
    """A Chinese line for an error raised without one: what kind of problem it is."""
    kind = {
        "not_initialised": "这个目录还没有小区,请先运行 menwei init",
        "schema_too_new": "数据库来自更新版本的 menwei,请升级",
        "roster_refused": "花名册未导入",
        "policy_refused": "策略文件有错误,未采用",
        "cannot_write": "文件无法写入",
        "gate_refused": "门岗操作未完成",
    }.get(exc.code, "操作未完成")
    return f"{kind}(原因见下一行英文说明)"


def _os_error(exc: OSError) -> MenweiError:
    where = exc.filename or ""
    why = exc.strerror or str(exc)
    return MenweiError(
        f"Cannot write or read {where}: {why}. Nothing was changed; choose another place.",
        zh=f"无法读写 {where}:{why}。没有做任何改动,请换一个位置。",
        code="cannot_write",
    )


def _out_of_range() -> MenweiError:
    # Only a number given on the command line can be this large: say so rather than crash.
    return MenweiError(
        "A number given is out of range (far too large or too small); the command stopped.",
        zh="给出的数字超出范围(太大或太小);命令已停止。",
        code="out_of_range",
    )


def reports_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Report a MenweiError (or a file that cannot be written) as words, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        as_json = bool(kwargs.get("as_json")) or wants_json()
        try:
            return fn(*args, **kwargs)
        except MenweiError as exc:
            fail_with(exc, as_json=as_json)
        except OSError as exc:
            if exc.errno == errno.EPIPE:
                raise  # output piped into `head`: Click ends quietly
            fail_with(_os_error(exc), as_json=as_json)
        except OverflowError:
            fail_with(_out_of_range(), as_json=as_json)
        except KeyboardInterrupt:
            fail("interrupted", zh="已中断", code="interrupted", exit_code=130, as_json=as_json)

    return wrapper


class ErrorReportingGroup(click.Group):
    """A group whose usage errors (bad option values, unknown options) go through `fail`."""

    def invoke(self, ctx: click.Context) -> Any:
        if ctx.parent is None:
            raw = [*getattr(ctx, "_protected_args", []), *ctx.args]
            if "--" in raw:
                raw = raw[: raw.index("--")]
            ctx.meta[_JSON_META] = "--json" in raw
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            cmd = exc.ctx.command_path if exc.ctx is not None else "menwei"
            fail(
                f"{exc.format_message()} (see `{cmd} --help`)",
                zh=f"{_usage_zh(exc)}(见 `{cmd} --help`)",
                code="usage",
                exit_code=exc.exit_code,
                as_json=bool(ctx.find_root().meta.get(_JSON_META)),
            )
        except MenweiError as exc:
            fail_with(exc, as_json=bool(ctx.find_root().meta.get(_JSON_META)))
        except OverflowError:
            fail_with(_out_of_range(), as_json=bool(ctx.find_root().meta.get(_JSON_META)))


def _usage_zh(exc: click.UsageError) -> str:
    """Click's usage errors are English; say in Chinese which option is wrong and how."""
    from click.exceptions import BadParameter, MissingParameter, NoSuchOption

    def name(param: click.Parameter | None) -> str:
        if param is None:
            return "参数"
        opts = getattr(param, "opts", None) or []
        return opts[0] if opts and opts[0].startswith("-") else (param.human_readable_name or "")

    if isinstance(exc, MissingParameter):
        return f"缺少 {name(exc.param)}"
    if isinstance(exc, NoSuchOption):
        return f"没有这个选项:{exc.option_name}"
    if isinstance(exc, BadParameter):
        kind = getattr(exc.param, "type", None)
        if isinstance(kind, click.IntRange):
            return f"{name(exc.param)} 的值不对:应是 {kind.min} 到 {kind.max} 之间的整数"
        return f"{name(exc.param)} 的值不对"
    return "命令写法有误"


def int_range(low: int, high: int) -> click.IntRange:
    """An integer option that refuses values out of [low, high] with a clean error."""
    return click.IntRange(low, high)
