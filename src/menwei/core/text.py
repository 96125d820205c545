"""Bilingual text: every user-facing string of the core comes in Chinese and English."""

from __future__ import annotations

from dataclasses import dataclass

LANGS = ("zh", "en")


@dataclass(frozen=True)
class Text:
    zh: str
    en: str

    def get(self, lang: str) -> str:
        return self.en if lang == "en" else self.zh

    def __add__(self, other: Text) -> Text:
        return Text(self.zh + other.zh, self.en + other.en)

    def as_dict(self) -> dict[str, str]:
        return {"zh": self.zh, "en": self.en}


def join(parts: list[Text], zh_sep: str = ",", en_sep: str = "; ") -> Text:
    return Text(zh_sep.join(p.zh for p in parts), en_sep.join(p.en for p in parts))


def duration(minutes: int) -> Text:
    """'23分钟' / '23 min'; '1小时5分钟' / '1 h 5 min'."""
    minutes = max(0, minutes)
    h, m = divmod(minutes, 60)
    if h and m:
        return Text(f"{h}小时{m}分钟", f"{h} h {m} min")
    if h:
        return Text(f"{h}小时", f"{h} h")
    return Text(f"{m}分钟", f"{m} min")


def group_label(group: str) -> Text:
    """A building group as the roster writes it: '3' -> '第3楼组' / 'group 3'; '第3楼组' stays
    '第3楼组' / 'group 3'; 'A区1组' stays 'A区1组' in both languages."""
    from menwei.core.names import group_key

    if group.isdigit():
        return Text(f"第{group}楼组", f"group {group}")
    key = group_key(group)
    return Text(group, f"group {key}" if key.isascii() and key != group.lower() else group)


CATEGORY_NAMES: dict[str, Text] = {
    "normal": Text("普通", "normal"),
    "returning_worker": Text("返岗人员", "returning workers"),
    "elderly_alone": Text("独居老人", "elderly living alone"),
    "medical": Text("就医需求", "medical needs"),
    # --- issue 10 ---
    "disabled": Text("残疾人", "people with disabilities"),
}


def category_label(category: str) -> Text:
    return CATEGORY_NAMES.get(category, Text(category, category))
