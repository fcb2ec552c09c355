"""Who may see a call (DESIGN.md, "Who sees what").

RingSense lets the service user read every licensed user's calls; the bot must not widen
that. A call belongs to the account whose install or RingSense subscription brought it, and
is shown only to people of that account: its owner, the account's participants on it, and
that account's administrators named in the configuration. Everyone else gets the same answer
whether the call exists or not.

A person is an `Identity`, the pair (account, extension), never an extension id alone: the
account is the one of the install an event arrived through, confirmed with RingCentral for
that person. When it cannot be established, the person may see nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from bot.ringsense import CallInsights

NOT_VISIBLE = (
    "I can't show you that call. Either I don't know it, or you were not on it: "
    "I only show a call to its owner, the colleagues who took part, and administrators."
)

_ADMIN_ENTRY = re.compile(r"^(?:(\d{1,20}):)?(\d{1,20})$")


@dataclass(frozen=True, slots=True)
class Identity:
    """A person as the bot knows them for sure: their account and their extension."""

    account_id: str
    extension_id: str


def admin_entry_problem(entry: str) -> str | None:
    """Why a `bot.admins` entry is unusable, or None. Entries are `accountId:extensionId`, or
    a bare extension id that counts only in the service user's own account."""
    if _ADMIN_ENTRY.match(entry):
        return None
    return (
        f"bot.admins entry {entry!r} must be an extension id or accountId:extensionId (digits only)"
    )


def is_admin(person: Identity | None, admins: frozenset[str], home_account_id: str) -> bool:
    """Administrators are administrators of their own account only.

    `accountId:extensionId` names the account; a bare extension id is an administrator in
    `home_account_id` (the service user's account) and nowhere else.
    """
    if person is None:
        return False
    if f"{person.account_id}:{person.extension_id}" in admins:
        return True
    return bool(home_account_id) and (
        person.account_id == home_account_id and person.extension_id in admins
    )


def may_see(
    person: Identity | None,
    insights: CallInsights,
    admins: frozenset[str],
    home_account_id: str,
) -> bool:
    """Whether this person may see this call: same account as the call, and its owner, a
    participant known to be of that account, or an administrator of that account."""
    if person is None or insights.account_id is None:
        return False
    if person.account_id != insights.account_id:
        return False
    if is_admin(person, admins, home_account_id):
        return True
    return person.extension_id in insights.entitled_extension_ids()


def everyone_may_see(
    people: Iterable[Identity | None],
    calls: Iterable[CallInsights],
    admins: frozenset[str],
    home_account_id: str,
) -> bool:
    """Whether every person in a chat is entitled to every one of these calls."""
    calls = list(calls)
    return all(
        may_see(person, call, admins, home_account_id) for person in people for call in calls
    )
