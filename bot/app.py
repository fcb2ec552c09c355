"""The aiohttp application: routes, shared state under typed keys, and its lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence

import aiohttp
from aiohttp import web

from bot.cards import CardRenderer
from bot.config import Config
from bot.outbox import DeliveryWorker
from bot.rc import RingCentralClient, ServiceUserTokens, StaticToken
from bot.router import Dispatcher, Router
from bot.services import Services
from bot.storage import Storage
from bot.subscriptions import SubscriptionKeeper
from bot.webhooks import NotificationEndpoint
from bot.workers import InboxWorker

log = logging.getLogger(__name__)

CONFIG = web.AppKey("config", Config)
SERVICES = web.AppKey("services", Services)
DISPATCHER = web.AppKey("dispatcher", Dispatcher)
INBOX_WORKER = web.AppKey("inbox_worker", InboxWorker)
DELIVERY_WORKER = web.AppKey("delivery_worker", DeliveryWorker)
SUBSCRIPTION_KEEPERS = web.AppKey("subscription_keepers", list[SubscriptionKeeper])
KEEPER_TASKS = web.AppKey("keeper_tasks", list[asyncio.Task[None]])
NOTIFICATIONS = web.AppKey("notifications", NotificationEndpoint)

BOT_EVENT_FILTERS = (
    "/team-messaging/v1/posts",
    "/team-messaging/v1/chats",
    "/restapi/v1.0/account/~/extension/~",
)


def ringsense_event_filters(domains: Sequence[str]) -> tuple[str, ...]:
    return tuple(f"/ai/ringsense/v1/public/accounts/~/domains/{d}/insights" for d in domains)


def create_app(config: Config, routers: Sequence[Router] | None = None) -> web.Application:
    """The bot as an aiohttp app. Call `start_subscriptions` once it is reachable."""
    if routers is None:
        from handlers import all_routers

        routers = all_routers()
    app = web.Application(client_max_size=config.webhook_max_body_bytes)
    app[CONFIG] = config
    app[DISPATCHER] = Dispatcher(routers)
    app[KEEPER_TASKS] = []
    app.cleanup_ctx.append(_services_ctx)
    app.on_shutdown.append(_stop_keepers)
    app.router.add_get("/healthz", healthz)
    app.router.add_post("/webhooks/ringcentral", _receive_notification)
    return app


async def _services_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    storage = await Storage.open(config.database_path)
    session = aiohttp.ClientSession()
    try:
        rc = config.ringcentral
        bot_api = RingCentralClient(session, rc.server_url, StaticToken(rc.bot_token))
        service_tokens = ServiceUserTokens(rc.server_url, rc.client_id, rc.client_secret, rc.jwt)
        service_api = RingCentralClient(session, rc.server_url, service_tokens)
        services = Services(config, storage, bot_api, service_api, CardRenderer())
        bot_info = await bot_api.get_own_extension()
        services.bot_extension_id = str(bot_info["id"])
        log.info("bot extension %s (%s)", services.bot_extension_id, bot_info.get("name"))

        inbox = InboxWorker(services, app[DISPATCHER], config.workers)
        delivery = DeliveryWorker(services, config.workers, config.delivery_max_attempts)
        services.wake_outbox = delivery.wake
        app[SERVICES] = services
        app[INBOX_WORKER] = inbox
        app[DELIVERY_WORKER] = delivery
        app[NOTIFICATIONS] = NotificationEndpoint(
            storage, config.verification_token, config.webhook_max_body_bytes, inbox.wake
        )
        app[SUBSCRIPTION_KEEPERS] = [
            SubscriptionKeeper(
                storage,
                "bot",
                bot_api,
                BOT_EVENT_FILTERS,
                config.webhook_address,
                config.verification_token,
            ),
            SubscriptionKeeper(
                storage,
                "service",
                service_api,
                ringsense_event_filters(rc.ringsense_domains),
                config.webhook_address,
                config.verification_token,
            ),
        ]
        inbox.start()
        delivery.start()
        try:
            yield
        finally:
            await inbox.stop()
            await delivery.stop()
    finally:
        await session.close()
        await storage.close()


async def start_subscriptions(app: web.Application, *, wait: bool = True) -> None:
    """Create or reuse the subscriptions, then keep them alive in the background.

    RingCentral checks our webhook address during creation, so this must run once the app
    answers HTTP. With `wait`, return only when every subscription exists.
    """
    keepers = app[SUBSCRIPTION_KEEPERS]
    if wait:
        for keeper in keepers:
            await keeper.ensure()
    for keeper in keepers:
        app[KEEPER_TASKS].append(asyncio.create_task(keeper.keep_alive(), name=keeper.identity))


async def _stop_keepers(app: web.Application) -> None:
    for task in app[KEEPER_TASKS]:
        task.cancel()
    for task in app[KEEPER_TASKS]:
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _receive_notification(request: web.Request) -> web.Response:
    return await request.app[NOTIFICATIONS].handle(request)


async def healthz(request: web.Request) -> web.Response:
    """Liveness plus what an operator checks first: subscriptions and queue depths."""
    app = request.app
    services = app[SERVICES]
    keepers = app[SUBSCRIPTION_KEEPERS]
    subscriptions = {
        k.identity: {
            "healthy": k.healthy,
            "id": k.current.id if k.current else None,
            "error": k.last_error,
        }
        for k in keepers
    }
    inbox = await services.storage.inbox_counts()
    outbox = await services.storage.outbox_counts()
    return web.json_response(
        {"status": "ok", "subscriptions": subscriptions, "inbox": inbox, "outbox": outbox}
    )
