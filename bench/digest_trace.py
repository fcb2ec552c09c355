"""Where a digest's time goes: the SQL one digest costs, counted statement by statement.

Runs the bot and the sandbox in this process (tests/e2e.running_stack), makes --calls calls
with --utterances-utterance transcripts one after the other, waits for each digest card,
and counts what the bot's one database connection ran meanwhile (`set_trace_callback`):
statements, transactions (`BEGIN`), and the statements that only poll the queues, and the
CPU this process spent (the bot and the sandbox together, one call at a time). Prints
the totals per digest and the most frequent statement shapes, which is what issue 12's
"about two transactions per digest" is checked against.

    python bench/digest_trace.py [--calls 20] [--utterances 200] [--show 25]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import transcript
from bot.app import SERVICES
from tests.e2e import Stack, running_stack, settle

NUMBERS = re.compile(r"\b\d+(\.\d+)?\b|'[^']*'")


def shape(statement: str) -> str:
    """The statement with its literals blanked, so repeated statements group together."""
    return NUMBERS.sub("?", " ".join(statement.split()))[:140]


async def opted_in(stack: Stack) -> tuple[str, str]:
    user = await stack.control.user("Alex Rivera")
    chat = await stack.control.chat([user, stack.bot_id])
    await stack.control.say(chat, user, "optin")
    await settle(stack.bot)
    return user, chat


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as folder:
        async with running_stack(Path(folder) / "bot.sqlite3") as stack:
            await stack.control.call("POST", "/faults", {"enforceRateLimits": False, "limits": {}})
            owner, chat = await opted_in(stack)
            storage = stack.bot.app[SERVICES].storage
            seen: list[str] = []
            await storage._db.set_trace_callback(seen.append)
            cpu_began = time.process_time()
            for number in range(args.calls):
                session = f"trace{number:05d}"
                await stack.control.call(
                    "POST",
                    "/calls",
                    {
                        "ownerExtensionId": owner,
                        "sourceSessionId": f"s-{session}",
                        "insights": {
                            "Transcript": transcript(
                                args.utterances, [f"p-{session}-1", f"p-{session}-2"]
                            )
                        },
                    },
                )
                await settle(stack.bot)
            cpu_s = time.process_time() - cpu_began
            await storage._db.set_trace_callback(None)
            cards = await stack.control.cards(chat)
    shapes = collections.Counter(shape(s) for s in seen)
    polls = sum(n for s, n in shapes.items() if "WHERE status = ?" in s and s.startswith("SELECT"))
    begins = sum(n for s, n in shapes.items() if s.startswith("BEGIN"))
    per = max(1, args.calls)
    print(
        f"{args.calls} digests ({len(cards)} cards), {args.utterances} utterances: "
        f"{len(seen) / per:.1f} statements, {begins / per:.1f} transactions and "
        f"{polls / per:.1f} queue polls per digest; CPU of this process (bot and sandbox, "
        f"one call at a time) {cpu_s * 1000 / per:.1f} ms per digest"
    )
    for statement, count in shapes.most_common(args.show):
        print(f"  {count / per:6.2f}  {statement}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--utterances", type=int, default=200)
    parser.add_argument("--show", type=int, default=30)
    asyncio.run(main(parser.parse_args()))
