"""`python -m sandbox --port N [--host H]`: the sandbox on its own, until Ctrl-C/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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


def main(argv: list[str] | None = None) -> None:
    asyncio.run(_serve(_parse(argv)))


if __name__ == "__main__":
    main()
