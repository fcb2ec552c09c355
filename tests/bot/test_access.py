"""Who may see a call, as a rule on (account, extension) pairs (issue 8 item 1)."""

from __future__ import annotations

from bot.access import Identity, admin_entry_problem, is_admin, may_see
from bot.ringsense import CallInsights
from tests.templates.samples import event_body

HOME = "809646XXX"
OTHER = "555000"
OWNER = "6228832XXXX"


def call_of(account: str | None) -> CallInsights:
    return CallInsights.from_api(event_body(), account_id=account)


def test_the_owner_sees_their_call_only_as_a_person_of_the_calls_account() -> None:
    assert may_see(Identity(HOME, OWNER), call_of(HOME), frozenset(), HOME)
    # the same extension id claimed in another account is somebody else
    assert not may_see(Identity(OTHER, OWNER), call_of(HOME), frozenset(), HOME)
    assert not may_see(None, call_of(HOME), frozenset(), HOME)


def test_a_call_of_no_known_account_is_shown_to_nobody() -> None:
    assert not may_see(Identity(HOME, OWNER), call_of(None), frozenset({"1"}), HOME)


def test_admins_are_admins_of_their_own_account_only() -> None:
    bare = frozenset({"70000001"})
    named = frozenset({f"{OTHER}:70000002"})
    home_admin, other_admin = Identity(HOME, "70000001"), Identity(OTHER, "70000002")
    assert is_admin(home_admin, bare, HOME)
    assert not is_admin(Identity(OTHER, "70000001"), bare, HOME)
    assert is_admin(other_admin, named, HOME)
    assert not is_admin(Identity(HOME, "70000002"), named, HOME)
    assert not is_admin(home_admin, bare, "")

    assert may_see(home_admin, call_of(HOME), bare, HOME)
    # an administrator of the other account sees none of the home account's calls
    assert not may_see(other_admin, call_of(HOME), named, HOME)
    assert may_see(other_admin, call_of(OTHER), named, HOME)


def test_admin_entries_must_name_an_extension_or_an_account_and_extension() -> None:
    assert admin_entry_problem("70000001") is None
    assert admin_entry_problem("809640001:70000001") is None
    for bad in ("", "bob", "1:2:3", ":1", "1:", "12 34"):
        assert admin_entry_problem(bad) is not None, bad
