"""README's promise about who spoke, from outside: `analyze` names a colleague whose voice
RingCentral recognised, and calls the voice nobody recognised the "Other party", never a
name by elimination (issue 10). Named 2b so the log scan (test_3) still runs last and sees
this conversation too."""

from __future__ import annotations

import asyncio
import json
import re
import time

import aiohttp

from tests.blackbox.harness import BlackBox, Control, member_ids


async def _direct(control: Control, user: str, bot: str) -> str:
    for chat in await control.chats():
        if chat.get("type") == "Direct" and member_ids(chat) == {user, bot}:
            return str(chat["id"])
    return await control.chat("Direct", [user, bot])


def _card_texts(card: object) -> list[str]:
    """Every `text` of a card, in order (what a reader sees, without the layout)."""
    return re.findall(r'"text": "((?:[^"\\]|\\.)*)"', json.dumps(card, ensure_ascii=False))


async def _analysis_speakers(blackbox: BlackBox) -> tuple[set[str], list[str]]:
    """The speaker names on the finished analysis card, and every text of that card."""
    p = blackbox.people
    async with aiohttp.ClientSession() as session:
        control = blackbox.control(session)
        # Earlier tests throw forged uninstalls at the bot: an admin reinstalls it.
        await control.call("POST", "/bots", {"accountId": p.account_id})
        call = await control.call(
            "POST", "/calls", {"ownerExtensionId": p.owner, "participants": [p.participant]}
        )
        # The owner's voice is enrolled under her extension id; the participant's is not.
        await control.call("POST", "/ai/enrollments", {"enrollmentId": p.owner})
        direct = await _direct(control, p.participant, p.bot)
        await control.say(direct, p.participant, f"analyze {call['sourceRecordId']}")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for post in await control.posts(direct):
                texts = _card_texts(post.get("card") or {})
                if "What was said" in texts:
                    said = [t for t in texts if re.fullmatch(r"\d\d:\d\d ", t)]
                    index = texts.index("What was said")
                    # each utterance: "mm:ss ", the speaker, ": ", the words
                    speakers = {
                        texts[i + 1] for i in range(index, len(texts) - 1) if texts[i] in said
                    }
                    return speakers, texts
            await asyncio.sleep(0.2)
        return set(), []


def test_analyze_names_only_the_recognised_voice(blackbox: BlackBox) -> None:
    speakers, texts = asyncio.run(_analysis_speakers(blackbox))
    assert speakers == {"Olivia Owner", "Other party"}, texts[:40]
    assert not any(t.startswith("Speaker ") or t == "Pat Participant" for t in texts)
