"""A seeded corpus of more than 1,000 forged or malformed requests against every public
endpoint of the running bot, sent as raw HTTP so that nothing (CR/LF, NUL, bytes that are
not UTF-8, oversized bodies, broken request lines) is tidied up by a client library.

What a careful reviewer expects (issue 8 items 3, 8, 9): every one is answered with a 4xx
(or 2xx where the request is harmless, such as a health probe), never a 5xx; the bot posts
nothing because of them; nobody's settings change; the bot stays healthy and keeps
answering. A request without the right credentials (Verification-Token, X-Glip-Signature,
the AI webhook's path secret, the status bearer token) is always a 4xx.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import random
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from sandbox import defaults
from tests.blackbox.harness import BlackBox, Control, member_ids, post_text

SEED = 20261130
CONCURRENCY = 16
ANSWER_TIMEOUT_S = 6.0


@dataclass(frozen=True)
class Forged:
    kind: str
    raw: bytes
    must_be_refused: bool
    """True when the request lacks the credential the endpoint needs: only a 4xx will do."""


def _request(
    method: bytes,
    target: bytes,
    headers: list[tuple[bytes, bytes]] | None = None,
    body: bytes = b"",
    *,
    content_length: bool = True,
) -> bytes:
    lines = [method + b" " + target + b" HTTP/1.1", b"Host: 127.0.0.1", b"Connection: close"]
    for name, value in headers or []:
        lines.append(name + b": " + value)
    if content_length and (body or method == b"POST"):
        lines.append(b"Content-Length: " + str(len(body)).encode())
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=True).encode()


NASTY_STRINGS = (
    "",
    " ",
    "\r\nX-Injected: 1",
    "a\x00b",
    "\ud800",
    "\udfff lone low",
    "![:Person](62288330003)",
    "[click](https://evil.example)",
    "' OR 1=1 --",
    "../../etc/passwd",
    "%00%0d%0a",
    "\u202etxt.exe",
    "x" * 5000,
    "é" * 300,
    "{{ 7*7 }}",
    "<script>alert(1)</script>",
)
NASTY_VALUES: tuple[Any, ...] = (*NASTY_STRINGS, None, 0, -1, 1e308, True, [], {}, [1, 2], {"a": 1})


class Corpus:
    """Builds the corpus from one seed, given what a forger could know (ids, paths)."""

    def __init__(self, blackbox: BlackBox, subscriptions: dict[str, str], chats: dict[str, str]):
        self.rng = random.Random(SEED)
        self.bb = blackbox
        self.token = blackbox.secrets["RC_VERIFICATION_TOKEN"].encode()
        self.people = blackbox.people
        self.subscriptions = subscriptions
        self.chats = chats

    def pick(self, values: tuple[Any, ...]) -> Any:
        return values[self.rng.randrange(len(values))]

    def uuid(self) -> str:
        return str(self.rng.getrandbits(63))

    def notification(self, event: str, body: Any, owner: str | None = None) -> dict[str, Any]:
        return {
            "uuid": self.uuid(),
            "event": event,
            "timestamp": "2026-11-30T12:00:00.000Z",
            "subscriptionId": self.subscriptions.get(event.split("/")[1], "sub"),
            "ownerId": owner or self.people.bot,
            "body": body,
        }

    def post_added(self, creator: str, chat: str, text: str) -> dict[str, Any]:
        return self.notification(
            "/team-messaging/v1/posts",
            {
                "id": str(self.rng.randrange(10**13, 10**14)),
                "groupId": chat,
                "type": "TextMessage",
                "text": text,
                "creatorId": creator,
                "creationTime": "2026-11-30T12:00:00.000Z",
                "lastModifiedTime": "2026-11-30T12:00:00.000Z",
                "mentions": [{"id": self.people.bot, "type": "Person", "name": "RingSense Digest"}],
                "eventType": "PostAdded",
            },
        )

    def ringsense_event(self, owner: str) -> dict[str, Any]:
        record_id = str(self.rng.randrange(10**12, 10**13))
        session = "s-" + "".join(self.rng.choice("0123456789abcdef") for _ in range(34))
        return self.notification(
            f"/ai/ringsense/v1/public/accounts/{self.people.account_id}/domains/pbx/insights",
            {
                "title": "Call from Olivia Owner to Mallory",
                "domain": "pbx",
                "sourceSessionId": session,
                "sourceRecordId": record_id,
                "callDirection": "Outbound",
                "ownerExtensionId": owner,
                "recordingDurationMs": 60000,
                "recordingStartTime": "2026-11-30T11:00:00.000Z",
                "creationTime": "2026-11-30T11:02:00.000Z",
                "lastModifiedTime": "2026-11-30T11:02:00.000Z",
                "speakerInfo": [
                    {
                        "speakerId": "p-1",
                        "name": "Olivia Owner",
                        "extensionId": owner,
                        "accountId": self.people.account_id,
                    },
                ],
                "insights": {
                    "Summary": [{"start": 0, "end": 1, "value": "FORGED-CALL summary"}],
                    "Transcript": [
                        {"speakerId": "p-1", "text": "FORGED-CALL", "start": 0, "end": 1}
                    ],
                },
            },
            owner=defaults.SERVICE_USER_EXTENSION_ID,
        )

    def extension_delete(self, extension_id: str) -> dict[str, Any]:
        return self.notification(
            f"/restapi/v1.0/account/~/extension/{extension_id}",
            {"extensionId": extension_id, "eventType": "Delete", "hints": ["ExtensionInfo"]},
            owner=extension_id,
        )

    # -- per endpoint ----------------------------------------------------------------

    def webhook(
        self, body: bytes, token: bytes | None, extra: list[tuple[bytes, bytes]] | None = None
    ) -> bytes:
        headers = [(b"Content-Type", b"application/json")]
        if token is not None:
            headers.append((b"Verification-Token", token))
        return _request(b"POST", b"/webhooks/ringcentral", headers + (extra or []), body)

    def ringcentral_webhook(self) -> Iterator[Forged]:
        p = self.people
        good_body = _json(self.post_added(p.owner, self.chats["owner_direct"], "help"))
        bad_tokens = [
            None,
            b"",
            b"wrong",
            self.token + b"x",
            self.token[:-1],
            self.token.upper(),
            b"\xff\xfe\xfd",
            b"\xc3\x28" + self.token,
            self.token + b"\x00",
            b"Bearer " + self.token,
            b"\xe2\x82",
            b"a" * 10000,
        ]
        for token in bad_tokens:
            for _ in range(6):
                yield Forged(
                    "notification, wrong or missing Verification-Token",
                    self.webhook(good_body, token),
                    True,
                )
        # The right token, a body that is no notification at all.
        broken = [
            b"",
            b"{",
            b"null",
            b"[]",
            b"123",
            b'"text"',
            b"\xff\xfe{}",
            b'{"uuid": "\\ud800"}',
            b'{"uuid": 1, "event": 2, "body": 3}',
            b"{}" * 1000,
            b'{"body": {"eventType": "PostAdded"}}',
            b'{"uuid": "\x00", "event": "/team-messaging/v1/posts", "body": {}}',
            b"\x00" * 64,
            b"{'single': 'quotes'}",
            b'{"a":' * 3000 + b"1" + b"}" * 3000,
        ]
        for body in broken:
            for _ in range(4):
                yield Forged(
                    "notification with a broken body", self.webhook(body, self.token), False
                )
        # Right token, right shape, hostile values in every field.
        for _ in range(160):
            # A command that needs confirming, so that nothing may come of it.
            note = self.post_added(p.owner, self.chats["owner_direct"], "optout")
            path = self.rng.choice(
                [
                    ("uuid",),
                    ("event",),
                    ("body", "text"),
                    ("body", "groupId"),
                    ("body", "creatorId"),
                    ("body", "id"),
                    ("body", "mentions"),
                    ("body", "eventType"),
                    ("subscriptionId",),
                    ("body",),
                ]
            )
            target: Any = note
            for step in path[:-1]:
                target = target[step]
            target[path[-1]] = self.pick(NASTY_VALUES)
            yield Forged(
                "notification with a hostile field", self.webhook(_json(note), self.token), False
            )
        # Right token: a PostAdded nobody wrote, for commands that change where data goes.
        commands = (
            "channel add",
            "channel remove",
            "optout",
            "optin",
            "resend all",
            "pause 3 days",
            "resume",
            "settings",
        )
        for command in commands:
            for creator, chat in (
                (p.owner, self.chats["colleague_team"]),
                (p.owner, self.chats["owner_direct"]),
                (p.colleague, self.chats["owner_group"]),
                (p.other_admin, self.chats["owner_direct"]),
                (p.admin, self.chats["colleague_team"]),
            ):
                for _ in range(2):
                    yield Forged(
                        "forged PostAdded",
                        self.webhook(_json(self.post_added(creator, chat, command)), self.token),
                        False,
                    )
        # Right token: RingSense events for calls that do not exist.
        for owner in (p.owner, p.participant, p.admin, p.colleague):
            for _ in range(15):
                yield Forged(
                    "forged RingSense event",
                    self.webhook(_json(self.ringsense_event(owner)), self.token),
                    False,
                )
        # Right token: extension Delete events for the bots and people.
        for extension_id in (p.bot, p.other_bot, p.owner, p.admin):
            for _ in range(5):
                yield Forged(
                    "forged extension Delete",
                    self.webhook(_json(self.extension_delete(extension_id)), self.token),
                    False,
                )
        # Oversized bodies, with and without the token, and lying Content-Length.
        huge = b'{"uuid": "' + b"x" * (2 * 1024 * 1024) + b'"}'
        for token in (None, b"wrong", self.token):
            yield Forged("notification, 2 MiB body", self.webhook(huge, token), token != self.token)
        for length in (b"-1", b"abc", b"99999999999999999999", b"1e3", b"0x10"):
            yield Forged(
                "notification, bad Content-Length",
                _request(
                    b"POST",
                    b"/webhooks/ringcentral",
                    [(b"Verification-Token", self.token), (b"Content-Length", length)],
                    b"{}",
                    content_length=False,
                ),
                False,
            )
        # A validation handshake with hostile Validation-Token values.
        for value in (b"\r\nSet-Cookie: a=b", b"\xff", b"x" * 5000, b"", b"\x00"):
            yield Forged(
                "handshake with a hostile Validation-Token",
                _request(b"POST", b"/webhooks/ringcentral", [(b"Validation-Token", value)]),
                False,
            )

    def signed(self, body: bytes, secret: bytes, prefixed: bool = False) -> bytes:
        digest = hmac.new(secret, body, hashlib.sha1).hexdigest().encode()
        return (b"sha1=" if prefixed else b"") + digest

    def submit(self, data: dict[str, Any], user: str) -> bytes:
        return _json(
            {
                "uuid": self.uuid(),
                "type": "button_submit",
                "appId": defaults.CLIENT_ID,
                "user": {
                    "id": user,
                    "extId": user,
                    "accountId": self.people.account_id,
                    "firstName": "A",
                    "lastName": "B",
                },
                "conversation": {"id": self.chats["owner_direct"], "type": "Direct"},
                "post": {"id": "1"},
                "card": {"id": "1"},
                "bot": {"id": self.people.bot},
                "data": data,
            }
        )

    def interactive(self) -> Iterator[Forged]:
        p = self.people
        secret = self.bb.secrets["RC_SHARED_SECRET"].encode()
        actions = (
            {"action": "settings.save", "optedIn": "false"},
            {"action": "digest.feedback", "callKey": "pbx:1", "verdict": "helpful"},
            {"action": "digest.open", "callKey": "pbx:1"},
            {"action": "digest.transcript", "callKey": "pbx:1"},
        )
        for _ in range(140):
            body = self.submit(dict(self.pick(actions)), self.pick((p.owner, p.colleague, p.guest)))
            signature = self.pick(
                (
                    None,
                    b"",
                    b"sha1=",
                    b"00" * 20,
                    b"sha1=" + b"ab" * 20,
                    self.signed(body, b"wrong-secret"),
                    self.signed(body + b" ", secret),
                    self.signed(body, secret)[:-2],
                    b"\xff\xfe",
                    b"sha256=" + b"0" * 64,
                    self.signed(body, secret).upper() + b"\x00",
                )
            )
            headers = [(b"Content-Type", b"application/json")]
            if signature is not None:
                headers.append((b"X-Glip-Signature", signature))
            yield Forged(
                "button submit, bad signature",
                _request(b"POST", b"/webhooks/interactive", headers, body),
                True,
            )
        # Signed with the real secret but malformed inside: still no 5xx.
        for _ in range(60):
            value = self.pick(NASTY_VALUES)
            body = self.pick(
                (
                    _json(
                        {"type": "button_submit", "user": value, "data": {"action": "digest.open"}}
                    ),
                    _json({"type": "button_submit", "user": {"id": p.owner}, "data": value}),
                    _json({"type": value, "user": {"id": p.owner}, "data": {}}),
                    _json(value),
                    b"{not json",
                    b"\xff\xfe\x00",
                )
            )
            yield Forged(
                "button submit, signed but malformed",
                _request(
                    b"POST",
                    b"/webhooks/interactive",
                    [(b"X-Glip-Signature", self.signed(body, secret))],
                    body,
                ),
                False,
            )

    def ai_webhook(self) -> Iterator[Forged]:
        for _ in range(100):
            secret = self.pick(
                (
                    "".join(
                        self.rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(32)
                    ),
                    "x",
                    "%00",
                    "%ff%fe",
                    "..%2f..%2fetc",
                    "a" * 2000,
                    "%0d%0aX: y",
                )
            )
            body = self.pick(
                (
                    b"{}",
                    b"",
                    b"{",
                    _json({"jobId": "1", "status": "Success", "response": {}}),
                    b"x" * (1536 * 1024),
                )
            )
            yield Forged(
                "AI webhook, wrong path secret",
                _request(
                    b"POST",
                    b"/webhooks/ai/" + secret.encode(),
                    [(b"Content-Type", b"application/json")],
                    body,
                ),
                True,
            )

    def oauth(self) -> Iterator[Forged]:
        p = self.people
        for _ in range(70):
            query = self.pick(
                (
                    b"",
                    b"?code=",
                    b"?code=abc",
                    b"?code=%00%0d%0a",
                    b"?code=" + b"a" * 6000,
                    b"?error=access_denied",
                    b"?code=x&state=%ff%fe",
                    b"?code=%ud800",
                    b"?code=1&creator_extension_id=" + p.owner.encode(),
                    b"?&&&==&",
                )
            )
            yield Forged(
                "install GET with a forged code", _request(b"GET", b"/oauth/redirect" + query), True
            )
        for _ in range(90):
            token = self.pick(
                (
                    b"",
                    b"forged-token",
                    b"a%0d%0ab",
                    b"a%00b",
                    b"%ff%fe",
                    b"a\r\nb",
                    b"x" * 8000,
                    b"sandbox-bot-token%0a",
                    b"Bearer%20x",
                )
            )
            body = (
                b"access_token="
                + token
                + b"&creator_extension_id="
                + p.owner.encode()
                + b"&creator_account_id="
                + p.account_id.encode()
                + b"&client_id="
                + defaults.CLIENT_ID.encode()
            )
            content_type = self.pick(
                (
                    b"application/x-www-form-urlencoded",
                    b"application/json",
                    b"multipart/form-data",
                    b"text/plain; charset=\xff",
                )
            )
            yield Forged(
                "install POST with a forged token",
                _request(b"POST", b"/oauth/redirect", [(b"Content-Type", content_type)], body),
                True,
            )

    def health_and_unknown(self) -> Iterator[Forged]:
        status_token = self.bb.secrets["BOT_STATUS_TOKEN"].encode()
        for path in (b"/livez", b"/readyz", b"/healthz"):
            for method in (b"GET", b"HEAD", b"POST", b"DELETE"):
                for _ in range(4):
                    yield Forged(
                        "health probe", _request(method, path, [(b"X-Probe", b"\xff")]), False
                    )
        for _ in range(40):
            auth = self.pick(
                (
                    None,
                    b"",
                    b"Bearer",
                    b"Bearer wrong",
                    b"Bearer " + status_token + b"x",
                    b"Basic " + status_token,
                    b"Bearer \xff\xfe",
                    status_token,
                    b"Bearer " + status_token[:-1],
                )
            )
            headers = [(b"Authorization", auth)] if auth is not None else []
            yield Forged(
                "GET /status without the right bearer token",
                _request(b"GET", b"/status", headers),
                True,
            )
        metrics_token = self.bb.secrets["BOT_METRICS_TOKEN"].encode()
        for _ in range(20):
            auth = self.pick(
                (
                    None,
                    b"Bearer wrong",
                    b"Bearer " + status_token,
                    b"Bearer " + metrics_token + b"x",
                    b"Basic " + metrics_token,
                    metrics_token,
                    b"Bearer \xff\xfe",
                )
            )
            headers = [(b"Authorization", auth)] if auth is not None else []
            yield Forged(
                "GET /metrics without the right bearer token",
                _request(b"GET", b"/metrics", headers),
                True,
            )
        for _ in range(100):
            path = self.pick(
                (
                    b"/",
                    b"/admin",
                    b"/.env",
                    b"/webhooks",
                    b"/webhooks/ai",
                    b"/webhooks/ai/",
                    b"/%2e%2e/%2e%2e/etc/passwd",
                    b"/webhooks/ringcentral/../../x",
                    b"/%ff%fe",
                    b"/a%00b",
                    b"/" + b"a" * 9000,
                    b"/_sandbox/bots",
                    b"/oauth",
                    b"/metrics",
                    b"/%zz",
                )
            )
            method = self.pick(
                (b"GET", b"POST", b"PUT", b"DELETE", b"PATCH", b"OPTIONS", b"TRACE", b"FOO")
            )
            yield Forged(
                "unknown path",
                _request(method, path, [], b"{}" if method == b"POST" else b""),
                True,
            )
        for raw in (
            b"GET / HTTP/9.9\r\n\r\n",
            b"\x00\x01\x02\r\n\r\n",
            b"GET\r\n\r\n",
            b"POST /webhooks/ringcentral HTTP/1.1\r\nHost: x\r\n"
            b"Transfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n",
            b"GET / HTTP/1.1\r\n" + b"X: " + b"y" * 20000 + b"\r\n\r\n",
        ):
            for _ in range(3):
                yield Forged("broken HTTP", raw, False)

    def build(self) -> list[Forged]:
        return [
            *self.ringcentral_webhook(),
            *self.interactive(),
            *self.ai_webhook(),
            *self.oauth(),
            *self.health_and_unknown(),
        ]


async def send_raw(url: str, raw: bytes) -> int | None:
    """The status the bot answered with, or None if it answered nothing."""
    host, port = url.removeprefix("http://").split(":")
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), 5)
    except OSError:
        return None
    try:
        try:
            writer.write(raw)
            await writer.drain()
        except (ConnectionError, OSError):
            pass  # the server may answer (413) before it has read everything
        try:
            line = await asyncio.wait_for(reader.readline(), ANSWER_TIMEOUT_S)
        except (TimeoutError, ConnectionError, OSError):
            return None
        parts = line.split()
        if len(parts) >= 2 and parts[0].startswith(b"HTTP/") and parts[1].isdigit():
            return int(parts[1])
        return None
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except (ConnectionError, OSError):
            pass


async def bot_posts(control: Control, bots: set[str]) -> dict[str, str]:
    posts: dict[str, str] = {}
    for chat in await control.chats():
        for post in await control.posts(str(chat["id"])):
            if str(post.get("creatorId")) in bots:
                posts[str(post["id"])] = post_text(post)
    return posts


async def settled_posts(control: Control, bots: set[str]) -> dict[str, str]:
    """The bot's posts once nothing has changed for half a second (what earlier tests set
    in motion has landed), so that whatever changes afterwards is the corpus's doing."""
    previous = await bot_posts(control, bots)
    deadline = time.monotonic() + ANSWER_TIMEOUT_S
    while time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        current = await bot_posts(control, bots)
        if current == previous:
            break
        previous = current
    return previous


async def ask(control: Control, chat_id: str, user: str, text: str, bots: set[str]) -> str:
    """Say something to the bot and return its text replies (cards, such as a digest that
    happens to arrive meanwhile, are left out)."""
    before = len(await control.posts(chat_id))
    await control.say(chat_id, user, text)
    deadline = time.monotonic() + ANSWER_TIMEOUT_S

    def texts(posts: list[dict[str, Any]]) -> list[str]:
        return [
            str(p.get("text"))
            for p in posts[before:]
            if str(p.get("creatorId")) in bots and not p.get("card")
        ]

    while time.monotonic() < deadline:
        if texts(await control.posts(chat_id)):
            await asyncio.sleep(0.2)
            return "\n".join(texts(await control.posts(chat_id)))
        await asyncio.sleep(0.05)
    return "(no answer)"


@dataclass
class CorpusRun:
    size: int
    statuses: dict[str, list[int | None]]
    unrefused: list[str]
    posts_before: dict[str, str]
    posts_after: dict[str, str]
    status_before: str
    status_after: str
    help_after: str
    healthy_after: bool
    seconds: float


@pytest.fixture(scope="module")
def corpus_run(blackbox: BlackBox) -> CorpusRun:
    async def run() -> CorpusRun:
        p = blackbox.people
        bots = {p.bot, p.other_bot}
        async with aiohttp.ClientSession() as session:
            control = blackbox.control(session)
            subscriptions: dict[str, str] = {}
            for sub in await control.call("GET", "/subscriptions"):
                for event_filter in sub.get("eventFilters") or []:
                    subscriptions.setdefault(event_filter.split("/")[1], str(sub["id"]))
            chats = {
                "owner_direct": await _direct(control, p.owner, p.bot),
                "owner_group": await control.chat("Group", [p.owner, p.bot, p.participant]),
                "colleague_team": await control.chat(
                    "Team", [p.colleague, p.bot, p.participant], "Colleague corner"
                ),
            }
            await ask(control, chats["owner_direct"], p.owner, "optin", bots)
            status_before = await ask(control, chats["owner_direct"], p.owner, "status", bots)
            posts_before = await settled_posts(control, bots)
            corpus = Corpus(blackbox, subscriptions, chats).build()
            started = time.monotonic()
            statuses: dict[str, list[int | None]] = {}
            unrefused: list[str] = []
            gate = asyncio.Semaphore(CONCURRENCY)

            async def send(forged: Forged) -> None:
                async with gate:
                    status = await send_raw(blackbox.bot_url, forged.raw)
                statuses.setdefault(forged.kind, []).append(status)
                if forged.must_be_refused and not (status is not None and 400 <= status < 500):
                    unrefused.append(f"{forged.kind}: {status}: {forged.raw[:160]!r}")

            await asyncio.gather(*(send(forged) for forged in corpus))
            seconds = time.monotonic() - started
            await asyncio.sleep(1.5)  # what the forgeries queued has time to go wrong
            posts_after = await bot_posts(control, bots)
            healthy = await control.bot_ready()
            status_after = await ask(control, chats["owner_direct"], p.owner, "status", bots)
            help_after = await ask(control, chats["owner_direct"], p.owner, "help", bots)
            blackbox.sent_texts.extend(["optin", "status", "help"])
            return CorpusRun(
                len(corpus),
                statuses,
                unrefused,
                posts_before,
                posts_after,
                status_before,
                status_after,
                help_after,
                healthy,
                seconds,
            )

    return asyncio.run(run())


async def _direct(control: Control, user: str, bot: str) -> str:
    for chat in await control.chats():
        if chat.get("type") == "Direct" and member_ids(chat) == {user, bot}:
            return str(chat["id"])
    return await control.chat("Direct", [user, bot])


def test_the_corpus_is_large_and_deterministic(corpus_run: CorpusRun, blackbox: BlackBox) -> None:
    assert corpus_run.size >= 1000
    chats = {"owner_direct": "1", "owner_group": "2", "colleague_team": "3"}
    first = Corpus(blackbox, {}, chats).build()
    again = Corpus(blackbox, {}, chats).build()
    assert [f.raw for f in first] == [f.raw for f in again]


def test_no_forged_request_gets_a_5xx_or_no_answer(corpus_run: CorpusRun) -> None:
    bad = {
        kind: dict(Counter(str(s) for s in statuses if s is None or s >= 500))
        for kind, statuses in corpus_run.statuses.items()
        if any(s is None or s >= 500 for s in statuses)
    }
    fives = sum(1 for statuses in corpus_run.statuses.values() for s in statuses if s and s >= 500)
    print(f"\nforged corpus: {corpus_run.size} requests, {fives} x 5xx, {corpus_run.seconds:.1f} s")
    assert not bad, bad


def test_requests_without_credentials_are_refused_with_a_4xx(corpus_run: CorpusRun) -> None:
    by_kind = Counter(line.split(":")[0] for line in corpus_run.unrefused)
    assert not corpus_run.unrefused, f"{dict(by_kind)}\n" + "\n".join(corpus_run.unrefused[:20])


def test_the_corpus_made_the_bot_post_nothing(corpus_run: CorpusRun) -> None:
    new = {
        k: v[:300] for k, v in corpus_run.posts_after.items() if corpus_run.posts_before.get(k) != v
    }
    assert not new, new


def test_the_corpus_changed_no_settings_and_the_bot_still_answers(corpus_run: CorpusRun) -> None:
    assert corpus_run.healthy_after
    assert corpus_run.status_after == corpus_run.status_before
    assert "(no answer)" not in corpus_run.help_after


def test_health_endpoints_tell_strangers_nothing(blackbox: BlackBox) -> None:
    """Issue 8 item 9: `/livez` and `/readyz` answer a status code and one word; whatever
    `/healthz` still answers names no install, account or subscription; `/status` gives
    details only with the bearer token from `BOT_STATUS_TOKEN`."""
    p = blackbox.people
    revealing = {p.bot, p.other_bot, p.account_id, p.other_account_id}

    async def probe() -> dict[str, tuple[int, str]]:
        answers: dict[str, tuple[int, str]] = {}
        async with aiohttp.ClientSession() as session:
            for path in ("/livez", "/readyz", "/healthz", "/status", "/metrics"):
                async with session.get(blackbox.bot_url + path) as response:
                    answers[path] = (response.status, await response.text())
            token = blackbox.secrets["BOT_STATUS_TOKEN"]
            async with session.get(
                blackbox.bot_url + "/status", headers={"Authorization": f"Bearer {token}"}
            ) as response:
                answers["/status with the token"] = (response.status, await response.text())
            token = blackbox.secrets["BOT_METRICS_TOKEN"]
            async with session.get(
                blackbox.bot_url + "/metrics", headers={"Authorization": f"Bearer {token}"}
            ) as response:
                answers["/metrics with the token"] = (response.status, await response.text())
        return answers

    answers = asyncio.run(probe())
    for path in ("/livez", "/readyz"):
        status, body = answers[path]
        assert status == 200, (path, status, body[:200])
        assert len(body.split()) == 1, (path, body[:200])
    for path, (status, body) in answers.items():
        if path in ("/status with the token", "/metrics with the token"):
            continue
        assert not [value for value in revealing if value in body], (path, status, body[:300])
    assert 400 <= answers["/status"][0] < 500, answers["/status"]
    assert 400 <= answers["/metrics"][0] < 500, answers["/metrics"]
    status, body = answers["/metrics with the token"]
    assert status == 200 and "ringsense_bot_notifications_received_total" in body, status
    status, body = answers["/status with the token"]
    assert status == 200 and body.strip(), (status, body[:300])
