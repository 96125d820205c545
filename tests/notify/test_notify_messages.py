"""How a message reads in a chat, and how a failure is named: pure functions, no network."""

from __future__ import annotations

from datetime import datetime

import pytest

from menwei.core.model import Household
from menwei.notify.matrix import with_hsreq_off
from menwei.notify.messages import compose, escort_call, failure_words
from menwei.notify.sender import cause, renders_rich, transaction_id


def test_plain_text_has_the_headline_first_and_no_markup() -> None:
    text = compose(
        "伪造通行证", "东门 · 证上户号 1203 · 11-24 10:20\n有人出示*伪造*通行证。", rich=False
    )
    assert text == "伪造通行证 · 东门 · 证上户号 1203 · 11-24 10:20\n有人出示*伪造*通行证。"


def test_rich_text_is_bold_first_line_html_escaped_and_never_a_heading() -> None:
    text = compose("特批通行", "东门 · <3栋>\n理由:就医 & 发烧\n值班:李四", rich=True)
    assert text == "<b>特批通行</b> · 东门 · &lt;3栋&gt;<br/>理由:就医 &amp; 发烧<br/>值班:李四"
    assert "#" not in text


def test_failures_are_named_in_both_languages() -> None:
    assert failure_words("cannot_connect").zh == "连不上聊天服务器"
    words = failure_words("unknown_room: #gaet:localhost")
    assert words.zh == "聊天室不存在(房间名写错?):#gaet:localhost"
    assert words.en == "no such room (is the room name misspelt?): #gaet:localhost"
    assert failure_words("connection refused").en == "connection refused"  # as it is


@pytest.mark.parametrize(
    ("logged", "code"),
    [
        (
            ["A Connection error occurred while registering with Matrix server."] * 2,
            "cannot_connect",
        ),
        (
            ["Failed to handshake with Matrix server: Unauthorized - Invalid Token., error=403."],
            "login_refused",
        ),
        (
            [
                "Failed to handshake with Matrix server: Verification Failed., error=401.",
                "Could not join Matrix room alias #gate:127.0.0.1 (error=401).",
            ],
            "login_refused",
        ),
        (
            [
                "Failed to handshake with Matrix server: Page not found., error=404.",
                "Could not join Matrix room !abc.",
            ],
            "cannot_join",
        ),
        (["Something else happened."], "not_accepted: Something else happened."),
    ],
)
def test_the_cause_behind_apprises_warnings(logged: list[str], code: str) -> None:
    assert cause(logged) == code


def test_room_ids_without_a_server_get_hsreq_off() -> None:
    room = "matrix://tok@127.0.0.1:8008/!4TPkMtt1pdWxZZlGUF-2e27UHIfFMWSmAlgDBbgX3Mg"
    assert with_hsreq_off(room) == room + "?hsreq=no"
    assert with_hsreq_off(room + "?format=html") == room + "?format=html&hsreq=no"
    assert with_hsreq_off(room + "?hsreq=yes") == room + "?hsreq=yes"  # the user said so
    assert with_hsreq_off("matrix://tok@h/!abc:h") == "matrix://tok@h/!abc:h"
    assert with_hsreq_off("matrix://tok@h/#gate") == "matrix://tok@h/#gate"
    assert with_hsreq_off("json://127.0.0.1/x") == "json://127.0.0.1/x"


def test_which_targets_get_formatted_text() -> None:
    import apprise

    def plugin(url: str) -> object:
        return apprise.Apprise.instantiate(url)

    assert renders_rich(plugin("matrix://tok@127.0.0.1/#gate"))
    assert renders_rich(plugin("tgram://123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/-100123"))
    assert not renders_rich(plugin("json://127.0.0.1:9/hook"))


def test_a_transaction_id_is_stable_per_message_and_target() -> None:
    assert transaction_id("forged:ab:2026-11-24", 1) == transaction_id("forged:ab:2026-11-24", 1)
    assert transaction_id("forged:ab:2026-11-24", 1) != transaction_id("forged:ab:2026-11-24", 2)
    assert transaction_id("forged:ab:2026-11-24", 1) != transaction_id("forged:cd:2026-11-24", 1)


def test_the_escort_call_names_gate_household_people_and_steward() -> None:
    home = Household(1203, "3", "2", "301", "3", 3, "normal")
    m = escort_call(
        key="escort:e1",
        at=datetime(2026, 11, 24, 15, 40),
        gate="东门",
        operator="张三",
        household=home,
        headcount=1,
        note=None,
        event_id="e1",
    )
    assert m.audience == "group" and m.group == "3" and m.topic == "escort"
    assert compose(m.title.zh, m.body.zh, rich=False) == (
        "请到门口接回 · 东门 · 3栋2单元301室(户号 1203) · 11-24 15:40\n"
        "东门:3栋2单元301室 返回 1 人已登记,请第3楼组红色管家到门口接回。值班:张三。"
    )
