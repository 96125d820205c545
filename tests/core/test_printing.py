"""Printed passes: the PNG decodes with a real decoder, the symbol is 40 mm, the PDFs are whole."""

from __future__ import annotations

import random
from datetime import date
from pathlib import Path

import numpy as np
import pytest
import qrcode
import zxingcpp
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from PIL import Image
from pypdf import PdfReader
from qrcode.util import MODE_ALPHA_NUM, QRData

from menwei.core import keys
from menwei.core.model import Household
from menwei.core.passes import ParsedPass, PassData, parse, sign
from menwei.output import printing
from menwei.output.printing import (
    PrintedPass,
    print_passes,
    qr_matrix,
    render_pass_png,
    write_group_pdf,
    write_pass_png,
)

UNTIL = date(2027, 1, 1)
HOUSEHOLD = Household(1203, "3", "2", "301", "3", 3, "normal", "138****1234")


@pytest.fixture(scope="module")
def key() -> Ed25519PrivateKey:
    return keys.generate()


def code_for(key: Ed25519PrivateKey, household: int, serial: int = 1) -> str:
    return sign(PassData(0, 42, household, serial, UNTIL), key)


def printed(code: str, household: Household = HOUSEHOLD) -> PrintedPass:
    return PrintedPass(household, 1, code, UNTIL, "钟楼居民区")


def code_with_a_space(key: Ed25519PrivateKey) -> str:
    for serial in range(1, 256):
        code = code_for(key, 1203, serial)
        if " " in code:
            return code
    raise AssertionError("no code with a space in 255 tries")


def decoded(image: Image.Image) -> list[str]:
    return [b.text for b in zxingcpp.read_barcodes(image)]


def symbol_width_px(image: Image.Image) -> int:
    """The width of the dark QR symbol on the left of the card, in pixels."""
    dark = np.asarray(image.convert("L")) < 128
    left_part = dark[:, : round(printing.TEXT_LEFT_MM / 25.4 * 300) - 10]
    columns = np.flatnonzero(left_part.any(axis=0))
    return int(columns[-1] - columns[0] + 1)


# --- PNG -----------------------------------------------------------------------------------------


def test_png_decodes_to_exactly_the_code(key: Ed25519PrivateKey) -> None:
    code = code_for(key, 1203)
    assert decoded(render_pass_png(printed(code))) == [code]


def test_a_code_with_a_space_is_printed_verbatim(key: Ed25519PrivateKey, tmp_path: Path) -> None:
    code = code_with_a_space(key)
    path = write_pass_png(tmp_path / "1203.png", printed(code))
    with Image.open(path) as image:
        assert decoded(image) == [code]
    assert isinstance(parse(decoded(render_pass_png(printed(code)))[0]), ParsedPass)
    for text in ["MW:ABC 123 ", "MW: $%*+-./:"]:  # spaces at the end too, and every symbol
        assert decoded(render_pass_png(printed(text))) == [text]


def test_png_file_is_300_dpi_with_a_40_mm_symbol(key: Ed25519PrivateKey, tmp_path: Path) -> None:
    path = write_pass_png(tmp_path / "1203.png", printed(code_for(key, 1203)))
    with Image.open(path) as image:
        dpi = image.info["dpi"]
        assert round(dpi[0]) == 300 and round(dpi[1]) == 300
        width_mm = symbol_width_px(image) / 300 * 25.4
        assert 39.0 <= width_mm <= 41.0
        # 85 x 54 mm card
        assert abs(image.width / 300 * 25.4 - 85) < 0.5
        assert abs(image.height / 300 * 25.4 - 54) < 0.5
    assert [p.name for p in tmp_path.iterdir()] == ["1203.png"]  # no temporary file left


def test_module_size_is_a_whole_number_of_pixels_near_40_mm() -> None:
    assert printing.module_pixels(37) == 13  # version 5: 481 px = 40.7 mm
    assert printing.module_pixels(33) == 14  # version 4: 462 px = 39.1 mm
    for modules in range(21, 60, 4):  # within half a pixel per module of 40 mm
        error_px = abs(modules * printing.module_pixels(modules) - 40 / 25.4 * 300)
        assert error_px <= modules / 2


def test_without_a_cjk_font_the_pass_has_english_labels_and_still_scans(
    key: Ed25519PrivateKey, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(printing, "find_cjk_font", lambda: None)
    code = code_for(key, 1203)
    assert decoded(render_pass_png(printed(code))) == [code]
    result = print_passes(tmp_path, [printed(code)], community_name="钟楼居民区")
    with Image.open(result.pngs[0]) as image:
        assert decoded(image) == [code]
    text = PdfReader(result.pdfs[0]).pages[0].extract_text()
    assert "1203" in text


@pytest.mark.parametrize("build", ["qr_matrix", "_zxing_matrix", "_segno_matrix"])
def test_matrix_decodes_to_the_text_at_the_version_qrcode_chooses(build: str) -> None:
    """The symbol (zxing-cpp's or segno's public API) reads back verbatim with a real decoder,
    and is as small as the one qrcode's public API makes for the text at level M."""
    make = getattr(printing, build)
    rng = random.Random(5)
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
    for length in [1, 7, 40, 110, 110, 110, 180, 300]:
        text = "MW:" + "".join(rng.choice(alphabet) for _ in range(length))
        matrix = make(text)
        qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=0)
        qr.add_data(QRData(text.encode(), mode=MODE_ALPHA_NUM))
        qr.make(fit=True)
        assert len(matrix) == len(qr.get_matrix())
        dark = np.pad(np.array(matrix, dtype=bool), 4)
        pixels = np.where(dark, 0, 255).astype(np.uint8).repeat(6, 0).repeat(6, 1)
        assert decoded(Image.fromarray(pixels)) == [text]


def test_a_real_pass_is_version_5(key: Ed25519PrivateKey) -> None:
    for household in (1, 1203, 65535):
        assert len(qr_matrix(code_for(key, household))) == 37


def test_text_that_is_not_qr_alphanumeric_is_refused() -> None:
    with pytest.raises(ValueError, match="alphanumeric"):
        qr_matrix("MW:abc")


# --- PDF and the whole job -----------------------------------------------------------------------


def group_of(group: str, count: int, first: int) -> list[Household]:
    return [
        Household(first + i, str(10 + i // 4), "1", f"{i % 4 + 1}01", group, 2)
        for i in range(count)
    ]


def test_print_passes_writes_a_png_each_and_a_pdf_per_group(
    key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    households = group_of("1", 10, 1001) + group_of("2", 3, 2001) + group_of("东区", 1, 3001)
    passes = [printed(code_for(key, h.number), h) for h in households]
    out = tmp_path / "passes"
    result = print_passes(out, passes, community_name="钟楼居民区")

    assert [p.name for p in result.pngs] == [f"{h.number}.png" for h in households]
    assert [p.name for p in result.pdfs] == ["group-1.pdf", "group-2.pdf", "group-东区.pdf"]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [p.name for p in result.pngs] + [p.name for p in result.pdfs]
    )
    pages = {p.name: PdfReader(p).pages for p in result.pdfs}
    assert {name: len(ps) for name, ps in pages.items()} == {
        "group-1.pdf": 2,
        "group-2.pdf": 1,
        "group-东区.pdf": 1,
    }
    text = "\n".join(page.extract_text() for page in pages["group-1.pdf"])
    for h in households[:10]:
        assert f"户号 {h.number}" in text
    assert "钟楼居民区 第1楼组 出入证" in text
    assert "page 2 of 2" in text
    assert "2001" not in text
    second = pages["group-2.pdf"][0].extract_text()
    assert all(str(n) in second for n in (2001, 2002, 2003))
    for png, p in zip(result.pngs, passes, strict=True):
        with Image.open(png) as image:
            assert decoded(image) == [p.code]


def test_group_pdf_on_its_own(key: Ed25519PrivateKey, tmp_path: Path) -> None:
    passes = [printed(code_for(key, h.number), h) for h in group_of("7", 8, 7001)]
    path = write_group_pdf(tmp_path / "g.pdf", passes, title="钟楼居民区 第7楼组")
    reader = PdfReader(path)
    assert len(reader.pages) == 1
    assert reader.metadata is not None and reader.metadata.title == "钟楼居民区 第7楼组"
    assert all(str(n) in reader.pages[0].extract_text() for n in range(7001, 7009))
    with pytest.raises(ValueError):
        write_group_pdf(tmp_path / "none.pdf", [], title="x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.pdf"]


def test_long_names_are_fitted_to_the_card(key: Ed25519PrivateKey) -> None:
    long = Household(65535, "3000", "12", "2808", "a-very-long-group-name", 3)
    p = PrintedPass(
        long, 255, code_for(key, 65535), UNTIL, "一个名字非常非常非常长的居民区第二小区"
    )
    image = render_pass_png(p)
    assert decoded(image) == [p.code]
