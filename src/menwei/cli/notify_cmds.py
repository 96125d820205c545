"""`menwei notify` (chat targets and the outbox) and `menwei report` (registers and summaries)."""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from menwei.cli.common import emit_json, get_home, json_option, reports_errors
from menwei.core.errors import MenweiError
from menwei.core.text import Text

if TYPE_CHECKING:
    from menwei.core.policy import Policy
    from menwei.core.store import Store


def _open() -> Store:
    from menwei.gateapp.wiring import open_store

    return open_store(get_home())


def _now(at_text: str | None, policy: Policy | None = None) -> datetime:
    if not at_text:
        return datetime.now(UTC)
    try:
        at = datetime.fromisoformat(at_text.replace("Z", "+00:00"))
    except ValueError:
        raise MenweiError(f"{at_text!r} is not a time like 2026-11-24T21:00") from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=policy.timezone if policy else UTC)
    return at


def _policy(store: Store) -> Policy:
    from menwei.core.community import current_policy

    return current_policy(store)[1]


at_option = click.option(
    "--at", "at_text", hidden=True, help="Act as if it were this time (ISO; for replays and tests)."
)


# --- notify --------------------------------------------------------------------------------------


@click.group()
def notify() -> None:
    """Chat notifications: targets (any apprise URL) and the outbox of messages to send.

    Alerts (forged, revoked or foreign passes, overrides, late returns, anomalies) and the
    daily summaries wait in the outbox until every target has them.
    """


@notify.command("add")
@click.argument("url")
@click.option(
    "--group", help="A building group: its alerts and daily summary (default: community)."
)
@click.option("--lang", type=click.Choice(["zh", "en"]), default="zh", show_default=True)
@click.option(
    "--no-check",
    is_flag=True,
    help="Do not ask the chat server whether the room exists and the bot can join it.",
)
@json_option
@reports_errors
def notify_add(url: str, group: str | None, lang: str, no_check: bool, as_json: bool) -> None:
    """Add a target: an apprise URL such as tgram://TOKEN/CHAT_ID, matrixs://..., json://HOST/PATH.

    The URL holds the chat's secrets: it is kept in the gate database and shown masked.
    A Matrix target is checked first: a misspelt room, a refused login or a room the bot
    cannot join is refused (apprise would create a new room nobody reads).
    """
    from menwei.core.roster import find_group
    from menwei.notify.messages import failure_words
    from menwei.notify.targets import (
        REFUSED_PROBLEMS,
        add_target,
        check_url,
        known_groups,
        masked,
        reachable,
    )

    store = _open()
    group = find_group(store, group) if group else None  # unknown groups are refused
    check_url(url)
    problems: list[str] = []
    if not no_check:
        url, problems = reachable(url)
    refused = [p for p in problems if p.partition(":")[0] in REFUSED_PROBLEMS]
    if refused:
        _refuse_target(url, refused, as_json)
    target, added = add_target(store, url, group=group, lang=lang, now=datetime.now(UTC))
    groups = known_groups(store)
    warnings = [failure_words(p) for p in problems]
    if group and groups and group not in groups:
        warnings.append(
            Text(
                f"楼组 {group} 不在花名册中(暂时)",
                f"building group {group!r} is not in the roster (yet)",
            )
        )
    if as_json:
        emit_json(
            {
                "ok": True,
                "id": target.id,
                "url": masked(target.url),
                "group": target.group,
                "lang": target.lang,
                "added": added,
                "warning": "; ".join(w.en for w in warnings) or None,
                "warnings": [w.as_dict() for w in warnings],
            }
        )
        return
    where = f"楼组 {target.group}" if target.group else "小区 / community"
    verb = "已添加 / added" if added else "已存在 / already there"
    click.echo(f"#{target.id} {verb}: {masked(target.url)} ({where}, {target.lang})")
    for w in warnings:
        click.secho(f"注意:{w.zh}", fg="yellow", err=True)
        click.secho(f"warning: {w.en}", fg="yellow", err=True)
    click.echo("Try it: menwei notify test " + str(target.id))


def _refuse_target(url: str, problems: list[str], as_json: bool) -> None:
    """A target that would swallow messages: say why, in both languages, and exit 1."""
    from menwei.notify.messages import failure_words
    from menwei.notify.targets import masked

    words = [failure_words(p) for p in problems]
    if as_json:
        emit_json(
            {
                "ok": False,
                "code": problems[0].partition(":")[0],
                "message": words[0].en,
                "message_zh": words[0].zh,
                "url": masked(url),
            }
        )
        sys.exit(1)
    lines = [f"未添加:{w.zh}" for w in words] + [f"not added: {w.en}" for w in words]
    raise MenweiError("\n".join(lines))


@notify.command("list")
@json_option
@reports_errors
def notify_list(as_json: bool) -> None:
    """The targets, with secrets masked."""
    from menwei.notify.targets import list_targets, masked, settings

    store = _open()
    targets = list_targets(store)
    if as_json:
        emit_json(
            {
                "targets": [
                    {"id": t.id, "url": masked(t.url), "group": t.group, "lang": t.lang}
                    for t in targets
                ],
                "settings": settings(store),
            }
        )
        return
    if not targets:
        click.echo("没有通知目标 / No targets: menwei notify add URL [--group G]")
    for t in targets:
        where = f"楼组 {t.group}" if t.group else "小区"
        click.echo(f"#{t.id}  {where:<8} {t.lang}  {masked(t.url)}")
    s = settings(store)
    click.echo(
        f"daily summary: {s['summary_at'] or 'off'}; anomalies: {'on' if s['anomalies'] else 'off'};"
        f" escort calls: {'on' if s['escort'] else 'off'}"
    )


@notify.command("remove")
@click.argument("target")
@json_option
@reports_errors
def notify_remove(target: str, as_json: bool) -> None:
    """Remove TARGET (its number from `notify list`, or its URL).

    A message that waited only for it counts as sent once its other targets have it; one with
    no target left stays queued for the next target added.
    """
    from menwei.notify.targets import masked, remove_target

    removed = remove_target(_open(), target)
    if as_json:
        emit_json({"id": removed.id, "url": masked(removed.url), "group": removed.group})
        return
    click.echo(f"#{removed.id} 已删除 / removed: {masked(removed.url)}")


@notify.command("test")
@click.argument("target", required=False)
@json_option
@reports_errors
def notify_test(target: str | None, as_json: bool) -> None:
    """Send a test message now to TARGET (default: every target). Exits 1 if one failed."""
    from menwei.core.community import community_info
    from menwei.core.text import Text
    from menwei.notify.messages import failure_words, test_message
    from menwei.notify.sender import send_test
    from menwei.notify.targets import find_target, list_targets, masked

    store = _open()
    targets = [find_target(store, target)] if target else list_targets(store)
    if not targets:
        raise MenweiError("No targets to test: menwei notify add URL first.")
    info = community_info(store)
    now = _policy(store).local(datetime.now(UTC))
    body = test_message(info.name, info.gate_name, now)
    results = send_test(targets, Text("门卫测试", "menwei test"), body)
    failed = [t for t in targets if results[t.id] is not None]
    if as_json:
        emit_json(
            {
                "ok": not failed,
                "targets": [_result(t.id, masked(t.url), results[t.id]) for t in targets],
            }
        )
    else:
        for t in targets:
            error = results[t.id]
            if error is None:
                click.echo(f"#{t.id} {click.style('ok', fg='green')} {masked(t.url)}")
                continue
            words = failure_words(error)
            click.echo(f"#{t.id} {click.style('失败', fg='red')} {masked(t.url)}")
            click.echo(f"    {words.zh}")
            click.echo(f"    {words.en}")
    if failed:
        sys.exit(1)


def _result(target_id: int, url: str, error: str | None) -> dict[str, Any]:
    from menwei.notify.messages import failure_words

    if error is None:
        return {"id": target_id, "url": url, "ok": True, "error": None}
    words = failure_words(error)
    return {
        "id": target_id,
        "url": url,
        "ok": False,
        "code": error.partition(":")[0],
        "error": words.en,
        "error_zh": words.zh,
    }


@notify.command("send")
@click.option("--force", is_flag=True, help="Also retry messages still backing off.")
@at_option
@json_option
@reports_errors
def notify_send(force: bool, at_text: str | None, as_json: bool) -> None:
    """Queue what is due (overdue returns, anomalies, summaries) and send the outbox.

    For cron and scripts. Exits 1 when messages failed: they stay queued and are retried.
    """
    from menwei.notify.due import collect_due
    from menwei.notify.sender import send_due

    store = _open()
    fixed = _now(at_text, _policy(store)) if at_text else None

    def now() -> datetime:
        return fixed or datetime.now(UTC)

    queued = collect_due(store, now())
    report = send_due(store, now, force=force)
    if as_json:
        emit_json({"queued": queued, **report.as_dict()})
    else:
        click.echo(
            f"新排队 {len(queued)},已发送 {len(report.sent)},失败 {len(report.failed)}"
            f" / queued {len(queued)}, sent {len(report.sent)}, failed {len(report.failed)}"
        )
        from menwei.notify.messages import failure_words

        for target_id, why in report.causes.items():
            words = failure_words(why)
            n = report.waiting_for.get(target_id, 0)
            click.secho(f"  目标 #{target_id}:{words.zh}({n} 条消息等待重试)", fg="red")
            click.secho(f"  target #{target_id}: {words.en} ({n} message(s) wait)", fg="red")
        if report.no_target:
            click.echo(f"  {len(report.no_target)} message(s) have no target any more; kept.")
    if not report.ok:
        sys.exit(1)


@notify.command("status")
@click.option("--sent", "show_sent", type=int, default=0, help="Also show the last N sent.")
@json_option
@reports_errors
def notify_status(show_sent: int, as_json: bool) -> None:
    """What waits in the outbox, what failed and why, per target."""
    from menwei.notify import outbox
    from menwei.notify.messages import failure_words
    from menwei.notify.targets import settings

    store = _open()
    counts = outbox.counts(store)
    rows = outbox.waiting(store)
    sent = outbox.recent_sent(store, limit=show_sent) if show_sent > 0 else []
    per = outbox.deliveries(store, [r.id for r in rows + sent])

    def as_dict(r: outbox.OutboxRow) -> dict[str, Any]:
        return {
            "id": r.id,
            "key": r.key,
            "topic": r.topic,
            "group": r.group,
            "title": r.title.zh,
            "status": r.status,
            "attempts": r.attempts,
            "created_at": r.created_at,
            "next_attempt_at": r.next_attempt_at,
            "last_error": r.last_error,
            "sent_at": r.sent_at,
            "deliveries": [d.__dict__ for d in per.get(r.id, [])],
        }

    if as_json:
        emit_json(
            {
                "counts": counts,
                "waiting": [as_dict(r) for r in rows],
                "sent": [as_dict(r) for r in sent],
                "settings": settings(store),
            }
        )
        return
    from menwei.core.clock import parse_iso

    policy = _policy(store)

    def local(stamp: str | None) -> str:
        return f"{policy.local(parse_iso(stamp)):%m-%d %H:%M:%S}" if stamp else "-"

    click.echo(
        f"待发送 {counts['pending']} · 失败待重试 {counts['failed']} · 已发送 {counts['sent']}"
        f" · 已撤回 {counts['withdrawn']}"
    )
    click.echo(
        f"waiting {counts['pending']}, failed {counts['failed']}, sent {counts['sent']},"
        f" withdrawn {counts['withdrawn']}"
    )
    for r in rows:
        state = "failed" if r.status == "failed" else "waiting"
        click.echo(
            f"  #{r.id} {state} {r.title.zh} [{r.key}] queued {local(r.created_at)},"
            f" tries {r.attempts}, next {local(r.next_attempt_at)}"
        )
        for d in per.get(r.id, []):
            why = failure_words(d.last_error).zh if d.status != "sent" and d.last_error else ""
            click.echo(f"      target #{d.target_id}: {d.status}" + (f"({why})" if why else ""))
        if r.last_error and not per.get(r.id):
            click.echo(f"      {failure_words(r.last_error).zh}")
    for r in sent:
        click.echo(f"  #{r.id} sent {local(r.sent_at)} {r.title.zh} [{r.key}]")


@notify.command("settings")
@click.option("--summary-at", help="Time of day for the daily summaries, e.g. 21:00, or 'off'.")
@click.option("--anomalies", type=click.Choice(["on", "off"]), help="Notify anomalies from sync.")
@click.option(
    "--escort",
    type=click.Choice(["on", "off"]),
    help="Registering a returning resident calls the building group's steward (红色管家).",
)
@json_option
@reports_errors
def notify_settings(
    summary_at: str | None, anomalies: str | None, escort: str | None, as_json: bool
) -> None:
    """Show or change when the daily summaries go out and whether anomalies notify.

    With several gates, turn the summary and anomalies on at one of them only.
    """
    from menwei.notify.due import parse_summary_time
    from menwei.notify.targets import ANOMALIES_KEY, ESCORT_KEY, SUMMARY_AT_KEY, settings

    store = _open()
    if summary_at is not None:
        if summary_at.strip().lower() in ("off", "none", ""):
            store.set_meta(SUMMARY_AT_KEY, "")
        else:
            try:
                at = parse_summary_time(summary_at)
            except ValueError as exc:
                raise MenweiError(str(exc)) from None
            store.set_meta(SUMMARY_AT_KEY, f"{at:%H:%M}")
    if anomalies is not None:
        store.set_meta(ANOMALIES_KEY, anomalies)
    if escort is not None:
        store.set_meta(ESCORT_KEY, escort)
    s = settings(store)
    if as_json:
        emit_json(s)
        return
    click.echo(f"daily summary: {s['summary_at'] or 'off'}")
    click.echo(f"anomalies: {'on' if s['anomalies'] else 'off'}")
    click.echo(f"escort calls: {'on' if s['escort'] else 'off'}")


# --- report --------------------------------------------------------------------------------------


@click.group()
def report() -> None:
    """Registers and summaries to print or send: the movement register per building group."""


def _day(store: Store, text: str | None) -> date:
    if not text:
        return _policy(store).policy_day(datetime.now(UTC))
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise MenweiError(f"{text!r} is not a date like 2026-11-24") from None


def _format(out: Path, fmt: str | None) -> str:
    if fmt:
        return fmt
    suffix = out.suffix.lower().lstrip(".")
    if suffix in ("csv", "pdf"):
        return suffix
    raise MenweiError(f"Say --format csv or pdf (cannot tell from {out.name!r}).")


@report.command("register")
@click.option("--group", required=True, help="The building group (楼组).")
@click.option("--date", "day_text", help="The day (default: today).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="CSV or PDF file.")
@click.option("--format", "fmt", type=click.Choice(["csv", "pdf"]), help="Default: from --out.")
@click.option("--lang", type=click.Choice(["zh", "en"]), default="zh", show_default=True)
@at_option
@json_option
@reports_errors
def report_register(
    group: str,
    day_text: str | None,
    out: Path | None,
    fmt: str | None,
    lang: str,
    at_text: str | None,
    as_json: bool,
) -> None:
    """The movement register (人员流动信息册) of a building group for a day.

    One line per trip: household, building and room, people, out at, back at, gates,
    overrides, overdue. CSV opens in Excel with the Chinese intact; PDF prints on A4.
    """
    from menwei.core.register import movement_register
    from menwei.core.roster import find_group
    from menwei.output.register_files import write_register_csv, write_register_pdf

    store = _open()
    group = find_group(store, group)  # the roster's own name of 第3楼组 / 3楼组 / 3
    day = _day(store, day_text)
    reg = movement_register(store, group, day, as_of=_now(at_text, _policy(store)))
    if out is not None:
        kind = _format(out, fmt)
        (write_register_csv if kind == "csv" else write_register_pdf)(reg, out, lang)
    if as_json:
        emit_json({**reg.as_dict(), "out": str(out) if out else None})
        return
    click.echo(f"{reg.title.get(lang)} · {reg.subtitle(lang)}")
    if out is None:
        header = reg.header(lang)
        for row in reg.rows(lang):
            click.echo("  " + " | ".join(f"{h}={v}" for h, v in zip(header, row, strict=True) if v))
    click.echo(reg.totals_text().get(lang))
    if out is not None:
        click.echo(f"→ {out}")


@report.command("summary")
@click.option("--date", "day_text", help="The day (default: today).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="A PDF file.")
@click.option("--lang", type=click.Choice(["zh", "en"]), default="zh", show_default=True)
@at_option
@json_option
@reports_errors
def report_summary(
    day_text: str | None, out: Path | None, lang: str, at_text: str | None, as_json: bool
) -> None:
    """The community's day: trips by window and group, overdue returns, refusals, anomalies."""
    from menwei.core.register import day_summary, summary_lines, summary_title
    from menwei.output.register_files import write_summary_pdf

    store = _open()
    day = _day(store, day_text)
    s = day_summary(store, day, as_of=_now(at_text, _policy(store)))
    if out is not None:
        if out.suffix.lower() != ".pdf":
            raise MenweiError("The summary is written as PDF: give --out FILE.pdf.")
        write_summary_pdf(s, out, lang)
    if as_json:
        emit_json({**s.as_dict(), "out": str(out) if out else None})
        return
    click.echo(summary_title(s).get(lang))
    for line in summary_lines(s, lang):
        click.echo(line)
    if out is not None:
        click.echo(f"→ {out}")
