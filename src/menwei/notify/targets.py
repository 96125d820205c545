"""Notification targets: apprise URLs for the community's chat and for each building group's.

menwei has no code for any chat platform: a target is whatever URL apprise understands
(`tgram://`, `matrix://`, `wecombot://`, `dingtalk://`, `json://`...). A target without a group
receives the community's messages (alerts and the community summary); a group's target receives
that group's alerts and its daily summary.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import unquote

from menwei.core.clock import iso
from menwei.core.errors import MenweiError
from menwei.core.store import Store
from menwei.notify.outbox import Target, target_from_row

LANGS = ("zh", "en")
# Settings in the `meta` table (the policy file is for gate decisions only).
SUMMARY_AT_KEY = "notify_summary_at"
ANOMALIES_KEY = "notify_anomalies"
# Whether registering a returning resident calls the building group's steward (on by default).
ESCORT_KEY = "notify_escort"


class TargetError(MenweiError):
    """A notification target was refused or not found."""


def check_url(url: str) -> str:
    """The URL as apprise reads it, with secrets masked; raises TargetError if unusable."""
    import apprise

    plugin: Any = apprise.Apprise.instantiate(url.strip())
    if plugin is None:
        raise TargetError(
            f"apprise does not understand {url!r}: check the scheme and the parts of the URL "
            "(see https://github.com/caronc/apprise/wiki, e.g. tgram://TOKEN/CHAT_ID)."
        )
    return _readable(str(plugin.url(privacy=True)), url)


def _readable(private: str, original: str) -> str:
    """apprise's masked URL, keeping only the query arguments the user wrote (apprise spells out
    every default), and hiding what apprise does not: custom headers (`+X-Token=...`) and extra
    arguments (`-key=...`) of webhook URLs often carry secrets."""
    base, sep, query = private.partition("?")
    if not sep:
        return private
    written = {
        unquote(item.partition("=")[0]).lower()
        for item in original.partition("?")[2].split("&")
        if item
    }
    parts = []
    for item in query.split("&"):
        name, eq, value = item.partition("=")
        name = unquote(name)
        if name.lower() not in written:
            continue
        if eq and name.startswith(("+", "-")):
            value = "****"
        parts.append(f"{name}={value}" if eq else name)
    return base + ("?" + "&".join(parts) if parts else "")


def reachable(url: str) -> tuple[str, list[str]]:
    """Ask a chat target's server, where menwei can, whether it will reach a reader: the URL to
    keep (a Matrix room id of room version 12 gets `hsreq=no`) and the problems found
    (`code: detail`, words in `messages.failure_words`). Other targets are not asked."""
    from menwei.notify import matrix

    url = url.strip()
    if not matrix.is_matrix(url):
        return url, []
    url = matrix.with_hsreq_off(url)
    return url, [str(p) for p in matrix.probe(url).problems]


# A target with one of these problems would swallow messages: it is refused (an unreachable
# server may only be down for now, so it is added with a warning).
REFUSED_PROBLEMS = ("login_refused", "unknown_room", "cannot_join", "no_room")


def masked(url: str) -> str:
    """A target's URL fit to print: passwords and tokens replaced by apprise's own masking."""
    try:
        return check_url(url)
    except TargetError:
        return url.split("://", 1)[0] + "://…"


def add_target(
    store: Store, url: str, *, group: str | None, lang: str, now: datetime
) -> tuple[Target, bool]:
    """Add a target (True) or return the one already there with that URL and group (False)."""
    url = url.strip()
    check_url(url)
    if lang not in LANGS:
        raise TargetError(f"The language must be one of {', '.join(LANGS)}.")
    group = group.strip() if group else None
    with store.write() as db:
        existing = next(
            iter(
                db.query(
                    "select * from notify_targets where url = ? and building_group is ?",
                    [url, group],
                )
            ),
            None,
        )
        if existing is not None:
            return target_from_row(existing), False
        cursor = db.execute(
            "insert into notify_targets (url, building_group, lang, created_at)"
            " values (?, ?, ?, ?)",
            [url, group, lang, iso(now)],
        )
        target_id = cursor.lastrowid
    row = store.one("select * from notify_targets where id = ?", [target_id])
    assert row is not None
    return target_from_row(row), True


def list_targets(store: Store) -> list[Target]:
    return [
        target_from_row(r)
        for r in store.query(
            "select * from notify_targets order by building_group is not null, building_group, id"
        )
    ]


def find_target(store: Store, which: str) -> Target:
    """A target by its number (from `notify list`) or by its exact URL."""
    rows = (
        store.query("select * from notify_targets where id = ?", [int(which)])
        if which.isdigit()
        else store.query("select * from notify_targets where url = ?", [which.strip()])
    )
    if not rows:
        raise TargetError(f"No notification target {which!r}: see `menwei notify list`.")
    if len(rows) > 1:
        raise TargetError(
            f"{len(rows)} targets have that URL (one per group): give its number from "
            "`menwei notify list`."
        )
    return target_from_row(rows[0])


def remove_target(store: Store, which: str) -> Target:
    target = find_target(store, which)
    with store.write() as db:
        db.execute("delete from notify_targets where id = ?", [target.id])
    return target


def known_groups(store: Store) -> set[str]:
    return {r["g"] for r in store.query("select distinct building_group as g from households")}


def settings(store: Store) -> dict[str, Any]:
    return {
        "summary_at": store.meta(SUMMARY_AT_KEY) or None,
        "anomalies": (store.meta(ANOMALIES_KEY) or "on") == "on",
        "escort": (store.meta(ESCORT_KEY) or "on") == "on",
    }
