"""Every line the bot (at DEBUG) and the sandbox wrote over the black-box run, scanned for
the secrets and tokens the run used and for the words people wrote or said on calls.

It runs last in the folder (file order), so it sees the who-sees-what table and the forged
corpus too; run alone it still has its own conversation and call to look for. Issue 8
item 6: no secret, token, SQL parameter or message text in any log line, at any level,
unless `--log-content` is given (it is not, here).
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Iterator

import aiohttp

from sandbox import defaults
from tests.blackbox.harness import BlackBox, Control, member_ids

SPOKEN = "our quarterly numbers for Zanzibar Holdings look fragile"
WRITTEN_TO_THE_BOT = "could you explain the Quixotic Heliotrope renewal please"
WRITTEN_IN_A_GROUP = "between us, the Marigold Ostrich deal closes Friday"
MENTIONING_THE_BOT = "tell me about the Periwinkle Tortoise account"


async def _direct(control: Control, user: str, bot: str) -> str:
    for chat in await control.chats():
        if chat.get("type") == "Direct" and member_ids(chat) == {user, bot}:
            return str(chat["id"])
    return await control.chat("Direct", [user, bot])


async def _converse(blackbox: BlackBox) -> bool:
    """People write to the bot and around it, and a call with distinctive words is analysed;
    whether the bot posted that call's digest (so it really handled all of it)."""
    p = blackbox.people
    async with aiohttp.ClientSession() as session:
        control = blackbox.control(session)
        # Earlier tests throw forged uninstalls at the bot; an admin reinstalling it (the
        # platform repeats the install handshake) makes sure it listens again.
        for account_id in (p.account_id, p.other_account_id):
            await control.call("POST", "/bots", {"accountId": account_id})
        direct = await _direct(control, p.owner, p.bot)
        group = await control.chat("Group", [p.owner, p.participant, p.bot])
        await control.say(direct, p.owner, WRITTEN_TO_THE_BOT)
        await control.say(group, p.participant, WRITTEN_IN_A_GROUP)
        await control.say(group, p.owner, f"![:Person]({p.bot}) {MENTIONING_THE_BOT}")
        blackbox.sent_texts += [WRITTEN_TO_THE_BOT, WRITTEN_IN_A_GROUP, MENTIONING_THE_BOT]
        await control.say(direct, p.owner, "optin")
        await control.call(
            "POST",
            "/calls",
            {
                "ownerExtensionId": p.owner,
                "participants": [p.participant],
                "insights": {
                    "Summary": [{"start": 0, "end": 1, "value": f"They said {SPOKEN}."}],
                },
            },
        )
        # Wait until the bot answered the last message and posted the digest.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            posts = await control.posts(direct)
            if any(SPOKEN in str(post.get("card")) for post in posts):
                await asyncio.sleep(0.5)
                return True
            await asyncio.sleep(0.1)
        return False


def _banner_free(log: str) -> Iterator[tuple[int, str]]:
    """The sandbox prints its fixed, public credentials when it starts, on purpose (README):
    those lines are its banner, not a leak; every other line is scanned."""
    in_banner = True
    for number, line in enumerate(log.splitlines(), start=1):
        if in_banner:
            if "control API:" in line:
                in_banner = False
            continue
        yield number, line


def _unescaped(line: str) -> str:
    """The bot logs JSON lines (`--log-format json`), where text is \\u-escaped: scan the
    line as written and as read back, so escaping cannot hide a word."""
    try:
        document = json.loads(line)
    except ValueError:
        return line
    return line + " " + json.dumps(document, ensure_ascii=False)


def test_no_secret_token_or_words_in_any_log_line(blackbox: BlackBox) -> None:
    handled = asyncio.run(_converse(blackbox))
    secrets = {name: value for name, value in blackbox.secrets.items() if len(value) >= 6}
    secrets.setdefault("RC_CLIENT_SECRET", defaults.CLIENT_SECRET)
    # The same secrets as they travel: the Basic credential of the token endpoint.
    basic = f"{defaults.CLIENT_ID}:{secrets['RC_CLIENT_SECRET']}".encode()
    secrets["client credentials (Basic)"] = base64.b64encode(basic).decode()
    words = {
        "message text": [WRITTEN_TO_THE_BOT, WRITTEN_IN_A_GROUP, MENTIONING_THE_BOT],
        "words said on a call": [SPOKEN],
    }
    hits: list[str] = []
    sources = {
        "bot": [
            (number, _unescaped(line))
            for number, line in enumerate(blackbox.bot.log_text().splitlines(), start=1)
        ],
        "sandbox": list(_banner_free(blackbox.sandbox.log_text())),
    }
    lines_scanned = sum(len(lines) for lines in sources.values())
    for source, lines in sources.items():
        for number, line in lines:
            for name, value in secrets.items():
                if value in line:
                    hits.append(f"{source} log line {number}: {name}: {line[:200]}")
            for what, texts in words.items():
                for text in texts:
                    if text in line:
                        hits.append(f"{source} log line {number}: {what}: {line[:200]}")
    print(f"\nlog scan: {lines_scanned} lines, {len(secrets)} secrets, {len(hits)} hits")
    assert lines_scanned > 100, "the bot wrote almost nothing at DEBUG: is the log captured?"
    assert handled, "the bot did not handle the conversation, so the scan would prove little"
    assert not hits, f"{len(hits)} log lines show a secret or people's words:\n" + "\n".join(
        hits[:40]
    )
