"""The aiohttp application: routes, shared state under typed keys, and its lifecycle."""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from bot.ai import AI_WEBHOOK_PREFIX, AiWebhookEndpoint, JobPoller
from bot.cards import CardRenderer
from bot.catchup import CatchUp
from bot.config import Config
from bot.connect_pages import ConnectEndpoint
from bot.connections import CALLBACK_PATH, START_PATH, RingSenseConnections
from bot.installs import Installs
from bot.interactive import InteractiveEndpoint
from bot.jobs import (
    AI_JOBS_LEASE,
    CATCH_UP_LEASE,
    RINGCX_LEASE,
    SUBSCRIPTIONS_LEASE,
    Leases,
    Requests,
    RunOnceJobs,
    add_bot_jobs,
    leases_for,
)
from bot.metrics import BotMetrics
from bot.oauth import REDIRECT_PATH, OAuthRedirectEndpoint
from bot.outbox import DeliveryWorker
from bot.ratelimit import PenaltyMemory
from bot.rc import RingCentralClient, ServiceUserTokens
from bot.reply_limits import ReplyLimits
from bot.retention import RetentionPruner
from bot.ringcx import RingCXClient, RingCXPoller
from bot.rollup import DailyRollup
from bot.router import Dispatcher, Router
from bot.services import Services
from bot.startup import Startup
from bot.storage import InboxItem
from bot.store import open_storage
from bot.store.interface import SharedQueue
from bot.store.opening import replica_sharing
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
STARTUP = web.AppKey("startup", Startup)
AI_WEBHOOK = web.AppKey("ai_webhook", AiWebhookEndpoint)
AI_POLLER = web.AppKey("ai_poller", JobPoller)
RINGCX_POLLERS = web.AppKey("ringcx_pollers", list[RingCXPoller])
SERVICE_TOKENS = web.AppKey("service_tokens", ServiceUserTokens)
PRUNER = web.AppKey("pruner", RetentionPruner)
ROLLUP = web.AppKey("daily_rollup", DailyRollup)
CONNECTIONS = web.AppKey("ringsense_connections", RingSenseConnections)
CONNECT_PAGES = web.AppKey("ringsense_connect_pages", ConnectEndpoint)
METRICS = web.AppKey("metrics", BotMetrics)
METRICS_LISTENER = web.AppKey("metrics_listener", web.AppRunner)
LEASES = web.AppKey("leases", Leases)
RUN_ONCE_JOBS = web.AppKey("run_once_jobs", RunOnceJobs)
CATCH_UP_REQUESTS = web.AppKey("catch_up_requests", Requests)

SERVICE_IDENTITY = "service"
RELOAD_INSTALLS_S = 2.0
"""With several replicas, an event for an install this replica does not know reloads the
installs from the database at most this often."""
INTERACTIVE_PATH = "/webhooks/interactive"
LIVENESS_PATH = "/livez"
READINESS_PATH = "/readyz"
STATUS_PATH = "/status"
METRICS_PATH = "/metrics"


def ringsense_event_filters(domains: Sequence[str]) -> tuple[str, ...]:
    return tuple(f"/ai/ringsense/v1/public/accounts/~/domains/{d}/insights" for d in domains)


def create_app(
    config: Config, routers: Sequence[Router] | None = None, *, leases: Leases | None = None
) -> web.Application:
    """The bot as an aiohttp app. Call `start_subscriptions` once it is reachable.

    `leases`: who runs the run-once jobs (bot/jobs.py); by default PostgreSQL advisory
    locks when the database is PostgreSQL, else this process alone."""
    if routers is None:
        from handlers import all_routers

        routers = all_routers()
    app = web.Application(client_max_size=config.webhook_max_body_bytes)
    app[CONFIG] = config
    app[DISPATCHER] = Dispatcher(routers)
    app[METRICS] = BotMetrics()
    app[LEASES] = leases if leases is not None else leases_for(config)
    app.cleanup_ctx.append(_services_ctx)
    app.cleanup_ctx.append(_metrics_listener_ctx)
    app.on_shutdown.append(_stop_subscriptions)
    # Public probes answer a status code and one word; details only behind a token.
    # `/healthz` is gone (it showed installs and subscriptions to anyone): it answers 404.
    app.router.add_get(LIVENESS_PATH, livez)
    app.router.add_get(READINESS_PATH, readyz)
    app.router.add_get(STATUS_PATH, status)
    app.router.add_get(METRICS_PATH, metrics_with_token)
    app.router.add_post("/webhooks/ringcentral", _receive_notification)
    app.router.add_post(INTERACTIVE_PATH, _receive_submit)
    app.router.add_post(AI_WEBHOOK_PREFIX + "{secret}", _receive_ai_result)
    app.router.add_post(REDIRECT_PATH, _install_post)
    app.router.add_get(REDIRECT_PATH, _install_get)
    app.router.add_get(START_PATH, _connect_start)
    app.router.add_get(CALLBACK_PATH, _connect_callback)
    return app


def _json_bytes(value: Any) -> bytes:
    """Request bodies for RingCentral (a digest card is several KB) encoded by orjson, in
    a tenth of the standard library's time; keys that are not text are written as text,
    as `json.dumps` does."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)


async def _services_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    cipher = config.token_cipher()
    storage = await open_storage(config.database, cipher, config.replica_id)
    if isinstance(storage, SharedQueue):  # replicas on PostgreSQL: `replicas:` timings
        storage.claim_lease_s = config.replicas.claim_lease_s
        storage.queue_poll_s = config.replicas.queue_poll_s
    # Replicas on one PostgreSQL database pace and count together; SQLite: in memory.
    sharing = replica_sharing(storage)
    penalties = PenaltyMemory(storage, observer=app[METRICS], shared=sharing.windows)
    session = aiohttp.ClientSession(json_serialize_bytes=_json_bytes)
    try:
        rc = config.ringcentral
        metrics = app[METRICS]
        await penalties.load()
        service_governor = penalties.governor(SERVICE_IDENTITY)
        service_tokens = ServiceUserTokens(
            rc.server_url, rc.client_id, rc.client_secret, rc.jwt, service_governor
        )
        service_api = RingCentralClient(
            session, rc.server_url, service_tokens, governor=service_governor
        )
        app[SERVICE_TOKENS] = service_tokens
        services = Services(config, storage, service_api, CardRenderer(), cipher)
        services.reply_limits = ReplyLimits(
            commands_per_window=config.commands_per_person_per_10_min, people=sharing.people
        )

        async def sign_in() -> None:
            service_user = await service_api.get_own_extension()
            account = service_user.get("account")
            services.service_account_id = (
                str(account.get("id")) if isinstance(account, dict) else ""
            )
            services.service_extension_id = str(service_user.get("id") or "")
            # What the service user's subscriptions and the bot's own work (catch-up)
            # bring belongs to the service user's account.
            storage.default_account_id = services.service_account_id or None
            storage.attribute_owner(services.service_extension_id, services.service_account_id)
            log.info(
                "service user %s in account %s",
                service_user.get("id"),
                services.service_account_id,
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
        jobs = RunOnceJobs(
            app[LEASES],
            storage,
            config.replica_id,
            heartbeat_s=config.replicas.heartbeat_s,
            stale_after_s=config.replicas.heartbeat_stale_s,
        )
        app[RUN_ONCE_JOBS] = jobs
        catch_up_requests = Requests(CATCH_UP_LEASE, jobs, storage, catch_up.trigger)
        app[CATCH_UP_REQUESTS] = catch_up_requests
        # A new RingSense subscription means the old one was lost (or this is a first
        # start): look for what was missed in between (by whichever replica runs catch-up).
        subscriptions.add_identity(
            SERVICE_IDENTITY,
            service_api,
            ringsense_event_filters(rc.ringsense_domains),
            on_created=catch_up_requests.request,
        )
        connections = RingSenseConnections(
            config,
            services,
            session,
            subscriptions,
            services.cipher,
            ringsense_event_filters(rc.ringsense_domains),
        )
        connections.rate_observer = metrics
        connections.shared_windows = sharing.windows
        services.connector = connections
        app[CONNECTIONS] = connections
        app[CONNECT_PAGES] = ConnectEndpoint(connections, services)
        installs = Installs(config, services, session, subscriptions, penalties)
        delivery = DeliveryWorker(
            services, config.workers, config.delivery_max_attempts, metrics=metrics
        )
        services.wake_outbox = delivery.wake
        # Committed work reaches the workers in memory; they read the database only at
        # start, for retries, and when woken.
        storage.on_inbox_committed = _hand_over_all(inbox)
        storage.on_outbox_queued = delivery.hand_over

        async def load_installs() -> None:
            await installs.load()
            if not services.installs:
                log.warning(
                    "no bot install yet: waiting for one at %s%s", config.public_url, REDIRECT_PATH
                )
            # The bots' own tokens are enough to deliver what is queued, even while the
            # service user's sign-in waits out a penalty.
            delivery.start()

        services.remove_install = installs.remove
        services.subscription_health = _subscription_health(subscriptions, jobs)
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
        ringcx_pollers: list[RingCXPoller] = []
        app[RINGCX_POLLERS] = ringcx_pollers

        def start_ringcx() -> None:
            """RingCX needs the account id the service user's sign-in told us. Every
            replica has the client (handlers use it); the poller runs under its lease."""
            if not config.ringcx.enabled:
                return
            ringcx_client = RingCXClient(
                session,
                config.ringcx.base_url,
                service_tokens,
                config.ringcx.rc_account_id or services.service_account_id,
                config.ringcx.sub_account_id,
                governor=penalties.governor("ringcx"),
            )
            services.ringcx = ringcx_client
            ringcx_poller = RingCXPoller(ringcx_client, services, inbox.wake)
            services.ringcx_health = ringcx_poller.health
            ringcx_pollers.append(ringcx_poller)

        app[NOTIFICATIONS] = NotificationEndpoint(
            storage,
            config.verification_token,
            config.webhook_max_body_bytes,
            metrics=metrics,
        )
        app[INTERACTIVE] = InteractiveEndpoint(services, dispatcher)
        app[OAUTH] = OAuthRedirectEndpoint(
            installs, rc.client_id, config.public_url + REDIRECT_PATH
        )
        pruner = RetentionPruner(storage, config)
        app[PRUNER] = pruner
        rollup = DailyRollup(services, interval_s=config.rollup_check_interval_s)
        app[ROLLUP] = rollup
        upkeep_requests = Requests(SUBSCRIPTIONS_LEASE, jobs, storage, subscriptions.start)

        async def refresh_identities() -> None:
            """On the subscriptions' keeper: installs and RingSense connections another
            replica made since, kept alive from now on too; those it removed, forgotten."""
            try:
                await installs.forget_removed_elsewhere()
                await connections.forget_disconnected_elsewhere()
                await installs.load_stored()
                await connections.load()
            except Exception:
                log.exception("could not load new installs or connections; next request")
            connections.start()
            subscriptions.start()

        add_bot_jobs(
            jobs,
            subscriptions=subscriptions,
            upkeep_requests=upkeep_requests,
            refresh_identities=refresh_identities,
            catch_up=catch_up,
            catch_up_requests=catch_up_requests,
            ai_poller=poller,
            ringcx_pollers=ringcx_pollers if config.ringcx.enabled else None,
            pruner=pruner,
            rollup=rollup,
        )

        async def reload_installs() -> None:
            try:
                await installs.load_stored()
                await connections.load()
            except Exception:
                log.exception("could not load the installs and connections")

        if jobs.shared:
            services.reload_installs = _at_most_every(RELOAD_INSTALLS_S, reload_installs)

        def ask_keeper_for_new_identities() -> None:
            """From now on an identity added here (an install, a RingSense connection) is
            subscribed by whichever replica keeps the subscriptions."""
            if jobs.shared:
                subscriptions.upkeep_elsewhere = upkeep_requests.request

        # Subscriptions are created and renewed by the holder of their lease only: two
        # replicas creating them at once would each delete the other's as stale.
        subscribe_first = [] if jobs.shared else [("subscriptions", subscriptions.ensure_all)]
        # Until these steps are done the bot serves and stores what arrives, but handles
        # none of it: handlers need the service user and the installs.
        startup = Startup(
            [
                ("bot installs", load_installs),
                ("service user sign-in", sign_in),
                ("RingSense connections", connections.load),
                *subscribe_first,
            ],
            then=[
                inbox.start,
                start_ringcx,
                connections.start,
                ask_keeper_for_new_identities,
                # The run-once jobs, each under its lease (bot/jobs.py): subscription
                # upkeep, catch-up, AI job polling, RingCX, retention, rollups.
                jobs.start,
            ],
        )
        app[STARTUP] = startup
        try:
            yield
        finally:
            await startup.stop()
            await jobs.stop()
            for ringcx_poller in ringcx_pollers:
                await ringcx_poller.stop()
            await pruner.stop()
            await rollup.stop()
            await poller.stop()
            await inbox.stop(config.shutdown_grace_s)
            await delivery.stop(config.shutdown_grace_s)
    finally:
        await session.close()
        await penalties.flush()
        await storage.close()


def _at_most_every(
    interval_s: float, action: Callable[[], Awaitable[None]]
) -> Callable[[], Awaitable[None]]:
    """`action`, run at most once per `interval_s`: callers meanwhile wait for the run in
    progress, or return at once after a recent one (events for a bot that is really gone
    must not read the database each)."""
    running: asyncio.Task[None] | None = None
    finished_at = -interval_s

    async def throttled() -> None:
        nonlocal running, finished_at
        if running is None:
            if time.monotonic() - finished_at < interval_s:
                return
            running = asyncio.ensure_future(action())
        task = running
        try:
            await asyncio.shield(task)
        finally:
            if task.done() and running is task:
                running = None
                finished_at = time.monotonic()

    return throttled


def _subscription_health(
    subscriptions: Subscriptions, jobs: RunOnceJobs
) -> Callable[[], Mapping[str, Mapping[str, object]]]:
    """The subscriptions' health as a person's `status` and `/metrics` see it: on a
    replica that does not keep them, what their keeper's heartbeat says."""

    def health() -> Mapping[str, Mapping[str, object]]:
        states = subscriptions.health()
        if subscriptions.keeping or not jobs.shared:
            return states
        kept = jobs.runs_well(SUBSCRIPTIONS_LEASE)
        return {identity: {**state, "healthy": kept} for identity, state in states.items()}

    return health


def _hand_over_all(inbox: InboxWorker) -> Callable[[Sequence[InboxItem]], None]:
    def hand_over(items: Sequence[InboxItem]) -> None:
        for item in items:
            inbox.hand_over(item)

    return hand_over


async def start_subscriptions(app: web.Application, *, wait: bool = True) -> None:
    """Sign in, load the installs, create or reuse the subscriptions, then start the
    workers and keep the subscriptions alive, all in the background (see bot/startup.py).

    RingCentral checks our webhook address during creation, so this must run once the app
    answers HTTP. With `wait`, return only when the bot is ready (StartupFailed if it
    never can be). With replicas on PostgreSQL the subscriptions are made afterwards by
    whichever replica keeps them (bot/jobs.py): `RunOnceJobs.wait_runs_well` waits for
    that.
    """
    startup = app[STARTUP]
    startup.start()
    if wait:
        await startup.wait()


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


async def _connect_start(request: web.Request) -> web.Response:
    return await request.app[CONNECT_PAGES].handle_start(request)


async def _connect_callback(request: web.Request) -> web.Response:
    return await request.app[CONNECT_PAGES].handle_callback(request)


async def livez(request: web.Request) -> web.Response:
    """Liveness: the process serves HTTP. One word, nothing about the deployment."""
    return web.Response(text="ok")


async def readyz(request: web.Request) -> web.Response:
    """Readiness: the database answers, the service user is signed in, every subscription
    is active, the AI job poller runs, and RingCX (when enabled) has a token and a poller
    that is not stuck. Only the status code and one word, for anyone to see."""
    ready = await _is_ready(request.app)
    return web.Response(text="ready" if ready else "unready", status=200 if ready else 503)


async def _is_ready(app: web.Application) -> bool:
    return not await readiness_problems(app)


async def readiness_problems(app: web.Application) -> list[str]:
    """What keeps the bot from being ready (empty: ready). For the log and `/status`,
    never for the public probe, which answers one word."""
    startup = app.get(STARTUP)
    if startup is None or not startup.ready.is_set():
        # still signing in (e.g. waiting out a 429), or start-up failed
        return ["start-up not finished"]
    if SERVICES not in app or SUBSCRIPTIONS not in app or SERVICE_TOKENS not in app:
        return ["services not running"]
    problems: list[str] = []
    if not app[SERVICE_TOKENS].signed_in:
        problems.append("service user not signed in")
    runs_here = _runs_here(app)
    if runs_here(SUBSCRIPTIONS_LEASE):
        health = app[SUBSCRIPTIONS].health()
        if not health or not all(state["healthy"] for state in health.values()):
            problems.append("a subscription is not active")
    if AI_POLLER in app and runs_here(AI_JOBS_LEASE) and not app[AI_POLLER].healthy():
        problems.append("AI job poller stopped or stuck")
    if app[CONFIG].ringcx.enabled and runs_here(RINGCX_LEASE):
        pollers = app.get(RINGCX_POLLERS) or []
        if not pollers or not all(poller.healthy() for poller in pollers):
            problems.append("RingCX: no token, or the poller stopped or is stuck")
    jobs = app.get(RUN_ONCE_JOBS)
    if jobs is not None and jobs.shared:
        # The jobs another replica runs: ready when its heartbeat says they run there.
        problems.extend(await jobs.elsewhere_problems(jobs.names))
    try:
        # One bounded read: readiness must not slow down as the tables grow.
        await app[SERVICES].storage.schema_version()
    except Exception:
        log.warning("readiness: the database does not answer", exc_info=True)
        problems.append("database does not answer")
    return problems


def _runs_here(app: web.Application) -> Callable[[str], bool]:
    """Whether this replica runs the run-once job of a lease (always, on one process):
    its own health is then checked here; elsewhere its holder's heartbeat is."""
    jobs = app.get(RUN_ONCE_JOBS)
    if jobs is None or not jobs.shared:
        return lambda name: True
    return jobs.holds


STATUS_COUNT_CAP = 1000
"""`/status` counts each queue's pending and failed rows up to this many: its answer costs
the same however large the queues and the history grow."""


async def status(request: web.Request) -> web.Response:
    """What an operator checks first (installs, subscriptions, queue depths), for
    administrators only: `Authorization: Bearer <BOT_STATUS_TOKEN>`, compared in constant
    time. Without a configured token the endpoint does not exist (404)."""
    expected = request.app[CONFIG].status_token
    if not expected:
        raise web.HTTPNotFound()
    if not bearer_token_matches(request.headers.get("Authorization"), expected):
        return web.json_response(
            {"error": "missing or wrong bearer token"},
            status=401,
            headers={"WWW-Authenticate": 'Bearer realm="status"'},
        )
    app = request.app
    services = app[SERVICES]
    problems = await readiness_problems(app)
    return web.json_response(
        {
            "status": "ready" if not problems else "unready",
            "problems": problems,
            "installs": {i.extension_id: i.account_id for i in services.installs.values()},
            "subscriptions": app[SUBSCRIPTIONS].health(),
            **await services.storage.queue_depths(STATUS_COUNT_CAP),
            "counted_up_to": STATUS_COUNT_CAP,
        }
    )


def bearer_token_matches(header: str | None, expected: str) -> bool:
    """Constant-time check of an `Authorization: Bearer ...` header. Bytes that are not
    UTF-8 (aiohttp hands them over as surrogates) simply do not match."""
    if header is None:
        return False
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    try:
        received = token.strip().encode("utf-8")
    except UnicodeEncodeError:
        return False
    return hmac.compare_digest(received, expected.encode("utf-8"))


async def metrics_with_token(request: web.Request) -> web.Response:
    """`/metrics` on the bot's own port: only for `Authorization: Bearer
    <BOT_METRICS_TOKEN>`; without a configured token it does not exist here (404)."""
    expected = request.app[CONFIG].metrics_token
    if not expected:
        raise web.HTTPNotFound()
    if not bearer_token_matches(request.headers.get("Authorization"), expected):
        return web.json_response(
            {"error": "missing or wrong bearer token"},
            status=401,
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    return await _metrics_answer(request.app)


async def _metrics_answer(app: web.Application) -> web.Response:
    metrics = app[METRICS]
    if SERVICES in app:
        services = app[SERVICES]
        await metrics.refresh(
            services.storage,
            daily_post_limit=app[CONFIG].daily_post_limit,
            accounts=[install.account_id for install in services.installs.values()],
            subscriptions=services.subscription_health(),
        )
    jobs = app.get(RUN_ONCE_JOBS)
    if jobs is not None:
        metrics.leases_held({name: jobs.holds(name) for name in jobs.names})
    body, content_type = metrics.exposition()
    response = web.Response(body=body)
    response.headers["Content-Type"] = content_type
    return response


async def _metrics_listener_ctx(app: web.Application) -> AsyncIterator[None]:
    """`metrics.bind`: a listener of its own that serves `/metrics` and nothing else, on
    the address the operator chose (e.g. 127.0.0.1:9108, reachable only by a scraper on
    the same host or network); no token needed there."""
    address = app[CONFIG].metrics_bind_address
    if address is None:
        yield
        return

    async def serve_metrics(request: web.Request) -> web.Response:
        return await _metrics_answer(app)

    listener = web.Application()
    listener.router.add_get(METRICS_PATH, serve_metrics)
    runner = web.AppRunner(listener, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        await web.TCPSite(runner, address[0], address[1]).start()
        app[METRICS_LISTENER] = runner
        log.info("metrics at http://%s:%d%s", address[0], address[1], METRICS_PATH)
        yield
    finally:
        await runner.cleanup()


def metrics_listener_url(app: web.Application) -> str | None:
    """Where the `metrics.bind` listener really listens (port 0 picks a free one)."""
    runner = app.get(METRICS_LISTENER)
    if runner is None or not runner.addresses:
        return None
    host, port = runner.addresses[0][:2]
    return f"http://{host}:{port}{METRICS_PATH}"
