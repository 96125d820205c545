"""The gate from the command line: `check` (one scan) and `log` (read and verify the log)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import click

from menwei.cli.common import emit_json, get_home, json_option, reports_errors
from menwei.core.decision import Decision
from menwei.core.errors import MenweiError

if TYPE_CHECKING:
    from menwei.core.gate import GateService


FIRST_YEAR, LAST_YEAR = 2000, 2099


def parse_time(text: str, tz: ZoneInfo) -> datetime:
    """An ISO time between 2000 and 2099; without an offset it is the community's local time."""
    bad = MenweiError(
        f"{text!r} is not a time like 2026-11-24T09:30 or 2026-11-24 (years 2000-2099).",
        zh=f"{text!r} 不是 2026-11-24T09:30 或 2026-11-24 这样的时间(年份 2000-2099)。",
        code="bad_time",
    )
    try:
        at = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        at = at if at.tzinfo else at.replace(tzinfo=tz)
        utc = at.astimezone(UTC)
    except (ValueError, OverflowError):
        raise bad from None
    if not FIRST_YEAR <= at.year <= LAST_YEAR or not FIRST_YEAR <= utc.year <= LAST_YEAR:
        raise bad
    return at


reason_choice = click.Choice(
    ["medical", "emergency", "work", "other", "就医", "紧急", "返岗", "其他"]
)
_REASON_WORDS = {"就医": "medical", "紧急": "emergency", "返岗": "work", "其他": "other"}


@click.command()
@click.argument("text")
@click.option(
    "--direction",
    type=click.Choice(["auto", "exit", "entry"]),
    default="auto",
    show_default=True,
    help="auto: from the household's state.",
)
@click.option(
    "--at",
    "at_text",
    help="The scan's time (ISO, local if no offset; default now). Another time than now is a "
    "what-if, recorded only with --record.",
)
@click.option(
    "--record",
    is_flag=True,
    help="With --at: record the scan at that time (not in the future, not before the gate's "
    "last event).",
)
@click.option(
    "--operator", help="Who is at the gate (default: the signed-in volunteer, else 'cli')."
)
@click.option(
    "--headcount",
    type=click.IntRange(1, 99),
    default=1,
    show_default=True,
    help="People on this trip.",
)
@click.option("--dry-run", is_flag=True, help="Decide, but record nothing.")
@click.option("--lang", type=click.Choice(["zh", "en"]), default="zh", show_default=True)
@json_option
@reports_errors
def check(
    text: str,
    direction: str,
    at_text: str | None,
    operator: str | None,
    headcount: int,
    dry_run: bool,
    record: bool,
    lang: str,
    as_json: bool,
) -> None:
    """Decide on scanned TEXT (a pass code) as the gate would, and record it.

    With --at another time this is a what-if (nothing is recorded) unless --record is given.
    The exit code is 0 whenever a decision was made, whatever the verdict; read `verdict`.
    """
    from menwei.gateapp.wiring import open_gate

    gate = open_gate(get_home())
    at = parse_time(at_text, gate.policy.timezone) if at_text else None
    if at is not None and not record:
        dry_run = True
    if at is not None and record and not dry_run:
        _check_recorded_time(gate, at)
    who = operator or gate.current_operator() or "cli"
    decision = gate.decide(
        text,
        direction=direction,  # type: ignore[arg-type]
        operator=who,
        at=at,
        headcount=headcount,
        dry_run=dry_run,
    )
    _print_decision(decision, lang, as_json)


@click.group(invoke_without_command=True)
@click.option("--since", "since_text", help="Only events from this time (ISO, local if no offset).")
@click.option("--household", type=click.IntRange(1, 0xFFFF), help="Only this household.")
@click.option("--limit", type=click.IntRange(1, 10_000_000), help="At most this many (newest).")
@json_option
@click.pass_context
@reports_errors
def log(
    ctx: click.Context,
    since_text: str | None,
    household: int | None,
    limit: int | None,
    as_json: bool,
) -> None:
    """Show this gate's event log; `menwei log verify` checks its hash chain."""
    if ctx.invoked_subcommand is not None:
        return
    from menwei.core import eventlog
    from menwei.gateapp.wiring import open_gate

    gate = open_gate(get_home())
    since = parse_time(since_text, gate.policy.timezone) if since_text else None
    events = list(
        eventlog.iter_events(
            gate.store,
            since=since,
            household=household,
            limit=limit,
            newest_first=limit is not None,
        )
    )
    events.sort(key=lambda e: e.seq)
    if as_json:
        for e in events:
            emit_json(e.as_dict())
        return
    for e in events:
        local = gate.policy.local(datetime.fromisoformat(e.wall_time.replace("Z", "+00:00")))
        click.echo(
            f"{e.seq:>6} {local:%Y-%m-%d %H:%M:%S} {e.kind:<11} {e.household or '':>6} "
            f"{e.direction or '':<5} {e.reason:<18} {e.operator}"
            + (f"  [{e.window}]" if e.window else "")
            + (f"  {e.note}" if e.note else "")
        )


@log.command("verify")
@json_option
@reports_errors
def log_verify(as_json: bool) -> None:
    """Check the database file (SQLite's integrity check), the log's hash chain, and the head
    the community server acknowledged at the last sync. Exit 1 when anything is wrong."""
    from menwei.core import integrity

    report = integrity.verify_file(get_home().db_path)
    if as_json:
        d = report.as_dict()
        d["problem"] = report.chain_problem
        emit_json(d)
    elif report.ok:
        anchored = ""
        anchored_en = ""
        if report.anchor is not None:
            anchored = f",与服务器确认的第 {report.anchor.seq} 条一致"
            anchored_en = f", agrees with the server's acknowledged event {report.anchor.seq}"
        click.echo(f"日志完整:{report.count} 条,数据库检查通过{anchored}")
        click.echo(f"log intact: {report.count} events, database check ok{anchored_en}")
    else:
        for en, zh in report.problems():
            click.secho(f"日志有问题:{zh}", fg="red")
            click.secho(f"log damaged: {en}", fg="red")
        click.echo(f"{integrity.WAY_OUT[0]}")
        click.echo(f"{integrity.WAY_OUT[1]}")
    if not report.ok:
        sys.exit(1)


def _check_recorded_time(gate: GateService, at: datetime) -> None:
    """A recorded time is not in the future and not before this gate's last event: the log
    stays in time order and no trip is invented ahead of time."""
    now = gate.clock.now()
    if at > now + timedelta(minutes=1):
        raise MenweiError(
            f"--at {at:%Y-%m-%d %H:%M} is in the future: only what has happened is recorded "
            "(leave out --record to try it).",
            zh=f"--at {at:%Y-%m-%d %H:%M} 是将来的时间:只记录已经发生的事(去掉 --record 可以试算)。",
            code="time_in_future",
        )
    row = gate.store.one(
        "select wall_time from events where gate_id = ? order by seq desc limit 1", [gate.gate_id]
    )
    if row is not None:
        last = datetime.fromisoformat(str(row["wall_time"]).replace("Z", "+00:00"))
        if at < last:
            local = gate.policy.local(last)
            raise MenweiError(
                f"--at is before this gate's last event ({local:%Y-%m-%d %H:%M:%S}); "
                "the log is kept in time order.",
                zh=f"--at 早于本门岗最后一条记录({local:%Y-%m-%d %H:%M:%S});日志按时间顺序记录。",
                code="time_before_last_event",
            )


def _print_decision(decision: Decision, lang: str, as_json: bool) -> None:
    if as_json:
        emit_json(decision.to_json(lang))
        return
    colour = {"green": "green", "amber": "yellow", "red": "red"}[decision.verdict]
    where = f" 户号 {decision.household_number}" if decision.household_number else ""
    if not decision.recorded and decision.kind != "annul":
        click.echo("(试算,未记录)")
        click.echo("(what-if, not recorded)")
    click.secho(f"{decision.title.get(lang)}{where}", fg=colour, bold=True)
    click.echo(decision.text(lang))
    click.echo(
        f"reason={decision.reason} direction={decision.direction or '-'} "
        f"recorded={'yes' if decision.recorded else 'no'}"
        + (f" event={decision.event_id}" if decision.event_id else "")
    )


lang_option = click.option(
    "--lang", type=click.Choice(["zh", "en"]), default="zh", show_default=True
)
operator_option = click.option(
    "--operator", help="Who is at the gate (default: the signed-in volunteer, else 'cli')."
)


@click.command()
@click.argument("event_id")
@click.option(
    "--reason",
    type=reason_choice,
    required=True,
    help="就医 medical, 紧急 emergency, 返岗 work, 其他 other (needs --note).",
)
@click.option("--note", help="The reason in words.")
@operator_option
@lang_option
@json_option
@reports_errors
def override(
    event_id: str, reason: str, note: str | None, operator: str | None, lang: str, as_json: bool
) -> None:
    """Let a refused household through anyway (the refusal's EVENT_ID, from `check --json`)."""
    from menwei.gateapp.wiring import open_gate

    gate = open_gate(get_home())
    who = operator or gate.current_operator() or "cli"
    reason = _REASON_WORDS.get(reason, reason)
    _print_decision(gate.override(event_id, reason=reason, note=note, operator=who), lang, as_json)


@click.command()
@operator_option
@lang_option
@json_option
@reports_errors
def undo(operator: str | None, lang: str, as_json: bool) -> None:
    """Undo this gate's last exit or entry (within 2 minutes): recorded as an annulment."""
    from menwei.gateapp.wiring import open_gate

    gate = open_gate(get_home())
    who = operator or gate.current_operator() or "cli"
    _print_decision(gate.annul_last(operator=who), lang, as_json)


@click.command("register-return")
@click.argument("household", type=click.IntRange(1, 0xFFFF))
@click.option("--note", required=True, help="Where from and why (外地返岗, 出院...).")
@click.option("--headcount", type=click.IntRange(1, 99), default=1, show_default=True)
@operator_option
@lang_option
@json_option
@reports_errors
def register_return(
    household: int, note: str, headcount: int, operator: str | None, lang: str, as_json: bool
) -> None:
    """Register a returning resident of HOUSEHOLD: back in with no exit on record."""
    from menwei.gateapp.wiring import open_gate

    gate = open_gate(get_home())
    who = operator or gate.current_operator() or "cli"
    decision = gate.register_return(household, note=note, operator=who, headcount=headcount)
    _print_decision(decision, lang, as_json)
