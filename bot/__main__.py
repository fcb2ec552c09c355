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


def _event_file(event: str | None) -> Path | None:
    """`--event` names a file unless it is a RingSense domain (and no such file exists)."""
    if event is None:
        return None
    from bot.config import KNOWN_RINGSENSE_DOMAINS

    if event in KNOWN_RINGSENSE_DOMAINS and not Path(event).exists():
        return None
    return Path(event)


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
    demo.add_argument(
        "--event",
        help="a RingSense notification (JSON file) to simulate, or a RingSense domain "
        "(pbx, rcv, rcx, ms-teams, nice-incontact) for the built-in call in that domain",
    )
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
            event_file=_event_file(args.event),
            event_domain=args.event if args.event and not _event_file(args.event) else None,
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
    from bot.config import Config
    from bot.rc import RingCentralError
    from bot.runner import start_bot

    assert isinstance(config, Config)
    try:
        bot = await start_bot(config)
    except RingCentralError as err:
        log.error("could not start: %s", err)
        return 1
    log.info("listening on %s, webhooks at %s", bot.url, config.webhook_address)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("stopping: finishing work in flight")
    await bot.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
