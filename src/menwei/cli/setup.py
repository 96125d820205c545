"""The IT person's commands: init, roster, passes, policy."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from menwei.cli.common import emit_json, get_home, json_option, reports_errors
from menwei.core.errors import MenweiError, OutputError
from menwei.core.home import Home

if TYPE_CHECKING:
    from menwei.core.issuing import IssuedPass
    from menwei.core.store import Store
    from menwei.output.printing import PrintResult


def _open(home: Home) -> Store:
    from menwei.gateapp.wiring import open_store

    return open_store(home)


@click.command()
@click.option(
    "--community",
    "community",
    type=click.IntRange(1, 0xFFFF),
    required=True,
    help="Community id, 1-65535.",
)
@click.option("--name", required=True, help="The community's name, e.g. 钟楼居民区.")
@click.option(
    "--gate",
    default="gate-1",
    show_default=True,
    help="This machine's gate name as people say it, e.g. 东门 (`menwei gate rename` changes it).",
)
@json_option
@reports_errors
def init(community: int, name: str, gate: str, as_json: bool) -> None:
    """Create a community: the home, its database, signing key 0 and a permissive policy."""
    from menwei.core.community import init_community

    home = get_home()
    info = init_community(home, community=community, name=name, gate=gate)
    if as_json:
        emit_json(
            {
                "home": str(home.root),
                "community": info.community,
                "name": info.name,
                "gate": info.gate_id,
                "public_keys": str(home.public_keys_path),
                "policy": str(home.policy_path),
            }
        )
        return
    click.echo(f"已创建小区 {info.name} (#{info.community}),门岗 {info.gate_name}")
    click.echo(f"Community created in {home.root}, gate {info.gate_name}")
    click.echo(f"  signing key (keep it on this machine): {home.signing_key_path(0)}")
    click.echo(f"  public keys for gates:                 {home.public_keys_path}")
    click.echo(f"  policy (edit, then `menwei policy check`): {home.policy_path}")
    click.echo("Next: menwei roster import ROSTER.csv && menwei passes issue --all --out passes/")


# --- roster --------------------------------------------------------------------------------------


@click.group()
def roster() -> None:
    """The household roster (花名册): import from CSV/XLSX, list, remove."""


@roster.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--sheet",
    "sheets",
    multiple=True,
    metavar="NAME",
    help="Only this sheet of a workbook (repeatable; default: every sheet with the header).",
)
@click.option(
    "--replace",
    is_flag=True,
    help="The file is the whole roster: households not in it are removed (moved out) and their "
    "passes revoked.",
)
@json_option
@reports_errors
def roster_import(file: Path, sheets: tuple[str, ...], replace: bool, as_json: bool) -> None:
    """Import or update households from FILE (CSV in UTF-8 or GBK, or XLSX: every sheet).

    Columns (English or Chinese headers): household 户号 (a number, or an address like 3-2-301,
    or none: menwei numbers the households by address), building 楼栋, unit 单元, room 室号,
    group 楼组, members 人数, category 类别, contact 联系电话. Names are kept as written. A file
    with any error is refused whole, with sheet and line.
    """
    import time

    from menwei.core.clock import iso
    from menwei.core.roster import import_roster, read_roster_file, summary_lines

    if not file.exists():
        raise MenweiError(f"No such file: {file}", zh=f"没有这个文件:{file}", code="no_such_file")
    if replace and sheets:
        raise MenweiError(
            "--replace needs the whole roster: leave out --sheet.",
            zh="--replace 需要完整的花名册:请不要同时用 --sheet。",
            code="usage",
        )
    started = time.monotonic()

    def progress(rows: int) -> None:
        if not as_json and time.monotonic() - started > 2:
            click.echo(f"  已读 {rows} 行 …", err=True)
            click.echo(f"  read {rows} rows …", err=True)

    read = read_roster_file(file, sheets=sheets, progress=progress)
    store = _open(get_home())
    result = import_roster(
        store, read.households, now=iso(datetime.now(UTC)), replace=replace, columns=read.columns
    )
    if as_json:
        emit_json(
            {
                "ok": True,
                "file": str(file),
                "households": result.total,
                "added": result.added,
                "updated": result.updated,
                "unchanged": result.unchanged,
                "numbered": result.numbered,
                "sheets": read.sheets,
                "skipped_sheets": read.skipped_sheets,
                "by_group": result.by_group(),
                "by_category": result.by_category(),
                "unknown_categories": read.unknown_categories,
                "ignored_columns": read.ignored_columns,
                "missing": [h.number for h in result.missing],
                "removed": [h.number for h in result.removed],
                "reprint": result.reprint,
            }
        )
        return
    n = result.total
    click.echo(f"导入 {n} 户:新增 {result.added},更新 {result.updated},未变 {result.unchanged}")
    click.echo(
        f"imported {n} households ({result.added} added, {result.updated} updated, "
        f"{result.unchanged} unchanged)"
    )
    for line in summary_lines(read, result):
        click.echo(line)


@roster.command("list")
@click.option("--group", help="Only this building group (第3楼组, 3楼组 or 3).")
@click.option("--building", help="Only this building (12号楼, 12栋 or 12).")
@json_option
@reports_errors
def roster_list(group: str | None, building: str | None, as_json: bool) -> None:
    """List the households of the roster."""
    from menwei.core.names import natural_key
    from menwei.core.roster import find_building, find_group, list_households
    from menwei.core.text import category_label

    store = _open(get_home())
    wanted = find_group(store, group) if group is not None else None
    place = find_building(store, building) if building is not None else None
    households = [
        h
        for h in list_households(store)
        if wanted in (None, h.group) and place in (None, h.building)
    ]
    households.sort(key=lambda h: (natural_key(h.group), natural_key(h.building), h.number))
    if as_json:
        emit_json([h.as_dict() for h in households])
        return
    click.echo(f"{'户号':>6}  {'楼组':<8} {'地址':<16} 人数 类别")
    for h in households:
        click.echo(
            f"{h.number:>6}  {h.group_name().zh:<8} {h.address().zh:<16} {h.members:>3}  "
            f"{category_label(h.category).zh}"
        )
    click.echo(f"共 {len(households)} 户")
    click.echo(f"{len(households)} households")


@roster.command("remove")
@click.argument("numbers", nargs=-1, required=True, type=click.IntRange(1, 0xFFFF))
@click.option("--reason", help="Why (moved out 迁出...).")
@json_option
@reports_errors
def roster_remove(numbers: tuple[int, ...], reason: str | None, as_json: bool) -> None:
    """Remove households (moved out) from the roster and revoke their passes."""
    from menwei.core.clock import iso
    from menwei.core.roster import remove_households

    store = _open(get_home())
    removed = remove_households(
        store, list(numbers), now=iso(datetime.now(UTC)), reason=reason or "moved out"
    )
    if as_json:
        emit_json({"ok": True, "removed": [h.as_dict() for h in removed]})
        return
    for h in removed:
        click.echo(f"已删除 户号 {h.number} ({h.address().zh}),通行证作废")
        click.echo(f"removed household {h.number} ({h.address().en}); its pass is revoked")


# --- passes --------------------------------------------------------------------------------------


def _write_passes(
    home: Home, store: Store, issued: list[IssuedPass], out: Path, *, sheet: str | None = None
) -> PrintResult:
    from menwei.core.community import community_info
    from menwei.output.printing import PrintedPass, print_passes

    name = community_info(store).name
    printed = [
        PrintedPass(
            household=p.household,
            serial=p.serial,
            code=p.code,
            valid_until=p.valid_until,
            community_name=name,
        )
        for p in issued
    ]
    try:
        return print_passes(out, printed, community_name=name, sheet=sheet)
    except OSError as exc:
        raise OutputError(
            f"Cannot write the passes to {out}: {exc.strerror or exc}. Nothing was changed; "
            "choose a folder you can write (--out).",
            zh=f"无法把通行证写入 {out}:{exc.strerror or exc}。没有做任何改动,请用 --out "
            "选一个可写的文件夹。",
        ) from None


@click.group()
def passes() -> None:
    """Household passes (一户一证): issue and print, revoke and reissue."""


@passes.command("issue")
@click.option("--all", "all_", is_flag=True, help="Every household of the roster.")
@click.option(
    "--household",
    "numbers",
    type=click.IntRange(1, 0xFFFF),
    multiple=True,
    help="A household (repeatable).",
)
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Folder."
)
@click.option(
    "--valid-until", type=click.DateTime(["%Y-%m-%d"]), help="Last valid day (default +180 days)."
)
@json_option
@reports_errors
def passes_issue(
    all_: bool, numbers: tuple[int, ...], out: Path, valid_until: datetime | None, as_json: bool
) -> None:
    """Sign passes and print them: OUT/<household>.png and one A4 PDF per building group."""
    from menwei.core.issuing import issue

    if valid_until is not None and not 2000 <= valid_until.year <= 2099:
        raise MenweiError(
            f"--valid-until {valid_until:%Y-%m-%d} is not a day in 2000-2099.",
            zh=f"--valid-until {valid_until:%Y-%m-%d} 不在 2000-2099 年之间。",
            code="bad_time",
        )
    if all_ == bool(numbers):
        raise MenweiError(
            "Say which passes: --all, or --household N (repeatable).",
            zh="请说明签发哪些通行证:--all,或 --household 户号(可重复)。",
            code="usage",
        )
    home = get_home()
    store = _open(home)
    issued = issue(
        home,
        store,
        households=None if all_ else list(numbers),
        valid_until=valid_until.date() if valid_until else None,
    )
    result = _write_passes(home, store, issued, out)
    if as_json:
        emit_json(
            [{"household": p.household.number, "serial": p.serial, "code": p.code} for p in issued]
        )
        return
    click.echo(f"已签发 {len(issued)} 张通行证 -> {out}")
    click.echo(f"issued {len(issued)} passes -> {out}")
    for pdf in result.pdfs:
        click.echo(f"  {pdf}")


@passes.command("revoke")
@click.argument("household", type=click.IntRange(1, 0xFFFF))
@click.option("--reason", help="Why (lost, damaged, copied...).")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to print the new pass (default: the home's passes folder).",
)
@json_option
@reports_errors
def passes_revoke(household: int, reason: str | None, out: Path | None, as_json: bool) -> None:
    """Revoke HOUSEHOLD's pass and issue a new one (serial+1); the old one is refused from now on.

    The new pass is printed first (OUT/<household>.png and its own sheet
    OUT/reissued-<household>-<serial>.pdf; group sheets are never touched); only then is the old
    pass revoked, so a folder that cannot be written changes nothing.
    """
    from menwei.core.issuing import prepare_reissue, record_reissue

    home = get_home()
    store = _open(home)
    new = prepare_reissue(home, store, household)
    out = out or home.passes_dir
    result = _write_passes(
        home, store, [new], out, sheet=f"reissued-{household}-serial{new.serial}"
    )
    record_reissue(store, new, reason=reason)
    png = out / f"{household}.png"
    if as_json:
        emit_json(
            {
                "ok": True,
                "household": household,
                "serial": new.serial,
                "code": new.code,
                "png": str(png),
                "pdf": str(result.pdfs[0]),
            }
        )
        return
    click.echo(f"户号 {household} 旧证作废,新证第{new.serial}版 -> {result.pdfs[0]}")
    click.echo(
        f"household {household}: old pass revoked, new serial {new.serial} -> {png}, "
        f"{result.pdfs[0]}"
    )


# --- policy --------------------------------------------------------------------------------------


@click.group()
def policy() -> None:
    """The community's policy (release windows, quota, levels): show and check."""


@policy.command("show")
@json_option
@reports_errors
def policy_show(as_json: bool) -> None:
    """Show the policy in effect, in words."""
    from menwei.core.community import refresh_policy_from_file
    from menwei.core.policy_words import describe

    home = get_home()
    store = _open(home)
    version, warning = refresh_policy_from_file(home, store)
    from menwei.core.community import current_policy

    version, pol = current_policy(store)
    from menwei.core.community import check_policy, policy_version
    from menwei.core.errors import PolicyError

    stored = policy_version(store, version) if version else None
    if stored is not None:
        # Names as the roster writes them ('12' in the file is shown as '12号楼'); when the roster
        # changed since, the names as the file writes them.
        with contextlib.suppress(PolicyError):
            pol = check_policy(store, stored[0])
    lines = describe(pol)
    if as_json:
        emit_json(
            {
                "version": version,
                "file": str(home.policy_path),
                "warning": warning,
                "rules": {"zh": [t.zh for t in lines], "en": [t.en for t in lines]},
            }
        )
        return
    if warning:
        click.secho(warning, fg="yellow", err=True)
    click.echo(f"策略版本 {version}({home.policy_path})")
    click.echo(f"policy version {version} ({home.policy_path})")
    for t in lines:
        click.echo(f"  {t.zh}")
        click.echo(f"    {t.en}")


@policy.command("check")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@json_option
@reports_errors
def policy_check(file: Path | None, as_json: bool) -> None:
    """Check a policy file (default: the home's policy.toml) against the roster.

    Errors (exit 1) name each bad setting; warnings point at rules that are valid but probably
    wrong: a group nobody may leave, a category no household has, weekdays = [], trips = 0.
    """
    from menwei.core.community import check_policy, check_policy_warnings
    from menwei.core.errors import PolicyError
    from menwei.core.policy import policy_text

    home = get_home()
    path = file or home.policy_path
    try:
        text = policy_text(path.read_bytes())
    except OSError as exc:
        raise MenweiError(
            f"Cannot read {path}: {exc.strerror or exc}",
            zh=f"无法读取 {path}:{exc.strerror or exc}",
            code="no_such_file",
        ) from None
    store = _open(home)
    try:
        pol = check_policy(store, text)
    except PolicyError as exc:
        exc.message = f"{path}: {exc.message}"
        exc.zh = f"{path}:{exc.zh or '策略文件有错误。'}"
        raise
    warnings = check_policy_warnings(store, pol)
    if as_json:
        emit_json(
            {
                "ok": True,
                "file": str(path),
                "problems": [],
                "warnings": [w.as_dict() for w in warnings],
            }
        )
        return
    for w in warnings:
        click.secho(f"注意: {w.zh}", fg="yellow")
        click.secho(f"warning: {w.en}", fg="yellow")
    if warnings:
        click.echo(f"{path}: 没有错误,{len(warnings)} 条提醒")
        click.echo(f"{path}: no errors, {len(warnings)} warnings")
    else:
        click.echo(f"{path}: 没有问题")
        click.echo(f"{path}: no problems")
