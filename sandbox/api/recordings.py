"""Call recordings: metadata and audio content (SPEC `readCallRecording`,
`readCallRecordingContent`; API-FACTS H and A.3).

A recording exists when a call-log record of the account names it; the call log's
`recording.contentUri` points here, on the sandbox's own host (the real platform serves
content from media.ringcentral.com). Both endpoints are Heavy and need the
ReadCallRecording app permission; the token may come as `Authorization: Bearer` or as the
`access_token` query parameter (the middleware accepts both, API-FACTS A.3).

Who may hear a recording: an extension with a call-log record of that call, or anyone of
the account with the ReadCompanyCallRecording user permission (otherwise 403 CMN-408
naming it). The metadata endpoint also needs the ReadCallRecording user permission, as
the spec says; the content endpoint has no user permission in the spec.
"""

from __future__ import annotations

import random
import re

from aiohttp import web

from sandbox.errors import invalid_parameter, not_found, user_permission_missing
from sandbox.platform import (
    base_url,
    caller_of,
    endpoint,
    json_response,
    require_user_permission,
    resolve_account,
    world_of,
)
from sandbox.ratelimit import RateGroup
from sandbox.render import account_uri
from sandbox.world import CallLogEntry, Extension, World

routes = web.RouteTableDef()

RECORDING = "/restapi/v1.0/account/{accountId}/recording/{recordingId}"
CONTENT_PATH = re.compile(r"^/restapi/v1\.0/account/([^/]+)/recording/([^/]+)/content$")
CONTENT_TYPE = "audio/mpeg"
FRAME_HEADER = bytes((0xFF, 0xFB, 0x90, 0x00))
"""MPEG-1 Layer III, 128 kbit/s, 44.1 kHz, no padding: 417-byte frames."""
FRAME_BYTES = 417
FRAMES = 12


def recording_entries(world: World, account_id: str, recording_id: str) -> list[CallLogEntry]:
    return [
        entry
        for entry in world.call_log
        if entry.account_id == account_id and entry.recording_id == recording_id
    ]


def may_hear(extension: Extension, entries: list[CallLogEntry]) -> bool:
    if any(entry.owner_id == extension.id for entry in entries):
        return True
    return "ReadCompanyCallRecording" in extension.permissions


def audio_bytes(recording_id: str) -> bytes:
    """A few MP3 frames, the same for the same recording."""
    rng = random.Random(recording_id)
    body = bytearray()
    for _ in range(FRAMES):
        body += FRAME_HEADER
        body += bytes(rng.getrandbits(8) for _ in range(FRAME_BYTES - len(FRAME_HEADER)))
    return bytes(body)


def _checked(request: web.Request) -> tuple[str, str, list[CallLogEntry]]:
    account_id = resolve_account(request)
    recording_id = request.match_info["recordingId"]
    entries = recording_entries(world_of(request), account_id, recording_id)
    if not entries:
        raise not_found("recordingId", recording_id)
    if not may_hear(caller_of(request), entries):
        raise user_permission_missing("ReadCompanyCallRecording")
    return account_id, recording_id, entries


@routes.get(RECORDING)
@endpoint(RateGroup.HEAVY, app_permission="ReadCallRecording")
async def read_call_recording(request: web.Request) -> web.StreamResponse:
    require_user_permission(caller_of(request), "ReadCallRecording")
    account_id, recording_id, entries = _checked(request)
    uri = f"{account_uri(base_url(request), account_id)}/recording/{recording_id}"
    return json_response(
        {
            "uri": uri,
            "id": recording_id,
            "contentUri": f"{uri}/content",
            "contentType": CONTENT_TYPE,
            "duration": round(entries[0].duration_ms / 1000),
        }
    )


@routes.get(RECORDING + "/content")
@endpoint(RateGroup.HEAVY, app_permission="ReadCallRecording")
async def read_call_recording_content(request: web.Request) -> web.StreamResponse:
    _, recording_id, _ = _checked(request)
    disposition = request.query.get("contentDisposition")
    if disposition not in (None, "Inline", "Attachment"):
        raise invalid_parameter("contentDisposition", disposition)
    headers = {}
    if disposition is not None:
        filename = request.query.get("contentDispositionFilename") or f"{recording_id}.mp3"
        safe = filename.replace('"', "").replace("\r", "").replace("\n", "")
        headers["Content-Disposition"] = f'{disposition.lower()}; filename="{safe}"'
    return web.Response(body=audio_bytes(recording_id), content_type=CONTENT_TYPE, headers=headers)
