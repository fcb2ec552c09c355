"""RingSense (ACE) insights by recording and by telephony session (API-FACTS C.3)."""

from __future__ import annotations

from aiohttp import web

from sandbox.errors import invalid_parameter, not_found
from sandbox.insights import ALL_INSIGHT_KEYS, only_insights
from sandbox.platform import (
    caller_of,
    endpoint,
    json_response,
    require_user_permission,
    resolve_account,
    world_of,
)
from sandbox.ratelimit import RateGroup
from sandbox.world import JSON

routes = web.RouteTableDef()

BASE = "/ai/ringsense/v1/public/accounts/{accountId}/domains/{domain}"
DOMAINS = ("pbx", "rcv", "rcx", "nice-incontact", "ms-teams")
PERMISSION = "ReadRingSenseInsights"


def _insight_types(request: web.Request) -> list[str] | None:
    """`insightTypes` is a comma list (explode=false); repeats are tolerated too."""
    values = request.query.getall("insightTypes", [])
    if not values:
        return None
    wanted: list[str] = []
    for value in values:
        for item in value.split(","):
            if item not in ALL_INSIGHT_KEYS:
                raise invalid_parameter("insightTypes", item)
            if item not in wanted:
                wanted.append(item)
    return wanted


def _checked(request: web.Request) -> tuple[str, str, list[str] | None]:
    """The caller's account, the domain and the insight types asked for."""
    account_id = resolve_account(request)
    require_user_permission(caller_of(request), PERMISSION)
    domain = request.match_info["domain"]
    if domain not in DOMAINS:
        raise invalid_parameter("domain", domain)
    return account_id, domain, _insight_types(request)


def _shaped(record: JSON, types: list[str] | None) -> JSON:
    return record if types is None else only_insights(record, types)


@routes.get(BASE + "/records/{sourceRecordId}/insights")
@endpoint(RateGroup.LIGHT, app_permission="RingSense")
async def get_recording_insights(request: web.Request) -> web.StreamResponse:
    account_id, domain, types = _checked(request)
    record_id = request.match_info["sourceRecordId"]
    record = world_of(request).ringsense_record(account_id, domain, record_id)
    if record is None:
        raise not_found("sourceRecordId", record_id)
    return json_response(_shaped(record, types))


@routes.get(BASE + "/sessions/{sourceSessionId}/insights")
@endpoint(RateGroup.LIGHT, app_permission="RingSense")
async def get_session_insights(request: web.Request) -> web.StreamResponse:
    """All recorded legs of a session; no real sample exists, the shape is the spec's."""
    account_id, domain, types = _checked(request)
    session_id = request.match_info["sourceSessionId"]
    records = world_of(request).ringsense_session(account_id, domain, session_id)
    if not records:
        raise not_found("sourceSessionId", session_id)
    records.sort(key=lambda record: str(record.get("recordingStartTime", "")))
    return json_response(
        {
            "records": [_shaped(record, types) for record in records],
            "paging": {
                "page": 1,
                "perPage": max(len(records), 1),
                "pageStart": 0,
                "pageEnd": len(records) - 1,
                "totalPages": 1,
                "totalElements": len(records),
                "sortableFields": ["recordingStartTime"],
            },
        }
    )
