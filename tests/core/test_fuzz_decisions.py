"""No text the community did not sign ever gets a green, and nothing raises."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from menwei.core import base45, keys
from menwei.core.passes import PassData, sign
from tests.conftest import Community

SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture
def genuine(community: Community) -> set[str]:
    return set(community.codes.values())


@SETTINGS
@given(text=st.text(max_size=300))
def test_random_text(community: Community, genuine: set[str], text: str) -> None:
    d = community.gate.decide(text, operator="fuzz", dry_run=True)
    assert d.verdict != "green" or text.upper() in genuine  # read as the scanner sent it, any case


@SETTINGS
@given(body=st.binary(min_size=0, max_size=90))
def test_random_base45_payloads(community: Community, body: bytes) -> None:
    d = community.gate.decide("MW:" + base45.encode(body), operator="fuzz", dry_run=True)
    assert d.verdict == "red"


@SETTINGS
@given(data=st.data())
def test_mutated_genuine_passes(
    community: Community, genuine: set[str], data: st.DataObject
) -> None:
    code = data.draw(st.sampled_from(sorted(genuine)))
    raw = bytearray(base45.decode(code[3:]))
    kind = data.draw(st.sampled_from(["flip", "truncate", "extend", "text"]))
    if kind == "flip":
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] ^= data.draw(st.integers(1, 255))
        text = "MW:" + base45.encode(bytes(raw))
    elif kind == "truncate":
        text = code[: data.draw(st.integers(0, len(code) - 1))]
    elif kind == "extend":
        text = code + data.draw(st.text(min_size=1, max_size=5))
    else:
        i = data.draw(st.integers(0, len(code) - 1))
        text = code[:i] + data.draw(st.characters()) + code[i + 1 :]
    d = community.gate.decide(text, operator="fuzz", dry_run=True)
    assert d.verdict != "green" or text.upper() in genuine  # read as the scanner sent it, any case


@SETTINGS
@given(
    household=st.integers(1, 65535),
    serial=st.integers(1, 255),
    community_id=st.integers(1, 65535),
)
def test_passes_signed_by_someone_else(
    community: Community, household: int, serial: int, community_id: int
) -> None:
    code = sign(PassData(0, community_id, household, serial, date(2030, 1, 1)), keys.generate())
    d = community.gate.decide(code, operator="fuzz", dry_run=True)
    assert d.verdict == "red"
    assert d.reason in {"forged", "foreign_community"}
