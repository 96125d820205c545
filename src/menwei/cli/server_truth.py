"""What the community server knows, so the committee can check that every gate agrees with it:
`menwei server out-now`, `menwei server log`, `menwei server anomalies`.

These are added to the `server` group of `sync_cmds` (the command table points here).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click

from menwei.cli.common import emit_json, get_home, json_option, reports_errors
from menwei.cli.sync_cmds import _server_storage, server
from menwei.core.home import Home

__all__ = ["server"]


def _timezone(home: Home) -> Any:
    """The community's timezone, from the committee home's policy."""
    from menwei.core.community import current_policy
    from menwei.core.store import Store

    store = Store.open(home.db_path)
    try:
        return current_policy(store)[1].timezone
    finally:
        store.close()


def _local(text: str, tz: Any) -> str:
    at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return f"{at.astimezone(tz):%Y-%m-%d %H:%M:%S}"


@server.command("out-now")
@click.option("--lang", type=click.Choice(["zh", "en"]), default="zh", show_default=True)
@json_option
@reports_errors
def out_now(lang: str, as_json: bool) -> None:
    """Households out now as the server sees them (every gate's events, in the shared order)."""
    home = get_home()
    storage, community = _server_storage(home)
    try:
        presence = storage.presence(community)
        refs = {
            int(r["household"]): r
            for r in storage.query(
                "select household, building, unit, room, building_group from ref_households"
                " where community_id = ? and deleted = 0",
                [community],
            )
        }
    finally:
        storage.close()
    tz = _timezone(home)
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    for p in sorted(presence.values(), key=lambda p: p.since):
        if p.state != "out":
            continue
        ref = refs.get(p.household, {})
        since = datetime.fromisoformat(p.since.replace("Z", "+00:00"))
        rows.append(
            {
                "household": p.household,
                "building": ref.get("building"),
                "unit": ref.get("unit"),
                "room": ref.get("room"),
                "group": ref.get("building_group"),
                "since": p.since,
                "gate_id": p.gate_id,
                "event_id": p.event_id,
                "minutes_out": int((now - since).total_seconds() // 60),
            }
        )
    if as_json:
        emit_json({"ok": True, "count": len(rows), "out": rows})
        return
    if not rows:
        click.echo("现在没有外出的住户" if lang == "zh" else "Nobody is out now")
        return
    click.echo(f"外出中 {len(rows)} 户" if lang == "zh" else f"{len(rows)} households out")
    for r in rows:
        where = f"{r['building'] or '?'}-{r['unit'] or '?'}-{r['room'] or '?'}"
        when = _local(r["since"], tz)
        if lang == "zh":
            click.echo(f"  户号 {r['household']:>5}  {where}  {when} 从{r['gate_id']}外出")
        else:
            click.echo(f"  household {r['household']:>5}  {where}  out at {r['gate_id']} {when}")


@server.command("log")
@click.option("--household", type=int, help="Only this household.")
@click.option("--limit", type=int, help="Only the newest this many.")
@json_option
@reports_errors
def server_log(household: int | None, limit: int | None, as_json: bool) -> None:
    """Every gate's events as the server holds them, in the shared order the gates use."""
    home = get_home()
    storage, community = _server_storage(home)
    try:
        rows = storage.events_in_order(community, household=household, limit=limit)
    finally:
        storage.close()
    for r in rows:
        r["annulled"] = bool(r["annulled"])
        r["orphan"] = bool(r["orphan"])
    if as_json:
        emit_json({"ok": True, "count": len(rows), "events": rows})
        return
    tz = _timezone(home)
    for r in rows:
        click.echo(
            f"{_local(r['wall_time'], tz)} {r['gate_id']:<10} {r['seq']:>6} {r['kind']:<11} "
            f"{r['household'] or '':>6} {r['direction'] or '':<5} {r['reason'] or '':<18}"
            + ("  [annulled/已撤销]" if r["annulled"] else "")
        )


@server.command("anomalies")
@click.option("--all", "everything", is_flag=True, help="Also the withdrawn ones.")
@click.option("--lang", type=click.Choice(["zh", "en"]), default="zh", show_default=True)
@json_option
@reports_errors
def server_anomalies(everything: bool, lang: str, as_json: bool) -> None:
    """The anomalies the server raised (double exits, clones, suspect clocks...)."""
    from menwei.core.reasons import anomaly_words

    home = get_home()
    storage, community = _server_storage(home)
    try:
        records = storage.list_anomalies(community, include_withdrawn=everything)
    finally:
        storage.close()
    rows = [{**a.model_dump(), "words": anomaly_words(a.kind).as_dict()} for a in records]
    if as_json:
        emit_json({"ok": True, "count": len(rows), "anomalies": rows})
        return
    if not rows:
        click.echo("没有异常" if lang == "zh" else "No anomalies")
        return
    tz = _timezone(home)
    for a in records:
        mark = ""
        if a.status != "open":
            mark = " [已撤回]" if lang == "zh" else " [withdrawn]"
        who = a.household if a.household is not None else "-"
        gate = a.gate_id or "-"
        head = f"{_local(a.detected_at, tz)}  {anomaly_words(a.kind).get(lang)}{mark}  "
        click.echo(
            head + (f"户号 {who}  门岗 {gate}" if lang == "zh" else f"household {who}  gate {gate}")
        )
        click.echo(f"    {a.detail}")
