"""The call log, user and company level (API-FACTS H): how a chat command finds the
RingSense ids of a call (`telephonySessionId`, `recording.id`).

A user's log holds the records of that extension only: the calls it owned and its own
leg of calls it took part in (each extension on a call has its own record). Reading
someone else's log, or the account's, needs the FullCompanyCallLog user permission.
"""

from __future__ import annotations

from urllib.parse import urlencode

from aiohttp import web

from sandbox.errors import invalid_parameter, not_found
from sandbox.multipart import multi_status
from sandbox.platform import (
    base_url,
    caller_of,
    endpoint,
    json_response,
    require_user_permission,
    resolve_account,
    resolve_extension,
    world_of,
)
from sandbox.ratelimit import RateGroup
from sandbox.render import account_uri, call_log_record
from sandbox.world import JSON, CallLogEntry, Extension, World, parse_iso

routes = web.RouteTableDef()

USER_LOG = "/restapi/v1.0/account/{accountId}/extension/{extensionId}/call-log"
COMPANY_LOG = "/restapi/v1.0/account/{accountId}/call-log"
DAY = 86400.0


def _user_scope(request: web.Request) -> Extension:
    """The extension whose log is read; someone else's needs FullCompanyCallLog."""
    caller = caller_of(request)
    require_user_permission(caller, "ReadCallLog")
    extension = resolve_extension(request)
    if extension.id != caller.id:
        require_user_permission(caller, "FullCompanyCallLog")
    return extension


def _time(request: web.Request, name: str, default: float) -> float:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        return parse_iso(raw)
    except ValueError:
        raise invalid_parameter(name, raw) from None


def _int(request: web.Request, name: str, default: int, maximum: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    if name == "perPage" and raw == "max":
        return maximum
    try:
        value = int(raw)
    except ValueError:
        raise invalid_parameter(name, raw) from None
    if not 1 <= value <= maximum:
        raise invalid_parameter(name, raw)
    return value


def _view(request: web.Request) -> bool:
    view = request.query.get("view", "Simple")
    if view not in ("Simple", "Detailed"):
        raise invalid_parameter("view", view)
    return view == "Detailed"


def _select(
    request: web.Request, world: World, account_id: str, owner_id: str | None
) -> list[CallLogEntry]:
    date_to = _time(request, "dateTo", world.now())
    date_from = _time(request, "dateFrom", date_to - DAY)
    recording_type = request.query.get("recordingType")
    if recording_type not in (None, "Automatic", "OnDemand", "All"):
        raise invalid_parameter("recordingType", recording_type)
    with_recording = request.query.get("withRecording", "false").lower() == "true"
    directions = [d for value in request.query.getall("direction", []) for d in value.split(",")]
    for direction in directions:
        if direction not in ("Inbound", "Outbound"):
            raise invalid_parameter("direction", direction)
    types = [t for value in request.query.getall("type", []) for t in value.split(",")]
    telephony_session_id = request.query.get("telephonySessionId")
    session_id = request.query.get("sessionId")

    selected = []
    for entry in world.call_log:
        if entry.account_id != account_id:
            continue
        if owner_id is not None and entry.owner_id != owner_id:
            continue
        if not date_from <= entry.start_time <= date_to:
            continue
        if telephony_session_id and entry.telephony_session_id != telephony_session_id:
            continue
        if session_id and entry.session_id != session_id:
            continue
        if directions and entry.direction not in directions:
            continue
        if types and "Voice" not in types:
            continue
        if (recording_type or with_recording) and entry.recording_id is None:
            continue
        if recording_type in ("Automatic", "OnDemand") and entry.recording_type != recording_type:
            continue
        selected.append(entry)
    selected.sort(key=lambda entry: entry.start_time, reverse=True)
    return selected


def _listing(
    request: web.Request, account_id: str, owner_id: str | None, path: str
) -> web.StreamResponse:
    world = world_of(request)
    detailed = _view(request)
    per_page = _int(request, "perPage", 100, 1000)
    page = _int(request, "page", 1, 1000)
    entries = _select(request, world, account_id, owner_id)
    start = (page - 1) * per_page
    chunk = entries[start : start + per_page]
    base = base_url(request)

    def page_uri(number: int) -> JSON:
        query = [(k, v) for k, v in request.query.items() if k not in ("page", "perPage")]
        query += [("page", str(number)), ("perPage", str(per_page))]
        return {"uri": f"{base}{path}?{urlencode(query)}"}

    navigation: JSON = {"firstPage": page_uri(1)}
    if start + per_page < len(entries):
        navigation["nextPage"] = page_uri(page + 1)
    if page > 1:
        navigation["previousPage"] = page_uri(page - 1)
    paging: JSON = {"page": page, "perPage": per_page}
    if chunk:
        paging["pageStart"] = start
        paging["pageEnd"] = start + len(chunk) - 1
    return json_response(
        {
            "uri": page_uri(page)["uri"],
            "records": [call_log_record(base, e, detailed=detailed) for e in chunk],
            "paging": paging,
            "navigation": navigation,
        }
    )


def _records(
    request: web.Request, account_id: str, owner_id: str | None, path: str
) -> web.StreamResponse:
    world = world_of(request)
    detailed = _view(request)
    ids = [item for item in request.match_info["callRecordId"].split(",") if item]
    if not ids or len(ids) > 50:
        raise invalid_parameter("callRecordId")
    base = base_url(request)

    def find(record_id: str) -> CallLogEntry | None:
        for entry in world.call_log:
            if (
                entry.id == record_id
                and entry.account_id == account_id
                and (owner_id is None or entry.owner_id == owner_id)
            ):
                return entry
        return None

    if len(ids) == 1:
        entry = find(ids[0])
        if entry is None:
            raise not_found("callRecordId", ids[0])
        return json_response(call_log_record(base, entry, detailed=detailed))
    parts: list[tuple[str, int, JSON]] = []
    for record_id in ids:
        href = f"{base}{path}/{record_id}"
        entry = find(record_id)
        if entry is None:
            parts.append((href, 404, not_found("callRecordId", record_id).body))
        else:
            parts.append((href, 200, call_log_record(base, entry, detailed=detailed)))
    return multi_status(parts)


@routes.get(USER_LOG)
@endpoint(RateGroup.HEAVY, app_permission="ReadCallLog")
async def read_user_call_log(request: web.Request) -> web.StreamResponse:
    extension = _user_scope(request)
    path = f"/restapi/v1.0/account/{extension.account_id}/extension/{extension.id}/call-log"
    return _listing(request, extension.account_id, extension.id, path)


@routes.get(USER_LOG + "/{callRecordId}")
@endpoint(RateGroup.HEAVY, app_permission="ReadCallLog")
async def read_user_call_record(request: web.Request) -> web.StreamResponse:
    extension = _user_scope(request)
    path = f"/restapi/v1.0/account/{extension.account_id}/extension/{extension.id}/call-log"
    return _records(request, extension.account_id, extension.id, path)


def _company_scope(request: web.Request) -> tuple[str, str]:
    """The caller's account and its log's path; reading it takes FullCompanyCallLog."""
    account_id = resolve_account(request)
    require_user_permission(caller_of(request), "FullCompanyCallLog")
    return account_id, account_uri("", account_id) + "/call-log"


@routes.get(COMPANY_LOG)
@endpoint(RateGroup.HEAVY, app_permission="ReadCallLog")
async def read_company_call_log(request: web.Request) -> web.StreamResponse:
    account_id, path = _company_scope(request)
    return _listing(request, account_id, None, path)


@routes.get(COMPANY_LOG + "/{callRecordId}")
@endpoint(RateGroup.HEAVY, app_permission="ReadCallLog")
async def read_company_call_record(request: web.Request) -> web.StreamResponse:
    account_id, path = _company_scope(request)
    return _records(request, account_id, None, path)
