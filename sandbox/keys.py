"""Typed application keys shared by the sandbox's routes (no module-level state)."""

from __future__ import annotations

import aiohttp
from aiohttp import web

from sandbox.cards import CardValidator
from sandbox.delivery import BackgroundTasks, Notifier
from sandbox.ratelimit import RateLimiter
from sandbox.world import World

WORLD_KEY = web.AppKey("sandbox_world", World)
NOTIFIER_KEY = web.AppKey("sandbox_notifier", Notifier)
BACKGROUND_KEY = web.AppKey("sandbox_background", BackgroundTasks)
RATE_LIMITER_KEY = web.AppKey("sandbox_rate_limiter", RateLimiter)
CARD_VALIDATOR_KEY = web.AppKey("sandbox_card_validator", CardValidator)
HTTP_CLIENT_KEY = web.AppKey("sandbox_http_client", aiohttp.ClientSession)
"""The one session for the platform's outbound calls: webhooks, install redirects, submits."""
