"""The JSON shapes the platform answers with (REST) and notifies with (event bodies).

REST shapes follow rc-bot-subset-openapi.yml; event bodies follow the real webhook
samples, which differ from REST (event chat types `PrivateChat`/`PersonalChat`, members
as plain ids, explicit nulls).
"""

from __future__ import annotations

from typing import Any

from sandbox.world import (
    JSON,
    AdaptiveCard,
    CallLogEntry,
    Chat,
    Extension,
    Post,
    Subscription,
    iso,
)

EVENT_CHAT_TYPES = {
    "Direct": "PrivateChat",
    "Personal": "PersonalChat",
    "Group": "Group",
    "Team": "Team",
    "Everyone": "Everyone",
}


def _drop_none(values: dict[str, Any]) -> JSON:
    return {key: value for key, value in values.items() if value is not None}


def account_uri(base: str, account_id: str) -> str:
    return f"{base}/restapi/v1.0/account/{account_id}"


def extension_info(base: str, extension: Extension, *, own: bool) -> JSON:
    account = account_uri(base, extension.account_id)
    uri = f"{account}/extension/{extension.id}"
    info: JSON = {
        "uri": uri,
        "id": int(extension.id) if extension.id.isdigit() else extension.id,
        "extensionNumber": extension.extension_number,
        "contact": {
            "firstName": extension.first_name,
            "lastName": extension.last_name,
            "email": extension.email,
            "emailAsLoginName": True,
        },
        "name": extension.name,
        "type": extension.type,
        "status": extension.status,
        "permissions": {
            "admin": {"enabled": extension.admin},
            "internationalCalling": {"enabled": False},
        },
        "account": {"id": extension.account_id, "uri": account},
        "hidden": extension.type == "Bot",
        "setupWizardState": "Completed",
        "creationTime": iso(extension.creation_time),
    }
    if own:
        features = (
            ["RCTeams"]
            if extension.type == "Bot"
            else ["RCTeams", "VoipCalling", "OnDemandCallRecording"]
        )
        info["serviceFeatures"] = [{"featureName": name, "enabled": True} for name in features]
    return info


def person_info(extension: Extension) -> JSON:
    return {
        "id": extension.id,
        "firstName": extension.first_name,
        "lastName": extension.last_name,
        "email": extension.email,
        "companyId": extension.account_id,
        "creationTime": iso(extension.creation_time),
        "lastModifiedTime": iso(extension.last_modified_time),
    }


def chat_info(chat: Chat) -> JSON:
    return _drop_none(
        {
            "id": chat.id,
            "type": chat.type,
            "public": chat.public,
            "name": chat.name,
            "description": chat.description,
            "status": chat.status,
            "creationTime": iso(chat.creation_time),
            "lastModifiedTime": iso(chat.last_modified_time),
            "members": [{"id": member} for member in chat.members],
        }
    )


def conversation_info(chat: Chat) -> JSON:
    return {
        "id": chat.id,
        "type": chat.type,
        "creationTime": iso(chat.creation_time),
        "lastModifiedTime": iso(chat.last_modified_time),
        "members": [{"id": member} for member in chat.members],
    }


def post_info(post: Post) -> JSON:
    """TMPostInfo. A card post reports type `Card` with the card as its attachment."""
    info: JSON = {
        "id": post.id,
        "groupId": post.chat_id,
        "type": post.type,
        "text": post.text,
        "creatorId": post.creator_id,
        "creationTime": iso(post.creation_time),
        "lastModifiedTime": iso(post.last_modified_time),
        "mentions": post.mentions or [],
        "attachments": [{"id": post.card_id, "type": "Card"}] if post.card_id else [],
    }
    return _drop_none(info)


def post_event_body(post: Post, event_type: str) -> JSON:
    """The body of a PostAdded/PostChanged notification (fixture webhook-post-added.json)."""
    if event_type == "PostRemoved":
        return {"id": post.id, "groupId": post.chat_id, "eventType": event_type}
    return {
        "id": post.id,
        "groupId": post.chat_id,
        "type": post.type,
        "text": post.text,
        "creatorId": post.creator_id,
        "addedPersonIds": post.added_person_ids,
        "creationTime": iso(post.creation_time),
        "lastModifiedTime": iso(post.last_modified_time),
        "attachments": None,
        "activity": None,
        "title": None,
        "iconUri": None,
        "iconEmoji": None,
        "mentions": post.mentions or None,
        "eventType": event_type,
    }


def chat_event_body(chat: Chat, event_type: str) -> JSON:
    """The body of a GroupJoined/GroupLeft notification (fixture webhook-chat-group-joined)."""
    return {
        "id": chat.id,
        "name": chat.name,
        "description": chat.description,
        "type": EVENT_CHAT_TYPES[chat.type],
        "status": chat.status,
        "members": list(chat.members),
        "isPublic": chat.public,
        "creationTime": iso(chat.creation_time),
        "lastModifiedTime": iso(chat.last_modified_time),
        "eventType": event_type,
    }


def card_short_info(card: AdaptiveCard) -> JSON:
    info: JSON = {
        "id": card.id,
        "creationTime": iso(card.creation_time),
        "lastModifiedTime": iso(card.last_modified_time),
        "type": "AdaptiveCard",
        "version": card.content.get("version", "1.3"),
        "creator": {"id": card.creator_id},
        "chatIds": list(card.chat_ids),
    }
    if "$schema" in card.content:
        info["$schema"] = card.content["$schema"]
    return info


def card_info(card: AdaptiveCard) -> JSON:
    """The whole card as GET returns it (fixture adaptive-card-get-response.json)."""
    short = card_short_info(card)
    return {**card.content, **short}


def subscription_info(base: str, subscription: Subscription, now: float) -> JSON:
    info: JSON = {
        "uri": f"{base}/restapi/v1.0/subscription/{subscription.id}",
        "id": subscription.id,
        "creationTime": iso(subscription.creation_time),
        "status": subscription.status,
        "eventFilters": list(subscription.event_filters),
        "expirationTime": iso(subscription.expiration_time),
        "expiresIn": max(0, round(subscription.expiration_time - now)),
        "deliveryMode": {
            "transportType": "WebHook",
            "encryption": False,
            "address": subscription.address,
        },
    }
    if subscription.disabled_filters:
        info["disabledFilters"] = [dict(entry) for entry in subscription.disabled_filters]
    if subscription.status == "Blacklisted" and subscription.blacklisted_at is not None:
        info["blacklistedData"] = {
            "blacklistedAt": iso(subscription.blacklisted_at),
            "reason": subscription.blacklist_reason or "",
        }
    return info


def call_log_record(base: str, entry: CallLogEntry, *, detailed: bool) -> JSON:
    owner_uri = f"{account_uri(base, entry.account_id)}/extension/{entry.owner_id}"
    inbound = entry.direction == "Inbound"
    record: JSON = {
        "uri": f"{owner_uri}/call-log/{entry.id}?view={'Detailed' if detailed else 'Simple'}",
        "id": entry.id,
        "sessionId": entry.session_id,
        "telephonySessionId": entry.telephony_session_id,
        "partyId": entry.party_id,
        "startTime": iso(entry.start_time),
        "duration": round(entry.duration_ms / 1000),
        "durationMs": entry.duration_ms,
        "type": "Voice",
        "internalType": "Local",
        "direction": entry.direction,
        "action": "Phone Call" if inbound else "VoIP Call",
        "result": "Accepted" if inbound else "Call connected",
        "to": dict(entry.to_party),
        "from": dict(entry.from_party),
        "extension": {
            "id": int(entry.owner_id) if entry.owner_id.isdigit() else 0,
            "uri": owner_uri,
        },
        "transport": "PSTN" if inbound else "VoIP",
        "lastModifiedTime": iso(entry.last_modified_time),
    }
    if entry.recording_id is not None:
        recording_uri = f"{account_uri(base, entry.account_id)}/recording/{entry.recording_id}"
        record["recording"] = {
            "uri": recording_uri,
            "id": entry.recording_id,
            "type": entry.recording_type,
            "contentUri": f"{recording_uri}/content",
        }
    if detailed:
        leg = {key: record[key] for key in ("startTime", "duration", "durationMs", "type")}
        leg.update(
            {
                "direction": entry.direction,
                "action": record["action"],
                "result": record["result"],
                "to": record["to"],
                "from": record["from"],
                "transport": record["transport"],
                "telephonySessionId": entry.telephony_session_id,
                "partyId": entry.party_id,
                "legType": "Accept" if inbound else "SipToPstnMetered",
                "master": True,
                "extension": record["extension"],
            }
        )
        if "recording" in record:
            leg["recording"] = record["recording"]
        record["legs"] = [leg]
    return record
