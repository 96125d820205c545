"""Movement registers and the day summary, checked against a known history, in CSV and PDF."""

from __future__ import annotations

import csv
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pypdf import PdfReader

from menwei.cli import cli
from menwei.core import keys, passes, state
from menwei.core.register import day_summary, movement_register, summary_lines
from menwei.output.register_files import write_register_csv, write_register_pdf, write_summary_pdf
from tests.conftest import Community

POLICY = """\
timezone = "Asia/Shanghai"
max_time_out = "2h"

[[windows]]
groups = ["3"]
start = "10:00"
end = "11:00"

[[windows]]
groups = ["5", "8"]
start = "08:00"
end = "20:00"
"""
DAY = date(2026, 11, 24)
AS_OF = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # 23:00 in Shanghai
HEADER = [
    "序号",
    "户号",
    "楼栋",
    "单元",
    "室",
    "人数",
    "外出时间",
    "返回时间",
    "门岗",
    "特批",
    "超时",
    "备注",
]


def at(hm: str, day: int = 24) -> datetime:
    """A local Shanghai time on 2026-11-`day`, as UTC."""
    h, m = (int(x) for x in hm.split(":"))
    return datetime(2026, 11, day, h, m, tzinfo=UTC) - timedelta(hours=8)


def pulled(
    c: Community, gseq: int, kind: str, household: int, when: datetime, **extra: Any
) -> None:
    """An event of gate-2, as a sync would have pulled it."""
    event_id = f"remote-{gseq}"
    body = {"kind": kind, "household": household, "gate_id": "gate-2", **extra}
    with c.store.write() as db:
        db.execute(
            "insert into remote_events (gseq, event_id, gate_id, epoch, seq, kind, direction,"
            " household, reason, headcount, wall_time, ref, body)"
            " values (?, ?, 'gate-2', 1, ?, ?, ?, ?, 'ok', ?, ?, null, ?)",
            [
                gseq,
                event_id,
                gseq,
                kind,
                kind,
                household,
                extra.get("headcount", 1),
                when.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                json.dumps(body),
            ],
        )
        state.rebuild(db, [household])


@pytest.fixture
def history(community: Community) -> Community:
    """A day at the gates of 测试小区 (see each step)."""
    c = community
    c.set_policy(POLICY)
    gate, clock, codes = c.gate, c.clock, c.codes
    # The night before, 12-601 (group 8) went out through gate-2 and came back in the morning.
    pulled(c, 1, "exit", 3301, at("22:00", 23), window="08:00-20:00")
    pulled(c, 2, "entry", 3301, at("07:30"))
    # 7-102 (group 5) went out and came back early through gate-2.
    pulled(c, 3, "exit", 2102, at("09:00"), window="08:00-20:00", headcount=2)
    pulled(c, 4, "entry", 2102, at("09:40"), headcount=2)

    def scan(hm: str, household: int, **kw: Any) -> Any:
        clock.set(at(hm))
        return gate.decide(codes[household], operator="张三", **kw)

    scan("10:00", 1203, headcount=2)
    scan("10:05", 1204)
    scan("10:06", 1204)  # a wrong scan...
    clock.set(at("10:07"))
    gate.annul_last(operator="张三")  # ...undone
    scan("10:10", 2101)
    clock.set(at("10:20"))
    forged = passes.sign(passes.PassData(0, 42, 1203, 1, date(2027, 5, 1)), keys.generate())
    assert gate.decide(forged, operator="张三").reason == "forged"
    scan("11:30", 1204)
    assert scan("12:30", 1203, headcount=2).reason == "overdue"
    refused = scan("12:10", 1204)
    assert refused.reason == "outside_window" and refused.event_id
    gate.override(refused.event_id, reason="medical", note="发烧", operator="李四")
    scan("13:00", 1204)
    clock.set(at("14:00"))
    gate.register_return(2102, note="出院返回", operator="李四")
    with c.store.write() as db:
        db.execute(
            "insert into anomalies (anomaly_id, kind, household, gate_id, event_ids, detail,"
            " detected_at) values ('a1', 'double_exit', 2101, 'gate-2', '[]', '', ?)",
            ["2026-11-24T06:00:00.000Z"],
        )
    return c


GROUP3 = [
    ["1", "1203", "3", "2", "301", "2", "10:00", "12:30", "gate-1", "", "超时", "10:00-11:00"],
    ["2", "1204", "3", "2", "302", "1", "10:05", "11:30", "gate-1", "", "", "10:00-11:00"],
    [
        "3",
        "1204",
        "3",
        "2",
        "302",
        "1",
        "12:10",
        "13:00",
        "gate-1",
        "出:就医(发烧)",
        "",
        "特批(就医)",
    ],
]
GROUP5 = [
    ["1", "2102", "7", "1", "102", "2", "09:00", "09:40", "gate-2", "", "", "08:00-20:00"],
    ["2", "2101", "7", "1", "101", "1", "10:10", "未归", "gate-1", "", "超时", "08:00-20:00"],
    ["3", "2102", "7", "1", "102", "1", "", "14:00", "gate-1", "", "", "返回居民登记、出院返回"],
]


def test_the_register_of_a_group_matches_its_events(history: Community) -> None:
    reg = movement_register(history.store, "3", DAY, as_of=AS_OF)
    assert reg.header("zh") == HEADER
    assert reg.rows("zh") == GROUP3
    assert reg.totals() == {
        "trips": 3,
        "persons": 4,
        "returns": 3,
        "still_out": 0,
        "overdue": 1,
        "overrides": 1,
    }
    assert movement_register(history.store, "5", DAY, as_of=AS_OF).rows("zh") == GROUP5


def test_a_trip_over_midnight_is_on_both_days(history: Community) -> None:
    today = movement_register(history.store, "8", DAY, as_of=AS_OF).rows("zh")
    yesterday = movement_register(history.store, "8", date(2026, 11, 23), as_of=AS_OF).rows("zh")
    assert [r[6:9] for r in today] == [["11-23 22:00", "07:30", "gate-2"]]
    assert [r[6:9] for r in yesterday] == [["22:00", "11-24 07:30", "gate-2"]]


def test_the_register_in_english(history: Community) -> None:
    reg = movement_register(history.store, "5", DAY, as_of=AS_OF)
    assert reg.header("en")[6:8] == ["Out at", "Back at"]
    assert reg.rows("en")[1][7:11] == ["not back", "gate-1", "", "overdue"]
    assert reg.rows("en")[2][11] == "returning resident; 出院返回"


def test_csv_opens_in_excel_with_the_chinese_intact(history: Community, tmp_path: Path) -> None:
    reg = movement_register(history.store, "3", DAY, as_of=AS_OF)
    path = write_register_csv(reg, tmp_path / "register.csv")
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs to read UTF-8
    with path.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f))
    assert rows == [HEADER, *GROUP3]


def pdf_text(path: Path) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(path).pages)


def test_the_pdf_register_reads_back(history: Community, tmp_path: Path) -> None:
    reg = movement_register(history.store, "5", DAY, as_of=AS_OF)
    path = write_register_pdf(reg, tmp_path / "register.pdf")
    reader = PdfReader(path)
    box = reader.pages[0].mediabox
    assert (round(float(box.width)), round(float(box.height))) == (595, 842)  # A4
    text = pdf_text(path).replace("\n", "")  # a cell may wrap its text
    for expected in (
        "第5楼组 人员流动信息册",
        "测试小区 · 2026-11-24(周二)· 截至 11-24 23:00",
        "户号",
        "2101",
        "未归",
        "超时",
        "出院返回",
        "gate-2",
        "外出 2 户次 3 人;返回 2 户次;未归 1;超时 1;特批 0",
        "楼组长签字",
    ):
        assert expected in text, expected


def test_a_register_with_many_lines_runs_onto_more_pages(
    community: Community, tmp_path: Path
) -> None:
    gate, clock = community.gate, community.clock
    for _ in range(70):
        gate.decide(community.codes[1203], operator="t")
        clock.advance(timedelta(minutes=5))
        gate.decide(community.codes[1203], operator="t")
        clock.advance(timedelta(minutes=1))
    reg = movement_register(community.store, "3", DAY, as_of=AS_OF)
    assert len(reg.trips) == 70
    path = write_register_pdf(reg, tmp_path / "long.pdf")
    reader = PdfReader(path)
    assert len(reader.pages) >= 2
    assert "序号" in reader.pages[1].extract_text()  # the header repeats


def test_an_empty_day_still_prints(community: Community, tmp_path: Path) -> None:
    reg = movement_register(community.store, "3", DAY, as_of=AS_OF)
    assert reg.rows() == []
    text = pdf_text(write_register_pdf(reg, tmp_path / "empty.pdf"))
    assert "本日无出入记录" in text


def test_the_community_day_summary(history: Community, tmp_path: Path) -> None:
    s = day_summary(history.store, DAY, as_of=AS_OF)
    d = s.as_dict()
    assert d["trips"] == 5 and d["persons"] == 7 and d["returns"] == 6
    assert s.trips_by_window_group() == {
        "08:00-20:00": {"5": 2},
        "10:00-11:00": {"3": 2},
        "override:medical": {"3": 1},
    }
    assert s.trips_by_group() == {"3": 3, "5": 2}
    assert [t.household.number for t in s.overdue_returns()] == [1203]
    assert [t.household.number for t in s.still_out()] == [2101]
    assert s.refusals == {"forged": 1, "outside_window": 1}
    assert [a.kind for a in s.anomalies] == ["double_exit"]
    lines = summary_lines(s, "zh")
    assert lines[0] == "外出 5 户次 7 人,返回 6 户次"
    assert "  特批(就医):第3楼组 1" in lines
    assert "  3栋2单元301室(户号 1203)11-24 10:00 外出,12:30 返回(外出2小时30分钟)" in lines
    assert "被拒 2 次:伪造 1,不在外出时段 1" in lines
    text = pdf_text(write_summary_pdf(s, tmp_path / "summary.pdf"))
    assert "测试小区 11-24 出入小结" in text and "不在外出时段 1" in text


def run(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_report_commands(history: Community, tmp_path: Path) -> None:
    out = tmp_path / "g3.csv"
    result = run(
        "report",
        "register",
        "--group",
        "3",
        "--date",
        "2026-11-24",
        "--out",
        str(out),
        "--at",
        "2026-11-24T23:00",
    )
    assert result.exit_code == 0, result.output
    with out.open(encoding="utf-8-sig", newline="") as f:
        assert list(csv.reader(f)) == [HEADER, *GROUP3]
    pdf = tmp_path / "g3.pdf"
    result = run(
        "report", "register", "--group", "3", "--date", "2026-11-24", "--out", str(pdf), "--json"
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["totals"]["trips"] == 3 and data["out"] == str(pdf)
    assert "1204" in pdf_text(pdf)
    assert run("report", "register", "--group", "99", "--date", "2026-11-24").exit_code == 1
    bad = run("report", "register", "--group", "3", "--out", str(tmp_path / "x.txt"))
    assert bad.exit_code == 1 and "--format" in bad.output
    summary = run("report", "summary", "--date", "2026-11-24", "--json", "--at", "2026-11-24T23:00")
    assert summary.exit_code == 0
    assert json.loads(summary.output)["refusals"] == {"forged": 1, "outside_window": 1}
    text = run("report", "summary", "--date", "2026-11-24", "--lang", "en")
    assert "Refusals: 2: forged 1, outside the release window 1" in text.output


def test_two_exits_without_a_return_between_are_both_shown(community: Community) -> None:
    pulled(community, 1, "exit", 3301, at("09:00"), window="open")
    pulled(community, 2, "exit", 3301, at("09:30"), window="open")  # a return was not scanned
    reg = movement_register(community.store, "8", DAY, as_of=AS_OF)
    assert [r[6:8] for r in reg.rows("zh")] == [["09:00", "无返回记录"], ["09:30", "未归"]]
    assert reg.totals()["still_out"] == 1
