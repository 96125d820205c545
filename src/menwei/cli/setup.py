"""The IT person's commands: init, roster, passes, policy."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from menwei.cli.common import emit_json, get_home, json_option, reports_errors
from menwei.core.errors import MenweiError
from menwei.core.home import Home

if TYPE_CHECKING:
    from menwei.core.issuing import IssuedPass
    from menwei.core.printing import PrintResult
    from menwei.core.store import Store


def _open(home: Home) -> Store:
    from menwei.gateapp.wiring import open_store

    return open_store(home)


@click.command()
@click.option("--community", "community", type=int, required=True, help="Community id, 1-65535.")
@click.option("--name", required=True, help="The community's name, e.g. 钟楼居民区.")
@click.option("--gate", default="gate-1", show_default=True, help="This machine's gate name.")
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
    click.echo(f"已创建小区 {info.name} (#{info.community}) / Community created in {home.root}")
    click.echo(f"  signing key (keep it on this machine): {home.signing_key_path(0)}")
    click.echo(f"  public keys for gates:                 {home.public_keys_path}")
    click.echo(f"  policy (edit, then `menwei policy check`): {home.policy_path}")
    click.echo("Next: menwei roster import ROSTER.csv && menwei passes issue --all --out passes/")


# --- roster --------------------------------------------------------------------------------------


@click.group()
def roster() -> None:
    """The household roster (花名册): import from CSV/XLSX, list."""


@roster.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@json_option
@reports_errors
def roster_import(file: Path, as_json: bool) -> None:
    """Import or update households from FILE (CSV in UTF-8 or GBK, or XLSX).

    Columns (English or Chinese headers): household 户号, building 楼栋, unit 单元, room 室号,
    group 楼组, members 人数, category 类别, contact 联系电话 (optional). A file with any error is
    refused whole, with line numbers.
    """
    from menwei.core.clock import iso
    from menwei.core.roster import import_roster, read_roster

    if not file.exists():
        raise MenweiError(f"No such file: {file}")
    households = read_roster(file)
    store = _open(get_home())
    result = import_roster(store, households, now=iso(datetime.now(UTC)))
    if as_json:
        emit_json(
            {
                "file": str(file),
                "households": len(households),
                "added": result.added,
                "updated": result.updated,
                "unchanged": result.unchanged,
            }
        )
        return
    click.echo(
        f"导入 {len(households)} 户:新增 {result.added},更新 {result.updated},"
        f"未变 {result.unchanged} / imported {len(households)} households "
        f"({result.added} added, {result.updated} updated, {result.unchanged} unchanged)"
    )


@roster.command("list")
@click.option("--group", help="Only this building group.")
@json_option
@reports_errors
def roster_list(group: str | None, as_json: bool) -> None:
    """List the households of the roster."""
    from menwei.core.roster import list_households

    households = [h for h in list_households(_open(get_home())) if group in (None, h.group)]
    if as_json:
        emit_json([h.as_dict() for h in households])
        return
    click.echo(f"{'户号':>6}  {'楼组':<6} {'地址':<16} 人数 类别")
    for h in households:
        click.echo(
            f"{h.number:>6}  {h.group_name().zh:<6} {h.address().zh:<16} {h.members:>3}  "
            f"{h.category}"
        )
    click.echo(f"共 {len(households)} 户 / {len(households)} households")


# --- passes --------------------------------------------------------------------------------------


def _write_passes(home: Home, store: Store, issued: list[IssuedPass], out: Path) -> PrintResult:
    from menwei.core.community import community_info
    from menwei.core.printing import PrintedPass, print_passes

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
    return print_passes(out, printed, community_name=name)


@click.group()
def passes() -> None:
    """Household passes (一户一证): issue and print, revoke and reissue."""


@passes.command("issue")
@click.option("--all", "all_", is_flag=True, help="Every household of the roster.")
@click.option("--household", "numbers", type=int, multiple=True, help="A household (repeatable).")
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

    if all_ == bool(numbers):
        raise MenweiError("Say which passes: --all, or --household N (repeatable).")
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
    click.echo(f"已签发 {len(issued)} 张通行证 / issued {len(issued)} passes -> {out}")
    for pdf in result.pdfs:
        click.echo(f"  {pdf}")


@passes.command("revoke")
@click.argument("household", type=int)
@click.option("--reason", help="Why (lost, damaged, copied...).")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to print the new pass (default: the home's passes folder).",
)
@json_option
@reports_errors
def passes_revoke(household: int, reason: str | None, out: Path | None, as_json: bool) -> None:
    """Revoke HOUSEHOLD's pass and issue a new one (serial+1); the old one is refused from now on."""
    from menwei.core.issuing import revoke

    home = get_home()
    store = _open(home)
    new = revoke(home, store, household, reason=reason)
    out = out or home.passes_dir
    _write_passes(home, store, [new], out)
    png = out / f"{household}.png"
    if as_json:
        emit_json({"household": household, "serial": new.serial, "code": new.code, "png": str(png)})
        return
    click.echo(
        f"户号 {household} 旧证作废,新证第{new.serial}版 / household {household}: "
        f"old pass revoked, new serial {new.serial} -> {png}"
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
    click.echo(f"策略版本 {version} / policy version {version} ({home.policy_path})")
    for t in lines:
        click.echo(f"  {t.zh}")
        click.echo(f"    {t.en}")


@policy.command("check")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@json_option
@reports_errors
def policy_check(file: Path | None, as_json: bool) -> None:
    """Check a policy file (default: the home's policy.toml) against the roster."""
    from menwei.core.community import check_policy
    from menwei.core.errors import PolicyError

    home = get_home()
    path = file or home.policy_path
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MenweiError(f"Cannot read {path}: {exc}") from None
    store = _open(home)
    try:
        check_policy(store, text)
    except PolicyError as exc:
        if as_json:
            emit_json({"file": str(path), "ok": False, "problems": exc.problems or [exc.message]})
            raise SystemExit(1) from None
        raise
    if as_json:
        emit_json({"file": str(path), "ok": True, "problems": []})
        return
    click.echo(f"{path}: 没有问题 / no problems")
