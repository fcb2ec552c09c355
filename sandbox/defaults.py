"""The fixed, documented identity of the sandbox's default account.

These values are public on purpose: tests, the `demo` command and a developer's
`bot.config.yaml` for local runs all need the same credentials without reading them
from anywhere. None of them is a secret outside the sandbox.
"""

from __future__ import annotations

from typing import Final

ACCOUNT_ID: Final = "809640001"

SERVICE_USER_EXTENSION_ID: Final = "62288320001"
SERVICE_USER_NAME: Final = "Service User"

BOT_EXTENSION_ID: Final = "62288329999"
BOT_NAME: Final = "RingSense Digest"

CLIENT_ID: Final = "sandbox-client-id"
CLIENT_SECRET: Final = "sandbox-client-secret"

SERVICE_USER_JWT: Final = "sandbox-service-user-jwt"
BOT_TOKEN: Final = "sandbox-bot-token"
"""The bot extension's permanent access token (private bots get no refresh token)."""

SHARED_SECRET: Final = "sandbox-shared-secret"
"""The app's shared secret, the key for `X-Glip-Signature` on interactive messages."""

APP_SCOPES: Final = (
    "ReadAccounts",
    "EditExtensions",
    "ReadCallLog",
    "ReadCallRecording",
    "SubscriptionWebhook",
    "TeamMessaging",
    "RingSense",
    "AI",
)
"""App permissions of the sandbox app; a token carries these unless `scope` narrows them."""

ADMIN_PERMISSIONS: Final = frozenset(
    {
        "ReadRingSenseInsights",
        "ReadCallLog",
        "ReadCallRecording",
        "FullCompanyCallLog",
        "ReadCompanyCallRecording",
        "ReadExtensions",
        "EditExtensions",
    }
)
USER_PERMISSIONS: Final = frozenset({"ReadCallLog", "ReadCallRecording", "ReadExtensions"})
BOT_PERMISSIONS: Final = frozenset({"ReadExtensions"})
