"""Each account's own RingSense reader: an administrator's OAuth consent (auth code + PKCE).

The service user's JWT reads RingSense for one account only, its own. For every other
account where the bot is installed, an administrator of that account says `connect` in a
direct chat with the bot and gets a one-time link to the bot's start URL (10 minutes, one
use; only a SHA-256 of its random `state` is stored). The start URL redirects to
RingCentral's authorize page with a PKCE challenge (S256); RingCentral sends the browser
back to the callback with a code, which is exchanged with the verifier (API-FACTS A.1).

The identity is accepted only if its user is in the account being connected and holds the
RingSense permission (API-FACTS C.4); otherwise the tokens are revoked and the admin is
told why. Its refresh token is stored encrypted (`TokenCipher`), refreshed under a lock
per account (refresh tokens are single-use), and never logged. That identity makes the
account's RingSense subscription and reads its insights; nothing of that account is ever
read through another account's identity. `disconnect` revokes it (errors ignored, as
RingCentral advises), forgets it and deletes the subscription.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode

import aiohttp

from bot.config import Config
from bot.crypto import TokenCipher, UndecryptableSecret
from bot.ratelimit import RateGovernor, RateObserver, SharedWindows
from bot.rc import (
    REQUEST_TIMEOUT,
    RingCentralAuthError,
    RingCentralClient,
    RingCentralError,
    RingCentralRateLimited,
    RingCentralServerError,
    RingCentralUnavailable,
    StaticToken,
    error_code_of,
)
from bot.services import RingSenseReader, Services
from bot.storage import ConnectLink, RingSenseConnection
from bot.subscriptions import Subscriptions

log = logging.getLogger(__name__)

START_PATH = "/oauth/ringsense/start"
CALLBACK_PATH = "/oauth/ringsense/callback"
AUTHORIZE_PATH = "/restapi/oauth/authorize"
TOKEN_PATH = "/restapi/oauth/token"  # noqa: S105 - a path, not a secret
REVOKE_PATH = "/restapi/oauth/revoke"
CONNECT_LINK_TTL_S = 600
RINGSENSE_USER_PERMISSION = "ReadRingSenseInsights"
RINGSENSE_APP_SCOPE = "RingSense"
# Refresh this long before the access token expires.
REFRESH_MARGIN_S = 120
# A 401 this soon after a refresh is answered by the token that refresh gave.
RECENT_REFRESH_S = 5.0


def identity_of(account_id: str) -> str:
    """The subscription identity of an account's connected RingSense reader."""
    return f"ringsense:{account_id}"


def state_digest(state: str) -> str:
    return hashlib.sha256(state.encode("utf-8")).hexdigest()


def code_challenge(verifier: str) -> str:
    """PKCE S256 (RFC 7636): base64url(SHA-256(verifier)) without padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class ConnectRefused(Exception):
    """The consent cannot be accepted; the message is safe to show to the admin."""


class OAuthEndpoint:
    """Direct requests to the token and revoke endpoints with Basic client auth.

    The SDK's `login()` has no `code_verifier`, so the code exchange and the refresh of
    connected identities go straight to the endpoint. Errors carry the OAuth error code,
    never a token.
    """

    def __init__(self, session: aiohttp.ClientSession, config: Config) -> None:
        rc = config.ringcentral
        self._session = session
        self._server_url = rc.server_url.rstrip("/")
        credentials = f"{rc.client_id}:{rc.client_secret}".encode()
        self._auth = {"Authorization": "Basic " + base64.b64encode(credentials).decode("ascii")}

    async def token(self, form: Mapping[str, str], what: str) -> Mapping[str, Any]:
        try:
            async with self._session.post(
                self._server_url + TOKEN_PATH,
                data=dict(form),
                headers={**self._auth, "Accept": "application/json"},
                timeout=REQUEST_TIMEOUT,
            ) as response:
                try:
                    body: Any = await response.json(content_type=None)
                except ValueError:
                    body = None
                status = response.status
                retry_after = response.headers.get("Retry-After")
        except (aiohttp.ClientError, TimeoutError) as err:
            raise RingCentralUnavailable(None, None, f"{what}: {type(err).__name__}") from None
        if status == 200 and isinstance(body, Mapping) and body.get("access_token"):
            return body
        code = error_code_of(body)
        if status == 429:
            wait = float(retry_after) if retry_after and retry_after.isdigit() else 60.0
            raise RingCentralRateLimited(
                status, code, f"{what} was rate limited", retry_after=wait, group="Auth"
            )
        if status >= 500:
            raise RingCentralServerError(status, code, f"{what} failed")
        raise RingCentralAuthError(status, code, f"{what} was refused")

    async def revoke(self, token: str) -> None:
        """Revoke the whole session; errors are ignored and not retried (API-FACTS A.2)."""
        try:
            async with self._session.post(
                self._server_url + REVOKE_PATH,
                data={"token": token},
                headers=self._auth,
                timeout=REQUEST_TIMEOUT,
            ) as response:
                await response.read()
        except (aiohttp.ClientError, TimeoutError) as err:
            log.info("revoking a RingSense token failed (%s); ignored", type(err).__name__)


class ConnectedUserTokens:
    """The tokens of one account's connected RingSense user.

    The refresh token lives encrypted in storage; the access token only in memory. Every
    refresh runs under this account's lock and stores the new refresh token before the
    new access token is used, because the old refresh token is spent (API-FACTS A.1).
    When RingCentral refuses the refresh token, the connection is gone: `on_lost` is told
    and every later request fails until an admin connects again.
    """

    def __init__(
        self,
        account_id: str,
        services: Services,
        cipher: TokenCipher,
        endpoint: OAuthEndpoint,
        on_lost: Callable[[str], None],
    ) -> None:
        self.account_id = account_id
        self._services = services
        self._cipher = cipher
        self._endpoint = endpoint
        self._on_lost = on_lost
        self._lock = asyncio.Lock()
        self._access_token: str | None = None
        self._expires_at = 0.0
        self._refreshed_at = float("-inf")

    def seed(self, access_token: str, expires_in: object) -> None:
        """Start with the access token the code exchange gave (no refresh needed yet)."""
        self._access_token = access_token
        self._expires_at = time.monotonic() + _seconds(expires_in)

    async def access_token(self) -> str:
        return await self.access_token_lasting(REFRESH_MARGIN_S)

    async def access_token_lasting(self, seconds: float) -> str:
        async with self._lock:
            if self._access_token is None or time.monotonic() >= self._expires_at - seconds:
                await self._refresh()
            assert self._access_token is not None
            return self._access_token

    async def recover_from_401(self) -> bool:
        """A 401 means the access token died early (revoked, or RingCentral's clock): one
        refresh serves every request that failed at the same time, so the single-use
        refresh token is never spent twice for one expiry."""
        async with self._lock:
            if time.monotonic() - self._refreshed_at > RECENT_REFRESH_S:
                self._access_token = None
                await self._refresh()
        return True

    async def _refresh(self) -> None:
        """Spend the stored refresh token for a new pair. Replicas sharing one database take
        turns per account, and each reads the token only once it has its turn: the one
        that waited spends the token the other stored, never the one already spent (which
        RingCentral refuses, and which would read as a lost connection)."""
        async with self._services.storage.ringsense_refresh_turn(self.account_id):
            await self._refresh_in_turn()

    async def _refresh_in_turn(self) -> None:
        storage = self._services.storage
        stored = await storage.ringsense_connection(self.account_id)
        if stored is None:
            self._access_token = None
            raise RingCentralAuthError(None, None, "RingSense is not connected for this account")
        try:
            refresh_token = self._cipher.decrypt(stored.refresh_token_encrypted)
        except UndecryptableSecret:
            log.error(
                "account %s: the stored RingSense token cannot be decrypted with "
                "BOT_SECRET_KEY; an admin must connect again",
                self.account_id,
            )
            self._lost()
            raise RingCentralAuthError(None, None, "the RingSense connection is unusable") from None
        try:
            data = await self._endpoint.token(
                {"grant_type": "refresh_token", "refresh_token": refresh_token},
                "RingSense token refresh",
            )
        except RingCentralAuthError as err:
            log.warning(
                "account %s: RingCentral refused the RingSense refresh token (%s); "
                "the connection is lost",
                self.account_id,
                err.error_code,
            )
            self._lost()
            raise
        new_refresh = data.get("refresh_token")
        if isinstance(new_refresh, str) and new_refresh:
            kept = await storage.replace_ringsense_refresh_token(
                self.account_id, self._cipher.encrypt(new_refresh)
            )
            if not kept:
                # Disconnected while we refreshed: do not resurrect it.
                await self._endpoint.revoke(new_refresh)
                self._access_token = None
                raise RingCentralAuthError(
                    None, None, "RingSense is not connected for this account"
                )
        self.seed(str(data["access_token"]), data.get("expires_in"))
        self._refreshed_at = time.monotonic()

    def _lost(self) -> None:
        self._access_token = None
        self._on_lost(self.account_id)


def _seconds(value: object) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    if isinstance(value, str) and value.isdigit():
        return float(value)
    return 0.0  # unknown: treat as expired, refresh before the next use


class RingSenseConnections:
    """The connected accounts: their readers, subscriptions, links and the OAuth steps."""

    def __init__(
        self,
        config: Config,
        services: Services,
        session: aiohttp.ClientSession,
        subscriptions: Subscriptions,
        cipher: TokenCipher | None,
        event_filters: tuple[str, ...],
    ) -> None:
        self._config = config
        self._services = services
        self._session = session
        self._subscriptions = subscriptions
        self._cipher = cipher
        self._filters = event_filters
        self._endpoint = OAuthEndpoint(session, config)
        self._background: set[asyncio.Task[None]] = set()
        # Counts the connected readers' requests and 429s (the metrics), when set.
        self.rate_observer: RateObserver | None = None
        # Replicas on PostgreSQL pace each connected reader together, when set.
        self.shared_windows: SharedWindows | None = None

    @property
    def redirect_uri(self) -> str:
        return self._config.public_url + CALLBACK_PATH

    @property
    def can_connect(self) -> bool:
        """Without `BOT_SECRET_KEY` no refresh token could be kept safely: refuse."""
        return self._cipher is not None

    async def load(self) -> None:
        """The readers of the accounts connected before this start (subscribed in `start`);
        called again, the accounts connected since (on another replica)."""
        if self._cipher is None:
            stored = await self._services.storage.ringsense_connections()
            if stored:
                log.error(
                    "%d RingSense connection(s) are stored but BOT_SECRET_KEY is not set; "
                    "those accounts read nothing until it is",
                    len(stored),
                )
            return
        for connection in await self._services.storage.ringsense_connections():
            if connection.account_id in self._services.ringsense_readers:
                continue  # loaded already (another replica's new connection is loaded later)
            self._register(connection.account_id, connection.owner_extension_id, None)

    def start(self) -> None:
        """Keep every connected account's RingSense subscription alive from now on."""
        for account_id, reader in self._services.ringsense_readers.items():
            identity = identity_of(account_id)
            if identity not in self._subscriptions.keepers:
                self._subscriptions.add_identity(identity, reader.api, self._filters)
            self._subscriptions.start_identity(identity)

    def _register(
        self, account_id: str, owner_extension_id: str, seeded: Mapping[str, Any] | None
    ) -> RingSenseReader:
        assert self._cipher is not None
        tokens = ConnectedUserTokens(
            account_id, self._services, self._cipher, self._endpoint, self._connection_lost
        )
        if seeded is not None:
            tokens.seed(str(seeded["access_token"]), seeded.get("expires_in"))
        api = RingCentralClient(
            self._session,
            self._config.ringcentral.server_url,
            tokens,
            governor=RateGovernor(
                observer=self.rate_observer,
                identity=identity_of(account_id),
                shared=self.shared_windows,
            ),
        )
        reader = RingSenseReader(account_id, owner_extension_id, api)
        self._services.ringsense_readers[account_id] = reader
        return reader

    # -- the link -------------------------------------------------------------------------

    async def create_link(self, account_id: str, admin_extension_id: str) -> str:
        """A one-time start URL for this account's admin (valid `CONNECT_LINK_TTL_S`)."""
        if self._cipher is None:
            raise ConnectRefused("BOT_SECRET_KEY is not set")
        state = secrets.token_urlsafe(32)
        verifier = secrets.token_urlsafe(64)
        await self._services.storage.add_connect_link(
            state_digest(state),
            ConnectLink(
                account_id=account_id,
                admin_extension_id=admin_extension_id,
                code_verifier_encrypted=self._cipher.encrypt(verifier),
                expires_at=time.time() + CONNECT_LINK_TTL_S,
            ),
        )
        return f"{self._config.public_url}{START_PATH}?{urlencode({'state': state})}"

    async def authorize_url(self, state: str) -> str | None:
        """RingCentral's authorize URL for a live, unopened link; None otherwise."""
        if self._cipher is None:
            return None
        link = await self._services.storage.open_connect_link(state_digest(state))
        if link is None:
            return None
        verifier = self._cipher.decrypt(link.code_verifier_encrypted)
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self._config.ringcentral.client_id,
                "redirect_uri": self.redirect_uri,
                "state": state,
                "code_challenge": code_challenge(verifier),
                "code_challenge_method": "S256",
            }
        )
        return f"{self._config.ringcentral.server_url.rstrip('/')}{AUTHORIZE_PATH}?{query}"

    async def take_link(self, state: str) -> ConnectLink | None:
        return await self._services.storage.take_connect_link(state_digest(state))

    # -- the callback ---------------------------------------------------------------------

    async def complete(self, link: ConnectLink, code: str) -> RingSenseReader:
        """Exchange the code, check the identity, keep it; `ConnectRefused` says why not."""
        assert self._cipher is not None
        if self._services.install_for_account(link.account_id) is None:
            raise ConnectRefused("I am no longer installed in your company's account.")
        verifier = self._cipher.decrypt(link.code_verifier_encrypted)
        try:
            data = await self._endpoint.token(
                {
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": self.redirect_uri,
                    "code_verifier": verifier,
                },
                "RingSense authorization code exchange",
            )
        except RingCentralError as err:
            log.warning("account %s: the RingSense code exchange failed: %s", link.account_id, err)
            raise ConnectRefused(
                "RingCentral did not accept the sign-in (it may have expired). "
                "Say **connect** for a new link."
            ) from None
        refresh_token = data.get("refresh_token")
        access_token = str(data["access_token"])
        try:
            owner_id = await self._check_identity(link.account_id, data)
            if not isinstance(refresh_token, str) or not refresh_token:
                raise ConnectRefused("RingCentral gave no refresh token for that sign-in.")
        except (ConnectRefused, RingCentralError):
            await self._endpoint.revoke(
                refresh_token if isinstance(refresh_token, str) else access_token
            )
            raise
        await self.disconnect(link.account_id, revoke=True)
        await self._services.storage.save_ringsense_connection(
            RingSenseConnection(
                account_id=link.account_id,
                owner_extension_id=owner_id,
                refresh_token_encrypted=self._cipher.encrypt(refresh_token),
                connected_by=link.admin_extension_id,
                connected_at=time.time(),
            )
        )
        reader = self._register(link.account_id, owner_id, data)
        identity = identity_of(link.account_id)
        self._subscriptions.add_identity(identity, reader.api, self._filters)
        self._subscriptions.start_identity(identity)
        log.info("account %s: RingSense connected as extension %s", link.account_id, owner_id)
        return reader

    async def _check_identity(self, account_id: str, data: Mapping[str, Any]) -> str:
        """The signed-in user's extension id, if they may be this account's reader."""
        scopes = str(data.get("scope") or "").split()
        if RINGSENSE_APP_SCOPE not in scopes:
            raise ConnectRefused(
                "the app was not granted the RingSense permission; check the app's settings."
            )
        probe = RingCentralClient(
            self._session,
            self._config.ringcentral.server_url,
            StaticToken(str(data["access_token"])),  # just issued: used once, to see whose it is
        )
        me = await probe.get_own_extension()
        account = me.get("account")
        their_account = str(account.get("id")) if isinstance(account, Mapping) else ""
        if their_account != account_id:
            raise ConnectRefused(
                "you signed in as a user of another RingCentral account. Sign in with a user "
                "of the company the bot is installed in."
            )
        if str(me.get("type", "User")) != "User":
            raise ConnectRefused("that sign-in is not a person's. Sign in as a user.")
        check = await probe.request(
            "GET",
            "/restapi/v1.0/account/~/extension/~/authz-profile/check",
            params={"permissionId": RINGSENSE_USER_PERMISSION},
        )
        if not (isinstance(check, Mapping) and check.get("successful") is True):
            raise ConnectRefused(
                f"{me.get('name') or 'that user'} does not hold the "
                '"AI Conversation Expert - Access Insights" permission '
                f"({RINGSENSE_USER_PERMISSION}). Sign in as a user who does."
            )
        return str(me["id"])

    # -- disconnect -----------------------------------------------------------------------

    async def disconnect(self, account_id: str, *, revoke: bool = True) -> bool:
        """Revoke (errors ignored), delete the subscription, forget; False if none was kept."""
        reader = self._services.ringsense_readers.pop(account_id, None)
        await self._subscriptions.drop_identity(identity_of(account_id), delete_remote=True)
        stored = await self._services.storage.ringsense_connection(account_id)
        if stored is not None and revoke and self._cipher is not None:
            try:
                await self._endpoint.revoke(self._cipher.decrypt(stored.refresh_token_encrypted))
            except UndecryptableSecret:
                pass
        await self._services.storage.forget_ringsense_connection(account_id)
        self._subscriptions.identities_changed()
        return stored is not None or reader is not None

    async def forget_disconnected_elsewhere(self) -> None:
        """Drop the readers of accounts another replica disconnected (or lost)."""
        stored = {c.account_id for c in await self._services.storage.ringsense_connections()}
        for account_id in list(self._services.ringsense_readers):
            if account_id not in stored:
                self._services.ringsense_readers.pop(account_id, None)
                await self._subscriptions.drop_identity(
                    identity_of(account_id), delete_remote=False
                )

    def _connection_lost(self, account_id: str) -> None:
        """RingCentral refused the refresh token: forget the connection (in the background,
        since this runs inside a request of the subscription keeper we must stop)."""
        self._services.ringsense_readers.pop(account_id, None)
        task = asyncio.create_task(self._forget_lost(account_id))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _forget_lost(self, account_id: str) -> None:
        await self._subscriptions.drop_identity(identity_of(account_id), delete_remote=False)
        await self._services.storage.forget_ringsense_connection(account_id)
        self._subscriptions.identities_changed()
