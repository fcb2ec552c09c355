"""The sandbox application factory."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
from aiohttp import web

from sandbox import ai_control, control, fault_api, installs, interactive, ringcx_control
from sandbox.api import (
    accounts,
    ai,
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


def _card_validator(schema_path: Path | None) -> CardValidator:
    """Full schema validation when the Adaptive Cards 1.3 schema file is at hand."""
    if schema_path is None:
        configured = os.environ.get(SCHEMA_ENV)
        schema_path = Path(configured) if configured else None
    if schema_path is None or not schema_path.is_file():
        return CardValidator()
    return CardValidator(load_schema_validator(schema_path))


def create_sandbox_app(
    world: World | None = None, *, adaptive_card_schema: Path | None = None
) -> web.Application:
    """An emulated RingCentral platform over `world` (a fresh default account if None).

    `adaptive_card_schema` (or the `SANDBOX_ADAPTIVE_CARD_SCHEMA` environment variable)
    points at the Adaptive Cards 1.3 JSON schema; without it cards get the structural
    check only.
    """
    app = web.Application(middlewares=[platform_middleware, control.control_errors])
    app[WORLD_KEY] = world if world is not None else World()
    app[RATE_LIMITER_KEY] = RateLimiter()
    app[CARD_VALIDATOR_KEY] = _card_validator(adaptive_card_schema)
    app[BACKGROUND_KEY] = BackgroundTasks()
    app.cleanup_ctx.append(_webhook_client)
    platform_modules = (
        oauth,
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
