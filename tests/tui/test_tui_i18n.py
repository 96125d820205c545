"""The one catalogue: both languages complete, with the same placeholders; CJK widths."""

from __future__ import annotations

import string

from rich.cells import cell_len

from menwei.gateapp.desk import DeskError
from menwei.gateapp.i18n import CATALOGUE, EN, ZH, desk_error, tr
from menwei.screens.widgets import pad


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_both_languages_have_the_same_keys() -> None:
    assert set(ZH) == set(EN)
    assert set(CATALOGUE) == {"zh", "en"}


def test_both_languages_fill_the_same_placeholders() -> None:
    bad = {
        key: f"zh {sorted(placeholders(ZH[key]))} / en {sorted(placeholders(EN.get(key, '')))}"
        for key in sorted(ZH)
        if placeholders(ZH[key]) != placeholders(EN.get(key, ""))
    }
    blank = [key for key in sorted(ZH) if not (ZH[key].strip() and EN.get(key, "").strip())]
    assert (bad, blank) == ({}, []), f"placeholders differ: {bad}; blank: {blank}"


def test_every_key_the_screens_use_is_in_the_catalogue() -> None:
    import re
    from pathlib import Path

    import menwei.screens as screens

    used: set[str] = set()
    for path in Path(screens.__file__).parent.glob("*.py"):
        used |= set(
            re.findall(
                r'"((?:key|hint|error|idle|verdict|next|recent|override|undo|'
                r"lookup|present|help|signin|handover|board|log|status|sync|"
                r'camera|state)\.[a-z_.]+)"',
                path.read_text(),
            )
        )
    missing = sorted(k for k in used if k not in ZH and not k.endswith(".tcss"))
    assert not missing


def test_words_built_from_values_are_all_there() -> None:
    from typing import get_args

    from menwei.core.eventlog import KINDS
    from menwei.gateapp.feed import FeedState

    keys = [f"camera.{s}" for s in get_args(FeedState) if s != "open"]
    keys += [f"kind.{k}" for k in KINDS]
    keys += [f"direction.{d}" for d in ("exit", "entry")]
    keys += [f"choice.{c}" for c in ("auto", "exit", "entry")]
    keys += [f"state.{s}" for s in ("in", "out")]
    assert [k for k in keys if k not in ZH] == []


def test_translation_fills_values_and_falls_back_to_chinese() -> None:
    assert tr("zh", "board.title", count=3) == "现在外出 3 户"
    assert tr("en", "board.title", count=3) == "3 households out now"
    assert tr("fr", "key.help") == ZH["key.help"]


def test_gate_errors_are_said_in_chinese() -> None:
    error = DeskError("error.gate", message="Nothing to undo.", zh="没有可撤销的记录")
    assert desk_error("zh", error) == "无法办理:没有可撤销的记录"
    assert desk_error("en", error) == "Cannot do that: Nothing to undo."
    assert desk_error("en", DeskError("error.headcount", max=20)) == "People must be 1 to 20."


def test_padding_counts_chinese_characters_as_two_columns() -> None:
    assert cell_len(pad("户号", 8)) == 8
    assert pad("户号", 8) == "户号    "
    assert pad("1203", 8) == "1203    "
