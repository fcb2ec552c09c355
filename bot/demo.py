"""`python -m bot demo`: the whole path on this machine, no RingCentral account needed.

It starts the sandbox (a local RingCentral) and the bot, has a demo user opt in by
messaging the bot, simulates a finished call that RingSense analysed, waits for the
digest the bot posts, and prints it. This is the only place where `bot` uses `sandbox`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import signal
import sys
from collections.abc import Mapping
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import aiohttp

from bot.app import CONFIG, DELIVERY_WORKER, INBOX_WORKER, INTERACTIVE_PATH
from bot.cards import card_as_text
from bot.config import KNOWN_RINGSENSE_DOMAINS, load_config
from bot.crypto import ENV_SECRET_KEY, generate_key
from bot.logs import configure_logging
from bot.oauth import REDIRECT_PATH
from bot.runner import RunningBot, free_port, start_bot

DEMO_USER = "Alex Rivera"
DEMO_RINGCX_SUB_ACCOUNT = "12345"
DEMO_CALL: dict[str, Any] = {
    "participants": [{"name": "Jordan Lee", "phoneNumber": "+16505550123"}],
    "direction": "Outbound",
    "durationSec": 754,
}


class DemoError(Exception):
    """Something the person running the demo needs to hear, in one sentence."""


class SandboxControl:
    """The sandbox's `/_sandbox/` control API."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        self._session = session
        self._base = base_url.rstrip("/") + "/_sandbox"

    async def call(self, method: str, path: str, payload: Any = None) -> Any:
        async with self._session.request(method, self._base + path, json=payload) as response:
            body = await response.json(content_type=None)
            if response.status >= 400:
                raise DemoError(f"sandbox refused {method} {path}: {response.status} {body}")
            return body


async def run_demo(
    *,
    event_file: Path | None = None,
    event_domain: str | None = None,
    out_dir: Path | None = None,
    serve: bool = False,
    timeout_s: float = 30.0,
    log_level: str = "WARNING",
) -> int:
    from sandbox import defaults
    from sandbox.runner import start_sandbox

    try:
        event = _read_event(event_file) if event_file else None
        if event_domain is not None and event_domain not in KNOWN_RINGSENSE_DOMAINS:
            raise DemoError(
                f"{event_domain!r} is neither a file nor a RingSense domain "
                f"({', '.join(sorted(KNOWN_RINGSENSE_DOMAINS))})"
            )
    except DemoError as err:
        print(f"demo failed: {err}", file=sys.stderr)
        return 2
    verification_token = secrets.token_urlsafe(24)
    # The demo's database is temporary, so is the key its stored tokens are encrypted with.
    secret_key = generate_key()
    configure_logging(log_level, secrets=(verification_token, secret_key))
    sandbox = await start_sandbox()
    with TemporaryDirectory(prefix="ringsense-demo-") as workdir:
        port = free_port()
        config = load_config(
            None,
            environ={
                "RC_SERVER_URL": sandbox.url,
                "RC_CLIENT_ID": defaults.CLIENT_ID,
                "RC_CLIENT_SECRET": defaults.CLIENT_SECRET,
                "RC_JWT": defaults.SERVICE_USER_JWT,
                "RC_BOT_TOKEN": defaults.BOT_TOKEN,
                "RC_VERIFICATION_TOKEN": verification_token,
                "RC_SHARED_SECRET": defaults.SHARED_SECRET,
                ENV_SECRET_KEY: secret_key,
                "BOT_PUBLIC_URL": f"http://127.0.0.1:{port}",
            },
            overrides={
                "bot": {
                    "host": "127.0.0.1",
                    "port": port,
                    "database": str(Path(workdir) / "bot.sqlite3"),
                    "default_timezone": "America/New_York",
                },
                "ringcx": {
                    "enabled": True,
                    "base_url": sandbox.url,
                    "sub_account_id": DEMO_RINGCX_SUB_ACCOUNT,
                    "time_zone": "US/Eastern",
                    # Short windows so a segment made in the demo shows up within minutes.
                    "window_minutes": 1,
                    "lag_minutes": 1,
                    "poll_interval_s": 5,
                    "transcript_retry_base_s": 5,
                },
            },
        )
        bot: RunningBot | None = None
        try:
            async with aiohttp.ClientSession() as session:
                await SandboxControl(session, sandbox.url).call(
                    "POST", "/ringcx/accounts", {"subAccountId": DEMO_RINGCX_SUB_ACCOUNT}
                )
            bot = await start_bot(config)
            if serve:
                print(f"sandbox: {sandbox.url}", flush=True)
                print(f"bot: {bot.url}", flush=True)
            async with aiohttp.ClientSession() as session:
                control = SandboxControl(session, sandbox.url)
                cards, people = await _simulate(control, bot, event, timeout_s, event_domain)
            _show(cards)
            if out_dir is not None:
                _write_cards(out_dir, cards)
            if serve:
                owner_id, chat_id = people
                print(
                    f"\nTry it: post as the demo user ({owner_id}) in chat {chat_id}:\n"
                    f"  curl -s -XPOST {sandbox.url}/_sandbox/posts -d "
                    f'\'{{"chatId": "{chat_id}", "creatorId": "{owner_id}", '
                    f'"text": "analyze https://media.example.com/call.mp3"}}\'\n'
                    "  then read the chat: "
                    f"curl -s {sandbox.url}/_sandbox/chats/{chat_id}/posts\n"
                    "  (also: last, settings, status, jobs, help)\n"
                    "  a RingCX transcript for the demo user, delivered within about 2 minutes:\n"
                    f"  curl -s -XPOST {sandbox.url}/_sandbox/ringcx/segments -d "
                    f'\'{{"agentExtensionId": "{owner_id}"}}\'',
                    flush=True,
                )
                await _wait_for_interrupt()
            return 0
        except DemoError as err:
            print(f"demo failed: {err}", file=sys.stderr)
            return 1
        finally:
            if bot is not None:
                await bot.stop()
            await sandbox.close()


async def _simulate(
    control: SandboxControl,
    bot: RunningBot,
    event: Mapping[str, Any] | None,
    timeout_s: float,
    domain: str | None = None,
) -> tuple[list[tuple[str, str, Mapping[str, Any]]], tuple[str, str]]:
    sent: list[tuple[str, str, Mapping[str, Any]]] = []
    card_arrived = asyncio.Event()

    def record(chat_id: str, card_id: str, card: Mapping[str, Any]) -> None:
        sent.append((chat_id, card_id, json.loads(json.dumps(card))))
        card_arrived.set()

    bot.app[DELIVERY_WORKER].card_observers.append(record)
    public_url = bot.app[CONFIG].public_url
    await control.call(
        "POST",
        "/settings",
        {
            "interactiveMessagesUrl": f"{public_url}{INTERACTIVE_PATH}",
            "oauthRedirectUri": f"{public_url}{REDIRECT_PATH}",
        },
    )
    bots = await control.call("GET", "/bots")
    bot_id = str(bots[0]["extensionId"])

    if event is None:
        user = await control.call("POST", "/users", {"name": DEMO_USER})
        owner_id = str(user["extensionId"])
    else:
        owner_id, owner_name = _owner_of(event)
        await control.call("POST", "/users", {"name": owner_name, "extensionId": owner_id})
    chat = await control.call("POST", "/chats", {"type": "Direct", "members": [owner_id, bot_id]})
    chat_id = str(chat["id"])

    print(f"> {owner_id} to the bot: optin", flush=True)
    await control.call(
        "POST", "/posts", {"chatId": chat_id, "creatorId": owner_id, "text": "optin"}
    )
    reply = await _wait_for(
        lambda: _bot_text(control, chat_id, bot_id), timeout_s, "the opt-in reply"
    )
    print(f"< bot: {reply}\n", flush=True)

    call_request = (
        {"event": event}
        if event is not None
        else {"ownerExtensionId": owner_id, **DEMO_CALL, "domain": domain or "pbx"}
    )
    call = await control.call("POST", "/calls", call_request)
    shown_domain = event["body"].get("domain", "pbx") if event is not None else domain or "pbx"
    print(
        f"simulated call: recording {call.get('sourceRecordId')}, "
        f"session {call.get('sourceSessionId')}, domain {shown_domain}\n",
        flush=True,
    )
    try:
        await asyncio.wait_for(card_arrived.wait(), timeout_s)
    except TimeoutError:
        raise DemoError(f"no digest was posted within {timeout_s:.0f}s") from None
    # Let any update that follows (more insights) land too.
    await asyncio.wait_for(_idle(bot), timeout_s)
    return sent, (owner_id, chat_id)


async def _idle(bot: RunningBot) -> None:
    for _ in range(2):
        await bot.app[INBOX_WORKER].idle()
        await bot.app[DELIVERY_WORKER].idle()


async def _bot_text(control: SandboxControl, chat_id: str, bot_id: str) -> str | None:
    posts = await control.call("GET", f"/chats/{chat_id}/posts")
    records = posts.get("records", posts) if isinstance(posts, Mapping) else posts
    for post in records:
        if str(post.get("creatorId")) == bot_id and post.get("text"):
            return str(post["text"])
    return None


async def _wait_for(probe: Any, timeout_s: float, what: str) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline:
        result = await probe()
        if result is not None:
            return result
        await asyncio.sleep(0.05)
    raise DemoError(f"timed out waiting for {what}")


def _read_event(path: Path) -> Mapping[str, Any]:
    try:
        event = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        from bot.config import KNOWN_RINGSENSE_DOMAINS

        domains = ", ".join(sorted(KNOWN_RINGSENSE_DOMAINS))
        raise DemoError(
            f"{path} is neither a file nor a RingSense domain (one of {domains})"
        ) from None
    except (OSError, ValueError) as err:
        raise DemoError(f"{path} is not a JSON file: {err}") from None
    if not isinstance(event, Mapping) or not isinstance(event.get("body"), Mapping):
        raise DemoError(f"{path} is not a RingSense notification (no body object)")
    if not event["body"].get("ownerExtensionId"):
        raise DemoError(f"{path}: body.ownerExtensionId is missing")
    return event


def _owner_of(event: Mapping[str, Any]) -> tuple[str, str]:
    body = event["body"]
    owner_id = str(body["ownerExtensionId"])
    for speaker in body.get("speakerInfo") or []:
        if isinstance(speaker, Mapping) and str(speaker.get("extensionId")) == owner_id:
            return owner_id, str(speaker.get("name") or "Call Owner")
    return owner_id, "Call Owner"


def _show(cards: list[tuple[str, str, Mapping[str, Any]]]) -> None:
    if not cards:
        return
    chat_id, card_id, card = cards[-1]
    updates = len(cards) - 1
    print(
        f"digest posted in direct chat {chat_id} (card {card_id}"
        f"{f', updated {updates} time(s)' if updates else ''}):\n"
    )
    print(card_as_text(card))
    print()


def _write_cards(out_dir: Path, cards: list[tuple[str, str, Mapping[str, Any]]]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for number, (_chat_id, card_id, card) in enumerate(cards, start=1):
        path = out_dir / f"{number:02d}-card-{card_id}.json"
        path.write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"wrote {path}")


async def _wait_for_interrupt() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    print("running; press Ctrl-C to stop", flush=True)
    await stop.wait()
