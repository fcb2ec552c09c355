"""`python -m sandbox --port N [--host H]`: the sandbox on its own, until Ctrl-C/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import signal
from pathlib import Path

from sandbox import defaults
from sandbox.runner import start_sandbox


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox", description="A local emulation of the RingCentral platform."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument(
        "--adaptive-card-schema",
        type=Path,
        default=None,
        help="Adaptive Cards 1.3 JSON schema for full card validation",
    )
    return parser.parse_args(argv)


async def _serve(args: argparse.Namespace) -> None:
    sandbox = await start_sandbox(
        args.host, args.port, adaptive_card_schema=args.adaptive_card_schema
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    print(f"sandbox: {sandbox.url}", flush=True)
    print(f"  account id:        {defaults.ACCOUNT_ID}")
    print(f"  client id:         {defaults.CLIENT_ID}")
    print(f"  client secret:     {defaults.CLIENT_SECRET}")
    print(
        f"  service user JWT:  {defaults.SERVICE_USER_JWT}  (extension "
        f"{defaults.SERVICE_USER_EXTENSION_ID})"
    )
    print(f"  bot token:         {defaults.BOT_TOKEN}  (extension {defaults.BOT_EXTENSION_ID})")
    print(f"  shared secret:     {defaults.SHARED_SECRET}")
    print(f"  RingCX base URL:   {sandbox.url}  (POST /_sandbox/ringcx/accounts to enable)")
    print(f"  control API:       {sandbox.url}/_sandbox/", flush=True)
    try:
        await stop.wait()
    finally:
        await sandbox.close()
        print("sandbox: stopped", flush=True)


def freeze_what_survives_full_collections() -> None:
    """After each full garbage collection, move what survived it out of the collector's way.

    The sandbox keeps everything it was sent (transcripts, deliveries, the request log) for
    as long as it runs, so each full collection walked all of it again: 15-110 ms with the
    event loop stopped, late in a call-to-card bench, which held up webhook deliveries and
    the bot's requests alike. What survived a full collection was reachable then; frozen, it
    is not walked again, and each later collection walks only what came since. Only for the
    sandbox's own process (`python -m sandbox`): in-process tests share the collector with
    the bot, whose objects must not be frozen.
    """

    def after_full_collection(phase: str, info: dict[str, int]) -> None:
        if phase == "stop" and info.get("generation") == 2:
            gc.freeze()

    gc.callbacks.append(after_full_collection)


def main(argv: list[str] | None = None) -> None:
    freeze_what_survives_full_collections()
    asyncio.run(_serve(_parse(argv)))


if __name__ == "__main__":
    main()
