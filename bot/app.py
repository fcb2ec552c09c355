"""The aiohttp application: routes, shared state under typed keys, and its lifecycle."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence

import aiohttp
from aiohttp import web

from bot.ai import AI_WEBHOOK_PREFIX, AiWebhookEndpoint, JobPoller
from bot.cards import CardRenderer
from bot.catchup import CatchUp
from bot.config import Config
from bot.installs import Installs
from bot.interactive import InteractiveEndpoint
from bot.oauth import REDIRECT_PATH, OAuthRedirectEndpoint
from bot.outbox import DeliveryWorker
from bot.rc import RingCentralClient, ServiceUserTokens
from bot.ringcx import RingCXClient, RingCXPoller
from bot.router import Dispatcher, Router
from bot.services import Services
from bot.storage import Storage
from bot.subscriptions import Subscriptions
from bot.webhooks import NotificationEndpoint
from bot.workers import InboxWorker

log = logging.getLogger(__name__)

CONFIG = web.AppKey("config", Config)
SERVICES = web.AppKey("services", Services)
DISPATCHER = web.AppKey("dispatcher", Dispatcher)
INBOX_WORKER = web.AppKey("inbox_worker", InboxWorker)
DELIVERY_WORKER = web.AppKey("delivery_worker", DeliveryWorker)
SUBSCRIPTIONS = web.AppKey("subscriptions", Subscriptions)
INSTALLS = web.AppKey("installs", Installs)
NOTIFICATIONS = web.AppKey("notifications", NotificationEndpoint)
INTERACTIVE = web.AppKey("interactive", InteractiveEndpoint)
OAUTH = web.AppKey("oauth", OAuthRedirectEndpoint)
CATCH_UP = web.AppKey("catch_up", CatchUp)
AI_WEBHOOK = web.AppKey("ai_webhook", AiWebhookEndpoint)
AI_POLLER = web.AppKey("ai_poller", JobPoller)
RINGCX_POLLERS = web.AppKey("ringcx_pollers", list[RingCXPoller])

SERVICE_IDENTITY = "service"
INTERACTIVE_PATH = "/webhooks/interactive"


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
    app.cleanup_ctx.append(_services_ctx)
    app.on_shutdown.append(_stop_subscriptions)
    app.router.add_get("/healthz", healthz)
    app.router.add_post("/webhooks/ringcentral", _receive_notification)
    app.router.add_post(INTERACTIVE_PATH, _receive_submit)
    app.router.add_post(AI_WEBHOOK_PREFIX + "{secret}", _receive_ai_result)
    app.router.add_post(REDIRECT_PATH, _install_post)
    app.router.add_get(REDIRECT_PATH, _install_get)
    return app


async def _services_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    storage = await Storage.open(config.database_path)
    session = aiohttp.ClientSession()
    try:
        rc = config.ringcentral
        service_tokens = ServiceUserTokens(rc.server_url, rc.client_id, rc.client_secret, rc.jwt)
        service_api = RingCentralClient(session, rc.server_url, service_tokens)
        services = Services(config, storage, service_api, CardRenderer())
        service_user = await service_api.get_own_extension()
        account = service_user.get("account")
        services.service_account_id = str(account.get("id")) if isinstance(account, dict) else ""
        log.info(
            "service user %s in account %s", service_user.get("id"), services.service_account_id
        )

        subscriptions = Subscriptions(
            storage,
            config.webhook_address,
            config.verification_token,
            config.subscription_check_interval_s,
        )
        dispatcher = app[DISPATCHER]
        inbox = InboxWorker(services, dispatcher, config.workers)
        catch_up = CatchUp(services, inbox.wake)
        # A new RingSense subscription means the old one was lost (or this is a first
        # start): look for what was missed in between.
        subscriptions.add_identity(
            SERVICE_IDENTITY,
            service_api,
            ringsense_event_filters(rc.ringsense_domains),
            on_created=catch_up.trigger,
        )
        installs = Installs(config, services, session, subscriptions)
        await installs.load()
        if not services.installs:
            log.warning(
                "no bot install yet: waiting for one at %s%s", config.public_url, REDIRECT_PATH
            )
        delivery = DeliveryWorker(services, config.workers, config.delivery_max_attempts)
        services.wake_outbox = delivery.wake
        services.remove_install = installs.remove
        services.subscription_health = subscriptions.health
        services.renew_subscription = subscriptions.renew
        app[SERVICES] = services
        app[INBOX_WORKER] = inbox
        app[DELIVERY_WORKER] = delivery
        app[SUBSCRIPTIONS] = subscriptions
        app[INSTALLS] = installs
        app[CATCH_UP] = catch_up
        poller = JobPoller(services, inbox.wake)
        services.check_ai_job = poller.check
        app[AI_POLLER] = poller
        app[AI_WEBHOOK] = AiWebhookEndpoint(services, inbox.wake)
        ringcx_poller: RingCXPoller | None = None
        if config.ringcx.enabled:
            ringcx_client = RingCXClient(
                session,
                config.ringcx.base_url,
                service_tokens,
                config.ringcx.rc_account_id or services.service_account_id,
                config.ringcx.sub_account_id,
            )
            services.ringcx = ringcx_client
            ringcx_poller = RingCXPoller(ringcx_client, services, inbox.wake)
            services.ringcx_health = ringcx_poller.health
        app[RINGCX_POLLERS] = [ringcx_poller] if ringcx_poller is not None else []
        app[NOTIFICATIONS] = NotificationEndpoint(
            storage, config.verification_token, config.webhook_max_body_bytes, inbox.wake
        )
        app[INTERACTIVE] = InteractiveEndpoint(services, dispatcher)
        app[OAUTH] = OAuthRedirectEndpoint(
            installs, rc.client_id, config.public_url + REDIRECT_PATH
        )
        inbox.start()
        delivery.start()
        poller.start()
        if ringcx_poller is not None:
            ringcx_poller.start()
        try:
            yield
        finally:
            if ringcx_poller is not None:
                await ringcx_poller.stop()
            await poller.stop()
            await inbox.stop(config.shutdown_grace_s)
            await delivery.stop(config.shutdown_grace_s)
    finally:
        await session.close()
        await storage.close()


async def start_subscriptions(app: web.Application, *, wait: bool = True) -> None:
    """Create or reuse the subscriptions, then keep them alive in the background.

    RingCentral checks our webhook address during creation, so this must run once the app
    answers HTTP. With `wait`, return only when every subscription exists.
    """
    subscriptions = app[SUBSCRIPTIONS]
    if wait:
        await subscriptions.ensure_all()
    subscriptions.start()
    app[CATCH_UP].trigger()


async def _stop_subscriptions(app: web.Application) -> None:
    if SUBSCRIPTIONS in app:
        await app[SUBSCRIPTIONS].stop()


async def _receive_notification(request: web.Request) -> web.Response:
    return await request.app[NOTIFICATIONS].handle(request)


async def _receive_submit(request: web.Request) -> web.Response:
    return await request.app[INTERACTIVE].handle(request)


async def _receive_ai_result(request: web.Request) -> web.Response:
    return await request.app[AI_WEBHOOK].handle(request)


async def _install_post(request: web.Request) -> web.Response:
    return await request.app[OAUTH].handle_post(request)


async def _install_get(request: web.Request) -> web.Response:
    return await request.app[OAUTH].handle_get(request)


async def healthz(request: web.Request) -> web.Response:
    """Liveness plus what an operator checks first: installs, subscriptions, queue depths."""
    app = request.app
    services = app[SERVICES]
    return web.json_response(
        {
            "status": "ok",
            "installs": {i.extension_id: i.account_id for i in services.installs.values()},
            "subscriptions": app[SUBSCRIPTIONS].health(),
            "inbox": await services.storage.inbox_counts(),
            "outbox": await services.storage.outbox_counts(),
        }
    )
