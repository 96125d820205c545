"""The roster: real files in every encoding and format, refused whole when anything is wrong."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openpyxl
import pytest

from menwei.core.demo_data import demo_households, write_roster_csv
from menwei.core.errors import RosterError
from menwei.core.model import Household
from menwei.core.roster import (
    find_households,
    get_household,
    import_roster,
    list_households,
    read_roster,
)
from menwei.core.store import Store

NOW = "2026-11-24T02:00:00.000Z"
LATER = "2026-11-25T02:00:00.000Z"

ZH_HEADER = "户号,楼栋,单元,室号,楼组,人数,类别,联系电话"
EN_HEADER = "household,building,unit,room,group,members,category,contact"
ZH_ROWS = [
    "1203,3,2,301,3,3,普通,138****1234",
    "1204,3,2,302,3,2,返岗,",
    "2101,7,1,101,5,1,独居老人,139****0001",
]
EXPECTED = [
    Household(1203, "3", "2", "301", "3", 3, "normal", "138****1234"),
    Household(1204, "3", "2", "302", "3", 2, "returning_worker", None),
    Household(2101, "7", "1", "101", "5", 1, "elderly_alone", "139****0001"),
]


def write(path: Path, lines: list[str], encoding: str = "utf-8") -> Path:
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode(encoding))
    return path


def write_xlsx(path: Path, rows: list[list[Any]]) -> Path:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    workbook.save(path)
    return path


@pytest.fixture
def store() -> Store:
    return Store.memory()


def table(store: Store) -> list[dict[str, Any]]:
    return store.query("select * from households order by household")


def refused(path: Path) -> list[str]:
    with pytest.raises(RosterError) as info:
        read_roster(path)
    assert info.value.message == f"The roster {path} was refused; nothing was imported."
    return english(info.value.problems)


def english(problems: list[str]) -> list[str]:
    """The English line of each problem (each is its Chinese line, then its English one)."""
    for p in problems:
        zh, en = p.split("\n")
        assert zh and en and zh != en
    return [p.split("\n")[1] for p in problems]


# --- good files ----------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030"])
def test_chinese_headers_in_every_encoding_excel_writes(tmp_path: Path, encoding: str) -> None:
    path = write(tmp_path / "roster.csv", [ZH_HEADER, *ZH_ROWS], encoding)
    assert read_roster(path) == EXPECTED


def test_english_headers_in_any_case_and_order_with_extra_columns(tmp_path: Path) -> None:
    path = write(
        tmp_path / "roster.csv",
        [
            " Members , Household,Name, BUILDING ,Room,Unit,Group,Category",
            "3,1203,Wang,3,301,2,3,normal",
            "2,1204,Li,3,302,2,3,Returning Worker",
        ],
    )
    assert read_roster(path) == [
        Household(1203, "3", "2", "301", "3", 3, "normal", None),
        Household(1204, "3", "2", "302", "3", 2, "returning_worker", None),
    ]


def test_unit_and_category_are_optional_and_cells_are_stripped(tmp_path: Path) -> None:
    path = write(
        tmp_path / "roster.csv",
        ["户号,楼号,房号,楼组,人数,电话", " 1203 , 3栋 , 301室 , 第3楼组 , 3 , 138****1234 ", ""],
    )
    # Names as written: the building stays '3栋', the group '第3楼组'.
    assert read_roster(path) == [
        Household(1203, "3栋", "", "301", "第3楼组", 3, "normal", "138****1234")
    ]


def test_xlsx_with_numbers_as_floats_and_a_title_row(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "roster.xlsx",
        [
            ["钟楼居民区 住户名单"],
            ["户号", "楼栋", "单元", "室号", "楼组", "人数", "类别", "联系电话"],
            [1203, 3, 2, 301.0, 3, 3.0, "普通", "138****1234"],
            [1204.0, "3", "2", "302", "3", 2, "返岗", None],
            [None, None, None, None, None, None, None, None],
            [2101, 7, 1, 101, 5, 1, "独居老人", "139****0001"],
        ],
    )
    assert read_roster(path) == EXPECTED


def test_demo_roster_round_trips_through_a_real_file(tmp_path: Path) -> None:
    households = demo_households(120, 4)
    for encoding, chinese in [("utf-8-sig", True), ("gbk", True), ("utf-8", False)]:
        path = write_roster_csv(
            tmp_path / f"{encoding}.csv", households, encoding=encoding, chinese_headers=chinese
        )
        assert read_roster(path) == households


# --- refusals ------------------------------------------------------------------------------------


def test_missing_columns_are_named(tmp_path: Path) -> None:
    path = write(tmp_path / "roster.csv", ["户号,楼栋,单元,室号,人数", "1203,3,2,301,3"])
    problems = refused(path)
    assert len(problems) == 1
    assert problems[0].startswith("line 1: missing column group (楼组)")


def test_no_household_column_at_all(tmp_path: Path) -> None:
    path = write(tmp_path / "roster.csv", ["name,phone", "Wang,138"])
    (problem,) = refused(path)
    assert "household (户号)" in problem and "'name', 'phone'" in problem


def test_every_bad_line_is_listed_with_its_number(tmp_path: Path) -> None:
    path = write(
        tmp_path / "roster.csv",
        [
            EN_HEADER,
            "1203,3,2,301,3,3,normal,",  # line 2
            "0,3,2,302,3,2,normal,",  # line 3
            "70000,3,2,303,3,2,normal,",  # line 4
            "abc,3,2,304,3,2,normal,",  # line 5
            "1205,3,2,305,3,many,normal,",  # line 6
            "1206,3,2,306,3,100,normal,",  # line 7
            "1203,3,2,307,3,1,normal,",  # line 8
            "1207,,2,308,3,1,normal,",  # line 9
            "1208,3,2,309,3,-1,normal,",  # line 10
        ],
    )
    assert refused(path) == [
        "line 3: household '0' is not a number 1-65535",
        "line 4: household '70000' is not a number 1-65535",
        "line 5: household 'abc' is neither a number nor an address like 3-2-301",
        "line 6: members 'many' is not a number 0-99",
        "line 7: members '100' is not a number 0-99",
        "line 8: household 1203 appears again (first on line 2)",
        "line 9: building is empty",
        "line 10: members '-1' is not a number 0-99",
    ]


def test_line_numbers_count_quoted_newlines_and_blank_lines(tmp_path: Path) -> None:
    path = write(
        tmp_path / "roster.csv",
        [EN_HEADER, "", '1203,3,2,301,3,3,normal,"two', 'lines"', "1203,3,2,302,3,2,normal,"],
    )
    assert refused(path) == ["line 5: household 1203 appears again (first on line 3)"]


def test_undecodable_bytes_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "roster.csv"
    path.write_bytes(
        (EN_HEADER + "\n1203,3,2,301,3,3,normal,\n").encode()
        + b"1204,3,2,\xff\xfe302,3,2,normal,\n"
    )
    (problem,) = refused(path)
    assert problem.startswith("line 3: bytes that are neither UTF-8 nor GBK/GB18030")


def test_a_utf8_file_with_a_bad_byte_is_not_read_as_gbk(tmp_path: Path) -> None:
    path = tmp_path / "roster.csv"
    path.write_bytes(
        "\n".join([ZH_HEADER, *ZH_ROWS]).encode() + b"\n2102,7,1,102,5,4,\xb7\xb5\xb8\xda,\n"
    )
    (problem,) = refused(path)
    assert problem.startswith("line 5: bytes that are not UTF-8")


@pytest.mark.parametrize("content", [b"", b"\r\n\r\n", b" , , \n"])
def test_empty_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "roster.csv"
    path.write_bytes(content)
    assert refused(path) == ["the file is empty"]


def test_header_without_households(tmp_path: Path) -> None:
    path = write(tmp_path / "roster.csv", [ZH_HEADER])
    assert refused(path) == ["no households after the header"]


def test_not_a_roster_file(tmp_path: Path) -> None:
    path = tmp_path / "roster.pdf"
    path.write_bytes(b"%PDF-1.4")
    (problem,) = refused(path)
    assert "is not a CSV or XLSX file" in problem


def test_broken_xlsx(tmp_path: Path) -> None:
    path = tmp_path / "roster.xlsx"
    path.write_bytes(b"this is no workbook")
    (problem,) = refused(path)
    assert "is not a readable XLSX workbook" in problem


def test_xlsx_problems_carry_row_numbers(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "roster.xlsx",
        [
            ["household", "building", "room", "group", "members"],
            [1203, 3, 301, 3, 3],
            [1203.5, 3, 302, 3, 2],
            [1203, 3, 303, 3, 2],
        ],
    )
    assert refused(path) == [
        "line 3: household '1203.5' is not a number 1-65535",
        "line 4: household 1203 appears again (first on line 2)",
    ]


def test_missing_file(tmp_path: Path) -> None:
    (problem,) = refused(tmp_path / "nope.csv")
    assert problem.startswith("cannot read")


# --- importing -----------------------------------------------------------------------------------


def test_import_then_reimport_updates_by_number_and_keeps_the_absent(
    tmp_path: Path, store: Store
) -> None:
    first = read_roster(write(tmp_path / "a.csv", [ZH_HEADER, *ZH_ROWS]))
    r = import_roster(store, first, now=NOW)
    assert (r.added, r.updated, r.unchanged, r.missing) == (3, 0, 0, [])
    assert list_households(store) == EXPECTED

    second = read_roster(
        write(
            tmp_path / "b.csv",
            [
                ZH_HEADER,
                "1203,3,2,301,3,4,普通,138****1234",
                "1204,3,2,302,3,2,返岗,",
                "9001,9,1,101,9,1,,",
            ],
        )
    )
    result = import_roster(store, second, now=LATER)
    assert (result.added, result.updated, result.unchanged) == (1, 1, 1)
    assert result.missing == [EXPECTED[2]]  # listed, not removed
    assert result.total == 3
    assert get_household(store, 1203) == Household(
        1203, "3", "2", "301", "3", 4, "normal", "138****1234"
    )
    assert get_household(store, 2101) == EXPECTED[2]  # absent from the file: kept
    assert get_household(store, 9001) == Household(9001, "9", "1", "101", "9", 1, "normal", None)
    stamps = {row["household"]: row["updated_at"] for row in table(store)}
    assert stamps == {1203: LATER, 1204: NOW, 2101: NOW, 9001: LATER}


def test_a_refused_file_leaves_the_table_as_it_was(tmp_path: Path, store: Store) -> None:
    import_roster(store, EXPECTED, now=NOW)
    before = table(store)
    bad_files = {
        "missing.csv": [("户号,楼栋,室号,人数\n1203,3,301,9\n").encode()],
        "dup.csv": [(ZH_HEADER + "\n1203,3,2,301,3,9,,\n1203,3,2,302,3,1,,\n").encode()],
        "zero.csv": [(ZH_HEADER + "\n1203,3,2,301,3,9,,\n0,3,2,302,3,1,,\n").encode()],
        "big.csv": [(ZH_HEADER + "\n1203,3,2,301,3,9,,\n70000,3,2,302,3,1,,\n").encode()],
        "abc.csv": [(ZH_HEADER + "\n1203,3,2,301,3,9,,\nabc,3,2,302,3,1,,\n").encode()],
        "members.csv": [(ZH_HEADER + "\n1203,3,2,301,3,9,,\n1204,3,2,302,3,x,,\n").encode()],
        "bytes.csv": [(ZH_HEADER + "\n1203,3,2,301,3,9,,\n").encode() + b"\x80\xff,3\n"],
        "empty.csv": [b""],
    }
    for name, (content,) in bad_files.items():
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(RosterError) as info:
            import_roster(store, read_roster(path), now=LATER)
        assert info.value.problems, name
        assert all(
            p.startswith("line ") or p == "the file is empty" for p in english(info.value.problems)
        )
        assert table(store) == before, name


def test_import_refuses_bad_households_given_directly(store: Store) -> None:
    import_roster(store, EXPECTED, now=NOW)
    before = table(store)
    twice = [EXPECTED[0], EXPECTED[0]]
    with pytest.raises(RosterError):
        import_roster(store, twice, now=LATER)
    with pytest.raises(RosterError):
        import_roster(store, [Household(1, "1", "", "101", "1", 100)], now=LATER)
    assert table(store) == before


def test_a_large_roster_imports_in_one_go(store: Store) -> None:
    households = demo_households(6000, 120)
    assert import_roster(store, households, now=NOW).added == 6000
    assert list_households(store) == sorted(households, key=lambda h: h.number)
    changed = [
        Household(
            h.number,
            h.building,
            h.unit,
            h.room,
            h.group,
            (h.members + 1) % 100,
            h.category,
            h.contact,
        )
        for h in households[:100]
    ]
    r = import_roster(store, changed, now=LATER)
    assert (r.added, r.updated, r.unchanged) == (0, 100, 0)
    assert len(r.missing) == 5900 and r.reprint == []


# --- finding -------------------------------------------------------------------------------------


@pytest.fixture
def imported(store: Store) -> Store:
    import_roster(
        store,
        [
            *EXPECTED,
            Household(1301, "3", "1", "301", "3", 2),
            Household(4401, "12", "", "601", "8", 2),
        ],
        now=NOW,
    )
    return store


@pytest.mark.parametrize(
    ("query", "numbers"),
    [
        ("1203", [1203]),
        (" 2101 ", [2101]),
        ("９９９９", []),
        ("0", []),
        ("99999", []),
        ("3-301", [1203, 1301]),
        ("3-2-301", [1203]),
        ("3 - 1 - 301", [1301]),
        ("3栋301", [1203, 1301]),
        ("3栋2单元301", [1203]),
        ("3栋2单元301室", [1203]),
        ("3号楼1单元301", [1301]),
        ("12-601", [4401]),
        ("12栋601室", [4401]),
        ("3-9-301", []),
        ("王先生", []),
        ("", []),
    ],
)
def test_find_households(imported: Store, query: str, numbers: list[int]) -> None:
    assert [h.number for h in find_households(imported, query)] == numbers
