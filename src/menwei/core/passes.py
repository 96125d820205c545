"""The printed pass, format MW1: `MW:` + base45 of 9 signed bytes and an Ed25519 signature.

| offset | bytes | field                                                   |
|--------|-------|---------------------------------------------------------|
| 0      | 1     | high nibble format version (1), low nibble key id 0-15  |
| 1      | 2     | community id, uint16 big-endian                         |
| 3      | 2     | household number, uint16 big-endian (1-65535)           |
| 5      | 1     | serial, 1-255, +1 on every reissue                      |
| 6      | 2     | valid until: days since 2000-01-01, last valid day      |
| 8      | 1     | flags (0)                                               |
| 9      | 64    | Ed25519 over b"menwei/pass/v1\\x00" + bytes[0:9]         |
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import date, timedelta
from enum import Enum

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from menwei.core import base45

PREFIX = "MW:"
VERSION = 1
BODY_LEN = 9
SIG_LEN = 64
PASS_LEN = BODY_LEN + SIG_LEN
CONTEXT = b"menwei/pass/v1\x00"
EPOCH = date(2000, 1, 1)
# A real pass is 113 characters; anything far longer is refused before decoding.
MAX_TEXT = 256


class ParseFailure(Enum):
    NOT_A_PASS = "not_a_pass"
    MALFORMED = "malformed"


@dataclass(frozen=True)
class PassData:
    """The signed fields of a pass."""

    kid: int
    community: int
    household: int
    serial: int
    valid_until: date
    flags: int = 0

    def body(self) -> bytes:
        days = (self.valid_until - EPOCH).days
        return struct.pack(
            ">BHHBHB",
            (VERSION << 4) | self.kid,
            self.community,
            self.household,
            self.serial,
            days,
            self.flags,
        )


@dataclass(frozen=True)
class ParsedPass:
    data: PassData
    signature: bytes

    def verify(self, key: Ed25519PublicKey) -> bool:
        try:
            key.verify(self.signature, CONTEXT + self.data.body())
        except InvalidSignature:
            return False
        return True


def validate_fields(data: PassData) -> None:
    """Raise ValueError when a field does not fit the format."""
    if not 0 <= data.kid <= 15:
        raise ValueError("key id must be 0-15")
    if not 1 <= data.community <= 0xFFFF:
        raise ValueError("community id must be 1-65535")
    if not 1 <= data.household <= 0xFFFF:
        raise ValueError("household number must be 1-65535")
    if not 1 <= data.serial <= 0xFF:
        raise ValueError("serial must be 1-255")
    if not 0 <= (data.valid_until - EPOCH).days <= 0xFFFF:
        raise ValueError("valid-until date out of range")
    if not 0 <= data.flags <= 0xFF:
        raise ValueError("flags must be 0-255")


def sign(data: PassData, key: Ed25519PrivateKey) -> str:
    """The QR text of a pass: `MW:` + base45(body + signature)."""
    validate_fields(data)
    body = data.body()
    return PREFIX + base45.encode(body + key.sign(CONTEXT + body))


def parse(text: str) -> ParsedPass | ParseFailure:
    """Decode the QR text verbatim (never strip it: a space is a legal base45 character)."""
    if not text.startswith(PREFIX):
        return ParseFailure.NOT_A_PASS
    if len(text) > MAX_TEXT:
        return ParseFailure.MALFORMED
    try:
        raw = base45.decode(text[len(PREFIX) :])
    except ValueError:
        return ParseFailure.MALFORMED
    if len(raw) != PASS_LEN or raw[0] >> 4 != VERSION:
        return ParseFailure.MALFORMED
    ver_kid, community, household, serial, days, flags = struct.unpack(">BHHBHB", raw[:BODY_LEN])
    data = PassData(
        kid=ver_kid & 0x0F,
        community=community,
        household=household,
        serial=serial,
        valid_until=EPOCH + timedelta(days=days),
        flags=flags,
    )
    return ParsedPass(data=data, signature=raw[BODY_LEN:])
