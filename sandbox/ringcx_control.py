"""Control API for RingCX: give an account RingCX and create agent segments.

* `POST /_sandbox/ringcx/accounts {"rcAccountId"?, "subAccountId"?}` gives a RingCentral
  account (default: the default account) RingCX with that sub-account (default "12345");
  calling it again adds sub-accounts. Answers `{rcAccountId, mainAccountId, adminId,
  subAccounts: [{subAccountId, name}]}`. `GET /_sandbox/ringcx/accounts` lists them.
* `POST /_sandbox/ringcx/segments {"subAccountId"?, "agentExtensionId", "agentGroupId"?,
  "queueName"?, "dialogOrigination"?, "channelType"? (VOICE, or a digital channel such as
  ENGAGE_MESSAGING), "segmentStartTime"? (ISO), "durationSec"?,
  "hasTranscript"?, "readyAfterSeconds"?, "transcript"?: [{"speaker": "agent"|"contact",
  "text"}]}` records a finished voice segment (by default it started `durationSec` + 60 s
  ago and lasted 180 s) and answers it with its ids, its metadata record exactly as the
  API will show it, and when its transcript is ready. Without `transcript` a realistic
  one is made up. `GET /_sandbox/ringcx/segments` lists them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from sandbox.api.ringcx import agent_id_of, segment_metadata, transcript_body
from sandbox.control import PREFIX, ControlError, extension_of, read_body, world_in
from sandbox.conversations import AGENT, conversation
from sandbox.ringcx_state import DEFAULT_SUB_ACCOUNT, RingCxAccount, Segment, TranscriptLine
from sandbox.world import JSON, World, iso, parse_iso

routes = web.RouteTableDef()

DEFAULT_DURATION_SEC = 180


def account_json(account: RingCxAccount) -> JSON:
    return {
        "rcAccountId": account.rc_account_id,
        "mainAccountId": account.main_account_id,
        "adminId": account.admin_id,
        "subAccounts": [
            {"subAccountId": sub_id, "name": name} for sub_id, name in account.sub_accounts.items()
        ],
    }


def enable_ringcx(
    world: World, rc_account_id: str, sub_account_id: str = DEFAULT_SUB_ACCOUNT
) -> RingCxAccount:
    """Give an account RingCX (idempotent) with one more sub-account."""
    owner = world.ringcx.account_of_sub_account(sub_account_id)
    if owner is not None and owner.rc_account_id != rc_account_id:
        raise ValueError(f"sub-account {sub_account_id} belongs to account {owner.rc_account_id}")
    account = world.ringcx.accounts.get(rc_account_id)
    if account is None:
        account = RingCxAccount(
            rc_account_id=rc_account_id,
            main_account_id=world.random_digits(6),
            admin_id=int(world.random_digits(4)),
            sub_accounts={},
        )
        world.ringcx.accounts[rc_account_id] = account
    name = world.accounts[rc_account_id].name
    account.sub_accounts.setdefault(sub_account_id, f"{name} Contact Center {sub_account_id}")
    return account


@routes.get(PREFIX + "/ringcx/accounts")
async def list_accounts(request: web.Request) -> web.StreamResponse:
    world = world_in(request)
    return web.json_response([account_json(a) for a in world.ringcx.accounts.values()])


@routes.post(PREFIX + "/ringcx/accounts")
async def create_account(request: web.Request) -> web.StreamResponse:
    world = world_in(request)
    body = await read_body(request)
    rc_account_id = body.get("rcAccountId", world.account_id)
    if not isinstance(rc_account_id, str) or rc_account_id not in world.accounts:
        raise ControlError(400, f"rcAccountId: no account {rc_account_id!r}")
    sub_account_id = body.get("subAccountId", DEFAULT_SUB_ACCOUNT)
    if not isinstance(sub_account_id, str) or not sub_account_id.isdigit():
        raise ControlError(400, "subAccountId must be a string of digits")
    try:
        account = enable_ringcx(world, rc_account_id, sub_account_id)
    except ValueError as error:
        raise ControlError(409, str(error)) from None
    return web.json_response(account_json(account), status=201)


def _hex(world: World, length: int) -> str:
    return "".join(world.random.choice("0123456789abcdef") for _ in range(length))


def _transcript(raw: Any, seed: str, duration_ms: int) -> list[TranscriptLine]:
    if raw is None:
        talk = conversation(seed, start_offset=1.0)
        last_end = talk.utterances[-1].end
        scale = min(1.0, (duration_ms / 1000 - 1) / last_end) if last_end > 0 else 1.0
        return [
            TranscriptLine(
                "agent" if unit.speaker == AGENT else "contact",
                unit.text,
                int(unit.start * scale * 1000),
            )
            for unit in talk.utterances
        ]
    if not isinstance(raw, list) or not raw:
        raise ControlError(400, "transcript must be a non-empty list of {speaker, text}")
    lines = []
    step = duration_ms // (len(raw) + 1)
    for index, item in enumerate(raw):
        if not isinstance(item, dict) or item.get("speaker") not in ("agent", "contact"):
            raise ControlError(400, 'each transcript line needs speaker "agent" or "contact"')
        text = item.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ControlError(400, "each transcript line needs a text")
        lines.append(TranscriptLine(item["speaker"], text, step * (index + 1)))
    return lines


def _number(body: dict[str, Any], key: str, default: float, *, whole: bool = False) -> float:
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ControlError(400, f"{key} must be a non-negative number")
    if whole and not isinstance(value, int):
        raise ControlError(400, f"{key} must be a whole number")
    return float(value)


def segment_json(segment: Segment) -> JSON:
    return {
        "rcAccountId": segment.rc_account_id,
        "subAccountId": segment.sub_account_id,
        "dialogId": segment.dialog_id,
        "segmentId": segment.segment_id,
        "agentExtensionId": segment.agent_extension_id,
        "agentId": segment.agent_id,
        "queueName": segment.queue_name,
        "segmentStartTime": iso(segment.start),
        "segmentEndTime": iso(segment.end),
        "hasTranscript": segment.has_transcript,
        "transcriptReadyAt": iso(segment.transcript_ready_at),
        "metadata": segment_metadata(segment),
        "transcript": transcript_body(segment)["transcript"],
    }


CHANNEL_TYPES = ("VOICE", "ENGAGE_MESSAGING", "EMAIL", "MESSENGER", "SMS")
"""channelType values (API-FACTS F lists VOICE, ENGAGE_MESSAGING, EMAIL, MESSENGER, ...)."""


def _create_segment(world: World, body: dict[str, Any]) -> Segment:
    if not world.ringcx.accounts:
        raise ControlError(400, "no account has RingCX: POST /_sandbox/ringcx/accounts first")
    sub_account_id = body.get("subAccountId")
    if sub_account_id is None:
        default = world.ringcx.accounts.get(world.account_id) or next(
            iter(world.ringcx.accounts.values())
        )
        sub_account_id = next(iter(default.sub_accounts))
    account = world.ringcx.account_of_sub_account(str(sub_account_id))
    if account is None:
        raise ControlError(400, f"subAccountId: no RingCX sub-account {sub_account_id!r}")
    agent = extension_of(world, body.get("agentExtensionId"), "agentExtensionId")
    if agent.type != "User" or agent.account_id != account.rc_account_id:
        raise ControlError(400, f"agentExtensionId: not a user of account {account.rc_account_id}")
    origination = body.get("dialogOrigination", "INBOUND")
    if origination not in ("INBOUND", "OUTBOUND"):
        raise ControlError(400, "dialogOrigination must be INBOUND or OUTBOUND")
    duration = _number(body, "durationSec", DEFAULT_DURATION_SEC, whole=True)
    if duration < 1:
        raise ControlError(400, "durationSec must be at least 1")
    raw_start = body.get("segmentStartTime")
    if raw_start is None:
        start = world.now() - duration - 60
    else:
        try:
            start = parse_iso(str(raw_start))
        except ValueError:
            raise ControlError(400, "segmentStartTime must be an ISO date-time") from None
    has_transcript = body.get("hasTranscript", True)
    if not isinstance(has_transcript, bool):
        raise ControlError(400, "hasTranscript must be true or false")
    ready_after = _number(body, "readyAfterSeconds", 0)
    group = body.get("agentGroupId", "76873")
    if isinstance(group, bool) or not isinstance(group, str | int):
        raise ControlError(400, "agentGroupId must be a string or a number")
    queue = body.get("queueName", "Support")
    if not isinstance(queue, str):
        raise ControlError(400, "queueName must be a string")

    channel_type = body.get("channelType", "VOICE")
    if channel_type not in CHANNEL_TYPES:
        raise ControlError(400, f"channelType must be one of {', '.join(CHANNEL_TYPES)}")
    start_ms = int(start * 1000)
    if channel_type == "VOICE":
        dialog_hex = _hex(world, 32)
        dialog_id = f"s-v-{dialog_hex}-{start_ms}"
        segment_id = f"p-v-{dialog_hex}-{start_ms}-{start_ms:x}{_hex(world, 2)}"
    else:  # digital ids look like the fixture's: d-<24 hex>-<ms>[-<hex>]
        dialog_hex = _hex(world, 24)
        dialog_id = f"d-{dialog_hex}-{start_ms}"
        segment_id = f"d-{dialog_hex}-{start_ms}-{start_ms:x}{_hex(world, 2)}"
    duration_ms = int(duration * 1000)
    company = "+1650555" + world.random_digits(4)
    contact = "+1415555" + world.random_digits(4)
    stamp = datetime.fromtimestamp(start, tz=UTC).strftime("%Y%m%d%H%M%S")
    return Segment(
        rc_account_id=account.rc_account_id,
        sub_account_id=str(sub_account_id),
        dialog_id=dialog_id,
        segment_id=segment_id,
        interaction_id=stamp + world.random_digits(16),
        agent_extension_id=agent.id,
        agent_id=agent_id_of(world, agent.id),
        agent_group_id=str(group),
        queue_name=queue,
        origination="INBOUND" if origination == "INBOUND" else "OUTBOUND",
        start=start,
        duration_ms=duration_ms,
        has_transcript=has_transcript,
        ready_after_seconds=ready_after,
        channel_endpoint=company.removeprefix("+1"),
        contact_endpoint=contact.removeprefix("+1"),
        contact_participant_id=f"d-{_hex(world, 24)}-{_hex(world, 24)}",
        transcript=_transcript(body.get("transcript"), segment_id, duration_ms),
        created_at=world.now(),
        channel_type=str(channel_type),
    )


@routes.post(PREFIX + "/ringcx/segments")
async def create_segment(request: web.Request) -> web.StreamResponse:
    world = world_in(request)
    segment = _create_segment(world, await read_body(request))
    world.ringcx.segments.append(segment)
    return web.json_response(segment_json(segment), status=201)


@routes.get(PREFIX + "/ringcx/segments")
async def list_segments(request: web.Request) -> web.StreamResponse:
    world = world_in(request)
    return web.json_response([segment_json(segment) for segment in world.ringcx.segments])
