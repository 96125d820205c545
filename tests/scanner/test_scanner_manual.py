"""Manual entry: a household number or an address, looked up in the roster."""

from __future__ import annotations

import pytest

from menwei.scanner.manual import ManualEntryError, ManualQuery, find_one, parse
from menwei.scanner.pipeline import ScannedCode, from_manual, submit
from tests.conftest import Community


@pytest.mark.parametrize(
    ("typed", "canonical"),
    [
        ("1203", "1203"),
        (" 1203 ", "1203"),
        ("１２０３", "1203"),  # full-width digits from a Chinese input method
        ("1203号", "1203"),
        ("3-301", "3-301"),
        ("3 301", "3-301"),
        ("3－301", "3-301"),
        ("3栋301", "3-301"),
        ("3号楼301室", "3-301"),
        ("3#301", "3-301"),
        ("3-2-301", "3-2-301"),
        ("3/2/301", "3-2-301"),
        ("3栋2单元301", "3-2-301"),
        ("3栋2单元301室", "3-2-301"),
        ("3号楼 2单元 301", "3-2-301"),
        ("a栋301", "A-301"),
    ],
)
def test_the_forms_people_type(typed: str, canonical: str) -> None:
    assert parse(typed).text == canonical


def test_the_parts_are_kept() -> None:
    assert parse("3栋2单元301") == ManualQuery("3栋2单元301", building="3", unit="2", room="301")
    assert parse("1203") == ManualQuery("1203", number=1203)


@pytest.mark.parametrize(
    "typed", ["", "  ", "abc def ghi jkl", "1-2-3-4", "0", "70000", "MW:AB", "3栋"]
)
def test_what_is_not_a_household(typed: str) -> None:
    with pytest.raises(ManualEntryError):
        parse(typed)


def test_lookups_in_the_roster(community: Community) -> None:
    gate = community.gate
    assert find_one("1203", gate.find_households).number == 1203
    assert find_one("3-2-301", gate.find_households).number == 1203
    assert find_one("3栋2单元302室", gate.find_households).number == 1204
    assert find_one("12-601", gate.find_households).number == 3301
    with pytest.raises(ManualEntryError, match="no such household"):
        find_one("9999", gate.find_households)


def test_a_manual_scan_is_recorded_as_manual(community: Community) -> None:
    decision = submit(community.gate, from_manual("3栋2单元301"), operator="张三")
    assert decision.household_number == 1203
    assert decision.source == "manual"
    assert decision.recorded


def test_a_manual_scan_of_an_unknown_address_decides_nothing(community: Community) -> None:
    code = ScannedCode("99栋101", "manual", from_manual("x").seen_at)
    with pytest.raises(ManualEntryError):
        submit(community.gate, code, operator="张三", dry_run=True)
