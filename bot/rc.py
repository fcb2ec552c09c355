"""The one RingCentral client: API traffic over the app's aiohttp session, typed errors.

Two identities use it (see DESIGN.md): the bot, whose token comes from the install and
never expires, and the service user, who logs in with a JWT through the official
`ringcentral` SDK. The SDK is synchronous and puts bearer tokens into its exception
messages, so it is used only for the token exchange, in a thread, and its errors are
re-raised without their text.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import quote

import aiohttp
import orjson

from bot.logs import bind_log_context, log_context
from bot.quoting import for_log, quote_for_chat
from bot.ratelimit import (
    RETRY_AFTER_MISSING_S,
    PacingUnavailable,
    RateGovernor,
    SendTicket,
    group_of,
)

log = logging.getLogger(__name__)

SUBSCRIPTION_PATH = "/restapi/v1.0/subscription"

REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=30, sock_connect=10)
NOT_PACED = "not sent: the shared rate-limit window (the database) does not answer"
# Refresh the service user's token this long before it expires.
TOKEN_REFRESH_MARGIN_S = 120
# The AI service fetches media 5 to 30 minutes after a submit (API-FACTS E), with the token
# in `contentUri`: the token handed over must live at least this long.
MEDIA_TOKEN_MIN_LIFE_S = 30 * 60


class RingCentralError(Exception):
    """A failed RingCentral call: HTTP status (None when no answer came) and error code.

    `str()` is safe to log: it never holds a token, a header or the request body.
    """

    retryable = False

    def __init__(
        self,
        status: int | None,
        error_code: str | None,
        message: str,
        *,
        parameter_name: str | None = None,
        method: str = "",
        path: str = "",
    ) -> None:
        self.status = status
        self.error_code = error_code
        self.message = message
        self.parameter_name = parameter_name
        self.method = method
        self.path = path
        where = f"{method} {path} " if method else ""
        code = f" {error_code}" if error_code else ""
        super().__init__(
            f"{where}-> {status if status is not None else 'no answer'}{code}: {message}"
        )


class RingCentralAuthError(RingCentralError):
    """401: the token is missing, expired, revoked or unknown."""


class RingCentralPermissionError(RingCentralError):
    """403: the app or the user lacks a permission."""


class RingCentralNotFound(RingCentralError):
    """404 (or CMN-102): the resource does not exist, or is not visible to this identity."""


class RingCentralBadRequest(RingCentralError):
    """400: RingCentral refused what we sent; retrying the same request will not help."""


# What a deleted bot's token gets (RingCentral's own bot frameworks treat both as "removed").
TOKEN_REVOKED_CODES = frozenset({"OAU-232", "CMN-405"})


class DailyPostLimitReached(RingCentralError):
    """2,500 posts per user per day through the API (API-FACTS D.4); wait for tomorrow."""

    retryable = True

    def __init__(self, retry_after: float, **kwargs: Any) -> None:
        super().__init__(None, None, "the daily post limit is reached", **kwargs)
        self.retry_after = retry_after


class RingCentralRateLimited(RingCentralError):
    """429: wait `retry_after` seconds; every request during the penalty restarts it."""

    retryable = True

    def __init__(self, *args: Any, retry_after: float, group: str | None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.retry_after = retry_after
        self.group = group


class RingCentralServerError(RingCentralError):
    """5xx: RingCentral failed; worth retrying later."""

    retryable = True


class RingCentralUnavailable(RingCentralError):
    """No answer at all: connection refused or reset, DNS, timeout."""

    retryable = True


def describe_error(err: RingCentralError) -> str:
    """What to tell a person in chat when RingCentral refused or failed."""
    if isinstance(err, RingCentralRateLimited):
        return "RingCentral asked me to slow down."
    if isinstance(err, RingCentralUnavailable | RingCentralServerError):
        return "RingCentral is not answering right now."
    if isinstance(err, RingCentralAuthError):
        return "I could not sign in to RingCentral. An administrator needs to check my setup."
    if isinstance(err, RingCentralPermissionError):
        return "RingCentral did not allow me to do that: a permission is missing."
    if isinstance(err, RingCentralNotFound):
        return "RingCentral could not find that."
    if err.parameter_name:
        parameter = quote_for_chat(err.parameter_name)
        return f"RingCentral refused the request: the value of {parameter} is not valid."
    return "RingCentral refused the request."


class TokenSource(Protocol):
    """Where a client gets its bearer token, and how it gets a new one after a 401."""

    async def access_token(self) -> str: ...

    async def access_token_lasting(self, seconds: float) -> str:
        """A token with at least `seconds` left, for a URL someone else uses later."""
        ...

    async def recover_from_401(self) -> bool:
        """Try to obtain a working token; True if retrying the request makes sense."""
        ...


class StaticToken:
    """The bot's token: issued at install, permanent, nothing to refresh."""

    def __init__(self, token: str) -> None:
        self._token = token

    async def access_token(self) -> str:
        return self._token

    async def access_token_lasting(self, seconds: float) -> str:
        return self._token

    async def recover_from_401(self) -> bool:
        return False


class ServiceUserTokens:
    """The service user's tokens, obtained and refreshed with the official SDK (JWT grant).

    One lock serialises logins and refreshes (the SDK has none), and a 401 leads to one
    fresh login, after which the caller reports the failure instead of looping.
    """

    def __init__(
        self,
        server_url: str,
        client_id: str,
        client_secret: str,
        jwt: str,
        governor: RateGovernor | None = None,
    ) -> None:
        self._server_url = server_url
        self._client_id = client_id
        self._client_secret = client_secret
        self._jwt = jwt
        # Logins are in RingCentral's Auth group: paced, and nothing is sent during a
        # penalty (a login then would only restart it).
        self._governor = governor or RateGovernor()
        self._lock = asyncio.Lock()
        self._platform: Any = None
        self._expires_at = 0.0
        self.owner_id: str | None = None

    async def access_token(self) -> str:
        return await self.access_token_lasting(TOKEN_REFRESH_MARGIN_S)

    async def access_token_lasting(self, seconds: float) -> str:
        """Refresh first when less than `seconds` are left. A refresh, not a login: the
        Auth group allows 5 requests a minute, so one login per AI job would not do."""
        async with self._lock:
            if self._platform is None:
                await self._login()
            elif time.monotonic() >= self._expires_at - seconds:
                await self._refresh_or_login()
                if time.monotonic() >= self._expires_at - seconds:
                    log.warning(
                        "the service user's tokens live less than %d s; a slow consumer "
                        "of this one may find it expired",
                        int(seconds),
                    )
            return str(self._platform.auth().access_token())

    @property
    def signed_in(self) -> bool:
        """Whether the service user holds a token (for readiness; it may still be refreshed)."""
        return self._platform is not None

    async def recover_from_401(self) -> bool:
        async with self._lock:
            await self._login()
        return True

    async def _login(self) -> None:
        def login() -> tuple[Any, Mapping[str, Any]]:
            from ringcentral import SDK

            sdk = SDK(self._client_id, self._client_secret, self._server_url)
            platform = sdk.platform()
            platform.login(jwt=self._jwt)
            return platform, platform.auth().data()

        try:
            async with self._governor.sending("auth") as ticket:
                try:
                    platform, data = await asyncio.to_thread(login)
                except Exception as err:
                    error = sdk_error(err, "service user login (JWT grant)")
                    await self._note_penalty(error, ticket)
                    raise error from None
                self._governor.relieve("auth", ticket)
        except PacingUnavailable:
            raise RingCentralUnavailable(None, None, NOT_PACED) from None
        self._platform = platform
        self._remember(data)

    async def _note_penalty(self, error: RingCentralError, ticket: SendTicket) -> None:
        if isinstance(error, RingCentralRateLimited):
            self._governor.penalise("auth", error.retry_after)
            await self._governor.remember_penalty("auth")
        elif error.status is not None:
            # Answered, and not with a 429 (the SDK hides the rate-limit headers).
            self._governor.relieve("auth", ticket)

    async def _refresh_or_login(self) -> None:
        platform = self._platform

        def refresh() -> Mapping[str, Any]:
            platform.refresh()
            data: Mapping[str, Any] = platform.auth().data()
            return data

        try:
            try:
                async with self._governor.sending("auth") as ticket:
                    try:
                        self._remember(await asyncio.to_thread(refresh))
                    except Exception as err:
                        error = sdk_error(err, "service user token refresh")
                        await self._note_penalty(error, ticket)
                        raise error from None
                    self._governor.relieve("auth", ticket)
            except PacingUnavailable:
                raise RingCentralUnavailable(None, None, NOT_PACED) from None
        except RingCentralError as error:
            if error.retryable:
                if time.monotonic() < self._expires_at:
                    log.info("token refresh failed (%s); the current token still works", error)
                    return
                raise error from None
            log.info("service user token refresh failed (%s); logging in again", error.status)
            await self._login()

    def _remember(self, data: Mapping[str, Any]) -> None:
        expires_in = data.get("expires_in") or 3600
        self._expires_at = time.monotonic() + float(expires_in)
        owner = data.get("owner_id")
        self.owner_id = str(owner) if owner else None


def sdk_error(err: Exception, what: str) -> RingCentralError:
    """Turn an SDK exception into ours without its message (it may hold the bearer token).

    The SDK's `ApiException.api_response` is a METHOD returning the `ApiResponse`, whose
    own `response()` is the `requests` answer (ringcentral 0.9.2); an object carrying
    the answer as a plain attribute is accepted too. A 429 keeps its `Retry-After`, so the
    caller waits instead of giving up; 400/401/403 mean the credentials were refused.
    """
    api_response: Any = getattr(err, "api_response", None)
    if callable(api_response):
        try:
            api_response = api_response()
        except Exception:
            api_response = None
    status: int | None = None
    code: str | None = None
    retry_after: float | None = None
    if api_response is not None:
        try:
            raw = api_response.response()
            status = int(raw.status_code)
            retry_after = _retry_after(raw.headers)
            code = error_code_of(raw.json())
        except Exception:  # noqa: S110 - best effort: the body may not be JSON
            pass
    message = f"{what} failed"
    if status == 429:
        wait = RETRY_AFTER_MISSING_S if retry_after is None else retry_after
        return RingCentralRateLimited(status, code, message, retry_after=wait, group="auth")
    cls: type[RingCentralError] = RingCentralUnavailable
    if status in (400, 401, 403):
        cls = RingCentralAuthError
    elif status is not None and status >= 500:
        cls = RingCentralServerError
    elif status is not None:
        cls = RingCentralBadRequest
    return cls(status, code, message)


def error_code_of(body: Any) -> str | None:
    """The most specific RingCentral error code in an error body (REST or OAuth shape)."""
    if not isinstance(body, Mapping):
        return None
    errors = body.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], Mapping):
        nested = errors[0].get("errorCode")
        if isinstance(nested, str):
            return nested
    top = body.get("errorCode") or body.get("error")
    return top if isinstance(top, str) else None


def _error_details(body: Any) -> tuple[str | None, str, str | None]:
    code = error_code_of(body)
    message = ""
    parameter: str | None = None
    if isinstance(body, Mapping):
        errors = body.get("errors")
        first = errors[0] if isinstance(errors, list) and errors else None
        if isinstance(first, Mapping):
            message = str(first.get("message") or "")
            param = first.get("parameterName")
            parameter = str(param) if param else None
        message = message or str(body.get("message") or body.get("error_description") or "")
        if not message and body.get("error"):
            message = str(body.get("error"))
        if parameter is None and body.get("parameterName"):
            parameter = str(body["parameterName"])
        if isinstance(body.get("validation"), list):
            message = "; ".join([message, *map(str, body["validation"])]).strip("; ")
    return code, message or "no details", parameter


@dataclass(frozen=True)
class RateLimitInfo:
    """What the `X-Rate-Limit-*` headers of the last answer said."""

    group: str | None
    limit: int | None
    remaining: int | None
    window_s: int | None


REQUEST_ID_HEADER = "RCRequestId"
"""RingCentral's id of a request, in every answer."""


class RingCentralClient:
    """API calls for one identity. Paths are relative to the platform's server URL."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        server_url: str,
        tokens: TokenSource,
        governor: RateGovernor | None = None,
        on_token_revoked: Callable[[], None] | None = None,
    ) -> None:
        self._session = session
        self._server_url = server_url.rstrip("/")
        self._tokens = tokens
        self.governor = governor or RateGovernor()
        self._on_token_revoked = on_token_revoked
        self.last_rate_limit: RateLimitInfo | None = None

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
    ) -> Any:
        """Send one request; return the parsed JSON body (None when empty); raise on failure."""
        group = group_of(method, path)
        # Keeping the subscriptions alive goes before other requests waiting in its group:
        # a check stuck behind a minute of reads leaves the webhook unchecked that long.
        urgent = path.startswith(SUBSCRIPTION_PATH)
        for attempt in (1, 2):
            token = await self._tokens.access_token()
            try:
                async with (
                    self.governor.sending(group, urgent=urgent) as ticket,
                    self._session.request(
                        method,
                        self._server_url + path,
                        json=json,
                        params=params,
                        headers={
                            "Authorization": f"Bearer {token}",
                            "Accept": "application/json",
                        },
                        timeout=REQUEST_TIMEOUT,
                    ) as response,
                ):
                    info = _rate_limit_info(response.headers)
                    self.last_rate_limit = info
                    pause: float | None = None
                    self.governor.answered(group, response.status)
                    request_id = response.headers.get(REQUEST_ID_HEADER)
                    with log_context(request=request_id):
                        log.debug("%s %s: %d", method, for_log(path), response.status)
                    if response.status >= 400:
                        # What RingCentral support asks for: the lines of this task about
                        # the failure (retries, "delivery failed") carry its request id.
                        bind_log_context(request=request_id)
                    if response.status == 429:
                        # Retry-After is what counts during a penalty; the headers then say
                        # nothing is remaining, which is the penalty, not the window.
                        pause = self.governor.penalise(group, _retry_after(response.headers))
                        await self.governor.remember_penalty(group)
                    else:
                        if info is not None:
                            self.governor.observe(
                                group, info.limit, info.remaining, info.window_s, ticket
                            )
                        self.governor.relieve(
                            group,
                            ticket,
                            usage_told=info is not None and info.remaining is not None,
                        )
                    body = await _read_body(response)
                    if response.status < 400:
                        return body
                    if response.status == 401 and attempt == 1:
                        if await self._tokens.recover_from_401():
                            continue
                    error = _http_error(method, path, response, body)
                    if isinstance(error, RingCentralRateLimited) and pause is not None:
                        error.retry_after = max(error.retry_after, pause)
                    if (
                        isinstance(error, RingCentralAuthError)
                        and error.error_code in TOKEN_REVOKED_CODES
                        and self._on_token_revoked is not None
                    ):
                        self._on_token_revoked()
                    raise error
            except aiohttp.ClientError as err:
                self.governor.answered(group, None)
                raise RingCentralUnavailable(
                    None, None, type(err).__name__, method=method, path=path
                ) from None
            except PacingUnavailable:
                # Not sent: without the shared window nobody knows whether it may go.
                raise RingCentralUnavailable(
                    None, None, NOT_PACED, method=method, path=path
                ) from None
            except TimeoutError:
                self.governor.answered(group, None)
                raise RingCentralUnavailable(
                    None, None, "timed out", method=method, path=path
                ) from None
        raise AssertionError("unreachable")

    async def _object(self, method: str, path: str, **kwargs: Any) -> Mapping[str, Any]:
        """A request whose answer must be a JSON object; anything else is RingCentral
        misbehaving, reported as such rather than failing later on a missing key."""
        result = await self.request(method, path, **kwargs)
        if not isinstance(result, Mapping):
            raise RingCentralServerError(
                None, None, "the answer is not a JSON object", method=method, path=path
            )
        return result

    # -- identity -----------------------------------------------------------------------

    async def get_own_extension(self) -> Mapping[str, Any]:
        return await self._object("GET", "/restapi/v1.0/account/~/extension/~")

    # -- subscriptions ------------------------------------------------------------------

    async def create_subscription(
        self, event_filters: Sequence[str], address: str, verification_token: str
    ) -> Mapping[str, Any]:
        return await self._object(
            "POST",
            SUBSCRIPTION_PATH,
            json={
                "eventFilters": list(event_filters),
                "deliveryMode": {
                    "transportType": "WebHook",
                    "address": address,
                    "verificationToken": verification_token,
                },
                "expiresIn": SUBSCRIPTION_TTL_S,
            },
        )

    async def list_subscriptions(self) -> list[Mapping[str, Any]]:
        result = await self.request("GET", SUBSCRIPTION_PATH)
        return _records(result)

    async def get_subscription(self, subscription_id: str) -> Mapping[str, Any]:
        return await self._object(
            "GET", f"/restapi/v1.0/subscription/{quote(subscription_id, safe='')}"
        )

    async def renew_subscription(self, subscription_id: str) -> Mapping[str, Any]:
        return await self._object(
            "POST", f"/restapi/v1.0/subscription/{quote(subscription_id, safe='')}/renew"
        )

    async def delete_subscription(self, subscription_id: str) -> None:
        await self.request(
            "DELETE", f"/restapi/v1.0/subscription/{quote(subscription_id, safe='')}"
        )

    # -- RingSense ----------------------------------------------------------------------

    async def get_record_insights(self, domain: str, source_record_id: str) -> Mapping[str, Any]:
        return await self._object(
            "GET",
            f"/ai/ringsense/v1/public/accounts/~/domains/{quote(domain, safe='')}"
            f"/records/{quote(source_record_id, safe='')}/insights",
        )

    async def get_session_insights(
        self, domain: str, source_session_id: str
    ) -> list[Mapping[str, Any]]:
        result = await self.request(
            "GET",
            f"/ai/ringsense/v1/public/accounts/~/domains/{quote(domain, safe='')}"
            f"/sessions/{quote(source_session_id, safe='')}/insights",
        )
        return _records(result)

    # -- AI API (Interaction Analytics) ----------------------------------------------------

    async def analyze_interaction(self, webhook: str, body: Mapping[str, Any]) -> str:
        """Start an asynchronous analysis; the job id. The body holds the media URL, which may
        carry a token: it is never logged (errors name only method and path)."""
        result = await self._object(
            "POST",
            "/ai/insights/v1/async/analyze-interaction",
            json=dict(body),
            params={"webhook": webhook},
        )
        return str(result["jobId"])

    async def ai_job_status(self, job_id: str) -> Mapping[str, Any]:
        return await self._object("GET", f"/ai/status/v1/jobs/{quote(job_id, safe='')}")

    async def ai_enrollment(self, enrollment_id: str) -> Mapping[str, Any]:
        """A speaker's voice enrollment (`EnrollmentStatus`: `enrollmentComplete`...); an
        unknown id is RingCentralNotFound. Heavy, app permission AI (ringcentral-java
        `paths/ai/audio/v1/enrollments`; no longer in the spec)."""
        return await self._object(
            "GET", f"/ai/audio/v1/enrollments/{quote(enrollment_id, safe='')}"
        )

    async def extension(self, extension_id: str) -> Mapping[str, Any]:
        """An extension of our account (its `name`), e.g. to name a RingCX agent."""
        return await self._object(
            "GET", f"/restapi/v1.0/account/~/extension/{quote(extension_id, safe='')}"
        )

    async def recording(self, recording_id: str) -> Mapping[str, Any]:
        return await self._object(
            "GET", f"/restapi/v1.0/account/~/recording/{quote(recording_id, safe='')}"
        )

    async def call_log_record(self, record_id: str) -> Mapping[str, Any]:
        return await self._object(
            "GET", f"/restapi/v1.0/account/~/call-log/{quote(record_id, safe='')}"
        )

    async def media_url_with_token(self, content_uri: str) -> str:
        """The recording's content URL with our access token as `access_token`: the AI API
        fetches media itself and cannot send headers, 5 to 30 minutes later: the token has
        at least MEDIA_TOKEN_MIN_LIFE_S left. This string is a secret."""
        token = await self._tokens.access_token_lasting(MEDIA_TOKEN_MIN_LIFE_S)
        separator = "&" if "?" in content_uri else "?"
        return f"{content_uri}{separator}access_token={quote(token, safe='')}"

    # -- call log -----------------------------------------------------------------------

    async def company_call_log(
        self, *, date_from: str, page: int, per_page: int
    ) -> tuple[list[Mapping[str, Any]], bool]:
        """One page of the account's recorded calls since `date_from`; (records, more?)."""
        result = await self.request(
            "GET",
            "/restapi/v1.0/account/~/call-log",
            params={
                "dateFrom": date_from,
                "recordingType": "All",
                "view": "Simple",
                "perPage": str(per_page),
                "page": str(page),
            },
        )
        records = _records(result)
        navigation = result.get("navigation") if isinstance(result, Mapping) else None
        has_more = isinstance(navigation, Mapping) and bool(navigation.get("nextPage"))
        return records, has_more

    # -- team messaging -----------------------------------------------------------------

    async def open_direct_chat(self, extension_id: str) -> str:
        """The id of the direct conversation between this identity and a person."""
        result = await self._object(
            "POST", "/team-messaging/v1/conversations", json={"members": [{"id": extension_id}]}
        )
        return str(result["id"])

    async def get_chat(self, chat_id: str) -> Mapping[str, Any]:
        return await self._object("GET", f"/team-messaging/v1/chats/{quote(chat_id, safe='')}")

    async def post_text(self, chat_id: str, text: str) -> str:
        result = await self._object(
            "POST", f"/team-messaging/v1/chats/{quote(chat_id, safe='')}/posts", json={"text": text}
        )
        return str(result["id"])

    async def create_card(self, chat_id: str, card: Mapping[str, Any]) -> str:
        result = await self._object(
            "POST", f"/team-messaging/v1/chats/{quote(chat_id, safe='')}/adaptive-cards", json=card
        )
        return str(result["id"])

    async def get_post(self, chat_id: str, post_id: str) -> Mapping[str, Any]:
        """A post read back from RingCentral: proof that it exists, where, and by whom."""
        return await self._object(
            "GET",
            f"/team-messaging/v1/chats/{quote(chat_id, safe='')}/posts/{quote(post_id, safe='')}",
        )

    async def get_person(self, person_id: str) -> Mapping[str, Any]:
        """One person (`companyId` is their account); 404 when this identity cannot see them."""
        return await self._object("GET", f"/team-messaging/v1/persons/{quote(person_id, safe='')}")

    async def get_card(self, card_id: str) -> Mapping[str, Any]:
        return await self._object(
            "GET", f"/team-messaging/v1/adaptive-cards/{quote(card_id, safe='')}"
        )

    async def recent_card_ids(
        self, chat_id: str, *, creator_id: str, since: float, limit: int = 30
    ) -> list[str]:
        """Ids of the cards this creator posted in a chat since a time (epoch s), newest first."""
        result = await self.request(
            "GET",
            f"/team-messaging/v1/chats/{quote(chat_id, safe='')}/posts",
            params={"recordCount": str(limit)},
        )
        ids: list[str] = []
        for post in _records(result):
            if str(post.get("creatorId")) != creator_id:
                continue
            created = _epoch(post.get("creationTime"))
            if created is not None and created < since:
                continue
            for attachment in post.get("attachments") or []:
                if (
                    isinstance(attachment, Mapping)
                    and attachment.get("type") in CARD_ATTACHMENT_TYPES
                    and attachment.get("id")
                ):
                    ids.append(str(attachment["id"]))
        return ids

    async def update_card(self, card_id: str, card: Mapping[str, Any]) -> None:
        await self.request(
            "PUT", f"/team-messaging/v1/adaptive-cards/{quote(card_id, safe='')}", json=card
        )

    async def list_chats(self, chat_type: str, *, max_pages: int = 4) -> list[Mapping[str, Any]]:
        """This identity's chats of one type (`Group`, `Team`, ...), most recently active
        first, following `pageToken` for at most `max_pages` pages of 250."""
        chats: list[Mapping[str, Any]] = []
        params = {"type": chat_type, "recordCount": "250"}
        for _ in range(max_pages):
            page = await self._object("GET", "/team-messaging/v1/chats", params=params)
            records = page.get("records")
            if isinstance(records, list):
                chats.extend(r for r in records if isinstance(r, Mapping))
            navigation = page.get("navigation")
            token = navigation.get("nextPageToken") if isinstance(navigation, Mapping) else None
            if not isinstance(token, str) or not token:
                break
            params = {**params, "pageToken": token}
        return chats


CARD_ATTACHMENT_TYPES = frozenset({"Card", "AdaptiveCard"})
"""How a post may show the adaptive card it holds. UNCONFIRMED: no real sample of a post
carrying an adaptive card was found. The spec's TMAttachmentInfo/TMMessageAttachmentInfo
enums name `Card`; the card itself says `"type": "AdaptiveCard"` (fixture
adaptive-card-get-response.json). Both are accepted, and a candidate counts only once GET
adaptive-cards/{id} shows our marker inside it, so a wrong guess here costs at worst a
duplicate card, never a wrong one."""

# A week is what RingCentral gives when expiresIn is left out; we ask for it explicitly and
# renew well before it runs out.
SUBSCRIPTION_TTL_S = 604_800


def _epoch(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def seconds_until_utc_midnight() -> float:
    now = time.time()
    return 86_400 - (now % 86_400) + 1


def _records(result: Any) -> list[Mapping[str, Any]]:
    """The `records` of a list answer, skipping anything that is not an object."""
    records = result.get("records", []) if isinstance(result, Mapping) else []
    return [r for r in records if isinstance(r, Mapping)] if isinstance(records, list) else []


def _retry_after(headers: Mapping[str, str]) -> float | None:
    try:
        return max(0.0, float(headers["Retry-After"]))
    except (KeyError, ValueError):
        return None


def _rate_limit_info(headers: Mapping[str, str]) -> RateLimitInfo | None:
    group = headers.get("X-Rate-Limit-Group")
    if group is None:
        return None

    def number(name: str) -> int | None:
        try:
            return int(headers[name])
        except (KeyError, ValueError):
            return None

    return RateLimitInfo(
        group=group,
        limit=number("X-Rate-Limit-Limit"),
        remaining=number("X-Rate-Limit-Remaining"),
        window_s=number("X-Rate-Limit-Window"),
    )


async def _read_body(response: aiohttp.ClientResponse) -> Any:
    raw = await response.read()
    if not raw:
        return None
    try:
        # orjson: a RingSense record with its transcript is 40 KB to 300 KB of JSON.
        return orjson.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


def _http_error(
    method: str, path: str, response: aiohttp.ClientResponse, body: Any
) -> RingCentralError:
    code, message, parameter = _error_details(body)
    status = response.status
    common: dict[str, Any] = {"parameter_name": parameter, "method": method, "path": path}
    if status == 429:
        retry_after = _retry_after(response.headers)
        return RingCentralRateLimited(
            status,
            code,
            message,
            retry_after=RETRY_AFTER_MISSING_S if retry_after is None else retry_after,
            group=response.headers.get("X-Rate-Limit-Group"),
            **common,
        )
    if status == 401:
        return RingCentralAuthError(status, code, message, **common)
    if status == 403:
        return RingCentralPermissionError(status, code, message, **common)
    if status == 404 or code == "CMN-102":
        return RingCentralNotFound(status, code, message, **common)
    if status >= 500:
        if "exceeded your limits" in message:
            return DailyPostLimitReached(seconds_until_utc_midnight(), **common)
        return RingCentralServerError(status, code, message, **common)
    return RingCentralBadRequest(status, code, message, **common)
