"""`python -m bot run | demo | check-config`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from bot.config import DEFAULT_CONFIG_PATH, ConfigError, load_config
from bot.logs import configure_logging

log = logging.getLogger("bot")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run the bot against RingCentral (or a sandbox)")
    run.add_argument("--config", type=Path, default=DEFAULT_CONFIG_PATH)
    run.add_argument("--log-level", default="INFO")

    check = commands.add_parser("check-config", help="validate the configuration and exit")
    check.add_argument("--config", type=Path, default=DEFAULT_CONFIG_PATH)

    demo = commands.add_parser(
        "demo", help="the bot against the local sandbox: a simulated call and its digest"
    )
    demo.add_argument("--event", type=Path, help="a RingSense notification (JSON) to simulate")
    demo.add_argument("--out", type=Path, help="write each card the bot posted to this folder")
    demo.add_argument("--serve", action="store_true", help="keep running until interrupted")
    demo.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the digest")
    demo.add_argument("--log-level", default="WARNING")

    args = parser.parse_args(argv)
    if args.command == "check-config":
        return _check_config(args.config)
    if args.command == "run":
        return _run(args.config, args.log_level)
    from bot.demo import run_demo

    return asyncio.run(
        run_demo(
            event_file=args.event,
            out_dir=args.out,
            serve=args.serve,
            timeout_s=args.timeout,
            log_level=args.log_level,
        )
    )


def _check_config(path: Path) -> int:
    try:
        config = load_config(path)
    except ConfigError as err:
        print(err, file=sys.stderr)
        return 2
    print(
        f"configuration OK: RingCentral at {config.ringcentral.server_url}, "
        f"webhooks at {config.webhook_address}, database {config.database_path}"
    )
    return 0


def _run(path: Path, log_level: str) -> int:
    try:
        config = load_config(path)
    except ConfigError as err:
        print(err, file=sys.stderr)
        return 2
    rc = config.ringcentral
    configure_logging(
        log_level,
        secrets=(
            rc.client_secret,
            rc.jwt,
            rc.bot_token,
            config.verification_token,
            config.shared_secret,
        ),
    )
    return asyncio.run(_serve(config))


async def _serve(config: object) -> int:
    """Serve until SIGINT/SIGTERM. Signing in happens in the background and never ends
    the process on a transient error; only a refusal no retry can change (a wrong JWT)
    does, with exit status 2 and a message naming the problem."""
    from bot.app import STARTUP
    from bot.config import Config
    from bot.runner import start_bot

    assert isinstance(config, Config)
    bot = await start_bot(config, wait_ready=False)
    log.info("listening on %s, webhooks at %s", bot.url, config.webhook_address)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    stopped = asyncio.create_task(stop.wait())
    failed = asyncio.create_task(bot.app[STARTUP].finished())
    await asyncio.wait({stopped, failed}, return_when=asyncio.FIRST_COMPLETED)
    failure = failed.result() if failed.done() else None
    if failure is None and not stopped.done():
        await stopped  # ready: serve until told to stop
    if failure is None:
        log.info("stopping: finishing work in flight")
    # else: bot.startup has logged the problem; a supervisor should not restart us blindly.
    for task in (stopped, failed):
        task.cancel()
    await bot.stop()
    return 2 if failure is not None else 0


if __name__ == "__main__":
    sys.exit(main())
