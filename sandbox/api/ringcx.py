"""RingCX on the sandbox host (API-FACTS F; EVSPEC engage-voice_openapi3.json): the
RingCentral token exchange and refresh, interaction metadata and segment transcripts.

The real service lives on its own host (ringcx.ringcentral.com / engage.ringcentral.com);
here the same paths are served by the sandbox, so a bot points its RingCX base URL at
the sandbox. RingCX has its own tokens, errors and limits, so these handlers bypass the
platform middleware and do all of it themselves, still writing the request log (groups
`RingCX-auth`, `RingCX-metadata`, `RingCX-transcript`).

Documented behaviour emulated: access tokens live 5 minutes and an expired one gets 401
`text/plain` "Jwt is expired"; the exchange is limited to 5 requests/min; metadata to 3
requests per 60 s and 9 per 15 min per sub-account; transcripts to 120/min; metadata is
a bare array of the segments whose end lies in [segmentEndTime, +timeInterval) read in
`timeZone` (a wall time that happens twice at a daylight-saving change is read as its
first pass, one that never happens as if the clock had not jumped: what a client that asks
in local time gets is not what it meant); `timeInterval` at most 3600 s, the older
documented maximum (EVSPEC says 10800; the stricter holds); a transcript is 404 until it
is ready; errors use the `Errors` shape of the fixtures.

Choices where nothing authoritative was found (UNCONFIRMED):

* 429s carry `Retry-After` (seconds until a request would be admitted) and the `Errors`
  body; refused requests do not count. The exchange is limited per RingCentral user (per
  client address when the RingCentral token is unknown); transcripts per sub-account.
* A missing `Authorization` gets 401 text/plain "Full authentication is required to access
  this resource"; an unknown token 401 text/plain "Jwt is invalid".
* The exchange answers an unusable RingCentral token (unknown, expired, revoked) with 401
  in the `Errors` shape, and a token of a user who cannot use RingCX (a bot, an account
  without RingCX, a token without the ReadAccounts scope) with 403. The form fields may
  also come in the query, as EVSPEC describes them. Without `includeRefresh=true` no
  `refreshToken` is returned.
* Refresh tokens last a day and are single-use; the access token they replace keeps
  working until it expires. The refresh endpoint is not rate limited.
* Another RingCentral account's id in the path is 403; a sub-account of another account
  is 403 and one that does not exist 404.
* Only segments that have ended (on the world's clock) are reported.
* Voice transcripts carry `participantType`, `participantName` and `rcUserId` as null,
  like the only voice sample; the agent's lines have the segment id as `participantId`,
  the contact's a `d-<hex>-<hex>` id of their own.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aiohttp import web

from sandbox.keys import WORLD_KEY
from sandbox.platform import masked_query, self_served
from sandbox.ringcx_state import (
    ACCESS_TOKEN_SECONDS,
    EXCHANGE_RULES,
    METADATA_RULES,
    REFRESH_TOKEN_SECONDS,
    TRANSCRIPT_RULES,
    RingCxAccount,
    RingCxSession,
    Rule,
    Segment,
)
from sandbox.world import JSON, RequestLogEntry, World, iso

routes = web.RouteTableDef()

EXCHANGE = "/api/auth/login/rc/accesstoken"
REFRESH = "/api/auth/token/refresh"
INTEGRATION = "/voice/api/cx/integration/v1/accounts/{rcAccountId}/sub-accounts/{subAccountId}"
METADATA = INTEGRATION + "/interaction-metadata"
TRANSCRIPT = INTEGRATION + "/transcripts/dialogs/{dialogId}/segments/{segmentId}"
MAX_INTERVAL = 3600
"""EVSPEC says 10800 s, the older reports.md 3600 (API-FACTS discrepancy 8): the stricter."""
SEGMENT_END_FORMAT = "%Y-%m-%d %H:%M:%S"

CX_SESSION_KEY = web.RequestKey("ringcx_session", RingCxSession)
CX_OWNER_KEY = web.RequestKey("ringcx_owner", str)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class RingCxError(Exception):
    def __init__(
        self, status: int, body: JSON | str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(f"{status}")
        self.status = status
        self.body = body
        self.headers = headers or {}

    def response(self) -> web.Response:
        if isinstance(self.body, str):
            return web.Response(
                status=self.status, text=self.body, content_type="text/plain", headers=self.headers
            )
        return web.json_response(self.body, status=self.status, headers=self.headers)


def _world(request: web.Request) -> World:
    return request.app[WORLD_KEY]


def cx_error(
    request: web.Request,
    status: int,
    developer_message: str,
    general_message: str,
    *,
    validation_errors: list[JSON] | None = None,
    headers: dict[str, str] | None = None,
) -> RingCxError:
    """The RingCX `Errors` body (fixtures ringcx-error-400/403/404.json)."""
    body: JSON = {
        "details": "",
        "developerMessage": developer_message,
        "cause": "",
        "generalMessage": general_message,
        "requestUri": f"{request.path} - {request.method}",
        "timestamp": int(_world(request).now() * 1000),
    }
    if validation_errors:
        body["validationErrors"] = validation_errors
    return RingCxError(status, body, headers)


def bad_request(request: web.Request, validation_errors: list[JSON] | None = None) -> RingCxError:
    return cx_error(
        request,
        400,
        "Bad request",
        "The supplied data is not valid",
        validation_errors=validation_errors,
    )


def access_denied(request: web.Request) -> RingCxError:
    return cx_error(
        request, 403, "Access is denied.", "You do not have permission to access this resource"
    )


def not_found(request: web.Request) -> RingCxError:
    return cx_error(request, 404, "Not found", "The resource you have requested does not exist")


def unauthorized(request: web.Request, message: str) -> RingCxError:
    return cx_error(request, 401, "Unauthorized", message)


def _throttle(request: web.Request, key: str, rules: tuple[Rule, ...]) -> None:
    world = _world(request)
    if not world.ringcx_enforce_rate_limits:
        return
    wait = world.ringcx.windows.admit(key, rules, world.now())
    if wait is not None:
        raise cx_error(
            request,
            429,
            "Too Many Requests",
            "Rate limit exceeded, please retry later",
            headers={"Retry-After": str(wait)},
        )


def _authenticate(request: web.Request) -> RingCxSession:
    world = _world(request)
    header = request.headers.get("Authorization")
    if header is None:
        raise RingCxError(401, "Full authentication is required to access this resource")
    scheme, _, token = header.strip().partition(" ")
    session = world.ringcx.sessions.get(token.strip()) if scheme.lower() == "bearer" else None
    if session is None or session.extension_id not in world.extensions:
        raise RingCxError(401, "Jwt is invalid")
    if session.access_expires_at <= world.now():
        raise RingCxError(401, "Jwt is expired")
    return session


def ringcx_endpoint(group: str, *, authenticated: bool = True) -> Callable[[Handler], Handler]:
    """Authentication (RingCX bearer token), error rendering and the request log."""

    def wrap(handler: Handler) -> Handler:
        async def serve(request: web.Request) -> web.StreamResponse:
            world = _world(request)
            arrived_at = world.now()
            arrived_monotonic = time.monotonic()
            status: int | None = 500
            try:
                try:
                    if authenticated:
                        session = _authenticate(request)
                        request[CX_SESSION_KEY] = session
                        request[CX_OWNER_KEY] = session.extension_id
                    response = await handler(request)
                except RingCxError as error:
                    response = error.response()
                status = response.status
                return response
            finally:
                world.request_log.append(
                    RequestLogEntry(
                        method=request.method,
                        path=request.path,
                        query=masked_query(request),
                        status=status,
                        group=group,
                        token_owner=request.get(CX_OWNER_KEY),
                        time=world.now(),
                        arrived_at=arrived_at,
                        arrived_monotonic=arrived_monotonic,
                        fault="rateLimit" if status == 429 else None,
                    )
                )

        serve.__name__ = handler.__name__
        serve.__doc__ = handler.__doc__
        return self_served(serve)

    return wrap


# ------------------------------------------------------------------------------ auth


async def _field(request: web.Request, name: str) -> str | None:
    """A form field, or the query parameter of that name (EVSPEC puts them there)."""
    if request.content_type == "application/x-www-form-urlencoded":
        form = await request.post()
        value = form.get(name)
        if isinstance(value, str):
            return value
    return request.query.get(name)


def agent_id_of(world: World, extension_id: str) -> str:
    agent_ids = world.ringcx.agent_ids
    if extension_id not in agent_ids:
        agent_ids[extension_id] = world.random_digits(6)
    return agent_ids[extension_id]


def _login_body(world: World, session: RingCxSession, *, include_refresh: bool) -> JSON:
    extension = world.extensions[session.extension_id]
    account = world.ringcx.accounts[session.rc_account_id]
    agent_id = int(agent_id_of(world, extension.id))
    body: JSON = {}
    if include_refresh:
        body["refreshToken"] = session.refresh_token
    body.update(
        {
            "accessToken": session.access_token,
            "tokenType": "Bearer",
            "mainAccountId": account.main_account_id,
            "agentDetails": [
                {
                    "agentId": agent_id,
                    "firstName": extension.first_name,
                    "lastName": extension.last_name,
                    "email": extension.email,
                    "username": extension.email,
                    "agentType": "AGENT",
                    "rcUserId": int(extension.id) if extension.id.isdigit() else 0,
                    "accountId": sub_account_id,
                    "accountName": name,
                    "agentGroupId": None,
                    "allowLoginControl": True,
                    "allowLoginUpdates": True,
                }
                for sub_account_id, name in account.sub_accounts.items()
            ],
            "adminId": account.admin_id,
            "adminUrl": "/voice/admin/",
            "agentUrl": "/voice/agent/",
            "ssoLogin": True,
        }
    )
    return body


def _new_session(world: World, extension_id: str, rc_account_id: str) -> RingCxSession:
    now = world.now()
    session = RingCxSession(
        extension_id=extension_id,
        rc_account_id=rc_account_id,
        access_token=world.new_token("sbx-cx-at"),
        access_expires_at=now + ACCESS_TOKEN_SECONDS,
        refresh_token=world.new_token("sbx-cx-rt"),
        refresh_expires_at=now + REFRESH_TOKEN_SECONDS,
    )
    world.ringcx.sessions[session.access_token] = session
    world.ringcx.refresh_tokens[session.refresh_token] = session
    return session


@routes.post(EXCHANGE)
@ringcx_endpoint("RingCX-auth", authenticated=False)
async def login_with_rc_access_token(request: web.Request) -> web.StreamResponse:
    world = _world(request)
    rc_token = await _field(request, "rcAccessToken")
    token_type = await _field(request, "rcTokenType")
    rc_session = world.access_tokens.get(rc_token or "")
    if rc_session is not None:
        request[CX_OWNER_KEY] = rc_session.owner_id
    _throttle(
        request,
        "exchange:" + (rc_session.owner_id if rc_session else f"anonymous:{request.remote}"),
        EXCHANGE_RULES,
    )
    if not rc_token or (token_type or "").lower() != "bearer":
        raise bad_request(
            request,
            [
                {"attributeName": name, "message": "is required", "value": ""}
                for name, value in (("rcAccessToken", rc_token), ("rcTokenType", token_type))
                if not value
            ]
            or [{"attributeName": "rcTokenType", "message": "must be Bearer", "value": token_type}],
        )
    extension = world.extensions.get(rc_session.owner_id) if rc_session else None
    if (
        rc_session is None
        or extension is None
        or (
            rc_session.access_expires_at is not None and rc_session.access_expires_at <= world.now()
        )
    ):
        raise unauthorized(request, "Invalid RingCentral access token")
    if (
        extension.type != "User"
        or extension.account_id not in world.ringcx.accounts
        or "ReadAccounts" not in rc_session.scope
    ):
        raise access_denied(request)
    session = _new_session(world, extension.id, extension.account_id)
    include_refresh = request.query.get("includeRefresh", "").lower() == "true"
    return web.json_response(_login_body(world, session, include_refresh=include_refresh))


@routes.post(REFRESH)
@ringcx_endpoint("RingCX-auth", authenticated=False)
async def refresh_token(request: web.Request) -> web.StreamResponse:
    world = _world(request)
    token = await _field(request, "refresh_token")
    if not token:
        raise bad_request(
            request, [{"attributeName": "refresh_token", "message": "is required", "value": ""}]
        )
    old = world.ringcx.refresh_tokens.get(token)
    if (
        old is None
        or old.refresh_expires_at <= world.now()
        or old.extension_id not in (world.extensions)
    ):
        raise unauthorized(request, "Invalid refresh token")
    request[CX_OWNER_KEY] = old.extension_id
    del world.ringcx.refresh_tokens[token]
    session = _new_session(world, old.extension_id, old.rc_account_id)
    return web.json_response(_login_body(world, session, include_refresh=True))


# ----------------------------------------------------------------------- integration


def _sub_account(request: web.Request) -> tuple[RingCxAccount, str]:
    """The path's account and sub-account, as far as the caller may see them."""
    world = _world(request)
    session = request[CX_SESSION_KEY]
    rc_account_id = request.match_info["rcAccountId"]
    sub_account_id = request.match_info["subAccountId"]
    account = world.ringcx.accounts.get(session.rc_account_id)
    if rc_account_id != session.rc_account_id or account is None:
        raise access_denied(request)
    if sub_account_id not in account.sub_accounts:
        if world.ringcx.account_of_sub_account(sub_account_id) is not None:
            raise access_denied(request)
        raise not_found(request)
    return account, sub_account_id


def _window(request: web.Request, body: Any) -> tuple[float, float]:
    """[start, end) epoch seconds from the request body, or a 400 naming what is wrong."""
    if not isinstance(body, dict):
        raise bad_request(request)
    problems: list[JSON] = []
    raw_end = body.get("segmentEndTime")
    moment: datetime | None = None
    try:
        moment = datetime.strptime(str(raw_end), SEGMENT_END_FORMAT)
    except ValueError:
        pass
    if not isinstance(raw_end, str) or moment is None:
        problems.append(
            {
                "attributeName": "segmentEndTime",
                "message": "must be in 'YYYY-MM-DD HH:mm:ss' format",
                "value": "" if raw_end is None else str(raw_end),
            }
        )
    interval = body.get("timeInterval")
    if (
        isinstance(interval, bool)
        or not isinstance(interval, int)
        or not 1 <= interval <= MAX_INTERVAL
    ):
        problems.append(
            {
                "attributeName": "timeInterval",
                "message": f"must be between 1 and {MAX_INTERVAL}",
                "value": "" if interval is None else str(interval),
            }
        )
    zone_name = body.get("timeZone")
    zone: ZoneInfo | None = None
    if isinstance(zone_name, str) and zone_name:
        try:
            zone = ZoneInfo(zone_name)
        except (ZoneInfoNotFoundError, ValueError):
            zone = None
    if zone is None:
        problems.append(
            {
                "attributeName": "timeZone",
                "message": "must be a time zone name like US/Eastern",
                "value": "" if zone_name is None else str(zone_name),
            }
        )
    if problems or moment is None or zone is None or not isinstance(interval, int):
        raise bad_request(request, problems)
    # The window is `interval` real seconds (not wall-clock arithmetic, which would stretch
    # or shrink it across a daylight-saving change).
    start = moment.replace(tzinfo=zone).timestamp()
    return start, start + interval


def segment_metadata(segment: Segment) -> JSON:
    """One element of the interaction-metadata array (fixture field names and order)."""
    start, end = iso(segment.start), iso(segment.end)
    return {
        "subAccountId": segment.sub_account_id,
        "dialogId": segment.dialog_id,
        "interactionId": segment.interaction_id,
        "channelId": segment.contact_endpoint,
        "channelType": segment.channel_type,
        "channelClass": segment.channel_class,
        "channelEndpointAddress": segment.channel_endpoint,
        "contactEndpointAddress": segment.contact_endpoint,
        "dialogOrigination": segment.origination,
        "dialogStartTimeMs": start,
        "dialogEndTimeMs": end,
        "dialogDurationMs": segment.duration_ms,
        "segmentId": segment.segment_id,
        "segmentType": "AGENT",
        "segmentParticipantId": segment.agent_id,
        "segmentParticipantRcExtensionId": segment.agent_extension_id,
        "segmentStartTimeMs": start,
        "segmentEndTimeMs": end,
        "segmentDurationMs": segment.duration_ms,
        "segmentAgentGroupId": segment.agent_group_id,
        "systemDisposition": "ANSWER",
        "agentDisposition": "Success",
        "agentNotes": "",
        "hasRecording": True,
        "hasTranscript": segment.has_transcript,
        "segmentEvents": [
            {"eventTimeMs": start, "clientEventTimeMs": start, "eventType": "REC_START"},
            {"eventTimeMs": end, "clientEventTimeMs": end, "eventType": "REC_STOP"},
        ],
    }


def transcript_body(segment: Segment) -> JSON:
    start_ms = int(segment.start * 1000)
    return {
        "channelClass": segment.channel_class,
        "errorCode": None,
        "errorMessage": None,
        "transcript": [
            {
                "participantId": (
                    segment.segment_id
                    if line.speaker == "agent"
                    else segment.contact_participant_id
                ),
                "rcUserId": None,
                "participantName": None,
                "participantType": None,
                "timestamp": str(start_ms + line.offset_ms),
                "message": line.text,
            }
            for line in segment.transcript
        ],
    }


async def _json(request: web.Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        return None


@routes.post(METADATA)
@ringcx_endpoint("RingCX-metadata")
async def get_interaction_metadata(request: web.Request) -> web.StreamResponse:
    world = _world(request)
    _throttle(request, "metadata:" + request.match_info["subAccountId"], METADATA_RULES)
    account, sub_account_id = _sub_account(request)
    start, end = _window(request, await _json(request))
    now = world.now()
    found = [
        segment
        for segment in world.ringcx.segments
        if segment.rc_account_id == account.rc_account_id
        and segment.sub_account_id == sub_account_id
        and start <= segment.end < end
        and segment.end <= now
    ]
    found.sort(key=lambda segment: (segment.end, segment.segment_id))
    return web.json_response([segment_metadata(segment) for segment in found])


@routes.get(TRANSCRIPT)
@ringcx_endpoint("RingCX-transcript")
async def get_transcript(request: web.Request) -> web.StreamResponse:
    world = _world(request)
    _throttle(request, "transcript:" + request.match_info["subAccountId"], TRANSCRIPT_RULES)
    account, sub_account_id = _sub_account(request)
    segment = world.ringcx.segment(
        account.rc_account_id,
        sub_account_id,
        request.match_info["dialogId"],
        request.match_info["segmentId"],
    )
    if segment is None or not segment.has_transcript or world.now() < segment.transcript_ready_at:
        raise not_found(request)
    return web.json_response(transcript_body(segment))
