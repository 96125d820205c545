"""The household roster: read a CSV or XLSX file, check it whole, import it in one transaction.

A roster file has one row per household. Headers may be English or Chinese, in any case and with
any spacing; unknown columns (names, notes) are ignored:

| field     | headers                       | required | value                              |
|-----------|-------------------------------|----------|------------------------------------|
| household | household, 户号               | yes      | whole number 1-65535 (opaque)      |
| building  | building, 楼栋, 楼号          | yes      | "3" ("3栋", "3号楼" are read as 3)  |
| unit      | unit, 单元                    | no       | "2" ("2单元" is read as 2)          |
| room      | room, 室号, 房号              | yes      | "301" ("301室" is read as 301)      |
| group     | group, 楼组                   | yes      | "3" ("第3楼组" is read as 3)        |
| members   | members, 人数                 | yes      | whole number 0-99                  |
| category  | category, 类别                | no       | normal (default), 返岗, 独居老人... |
| contact   | contact, 联系电话, 电话        | no       | free text, e.g. a masked phone     |

A file with any problem is refused whole, every problem listed with its line number: a roster is
never half-imported.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from menwei.core.errors import RosterError
from menwei.core.model import Household
from menwei.core.policy import normalise_category
from menwei.core.store import Store

FIELDS = ("household", "building", "unit", "room", "group", "members", "category", "contact")
REQUIRED = ("household", "building", "room", "group", "members")

# Header spellings, compared after `_header_key` (lower case, no spaces, underscores or dashes).
HEADER_ALIASES: dict[str, str] = {
    "household": "household",
    "householdno": "household",
    "householdnumber": "household",
    "户号": "household",
    "户编号": "household",
    "building": "building",
    "bldg": "building",
    "楼栋": "building",
    "楼号": "building",
    "楼栋号": "building",
    "栋": "building",
    "unit": "unit",
    "单元": "unit",
    "单元号": "unit",
    "room": "room",
    "室号": "room",
    "房号": "room",
    "房间号": "room",
    "门牌号": "room",
    "group": "group",
    "buildinggroup": "group",
    "楼组": "group",
    "members": "members",
    "人数": "members",
    "户人数": "members",
    "category": "category",
    "类别": "category",
    "人员类别": "category",
    "contact": "contact",
    "phone": "contact",
    "联系电话": "contact",
    "电话": "contact",
    "手机": "contact",
    "手机号": "contact",
}
# The English header of each field, for messages.
HEADER_NAMES = {
    "household": "household (户号)",
    "building": "building (楼栋)",
    "unit": "unit (单元)",
    "room": "room (室号)",
    "group": "group (楼组)",
    "members": "members (人数)",
    "category": "category (类别)",
    "contact": "contact (联系电话)",
}
# A title row or two above the header is common in spreadsheets; look this far for the header.
HEADER_SEARCH_ROWS = 10
SUFFIXES_CSV = (".csv", ".txt")
SUFFIXES_XLSX = (".xlsx", ".xlsm")

_INSERT = (
    "insert into households (household, building, unit, room, building_group, members, "
    "category, contact, updated_at) values (?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "on conflict(household) do update set building = excluded.building, unit = excluded.unit, "
    "room = excluded.room, building_group = excluded.building_group, "
    "members = excluded.members, category = excluded.category, contact = excluded.contact, "
    "updated_at = excluded.updated_at"
)
_COLUMNS = "household, building, unit, room, building_group, members, category, contact"


@dataclass(frozen=True)
class ImportResult:
    """How many households an import added, changed and found as they were."""

    added: int
    updated: int
    unchanged: int

    @property
    def total(self) -> int:
        return self.added + self.updated + self.unchanged


# --- reading -------------------------------------------------------------------------------------


def read_roster(path: Path) -> list[Household]:
    """Read and check a roster file (CSV in UTF-8 or GBK/GB18030, or XLSX).

    Raises RosterError listing every problem, with line numbers, when anything is wrong.
    """
    path = Path(path)
    refused = f"The roster {path} was refused; nothing was imported."
    suffix = path.suffix.lower()
    try:
        if suffix in SUFFIXES_XLSX:
            rows, how = _xlsx_rows(path), ""
        elif suffix in SUFFIXES_CSV:
            data = path.read_bytes()
            if data.startswith(b"PK\x03\x04"):  # an XLSX workbook saved under a .csv name
                rows, how = _xlsx_rows(path), ""
            else:
                rows, how = _csv_rows(data)
        else:
            raise RosterError(
                refused,
                problems=[
                    f"{path.name} is not a CSV or XLSX file (save the spreadsheet as .xlsx or "
                    "as CSV)"
                ],
            )
    except OSError as exc:
        raise RosterError(
            refused, problems=[f"cannot read {path}: {exc.strerror or exc}"]
        ) from None
    except _Unreadable as exc:
        raise RosterError(refused, problems=[str(exc)]) from None
    households, problems = households_from_rows(rows, decoded_as=how)
    if problems:
        raise RosterError(refused, problems=problems)
    return households


class _Unreadable(Exception):
    """The file's bytes are not a table this module can read."""


def _decode(data: bytes) -> tuple[str, str]:
    """The text of a CSV file and a note on how it was decoded ('' for UTF-8).

    UTF-8 first (with or without a BOM), then GB18030 (a superset of GBK, what Excel in China
    writes). A file that is UTF-8 Chinese up to a bad byte is refused rather than read as
    GB18030: that would turn every Chinese cell into other characters without a word.
    """
    try:
        return data.decode("utf-8-sig"), ""
    except UnicodeDecodeError as utf8_error:
        before = data[: utf8_error.start].decode("utf-8-sig")
        if sum(1 for c in before if ord(c) >= 0x800) >= _UTF8_EVIDENCE:
            raise _Unreadable(
                f"line {_line_of(data, utf8_error.start)}: bytes that are not UTF-8 in a file "
                "that is UTF-8 before them (in Excel, save as \u201cCSV UTF-8\u201d again)"
            ) from None
        try:
            return data.decode("gb18030"), "read as GBK/GB18030 text"
        except UnicodeDecodeError as gb_error:
            line = _first_undecodable_line(data) or _line_of(data, gb_error.start)
            raise _Unreadable(
                f"line {line}: bytes that are neither UTF-8 nor GBK/GB18030 text "
                "(in Excel, save as \u201cCSV UTF-8\u201d)"
            ) from None


# Characters of 3 UTF-8 bytes (all of CJK) before the first bad byte that make a file UTF-8:
# GBK text almost never holds even one such valid sequence before its first non-UTF-8 byte.
_UTF8_EVIDENCE = 2


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def _first_undecodable_line(data: bytes) -> int | None:
    for number, line in enumerate(data.split(b"\n"), 1):
        for encoding in ("utf-8-sig", "gb18030"):
            try:
                line.decode(encoding)
            except UnicodeDecodeError:
                continue
            break
        else:
            return number
    return None


def _csv_rows(data: bytes) -> tuple[list[tuple[int, list[str]]], str]:
    text, how = _decode(data)
    first = text.split("\n", 1)[0]
    delimiter = ","
    if "," not in first:
        if "\t" in first:
            delimiter = "\t"
        elif ";" in first:
            delimiter = ";"
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows: list[tuple[int, list[str]]] = []
    start = 1
    try:
        for row in reader:
            rows.append((start, row))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise _Unreadable(f"line {start}: not readable as CSV ({exc})") from None
    return rows, how


def _xlsx_rows(path: Path) -> list[tuple[int, list[str]]]:
    """The cells of the first sheet as text, numbered from row 1."""
    import zipfile

    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    # Broken workbooks fail in many ways: a bad zip, missing parts, bad XML (SyntaxError).
    broken = (InvalidFileException, zipfile.BadZipFile, KeyError, ValueError, TypeError)
    # A file object, not the path: openpyxl refuses paths whose suffix is not an Excel one.
    with path.open("rb") as handle:
        try:
            workbook = openpyxl.load_workbook(handle, read_only=True, data_only=True)
            try:
                if not workbook.worksheets:
                    return []
                return [
                    (number, [_cell_text(v) for v in values])
                    for number, values in enumerate(
                        workbook.worksheets[0].iter_rows(values_only=True), 1
                    )
                ]
            finally:
                workbook.close()
        except (*broken, SyntaxError) as exc:
            raise _Unreadable(f"{path.name} is not a readable XLSX workbook ({exc})") from None


def _cell_text(value: Any) -> str:
    """A spreadsheet cell as text: 301.0 -> '301', None -> ''."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _header_key(cell: str) -> str:
    text = unicodedata.normalize("NFKC", cell).strip().lower()
    return re.sub(r"[\s_\-*:]+", "", text)


def _header_map(row: Sequence[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for index, cell in enumerate(row):
        field = HEADER_ALIASES.get(_header_key(cell))
        if field is not None and field not in found:
            found[field] = index
    return found


_BUILDING_SUFFIX = re.compile(r"(?:号楼|号栋|栋|幢|号)$")
_UNIT_SUFFIX = re.compile(r"(?:单元|号)$")
_ROOM_SUFFIX = re.compile(r"(?:室|号)$")
_GROUP_FORM = re.compile(r"^第?(.+?)(?:楼组|组)$")


def _clean(value: str) -> str:
    return unicodedata.normalize("NFKC", value).strip()


def _strip_suffix(value: str, pattern: re.Pattern[str]) -> str:
    stripped = pattern.sub("", value).strip()
    return stripped or value


def normalise_building(value: str) -> str:
    """'3栋', '3号楼', ' 3 ' -> '3'."""
    return _strip_suffix(_clean(value), _BUILDING_SUFFIX)


def normalise_unit(value: str) -> str:
    """'2单元' -> '2'."""
    return _strip_suffix(_clean(value), _UNIT_SUFFIX)


def normalise_room(value: str) -> str:
    """'301室' -> '301'."""
    return _strip_suffix(_clean(value), _ROOM_SUFFIX)


def normalise_group(value: str) -> str:
    """'第3楼组', '3组' -> '3'."""
    text = _clean(value)
    match = _GROUP_FORM.match(text)
    return match.group(1).strip() if match and match.group(1).strip() else text


def _whole_number(value: str, low: int, high: int) -> int | None:
    text = _clean(value)
    if not re.fullmatch(r"\d+", text):
        return None
    number = int(text)
    return number if low <= number <= high else None


def households_from_rows(
    rows: Iterable[tuple[int, Sequence[str]]], *, decoded_as: str = ""
) -> tuple[list[Household], list[str]]:
    """Households from (line number, cells) rows whose first non-blank row (or one of the first
    few, under a title) is the header; and the list of problems, empty when the rows are good."""
    problems: list[str] = []
    it: Iterator[tuple[int, Sequence[str]]] = iter(rows)
    header: dict[str, int] | None = None
    first_row: tuple[int, Sequence[str]] | None = None
    header_cells: Sequence[str] = ()
    skipped = 0
    for line, cells in it:
        if not any(c.strip() for c in cells):
            continue
        if first_row is None:
            first_row = (line, cells)
        mapping = _header_map(cells)
        if "household" in mapping:
            header = mapping
            header_line = line
            header_cells = cells
            break
        skipped += 1
        if skipped >= HEADER_SEARCH_ROWS:
            break
    if first_row is None:
        return [], ["the file is empty"]
    if header is None:
        line, cells = first_row
        header = _header_map(cells)
        header_line = line
        header_cells = cells
        it = iter(())  # no usable header: the missing columns below are the problem to report
    missing = [HEADER_NAMES[f] for f in REQUIRED if f not in header]
    if missing:
        seen = ", ".join(repr(c.strip()) for c in header_cells if c.strip())
        note = f"; {decoded_as}" if decoded_as else ""
        problems.append(
            f"line {header_line}: missing column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)} (the header has {seen}{note})"
        )
        return [], problems

    households: list[Household] = []
    first_line: dict[int, int] = {}
    index = header

    def cell(cells: Sequence[str], field: str) -> str:
        i = index.get(field)
        if i is None or i >= len(cells):
            return ""
        return cells[i].strip()

    for line, cells in it:
        if not any(c.strip() for c in cells):
            continue
        row_problems: list[str] = []
        raw_number = cell(cells, "household")
        number = _whole_number(raw_number, 1, 0xFFFF)
        if not raw_number:
            row_problems.append(f"line {line}: household is empty")
        elif number is None:
            row_problems.append(f"line {line}: household {raw_number!r} is not a number 1-65535")
        elif number in first_line:
            row_problems.append(
                f"line {line}: household {number} appears again (first on line "
                f"{first_line[number]})"
            )
        else:
            first_line[number] = line
        raw_members = cell(cells, "members")
        members = _whole_number(raw_members, 0, 99)
        if not raw_members:
            row_problems.append(f"line {line}: members is empty")
        elif members is None:
            row_problems.append(f"line {line}: members {raw_members!r} is not a number 0-99")
        values: dict[str, str] = {}
        for field in ("building", "room", "group"):
            values[field] = cell(cells, field)
            if not values[field]:
                row_problems.append(f"line {line}: {field} is empty")
        if row_problems:
            problems.extend(row_problems)
            continue
        assert number is not None and members is not None
        category = normalise_category(_clean(cell(cells, "category"))) or "normal"
        contact = _clean(cell(cells, "contact")) or None
        households.append(
            Household(
                number=number,
                building=normalise_building(values["building"]),
                unit=normalise_unit(cell(cells, "unit")),
                room=normalise_room(values["room"]),
                group=normalise_group(values["group"]),
                members=members,
                category=category,
                contact=contact,
            )
        )
    if not households and not problems:
        problems.append(f"line {header_line}: no households after the header")
    return households, problems


# --- storing -------------------------------------------------------------------------------------


def _check(households: Sequence[Household]) -> list[str]:
    problems: list[str] = []
    seen: set[int] = set()
    for position, h in enumerate(households, 1):
        where = f"household #{position}"
        if not 1 <= h.number <= 0xFFFF:
            problems.append(f"{where}: household {h.number} is not a number 1-65535")
        elif h.number in seen:
            problems.append(f"{where}: household {h.number} appears twice")
        seen.add(h.number)
        if not 0 <= h.members <= 99:
            problems.append(f"{where}: members {h.members} is not a number 0-99")
        for name in ("building", "room", "group"):
            if not getattr(h, name):
                problems.append(f"{where}: {name} is empty")
    return problems


def _row(h: Household) -> tuple[Any, ...]:
    return (h.number, h.building, h.unit, h.room, h.group, h.members, h.category, h.contact)


def import_roster(store: Store, households: list[Household], *, now: str) -> ImportResult:
    """Add or update the households, matched by household number, in one transaction.

    Households in the store but absent from `households` are kept as they are: a roster file
    may cover only part of the community. `now` (UTC ISO time) becomes `updated_at` of every
    added or changed row; unchanged rows keep theirs.
    """
    problems = _check(households)
    if problems:
        raise RosterError("The roster was refused; nothing was imported.", problems=problems)
    added = updated = unchanged = 0
    with store.write() as db:
        existing = {row[0]: tuple(row) for row in db.execute(f"select {_COLUMNS} from households")}
        batch: list[tuple[Any, ...]] = []
        for h in households:
            row = _row(h)
            before = existing.get(h.number)
            if before is None:
                added += 1
            elif before == row:
                unchanged += 1
                continue
            else:
                updated += 1
            batch.append((*row, now))
        if batch:
            db.conn.executemany(_INSERT, batch)
    return ImportResult(added=added, updated=updated, unchanged=unchanged)


# --- looking up ----------------------------------------------------------------------------------


def _household(row: Sequence[Any]) -> Household:
    return Household(
        number=int(row[0]),
        building=str(row[1]),
        unit=str(row[2]),
        room=str(row[3]),
        group=str(row[4]),
        members=int(row[5]),
        category=str(row[6]),
        contact=None if row[7] is None else str(row[7]),
    )


def _select(store: Store, where: str = "", params: Sequence[Any] = ()) -> list[Household]:
    sql = f"select {_COLUMNS} from households {where} order by household"
    return [_household(row) for row in store.db.execute(sql, list(params)).fetchall()]


def list_households(store: Store) -> list[Household]:
    """Every household, by number."""
    return _select(store)


def get_household(store: Store, number: int) -> Household | None:
    found = _select(store, "where household = ?", [number])
    return found[0] if found else None


# '3栋301', '3号楼2单元301室', '3幢 2单元 301'
_ADDRESS_ZH = re.compile(
    r"^(?P<b>[^\s-]+?)\s*(?:号楼|栋|幢)\s*(?:(?P<u>[^\s-]+?)\s*单元)?\s*(?P<r>[^\s-]+?)\s*(?:室|号)?$"
)


def parse_address(query: str) -> tuple[str, str | None, str] | None:
    """(building, unit or None for any, room) from '3-301', '3-2-301', '3栋301', '3栋2单元301'."""
    text = _clean(query)
    match = _ADDRESS_ZH.match(text)
    if match:
        unit = match.group("u")
        return (
            match.group("b"),
            normalise_unit(unit) if unit else None,
            normalise_room(match.group("r")),
        )
    parts = [p for p in re.split(r"\s*[-/\s]\s*", text) if p]
    if len(parts) == 2:
        return normalise_building(parts[0]), None, normalise_room(parts[1])
    if len(parts) == 3:
        return normalise_building(parts[0]), normalise_unit(parts[1]), normalise_room(parts[2])
    return None


def find_households(store: Store, query: str) -> list[Household]:
    """Households matching a household number ('1203') or an address: building-room ('3-301',
    '3栋301') or building-unit-room ('3-2-301', '3栋2单元301'). Empty when nothing matches."""
    text = _clean(query)
    if not text:
        return []
    if re.fullmatch(r"\d+", text):
        number = int(text)
        found = get_household(store, number) if 1 <= number <= 0xFFFF else None
        return [found] if found else []
    address = parse_address(text)
    if address is None:
        return []
    building, unit, room = address
    if unit is None:
        return _select(store, "where building = ? and room = ?", [building, room])
    return _select(store, "where building = ? and unit = ? and room = ?", [building, unit, room])
