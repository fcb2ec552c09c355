"""The bot's installs: one per RingCentral account, each with its own permanent token.

A private bot gets its token by a POST to the OAuth redirect URI; a public bot gets an
authorisation code by a GET and exchanges it (through the official SDK). Either way the
token is checked against the API before it is trusted, stored, and the bot's
subscriptions for that account are created. Removal (the extension `Delete` event)
deletes the subscriptions and everything stored for that account.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import aiohttp

from bot.config import Config
from bot.ratelimit import PenaltyMemory
from bot.rc import (
    RingCentralAuthError,
    RingCentralClient,
    RingCentralError,
    StaticToken,
    sdk_error,
)
from bot.services import BotInstall, Services
from bot.storage import StoredInstall
from bot.subscriptions import Subscriptions, token_fingerprint

log = logging.getLogger(__name__)

BOT_EVENT_FILTERS = (
    "/team-messaging/v1/posts",
    "/team-messaging/v1/chats",
    "/restapi/v1.0/account/~/extension/~",
)
ENVIRONMENT = "environment"


def pacing_identity(token: str) -> str:
    """Whom a bot token's requests are paced as: its fingerprint (the bot's extension id
    is not known before the first request), never the token."""
    return f"bot-{token_fingerprint(token)[:16]}"


class InstallError(Exception):
    """An install attempt that cannot be accepted; the message is safe to show."""


class Installs:
    def __init__(
        self,
        config: Config,
        services: Services,
        session: aiohttp.ClientSession,
        subscriptions: Subscriptions,
        penalties: PenaltyMemory | None = None,
    ) -> None:
        self._config = config
        self._penalties = penalties
        self._services = services
        self._session = session
        self._subscriptions = subscriptions
        self._background: set[asyncio.Task[None]] = set()
        self._removals: dict[str, asyncio.Task[None]] = {}

    def client(self, token: str) -> RingCentralClient:
        client: RingCentralClient

        def revoked() -> None:
            # RingCentral says this bot no longer exists (uninstalled while we were away,
            # or the Delete event was lost): treat it as removed.
            for install in list(self._services.installs.values()):
                if install.api is client:
                    log.warning(
                        "bot %s's token is revoked; treating it as removed", install.extension_id
                    )
                    task = asyncio.create_task(self.remove(install.extension_id))
                    self._background.add(task)
                    task.add_done_callback(self._background.discard)

        client = RingCentralClient(
            self._session,
            self._config.ringcentral.server_url,
            StaticToken(token),
            # Keyed by the token's fingerprint: the bot's extension id is not known yet.
            governor=(
                self._penalties.governor(pacing_identity(token))
                if self._penalties is not None
                else None
            ),
            on_token_revoked=revoked,
        )
        return client

    async def load(self) -> None:
        """Register the installs we know of: the token from the environment, then the stored."""
        if self._config.ringcentral.bot_token:
            try:
                await self._register(self._config.ringcentral.bot_token, None, ENVIRONMENT)
            except RingCentralError as err:
                if err.retryable:
                    raise  # RingCentral is unwell or busy: start-up tries again
                log.error("the bot token from RC_BOT_TOKEN does not work: %s", err)
        await self.load_stored()

    async def load_stored(self) -> None:
        """Register the stored installs not known here yet (at start; later, those another
        replica took since)."""
        for stored in await self._services.storage.stored_installs():
            if stored.bot_extension_id in self._services.installs:
                continue
            try:
                await self._register(
                    stored.access_token, stored.creator_extension_id, stored.source, store=False
                )
            except RingCentralAuthError as err:
                log.warning(
                    "bot %s in account %s was removed while we were away (%s)",
                    stored.bot_extension_id,
                    stored.account_id,
                    err,
                )
                await self._services.storage.forget_account(
                    stored.account_id, stored.bot_extension_id
                )
                await self._disconnect_ringsense(stored.account_id)
            except RingCentralError as err:
                # RingCentral is unwell; trust what we stored and check again next start.
                log.warning("could not check bot %s: %s", stored.bot_extension_id, err)
                self._add(
                    BotInstall(
                        stored.bot_extension_id,
                        stored.account_id,
                        self.client(stored.access_token),
                        source=stored.source,
                    )
                )

    async def install_with_token(
        self, token: str, creator_extension_id: str | None, source: str
    ) -> BotInstall:
        """A token from the install POST (private bot) or the code exchange (public bot)."""
        try:
            install = await self._register(token, creator_extension_id, source)
        except RingCentralAuthError:
            # Anyone may post a made-up token here: the refused one leaves no pacing state.
            if self._penalties is not None:
                await self._penalties.forget(pacing_identity(token))
            raise InstallError("RingCentral does not accept that token") from None
        self._subscriptions.start_identity(f"bot:{install.extension_id}")
        return install

    async def exchange_code(self, code: str, redirect_uri: str) -> str:
        """Trade a public bot's authorisation code for its token (official SDK, in a thread)."""
        rc = self._config.ringcentral

        def exchange() -> Mapping[str, Any]:
            from ringcentral import SDK

            platform = SDK(rc.client_id, rc.client_secret, rc.server_url).platform()
            platform.login(code=code, redirect_uri=redirect_uri)
            data: Mapping[str, Any] = platform.auth().data()
            return data

        try:
            data = await asyncio.to_thread(exchange)
        except Exception as err:
            raise InstallError(str(sdk_error(err, "authorisation code exchange"))) from None
        token = data.get("access_token")
        if not token:
            raise InstallError("RingCentral answered the code exchange without a token")
        return str(token)

    async def remove(self, bot_extension_id: str) -> None:
        """Forget a removed bot (see `_remove`), once however many ask at the same time.

        The uninstall event and a 401 on the bot's own token (each of the removal's own
        requests meets one) ask together. Two removals side by side would race: one revokes
        the account's RingSense token while the other still deletes the RingSense
        subscription with it, and the subscription is left behind. A second caller waits
        for the removal under way instead.
        """
        running = self._removals.get(bot_extension_id)
        if running is None:
            running = asyncio.create_task(self._remove(bot_extension_id))
            self._removals[bot_extension_id] = running
            running.add_done_callback(lambda _: self._removals.pop(bot_extension_id, None))
        await asyncio.shield(running)

    async def _remove(self, bot_extension_id: str) -> None:
        """Forget a removed bot: its subscriptions, then every row of its account.

        The install stays known until its data is gone, so nobody sees it missing while
        its account's rows are still there; a second pass after it is dropped catches rows
        that work in flight wrote meanwhile.
        """
        install = self._services.installs.get(bot_extension_id)
        identity = f"bot:{bot_extension_id}"
        await self._subscriptions.drop_identity(identity, delete_remote=True)
        account_id = install.account_id if install else None
        if account_id is None:
            account_id = await self._services.storage.install_account(bot_extension_id)
            if account_id is None:
                return  # already removed
        storage = self._services.storage
        # The account's own RingSense reader is revoked first: forgetting the account
        # deletes its stored refresh token too.
        await self._disconnect_ringsense(account_id)
        await storage.forget_account(account_id, bot_extension_id)
        self._services.installs.pop(bot_extension_id, None)
        await storage.forget_account(account_id, bot_extension_id)
        self._subscriptions.identities_changed()
        log.info(
            "bot %s removed from account %s; its data is deleted", bot_extension_id, account_id
        )

    async def forget_removed_elsewhere(self) -> None:
        """Drop the installs another replica removed (their rows are gone): no handler
        acts as them and no subscription is kept for them here any more."""
        stored = {s.bot_extension_id for s in await self._services.storage.stored_installs()}
        for extension_id, install in list(self._services.installs.items()):
            if install.source == ENVIRONMENT or extension_id in stored:
                continue
            self._services.installs.pop(extension_id, None)
            await self._subscriptions.drop_identity(f"bot:{extension_id}", delete_remote=False)
            log.info("bot %s was removed on another replica", extension_id)

    async def _disconnect_ringsense(self, account_id: str) -> None:
        """The account's own RingSense reader goes with the bot: revoked, unsubscribed,
        forgotten (after the account's other data, which a removal wipes first)."""
        if self._services.connector is not None:
            await self._services.connector.disconnect(account_id)

    async def _register(
        self, token: str, creator_extension_id: str | None, source: str, *, store: bool = True
    ) -> BotInstall:
        api = self.client(token)
        info = await api.get_own_extension()
        if str(info.get("type", "Bot")) != "Bot":
            raise InstallError("that token is not a bot's")
        account = info.get("account")
        account_id = str(account.get("id")) if isinstance(account, Mapping) else ""
        install = BotInstall(str(info["id"]), account_id, api, str(info.get("name") or ""), source)
        if store and source != ENVIRONMENT:
            await self._services.storage.save_install(
                StoredInstall(install.extension_id, account_id, token, creator_extension_id, source)
            )
        self._add(install)
        log.info("bot %s (%s) ready in account %s", install.extension_id, install.name, account_id)
        return install

    def _add(self, install: BotInstall) -> None:
        self._services.installs[install.extension_id] = install
        self._services.storage.attribute_owner(install.extension_id, install.account_id)
        self._subscriptions.add_identity(
            f"bot:{install.extension_id}", install.api, BOT_EVENT_FILTERS
        )
