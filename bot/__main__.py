"""`python -m bot run | demo | check-config | generate-key | rotate-key`."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import signal
import sys
from pathlib import Path

from bot.config import DEFAULT_CONFIG_PATH, ConfigError, load_config
from bot.crypto import ENV_SECRET_KEY, UndecryptableSecret, generate_key
from bot.logs import LOG_FORMATS, configure_logging

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
    run.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default="text",
        help="text (the default) or json: one JSON object a line (time, level, logger, "
        "message, and the notification/chat/call/request ids the line is about)",
    )
    run.add_argument(
        "--log-content",
        action="store_true",
        help="also log SQL parameters and message text (for debugging only: the log then "
        "holds what people wrote)",
    )

    check = commands.add_parser("check-config", help="validate the configuration and exit")
    check.add_argument("--config", type=Path, default=DEFAULT_CONFIG_PATH)

    commands.add_parser(
        "generate-key", help=f"print a new key for {ENV_SECRET_KEY} (tokens at rest)"
    )
    rotate = commands.add_parser(
        "rotate-key",
        help=f"re-encrypt every stored secret under the first key of {ENV_SECRET_KEY}",
    )
    rotate.add_argument("--config", type=Path, default=DEFAULT_CONFIG_PATH)

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
    if args.command == "generate-key":
        print(generate_key())
        return 0
    if args.command == "rotate-key":
        return _rotate_key(args.config)
    if args.command == "run":
        return _run(args.config, args.log_level, args.log_content, args.log_format)
    try:
        import sandbox  # noqa: F401 - only to learn whether this install has it
    except ImportError:
        # The production image installs the bot without the sandbox (Dockerfile).
        print(
            "the demo needs the sandbox (the local RingCentral in sandbox/), which this "
            "install does not include: run it from a checkout of the project "
            "(pip install -e . there)",
            file=sys.stderr,
        )
        return 2
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
    """Every problem at once: what load_config refuses, unknown keys (with the closest known
    one), a public URL RingCentral cannot reach; then the permissions to set up."""
    from bot.config_check import check, describe_permissions, read_raw, unknown_keys

    try:
        config = load_config(path)
    except ConfigError as err:
        problems = [*err.problems, *unknown_keys(read_raw(path))]
        print(ConfigError(problems), file=sys.stderr)
        return 2
    problems = check(config, read_raw(path))
    if problems:
        print(ConfigError(problems), file=sys.stderr)
        return 2
    print(
        f"configuration OK: RingCentral at {config.ringcentral.server_url}, "
        f"webhooks at {config.webhook_address}, database {config.database_label}"
    )
    print("\n".join(describe_permissions(config)))
    return 0


def _rotate_key(path: Path) -> int:
    """Re-encrypt the stored secrets: after putting a new key first in BOT_SECRET_KEY (the
    old one after it), run this, then drop the old key."""
    try:
        config = load_config(path)
    except ConfigError as err:
        print(err, file=sys.stderr)
        return 2

    async def rotate() -> int:
        from bot.store import open_storage

        storage = await open_storage(config.database, config.token_cipher())
        try:
            return await storage.rotate_secret_key()
        finally:
            await storage.close()

    try:
        count = asyncio.run(rotate())
    except UndecryptableSecret as err:
        print(
            f"nothing changed: {err}; put the key they were stored with after the new one",
            file=sys.stderr,
        )
        return 1
    print(
        f"{count} stored secret(s) now encrypted with the first key of {ENV_SECRET_KEY}; "
        "the other keys can be removed"
    )
    return 0


def _run(path: Path, log_level: str, log_content: bool = False, log_format: str = "text") -> int:
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
            config.status_token,
            config.metrics_token,
            *(key.strip() for key in config.secret_keys.split(",")),
        ),
        log_content=log_content,
        log_format=log_format,
    )
    from bot.config_check import check, read_raw

    for problem in check(config, read_raw(path)):
        log.warning("configuration: %s (see `python -m bot check-config`)", problem)
    if log_content:
        log.warning("--log-content: SQL parameters and message text are logged")
    return asyncio.run(_serve(config))


GC_THRESHOLDS = (50_000, 20, 10)
"""Young objects allocated before a collection, and collections of each generation before
the next one up (Python's defaults: 700, 10, 10; full collections stay as frequent
relative to the young ones, so cyclic garbage does not pile up in the oldest one)."""


def tune_garbage_collection() -> None:
    """What the started bot allocated (modules, the app, its configuration) lives as long
    as the process: frozen, so no collection walks through it again. And fewer, larger
    young collections: a 40 KB RingSense notification parses into thousands of objects,
    which at the default threshold start several collections per request; with earlier
    notifications held by the workers, parsing one took 180 µs instead of 76 µs (8 % of
    the bot's samples in a py-spy profile under load were the collector). The bot makes
    little cyclic garbage; what it does make waits a little longer to be freed."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


async def _serve(config: object) -> int:
    """Serve until SIGINT/SIGTERM. Signing in happens in the background and never ends
    the process on a transient error; only a refusal no retry can change (a wrong JWT)
    does, with exit status 2 and a message naming the problem."""
    from bot.app import STARTUP
    from bot.config import Config
    from bot.leases import SchemaTooNew
    from bot.runner import start_bot
    from bot.store.opening import DatabaseUnavailable

    assert isinstance(config, Config)
    try:
        bot = await start_bot(config, wait_ready=False)
    except (DatabaseUnavailable, SchemaTooNew) as err:
        log.error("not started: %s", err)
        return 2
    log.info("listening on %s, webhooks at %s", bot.url, config.webhook_address)
    tune_garbage_collection()
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
