"""Every word a person reads about a reason code, in Chinese and English, from this one module.

`REASON_WORDS` is the short label of each reason code (logs, registers, dialogs); `REFUSAL_TEXTS`
the default sentence of a refusal whose words do not depend on the pass or the household.
"""

from __future__ import annotations

from menwei.core.model import Verdict
from menwei.core.text import Text

REASON_WORDS: dict[str, Text] = {
    "not_a_pass": Text("不是通行证", "not a pass"),
    "malformed": Text("无法识别", "unreadable"),
    "foreign_community": Text("外小区的证", "another community's pass"),
    "unknown_key": Text("密钥未知", "unknown key"),
    "forged": Text("伪造", "forged"),
    "expired": Text("过期", "expired"),
    "revoked": Text("已作废", "revoked"),
    "unknown_household": Text("不在花名册", "not in the roster"),
    "already_out": Text("已外出未回", "already out"),
    "already_in": Text("已在小区内", "already in"),
    "sealed": Text("封控/管控", "sealed"),
    "outside_window": Text("不在外出时段", "outside the release window"),
    "quota_exceeded": Text("超出外出次数", "quota used up"),
    "ok": Text("通过", "ok"),
    "overdue": Text("超时返回", "overdue return"),
}

REFUSAL_TEXTS: dict[str, tuple[Verdict, Text]] = {
    "not_a_pass": (
        "red",
        Text("这不是本小区的通行证二维码", "This QR code is not a compound pass"),
    ),
    "malformed": (
        "red",
        Text("通行证无法识别或版本不支持", "Unreadable pass or unsupported pass version"),
    ),
    "unknown_key": (
        "red",
        Text(
            "签发密钥未知:不是本居委会签发的证(或本机资料过旧)",
            "Unknown signing key: not issued by this committee (or this gate's data is outdated)",
        ),
    ),
    "forged": (
        "red",
        Text(
            "伪造或被篡改的通行证:请留下证件,联系居委会",
            "Forged or altered pass: keep the card and call the committee",
        ),
    ),
}


def reason_words(reason: str) -> Text:
    """The short label of a reason code (the code itself when it has none)."""
    return REASON_WORDS.get(reason, Text(reason, reason))
