"""Printed passes to hold up to the generated camera: the one place these tests make them."""

from __future__ import annotations

import functools
from datetime import date

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from menwei.core.model import Household
from menwei.core.passes import PassData, sign
from menwei.output.printing import PrintedPass
from menwei.scanner import synth


@functools.cache
def pass_card(number: int) -> synth.Card:
    """Household `number`'s printed pass, signed with a fixed key (Ed25519 signs
    deterministically, so every run sees the same symbol)."""
    key = Ed25519PrivateKey.from_private_bytes(bytes([1]) * 32)
    code = sign(
        PassData(kid=0, community=42, household=number, serial=1, valid_until=date(2027, 5, 1)),
        key,
    )
    household = Household(number, "3", "2", str(300 + number % 100), "3", 3)
    return synth.printed_card(PrintedPass(household, 1, code, date(2027, 5, 1), "测试小区"))
