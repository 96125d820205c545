from __future__ import annotations

from datetime import date

import pytest

from menwei.core import base45, keys
from menwei.core.passes import PASS_LEN, ParsedPass, ParseFailure, PassData, parse, sign


def test_base45_rfc9285_vectors() -> None:
    assert base45.encode(b"AB") == "BB8"
    assert base45.encode(b"Hello!!") == "%69 VD92EX0"
    assert base45.encode(b"base-45") == "UJCLQE7W581"
    assert base45.decode("QED8WEX0") == b"ietf!"
    for bad in ("GGW", ":::", "A", "abc"):
        with pytest.raises(ValueError):
            base45.decode(bad)


def test_sign_and_parse_round_trip() -> None:
    key = keys.generate()
    data = PassData(kid=0, community=42, household=1203, serial=2, valid_until=date(2027, 1, 31))
    code = sign(data, key)
    assert code.startswith("MW:")
    assert len(code) == 3 + 110  # 73 bytes -> 110 base45 characters
    parsed = parse(code)
    assert isinstance(parsed, ParsedPass)
    assert parsed.data == data
    assert parsed.verify(key.public_key())
    assert not parsed.verify(keys.generate().public_key())


def test_a_space_in_the_code_is_kept() -> None:
    key = keys.generate()
    for household in range(1, 400):
        code = sign(PassData(0, 42, household, 1, date(2027, 1, 1)), key)
        if " " in code:
            parsed = parse(code)
            assert isinstance(parsed, ParsedPass)
            assert parsed.data.household == household
            assert parse(code.strip()) == parsed or not code.endswith(" ")
            return
    pytest.fail("no code with a space among 400 households")


@pytest.mark.parametrize(
    ("text", "failure"),
    [
        ("", ParseFailure.NOT_A_PASS),
        ("https://qr.alipay.com/fkx12345", ParseFailure.NOT_A_PASS),
        ("mw:abc", ParseFailure.NOT_A_PASS),
        ("MW:", ParseFailure.MALFORMED),
        ("MW:!!!", ParseFailure.MALFORMED),
        ("MW:中文", ParseFailure.MALFORMED),
        ("MW:" + base45.encode(b"\x10" * 10), ParseFailure.MALFORMED),
        ("MW:" + base45.encode(b"\x20" + b"\x00" * (PASS_LEN - 1)), ParseFailure.MALFORMED),
        ("MW:" + "A" * 100_000, ParseFailure.MALFORMED),
    ],
)
def test_parse_refuses(text: str, failure: ParseFailure) -> None:
    assert parse(text) == failure


def test_fields_out_of_range_are_refused() -> None:
    key = keys.generate()
    with pytest.raises(ValueError):
        sign(PassData(0, 42, 0, 1, date(2027, 1, 1)), key)
    with pytest.raises(ValueError):
        sign(PassData(16, 42, 1, 1, date(2027, 1, 1)), key)
    with pytest.raises(ValueError):
        sign(PassData(0, 42, 1, 256, date(2027, 1, 1)), key)
