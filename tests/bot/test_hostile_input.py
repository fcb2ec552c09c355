"""Hostile and malformed requests against the bot's public HTTP endpoints, in-process.

Each one must get a 4xx (never a 5xx), store nothing and post nothing. Requests go out over
a raw socket, so that headers can carry bytes no HTTP client library would send (non-UTF-8,
NUL) and bodies can lie about their length. The separate-process version with a larger
corpus lives in tests/blackbox/.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import pytest

from bot.ai import secret_hash
from bot.events import Notification
from bot.storage import AiJob, Storage
from sandbox import defaults
from tests.e2e import STATUS_TOKEN, Stack, settle


@dataclass(frozen=True)
class RawRequest:
    name: str
    method: str
    path: str
    headers: tuple[tuple[bytes, bytes], ...] = ()
    body: bytes = b""
    content_length: int | None = None  # what the request claims, when not len(body)


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


async def send_raw(base_url: str, request: RawRequest, timeout_s: float = 10.0) -> RawResponse:
    """One HTTP/1.1 request written byte by byte; the connection closes after it."""
    parts = urlsplit(base_url)
    assert parts.hostname is not None and parts.port is not None
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        length = len(request.body) if request.content_length is None else request.content_length
        head = [
            f"{request.method} {request.path} HTTP/1.1".encode("latin-1"),
            b"Host: " + parts.netloc.encode(),
            b"Connection: close",
        ]
        head += [name + b": " + value for name, value in request.headers]
        if request.method != "GET" or request.body:
            head.append(b"Content-Length: " + str(length).encode())
        writer.write(b"\r\n".join(head) + b"\r\n\r\n" + request.body)
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), timeout_s)
        status = int(status_line.split()[1])
        headers: dict[str, str] = {}
        while True:
            line = await asyncio.wait_for(reader.readline(), timeout_s)
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        size = int(headers.get("content-length", "-1"))
        if size >= 0:
            body = await asyncio.wait_for(reader.readexactly(size), timeout_s)
        else:
            body = await asyncio.wait_for(reader.read(), timeout_s)
        return RawResponse(status, headers, body)
    finally:
        writer.close()


async def row_counts(stack: Stack) -> dict[str, int]:
    """Rows per table of the bot's database (read beside the bot's own connection), on
    either backend."""
    if stack.backend == "postgres":
        tables = await stack.sql(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
        )
        # table names come from the catalogue, not from a caller; one round trip for all
        selects = [f"SELECT '{table}', COUNT(*) FROM \"{table}\"" for (table,) in tables]  # noqa: S608
        counting = " UNION ALL ".join(selects)
        return {str(table): int(count) for table, count in await stack.sql(counting)}
    tables = await stack.sql("SELECT name FROM sqlite_master WHERE type = 'table'")
    counts = {}
    for (table,) in tables:
        # table names come from sqlite_master, not from a caller
        ((count,),) = await stack.sql(f'SELECT COUNT(*) FROM "{table}"')  # noqa: S608
        counts[str(table)] = int(count)
    return counts


async def bot_writes(stack: Stack) -> list[Mapping[str, Any]]:
    """Every request the bot made that would show something in a chat."""
    return [
        r
        for r in await stack.control.requests()
        if r["method"] in ("POST", "PUT")
        and any(part in r["path"] for part in ("/posts", "adaptive-cards", "/conversations"))
    ]


def notification_headers(stack: Stack, **extra: bytes) -> tuple[tuple[bytes, bytes], ...]:
    headers = [
        (b"Content-Type", b"application/json"),
        (b"Verification-Token", stack.config.verification_token.encode()),
    ]
    headers += [(name.replace("_", "-").encode(), value) for name, value in extra.items()]
    return tuple(headers)


def signed(body: bytes) -> tuple[tuple[bytes, bytes], ...]:
    signature = hmac.new(defaults.SHARED_SECRET.encode(), body, hashlib.sha1).hexdigest()
    return ((b"Content-Type", b"application/json"), (b"X-Glip-Signature", signature.encode()))


def post_added(uuid: str = "post-1", **body_changes: Any) -> dict[str, Any]:
    body = {
        "id": "5001",
        "groupId": "6001",
        "type": "TextMessage",
        "text": "help",
        "creatorId": "7001",
        "eventType": "PostAdded",
        "mentions": None,
        **body_changes,
    }
    return {
        "uuid": uuid,
        "event": "/team-messaging/v1/posts",
        "timestamp": "2026-11-30T12:00:00.000Z",
        "subscriptionId": "sub-1",
        "ownerId": "62288329999",
        "body": body,
    }


async def assert_refused_quietly(stack: Stack, requests: Iterable[RawRequest]) -> None:
    """Send each request; each gets a 4xx; nothing is stored or posted. Reports every
    failure at once, so one run shows the whole picture."""
    before_rows = await row_counts(stack)
    before_writes = len(await bot_writes(stack))
    failures = []
    for request in requests:
        response = await send_raw(stack.bot.url, request)
        if not 400 <= response.status < 500:
            failures.append(f"{request.name}: {response.status} {response.body[:200]!r}")
    await settle(stack.bot)
    assert failures == []
    assert await row_counts(stack) == before_rows
    assert len(await bot_writes(stack)) == before_writes


# --- the reproductions from issue 8 ------------------------------------------------------


async def test_a_verification_token_that_is_not_utf8_is_refused(stack: Stack) -> None:
    body = json.dumps(post_added()).encode()
    await assert_refused_quietly(
        stack,
        [
            RawRequest(
                "latin-1 token",
                "POST",
                "/webhooks/ringcentral",
                ((b"Content-Type", b"application/json"), (b"Verification-Token", b"\xff\xfe-x")),
                body,
            ),
            RawRequest(
                "latin-1 token on the handshake",
                "POST",
                "/webhooks/ringcentral",
                ((b"Validation-Token", b"abc"), (b"Verification-Token", b"caf\xe9")),
            ),
        ],
    )


async def test_install_tokens_ringcentral_refuses_leave_nothing_stored(stack: Stack) -> None:
    """Anyone can POST a well-formed token to the install address; the bot tries it on
    RingCentral, which refuses it. Nothing of it may stay behind (on PostgreSQL its pacing
    window once did, as a `rate_limits` row per token: a table anyone could grow)."""
    requests = [
        RawRequest(
            f"unknown token {n}",
            "POST",
            "/oauth/redirect",
            ((b"Content-Type", b"application/x-www-form-urlencoded"),),
            f"access_token=unknown-but-well-formed-token-{n}".encode(),
        )
        for n in range(3)
    ]
    await assert_refused_quietly(stack, requests)


async def test_an_install_token_with_control_characters_is_refused(stack: Stack) -> None:
    installs_before = (await row_counts(stack))["installs"]
    requests = []
    for bad in ("abc\r\nX-Injected: 1", "abc\ndef", "abc\x00def", "tab\there", "sp ace", "é"):
        form = f"access_token={quote(bad)}&creator_extension_id=1".encode()
        requests.append(
            RawRequest(
                f"form {bad!r}",
                "POST",
                "/oauth/redirect",
                ((b"Content-Type", b"application/x-www-form-urlencoded"),),
                form,
            )
        )
        requests.append(
            RawRequest(
                f"json {bad!r}",
                "POST",
                "/oauth/redirect",
                ((b"Content-Type", b"application/json"),),
                json.dumps({"access_token": bad}).encode(),
            )
        )
    await assert_refused_quietly(stack, requests)
    assert (await row_counts(stack))["installs"] == installs_before


async def test_a_uuid_with_a_lone_surrogate_is_refused(stack: Stack) -> None:
    body = json.dumps(post_added()).replace('"post-1"', '"\\ud800"').encode()
    text = json.dumps(post_added("post-2")).replace('"help"', '"he\\udfffp"').encode()
    await assert_refused_quietly(
        stack,
        [
            RawRequest("uuid", "POST", "/webhooks/ringcentral", notification_headers(stack), body),
            RawRequest("text", "POST", "/webhooks/ringcentral", notification_headers(stack), text),
        ],
    )


async def test_a_proper_surrogate_pair_is_still_accepted(stack: Stack) -> None:
    # an escaped emoji (a surrogate pair) is good JSON and good Unicode
    body = json.dumps(post_added("post-emoji", text="help \U0001f600"), ensure_ascii=True)
    assert "\\ud83d" in body
    response = await send_raw(
        stack.bot.url,
        RawRequest(
            "emoji", "POST", "/webhooks/ringcentral", notification_headers(stack), body.encode()
        ),
    )
    assert response.status == 200


@pytest.mark.parametrize(
    ("name", "envelope"),
    [
        ("uuid a number", {**post_added(), "uuid": 17}),
        ("uuid a list", {**post_added(), "uuid": ["a"]}),
        ("event a number", {**post_added(), "event": 3}),
        ("body a list", {**post_added(), "body": []}),
        ("timestamp an object", {**post_added(), "timestamp": {"a": 1}}),
        ("ownerId a list", {**post_added(), "ownerId": [1]}),
        ("subscriptionId an object", {**post_added(), "subscriptionId": {}}),
        ("post text a number", post_added(text=12)),
        ("post groupId an object", post_added(groupId={"id": "1"})),
        ("post creatorId a list", post_added(creatorId=["1"])),
        ("post mentions a string", post_added(mentions="![:Person](1)")),
        ("post eventType a list", post_added(eventType=["PostAdded"])),
    ],
)
async def test_wrong_types_are_refused(stack: Stack, name: str, envelope: Any) -> None:
    body = json.dumps(envelope).encode()
    await assert_refused_quietly(
        stack,
        [RawRequest(name, "POST", "/webhooks/ringcentral", notification_headers(stack), body)],
    )


async def test_one_bad_notification_does_not_fail_the_good_ones_in_its_batch(
    storage: Storage,
) -> None:
    good = [Notification.parse(post_added(f"good-{i}")) for i in range(23)]
    # Only a caller inside the process could bring this (the edge refuses it), which is
    # what makes it a good stand-in for any row SQLite will not take.
    bad = Notification("\ud800", "/team-messaging/v1/posts", None, None, None, {}, "post.added")
    results = await asyncio.gather(
        *(storage.add_notification(n) for n in [*good[:10], bad, *good[10:]]),
        return_exceptions=True,
    )
    assert results[:10] == [True] * 10 and results[11:] == [True] * 13
    assert isinstance(results[10], Exception)
    stored = {item.uuid for item in await storage.due_inbox(100)}
    assert stored == {n.uuid for n in good}


@pytest.fixture
async def storage(tmp_path: Any) -> Any:
    storage = await Storage.open(tmp_path / "bot.sqlite3")
    yield storage
    await storage.close()


# --- the AI webhook ----------------------------------------------------------------------

AI_SECRET = "a-job-secret-0123456789abcdefghij"


async def pending_job(stack: Stack) -> AiJob:
    from bot.app import SERVICES

    now = time.time()
    job = AiJob(
        job_id="job-hostile-1",
        requester_id="7001",
        account_id="809640001",
        destination={"kind": "direct", "extensionId": "7001"},
        source_label="recording 1",
        recording_id="1",
        entitled_ids=frozenset({"7001"}),
        webhook_secret_hash=secret_hash(AI_SECRET),
        state="pending",
        requested_at=now + 3600,  # not yet due for polling: only the webhook may touch it
        finished_at=None,
        expires_at=now + 3600,
    )
    await stack.bot.app[SERVICES].storage.save_ai_job(job)
    return job


async def test_the_ai_webhook_refuses_a_wrong_secret_before_reading_the_body(
    stack: Stack,
) -> None:
    await pending_job(stack)
    # A body that claims 10 MiB but never comes: reading it would hang; the answer must not.
    response = await send_raw(
        stack.bot.url,
        RawRequest(
            "wrong secret, endless body",
            "POST",
            "/webhooks/ai/not-the-secret",
            ((b"Content-Type", b"application/json"),),
            b'{"jobId": "job-hostile-1"',
            content_length=10 * 1024 * 1024,
        ),
        timeout_s=5,
    )
    assert response.status == 404


async def test_the_ai_webhook_reads_at_most_a_mebibyte(stack: Stack) -> None:
    job = await pending_job(stack)
    big = json.dumps({"jobId": job.job_id, "result": {"pad": "x" * (1024 * 1024)}}).encode()
    before = await row_counts(stack)
    response = await send_raw(
        stack.bot.url,
        RawRequest(
            "right secret, 1 MiB+",
            "POST",
            f"/webhooks/ai/{AI_SECRET}",
            ((b"Content-Type", b"application/json"),),
            big,
        ),
    )
    assert response.status == 413
    assert json.loads(response.body)["error"]
    assert await row_counts(stack) == before


async def test_the_ai_webhook_refuses_a_result_for_another_job_at_this_address(
    stack: Stack,
) -> None:
    await pending_job(stack)
    body = json.dumps({"jobId": "someone-elses-job", "status": "Success"}).encode()
    await assert_refused_quietly(
        stack,
        [
            RawRequest(
                "other job",
                "POST",
                f"/webhooks/ai/{AI_SECRET}",
                ((b"Content-Type", b"application/json"),),
                body,
            )
        ],
    )


# --- log lines ---------------------------------------------------------------------------


async def test_caller_strings_cannot_forge_log_lines(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    forged = "x\r\n2026-11-30 12:00:00 ERROR bot: forged line"
    duplicate = post_added(forged)
    body = json.dumps(duplicate).encode()
    caplog.set_level(logging.DEBUG)
    for _ in range(2):  # the second is a duplicate, which is logged with its uuid
        response = await send_raw(
            stack.bot.url,
            RawRequest("dup", "POST", "/webhooks/ringcentral", notification_headers(stack), body),
        )
        assert response.status == 200
    submit = json.dumps(
        {
            "type": "button_submit",
            "uuid": "submit-1",
            "user": {"id": "7001", "accountId": "809640001"},
            "data": {"action": forged},
            "conversation": {"id": "6001"},
        }
    ).encode()
    response = await send_raw(
        stack.bot.url,
        RawRequest("submit", "POST", "/webhooks/interactive", signed(submit), submit),
    )
    assert response.status < 500
    await settle(stack.bot)
    lines = [record.getMessage() for record in caplog.records]
    assert any("forged line" in line for line in lines)  # it was logged ...
    broken = [line for line in lines if "forged" in line and ("\n" in line or "\r" in line)]
    assert broken == []  # ... and on one line


# --- the corpus: every public endpoint, forged and malformed -----------------------------

JSON = (b"Content-Type", b"application/json")
FORM = (b"Content-Type", b"application/x-www-form-urlencoded")

MALFORMED_BODIES: tuple[tuple[str, bytes], ...] = (
    ("empty", b""),
    ("truncated", b'{"uuid": "a", "event":'),
    ("null", b"null"),
    ("list", b"[]"),
    ("string", b'"text"'),
    ("number", b"1e999999"),
    ("not utf-8", b"\xff\xfe\xfd{}"),
    ("nul bytes", b"\x00" * 64),
    ("deep lists", b"[" * 100_000),
    ("deep objects", b'{"a":' * 20_000 + b"1" + b"}" * 20_000),
    ("lone surrogate", b'{"uuid": "\\ud800", "event": "/x", "body": {}}'),
    ("lone low surrogate", b'{"uuid": "u", "event": "/x", "body": {"text": "\\udfff"}}'),
    ("duplicate keys", b'{"uuid": "a", "uuid": 1, "event": "/x", "body": {}}'),
    ("utf-16", '{"uuid": "a"}'.encode("utf-16")),
)
BAD_HEADER_VALUES: tuple[tuple[str, bytes], ...] = (
    ("latin-1", b"caf\xe9"),
    ("invalid utf-8", b"\xff\xfe\xfd"),
    ("nul", b"abc\x00def"),
    ("long", b"x" * 8000),
    ("spaces", b"   "),
    ("unicode", "tökén-ü".encode()),
)


def notification_envelopes() -> list[tuple[str, Any]]:
    """Envelopes with the right token that are still not notifications."""
    good = post_added("corpus")
    return [
        ("no uuid", {k: v for k, v in good.items() if k != "uuid"}),
        ("empty uuid", {**good, "uuid": ""}),
        ("long uuid", {**good, "uuid": "u" * 201}),
        ("no event", {k: v for k, v in good.items() if k != "event"}),
        ("empty event", {**good, "event": ""}),
        ("no body", {k: v for k, v in good.items() if k != "body"}),
        ("body string", {**good, "body": "x"}),
        ("body null", {**good, "body": None}),
        ("uuid bool", {**good, "uuid": True}),
        ("uuid float", {**good, "uuid": 1.5}),
        ("uuid object", {**good, "uuid": {"a": 1}}),
        ("event list", {**good, "event": ["/team-messaging/v1/posts"]}),
        ("timestamp list", {**good, "timestamp": []}),
        ("ownerId bool", {**good, "ownerId": False}),
        ("eventType number", post_added("c", eventType=1)),
        ("text object", post_added("c", text={"a": "b"})),
        ("text list", post_added("c", text=["help"])),
        ("groupId bool", post_added("c", groupId=True)),
        ("creatorId float", post_added("c", creatorId=1.5)),
        ("mentions object", post_added("c", mentions={"id": "1"})),
        ("post id list", post_added("c", id=[1])),
        (
            "chat members string",
            {
                **good,
                "event": "/team-messaging/v1/chats",
                "body": {"id": "1", "eventType": "GroupJoined", "members": "all"},
            },
        ),
        (
            "extension id list",
            {
                **good,
                "event": "/restapi/v1.0/account/~/extension/62288329999",
                "body": {"extensionId": ["1"], "eventType": "Delete"},
            },
        ),
    ]


def corpus(verification_token: str) -> dict[str, list[RawRequest]]:
    """Forged and malformed requests per public endpoint; `verification_token` is the
    bot's, for the requests that are authentic but malformed."""
    token = verification_token.encode()
    with_token = (JSON, (b"Verification-Token", token))
    sample = json.dumps(post_added("corpus-sample")).encode()
    hook = "/webhooks/ringcentral"
    notifications: list[RawRequest] = []
    for name, body in (*MALFORMED_BODIES, ("sample", sample)):
        notifications.append(RawRequest(f"no token, {name}", "POST", hook, (JSON,), body))
        notifications.append(
            RawRequest(
                f"wrong token, {name}",
                "POST",
                hook,
                (JSON, (b"Verification-Token", b"not-" + token)),
                body,
            )
        )
        for header_name, value in BAD_HEADER_VALUES:
            notifications.append(
                RawRequest(
                    f"{header_name} token, {name}",
                    "POST",
                    hook,
                    (JSON, (b"Verification-Token", value)),
                    body,
                )
            )
        if name != "sample":
            notifications.append(RawRequest(f"right token, {name}", "POST", hook, with_token, body))
    for name, envelope in notification_envelopes():
        notifications.append(
            RawRequest(
                f"right token, {name}",
                "POST",
                hook,
                with_token,
                json.dumps(envelope).encode(),
            )
        )
    notifications.append(
        RawRequest(
            "right token, 2 MiB",
            "POST",
            hook,
            with_token,
            b'{"uuid": "big", "event": "/x", "body": {"t": "' + b"x" * 2_097_152 + b'"}}',
        )
    )
    notifications.append(
        RawRequest(
            "right token, lies about its length",
            "POST",
            hook,
            with_token,
            sample,
            content_length=50 * 1024 * 1024,
        )
    )

    handshakes = [
        RawRequest(
            f"validation token {name}",
            "POST",
            hook,
            ((b"Validation-Token", value),),
        )
        for name, value in BAD_HEADER_VALUES
        if name != "spaces"  # surrounding spaces are trimmed to nothing: an empty token
    ]
    handshakes += [
        RawRequest("validation token too long", "POST", hook, ((b"Validation-Token", b"v" * 600),)),
        RawRequest(
            "someone else's verification token",
            "POST",
            hook,
            ((b"Validation-Token", b"abc"), (b"Verification-Token", b"theirs")),
        ),
        RawRequest(
            "latin-1 verification token",
            "POST",
            hook,
            ((b"Validation-Token", b"abc"), (b"Verification-Token", b"\xe9\xe9")),
        ),
    ]

    interactive: list[RawRequest] = []
    submit = json.dumps(
        {
            "type": "button_submit",
            "uuid": "corpus-submit",
            "user": {"id": "7001", "accountId": "809640001"},
            "data": {"action": "digest.feedback", "callKey": "pbx:1", "verdict": "helpful"},
            "conversation": {"id": "6001"},
        }
    ).encode()
    for name, body in (*MALFORMED_BODIES, ("sample", submit)):
        interactive.append(
            RawRequest(f"unsigned, {name}", "POST", "/webhooks/interactive", (JSON,), body)
        )
        interactive.append(
            RawRequest(
                f"wrongly signed, {name}",
                "POST",
                "/webhooks/interactive",
                (JSON, (b"X-Glip-Signature", b"sha1=" + b"0" * 40)),
                body,
            )
        )
        for header_name, value in BAD_HEADER_VALUES:
            interactive.append(
                RawRequest(
                    f"{header_name} signature, {name}",
                    "POST",
                    "/webhooks/interactive",
                    (JSON, (b"X-Glip-Signature", value)),
                    body,
                )
            )
        if name != "sample":
            interactive.append(
                RawRequest(f"signed, {name}", "POST", "/webhooks/interactive", signed(body), body)
            )
    for name, change in (
        ("no type", {"type": None}),
        ("other type", {"type": "message"}),
        ("no uuid", {"uuid": None}),
        ("uuid object", {"uuid": {"a": 1}}),
        ("no user", {"user": None}),
        ("user string", {"user": "7001"}),
        ("data list", {"data": [1]}),
    ):
        document = {**json.loads(submit), **change}
        body = json.dumps(document).encode()
        interactive.append(
            RawRequest(f"signed, {name}", "POST", "/webhooks/interactive", signed(body), body)
        )

    ai: list[RawRequest] = []
    result = json.dumps({"jobId": "job-1", "status": "Success", "response": {}}).encode()
    for secret in (
        "x",
        "not-the-secret",
        "a" * 32,
        "A" * 200,
        "%00" * 20,
        "%FF%FE" * 10,
        "%E2%80%AE" * 10,
        "..%2F..%2Fetc%2Fpasswd",
        "secret%0D%0AX-Injected:%201",
        quote("ünïcödé-secret-0123456789"),
    ):
        for name, body in (("result", result), *MALFORMED_BODIES):
            ai.append(
                RawRequest(
                    f"{secret[:20]}, {name}", "POST", f"/webhooks/ai/{secret}", (JSON,), body
                )
            )
        ai.append(
            RawRequest(
                f"{secret[:20]}, endless body",
                "POST",
                f"/webhooks/ai/{secret}",
                (JSON,),
                b"{",
                content_length=30 * 1024 * 1024,
            )
        )

    oauth_post: list[RawRequest] = []
    for value in (
        "",
        "unknown-but-well-formed-token",
        "abc\r\ndef",
        "abc\x00",
        "a b",
        "é",
        "x" * 5000,
        "Bearer abc",
    ):
        oauth_post.append(
            RawRequest(
                f"form {value[:20]!r}",
                "POST",
                "/oauth/redirect",
                (FORM,),
                f"access_token={quote(value)}".encode(),
            )
        )
    for name, body in MALFORMED_BODIES:
        oauth_post.append(RawRequest(f"json {name}", "POST", "/oauth/redirect", (JSON,), body))
        oauth_post.append(RawRequest(f"form {name}", "POST", "/oauth/redirect", (FORM,), body))
    for name, document in (
        ("token object", {"access_token": {"a": "b"}}),
        ("token list", {"access_token": ["a"]}),
        ("token bool", {"access_token": True}),
        ("token null", {"access_token": None}),
        ("other client", {"access_token": "abc", "client_id": "someone-else"}),
        ("creator not an id", {"access_token": "abc", "creator_extension_id": "1; DROP"}),
    ):
        oauth_post.append(
            RawRequest(
                f"json {name}", "POST", "/oauth/redirect", (JSON,), json.dumps(document).encode()
            )
        )
    oauth_post.append(
        RawRequest(
            "multipart",
            "POST",
            "/oauth/redirect",
            ((b"Content-Type", b"multipart/form-data; boundary=x"),),
            b"--x\r\n",
        )
    )
    oauth_post.append(
        RawRequest("form not utf-8", "POST", "/oauth/redirect", (FORM,), b"access_token=\xff\xfe")
    )

    oauth_get = [
        RawRequest(f"query {query[:30]}", "GET", f"/oauth/redirect{query}")
        for query in (
            "",
            "?",
            "?code=",
            "?code=%0D%0Aabc",
            "?code=abc%00",
            "?code=" + "c" * 5000,
            "?code=not-a-real-code",
            "?code=abc&client_id=%FF%FE",
            "?code=abc&client_id=someone-else",
            "?code=abc&creator_extension_id=%0Aabc",
            "?error=access_denied",
            "?error=%0D%0Aforged",
            "?error=" + "e" * 5000,
            "?code=%FF",
            "?code=%E2%80%AE",
        )
    ]

    status = [
        RawRequest(f"authorization {name}", "GET", "/status", ((b"Authorization", value),))
        for name, value in (
            *BAD_HEADER_VALUES,
            ("bearer latin-1", b"Bearer caf\xe9"),
            ("bearer wrong", b"Bearer wrong"),
            ("bearer almost", b"Bearer " + STATUS_TOKEN.encode()[:-1]),
            ("basic", b"Basic " + STATUS_TOKEN.encode()),
            ("bare token", STATUS_TOKEN.encode()),
            ("bearer nul", b"Bearer " + STATUS_TOKEN.encode() + b"\x00"),
        )
    ]
    status.append(RawRequest("no authorization", "GET", "/status"))

    elsewhere = [
        RawRequest("old healthz", "GET", "/healthz"),
        RawRequest("unknown path", "GET", "/admin"),
        RawRequest("traversal", "GET", "/../../etc/passwd"),
        RawRequest("encoded traversal", "GET", "/webhooks/%2E%2E/%2E%2E/etc/passwd"),
        RawRequest("GET the webhook", "GET", hook),
        RawRequest("PUT the webhook", "PUT", hook, (JSON,), sample),
        RawRequest("DELETE the redirect", "DELETE", "/oauth/redirect"),
        RawRequest("POST livez", "POST", "/livez", (JSON,), b"{}"),
        RawRequest("POST status", "POST", "/status", (JSON,), b"{}"),
    ]
    return {
        "notifications": notifications,
        "handshake": handshakes,
        "interactive": interactive,
        "ai-webhook": ai,
        "oauth-post": oauth_post,
        "oauth-get": oauth_get,
        "status": status,
        "elsewhere": elsewhere,
    }


ENDPOINTS = (
    "notifications",
    "handshake",
    "interactive",
    "ai-webhook",
    "oauth-post",
    "oauth-get",
    "status",
    "elsewhere",
)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_forged_and_malformed_requests_get_a_4xx_and_change_nothing(
    stack: Stack, endpoint: str
) -> None:
    requests = corpus(stack.config.verification_token)[endpoint]
    assert len(requests) >= 8
    await assert_refused_quietly(stack, requests)


def test_the_corpus_is_large() -> None:
    """The in-process corpus alone; the separate-process one in tests/blackbox/ adds more."""
    assert sum(len(requests) for requests in corpus("token").values()) >= 500
