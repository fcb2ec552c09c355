"""The sandbox application factory."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
from aiohttp import web

from sandbox import ai_control, control, fault_api, installs, interactive, ringcx_control
from sandbox.api import (
    accounts,
    ai,
    authorize,
    call_log,
    oauth,
    recordings,
    ringcx,
    ringsense,
    subscriptions,
    team_messaging,
)
from sandbox.cards import CardValidator, load_schema_validator
from sandbox.delivery import BackgroundTasks, Notifier
from sandbox.keys import (
    BACKGROUND_KEY,
    CARD_VALIDATOR_KEY,
    HTTP_CLIENT_KEY,
    NOTIFIER_KEY,
    RATE_LIMITER_KEY,
    WORLD_KEY,
)
from sandbox.platform import platform_middleware
from sandbox.ratelimit import RateLimiter
from sandbox.world import World

SCHEMA_ENV = "SANDBOX_ADAPTIVE_CARD_SCHEMA"
SHARED_ENV = "RINGSENSE_SHARED_DIR"
SCHEMA_IN_SHARED = Path("schemas", "adaptive-cards", "1.3.0", "adaptive-card.json")
MAX_REQUEST_BYTES = 32 * 1024 * 1024
"""Bodies up to this reach the handlers, which answer too-large ones as the platform does
(a card: 400 with an error body) instead of aiohttp's plain-text 413 at 1 MiB."""

log = logging.getLogger(__name__)


def default_card_schema() -> Path:
    """The official Adaptive Cards 1.3 schema: `SANDBOX_ADAPTIVE_CARD_SCHEMA`, else the one
    in `RINGSENSE_SHARED_DIR` (default: the `shared` folder beside the project)."""
    configured = os.environ.get(SCHEMA_ENV)
    if configured:
        return Path(configured)
    shared = os.environ.get(SHARED_ENV)
    base = Path(shared) if shared else Path(__file__).resolve().parents[2] / "shared"
    return base / SCHEMA_IN_SHARED


def _card_validator(schema_path: Path | None) -> CardValidator:
    """Full schema validation with the Adaptive Cards 1.3 schema, found by default."""
    path = schema_path if schema_path is not None else default_card_schema()
    if not path.is_file():
        log.warning(
            "Adaptive Cards schema not found at %s: cards get the structural check only", path
        )
        return CardValidator()
    return CardValidator(load_schema_validator(path))


def create_sandbox_app(
    world: World | None = None, *, adaptive_card_schema: Path | None = None
) -> web.Application:
    """An emulated RingCentral platform over `world` (a fresh default account if None).

    `adaptive_card_schema` points at the Adaptive Cards 1.3 JSON schema; by default the
    official one is found (see `default_card_schema`). Only when the file is missing do
    cards get the structural check alone (with a warning).
    """
    app = web.Application(
        middlewares=[platform_middleware, control.control_errors],
        client_max_size=MAX_REQUEST_BYTES,
    )
    app[WORLD_KEY] = world if world is not None else World()
    app[RATE_LIMITER_KEY] = RateLimiter()
    app[CARD_VALIDATOR_KEY] = _card_validator(adaptive_card_schema)
    app[BACKGROUND_KEY] = BackgroundTasks()
    app.cleanup_ctx.append(_webhook_client)
    platform_modules = (
        oauth,
        authorize,
        accounts,
        subscriptions,
        team_messaging,
        ringsense,
        call_log,
        recordings,
        ai,
    )
    control_modules = (control, installs, interactive, fault_api, ai_control, ringcx_control)
    for module in (*platform_modules, ringcx, *control_modules):
        app.add_routes(module.routes)
    return app


async def _webhook_client(app: web.Application) -> AsyncIterator[None]:
    """One client session for all outbound webhook traffic, closed after pending sends."""
    session = aiohttp.ClientSession(trust_env=False)
    app[HTTP_CLIENT_KEY] = session
    notifier = Notifier(app[WORLD_KEY], session, app[BACKGROUND_KEY])
    app[NOTIFIER_KEY] = notifier
    reminders = asyncio.create_task(notifier.remind_forever(), name="expiry-reminders")
    try:
        yield
    finally:
        reminders.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reminders
        await app[BACKGROUND_KEY].drain()
        await session.close()
