"""Every word a person reads about a reason code or an anomaly, in Chinese and English, from
this one module.

`REASON_WORDS` is the short label of each reason code (logs, registers, dialogs); `REFUSAL_TEXTS`
the default sentence of a refusal whose words do not depend on the pass or the household;
`ANOMALY_WORDS` names each anomaly kind the sync protocol emits (and only those).
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
    # --- issue 10 ---
    "moved_out": Text("已迁出", "moved out"),
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
    # Payment, web and Wi-Fi codes get shown by mistake: calm amber, not an alarm.
    "not_a_pass": (
        "amber",
        Text(
            "这个二维码不是通行证(可能是付款码或网址):请出示门卫通行证",
            "This QR code is not a gate pass (a payment or web code?): ask for the pass",
        ),
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


# The anomaly kinds of the sync protocol (`menwei.sync.protocol.AnomalyKind`), exactly.
ANOMALY_WORDS: dict[str, Text] = {
    "double_exit": Text("重复外出", "double exit"),
    "entry_without_exit": Text("没有外出记录的返回", "entry without an exit"),
    "exit_outside_window": Text("外出时段以外的外出", "exit outside the release window"),
    "revoked_pass_used": Text("使用了已作废的通行证", "revoked pass used"),
    "overdue_return": Text("超时返回", "overdue return"),
    "seq_reuse": Text("序号重复(门岗数据库被还原)", "sequence reuse (gate restored from a copy)"),
    "chain_break": Text("日志链断裂", "broken hash chain"),
    "clock_suspect": Text("门岗时钟可疑", "suspect gate clock"),
    "cloned_gate": Text("门岗被复制(两份数据同时在用)", "cloned gate (two copies in use)"),
}


def anomaly_words(kind: str) -> Text:
    """The name of an anomaly kind (its code, in words, when it has none)."""
    return ANOMALY_WORDS.get(kind, Text(kind, kind.replace("_", " ")))
