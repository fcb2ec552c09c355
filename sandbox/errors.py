"""Error responses in the shapes the real platform sends (API-FACTS A.5 and the fixtures).

Handlers raise `PlatformError`; the platform middleware turns it into the JSON response,
so every error path produces a body a real client would recognise.
"""

from __future__ import annotations

from typing import Any


class PlatformError(Exception):
    """An API error with its HTTP status, body and any extra headers."""

    def __init__(
        self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(f"{status} {body.get('errorCode') or body.get('error')}")
        self.status = status
        self.body = body
        self.headers = headers or {}


def api_error(
    status: int,
    code: str,
    message: str,
    *,
    top_code: str | None = None,
    **details: str,
) -> PlatformError:
    """The common `{errorCode, message, errors:[...], <details>}` body.

    `top_code` is the symbolic top-level code real responses sometimes carry
    ("InvalidParameter", "InsufficientPermissions", "TokenInvalid"); without it the
    top level repeats the nested code, as in the CMN-408 sample.
    """
    nested: dict[str, Any] = {"errorCode": code, "message": message, **details}
    body: dict[str, Any] = {
        "errorCode": top_code or code,
        "message": message,
        "errors": [nested],
        **details,
    }
    return PlatformError(status, body)


def invalid_parameter(name: str, value: str | None = None) -> PlatformError:
    """400 CMN-101. `value` is only for the reader: the real body does not echo it."""
    del value
    return api_error(
        400,
        "CMN-101",
        f"Parameter [{name}] value is invalid",
        top_code="InvalidParameter",
        parameterName=name,
    )


def not_found(parameter: str, value: str | None = None) -> PlatformError:
    """404 CMN-102 (body shape assumed like CMN-101's; no real sample was found)."""
    del value
    message = f"Resource for parameter [{parameter}] is not found"
    return api_error(404, "CMN-102", message, parameterName=parameter)


def invalid_uri() -> PlatformError:
    return api_error(404, "CMN-120", "Invalid URI")


def app_permission_missing(permission: str) -> PlatformError:
    return api_error(
        403,
        "CMN-401",
        f"In order to call this API endpoint, application needs to have [{permission}] permission",
        top_code="InsufficientPermissions",
        permissionName=permission,
    )


def user_permission_missing(permission: str) -> PlatformError:
    return api_error(
        403,
        "CMN-408",
        f"In order to call this API endpoint, user needs to have [{permission}] permission "
        "for requested resource.",
        permissionName=permission,
    )


def authorization_missing() -> PlatformError:
    """The API gateway's answer when no `Authorization` header is sent (no `errors`)."""
    return PlatformError(
        401, {"errorCode": "AGW-401", "message": "Authorization header is not specified"}
    )


def token_invalid() -> PlatformError:
    return api_error(401, "OAU-149", "OAuth token is invalid", top_code="TokenInvalid")


def extension_deleted() -> PlatformError:
    """A token whose extension was deleted (a removed bot).

    UNCONFIRMED meaning: no RingCentral document defines OAU-232. RingCentral's bot
    frameworks read the top-level `errorCode` and treat `OAU-232` as "bot deleted"
    (CHATBOT-JS `Bot.prototype.check`, CHATBOT-PY `validate`), and a RingCentral web
    client's error table labels it "Extension not found"; so the code is top-level and
    nested, with that message, and 401 like the other token errors.
    """
    return api_error(401, "OAU-232", "Extension not found")


def token_expired() -> PlatformError:
    return api_error(401, "OAU-128", "Access token expired", top_code="TokenExpired")


def rate_exceeded(retry_after: int) -> PlatformError:
    error = api_error(429, "CMN-301", "Request rate exceeded")
    error.headers["Retry-After"] = str(retry_after)
    return error


def oauth_error(status: int, error: str, code: str, message: str) -> PlatformError:
    """The token endpoint's RFC 6749 shape plus RingCentral's `errors` list."""
    return PlatformError(
        status,
        {
            "error": error,
            "error_description": message,
            "errors": [{"errorCode": code, "message": message}],
        },
    )
