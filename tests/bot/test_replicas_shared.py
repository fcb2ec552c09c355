"""What replicas on one PostgreSQL database decide together (issue 13): the rate-limit
window and 429 penalties of a group, the day's post budget, each person's command quota,
and which account a bot's notifications belong to.

Each "replica" here is a storage of its own (its own connection pool) on one database, with
the governor, budget and quota the bot builds on it (bot/app.py). The pacing tests send real
requests to the sandbox with its rate limiting on, and judge by the sandbox's own request
log, as tests/bot/test_pacing_after_429.py does: no 429 where the window was respected, and
no request of the group inside a penalty.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar

import aiohttp
import pytest

from bench.chaos import requests_inside_penalty
from bot.app import SERVICES
from bot.ratelimit import PacingUnavailable, PenaltyMemory, RateGovernor
from bot.rc import RingCentralClient, RingCentralRateLimited, RingCentralUnavailable, StaticToken
from bot.reply_limits import ReplyLimits, Verdict
from bot.store import StorageInterface, open_storage
from bot.store.opening import replica_sharing
from bot.store.records import PostPlace
from sandbox import defaults
from sandbox.runner import RunningSandbox, start_sandbox
from tests.e2e import Control, Stack, eventually, settle
from tests.stores import StoreFactory, postgres_rows

T = TypeVar("T")


@pytest.fixture
async def sandbox() -> AsyncIterator[RunningSandbox]:
    running = await start_sandbox()
    try:
        yield running
    finally:
        await running.close()


@pytest.fixture
async def control(sandbox: RunningSandbox) -> AsyncIterator[Control]:
    async with aiohttp.ClientSession() as session:
        yield Control(session, sandbox.url)


@pytest.fixture
async def replicas(postgres_url: str) -> AsyncIterator[list[StorageInterface]]:
    """Two replicas' storages on one PostgreSQL database."""
    opened = [await open_storage(postgres_url, replica_id=f"replica-{n}") for n in (1, 2)]
    try:
        yield opened
    finally:
        for storage in opened:
            await storage.close()


def bot_client(
    session: aiohttp.ClientSession, sandbox: RunningSandbox, storage: StorageInterface
) -> RingCentralClient:
    """The bot's client as a replica builds it on `storage` (bot/app.py, bot/installs.py)."""
    memory = PenaltyMemory(storage, shared=replica_sharing(storage).windows)
    return RingCentralClient(
        session, sandbox.url, StaticToken(defaults.BOT_TOKEN), governor=memory.governor("bot")
    )


async def bot_chats(control: Control, count: int) -> list[str]:
    chats = []
    for n in range(count):
        person = await control.user(f"Person {n}")
        chats.append(await control.chat([person, defaults.BOT_EXTENSION_ID]))
    return chats


def card(text: str) -> dict[str, Any]:
    return {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": "1.3",
        "body": [{"type": "TextBlock", "text": text, "wrap": True}],
    }


async def until_answered(send: Callable[[], Awaitable[T]]) -> T:
    """What the outbox does with a 429: try again (the governor holds it until allowed)."""
    for _ in range(30):
        try:
            return await send()
        except RingCentralRateLimited:
            continue
    raise AssertionError("still refused after 30 attempts")


def refused(requests: list[Any]) -> int:
    return sum(1 for r in requests if r.get("status") == 429)


async def test_two_replicas_sending_at_once_stay_inside_the_window_together(
    sandbox: RunningSandbox, control: Control, replicas: list[StorageInterface]
) -> None:
    """Each replica alone would see room for every request; together they would pass the
    limit and meet 429s (a whole penalty). With the shared window, none is refused."""
    await control.call(
        "POST",
        "/faults",
        {"limits": {"Medium": {"limit": 5, "windowSeconds": 3, "penaltySeconds": 2}}},
    )
    chats = await bot_chats(control, 4)
    await control.call("DELETE", "/requests")
    async with aiohttp.ClientSession() as session:
        first, second = (bot_client(session, sandbox, storage) for storage in replicas)
        answers = await asyncio.gather(
            *(
                until_answered(
                    partial(
                        (first if n % 2 else second).recent_card_ids,
                        chats[n % 4],
                        creator_id="x",
                        since=0,
                    )
                )
                for n in range(12)
            )
        )
    assert answers == [[]] * 12
    requests = await control.requests()
    assert len(requests) == 12
    assert refused(requests) == 0
    assert requests_inside_penalty([dict(r) for r in requests]) == []


async def test_a_429_met_by_one_replica_keeps_the_other_out_until_retry_after(
    sandbox: RunningSandbox, control: Control, replicas: list[StorageInterface]
) -> None:
    """Replica 1 meets a 429 storm; replica 2, whose window looked fine, sends nothing of
    the group until the `Retry-After` is over, and then one request probes alone."""
    chats = await bot_chats(control, 4)
    async with aiohttp.ClientSession() as session:
        first, second = (bot_client(session, sandbox, storage) for storage in replicas)
        await first.create_card(chats[0], card("before the storm"))
        await second.create_card(chats[1], card("before the storm"))
        await control.call(
            "POST",
            "/faults",
            {"storm": {"durationSeconds": 2.5, "retryAfter": 1, "paths": ["/adaptive-cards"]}},
        )
        with pytest.raises(RingCentralRateLimited):
            await first.create_card(chats[0], card("the first 429"))
        # Replica 2 learns of the penalty only through the database.
        assert second.governor.penalty_left("medium") == 0.0
        await asyncio.gather(
            *(
                until_answered(
                    partial((first if n % 2 else second).create_card, chat, card(f"digest {chat}"))
                )
                for n, chat in enumerate(chats)
            )
        )
    for chat in chats:
        texts = [c["card"]["body"][0]["text"] for c in await control.cards(chat)]
        assert texts.count(f"digest {chat}") == 1
    requests = [dict(r) for r in await control.requests()]
    assert refused(requests) >= 2  # the storm outlasted one Retry-After
    assert requests_inside_penalty(requests) == []


async def test_a_replica_that_cannot_reach_the_shared_window_sends_nothing(
    sandbox: RunningSandbox, control: Control, postgres_url: str
) -> None:
    """Fail closed: no reservation, no request; the caller gets a clear, retryable error."""
    storage = await open_storage(postgres_url)
    await control.call("DELETE", "/requests")
    async with aiohttp.ClientSession() as session:
        client = bot_client(session, sandbox, storage)
        await storage.close()  # the database is gone for this replica
        with pytest.raises(RingCentralUnavailable, match="shared rate-limit window"):
            await client.recent_card_ids("1", creator_id="x", since=0)
    assert await control.requests() == []


async def test_the_penalty_and_window_outlive_every_replica(
    postgres_url: str, replicas: list[StorageInterface]
) -> None:
    """A replica started after a 429 (the others gone or not) waits the penalty out: the
    row is the memory, on the database's clock."""
    governor = PenaltyMemory(replicas[0], shared=replica_sharing(replicas[0]).windows).governor(
        "bot"
    )
    async with governor.sending("heavy"):
        governor.penalise("heavy", 30.0)
        await governor.remember_penalty("heavy")
    later = await open_storage(postgres_url)
    try:
        sleeps: list[float] = []

        async def no_sleep(seconds: float) -> None:
            sleeps.append(seconds)
            raise asyncio.CancelledError  # give up instead of waiting: we saw the wait

        restarted = RateGovernor(
            sleep=no_sleep, identity="bot", shared=replica_sharing(later).windows
        )
        with pytest.raises(asyncio.CancelledError):
            async with restarted.sending("heavy"):
                pytest.fail("sent inside the penalty")
    finally:
        await later.close()
    assert len(sleeps) == 1 and 28.0 < sleeps[0] <= 30.0
    [row] = await postgres_rows(
        postgres_url, "SELECT penalties, known FROM rate_limits WHERE grp = 'heavy'"
    )
    assert (row["penalties"], row["known"]) == (1, 0)


async def test_the_day_budget_taken_by_two_replicas_at_once_is_never_exceeded(
    replicas: list[StorageInterface], postgres_url: str
) -> None:
    first, second = replicas
    taken = await asyncio.gather(
        *(takes(first if n % 2 else second, "acc-1", "2026-12-01", 7) for n in range(40))
    )
    assert taken.count(True) == 7
    rows = await postgres_rows(postgres_url, "SELECT account_id, day, count FROM daily_posts")
    assert [tuple(r) for r in rows] == [("acc-1", "2026-12-01", 7)]


async def test_post_budget_places_are_taken_given_back_and_kept_per_day(
    store_factory: StoreFactory,
) -> None:
    storage = await store_factory.open()
    assert [await takes(storage, "acc-1", "2026-12-01", 2) for _ in range(3)] == [
        True,
        True,
        False,
    ]
    # A post RingCentral certainly did not make gives its place back.
    await storage.give_back_post("acc-1", "2026-12-01")
    assert await takes(storage, "acc-1", "2026-12-01", 2)
    assert not await takes(storage, "acc-1", "2026-12-01", 2)
    # Another day, another account: budgets of their own; no budget, no post.
    assert await takes(storage, "acc-1", "2026-12-02", 2)
    assert await takes(storage, "acc-2", "2026-12-01", 2)
    assert not await takes(storage, "acc-3", "2026-12-01", 0)


async def test_a_persons_command_quota_is_one_across_replicas(
    replicas: list[StorageInterface],
) -> None:
    """Three commands per window: the person gets three answers in all, whichever replica
    each message reaches, then one notice, then silence."""
    first, second = (
        ReplyLimits(commands_per_window=3, people=replica_sharing(storage).people)
        for storage in replicas
    )
    verdicts = [(await (first if n % 2 else second).command("acc-1:ext-7"))[0] for n in range(6)]
    assert verdicts == [Verdict.ANSWER] * 3 + [Verdict.NOTICE, Verdict.SILENT, Verdict.SILENT]
    # Someone else, even in the same account, has a quota of their own.
    assert (await second.command("acc-1:ext-8"))[0] is Verdict.ANSWER
    # Commands sent at once to both replicas still get three answers between them.
    burst = await asyncio.gather(
        *((first if n % 2 else second).command("acc-2:ext-9") for n in range(8))
    )
    assert [verdict for verdict, _ in burst].count(Verdict.ANSWER) == 3


async def test_unknown_words_in_a_row_count_across_replicas(
    replicas: list[StorageInterface],
) -> None:
    first, second = (ReplyLimits(people=replica_sharing(storage).people) for storage in replicas)
    verdicts = [await (first if n % 2 else second).unknown_word("acc-1:ext-7") for n in range(5)]
    assert verdicts == [Verdict.ANSWER] * 3 + [Verdict.NOTICE, Verdict.SILENT]


async def test_a_persons_counts_carry_their_account_to_be_forgotten_with_it(
    replicas: list[StorageInterface], postgres_url: str
) -> None:
    """`reply_limits` carries the account, so forgetting an account (which deletes from
    every table with an `account_id`) takes its people's counts too."""
    limits = ReplyLimits(people=replica_sharing(replicas[0]).people)
    await limits.command("acc-1:ext-7")
    rows = await postgres_rows(postgres_url, "SELECT person, account_id FROM reply_limits")
    assert [tuple(r) for r in rows] == [("acc-1:ext-7", "acc-1")]


async def install_row(url: str, bot_extension_id: str, account_id: str) -> None:
    await postgres_rows(
        url,
        "INSERT INTO installs (bot_extension_id, account_id, access_token, source, "
        "installed_at) VALUES ($1, $2, 'sealed', 'test', 0)",
        bot_extension_id,
        account_id,
    )


async def soon(check: Callable[[], bool], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        await asyncio.sleep(0.02)
    return check()


async def test_a_bot_installed_through_one_replica_is_attributed_on_every_replica(
    replicas: list[StorageInterface], postgres_url: str
) -> None:
    """The install is stored by replica 1; RingCentral's notifications for the new bot may
    reach replica 2 first, which must know whose they are (else they are refused)."""
    first, second = replicas
    assert second.account_of_owner("bot-9") is None  # unknown owner: no account
    await install_row(postgres_url, "bot-9", "acc-9")
    first.attribute_owner("bot-9", "acc-9")  # as bot/installs.py does on the receiving one
    assert await soon(lambda: second.account_of_owner("bot-9") == "acc-9")
    # Removed (uninstall, forget_account): no replica attributes it any more.
    await postgres_rows(postgres_url, "DELETE FROM installs WHERE bot_extension_id = 'bot-9'")
    assert await soon(lambda: second.account_of_owner("bot-9") is None)
    assert await soon(lambda: first.account_of_owner("bot-9") is None)


async def test_a_replica_starting_later_attributes_the_bots_installed_before(
    postgres_url: str, replicas: list[StorageInterface]
) -> None:
    await install_row(postgres_url, "bot-1", "acc-1")
    later = await open_storage(postgres_url)
    try:
        assert later.account_of_owner("bot-1") == "acc-1"
        assert later.account_of_owner("bot-2") is None
    finally:
        await later.close()


async def test_posts_refused_by_ringcentral_give_their_budget_back(stack: Stack) -> None:
    """The budget is taken before each post; a 429 storm on card creation must not eat it:
    at the end the day's count is exactly the posts RingCentral made."""
    user = await stack.control.user("Kim Park")
    dm = await stack.control.chat([user, stack.bot_id])
    await stack.control.say(dm, user, "optin")
    await settle(stack.bot)
    await stack.control.call(
        "POST",
        "/faults",
        {"storm": {"durationSeconds": 1.5, "retryAfter": 1, "paths": ["/adaptive-cards"]}},
    )
    calls = [
        await stack.control.call("POST", "/calls", {"ownerExtensionId": user}) for _ in range(3)
    ]

    async def all_delivered() -> list[dict[str, Any]] | None:
        found = await stack.control.cards(dm)
        return found if len(found) >= len(calls) else None

    await eventually(all_delivered, within_s=60)
    await settle(stack.bot)
    requests = await stack.control.requests()
    made = [
        r
        for r in requests
        if r["method"] == "POST"
        and r["path"].endswith(("/adaptive-cards", "/posts"))
        and r["status"] in (200, 201)
    ]
    assert any(r["status"] == 429 for r in requests), "the storm should have bitten"
    storage = stack.bot.app[SERVICES].storage
    account = next(iter(stack.bot.app[SERVICES].installs.values())).account_id
    assert await storage.posts_today(account, utc_day()) == len(made) == len(calls) + 1


async def takes(storage: StorageInterface, account: str, day: str, budget: int) -> bool:
    """Whether a post (no card) got a place in the day's budget."""
    return await storage.take_post(account, day, budget) is PostPlace.TAKEN


async def claims(storage: StorageInterface, card_key: str, destination: str, chat: str) -> bool:
    """Whether a card's creation (and a post of a large budget) was given to `storage`."""
    card = (card_key, destination, chat)
    return await storage.take_post("acc-1", "2026-12-01", 10_000, card) is PostPlace.TAKEN


def utc_day() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d")


async def test_a_replica_dying_while_its_request_is_out_releases_the_group_at_once(
    replicas: list[StorageInterface], postgres_url: str
) -> None:
    """One request of a group is on the wire at a time across replicas. If the replica
    sending it dies before the answer, PostgreSQL ends its session and with it the hold:
    the others go on at once, not after a lease of 40 s."""
    first, second = (
        RateGovernor(identity="bot", shared=replica_sharing(storage).windows)
        for storage in replicas
    )
    holding = asyncio.Event()
    dead = asyncio.Event()

    async def dies_mid_request() -> None:
        async with first.sending("medium"):
            holding.set()
            await dead.wait()  # never answered: the process is gone

    dying = asyncio.create_task(dies_mid_request())
    await holding.wait()
    blocked = asyncio.create_task(enter_and_leave(second, "medium"))
    await asyncio.sleep(0.5)
    assert not blocked.done()  # replica 1's request is out: replica 2 waits for its answer
    # Replica 1 is SIGKILLed: its connections end, as PostgreSQL sees a dead client.
    await postgres_rows(
        postgres_url,
        "SELECT pg_terminate_backend(pid) FROM pg_locks "
        "WHERE locktype = 'advisory' AND pid <> pg_backend_pid() AND granted",
    )
    await asyncio.wait_for(blocked, 10.0)  # the lease was 40 s
    dying.cancel()
    with contextlib.suppress(BaseException):
        await dying


async def test_a_request_out_holds_up_only_its_own_identity_and_group(
    replicas: list[StorageInterface],
) -> None:
    """The holds of every group live on one connection per replica: a card creation that
    takes long (Medium) must not hold up a subscription check (Light), nor another
    identity's request of the same group."""
    bot, service = (
        RateGovernor(identity=identity, shared=replica_sharing(replicas[0]).windows)
        for identity in ("bot", "service")
    )
    other_replica = RateGovernor(identity="bot", shared=replica_sharing(replicas[1]).windows)
    async with bot.sending("medium"):
        await asyncio.wait_for(enter_and_leave(bot, "light"), 10.0)
        await asyncio.wait_for(enter_and_leave(service, "medium"), 10.0)
        await asyncio.wait_for(enter_and_leave(other_replica, "light"), 10.0)
        blocked = asyncio.create_task(enter_and_leave(other_replica, "medium"))
        await asyncio.sleep(0.5)
        assert not blocked.done()
    await asyncio.wait_for(blocked, 10.0)  # its answer came: the other replica goes on


async def test_a_replica_stuck_with_its_request_out_makes_the_others_give_up_not_hang(
    replicas: list[StorageInterface], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A replica alive but stuck (a paused process) keeps its session and its hold: the
    others do not wait for ever, nor send beside it. After the longest a request may take
    they give up that request (not sent, a retryable error for the caller)."""
    from bot.store.postgres import shared

    monkeypatch.setattr(shared, "WIRE_WAIT_MAX_S", 1.0)
    stuck = RateGovernor(identity="bot", shared=replica_sharing(replicas[0]).windows)
    other = RateGovernor(identity="bot", shared=replica_sharing(replicas[1]).windows)
    async with stuck.sending("medium"):
        with pytest.raises(PacingUnavailable):
            await asyncio.wait_for(enter_and_leave(other, "medium"), 10.0)
    await asyncio.wait_for(enter_and_leave(other, "medium"), 10.0)


async def enter_and_leave(governor: RateGovernor, group: str) -> None:
    """A request of `group` that is answered at once, without a rate-limit header."""
    async with governor.sending(group) as ticket:
        governor.relieve(group, ticket)


async def test_one_request_of_a_group_is_on_the_wire_at_a_time_across_replicas(
    sandbox: RunningSandbox, control: Control, replicas: list[StorageInterface]
) -> None:
    """The 429 storm the bench met: replica 1's card creation meets an injected 429 while
    replica 2's is already on its way, and arrives inside the penalty (a whole penalty
    again at RingCentral). No request of the group may leave while another one is out."""
    chats = await bot_chats(control, 4)
    async with aiohttp.ClientSession() as session:
        first, second = (bot_client(session, sandbox, storage) for storage in replicas)
        # Both learn where the window stands: from here on nothing holds them back but
        # each other.
        await first.create_card(chats[0], card("before the storm"))
        await second.create_card(chats[1], card("before the storm"))
        await control.call(
            "POST",
            "/faults",
            {
                "latencyMs": 300,
                "paths": ["/adaptive-cards"],
                "storm": {"durationSeconds": 0.2, "retryAfter": 1, "paths": ["/adaptive-cards"]},
            },
        )
        await control.call("DELETE", "/requests")
        await asyncio.gather(
            *(
                until_answered(
                    partial((first if n % 2 else second).create_card, chat, card(f"digest {chat}"))
                )
                for n, chat in enumerate(chats)
            )
        )
    requests = [dict(r) for r in await control.requests()]
    assert refused(requests) >= 1, "the storm should have bitten"
    assert requests_inside_penalty(requests) == []
    for chat in chats:
        texts = [c["card"]["body"][0]["text"] for c in await control.cards(chat)]
        assert texts.count(f"digest {chat}") == 1


async def test_the_backoff_without_retry_after_doubles_across_replicas(
    replicas: list[StorageInterface], postgres_url: str
) -> None:
    """A 429 without `Retry-After`: 30 s, then 60 s for the next one whichever replica
    meets it, back to 30 s after an answer that is not a 429."""
    first, second = (
        RateGovernor(identity="ringcx", shared=replica_sharing(storage).windows)
        for storage in replicas
    )

    async def header_less_429(governor: RateGovernor) -> float:
        async with governor.sending("ringcx-transcript"):
            pause = governor.penalise("ringcx-transcript", None)
        # The penalty is waited out (fast-forwarded here), not the point of this test.
        await postgres_rows(postgres_url, "UPDATE rate_limits SET penalty_until = 0")
        return pause

    assert await header_less_429(first) == 30.0
    assert await header_less_429(second) == 60.0
    assert await header_less_429(first) == 120.0
    await enter_and_leave(second, "ringcx-transcript")
    assert await header_less_429(first) == 30.0
    # The row says what the next replica starting will use.
    [row] = await postgres_rows(postgres_url, "SELECT unexplained_429s FROM rate_limits")
    assert row["unexplained_429s"] == 1


async def test_the_share_kept_for_digests_is_judged_on_the_shared_window(
    replicas: list[StorageInterface],
) -> None:
    """`delay_for` (the outbox keeps a quarter of the Medium window for digests) must see
    the requests of every replica: replica 2 alone sent nothing, but the window is full."""
    first, second = (
        RateGovernor(identity="bot", shared=replica_sharing(storage).windows)
        for storage in replicas
    )
    for _ in range(30):  # three quarters of 40
        await enter_and_leave(first, "medium")
    assert await first.delay_for("medium", keep_share=0.25) > 0
    assert await second.delay_for("medium", keep_share=0.25) > 0
    assert await second.delay_for("medium") == 0.0  # the last quarter is still free


async def test_one_replica_at_a_time_may_create_a_calls_card_in_a_destination(
    replicas: list[StorageInterface], postgres_url: str
) -> None:
    """The pending row of (call, destination) is the claim: while replica 1 may be creating
    the card, replica 2 waits (and later updates the card) instead of posting a second."""
    first, second = replicas
    assert await claims(first, "pbx:1", "direct:7", "chat-7")
    assert not await claims(second, "pbx:1", "direct:7", "chat-7")
    # Replica 1 retrying (the create timed out, say) keeps its claim.
    assert await claims(first, "pbx:1", "direct:7", "chat-7")
    # Another destination of the same call is a card of its own.
    assert await claims(second, "pbx:1", "chat:team", "team")
    # Replica 1 died: once its claim has run out, replica 2 takes over.
    await postgres_rows(
        postgres_url,
        "UPDATE posted_cards SET claimed_until = extract(epoch FROM clock_timestamp()) - 1 "
        "WHERE destination = 'direct:7'",
    )
    assert await claims(second, "pbx:1", "direct:7", "chat-7")
    assert not await claims(first, "pbx:1", "direct:7", "chat-7")
    # Once the card exists nobody creates it again: it is updated.
    await postgres_rows(
        postgres_url,
        "UPDATE posted_cards SET card_id = 'card-1', claimed_until = 0 "
        "WHERE destination = 'direct:7'",
    )
    assert not await claims(first, "pbx:1", "direct:7", "chat-7")
    assert not await claims(second, "pbx:1", "direct:7", "chat-7")
    rows = await postgres_rows(
        postgres_url, "SELECT destination, chat_id, card_id FROM posted_cards ORDER BY 1"
    )
    assert [tuple(r) for r in rows] == [("chat:team", "team", ""), ("direct:7", "chat-7", "card-1")]


async def test_claims_made_at_once_by_two_replicas_give_the_card_to_one(
    replicas: list[StorageInterface],
) -> None:
    first, second = replicas
    for n in range(20):
        given = await asyncio.gather(
            claims(first, f"pbx:{n}", "direct:7", "chat-7"),
            claims(second, f"pbx:{n}", "direct:7", "chat-7"),
        )
        assert sorted(given) == [False, True]


async def test_a_penalty_noted_without_remember_penalty_is_shared_when_the_request_ends(
    replicas: list[StorageInterface], postgres_url: str
) -> None:
    """RingCX's client notes a 429 with `penalise` alone: the penalty must still reach the
    shared row (when the request's place is given back), or other replicas would send."""
    first = RateGovernor(identity="ringcx", shared=replica_sharing(replicas[0]).windows)
    async with first.sending("ringcx-transcript"):
        first.penalise("ringcx-transcript", 20.0)
    other = await replica_sharing(replicas[1]).windows.reserve(
        "ringcx", "ringcx-transcript", default_limit=120, default_window_s=60.0, starting=True
    )
    assert not other.granted and 18.0 < other.wait_s <= 20.0


async def test_a_persons_counts_are_dropped_after_an_hour_without_a_message(
    replicas: list[StorageInterface], postgres_url: str
) -> None:
    limits = ReplyLimits(people=replica_sharing(replicas[0]).people)
    await limits.command("acc-1:ext-7")
    await limits.command("acc-1:ext-8")
    await postgres_rows(
        postgres_url,
        "UPDATE reply_limits SET updated_at = updated_at - 3601 WHERE person = 'acc-1:ext-7'",
    )
    await limits.command("acc-1:ext-9")  # someone new: the idle rows go
    rows = await postgres_rows(postgres_url, "SELECT person FROM reply_limits ORDER BY 1")
    assert [r["person"] for r in rows] == ["acc-1:ext-8", "acc-1:ext-9"]


async def test_a_refused_claim_takes_no_budget_and_a_full_budget_leaves_no_claim(
    replicas: list[StorageInterface], postgres_url: str
) -> None:
    first, second = replicas
    card = ("pbx:1", "direct:7", "chat-7")
    assert await first.take_post("acc-1", "2026-12-01", 1, card) is PostPlace.TAKEN
    assert await second.take_post("acc-1", "2026-12-01", 5, card) is PostPlace.CARD_CLAIMED
    other = ("pbx:2", "direct:7", "chat-7")
    assert await second.take_post("acc-1", "2026-12-01", 1, other) is PostPlace.OVER_BUDGET
    counts = await postgres_rows(postgres_url, "SELECT count FROM daily_posts")
    assert [r["count"] for r in counts] == [1]
    cards = await postgres_rows(postgres_url, "SELECT card_key FROM posted_cards")
    assert [r["card_key"] for r in cards] == ["pbx:1"]
