"""Who may see a call (DESIGN.md, "Who sees what").

RingSense lets the service user read every licensed user's calls; the bot must not widen
that. A call is shown only to its owner, the account's participants on it, and the
administrators named in the configuration. Everyone else gets the same answer whether the
call exists or not.
"""

from __future__ import annotations

from collections.abc import Iterable

from bot.ringsense import CallInsights

NOT_VISIBLE = (
    "I can't show you that call. Either I don't know it, or you were not on it: "
    "I only show a call to its owner, the colleagues who took part, and administrators."
)


def may_see(extension_id: str | None, insights: CallInsights, admins: frozenset[str]) -> bool:
    if not extension_id:
        return False
    return extension_id in admins or extension_id in insights.entitled_extension_ids()


def everyone_may_see(
    member_ids: Iterable[str], calls: Iterable[CallInsights], admins: frozenset[str]
) -> bool:
    """Whether every person in a chat is entitled to every one of these calls."""
    calls = list(calls)
    return all(may_see(member, call, admins) for member in member_ids for call in calls)
