"""Who sees a call, tried from outside: roles x chat kinds x actions, on an internal call and
on a call with people of other companies, against the bot and the sandbox as processes.

The promise (README "Who sees what", issue 8): a call of account A is shown to its owner,
A's colleagues who took part and A's administrators; nobody else sees it, is posted it,
may act on it (Open, Show transcript, feedback) or finds it (`find`), whichever chat they
ask in, and they get the same answer whether the call exists or not. An entitled person
asking in a chat where not everyone is entitled gets the answer by direct message. A
digest goes to a channel only when the call's owner added that channel, and calls with
outsiders not by default.

Roles, for calls of account A owned by Olivia: the owner; Pat, of A, on the call; Casey,
of A, not on it; Ada, A's administrator (in `bot.admins`); Globex's administrator (account
B, where the bot is installed too; also in `bot.admins`, and on the external call with
B's account id); Bert of Globex, on the external call with his account left null as real
events do; and Gina, a guest from a third company without the bot, on the external call
and in teams. Chats: direct with the bot of the asker's account, a group, a team, and a
group with people of both accounts.

The table runs once (module fixture); each case is then its own test item, so a failure
names the role, the chat, the call and the action. `test_the_whole_table` adds a scan of
every chat in the sandbox: any post carrying a call's words in a chat where someone may
not see it is a leak, whatever caused it.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import aiohttp
import pytest

from tests.blackbox.harness import BlackBox, Control, member_ids, post_text

ROLES = (
    "owner",
    "participant",
    "colleague",
    "admin",
    "other_account",
    "other_account_speaker",
    "guest",
)
OTHER_ACCOUNT_ROLES = frozenset({"other_account", "other_account_speaker"})
CHAT_KINDS = ("direct", "group", "team", "mixed")
CALL_KINDS = ("internal", "external")
ACTIONS = (
    "insights by recording id",
    "insights by session id",
    "insights by link",
    "last",
    "open button",
    "show transcript",
    "feedback",
    "find",
    "channel add then a new call",
)
ENTITLED_ROLES = frozenset({"owner", "participant", "admin"})
FEEDBACK_THANKS = "Thanks for your feedback"
FEEDBACK_SHOWN = "found this helpful"
ANSWER_TIMEOUT_S = 5.0
REPLY_TIMEOUT_S = 2.0
QUIET_S = 0.2
STALLS_BEFORE_IMPATIENCE = 8

Expectation = Literal["must", "may", "never"]


def expectation(role: str, chat_kind: str, call_kind: str, action: str) -> Expectation:
    if action == "last":
        # `last` lists the calls the asker owned or took part in: an admin may see the
        # call elsewhere, but it is not among their own.
        if role in ("owner", "participant"):
            return "must"
        return "may" if role == "admin" else "never"
    if action == "channel add then a new call":
        # Only the owner chooses where their digests go; calls with outsiders stay out of
        # channels unless the owner allowed it (off by default); a chat with people of
        # another company (the team's guest, the mixed chat) never gets a call.
        fits = role == "owner" and call_kind == "internal" and chat_kind == "group"
        return "must" if fits else "never"
    return "must" if role in ENTITLED_ROLES else "never"


def all_cases() -> Iterator[tuple[str, str, str, str]]:
    for role in ROLES:
        for chat_kind in CHAT_KINDS:
            for call_kind in CALL_KINDS:
                for action in ACTIONS:
                    if action == "channel add then a new call" and chat_kind == "direct":
                        continue
                    yield role, chat_kind, call_kind, action


@dataclass
class Call:
    kind: str
    marker: str
    record_id: str
    session_id: str
    link: str
    key: str = ""


@dataclass
class Outcome:
    expected: Expectation
    shown: bool
    answer: str
    missing_answer: str | None
    """What the same role got for a call that does not exist (None: no such comparison)."""

    @property
    def leak(self) -> bool:
        if self.expected != "never":
            return False
        return self.shown or (
            self.missing_answer is not None and self.answer != self.missing_answer
        )

    @property
    def wrongful_refusal(self) -> bool:
        return self.expected == "must" and not self.shown


@dataclass
class Table:
    outcomes: dict[tuple[str, str, str, str], Outcome] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    entitled: dict[str, frozenset[str]] = field(default_factory=dict)
    """Marker -> the people who may see that call."""
    internal: set[str] = field(default_factory=set)
    owner_channels: set[str] = field(default_factory=set)
    scan_leaks: list[str] = field(default_factory=list)
    stalls: int = 0
    seconds: float = 0.0


class Runner:
    def __init__(self, blackbox: BlackBox, control: Control) -> None:
        self.bb = blackbox
        self.control = control
        self.people = blackbox.people
        self.random = random.Random(8)
        self.table = Table()
        self.users = {
            "owner": self.people.owner,
            "participant": self.people.participant,
            "colleague": self.people.colleague,
            "admin": self.people.admin,
            "other_account": self.people.other_admin,
            "other_account_speaker": self.people.other_colleague,
            "guest": self.people.guest,
        }
        self.bots = {self.people.bot, self.people.other_bot}
        self.chats: dict[tuple[str, str], str] = {}
        self.stalls = 0
        """How often the bot showed nothing in time; after a few, waits get short so that a
        bot that stopped answering fails the table in seconds, not minutes."""

    # -- the world -------------------------------------------------------------------

    def bot_of(self, role: str) -> str:
        return self.people.other_bot if role in OTHER_ACCOUNT_ROLES else self.people.bot

    async def make_chats(self) -> None:
        p = self.people
        for role, user in self.users.items():
            bot = self.bot_of(role)
            colleague = p.colleague
            if role in OTHER_ACCOUNT_ROLES:
                colleague = p.other_admin if user == p.other_colleague else p.other_colleague
                group = [user, bot, colleague]
            elif role == "guest":
                group = [user, bot, p.owner]
            else:
                group = [user, bot, p.owner, p.participant]
            members = {
                "direct": [user, bot],
                "group": group,
                "team": [user, bot, colleague, p.guest],
                "mixed": [user, p.bot, p.colleague, p.other_admin, p.guest],
            }
            for kind, people in members.items():
                unique = list(dict.fromkeys(people))
                chat_type = {"direct": "Direct", "team": "Team"}.get(kind, "Group")
                name = f"Team of {role}" if kind == "team" else None
                self.chats[(role, kind)] = await self.control.chat(chat_type, unique, name)

    def new_ids(self) -> tuple[str, str, str]:
        record_id = "".join(self.random.choice("0123456789") for _ in range(13))
        session_id = "s-bb" + "".join(self.random.choice("0123456789abcdef") for _ in range(32))
        marker = "MARK" + "".join(self.random.choice("ABCDEFGHJKLMNPQRSTUVWXYZ") for _ in range(10))
        return record_id, session_id, marker

    async def simulate_call(self, kind: str) -> Call:
        """A finished call of account A with the words `marker` in its summary and transcript."""
        p = self.people
        record_id, session_id, marker = self.new_ids()
        link = f"https://ringsense.ringcentral.com/app/calls/{record_id}"
        speakers: list[dict[str, Any]] = [
            {"name": "Olivia Owner", "extensionId": p.owner, "accountId": p.account_id},
            {"name": "Pat Participant", "extensionId": p.participant, "accountId": p.account_id},
        ]
        if kind == "external":
            speakers += [
                {
                    "name": "Globex Admin",
                    "extensionId": p.other_admin,
                    "accountId": p.other_account_id,
                },
                # Real events leave `accountId` null for people the platform does not
                # place (fixture ringsense-event-pbx.json): an extension of another account
                # on the call, account unknown.
                {"name": "Bert Globex", "extensionId": p.other_colleague, "accountId": None},
                {"name": "Gina Guest", "extensionId": p.guest, "accountId": p.guest_account_id},
                {"name": "Jordan Lee", "phoneNumber": "+16505550123"},
            ]
        short = session_id.removeprefix("s-")
        for index, speaker in enumerate(speakers, start=1):
            speaker["speakerId"] = f"p-{short}-{index}"
        now = (await self.control.call("POST", "/clock", {"advanceSeconds": 0}))["now"]
        record = {
            "title": f"Call about {marker}",
            "domain": "pbx",
            "sourceSessionId": session_id,
            "sourceRecordId": record_id,
            "callDirection": "Outbound",
            "ownerExtensionId": p.owner,
            "recordingDurationMs": 185_000,
            "recordingStartTime": now,
            "creationTime": now,
            "lastModifiedTime": now,
            "rsRecordUri": link,
            "speakerInfo": speakers,
            "insights": {
                "Transcript": [
                    {
                        "speakerId": speakers[0]["speakerId"],
                        "text": f"Words of {marker}.",
                        "start": 1.0,
                        "end": 4.0,
                    },
                    {
                        "speakerId": speakers[1]["speakerId"],
                        "text": f"Reply on {marker}.",
                        "start": 5.0,
                        "end": 8.0,
                    },
                ],
                "Summary": [{"start": 0, "end": 1, "value": f"Summary of {marker}."}],
                "BulletedSummary": [{"value": f"Point about {marker}."}],
                "NextSteps": [
                    {
                        "start": 1.0,
                        "end": 4.0,
                        "value": f"Follow up {marker}.",
                        "speakerId": speakers[0]["speakerId"],
                    }
                ],
                "AIScore": [{"value": "7"}],
                "Sentiment": [{"value": "Positive"}],
            },
        }
        await self.control.call("POST", "/calls", {"event": {"body": record}})
        call = Call(kind, marker, record_id, session_id, link)
        self.table.calls.append(call)
        self.table.entitled[marker] = frozenset({p.owner, p.participant, p.admin})
        if kind == "internal":
            self.table.internal.add(marker)
        return call

    async def owner_digest(self, call: Call) -> Mapping[str, Any] | None:
        """The digest card of the call in the owner's direct chat, once it is there."""
        chat_id = self.chats[("owner", "direct")]
        deadline = time.monotonic() + ANSWER_TIMEOUT_S
        while time.monotonic() < deadline:
            for post in await self.control.posts(chat_id):
                if post.get("card") and call.marker in post_text(post):
                    return post
            await asyncio.sleep(0.05)
        return None

    # -- observing -------------------------------------------------------------------

    async def visible_to(self, user: str, chat_id: str) -> dict[str, tuple[str, str]]:
        """The bot's posts where an answer to this person's action in `chat_id` can land:
        that chat and their direct chats. (Other chats they are in belong to other roles'
        rows, which run at the same time; the final scan covers every chat.)"""
        seen: dict[str, tuple[str, str]] = {}
        for chat in await self.control.chats():
            if user not in member_ids(chat):
                continue
            if str(chat["id"]) != chat_id and chat.get("type") != "Direct":
                continue
            for post in await self.control.posts(str(chat["id"])):
                if str(post.get("creatorId")) in self.bots:
                    seen[str(post["id"])] = (str(chat["id"]), post_text(post))
        return seen

    async def after(
        self,
        user: str,
        chat_id: str,
        before: dict[str, tuple[str, str]],
        marker: str,
        wait_for_marker: bool,
        reply_expected: bool,
    ) -> list[str]:
        """What the bot showed this person since `before`: posts new or changed."""
        # A call that must show may take a while; a refusal (or silence) needs less.
        patience = ANSWER_TIMEOUT_S if wait_for_marker else REPLY_TIMEOUT_S
        if self.stalls >= STALLS_BEFORE_IMPATIENCE and not wait_for_marker:
            # Silence is expected often; an answer that must come always gets full patience,
            # or a slow moment would count as a wrongful refusal.
            patience = QUIET_S * 3
        deadline = time.monotonic() + patience
        last_change = time.monotonic()
        previous: list[str] = []
        while True:
            now_seen = await self.visible_to(user, chat_id)
            fresh = sorted(
                text for pid, (_, text) in now_seen.items() if before.get(pid, ("", ""))[1] != text
            )
            if fresh != previous:
                previous, last_change = fresh, time.monotonic()
            if wait_for_marker and any(marker in text for text in fresh):
                return fresh
            settled = time.monotonic() - last_change >= QUIET_S
            if settled and not wait_for_marker and (fresh or not reply_expected):
                return fresh
            if time.monotonic() > deadline:
                self.stalls += 1
                return fresh
            await asyncio.sleep(0.1)

    # -- actions ---------------------------------------------------------------------

    def said(self, role: str, chat_kind: str, command: str) -> str:
        if chat_kind == "direct":
            return command
        bot = self.people.bot if chat_kind == "mixed" else self.bot_of(role)
        return f"![:Person]({bot}) {command}"

    async def command(
        self, role: str, chat_kind: str, command: str, marker: str, must: bool
    ) -> tuple[bool, str]:
        user, chat_id = self.users[role], self.chats[(role, chat_kind)]
        before = await self.visible_to(user, chat_id)
        text = self.said(role, chat_kind, command)
        self.bb.sent_texts.append(text)
        await self.control.say(chat_id, user, text)
        fresh = await self.after(
            user, chat_id, before, marker, wait_for_marker=must, reply_expected=True
        )
        shown = any(marker in text for text in fresh)
        return shown, json.dumps([t.replace(marker, "") for t in fresh])

    async def card_to_press(self, role: str, chat_kind: str) -> str | None:
        for post in reversed(await self.control.posts(self.chats[(role, chat_kind)])):
            if post.get("cardId") and str(post.get("creatorId")) in self.bots:
                return str(post["cardId"])
        return None

    async def card_shows_feedback(self, chat_id: str, card_id: str, *, wait: bool) -> bool:
        """Whether the card now says what someone thought of it (updated in place)."""
        deadline = time.monotonic() + (ANSWER_TIMEOUT_S if wait else QUIET_S)
        while True:
            for post in await self.control.posts(chat_id):
                if str(post.get("cardId")) == card_id and FEEDBACK_SHOWN in post_text(post):
                    return True
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.1)

    async def press(
        self, role: str, chat_kind: str, data: Mapping[str, str], marker: str, must: bool
    ) -> tuple[bool, str]:
        user, chat_id = self.users[role], self.chats[(role, chat_kind)]
        card_id = await self.card_to_press(role, chat_kind)
        if card_id is None:
            return False, "(no card in this chat to press)"
        before = await self.visible_to(user, chat_id)
        result = await self.control.press(card_id, user, data)
        # Feedback posts nothing new: its answer is on the card or in a dialog.
        wait = must and data.get("action") != "digest.feedback"
        fresh = await self.after(
            user, chat_id, before, marker, wait_for_marker=wait, reply_expected=False
        )
        dialog = json.dumps(result.get("body"), sort_keys=True)
        if data.get("action") == "digest.feedback":
            # Recorded: the pressed digest shows the answer in place (and no dialog comes),
            # or, on a card that is not this call's digest, a dialog thanks for it. A refusal
            # is always a dialog, so an earlier answer on the card cannot count as this one.
            in_place = result.get("body") is None and await self.card_shows_feedback(
                chat_id, card_id, wait=must
            )
            shown = FEEDBACK_THANKS in dialog or in_place
        else:
            shown = any(marker in text for text in fresh)
        return shown, json.dumps([result.get("status"), dialog, *fresh]).replace(marker, "")

    async def act(
        self, role: str, chat_kind: str, action: str, call: Call | None, must: bool
    ) -> tuple[bool, str]:
        """One action on `call`, or on a call that does not exist when `call` is None."""
        if call is None:
            record_id, session_id, marker = self.new_ids()
            link = f"https://ringsense.ringcentral.com/app/calls/{record_id}"
            key = f"missing-{record_id}"
            if self.table.calls and self.table.calls[0].key:
                known = self.table.calls[0]
                key = known.key.replace(known.record_id, record_id)
        else:
            record_id, session_id, marker, link, key = (
                call.record_id,
                call.session_id,
                call.marker,
                call.link,
                call.key,
            )
        if action == "insights by recording id":
            return await self.command(role, chat_kind, f"insights {record_id}", marker, must)
        if action == "insights by session id":
            return await self.command(role, chat_kind, f"insights {session_id}", marker, must)
        if action == "insights by link":
            return await self.command(role, chat_kind, f"insights {link}", marker, must)
        if action == "last":
            return await self.command(role, chat_kind, "last 20", marker, must)
        if action == "find":
            # The marker is a word of the call's title, summary and transcript.
            return await self.command(role, chat_kind, f"find {marker}", marker, must)
        data = {
            "open button": {"action": "digest.open", "callKey": key},
            "show transcript": {"action": "digest.transcript", "callKey": key},
            "feedback": {"action": "digest.feedback", "callKey": key, "verdict": "helpful"},
        }[action]
        return await self.press(role, chat_kind, data, marker, must)

    async def channel_case(self, role: str, chat_kind: str, call_kind: str) -> Outcome:
        user = self.users[role]
        chat_id = self.chats[(role, chat_kind)]
        text = self.said(role, chat_kind, "channel add")
        self.bb.sent_texts.append(text)
        before = await self.visible_to(user, chat_id)
        await self.control.say(chat_id, user, text)
        await self.after(user, chat_id, before, "", wait_for_marker=False, reply_expected=True)
        if role == "owner":
            self.table.owner_channels.add(chat_id)
        call = await self.simulate_call(call_kind)
        await self.owner_digest(call)
        expected = expectation(role, chat_kind, call_kind, "channel add then a new call")
        deadline = time.monotonic() + (ANSWER_TIMEOUT_S if expected == "must" else QUIET_S)
        shown = False
        while not shown and time.monotonic() <= deadline:
            shown = any(call.marker in post_text(p) for p in await self.control.posts(chat_id))
            await asyncio.sleep(0.1)
        return Outcome(expected, shown, "", None)

    async def run_role(self, role: str, calls: list[Call]) -> None:
        for chat_kind in CHAT_KINDS:
            # `last` first: in a direct chat its card is the card the buttons are pressed on.
            ordered = [
                "last",
                *(a for a in ACTIONS if a not in ("last", "channel add then a new call")),
            ]
            missing: dict[str, str] = {}
            for call in calls:
                for action in ordered:
                    expected = expectation(role, chat_kind, call.kind, action)
                    shown, answer = await self.act(
                        role, chat_kind, action, call, expected == "must"
                    )
                    if action != "last" and action not in missing:
                        missing[action] = (await self.act(role, chat_kind, action, None, False))[1]
                    self.table.outcomes[(role, chat_kind, call.kind, action)] = Outcome(
                        expected, shown, answer, missing.get(action)
                    )
        for chat_kind in CHAT_KINDS[1:]:
            for call_kind in CALL_KINDS:
                self.table.outcomes[
                    (role, chat_kind, call_kind, "channel add then a new call")
                ] = await self.channel_case(role, chat_kind, call_kind)

    async def scan_every_chat(self) -> None:
        """Any post showing a call's words where someone in the chat may not see it."""
        for chat in await self.control.chats():
            members = member_ids(chat) - self.bots
            chat_id = str(chat["id"])
            for post in await self.control.posts(chat_id):
                if str(post.get("creatorId")) not in self.bots:
                    continue  # a person's own words (`find <the call's word>`), not a leak
                text = post_text(post)
                for marker, entitled in self.table.entitled.items():
                    if marker not in text:
                        continue
                    if members <= entitled:
                        continue
                    if chat_id in self.table.owner_channels and marker in self.table.internal:
                        continue
                    outsiders = sorted(members - entitled)
                    self.table.scan_leaks.append(
                        f"chat {chat_id} ({chat.get('type')}, {chat.get('name')}): a post shows "
                        f"call {marker} to {outsiders}"
                    )

    async def run(self) -> Table:
        started = time.monotonic()
        await self.make_chats()
        for role, user in self.users.items():
            self.bb.sent_texts.append("optin")
            await self.control.say(self.chats[(role, "direct")], user, "optin")
        calls = [await self.simulate_call(kind) for kind in CALL_KINDS]
        for call in calls:
            digest = await self.owner_digest(call)
            assert digest is not None, f"the owner got no digest of the {call.kind} call"
            call.key = _call_key(digest) or ""
            assert call.key, f"the digest of the {call.kind} call has no button with a call key"
        await asyncio.gather(*(self.run_role(role, calls) for role in ROLES))
        await self.scan_every_chat()
        self.table.seconds = time.monotonic() - started
        self.table.stalls = self.stalls
        return self.table


def _call_key(post: Mapping[str, Any]) -> str | None:
    def walk(node: Any) -> Iterator[str]:
        if isinstance(node, Mapping):
            if isinstance(node.get("callKey"), str):
                yield node["callKey"]
            for value in node.values():
                yield from walk(value)
        elif isinstance(node, list):
            for value in node:
                yield from walk(value)

    return next(walk(post.get("card")), None)


@pytest.fixture(scope="module")
def table(blackbox: BlackBox) -> Table:
    async def run() -> Table:
        async with aiohttp.ClientSession() as session:
            return await Runner(blackbox, blackbox.control(session)).run()

    return asyncio.run(run())


@pytest.mark.parametrize(("role", "chat_kind", "call_kind", "action"), list(all_cases()))
def test_who_sees_the_call(
    table: Table, role: str, chat_kind: str, call_kind: str, action: str
) -> None:
    outcome = table.outcomes[(role, chat_kind, call_kind, action)]
    assert not outcome.leak, (
        f"LEAK: {role} in a {chat_kind} chat, {action} on the {call_kind} call: "
        f"shown={outcome.shown}; answer {outcome.answer[:400]} vs for a missing call "
        f"{(outcome.missing_answer or '')[:400]}"
    )
    assert not outcome.wrongful_refusal, (
        f"WRONGFUL REFUSAL: {role} in a {chat_kind} chat, {action} on the {call_kind} call: "
        f"{outcome.answer[:400]}"
    )


def test_the_whole_table(table: Table) -> None:
    """0 leaks and 0 wrongful refusals over the table, and no chat shows a call to anyone
    who may not see it."""
    leaks = [case for case, outcome in table.outcomes.items() if outcome.leak]
    refusals = [case for case, outcome in table.outcomes.items() if outcome.wrongful_refusal]
    print(
        f"\nwho-sees-what table: {len(table.outcomes)} cases, {len(leaks)} leaks, "
        f"{len(refusals)} wrongful refusals, {len(table.scan_leaks)} posts seen by someone not "
        f"entitled, {table.stalls} waits timed out, {table.seconds:.1f} s"
    )
    assert len(table.outcomes) == len(list(all_cases()))
    assert (len(leaks), len(refusals), len(table.scan_leaks)) == (0, 0, 0), "\n".join(
        [
            *(f"leak: {c}" for c in leaks[:30]),
            *(f"refusal: {c}" for c in refusals[:30]),
            *table.scan_leaks[:30],
        ]
    )
