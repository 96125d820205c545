"""The household roster: read a CSV or XLSX file, check it whole, import it in one transaction.

A roster file has one row per household. Headers may be English or Chinese, in any case and with
any spacing. In a workbook every sheet that carries the header is read (a 说明 sheet or a chart
is skipped and named); `sheets=` chooses some.

| field     | headers                            | required | value                                  |
|-----------|------------------------------------|----------|----------------------------------------|
| household | household, 户号                    | no       | number 1-65535, or an address 3-2-301  |
| address   | address, 地址, 住址, 门牌          | no       | 3-2-301, 3栋2单元301室                 |
| building  | building, 楼栋, 楼号               | yes*     | kept as written: 3, 3栋, 12号楼        |
| unit      | unit, 单元                         | no       | "2" ("2单元" is read as 2)              |
| room      | room, 室号, 房号                   | yes*     | "301" ("301室" is read as 301)          |
| group     | group, 楼组                        | yes      | kept as written: 3, 第3楼组, A区1组      |
| members   | members, 人数                      | yes      | whole number 0-99                      |
| category  | category, 类别, 人员类别           | no       | a word of the category table (policy)  |
| contact   | contact, 联系电话, 电话, 手机       | no       | free text, e.g. a masked phone         |

(*) building and room may come from the address instead. When 户号 is missing or holds addresses,
menwei numbers the households itself and keeps each address's number across re-imports.

Nothing is dropped silently: a column menwei does not know is named (with the known header it
most likely means; a file whose unknown column would stand for a missing field is refused), and
category words outside the table are reported with their counts. A file with any problem is
refused whole, every problem listed with its sheet and line: a roster is never half-imported.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from menwei.core.errors import RosterError
from menwei.core.model import Household
from menwei.core.names import (
    address_key,
    building_key,
    clean,
    natural_key,
    room_key,
    suggest,
    unit_key,
)
from menwei.core.policy import is_known_category, normalise_category
from menwei.core.store import Store

FIELDS = (
    "household",
    "address",
    "building",
    "unit",
    "room",
    "group",
    "members",
    "category",
    "contact",
)
REQUIRED = ("building", "room", "group", "members")

# Header spellings, compared after `_header_key` (lower case, no spaces, underscores or dashes).
HEADER_ALIASES: dict[str, str] = {
    "household": "household",
    "householdno": "household",
    "householdnumber": "household",
    "户号": "household",
    "户编号": "household",
    "address": "address",
    "地址": "address",
    "住址": "address",
    "门牌": "address",
    "房屋地址": "address",
    "家庭住址": "address",
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
# Headers people write for a field that menwei does not take as it is: the import names the column
# and the header to use instead, so a category or phone column is never lost without a word.
HEADER_SUGGESTIONS: dict[str, str] = {
    "人员类型": "category",
    "类型": "category",
    "户类型": "category",
    "户类别": "category",
    "人员分类": "category",
    "手机号码": "contact",
    "联系方式": "contact",
    "电话号码": "contact",
    "联系号码": "contact",
    "家庭人数": "members",
    "人口数": "members",
    "户籍人数": "members",
    "常住人数": "members",
    "居住人数": "members",
    "楼组号": "group",
    "所属楼组": "group",
    "楼宇": "building",
    "幢号": "building",
    "房间": "room",
}
# The Chinese and English header of each field, for messages.
HEADER_NAMES = {
    "household": "household (户号)",
    "address": "address (地址)",
    "building": "building (楼栋)",
    "unit": "unit (单元)",
    "room": "room (室号)",
    "group": "group (楼组)",
    "members": "members (人数)",
    "category": "category (类别)",
    "contact": "contact (联系电话)",
}
HEADER_ZH = {f: n.split("(")[1].rstrip(")") for f, n in HEADER_NAMES.items()}
# A title row or two above the header is common in spreadsheets; look this far for the header.
HEADER_SEARCH_ROWS = 10
SUFFIXES_CSV = (".csv", ".txt")
SUFFIXES_XLSX = (".xlsx", ".xlsm")
# A file with thousands of bad lines lists this many; the count of the rest follows.
MAX_PROBLEMS = 200

_INSERT = (
    "insert into households (household, building, unit, room, building_group, members, "
    "category, contact, updated_at) values (?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "on conflict(household) do update set building = excluded.building, unit = excluded.unit, "
    "room = excluded.room, building_group = excluded.building_group, "
    "members = excluded.members, category = excluded.category, contact = excluded.contact, "
    "updated_at = excluded.updated_at"
)
_COLUMNS = "household, building, unit, room, building_group, members, category, contact"

Progress = Callable[[int], None]


def pair(zh: str, en: str) -> str:
    """A problem in both languages: the Chinese line, then the English one (never mixed)."""
    return f"{zh}\n{en}"


@dataclass(frozen=True)
class RosterFile:
    """What a roster file holds: households (number 0 = to be numbered by address) and what the
    reading noticed."""

    households: list[Household]
    sheets: dict[str, int] = field(default_factory=dict)  # sheet -> households ('' for CSV)
    skipped_sheets: list[str] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    unknown_categories: dict[str, int] = field(default_factory=dict)
    keyed_by_address: bool = False
    decoded_as: str = ""
    columns: frozenset[str] = frozenset(FIELDS)  # the fields some sheet has a column for


@dataclass(frozen=True)
class ImportResult:
    """What an import did: counts, and the households it numbered, found missing or removed."""

    added: int
    updated: int
    unchanged: int
    numbered: int = 0
    missing: list[Household] = field(default_factory=list)
    removed: list[Household] = field(default_factory=list)
    reprint: list[int] = field(default_factory=list)  # address or group changed, pass printed
    households: list[Household] = field(default_factory=list)  # as stored, numbers assigned

    @property
    def total(self) -> int:
        return self.added + self.updated + self.unchanged

    def by_group(self) -> dict[str, int]:
        counts = Counter(h.group for h in self.households)
        return {g: counts[g] for g in sorted(counts, key=natural_key)}

    def by_category(self) -> dict[str, int]:
        counts = Counter(h.category for h in self.households)
        return {c: counts[c] for c in sorted(counts, key=natural_key)}


# --- reading -------------------------------------------------------------------------------------


def read_roster_file(
    path: Path, *, sheets: Sequence[str] = (), progress: Progress | None = None
) -> RosterFile:
    """Read and check a roster file (CSV in UTF-8 or GBK/GB18030, or an XLSX workbook).

    Raises RosterError listing every problem, with sheet and line, when anything is wrong.
    """
    path = Path(path)
    refused = f"The roster {path} was refused; nothing was imported."
    refused_zh = f"花名册 {path} 未导入(一户也没有导入)。"
    suffix = path.suffix.lower()
    tables: list[tuple[str, list[tuple[int, list[str]]]]]
    how = ""
    try:
        if suffix in SUFFIXES_XLSX:
            tables = _xlsx_tables(path, progress)
        elif suffix in SUFFIXES_CSV:
            data = path.read_bytes()
            if data.startswith(b"PK\x03\x04"):  # an XLSX workbook saved under a .csv name
                tables = _xlsx_tables(path, progress)
            else:
                rows, how = _csv_rows(data)
                tables = [("", rows)]
        else:
            raise RosterError(
                refused,
                zh=refused_zh,
                problems=[
                    pair(
                        f"{path.name}: 不是 CSV 或 XLSX 文件,请另存为 .xlsx 或 CSV",
                        f"{path.name} is not a CSV or XLSX file (save the spreadsheet as .xlsx "
                        "or as CSV)",
                    )
                ],
            )
    except OSError as exc:
        raise RosterError(
            refused,
            zh=refused_zh,
            problems=[
                pair(
                    f"无法读取 {path}:{exc.strerror or exc}",
                    f"cannot read {path}: {exc.strerror or exc}",
                )
            ],
        ) from None
    except _Unreadable as exc:
        raise RosterError(refused, zh=refused_zh, problems=[str(exc)]) from None
    if sheets:
        names = [name for name, _ in tables]
        unknown = [s for s in sheets if s not in names]
        if unknown:
            raise RosterError(
                refused,
                zh=refused_zh,
                problems=[
                    pair(
                        f"没有工作表 {s!r}(工作表有:{', '.join(map(repr, names))})",
                        f"no sheet {s!r} (sheets: {', '.join(map(repr, names))})",
                    )
                    for s in unknown
                ],
            )
        tables = [(name, rows) for name, rows in tables if name in sheets]
    result, problems = _read_tables(tables, decoded_as=how)
    if problems:
        more = problems.more if isinstance(problems, _Listed) else 0
        raise RosterError(refused, zh=refused_zh, problems=list(problems), more=more)
    assert result is not None
    return result


def read_roster(path: Path) -> list[Household]:
    """The households of a roster file (see `read_roster_file`)."""
    return read_roster_file(path).households


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
            line = _line_of(data, utf8_error.start)
            raise _Unreadable(
                pair(
                    f"第{line}行: 文件前面是 UTF-8,这里有不是 UTF-8 的字节(在 Excel 里重新另存为"
                    "\u201cCSV UTF-8\u201d)",
                    f"line {line}: bytes that are not UTF-8 in a file "
                    "that is UTF-8 before them (in Excel, save as \u201cCSV UTF-8\u201d again)",
                )
            ) from None
        try:
            return data.decode("gb18030"), "read as GBK/GB18030 text"
        except UnicodeDecodeError as gb_error:
            line = _first_undecodable_line(data) or _line_of(data, gb_error.start)
            raise _Unreadable(
                pair(
                    f"第{line}行: 既不是 UTF-8 也不是 GBK 文本(在 Excel 里另存为"
                    "\u201cCSV UTF-8\u201d)",
                    f"line {line}: bytes that are neither UTF-8 nor GBK/GB18030 text "
                    "(in Excel, save as \u201cCSV UTF-8\u201d)",
                )
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
        raise _Unreadable(
            pair(
                f"第{start}行: 不是可读的 CSV({exc})", f"line {start}: not readable as CSV ({exc})"
            )
        ) from None
    return rows, how


def _xlsx_tables(
    path: Path, progress: Progress | None = None
) -> list[tuple[str, list[tuple[int, list[str]]]]]:
    """The cells of every sheet as text, numbered from row 1, in the workbook's order."""
    import zipfile

    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    # Broken workbooks fail in many ways: a bad zip, missing parts, bad XML (SyntaxError).
    broken = (InvalidFileException, zipfile.BadZipFile, KeyError, ValueError, TypeError)
    tables: list[tuple[str, list[tuple[int, list[str]]]]] = []
    read = 0
    # A file object, not the path: openpyxl refuses paths whose suffix is not an Excel one.
    with path.open("rb") as handle:
        try:
            workbook = openpyxl.load_workbook(handle, read_only=True, data_only=True)
            try:
                for sheet in workbook.worksheets:
                    rows: list[tuple[int, list[str]]] = []
                    for number, values in enumerate(sheet.iter_rows(values_only=True), 1):
                        rows.append((number, [_cell_text(v) for v in values]))
                        read += 1
                        if progress is not None and read % 1000 == 0:
                            progress(read)
                    tables.append((str(sheet.title), rows))
            finally:
                workbook.close()
        except (*broken, SyntaxError) as exc:
            raise _Unreadable(
                pair(
                    f"{path.name} 不是可读的 XLSX 工作簿({exc})",
                    f"{path.name} is not a readable XLSX workbook ({exc})",
                )
            ) from None
    return tables


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
    text = clean(cell).lower()
    return re.sub(r"[\s_\-*:：()（）]+", "", text)


def _header_map(row: Sequence[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for index, cell in enumerate(row):
        field_ = HEADER_ALIASES.get(_header_key(cell))
        if field_ is not None and field_ not in found:
            found[field_] = index
    return found


def _is_header(mapping: dict[str, int]) -> bool:
    """A row is the roster's header when it names the group and either an address or a room."""
    return "group" in mapping or (
        "household" in mapping and ("room" in mapping or "building" in mapping)
    )


def suggest_header(cell: str) -> str | None:
    """The field an unknown header most likely stands for (None: probably a name or a note)."""
    import difflib

    key = _header_key(cell)
    if key in HEADER_SUGGESTIONS:
        return HEADER_SUGGESTIONS[key]
    near = difflib.get_close_matches(key, list(HEADER_ALIASES), n=1, cutoff=0.6)
    return HEADER_ALIASES[near[0]] if near else None


def nearest_header(cell: str) -> str | None:
    """A looser hint for a column that is not imported (shown, never acted on)."""
    meant = suggest_header(cell)
    if meant is None:
        near = suggest(_header_key(cell), list(HEADER_ALIASES))
        meant = HEADER_ALIASES[near] if near is not None else None
    return meant


_BUILDING_SUFFIX = re.compile(r"(?:号楼|号栋|栋|幢|号)$")
_UNIT_SUFFIX = re.compile(r"(?:单元|号)$")
_ROOM_SUFFIX = re.compile(r"(?:室|号)$")


def _clean(value: str) -> str:
    return clean(value)


def _strip_suffix(value: str, pattern: re.Pattern[str]) -> str:
    stripped = pattern.sub("", value).strip()
    return stripped or value


def normalise_building(value: str) -> str:
    """A building's key: '3栋', '3号楼', ' 3 ' -> '3' (names are stored as written)."""
    return building_key(value)


def normalise_unit(value: str) -> str:
    """'2单元' -> '2'."""
    return _strip_suffix(_clean(value), _UNIT_SUFFIX)


def normalise_room(value: str) -> str:
    """'301室' -> '301'."""
    return _strip_suffix(_clean(value), _ROOM_SUFFIX)


def normalise_group(value: str) -> str:
    """A group's key: '第3楼组', '3组' -> '3' (names are stored as written)."""
    from menwei.core.names import group_key

    return group_key(value)


def _whole_number(value: str, low: int, high: int) -> int | None:
    text = _clean(value)
    if not re.fullmatch(r"\d{1,9}", text):
        return None
    number = int(text)
    return number if low <= number <= high else None


class _Listed(list[str]):
    """Problems as listed, and how many more were found."""

    def __init__(self, items: list[str], more: int) -> None:
        super().__init__(items)
        self.more = more


class _Problems:
    """Problems of a file, the first MAX_PROBLEMS kept and the rest counted."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self.more = 0

    def add(self, text: str) -> None:
        if len(self.items) < MAX_PROBLEMS:
            self.items.append(text)
        else:
            self.more += 1

    def __bool__(self) -> bool:
        return bool(self.items)

    def result(self) -> list[str]:
        return list(self.items)


def _find_header(
    rows: Iterable[tuple[int, Sequence[str]]],
) -> tuple[dict[str, int] | None, int, Sequence[str], Iterator[tuple[int, Sequence[str]]], bool]:
    """(header mapping or None, its line, its cells, the rows after it, whether any cell at all)."""
    it: Iterator[tuple[int, Sequence[str]]] = iter(rows)
    first: tuple[int, Sequence[str]] | None = None
    skipped = 0
    for line, cells in it:
        if not any(c.strip() for c in cells):
            continue
        if first is None:
            first = (line, cells)
        mapping = _header_map(cells)
        if _is_header(mapping):
            return mapping, line, cells, it, True
        skipped += 1
        if skipped >= HEADER_SEARCH_ROWS:
            break
    if first is None:
        return None, 0, (), iter(()), False
    return None, first[0], first[1], iter(()), True


def _read_tables(
    tables: Sequence[tuple[str, Sequence[tuple[int, Sequence[str]]]]],
    *,
    decoded_as: str = "",
) -> tuple[RosterFile | None, list[str]]:
    problems = _Problems()
    households: list[Household] = []
    sheets: dict[str, int] = {}
    skipped: list[str] = []
    ignored: list[str] = []
    unknown_categories: Counter[str] = Counter()
    first_seen_number: dict[int, tuple[str, str]] = {}
    first_seen_address: dict[str, tuple[str, str]] = {}
    headerless: list[tuple[str, int, Sequence[str]]] = []
    keyed_by_address = False
    columns: set[str] = set()
    workbook = sum(1 for name, _ in tables if name) > 1
    for name, rows in tables:

        def zw(line: int, name: str = name) -> str:
            return f"工作表 {name} 第{line}行" if workbook else f"第{line}行"

        def ew(line: int, name: str = name) -> str:
            return f"sheet {name!r} line {line}" if workbook else f"line {line}"

        header, header_line, header_cells, body, any_cell = _find_header(rows)
        if header is None:
            if any_cell:
                headerless.append((name, header_line, header_cells))
            if workbook:
                skipped.append(name)
            continue
        missing = [
            f
            for f in REQUIRED
            if f not in header and not (f in ("building", "room") and "address" in header)
        ]
        if "building" not in header and "room" not in header and "household" in header:
            missing = [f for f in missing if f not in ("building", "room")]
        unknown_cols = [
            (i, c.strip())
            for i, c in enumerate(header_cells)
            if c.strip() and _header_key(c) not in HEADER_ALIASES
        ]
        lost = False
        for _i, col in unknown_cols:
            meant = suggest_header(col)
            if meant is not None and meant not in header:
                problems.add(
                    pair(
                        f"{zw(header_line)}: 列 {col!r} 不认识,是不是"
                        f"「{HEADER_ZH[meant]}」?请把表头改成「{HEADER_ZH[meant]}」",
                        f"{ew(header_line)}: column {col!r} is not a roster column: did you "
                        f"mean {HEADER_NAMES[meant]}? Rename the header",
                    )
                )
                lost = True
            else:
                hint = nearest_header(col)
                label = f"{col} (≈ {HEADER_NAMES[hint]}?)" if hint and hint not in header else col
                if label not in ignored:
                    ignored.append(label)
        if missing:
            seen = ", ".join(repr(c.strip()) for c in header_cells if c.strip())
            note = f"; {decoded_as}" if decoded_as else ""
            names = ", ".join(HEADER_NAMES[f] for f in missing)
            problems.add(
                pair(
                    f"{zw(header_line)}: 缺少列 {'、'.join(HEADER_ZH[f] for f in missing)}"
                    f"(表头是 {seen})",
                    f"{ew(header_line)}: missing column{'s' if len(missing) > 1 else ''} "
                    f"{names} (the header has {seen}{note})",
                )
            )
            continue
        if lost:
            continue
        columns.update(header)
        count = 0
        for line, cells in body:
            if not any(c.strip() for c in cells):
                continue
            h, row_problems, by_address, category_word = _household_of(
                header, cells, (zw(line), ew(line))
            )
            for p in row_problems:
                problems.add(p)
            if h is None:
                continue
            keyed_by_address = keyed_by_address or by_address
            if h.number:
                if h.number in first_seen_number:
                    zf, ef = first_seen_number[h.number]
                    problems.add(
                        pair(
                            f"{zw(line)}: 户号 {h.number} 重复(第一次在{zf})",
                            f"{ew(line)}: household {h.number} appears again (first on {ef})",
                        )
                    )
                    continue
                first_seen_number[h.number] = (zw(line), ew(line))
            akey = address_key(h.building, h.unit, h.room)
            if akey in first_seen_address:
                zf, ef = first_seen_address[akey]
                problems.add(
                    pair(
                        f"{zw(line)}: 地址 {h.address().zh} 重复(第一次在{zf})",
                        f"{ew(line)}: address {h.address().en} appears again (first on {ef})",
                    )
                )
                continue
            first_seen_address[akey] = (zw(line), ew(line))
            if category_word and not is_known_category(h.category):
                unknown_categories[category_word] += 1
            households.append(h)
            count += 1
        sheets[name] = count
    if not sheets and not problems:
        if headerless:
            name, line, cells = headerless[0]
            seen = ", ".join(repr(c.strip()) for c in cells if c.strip())
            listed = ", ".join(repr(n) for n, _, _ in headerless)
            which_zh = f"(这些工作表都没有:{listed})" if workbook else ""
            which_en = f" (in none of the sheets {listed})" if workbook else ""
            zh_where = f"工作表 {name} 第{line}行" if workbook else f"第{line}行"
            en_where = f"sheet {name!r} line {line}" if workbook else f"line {line}"
            problems.add(
                pair(
                    f"{zh_where}: 没有找到花名册表头(户号、楼栋、室号、楼组、人数){which_zh};"
                    f"第一行是 {seen}",
                    f"{en_where}: no roster header: missing column household (户号) or group "
                    f"(楼组), building, room, members{which_en}; the first row has {seen}",
                )
            )
        else:
            problems.add(pair("文件是空的", "the file is empty"))
    elif not households and not problems:
        problems.add(pair("表头之后没有住户", "no households after the header"))
    if problems:
        return None, _Listed(problems.items, problems.more)
    return (
        RosterFile(
            households=households,
            sheets=sheets,
            skipped_sheets=skipped,
            ignored_columns=ignored,
            unknown_categories=dict(unknown_categories.most_common()),
            keyed_by_address=keyed_by_address,
            decoded_as=decoded_as,
            columns=frozenset(columns),
        ),
        [],
    )


def households_from_rows(
    rows: Iterable[tuple[int, Sequence[str]]], *, decoded_as: str = ""
) -> tuple[list[Household], list[str]]:
    """Households from (line number, cells) rows whose first non-blank row (or one of the first
    few, under a title) is the header; and the list of problems, empty when the rows are good."""
    result, problems = _read_tables([("", list(rows))], decoded_as=decoded_as)
    return ([] if result is None else result.households), problems


def _household_of(
    header: dict[str, int], cells: Sequence[str], where: tuple[str, str]
) -> tuple[Household | None, list[str], bool, str]:
    """One row as a household (number 0: to be numbered by its address), its problems, whether
    its number is an address, and its category word as written."""

    def cell(name: str) -> str:
        i = header.get(name)
        if i is None or i >= len(cells):
            return ""
        return _clean(cells[i])

    zh_at, en_at = where
    problems: list[str] = []
    raw_number = cell("household")
    number = 0
    by_address = False
    parsed: tuple[str, str | None, str] | None = None
    if raw_number:
        if re.fullmatch(r"[\d.]+", raw_number):
            found = _whole_number(raw_number, 1, 0xFFFF)
            if found is None:
                problems.append(
                    pair(
                        f"{zh_at}: 户号 {raw_number!r} 不是 1-65535 之间的整数",
                        f"{en_at}: household {raw_number!r} is not a number 1-65535",
                    )
                )
            else:
                number = found
        else:
            parsed = parse_address(raw_number)
            by_address = True
            if parsed is None:
                problems.append(
                    pair(
                        f"{zh_at}: 户号 {raw_number!r} 既不是数字也不是地址(如 3-2-301)",
                        f"{en_at}: household {raw_number!r} is neither a number nor an address "
                        "like 3-2-301",
                    )
                )
    else:
        by_address = True
    if cell("address"):
        parsed = parse_address(cell("address")) or parsed
        if parse_address(cell("address")) is None and not cell("room"):
            problems.append(
                pair(
                    f"{zh_at}: 地址 {cell('address')!r} 看不懂(应如 3-2-301)",
                    f"{en_at}: address {cell('address')!r} is not like 3-2-301",
                )
            )
    building = cell("building") or (parsed[0] if parsed else "")
    unit = normalise_unit(cell("unit")) if cell("unit") else (parsed[1] or "" if parsed else "")
    room = normalise_room(cell("room")) if cell("room") else (parsed[2] if parsed else "")
    raw_members = cell("members")
    members = _whole_number(raw_members, 0, 99)
    if not raw_members:
        problems.append(pair(f"{zh_at}: 人数为空", f"{en_at}: members is empty"))
    elif members is None:
        problems.append(
            pair(
                f"{zh_at}: 人数 {raw_members!r} 不是 0-99 之间的整数",
                f"{en_at}: members {raw_members!r} is not a number 0-99",
            )
        )
    for name, value in (("building", building), ("room", room), ("group", cell("group"))):
        if not value:
            zh = {"building": "楼栋", "room": "室号", "group": "楼组"}[name]
            problems.append(pair(f"{zh_at}: {zh}为空", f"{en_at}: {name} is empty"))
    if problems:
        return None, problems, by_address, ""
    assert members is not None
    word = cell("category")
    category = normalise_category(word) or "normal"
    return (
        Household(
            number=number,
            building=building,
            unit=unit,
            room=room,
            group=cell("group"),
            members=members,
            category=category,
            contact=cell("contact") or None,
        ),
        [],
        by_address,
        word,
    )


# --- storing -------------------------------------------------------------------------------------


def _check(households: Sequence[Household]) -> list[str]:
    problems: list[str] = []
    seen: set[int] = set()
    for position, h in enumerate(households, 1):
        where = f"household #{position}"
        if h.number and not 1 <= h.number <= 0xFFFF:
            problems.append(f"{where}: household {h.number} is not a number 1-65535")
        elif h.number and h.number in seen:
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


def import_roster(
    store: Store,
    households: list[Household],
    *,
    now: str,
    replace: bool = False,
    columns: frozenset[str] = frozenset(FIELDS),
) -> ImportResult:
    """Add or update the households in one transaction.

    A household with a number is matched by it; one without (number 0, a roster keyed by address)
    gets the number its address had before, else the next free one: numbers stay stable across
    re-imports. A field the file has no column for (category, contact; the written building
    name when the address came from 户号) keeps its stored value: a file without a 类别 column
    never turns returning workers into normal households. Households in the store but absent
    from `households` are listed as missing and
    kept, or with `replace` removed (and their passes revoked, see `remove_households`). `now`
    (UTC ISO time) becomes `updated_at` of every added or changed row.
    """
    problems = _check(households)
    if problems:
        raise RosterError(
            "The roster was refused; nothing was imported.",
            zh="花名册未导入。",
            problems=problems,
        )
    added = updated = unchanged = numbered = 0
    reprint: list[int] = []
    stored: list[Household] = []
    with store.write() as db:
        existing = {row[0]: tuple(row) for row in db.execute(f"select {_COLUMNS} from households")}
        by_address = {
            str(r[0]): int(r[1])
            for r in db.execute("select address_key, household from household_addresses")
        }
        used = set(existing) | set(by_address.values())
        used |= {int(r[0]) for r in db.execute("select household from removed_households")}
        printed = {int(r[0]) for r in db.execute("select distinct household from passes")}
        taken_in_file = {h.number for h in households if h.number}
        next_free = 1
        batch: list[tuple[Any, ...]] = []
        mapping: list[tuple[str, int]] = []
        for h in households:
            key = address_key(h.building, h.unit, h.room)
            if not h.number:
                number = by_address.get(key)
                if number is None or number in taken_in_file:
                    while next_free in used or next_free in taken_in_file:
                        next_free += 1
                    number = next_free
                    numbered += 1
                used.add(number)
                taken_in_file.add(number)
                h = Household(
                    number, h.building, h.unit, h.room, h.group, h.members, h.category, h.contact
                )
            before = existing.get(h.number)
            if before is not None:
                h = _keep_absent(h, before, columns)
            stored.append(h)
            mapping.append((key, h.number))
            row = _row(h)
            if before is None:
                added += 1
            elif before == row:
                unchanged += 1
                continue
            else:
                updated += 1
                moved = address_key(*before[1:4]) != key or before[4] != h.group
                if moved and h.number in printed:
                    reprint.append(h.number)
            batch.append((*row, now))
        if batch:
            db.conn.executemany(_INSERT, batch)
        # An address keeps its number; a number keeps one address (the latest).
        db.conn.executemany(
            "delete from household_addresses where household = ? and address_key <> ?",
            [(n, k) for k, n in mapping],
        )
        db.conn.executemany(
            "insert into household_addresses(address_key, household) values (?, ?) "
            "on conflict(address_key) do update set household = excluded.household",
            mapping,
        )
        db.conn.executemany(
            "delete from removed_households where household = ?", [(n,) for _, n in mapping]
        )
        in_file = {h.number for h in stored}
        missing = [_household(existing[n]) for n in sorted(existing) if n not in in_file]
        removed: list[Household] = []
        if replace and missing:
            removed = remove_households(
                store, [h.number for h in missing], now=now, reason="not in the roster file"
            )
            missing = []
    return ImportResult(
        added=added,
        updated=updated,
        unchanged=unchanged,
        numbered=numbered,
        missing=missing,
        removed=removed,
        reprint=sorted(reprint),
        households=stored,
    )


def _keep_absent(h: Household, before: tuple[Any, ...], columns: frozenset[str]) -> Household:
    """`h` with the stored value of every field the file had no column for."""
    old = _household(before)
    same_place = address_key(old.building, old.unit, old.room) == address_key(
        h.building, h.unit, h.room
    )
    return Household(
        number=h.number,
        building=h.building if "building" in columns or not same_place else old.building,
        unit=h.unit if "unit" in columns or not same_place else old.unit,
        room=h.room if "room" in columns or not same_place else old.room,
        group=h.group,
        members=h.members,
        category=h.category if "category" in columns else old.category,
        contact=h.contact if "contact" in columns else old.contact,
    )


def remove_households(
    store: Store, numbers: Sequence[int], *, now: str, reason: str | None = None
) -> list[Household]:
    """Take households off the roster (moved out) and revoke their passes, in one transaction.

    The household's number stays taken (never given to another address) and a pass it still
    holds is refused as `removed` at this gate (`revoked` at gates that only get revocations).
    Raises RosterError naming the numbers that are not in the roster; nothing is removed then.
    """
    with store.write() as db:
        found = {
            h.number: h
            for h in _select(
                store,
                f"where household in ({','.join('?' * len(numbers))})" if numbers else "where 0",
                list(numbers),
            )
        }
        unknown = [n for n in numbers if n not in found]
        if unknown:
            listed = ", ".join(str(n) for n in unknown)
            raise RosterError(
                f"Not in the roster: {listed}; nothing was removed.",
                zh=f"花名册里没有这些户号:{listed};没有删除任何住户。",
            )
        removed = [found[n] for n in dict.fromkeys(numbers)]
        for h in removed:
            top = db.execute(
                "select max(serial) from passes where household = ?", [h.number]
            ).fetchone()[0]
            floor = db.execute(
                "select min_serial from revocations where household = ?", [h.number]
            ).fetchone()
            new_floor = max(int(top or 0), int(floor[0]) - 1 if floor else 0) + 1
            db.execute(
                "insert into revocations(household, min_serial, reason, revoked_at) "
                "values (?, ?, ?, ?) on conflict(household) do update set "
                "min_serial = max(min_serial, excluded.min_serial), reason = excluded.reason, "
                "revoked_at = excluded.revoked_at",
                [h.number, new_floor, "moved out", now],
            )
            db.execute(
                "insert into removed_households(household, building, unit, room, building_group,"
                " removed_at, reason) values (?, ?, ?, ?, ?, ?, ?) on conflict(household) do "
                "update set removed_at = excluded.removed_at, reason = excluded.reason",
                [h.number, h.building, h.unit, h.room, h.group, now, reason],
            )
            db.execute("delete from households where household = ?", [h.number])
    return removed


def removed_household(store: Store, number: int) -> dict[str, Any] | None:
    """When and why a household left the roster (None: it did not)."""
    return store.one(
        "select household, building, unit, room, building_group, removed_at, reason "
        "from removed_households where household = ?",
        [number],
    )


def summary_lines(read: RosterFile, result: ImportResult) -> list[str]:
    """The import summary, each line Chinese then English (never mixed in one line)."""
    from menwei.core.text import category_label, group_label

    lines: list[str] = []
    if any(read.sheets):
        listed = ", ".join(f"{name} {n}" for name, n in read.sheets.items())
        lines.append(f"  按工作表 (户): {listed}")
        lines.append(f"  by sheet (households): {listed}")
    if read.skipped_sheets:
        names = ", ".join(read.skipped_sheets)
        lines.append(f"  跳过没有花名册表头的工作表: {names}")
        lines.append(f"  skipped sheets without the roster header: {names}")
    groups = result.by_group()
    if groups:
        lines.append(
            "  按楼组: " + ", ".join(f"{group_label(g).zh} {n}" for g, n in groups.items())
        )
        lines.append(
            "  by group: " + ", ".join(f"{group_label(g).en} {n}" for g, n in groups.items())
        )
    cats = result.by_category()
    if cats:
        lines.append(
            "  按类别: " + ", ".join(f"{category_label(c).zh} {n}" for c, n in cats.items())
        )
        lines.append(
            "  by category: " + ", ".join(f"{category_label(c).en} {n}" for c, n in cats.items())
        )
    if read.unknown_categories:
        words = ", ".join(f"{w} ×{n}" for w, n in read.unknown_categories.items())
        lines.append(f"  类别表里没有的类别(按原文保留为新类别): {words}")
        lines.append(
            f"  category words not in the table (kept as categories of their own): {words}"
        )
    if read.ignored_columns:
        cols = ", ".join(read.ignored_columns)
        lines.append(f"  未导入的列: {cols}")
        lines.append(f"  columns not imported: {cols}")
    if result.numbered:
        lines.append(f"  按地址新编户号 {result.numbered} 个(以后重新导入保持不变)")
        lines.append(
            f"  {result.numbered} households numbered by address (kept on every re-import)"
        )
    if result.missing:
        listed = _list_households(result.missing)
        lines.append(f"  文件里没有、仍保留的住户 {len(result.missing)} 户: {listed}")
        lines.append(
            f"  {len(result.missing)} households not in the file were kept: {listed}"
            " (use --replace to remove them)"
        )
    if result.removed:
        listed = _list_households(result.removed)
        lines.append(f"  已删除(迁出)并作废通行证 {len(result.removed)} 户: {listed}")
        lines.append(
            f"  {len(result.removed)} households removed (moved out), passes revoked: {listed}"
        )
    if result.reprint:
        listed = ", ".join(str(n) for n in result.reprint[:20])
        more = f" … (+{len(result.reprint) - 20})" if len(result.reprint) > 20 else ""
        lines.append(
            f"  地址或楼组有变,需要重新打印通行证 {len(result.reprint)} 户: {listed}{more}"
        )
        lines.append(
            f"  reprint needed (address or group changed) for {len(result.reprint)} households: "
            f"{listed}{more} (menwei passes issue --household N --out DIR)"
        )
    return lines


def _list_households(households: Sequence[Household], limit: int = 20) -> str:
    shown = ", ".join(f"{h.number} ({h.address().zh})" for h in households[:limit])
    if len(households) > limit:
        shown += f" … (+{len(households) - limit})"
    return shown


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


def group_names(store: Store) -> list[str]:
    """The roster's building groups as written, in natural order (2 before 10)."""
    rows = store.db.execute("select distinct building_group from households").fetchall()
    return sorted((str(r[0]) for r in rows), key=natural_key)


def building_names(store: Store) -> list[str]:
    """The roster's buildings as written, in natural order."""
    rows = store.db.execute("select distinct building from households").fetchall()
    return sorted((str(r[0]) for r in rows), key=natural_key)


# (what, listed as, several, 中文, 中文 several) for the messages of `_find_one`
_GROUP_WORDS = ("building group", "groups", "building groups", "楼组", "几个楼组")
_BUILDING_WORDS = ("building", "buildings", "buildings", "楼栋", "几栋楼")


def find_group(store: Store, query: str) -> str:
    """The roster's own name of a building group typed as '第3楼组', '3楼组' or '3'.

    Raises RosterError (in both languages, naming the groups there are) when none or several match.
    """
    from menwei.core.names import group_matches

    return _find_one(query, group_names(store), group_matches, _GROUP_WORDS)


def find_building(store: Store, query: str) -> str:
    """The roster's own name of a building typed as '12号楼', '12栋' or '12' (see `find_group`)."""
    from menwei.core.names import building_matches

    return _find_one(query, building_names(store), building_matches, _BUILDING_WORDS)


def _find_one(
    query: str,
    names: list[str],
    matches: Callable[[str, list[str]], list[str]],
    words: tuple[str, str, str, str, str],
) -> str:
    """The one name of `names` that `query` means; RosterError when none or several do."""
    what, listed, several, what_zh, several_zh = words
    found = matches(query, names)
    if len(found) == 1:
        return found[0]
    shown = ", ".join(names[:12]) + (f" … (+{len(names) - 12})" if len(names) > 12 else "")
    if not found:
        raise RosterError(
            f"No {what} {query!r} in the roster ({listed}: {shown or 'none'}).",
            zh=f"花名册里没有{what_zh} {query!r}(现有{what_zh}:{shown or '无'})。",
        )
    both = ", ".join(found)
    raise RosterError(
        f"{query!r} could mean several {several} ({both}); write the name in full.",
        zh=f"{query!r} 可能是{several_zh}({both}),请写全名。",
    )


# '3栋301', '3号楼2单元301室', '3幢 2单元 301'
_ADDRESS_ZH = re.compile(
    r"^(?P<b>[^\s-]+?\s*(?:号楼|栋|幢))\s*(?:(?P<u>[^\s-]+?)\s*单元)?\s*(?P<r>[^\s-]+?)\s*(?:室|号)?$"
)


def parse_address(query: str) -> tuple[str, str | None, str] | None:
    """(building as written, unit or None for any, room) from '3-301', '3-2-301', '3栋301',
    '3号楼2单元301室'."""
    text = _clean(query)
    match = _ADDRESS_ZH.match(text)
    if match:
        unit = match.group("u")
        return (
            match.group("b").strip(),
            normalise_unit(unit) if unit else None,
            normalise_room(match.group("r")),
        )
    parts = [p for p in re.split(r"\s*[-/\s—–]\s*", text) if p]
    if len(parts) == 2:
        return parts[0], None, normalise_room(parts[1])
    if len(parts) == 3:
        return parts[0], normalise_unit(parts[1]), normalise_room(parts[2])
    return None


def find_households(store: Store, query: str) -> list[Household]:
    """Households matching a household number ('1203') or an address: building-room ('3-301',
    '3栋301') or building-unit-room ('3-2-301', '3号楼2单元301室'). Empty when nothing matches."""
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
    bkey, rkey = building_key(building), room_key(room)
    ukey = unit_key(unit) if unit is not None else None
    # Rooms are stored without 室; narrow by room in SQL, then compare the keys of the rest.
    candidates = _select(store, "where room = ? or room like ?", [room, f"%{rkey}%"])
    return [
        h
        for h in candidates
        if building_key(h.building) == bkey
        and room_key(h.room) == rkey
        and (ukey is None or unit_key(h.unit) == ukey)
    ]
