"""Telling a USB scanner's burst of keys from a person typing, by timing alone."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from menwei.scanner.wedge import WedgeDetector, WedgeScan

CODE = "MW:W621E5FSM6*4:00L9QVZ6RAL%K606CC KR3SVD421X3/ZL11MKFTQ "
OTHER = "https://qr.alipay.com/fkx19283"


def type_keys(
    detector: WedgeDetector, text: str, *, gap: float, start: float = 0.0, enter: str = "\r"
) -> tuple[list[WedgeScan], float]:
    """Type `text` then Enter, one key every `gap` seconds; return what came out and the time."""
    out = []
    at = start
    for ch in text:
        assert detector.feed(ch, at) is None
        at += gap
    scan = detector.feed(enter, at)
    if scan is not None:
        out.append(scan)
    return out, at


def test_a_scanner_burst_is_a_code_with_its_spaces() -> None:
    detector = WedgeDetector()
    scans, end = type_keys(detector, CODE, gap=0.004, start=10.0)
    assert [s.text for s in scans] == [CODE]
    assert scans[0].keys == len(CODE)
    assert scans[0].started_at == 10.0
    assert scans[0].ended_at == end


def test_a_person_typing_a_household_number_is_left_alone() -> None:
    detector = WedgeDetector()
    assert type_keys(detector, "1203", gap=0.18)[0] == []
    assert type_keys(detector, "3-2-301", gap=0.12, start=5)[0] == []


def test_a_fast_typist_is_still_a_person() -> None:
    detector = WedgeDetector()
    assert type_keys(detector, "3-2-301 1203", gap=0.06)[0] == []


def test_short_bursts_are_not_codes() -> None:
    # Key repeat or a rolled chord can be fast, but not a code's length.
    detector = WedgeDetector(min_length=6)
    assert type_keys(detector, "11111", gap=0.002)[0] == []


def test_keys_delivered_in_one_chunk_count_as_a_burst() -> None:
    # A terminal may hand over a whole paste or a fast scanner's output at once.
    detector = WedgeDetector()
    assert [s.text for s in type_keys(detector, CODE, gap=0.0, enter="enter")[0]] == [CODE]


def test_a_stall_in_the_event_loop_does_not_split_the_burst() -> None:
    detector = WedgeDetector()
    at = 0.0
    for i, ch in enumerate(CODE):
        detector.feed(ch, at)
        at += 0.09 if i == 40 else 0.003
    scan = detector.feed("\n", at)
    assert scan is not None and scan.text == CODE


def test_a_long_stall_inside_a_fast_burst_is_left_out() -> None:
    # The app was busy for half a second; the scanner's keys queued and then came all at once.
    detector = WedgeDetector()
    at = 0.0
    for i, ch in enumerate(CODE):
        detector.feed(ch, at)
        at += 0.5 if i == 20 else 0.002
    scan = detector.feed("\r", at + 0.6)  # and once more before the Enter
    assert scan is not None and scan.text == CODE


def test_a_pause_after_a_few_slow_keys_is_not_a_stall() -> None:
    detector = WedgeDetector()
    for i, ch in enumerate("3-2"):
        detector.feed(ch, i * 0.08)
    at = 0.16 + 0.5
    for ch in "-301":
        detector.feed(ch, at)
        at += 0.002
    assert detector.feed("\r", at) is None  # "-301" is too short, and "3-2" was a person


def test_keys_typed_just_before_a_pass_are_dropped() -> None:
    # A volunteer's "12" ran straight into the scanner's burst.
    detector = WedgeDetector()
    detector.feed("1", 0.0)
    detector.feed("2", 0.005)
    scans, _ = type_keys(detector, CODE, gap=0.002, start=0.01)
    assert [s.text for s in scans] == [CODE]
    assert scans[0].started_at == 0.01


def test_other_codes_are_kept_whole() -> None:
    detector = WedgeDetector()
    assert [s.text for s in type_keys(detector, OTHER, gap=0.003)[0]] == [OTHER]
    detector = WedgeDetector(prefix=None)
    assert [s.text for s in type_keys(detector, "12" + CODE, gap=0.003)[0]] == ["12" + CODE]


def test_only_the_burst_is_the_code_when_a_person_typed_before_it() -> None:
    detector = WedgeDetector()
    for i, ch in enumerate("12"):
        detector.feed(ch, i * 0.3)
    scans, _ = type_keys(detector, CODE, gap=0.005, start=1.0)
    assert [s.text for s in scans] == [CODE]


def test_an_enter_long_after_the_burst_is_a_person_pressing_it() -> None:
    detector = WedgeDetector()
    for i, ch in enumerate(CODE):
        detector.feed(ch, i * 0.003)
    assert detector.feed("\r", len(CODE) * 0.003 + 1.5) is None


def test_other_keys_break_a_burst() -> None:
    detector = WedgeDetector()
    for i, ch in enumerate(CODE):
        detector.feed(ch, i * 0.003)
    detector.feed("backspace", len(CODE) * 0.003)
    assert detector.pending == 0
    assert detector.feed("\r", len(CODE) * 0.003 + 0.004) is None


def test_an_overlong_burst_is_refused_not_cut() -> None:
    detector = WedgeDetector(max_length=64)
    assert type_keys(detector, "A" * 100, gap=0.002)[0] == []
    # and the detector is clean afterwards
    assert [s.text for s in type_keys(detector, CODE, gap=0.002, start=5.0)[0]] == [CODE]


def test_two_scans_in_a_row() -> None:
    detector = WedgeDetector()
    first, end = type_keys(detector, CODE, gap=0.003)
    second, _ = type_keys(detector, CODE[::-1], gap=0.003, start=end + 0.002)
    assert [s.text for s in first + second] == [CODE, CODE[::-1]]


@given(
    text=st.text(alphabet="0123456789-栋单元室 ", min_size=1, max_size=20),
    gaps=st.lists(st.floats(min_value=0.101, max_value=2.0), min_size=20, max_size=20),
)
def test_no_human_pace_ever_makes_a_code(text: str, gaps: list[float]) -> None:
    detector = WedgeDetector()
    at = 0.0
    for ch, gap in zip(text, gaps, strict=False):
        assert detector.feed(ch, at) is None
        at += gap
    assert detector.feed("\r", at) is None


@given(
    text=st.text(
        alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:", min_size=6, max_size=200
    ),
    gaps=st.lists(st.floats(min_value=0.0, max_value=0.02), min_size=200, max_size=200),
)
def test_any_scanner_pace_gives_the_exact_text(text: str, gaps: list[float]) -> None:
    detector = WedgeDetector()
    at = 100.0
    for ch, gap in zip(text, gaps, strict=False):
        assert detector.feed(ch, at) is None
        at += gap
    scan = detector.feed("\r", at + 0.001)
    assert scan is not None and scan.text == text
