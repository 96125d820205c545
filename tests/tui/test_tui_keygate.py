"""Telling a USB scanner's burst from a volunteer's keys, whatever has focus."""

from __future__ import annotations

from menwei.gateapp.keygate import KeyGate, Outcome

CODE = "MW:1129E5Z.S$-4H50"


def feed_burst(
    gate: KeyGate[str], text: str, *, start: float, gap: float, field: bool
) -> list[Outcome[str]]:
    outcomes = []
    at = start
    for c in text:
        outcomes.append(gate.key(c, char=c, enter=False, at=at, text_field=field))
        at += gap
    outcomes.append(gate.key("enter", char=None, enter=True, at=at, text_field=field))
    return outcomes


def test_a_burst_on_the_scan_screen_is_a_scan_and_no_key_acts() -> None:
    gate: KeyGate[str] = KeyGate()
    outcomes = feed_burst(gate, CODE, start=10.0, gap=0.002, field=False)
    assert all(not o.forward and not o.release for o in outcomes[:-1])
    assert outcomes[-1].scan == CODE and not outcomes[-1].forward
    assert not gate.holding


def test_a_lone_digit_is_handed_on_after_the_hold() -> None:
    gate: KeyGate[str] = KeyGate()
    first = gate.key("3", char="3", enter=False, at=1.0, text_field=False)
    assert not first.forward and gate.holding
    assert gate.flush() == ["3"]
    # ...or when the next key comes late.
    gate.key("2", char="2", enter=False, at=2.0, text_field=False)
    later = gate.key("f2", char=None, enter=False, at=2.5, text_field=False)
    assert later.release == ["2"] and later.forward


def test_a_broken_burst_never_acts_as_shortcuts() -> None:
    gate: KeyGate[str] = KeyGate()
    for i, c in enumerate("MW:1234"):
        gate.key(c, char=c, enter=False, at=1.0 + i * 0.002, text_field=False)
    assert gate.flush() == []  # several fast keys and no Enter: dropped


def test_typing_in_a_field_is_not_delayed_but_a_pass_is_taken_out() -> None:
    gate: KeyGate[str] = KeyGate()
    typed = gate.key("3", char="3", enter=False, at=1.0, text_field=True)
    assert typed.forward
    outcomes = feed_burst(gate, CODE, start=1.05, gap=0.002, field=True)
    assert all(not o.forward for o in outcomes[:-1])
    assert outcomes[-1].scan == CODE


def test_a_person_typing_m_in_a_field_gets_it_back() -> None:
    gate: KeyGate[str] = KeyGate()
    held = gate.key("M", char="M", enter=False, at=1.0, text_field=True)
    assert not held.forward
    nxt = gate.key("a", char="a", enter=False, at=1.2, text_field=True)
    assert nxt.release == ["M"] and nxt.forward


def test_slow_typing_and_enter_is_a_person() -> None:
    gate: KeyGate[str] = KeyGate()
    outcomes = feed_burst(gate, "1203", start=1.0, gap=0.2, field=True)
    assert outcomes[-1].scan is None and outcomes[-1].forward
    outcomes = feed_burst(gate, "MW:ABCDEF", start=5.0, gap=0.05, field=True)
    assert outcomes[-1].scan is None
