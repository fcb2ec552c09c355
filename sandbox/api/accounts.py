"""Extension info and the permission check (API-FACTS C.4, D.4 "Bot's own info")."""

from __future__ import annotations

from aiohttp import web

from sandbox.delivery import PlatformEvent
from sandbox.errors import invalid_parameter, user_permission_missing
from sandbox.keys import BACKGROUND_KEY, NOTIFIER_KEY
from sandbox.platform import (
    base_url,
    caller_of,
    endpoint,
    json_body,
    json_response,
    resolve_extension,
    world_of,
)
from sandbox.ratelimit import RateGroup
from sandbox.render import account_uri, extension_info

routes = web.RouteTableDef()

EXTENSION_PATH = "/restapi/v1.0/account/{accountId}/extension/{extensionId}"


@routes.get(EXTENSION_PATH)
@endpoint(RateGroup.LIGHT, app_permission="ReadAccounts")
async def read_extension(request: web.Request) -> web.StreamResponse:
    extension = resolve_extension(request)
    own = extension.id == caller_of(request).id
    return json_response(extension_info(base_url(request), extension, own=own))


@routes.put(EXTENSION_PATH)
@endpoint(RateGroup.MEDIUM, app_permission="EditExtensions")
async def update_extension(request: web.Request) -> web.StreamResponse:
    """Own contact details only (a bot renames itself this way); emits an Update event."""
    world = world_of(request)
    extension = resolve_extension(request)
    caller = caller_of(request)
    if extension.id != caller.id and not caller.admin:
        raise user_permission_missing("EditUserInfo")
    body = await json_body(request)
    contact = body.get("contact", {})
    if not isinstance(contact, dict):
        raise invalid_parameter("contact")
    for field, attribute in (("firstName", "first_name"), ("lastName", "last_name")):
        if field in contact:
            value = contact[field]
            if not isinstance(value, str) or len(value) > 64:
                raise invalid_parameter(f"contact.{field}")
            setattr(extension, attribute, value)
    if "email" in contact:
        if not isinstance(contact["email"], str) or "@" not in contact["email"]:
            raise invalid_parameter("contact.email")
        extension.email = contact["email"]
    extension.name = " ".join(p for p in (extension.first_name, extension.last_name) if p)
    extension.last_modified_time = world.now()
    event = PlatformEvent(
        kind="extension",
        body={"extensionId": extension.id, "eventType": "Update", "hints": ["ExtensionInfo"]},
        extension_id=extension.id,
    )
    request.app[BACKGROUND_KEY].spawn(request.app[NOTIFIER_KEY].publish(event))
    return json_response(extension_info(base_url(request), extension, own=True))


@routes.get(EXTENSION_PATH + "/authz-profile/check")
@endpoint(RateGroup.LIGHT)
async def check_user_permission(request: web.Request) -> web.StreamResponse:
    extension = resolve_extension(request)
    permission_id = request.query.get("permissionId")
    if not permission_id:
        raise invalid_parameter("permissionId")
    target = request.query.get("targetExtensionId")
    base = base_url(request)
    query = f"permissionId={permission_id}"
    if target:
        query += f"&targetExtensionId={target}"
    successful = permission_id in extension.permissions
    details: dict[str, object] = {
        "permission": {
            "uri": f"{base}/restapi/v1.0/dictionary/permission/{permission_id}",
            "id": permission_id,
            "assignable": True,
            "readOnly": False,
            "siteCompatible": "Independent",
        }
    }
    if successful:
        role_id = "1" if extension.admin else "3"
        details["effectiveRole"] = {
            "uri": f"{base}/restapi/v1.0/dictionary/user-role/{role_id}",
            "id": role_id,
        }
        details["scopes"] = ["AllExtensions"] if extension.admin else ["Self"]
    extension_uri = f"{account_uri(base, extension.account_id)}/extension/{extension.id}"
    uri = f"{extension_uri}/authz-profile/check?{query}"
    return json_response(
        {
            "uri": uri,
            "successful": successful,
            "details": details,
        }
    )
