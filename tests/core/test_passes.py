from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

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


# --- every field's range, at its edges, and every refusal's words ---------------------------------

EPOCH = date(2000, 1, 1)
GOOD = dict(kid=0, community=42, household=1203, serial=1, valid_until=date(2027, 1, 1), flags=0)
EDGES: list[tuple[str, object, object, str]] = [
    # field, lowest allowed, highest allowed, the refusal
    ("kid", 0, 15, "key id must be 0-15"),
    ("community", 1, 0xFFFF, "community id must be 1-65535"),
    ("household", 1, 0xFFFF, "household number must be 1-65535"),
    ("serial", 1, 0xFF, "serial must be 1-255"),
    ("flags", 0, 0xFF, "flags must be 0-255"),
]


@pytest.mark.parametrize(("name", "low", "high", "refusal"), EDGES)
def test_each_field_round_trips_at_its_edges_and_is_refused_past_them(
    name: str, low: int, high: int, refusal: str
) -> None:
    key = keys.generate()
    for value in (low, high):
        data = PassData(**{**GOOD, name: value})  # type: ignore[arg-type]
        parsed = parse(sign(data, key))
        assert isinstance(parsed, ParsedPass) and parsed.data == data
        assert parsed.verify(key.public_key())
    for value in (low - 1, high + 1):
        with pytest.raises(ValueError) as err:
            sign(PassData(**{**GOOD, name: value}), key)  # type: ignore[arg-type]
        assert str(err.value) == refusal


def test_valid_until_edges() -> None:
    key = keys.generate()
    for days in (0, 0xFFFF):
        data = PassData(**{**GOOD, "valid_until": EPOCH + timedelta(days=days)})  # type: ignore[arg-type]
        parsed = parse(sign(data, key))
        assert isinstance(parsed, ParsedPass) and parsed.data == data
    for days in (-1, 0x10000):
        with pytest.raises(ValueError) as err:
            sign(PassData(**{**GOOD, "valid_until": EPOCH + timedelta(days=days)}), key)  # type: ignore[arg-type]
        assert str(err.value) == "valid-until date out of range"


def test_the_body_layout() -> None:
    data = PassData(
        kid=3,
        community=0xABCD,
        household=0x1234,
        serial=0xFE,
        valid_until=EPOCH + timedelta(days=0x0102),
        flags=0x80,
    )
    assert data.body() == bytes([0x13, 0xAB, 0xCD, 0x12, 0x34, 0xFE, 0x01, 0x02, 0x80])


def test_a_signature_covers_the_context_and_every_byte() -> None:
    key = keys.generate()
    code = sign(PassData(**GOOD), key)  # type: ignore[arg-type]
    raw = base45.decode(code[3:])
    assert len(raw) == PASS_LEN
    key.public_key().verify(raw[9:], b"menwei/pass/v1\x00" + raw[:9])
    for i in range(9):
        changed = bytearray(raw)
        changed[i] ^= 0x01
        parsed = parse("MW:" + base45.encode(bytes(changed)))
        assert not isinstance(parsed, ParsedPass) or not parsed.verify(key.public_key()), i


def test_length_and_version_guards() -> None:
    key = keys.generate()
    raw = base45.decode(sign(PassData(**GOOD), key)[3:])  # type: ignore[arg-type]
    for wrong in (raw[:-1], raw + b"\x00", raw[:9], b""):
        assert parse("MW:" + base45.encode(wrong)) == ParseFailure.MALFORMED
    for version in (0, 2, 15):
        other = bytes([(version << 4) | (raw[0] & 0x0F)]) + raw[1:]
        assert parse("MW:" + base45.encode(other)) == ParseFailure.MALFORMED
    # The text-length guard comes before decoding: an over-long text is refused as it is.
    padded = sign(PassData(**GOOD), key) + "0" * 143  # type: ignore[arg-type]
    assert len(padded) == 256 and parse(padded) == ParseFailure.MALFORMED
    assert parse("MW:" + "00" * 200) == ParseFailure.MALFORMED
    assert parse("MW:" + "000" * 100) == ParseFailure.MALFORMED
    assert parse("MW:" + "000" * 85) == ParseFailure.MALFORMED  # 258 characters


def test_parse_reads_every_field() -> None:
    key = keys.generate()
    data = PassData(
        kid=15, community=65535, household=40000, serial=200, valid_until=date(2030, 6, 1), flags=7
    )
    parsed = parse(sign(data, key))
    assert isinstance(parsed, ParsedPass)
    assert (parsed.data, len(parsed.signature)) == (data, 64)


def test_base45_edges_and_refusals() -> None:
    assert base45.decode("FGW") == b"\xff\xff"  # 65535, the largest triple
    assert base45.decode("U5") == b"\xff"  # 255, the largest pair
    assert base45.decode("") == b""
    assert base45.encode(b"") == ""
    assert base45.encode(b"\xff\xff") == "FGW"
    assert base45.encode(b"\xff") == "U5"
    cases = {
        "GGW": "base45 triple out of range",
        "V5": "base45 pair out of range",
        "AAAA": "base45 text has an impossible length",
        "A": "base45 text has an impossible length",
        "ab": "not a base45 character: 'a'",
    }
    for text, words in cases.items():
        with pytest.raises(ValueError) as err:
            base45.decode(text)
        assert str(err.value) == words, text


@given(st.binary(max_size=80))
def test_base45_round_trip(data: bytes) -> None:
    text = base45.encode(data)
    assert len(text) == len(data) // 2 * 3 + len(data) % 2 * 2
    assert set(text) <= set(base45.ALPHABET)
    assert base45.decode(text) == data


def test_an_over_long_text_is_refused_before_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    decoded: list[int] = []
    real = base45.decode

    def counting(text: str) -> bytes:
        decoded.append(len(text))
        return real(text)

    monkeypatch.setattr(base45, "decode", counting)
    assert parse("MW:" + "0" * 254) == ParseFailure.MALFORMED  # 257 characters: not decoded
    assert parse("MW:" + "0" * 100_000) == ParseFailure.MALFORMED
    assert decoded == []
    assert parse("MW:" + "0" * 253) == ParseFailure.MALFORMED  # 256: the longest decoded
    assert decoded == [253]
