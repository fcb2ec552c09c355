"""RingCX transcripts through the sandbox: found by the windowed poller, delivered to
opted-in agents and queue chats, across a restart, 404 until ready, and on demand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bot.access import NOT_VISIBLE
from bot.app import SERVICES
from bot.cards import card_as_text
from bot.ringcx import POSITION_KEY, next_window
from tests.e2e import ADMIN_ID, Stack, eventually, settle

SUB_ACCOUNT = "12345"


def ringcx_config(stack: Stack, **extra: Any) -> dict[str, Any]:
    return {
        "enabled": True,
        "base_url": stack.sandbox.url,
        "sub_account_id": SUB_ACCOUNT,
        "window_minutes": 5,
        "lag_minutes": 5,
        "poll_interval_s": 1,
        "transcript_retry_base_s": 0.5,
        **extra,
    }


async def start_ringcx(stack: Stack, position: datetime, **extra: Any) -> None:
    """Restart the bot with RingCX on, its metadata position set (as if it had been running)."""
    await stack.bot.stop()
    storage = await stack.database().open(stack.config.token_cipher())
    await storage.set_state(POSITION_KEY, position.isoformat())
    await storage.close()
    await stack.restart_bot(already_stopped=True, ringcx=ringcx_config(stack, **extra))


async def segment(stack: Stack, agent: str, ended: datetime, **extra: Any) -> dict[str, Any]:
    accounts = await stack.control.call("GET", "/ringcx/accounts")
    if not (accounts["records"] if isinstance(accounts, dict) else accounts):
        await stack.control.call("POST", "/ringcx/accounts", {})
    duration = 120
    result: dict[str, Any] = await stack.control.call(
        "POST",
        "/ringcx/segments",
        {
            "agentExtensionId": agent,
            "segmentStartTime": (ended - timedelta(seconds=duration)).isoformat(),
            "durationSec": duration,
            **extra,
        },
    )
    return result


async def opted_in_agent(stack: Stack, name: str = "Alex Agent") -> tuple[str, str]:
    agent = await stack.control.user(name)
    dm = await stack.control.chat([agent, stack.bot_id])
    await stack.control.say(dm, agent, "optin")
    await settle(stack.bot)
    return agent, dm


async def transcripts_in(stack: Stack, chat: str) -> list[str]:
    return [
        t
        for t in (card_as_text(c["card"]) for c in await stack.control.cards(chat))
        if "Contact center transcript" in t
    ]


def test_windows_trail_real_time_and_grow_while_catching_up() -> None:
    now = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    window, lag = timedelta(minutes=15), timedelta(minutes=5)
    assert next_window(now - timedelta(minutes=10), now, window, lag) is None
    assert next_window(now - timedelta(minutes=20), now, window, lag) == (
        now - timedelta(minutes=20),
        900,
    )
    start = now - timedelta(hours=10)
    # Behind after downtime: whole windows, never more than an hour (reports.md's maximum).
    assert next_window(start, now, window, lag) == (start, 3600)
    assert next_window(start, now, timedelta(minutes=7), lag) == (start, 3360)


async def test_no_hour_is_skipped_or_read_twice_when_daylight_saving_ends(
    stack: Stack,
) -> None:
    """1 Nov 2026, 01:00-02:00 happens twice in US/Eastern (EDT, then EST). Local wall
    times cannot say which one is meant; the poller keeps UTC and asks in UTC."""
    agent, dm = await opted_in_agent(stack)
    first_pass = datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # 01:30 EDT
    second_pass = datetime(2026, 11, 1, 6, 30, tzinfo=UTC)  # 01:30 EST
    await segment(stack, agent, first_pass)
    await segment(stack, agent, second_pass)
    await start_ringcx(stack, datetime(2026, 11, 1, 5, 0, tzinfo=UTC), window_minutes=60)

    async def both() -> list[str] | None:
        texts = await transcripts_in(stack, dm)
        return texts if len(texts) >= 2 else None

    texts = await eventually(both, within_s=20)
    assert len(texts) == 2


async def test_an_opted_in_agent_gets_each_finished_transcript_once(stack: Stack) -> None:
    agent, dm = await opted_in_agent(stack)
    now = datetime.now(UTC)
    found = await segment(stack, agent, now - timedelta(minutes=8))
    await segment(stack, agent, now - timedelta(minutes=7), hasTranscript=False)
    await start_ringcx(stack, now - timedelta(minutes=10, seconds=5))
    texts = await eventually(lambda: transcripts_in(stack, dm), within_s=15)
    await settle(stack.bot)
    assert len(await transcripts_in(stack, dm)) == 1
    assert found["segmentId"]
    assert "Contact center transcript" in texts[0]
    metadata_requests = [
        r for r in await stack.control.requests() if "interaction-metadata" in r["path"]
    ]
    assert len(metadata_requests) == 1  # one window, one request: the 3/min budget held


async def test_windows_across_a_restart_neither_skip_nor_repeat(stack: Stack) -> None:
    agent, dm = await opted_in_agent(stack)
    now = datetime.now(UTC)
    await segment(stack, agent, now - timedelta(minutes=9))  # in the first window
    await segment(stack, agent, now - timedelta(minutes=2))  # behind the lag: not yet
    await start_ringcx(stack, now - timedelta(minutes=10, seconds=10))
    await eventually(lambda: transcripts_in(stack, dm), within_s=15)
    await settle(stack.bot)
    assert len(await transcripts_in(stack, dm)) == 1
    # Restart; time "passes" by lowering the lag, so the next window is ready.
    await stack.restart_bot(ringcx=ringcx_config(stack, lag_minutes=0))

    async def both() -> list[str] | None:
        texts = await transcripts_in(stack, dm)
        return texts if len(texts) >= 2 else None

    await eventually(both, within_s=15)
    await settle(stack.bot)
    assert len(await transcripts_in(stack, dm)) == 2


async def test_a_transcript_404_until_ready_is_retried(stack: Stack) -> None:
    agent, dm = await opted_in_agent(stack)
    now = datetime.now(UTC)
    await segment(
        stack, agent, now - timedelta(minutes=8), readyAfterSeconds=8 * 60 + 3
    )  # ready three seconds from now
    await start_ringcx(stack, now - timedelta(minutes=10, seconds=5))
    await eventually(lambda: transcripts_in(stack, dm), within_s=25)
    transcript_requests = [
        r for r in await stack.control.requests() if "/transcripts/" in r["path"]
    ]
    assert transcript_requests[0]["status"] == 404
    assert transcript_requests[-1]["status"] == 200


async def test_queue_chats_get_their_groups_transcripts(stack: Stack) -> None:
    agent = await stack.control.user("Not Opted In")
    lead = await stack.control.user("Team Lead")
    queue = await stack.control.chat([lead, stack.bot_id], "Group", name="Tier 2 queue")
    now = datetime.now(UTC)
    await segment(stack, agent, now - timedelta(minutes=8), agentGroupId="555")
    await start_ringcx(stack, now - timedelta(minutes=10, seconds=5), queue_chats={"555": queue})
    await eventually(lambda: transcripts_in(stack, queue), within_s=15)
    dm = await stack.control.chat([agent, stack.bot_id])
    assert await transcripts_in(stack, dm) == []  # the agent did not opt in


async def test_transcript_on_demand_follows_the_rules_for_calls(stack: Stack) -> None:
    agent, dm = await opted_in_agent(stack)
    other = await stack.control.user("Omar Other")
    admin = await stack.control.user("Ada Admin", extensionId=ADMIN_ID)
    now = datetime.now(UTC)
    made = await segment(stack, agent, now - timedelta(minutes=8))
    await start_ringcx(stack, now - timedelta(minutes=10, seconds=5))
    await eventually(lambda: transcripts_in(stack, dm), within_s=15)
    command = f"transcript {made['dialogId']} {made['segmentId']}"
    other_dm = await stack.control.chat([other, stack.bot_id])
    await stack.control.say(other_dm, other, command)
    admin_dm = await stack.control.chat([admin, stack.bot_id])
    await stack.control.say(admin_dm, admin, command)
    await settle(stack.bot)
    assert await stack.control.texts(other_dm, stack.bot_id) == [NOT_VISIBLE]
    assert len(await transcripts_in(stack, admin_dm)) == 1
    assert stack.bot.app[SERVICES].ringcx is not None


async def test_transcript_on_demand_for_a_segment_the_poller_has_not_reached(
    stack: Stack,
) -> None:
    """The poller trails real time (here by two hours); a segment that ended ten minutes
    ago is not stored yet, but its agent can have its transcript now: the bot looks its
    metadata up on demand, with the same rules on who may see it."""
    agent, dm = await opted_in_agent(stack)
    other = await stack.control.user("Omar Other")
    now = datetime.now(UTC)
    made = await segment(stack, agent, now - timedelta(minutes=10))
    await start_ringcx(stack, now - timedelta(minutes=30), lag_minutes=120)
    command = f"transcript {made['dialogId']} {made['segmentId']}"
    other_dm = await stack.control.chat([other, stack.bot_id])
    await stack.control.say(other_dm, other, command)
    await stack.control.say(dm, agent, command)
    await settle(stack.bot)
    assert await stack.control.texts(other_dm, stack.bot_id) == [NOT_VISIBLE]
    assert len(await transcripts_in(stack, dm)) == 1


async def test_ringcx_health_is_in_status_for_administrators(stack: Stack) -> None:
    agent, dm = await opted_in_agent(stack)
    admin = await stack.control.user("Ada Admin", extensionId=ADMIN_ID)
    now = datetime.now(UTC)
    await segment(stack, agent, now - timedelta(minutes=8))
    await start_ringcx(stack, now - timedelta(minutes=10, seconds=5))
    await eventually(lambda: transcripts_in(stack, dm), within_s=15)
    admin_dm = await stack.control.chat([admin, stack.bot_id])
    await stack.control.say(admin_dm, admin, "status")
    await stack.control.say(dm, agent, "status")
    await settle(stack.bot)
    [admin_status] = await stack.control.texts(admin_dm, stack.bot_id)
    assert "**RingCX**: token valid" in admin_status
    assert "read up to " in admin_status and "last error: none" in admin_status
    agent_texts = await stack.control.texts(dm, stack.bot_id)
    assert not any("**RingCX**" in text for text in agent_texts)  # administrators only


async def test_the_agent_is_named_not_numbered(stack: Stack) -> None:
    """Voice transcripts carry no names (like the real sample): the agent is looked up in
    the directory, so the card says who it was, not "extension 62288330001"."""
    agent, dm = await opted_in_agent(stack, name="Alex Agent")
    now = datetime.now(UTC)
    await segment(stack, agent, now - timedelta(minutes=8))
    await start_ringcx(stack, now - timedelta(minutes=10, seconds=5))
    [text] = await eventually(lambda: transcripts_in(stack, dm), within_s=15)
    assert "Agent: Alex Agent" in text
    assert f"extension {agent}" not in text


async def test_digital_segments_are_delivered_like_voice(stack: Stack) -> None:
    """Chat and SMS (DIGITAL) segments have transcripts too (`d-` ids, their own channel
    type): the poller takes them and the agent gets the transcript."""
    agent, dm = await opted_in_agent(stack, name="Alex Agent")
    now = datetime.now(UTC)
    made = await segment(stack, agent, now - timedelta(minutes=8), channelType="ENGAGE_MESSAGING")
    assert made["dialogId"].startswith("d-") and made["metadata"]["channelClass"] == "DIGITAL"
    await start_ringcx(stack, now - timedelta(minutes=10, seconds=5))
    [text] = await eventually(lambda: transcripts_in(stack, dm), within_s=15)
    assert "Channel: Voice" not in text
    assert "Agent: Alex Agent" in text


async def test_an_agent_is_looked_up_once_for_many_transcripts(stack: Stack) -> None:
    """The directory answer is cached: three transcripts of one agent cost one lookup of
    the agent (the Light group's 50 a minute are everyone's), and each card names them."""
    agent, dm = await opted_in_agent(stack, name="Alex Agent")
    now = datetime.now(UTC)
    for minutes in (9, 8, 7):
        await segment(stack, agent, now - timedelta(minutes=minutes))
    await start_ringcx(stack, now - timedelta(minutes=10, seconds=5))

    async def three() -> list[str] | None:
        texts = await transcripts_in(stack, dm)
        return texts if len(texts) == 3 else None

    texts = await eventually(three, within_s=20)
    assert all("Agent: Alex Agent" in text for text in texts)
    lookups = [
        r
        for r in await stack.control.requests()
        if r["method"] == "GET" and r["path"].endswith(f"/extension/{agent}")
    ]
    assert len(lookups) == 1
