"""The committee's data in its own words: workbooks with a sheet per building, rosters keyed by
address, names as written and accepted as shown, households that leave, passes printed before
they count, what-if checks, backups, errors a committee reads. All through the real CLI on a
fresh home, real SQLite, real signatures and real files."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from click.testing import CliRunner, Result

from menwei.cli import cli
from menwei.core.home import Home
from menwei.core.names import group_key, natural_sorted, resolve_building, resolve_group

HEADER = ["户号", "楼栋", "单元", "室号", "楼组", "人数", "类别", "联系电话"]


def run(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False, input=input)


def ok(*args: str) -> Result:
    r = run(*args)
    assert r.exit_code == 0, r.output
    assert "Traceback" not in r.output
    return r


def as_json(*args: str) -> Any:
    return json.loads(ok(*args, "--json").stdout)


def workbook(path: Path, sheets: dict[str, Sequence[Sequence[Any]]]) -> Path:
    wb = openpyxl.Workbook()
    first = wb.active
    assert first is not None
    wb.remove(first)
    for name, rows in sheets.items():
        sheet = wb.create_sheet(name)
        for row in rows:
            sheet.append(list(row))
    wb.save(path)
    return path


def building_sheet(b: int, group: str, rooms: int = 4, category: str = "普通") -> list[list[Any]]:
    rows: list[list[Any]] = [[f"{b}号楼 住户名册"], HEADER]
    for i in range(rooms):
        rows.append([f"{b}-1-{101 + i}", f"{b}号楼", "1单元", f"{101 + i}室", group, 2, category])
    return rows


@pytest.fixture
def fresh(home: Home) -> Home:
    ok("init", "--community", "4201", "--name", "钟楼居民区", "--gate", "东门")
    return home


def thirteen_buildings(tmp_path: Path) -> Path:
    sheets: dict[str, Sequence[Sequence[Any]]] = {"说明": [["本表每栋楼一张工作表"], ["填写说明…"]]}
    for b in range(1, 14):
        group = "A区1组" if b == 13 else f"第{(b - 1) // 3 + 1}楼组"
        sheets[f"{b}号楼"] = building_sheet(b, group)
    return workbook(tmp_path / "roster.xlsx", sheets)


# --- every sheet ---------------------------------------------------------------------------------


def test_every_sheet_is_imported_and_the_notes_sheet_is_named(fresh: Home, tmp_path: Path) -> None:
    path = thirteen_buildings(tmp_path)
    doc = as_json("roster", "import", str(path))
    assert doc["households"] == 52 and doc["added"] == 52
    assert doc["skipped_sheets"] == ["说明"]
    assert list(doc["sheets"]) == [f"{b}号楼" for b in range(1, 14)]
    assert doc["by_group"] == {
        "A区1组": 4,
        "第1楼组": 12,
        "第2楼组": 12,
        "第3楼组": 12,
        "第4楼组": 12,
    }
    assert len(as_json("roster", "list")) == 52
    text = ok("roster", "import", str(path)).output
    assert "跳过没有花名册表头的工作表: 说明" in text and "skipped sheets" in text


def test_one_sheet_chosen(fresh: Home, tmp_path: Path) -> None:
    path = thirteen_buildings(tmp_path)
    doc = as_json("roster", "import", str(path), "--sheet", "12号楼")
    assert doc["households"] == 4 and list(doc["sheets"]) == ["12号楼"]
    r = run("roster", "import", str(path), "--sheet", "14号楼", "--json")
    assert r.exit_code == 1
    err = json.loads(r.stdout)
    assert err["ok"] is False and err["code"] == "roster_refused"
    assert "no sheet '14号楼'" in err["problems"][0] and "没有工作表" in err["problems_zh"][0]


def test_a_workbook_whose_only_sheet_is_notes_says_so(fresh: Home, tmp_path: Path) -> None:
    path = workbook(tmp_path / "r.xlsx", {"说明": [["见附件"]], "Sheet2": [["a", "b"]]})
    r = run("roster", "import", str(path))
    assert r.exit_code == 1
    assert "没有找到花名册表头" in r.output and "no roster header" in r.output
    assert "'说明'" in r.output and "'Sheet2'" in r.output


# --- keyed by address ----------------------------------------------------------------------------


def test_address_keyed_numbers_are_stable_and_reprints_are_named(
    fresh: Home, tmp_path: Path
) -> None:
    path = thirteen_buildings(tmp_path)
    as_json("roster", "import", str(path))
    before = {(h["building"], h["room"]): h["number"] for h in as_json("roster", "list")}
    assert sorted(before.values()) == list(range(1, 53))
    ok("passes", "issue", "--all", "--out", str(tmp_path / "passes"))
    # Re-imported with a household moved to another group and rows in another order.
    sheets: dict[str, Sequence[Sequence[Any]]] = {}
    for b in reversed(range(1, 14)):
        group = "A区1组" if b == 13 else f"第{(b - 1) // 3 + 1}楼组"
        rows = building_sheet(b, group)
        if b == 2:
            rows[2][4] = "第4楼组"
        sheets[f"{b}号楼"] = rows
    doc = as_json("roster", "import", str(workbook(tmp_path / "again.xlsx", sheets)))
    assert (doc["added"], doc["updated"], doc["unchanged"]) == (0, 1, 51)
    after = {(h["building"], h["room"]): h["number"] for h in as_json("roster", "list")}
    assert after == before
    assert doc["reprint"] == [before[("2号楼", "101")]]


def test_a_numeric_household_column_is_used_as_it_is(fresh: Home, tmp_path: Path) -> None:
    csv = tmp_path / "r.csv"
    csv.write_text("\n".join([",".join(HEADER), "1203,3,2,301,3,2,,"]), encoding="utf-8")
    assert as_json("roster", "import", str(csv))["numbered"] == 0
    assert [h["number"] for h in as_json("roster", "list")] == [1203]


# --- nothing silently dropped --------------------------------------------------------------------


def test_an_unknown_column_that_means_a_known_one_is_refused_with_the_header_to_use(
    fresh: Home, tmp_path: Path
) -> None:
    csv = tmp_path / "r.csv"
    for header, meant in (("人员类型", "类别"), ("手机号码", "联系电话"), ("联系方式", "联系电话")):
        csv.write_text(
            f"户号,楼栋,室号,楼组,人数,{header}\n1,3,301,3,2,返岗\n", encoding="utf-8-sig"
        )
        r = run("roster", "import", str(csv))
        assert r.exit_code == 1, header
        assert f"列 '{header}' 不认识" in r.output and f"「{meant}」" in r.output
        assert f"column '{header}' is not a roster column: did you mean" in r.output
    csv.write_text("户号,楼栋,室号,楼组,家庭人数\n1,3,301,3,2\n", encoding="utf-8")
    r = run("roster", "import", str(csv))
    assert "did you mean members (人数)" in r.output
    assert as_json("roster", "list") == []


def test_other_columns_and_unknown_categories_are_reported_with_counts(
    fresh: Home, tmp_path: Path
) -> None:
    csv = tmp_path / "r.csv"
    rows = ["户号,楼栋,室号,楼组,人数,类别,户主姓名,备注"]
    words = ["普通户", "独居", "外来务工", "残疾人", "外来务工", "复工返岗"]
    rows += [f"{i + 1},3,{301 + i},3,2,{w},张三," for i, w in enumerate(words)]
    csv.write_text("\n".join(rows), encoding="utf-8")
    doc = as_json("roster", "import", str(csv))
    assert doc["unknown_categories"] == {"外来务工": 2}
    assert doc["ignored_columns"] == ["户主姓名", "备注"]
    assert doc["by_category"] == {
        "disabled": 1,
        "elderly_alone": 1,
        "normal": 1,
        "returning_worker": 1,
        "外来务工": 2,
    }


def test_a_100k_line_bad_csv_gives_bounded_output(fresh: Home, tmp_path: Path) -> None:
    csv = tmp_path / "big.csv"
    lines = ["户号,楼栋,室号,楼组,人数"] + [f"{i},3,{i},3,many" for i in range(1, 100_001)]
    csv.write_text("\n".join(lines), encoding="utf-8")
    r = run("roster", "import", str(csv))
    assert r.exit_code == 1
    assert len(r.output) < 10_000, len(r.output)
    # 100,000 bad member counts and 34,465 household numbers past 65535; 20 are shown.
    assert "and 134445 more" in r.output and "还有 134445 条" in r.output
    err = json.loads(run("roster", "import", str(csv), "--json").stdout)
    assert len(err["problems"]) == 200 and err["more_problems"] == 134265


# --- names as written, accepted as shown ---------------------------------------------------------


def test_the_resolver_takes_the_usual_short_forms() -> None:
    groups = ["第1楼组", "第2楼组", "第3楼组", "第10楼组", "A区1组"]
    for typed in ("第3楼组", "3楼组", "3组", "3", " ３ "):
        assert resolve_group(typed, groups) == "第3楼组", typed
    assert resolve_group("A区1组", groups) == "A区1组"
    assert resolve_group("a区1", groups) == "A区1组"
    assert resolve_group("9", groups) is None
    buildings = ["1号楼", "2号楼", "12号楼"]
    for typed in ("12号楼", "12栋", "12幢", "12"):
        assert resolve_building(typed, buildings) == "12号楼", typed
    assert natural_sorted(["第10楼组", "第2楼组", "第1楼组"]) == ["第1楼组", "第2楼组", "第10楼组"]
    assert group_key("东区第一楼组") == "东区第一"


def test_every_command_takes_the_group_as_written_and_short(fresh: Home, tmp_path: Path) -> None:
    ok("roster", "import", str(thirteen_buildings(tmp_path)))
    for typed in ("第3楼组", "3楼组", "3"):
        listed = as_json("roster", "list", "--group", typed)
        assert len(listed) == 12 and {h["group"] for h in listed} == {"第3楼组"}
    for typed in ("12号楼", "12栋", "12"):
        listed = as_json("roster", "list", "--building", typed)
        assert len(listed) == 4 and {h["building"] for h in listed} == {"12号楼"}
    names = [h["group"] for h in as_json("roster", "list")]
    assert names == natural_sorted(names)
    for typed in ("第3楼组", "3"):
        r = ok("report", "register", "--group", typed, "--out", str(tmp_path / f"r{typed}.csv"))
        assert "Traceback" not in r.output
    r = run("report", "register", "--group", "第9楼组", "--out", str(tmp_path / "x"), "--json")
    assert r.exit_code == 1 and json.loads(r.stdout)["code"] == "roster_refused"
    doc = as_json("notify", "add", "json://127.0.0.1:9/hook", "--group", "3楼组")
    assert doc["group"] == "第3楼组"
    r = run("notify", "add", "json://127.0.0.1:9/other", "--group", "第9楼组")
    assert r.exit_code == 1 and "花名册里没有楼组" in r.output and "No building group" in r.output
    assert "json://127.0.0.1:9/other" not in ok("notify", "list").output
    assert any(h["group"] == "A区1组" for h in as_json("roster", "list"))


def test_policy_names_buildings_and_groups_as_written(fresh: Home, tmp_path: Path) -> None:
    ok("roster", "import", str(thirteen_buildings(tmp_path)))
    for building in ("12号楼", "12栋", "12"):
        policy = tmp_path / "p.toml"
        policy.write_text(
            f'[levels]\n"{building}" = "sealed"\n[[windows]]\ngroups = ["第1楼组", "2楼组", "3", '
            '"4", "A区1组"]\nstart = "08:00"\nend = "09:00"\n',
            encoding="utf-8",
        )
        assert as_json("policy", "check", str(policy))["warnings"] == []
    fresh.policy_path.write_text(policy.read_text(encoding="utf-8"), encoding="utf-8")
    shown = as_json("policy", "show")["rules"]["zh"]
    assert any("12号楼" in line and "封控" in line for line in shown)
    number = next(h["number"] for h in as_json("roster", "list") if h["building"] == "12号楼")
    doc = as_json("passes", "issue", "--household", str(number), "--out", str(tmp_path / "q"))
    decided = as_json("check", doc[0]["code"], "--at", "2026-11-24T08:30")
    assert decided["reason"] == "sealed" and decided["recorded"] is False
    assert "12号楼" in decided["message"]


# --- households leave ----------------------------------------------------------------------------


def test_replace_and_remove_and_the_moved_out_pass(fresh: Home, tmp_path: Path) -> None:
    path = thirteen_buildings(tmp_path)
    ok("roster", "import", str(path))
    issued = {
        p["household"]: p["code"]
        for p in as_json("passes", "issue", "--all", "--out", str(tmp_path / "p"))
    }
    # A plain re-import of a file without building 13 lists its households and keeps them.
    wb = openpyxl.load_workbook(path)
    del wb["13号楼"]
    smaller = tmp_path / "smaller.xlsx"
    wb.save(smaller)
    doc = as_json("roster", "import", str(smaller))
    assert len(doc["missing"]) == 4 and doc["removed"] == []
    assert len(as_json("roster", "list")) == 52
    doc = as_json("roster", "import", str(smaller), "--replace")
    gone = doc["removed"]
    assert len(gone) == 4 and len(as_json("roster", "list")) == 48
    decided = as_json("check", issued[gone[0]])
    assert decided["reason"] == "moved_out" and decided["verdict"] == "red"
    assert "已于" in decided["message"] and "迁出" in decided["message"]
    # roster remove N
    keep = next(n for n in issued if n not in gone)
    removed = as_json("roster", "remove", str(keep))["removed"]
    assert [h["number"] for h in removed] == [keep]
    assert as_json("check", issued[keep])["reason"] == "moved_out"
    r = run("roster", "remove", "60000", "--json")
    assert r.exit_code == 1 and json.loads(r.stdout)["ok"] is False
    # The number stays taken: a new address never gets it.
    csv = tmp_path / "new.csv"
    csv.write_text("楼栋,室号,楼组,人数\n99号楼,101,第1楼组,1\n", encoding="utf-8")
    as_json("roster", "import", str(csv))
    new = next(h for h in as_json("roster", "list") if h["building"] == "99号楼")
    assert new["number"] not in issued


# --- passes printed before they count ------------------------------------------------------------


def test_revoke_writes_its_own_sheet_and_an_unwritable_folder_changes_nothing(
    fresh: Home, tmp_path: Path
) -> None:
    ok("roster", "import", str(thirteen_buildings(tmp_path)))
    out = tmp_path / "passes"
    ok("passes", "issue", "--all", "--out", str(out))
    group_pdfs = {p.name: p.read_bytes() for p in out.glob("group-*.pdf")}
    doc = as_json("passes", "revoke", "5", "--out", str(out))
    assert doc["serial"] == 2 and Path(doc["pdf"]).name == "reissued-5-serial2.pdf"
    assert {p.name: p.read_bytes() for p in out.glob("group-*.pdf")} == group_pdfs
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    r = run("passes", "revoke", "6", "--out", str(blocker / "sub"), "--json")
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert json.loads(r.stdout)["code"] == "cannot_write"
    # Nothing changed: household 6 still has serial 1 valid, nothing revoked.
    again = as_json("passes", "revoke", "6", "--out", str(out))
    assert again["serial"] == 2
    r = run("report", "register", "--group", "3", "--out", str(blocker / "sub"))
    assert r.exit_code != 0 and "Traceback" not in r.output


# --- what-if is not a record ---------------------------------------------------------------------


def test_check_at_is_a_what_if_and_times_are_bounded(fresh: Home, tmp_path: Path) -> None:
    ok("roster", "import", str(thirteen_buildings(tmp_path)))
    code = as_json("passes", "issue", "--household", "1", "--out", str(tmp_path / "p"))[0]["code"]
    d = as_json("check", code, "--at", "2026-12-03T08:30")
    assert d["recorded"] is False
    assert ok("log", "--json").stdout == ""  # nothing recorded
    r = run("check", code, "--at", "2099-12-03T08:30", "--record", "--json")
    assert r.exit_code == 1 and json.loads(r.stdout)["code"] == "time_in_future"
    for bad in ("0999-06-01T12:00", "0001-01-01", "9999-12-31T23:59", "2100-01-01"):
        r = run("check", code, "--at", bad, "--json")
        assert r.exit_code == 1 and json.loads(r.stdout)["code"] == "bad_time", bad
    d = as_json("check", code, "--at", "2026-11-24T08:30", "--record")
    assert d["recorded"] is True
    r = run("check", code, "--at", "2026-11-24T08:00", "--record", "--json")
    assert json.loads(r.stdout)["code"] == "time_before_last_event"
    assert len(ok("log", "--json").stdout.splitlines()) == 1
    for args in (
        ("register-return", "99999999999999999999", "--note", "x"),
        ("log", "--limit", "-5"),
        ("log", "--household", "70000"),
        ("passes", "revoke", "0"),
    ):
        r = run(*args, "--json")
        assert r.exit_code == 2 and json.loads(r.stdout)["code"] == "usage", args


# --- backup and restore --------------------------------------------------------------------------


def test_backup_wipe_restore_and_an_old_pass_is_green(
    fresh: Home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok("roster", "import", str(thirteen_buildings(tmp_path)))
    code = as_json("passes", "issue", "--household", "7", "--out", str(tmp_path / "p"))[0]["code"]
    ok("policy", "show")
    monkeypatch.setenv("MENWEI_BACKUP_PASSPHRASE", "correct horse battery")
    doc = as_json("backup", "--out", str(tmp_path / "b.zip"))
    assert doc["households"] == 52 and doc["signing_keys"] == 1
    import shutil
    import zipfile

    with zipfile.ZipFile(tmp_path / "b.zip") as zf:
        pem = zf.read("keys/signing-0.pem")
    assert b"ENCRYPTED" in pem
    shutil.rmtree(fresh.root)
    assert run("check", code).exit_code != 0
    monkeypatch.setenv("MENWEI_BACKUP_PASSPHRASE", "wrong passphrase!")
    r = run("restore", str(tmp_path / "b.zip"), "--json")
    assert r.exit_code == 1 and json.loads(r.stdout)["code"] == "wrong_passphrase"
    assert not fresh.db_path.exists()
    monkeypatch.setenv("MENWEI_BACKUP_PASSPHRASE", "correct horse battery")
    doc = as_json("restore", str(tmp_path / "b.zip"))
    assert doc["households"] == 52
    assert as_json("check", code)["verdict"] == "green"
    # A restored home signs with the same key: a reissue is accepted too.
    new = as_json("passes", "revoke", "7", "--out", str(tmp_path / "p2"))["code"]
    assert as_json("check", new, "--direction", "entry")["reason"] in ("already_in", "ok")
    r = run("backup", "--out", str(tmp_path / "a-file-dir" / "x.zip"))
    assert r.exit_code == 0


# --- errors a committee reads --------------------------------------------------------------------


COMMANDS_WITH_BAD_INPUT = [
    ("init", "--community", "0", "--name", "x"),
    ("roster", "import", "/nonexistent.csv"),
    ("roster", "list", "--group", "第99楼组"),
    ("roster", "remove", "777"),
    ("passes", "issue", "--household", "777", "--out", "/tmp"),
    ("passes", "revoke", "777"),
    ("policy", "check", "/nonexistent.toml"),
    ("policy", "show", "--bogus"),
    ("check", "MW:X", "--at", "yesterday"),
    ("log", "--since", "never"),
    ("override", "no-such-event", "--reason", "就医"),
    ("undo",),
    ("register-return", "777", "--note", "x"),
    ("gate", "rename", ""),
    ("backup", "--out", "/proc/nope/b.zip", "--passphrase", "12345678"),
    ("restore", "/nonexistent.zip", "--passphrase", "12345678"),
    ("report", "register", "--group", "9"),
    ("notify", "add", "json://127.0.0.1:9/x", "--group", "9"),
    ("export", "/proc/nope/bundle"),
    ("server", "gate", "add", "北门", "--valid-hours", "99999999999999"),
]


@pytest.mark.parametrize("args", COMMANDS_WITH_BAD_INPUT, ids=lambda a: " ".join(a[:2]))
def test_every_command_answers_errors_as_one_json_object(
    fresh: Home, args: tuple[str, ...]
) -> None:
    r = run(*args, "--json")
    assert r.exit_code != 0
    assert "Traceback" not in r.output
    doc = json.loads(r.stdout)
    assert doc["ok"] is False and doc["code"] and doc["message"] and doc["message_zh"]
    plain = run(*args)
    assert plain.exit_code == r.exit_code
    assert any("\u4e00" <= c <= "\u9fff" for c in plain.output), plain.output


# --- policy files as people save them ------------------------------------------------------------


def test_policy_as_notepad_saves_it(fresh: Home, tmp_path: Path) -> None:
    ok("roster", "import", str(thirteen_buildings(tmp_path)))
    text = (
        '[[windows]]\ngroups = ["第1楼组", "第2楼组", "第3楼组", "第4楼组", "A区1组"]\n'
        'weekdays = ["周一", "星期二", "周日"]\nstart = "08：00"\nend = "０９:00"\n'
    )
    for name, data in (
        ("bom.toml", b"\xef\xbb\xbf" + text.encode("utf-8")),
        ("gbk.toml", text.encode("gbk")),
    ):
        path = tmp_path / name
        path.write_bytes(data)
        doc = as_json("policy", "check", str(path))
        assert doc["ok"] is True and doc["warnings"] == [], name
    bad = tmp_path / "bad.toml"
    bad.write_text("[quota]\ntrip = 1\ndays = 2\n", encoding="utf-8")
    r = run("policy", "check", str(bad), "--json")
    assert r.exit_code == 1
    assert any("did you mean quota.'trips'" in p for p in json.loads(r.stdout)["problems"])


def test_policy_check_warns_about_what_locks_people_in(fresh: Home, tmp_path: Path) -> None:
    ok("roster", "import", str(thirteen_buildings(tmp_path)))
    path = tmp_path / "p.toml"
    path.write_text(
        '[quota]\ntrips = 0\ndays = 1\n[[windows]]\ngroups = ["1"]\nstart = "08:00"\n'
        'end = "09:00"\n[[windows]]\ncategories = ["返岗"]\nweekdays = []\nstart = "07:00"\n'
        'end = "08:00"\n',
        encoding="utf-8",
    )
    doc = as_json("policy", "check", str(path))
    words = " ".join(w["en"] for w in doc["warnings"])
    assert "weekdays = []" in words
    assert "no household has the category returning workers" in words
    assert "households of group 2 have no release window" in words
    assert "trips = 0" in words
    assert "households of group 1" not in words


# --- gates have names ----------------------------------------------------------------------------


def test_gate_rename_and_override_reasons_in_chinese(fresh: Home, tmp_path: Path) -> None:
    doc = as_json("gate", "rename", "西门")
    assert doc["gate_name"] == "西门"
    ok("roster", "import", str(thirteen_buildings(tmp_path)))
    fresh.policy_path.write_text('[levels]\n"1号楼" = "sealed"\n', encoding="utf-8")
    code = as_json("passes", "issue", "--household", "1", "--out", str(tmp_path / "p"))[0]["code"]
    refused = as_json("check", code)
    assert refused["reason"] == "sealed"
    doc = as_json("override", refused["event_id"], "--reason", "就医")
    assert doc["verdict"] == "green"


def test_menwei_gate_still_opens_the_app_with_its_options(
    fresh: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    import menwei.cli.gate_app as gate_app

    opened: list[dict[str, Any]] = []
    monkeypatch.setattr(gate_app.gate, "callback", lambda **kw: opened.append(kw))
    ok()
    ok("gate", "--camera", "none", "--lang", "en", "--no-sound")
    assert opened == [
        {"camera": "auto", "lang": "zh", "sound": None},
        {"camera": "none", "lang": "en", "sound": False},
    ]


def test_a_backup_runs_while_the_gate_is_writing(fresh: Home, tmp_path: Path) -> None:
    import sqlite3
    import zipfile

    from menwei.core.backup import backup_home

    writer = sqlite3.connect(fresh.db_path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # a gate mid-transaction holds the write lock
    writer.execute("insert into meta(key, value) values ('in-flight', 'x')")
    info = backup_home(fresh, tmp_path / "b.zip", "a long passphrase")
    writer.execute("COMMIT")
    writer.close()
    with zipfile.ZipFile(info.path) as zf:
        (tmp_path / "copy.db").write_bytes(zf.read("menwei.db"))
    copy = sqlite3.connect(tmp_path / "copy.db")
    keys = {k for (k,) in copy.execute("select key from meta")}
    assert "community_id" in keys and "in-flight" not in keys  # consistent: committed data only
    assert copy.execute("pragma integrity_check").fetchone() == ("ok",)


def test_a_file_without_a_column_keeps_what_the_roster_had(fresh: Home, tmp_path: Path) -> None:
    first = tmp_path / "a.csv"
    first.write_text(
        "地址,楼组,人数,类别,联系电话\n3号楼2单元301室,第3楼组,2,返岗,138****0001\n",
        encoding="utf-8",
    )
    ok("roster", "import", str(first))
    second = tmp_path / "b.csv"
    second.write_text("户号,楼组,人数\n3-2-301,第3楼组,4\n", encoding="utf-8")
    doc = as_json("roster", "import", str(second))
    assert (doc["added"], doc["updated"]) == (0, 1)
    [h] = as_json("roster", "list")
    assert (h["building"], h["members"], h["category"], h["contact"]) == (
        "3号楼",
        4,
        "returning_worker",
        "138****0001",
    )


def test_a_long_workbook_reports_progress(tmp_path: Path) -> None:
    from menwei.core.roster import read_roster_file

    rows: list[list[Any]] = [["楼栋", "室号", "楼组", "人数"]]
    rows += [[f"{b}号楼", str(100 + r), f"第{b}楼组", 2] for b in range(1, 51) for r in range(50)]
    path = workbook(tmp_path / "big.xlsx", {"全部": rows})
    seen: list[int] = []
    read = read_roster_file(path, progress=seen.append)
    assert len(read.households) == 2500
    assert seen == [1000, 2000]
