"""The sandbox's in-memory platform state.

Everything the emulated RingCentral platform knows lives in one `World`: the customer
accounts and their extensions (users and the app's bot, one per account), OAuth
sessions, chats, posts, adaptive cards, subscriptions, RingSense records, call-log
records, the app's console settings, the injected faults, and what happened (API
requests, webhook deliveries, dialogs shown). It has no HTTP in it, so tests and the
control API can set up scenarios directly, and it owns the clock so expiry can be
tested without waiting. The default account (`defaults.ACCOUNT_ID`) is seeded with the
service user and the installed bot; more accounts can be added for multi-tenant tests.
"""

from __future__ import annotations

import random
import secrets
import string
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from sandbox import defaults
from sandbox.ai_jobs import AiJob
from sandbox.faults import Faults
from sandbox.ringcx_state import RingCx

ExtensionType = Literal["User", "Bot"]
ChatType = Literal["Direct", "Personal", "Group", "Team", "Everyone"]
SubscriptionStatus = Literal["Active", "Blacklisted"]

JSON = dict[str, Any]

PERMANENT_TOKEN_LIFETIME = 2147483647
"""What the platform reports as `expires_in` for a bot's permanent token."""
DEFAULT_BOT_READY_AFTER_SECONDS = 3.0
"""A just-installed bot cannot subscribe for this long (SUB-406), on by default."""
MAX_PARALLEL_SESSIONS = 5
"""Parallel sessions per user and app (the platform's limit)."""


def iso(timestamp: float) -> str:
    """ISO-8601 with milliseconds and `Z`, the platform's one timestamp format."""
    moment = datetime.fromtimestamp(timestamp, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_iso(value: str) -> float:
    """The inverse of `iso`, tolerant of the variants clients send in queries."""
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _last_digits(value: str, count: int) -> str:
    digits = "".join(char for char in value if char.isdigit())
    return digits[-count:].rjust(count, "0")


@dataclass
class Account:
    """A customer account: its extensions share an "All Employees" chat and a company
    call log, and `~` in an account path means the caller's own account."""

    id: str
    name: str
    everyone_chat_id: str
    creation_time: float


@dataclass
class Extension:
    id: str
    name: str
    first_name: str
    last_name: str
    email: str
    type: ExtensionType
    admin: bool
    permissions: set[str]
    extension_number: str
    phone_number: str
    creation_time: float
    last_modified_time: float
    account_id: str = defaults.ACCOUNT_ID
    status: str = "Enabled"
    installed_at: float | None = None
    install_events_due: bool = False
    """A bot installed but not yet told (by its first subscription) of its install."""
    """Bots only: when the app was (last) installed, for the SUB-406 readiness knob."""


@dataclass
class OAuthSession:
    """One login: its current access token and (unless permanent) its refresh token."""

    id: str
    owner_id: str
    client_id: str
    scope: tuple[str, ...]
    access_token: str
    access_expires_at: float | None
    refresh_token: str | None
    refresh_expires_at: float | None
    access_ttl: int
    refresh_ttl: int
    endpoint_id: str


@dataclass
class AuthorizationCode:
    code: str
    owner_id: str
    client_id: str
    redirect_uri: str
    expires_at: float
    code_challenge: str | None = None
    code_challenge_method: str | None = None


@dataclass
class AuthorizationRequest:
    """A visit to `/restapi/oauth/authorize` that passed the checks: what the login page
    will bind the code to once a user approves."""

    id: str
    client_id: str
    redirect_uri: str
    state: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    expires_at: float


@dataclass
class Chat:
    id: str
    type: ChatType
    name: str | None
    description: str | None
    members: list[str]
    public: bool | None
    creation_time: float
    last_modified_time: float
    status: str = "Active"


@dataclass
class Post:
    id: str
    chat_id: str
    creator_id: str
    type: str
    text: str | None
    mentions: list[JSON] | None
    creation_time: float
    last_modified_time: float
    card_id: str | None = None
    added_person_ids: list[str] | None = None
    """Who joined, for a `PersonsAdded` post."""


@dataclass
class AdaptiveCard:
    id: str
    creator_id: str
    chat_ids: list[str]
    content: JSON
    creation_time: float
    last_modified_time: float
    post_id: str


@dataclass
class Subscription:
    id: str
    owner_id: str
    client_id: str
    event_filters: list[str]
    disabled_filters: list[JSON]
    address: str
    verification_token: str | None
    expires_in: int
    creation_time: float
    expiration_time: float
    status: SubscriptionStatus = "Active"
    blacklisted_at: float | None = None
    blacklist_reason: str | None = None
    failures: deque[float] = field(default_factory=deque)
    last_reminded_at: float | None = None
    """When the last expiry reminder went out (cleared by every renewal)."""


@dataclass
class Delivery:
    """One attempt to POST a notification to a subscription's address."""

    subscription_id: str
    uuid: str
    event: str
    address: str
    time: float
    status: int | None
    error: str | None
    payload: JSON = field(default_factory=dict)
    """The envelope exactly as POSTed, so a test can replay it as a duplicate."""
    attempt: int = 1
    """1 for the first try, 2.. for retries (the `webhookRetries` fault)."""
    copy: int = 0
    """0 for the notification, 1.. for injected duplicates (same `uuid`)."""
    dropped: bool = False
    """Not sent at all (the `dropNotifications` fault); the platform never resends."""

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass
class RequestLogEntry:
    method: str
    path: str
    query: str
    status: int | None
    """None when the connection was dropped without an answer (the `reset` fault)."""
    group: str | None
    token_owner: str | None
    time: float
    """World clock when the answer was ready."""
    arrived_at: float = 0.0
    """World clock when the request arrived."""
    arrived_monotonic: float = 0.0
    """`time.monotonic()` when it arrived: real elapsed time between requests."""
    fault: str | None = None
    """What was injected: latency, error, reset, storm, rateLimit, dailyPostLimit."""
    latency_ms: float | None = None
    retry_after: float | None = None
    """The `Retry-After` the answer carried (seconds): how long the client was told to
    send nothing more, so a check can tell requests sent inside that penalty."""


@dataclass
class Exchange:
    """One platform request and its answer, bodies included, kept only while
    `World.capture_exchanges` is on (for checking both against the spec). Credentials are
    not kept: `authorization` is the scheme alone."""

    method: str
    path: str
    query: dict[str, str]
    authorization: str | None
    request_content_type: str
    request_body: bytes
    status: int
    response_content_type: str
    response_body: bytes


@dataclass
class CallLogEntry:
    """A call-log record as stored; rendered per request because `uri`s need the host.

    Every extension on a call has its own record (same `telephonySessionId`, its own
    `id`, the direction as that extension saw it), as in each user's call log.
    """

    id: str
    owner_id: str
    account_id: str
    session_id: str
    telephony_session_id: str
    party_id: str
    start_time: float
    duration_ms: int
    direction: Literal["Inbound", "Outbound"]
    from_party: JSON
    to_party: JSON
    recording_id: str | None
    recording_type: Literal["Automatic", "OnDemand"]
    last_modified_time: float


class World:
    """All platform state plus the settings a test may change."""

    def __init__(self, *, seed: int | None = None) -> None:
        self.random = random.Random(seed)
        self._clock_offset = 0.0
        self._counters: dict[str, int] = {}

        # Settings a test or the demo may change.
        self.enforce_rate_limits = True
        """The platform's limits (API-FACTS G) apply unless a test or bench turns them off
        or raises them (`limits` in /_sandbox/faults), and says why."""
        self.handshake_timeout = 3.0
        self.delivery_timeout = 3.0
        self.max_handshake_response_bytes = 1024
        self.blacklist_after_failures = 10
        self.blacklist_window_seconds = 600.0
        self.max_subscriptions_per_owner = 30
        # SUB-406 for a bot installed this recently (the real delay is UNCONFIRMED).
        self.bot_ready_after_seconds = DEFAULT_BOT_READY_AFTER_SECONDS
        self.faults = Faults()
        self.api_posts_per_day: dict[tuple[str, str], int] = {}
        """(extension id, UTC date) -> posts and cards created through the API."""

        self.account_id = defaults.ACCOUNT_ID
        """The default account's id (more accounts may be added)."""
        self.app_client_id = defaults.CLIENT_ID
        self.app_client_secret = defaults.CLIENT_SECRET
        self.app_scopes: tuple[str, ...] = defaults.APP_SCOPES
        self.app_redirect_uris: list[str] = []
        self.app_shared_secret = defaults.SHARED_SECRET

        # What a developer configures for the app in the developer console.
        self.oauth_redirect_uri: str | None = None
        self.interactive_messages_url: str | None = None
        self.signature_prefix = False
        """False: `X-Glip-Signature: <hex>` as RingCentral's code compares it; True:
        `sha1=<hex>` as the docs describe it (API-FACTS D.6)."""

        self.accounts: dict[str, Account] = {}
        self.extensions: dict[str, Extension] = {}
        self.deleted_extensions: dict[str, Extension] = {}
        self.deleted_tokens: dict[str, str] = {}
        """Access tokens of deleted extensions (token -> extension id): they answer OAU-232."""
        self.jwts: dict[str, str] = {}
        self.sessions: dict[str, OAuthSession] = {}
        self.access_tokens: dict[str, OAuthSession] = {}
        self.refresh_tokens: dict[str, OAuthSession] = {}
        self.authorization_codes: dict[str, AuthorizationCode] = {}
        self.authorization_requests: dict[str, AuthorizationRequest] = {}
        """Authorize-page visits waiting for the user to sign in and approve (one use each)."""
        self.chats: dict[str, Chat] = {}
        self.posts: dict[str, Post] = {}
        self.cards: dict[str, AdaptiveCard] = {}
        self.subscriptions: dict[str, Subscription] = {}
        # Expired subscriptions (id -> the subscription as it was): asked about again they
        # are SUB-507 "was expired", not an unknown id's CMN-102 (API-FACTS B.4).
        self.expired_subscriptions: dict[str, Subscription] = {}
        self.deliveries: list[Delivery] = []
        self.request_log: list[RequestLogEntry] = []
        self.capture_exchanges = False
        self.exchanges: list[Exchange] = []
        self.ringsense_records: dict[tuple[str, str, str], JSON] = {}
        """(account id, domain, sourceRecordId) -> RecordingInsights."""
        self.call_log: list[CallLogEntry] = []
        """Every call-log record, oldest first; add to it with `log_call_leg`."""
        self._legs_per_session: Counter[str] = Counter()
        self.dialogs: dict[str, JSON] = {}
        """The last dialog a bot opened for each user (by extension id), from card submits."""
        self.ai_jobs: dict[str, AiJob] = {}
        """AI API jobs by job id, in creation order."""
        self.ai_enrollments: dict[tuple[str, str], JSON] = {}
        """(account id, enrollment id) -> the speaker enrollment's status (EnrollmentStatus)."""
        self.ai_job_delay_seconds = 0.5
        # How long a job id lives (the docs: a week); shorter to test expiry.
        self.ai_job_lifetime_seconds: float = 7 * 24 * 3600
        """How long an AI job runs, on the world's clock (so `advance` finishes it too)."""
        self.ai_webhook_delivery = "deliver"
        """deliver | never: "never" completes jobs without calling their webhook."""
        self.ringcx = RingCx()
        self.ringcx_enforce_rate_limits = True
        """RingCX's own limits (exchange 5/min, metadata 3/60 s and 9/15 min, transcripts
        120/min) apply unless a test turns them off; they are separate from the
        platform's `enforce_rate_limits`."""
        self.everyone_chat_id = ""
        """The default account's "All Employees" chat."""

        self._seed_default_account()

    # ----------------------------------------------------------------- clock

    def now(self) -> float:
        """Epoch seconds on the world's clock: wall time plus whatever tests advanced."""
        return time.time() + self._clock_offset

    def now_iso(self) -> str:
        return iso(self.now())

    def advance(self, seconds: float) -> None:
        """Move the clock forward, so expiry and rate windows can be tested quickly."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        self._clock_offset += seconds

    # ------------------------------------------------------------------- ids

    def next_id(self, kind: str, start: int) -> str:
        """Numeric string ids that grow per kind, in the magnitude real ids have."""
        value = self._counters.get(kind, start) + 1
        self._counters[kind] = value
        return str(value)

    def random_digits(self, length: int) -> str:
        first = self.random.choice("123456789")
        return first + "".join(self.random.choice(string.digits) for _ in range(length - 1))

    def new_token(self, prefix: str) -> str:
        return f"{prefix}-{secrets.token_urlsafe(24)}"

    # ------------------------------------------------------------ extensions

    def _seed_default_account(self) -> None:
        self.add_account(
            "Sandbox Inc.",
            account_id=defaults.ACCOUNT_ID,
            admin_name=defaults.SERVICE_USER_NAME,
            admin_extension_id=defaults.SERVICE_USER_EXTENSION_ID,
            admin_email="service.user@sandbox.example.com",
        )
        self.everyone_chat_id = self.accounts[defaults.ACCOUNT_ID].everyone_chat_id
        self.jwts[defaults.SERVICE_USER_JWT] = defaults.SERVICE_USER_EXTENSION_ID
        bot = self.add_bot(defaults.ACCOUNT_ID, extension_id=defaults.BOT_EXTENSION_ID)
        bot.installed_at = None  # installed long before the sandbox started: ready
        bot.install_events_due = False  # ...and told of it long ago
        self.issue_permanent_token(bot.id, defaults.BOT_TOKEN)

    def add_account(
        self,
        name: str,
        *,
        account_id: str | None = None,
        admin_name: str = "Account Admin",
        admin_extension_id: str | None = None,
        admin_email: str | None = None,
    ) -> tuple[Account, Extension]:
        """A new customer account with its "All Employees" chat and an admin user."""
        new_id = account_id or self.next_id("account", 809640001)
        if new_id in self.accounts:
            raise ValueError(f"account {new_id} already exists")
        now = self.now()
        everyone = Chat(
            id=self.next_id("chat", 1055879168000),
            type="Everyone",
            name="All Employees",
            description=None,
            members=[],
            public=True,
            creation_time=now,
            last_modified_time=now,
        )
        self.chats[everyone.id] = everyone
        account = Account(new_id, name, everyone.id, now)
        self.accounts[account.id] = account
        admin = self.add_user(
            admin_name,
            admin=True,
            extension_id=admin_extension_id,
            email=admin_email,
            account_id=account.id,
        )
        return account, admin

    def _add_extension(
        self,
        extension_id: str,
        name: str,
        *,
        type_: ExtensionType,
        admin: bool,
        email: str,
        permissions: set[str],
        account_id: str,
    ) -> Extension:
        account = self.accounts.get(account_id)
        if account is None:
            raise ValueError(f"no account {account_id}")
        first, _, last = name.partition(" ")
        now = self.now()
        number = str(101 + sum(1 for e in self.extensions.values() if e.account_id == account_id))
        extension = Extension(
            id=extension_id,
            name=name,
            first_name=first,
            last_name=last,
            email=email,
            type=type_,
            admin=admin,
            permissions=permissions,
            extension_number=number,
            phone_number="+1650555" + _last_digits(extension_id, 4),
            creation_time=now,
            last_modified_time=now,
            account_id=account.id,
        )
        self.extensions[extension.id] = extension
        self.chats[account.everyone_chat_id].members.append(extension.id)
        personal = Chat(
            id=self.next_id("chat", 1055879168000),
            type="Personal",
            name=None,
            description=None,
            members=[extension.id],
            public=None,
            creation_time=now,
            last_modified_time=now,
        )
        self.chats[personal.id] = personal
        return extension

    def add_user(
        self,
        name: str,
        *,
        admin: bool = False,
        extension_id: str | None = None,
        email: str | None = None,
        permissions: set[str] | None = None,
        account_id: str | None = None,
    ) -> Extension:
        """A user extension, a member of its account's "All Employees" with its own
        personal chat (the default account unless `account_id` says otherwise)."""
        if extension_id is not None and self._id_taken(extension_id):
            raise ValueError(f"extension {extension_id} already exists")
        new_id = extension_id or self._new_extension_id()
        if permissions is None:
            base = defaults.ADMIN_PERMISSIONS if admin else defaults.USER_PERMISSIONS
            permissions = set(base)
        address = email
        if address is None:
            local = ".".join(part.lower() for part in name.split() if part) or new_id
            address = f"{local}@sandbox.example.com"
            if self.find_by_email(address) is not None:
                address = f"{local}.{new_id}@sandbox.example.com"
        return self._add_extension(
            new_id,
            name,
            type_="User",
            admin=admin,
            email=address,
            permissions=permissions,
            account_id=account_id or self.account_id,
        )

    def add_bot(
        self,
        account_id: str,
        *,
        name: str = defaults.BOT_NAME,
        extension_id: str | None = None,
    ) -> Extension:
        """The bot extension an install creates in the customer's account (API-FACTS A.4)."""
        if extension_id is not None and self._id_taken(extension_id):
            raise ValueError(f"extension {extension_id} already exists")
        new_id = extension_id or self._new_extension_id()
        bot = self._add_extension(
            new_id,
            name,
            type_="Bot",
            admin=False,
            email=f"bot.{new_id}@sandbox.example.com",
            permissions=set(defaults.BOT_PERMISSIONS),
            account_id=account_id,
        )
        bot.installed_at = self.now()
        bot.install_events_due = True
        return bot

    def _id_taken(self, extension_id: str) -> bool:
        return extension_id in self.extensions or extension_id in self.deleted_extensions

    def _new_extension_id(self) -> str:
        while True:
            candidate = self.next_id("extension", 62288330000)
            if not self._id_taken(candidate):
                return candidate

    def delete_extension(self, extension_id: str) -> Extension:
        """Remove an extension (a bot uninstall): it leaves every chat, its personal chat
        and subscriptions go, and its tokens answer OAU-232 from now on."""
        extension = self.extensions.pop(extension_id)
        extension.status = "Deleted"
        self.deleted_extensions[extension.id] = extension
        for chat_id, chat in list(self.chats.items()):
            if chat.type == "Personal" and chat.members == [extension.id]:
                del self.chats[chat_id]
            elif extension.id in chat.members:
                chat.members.remove(extension.id)
        for session in [s for s in self.sessions.values() if s.owner_id == extension.id]:
            self.revoke_session(session)
            self.deleted_tokens[session.access_token] = extension.id
        for subscription_id, subscription in list(self.subscriptions.items()):
            if subscription.owner_id == extension.id:
                del self.subscriptions[subscription_id]
        self.dialogs.pop(extension.id, None)
        return extension

    def bots(self, account_id: str | None = None) -> list[Extension]:
        return [
            ext
            for ext in self.extensions.values()
            if ext.type == "Bot" and (account_id is None or ext.account_id == account_id)
        ]

    def admin_of(self, account_id: str) -> Extension | None:
        """The account's first admin user: who installs apps unless a test says otherwise."""
        return next(
            (
                ext
                for ext in self.extensions.values()
                if ext.account_id == account_id and ext.admin and ext.type == "User"
            ),
            None,
        )

    def issue_jwt(self, extension_id: str) -> str:
        """A JWT credential for a user, as an admin would create one in the console."""
        jwt = self.new_token("sbx-jwt")
        self.jwts[jwt] = extension_id
        return jwt

    def find_by_email(self, email: str) -> Extension | None:
        wanted = email.strip().lower()
        for extension in self.extensions.values():
            if extension.email.lower() == wanted:
                return extension
        return None

    def can_see(self, viewer: Extension, person: Extension) -> bool:
        """People of the viewer's own account, and guests the viewer shares a chat with."""
        if viewer.account_id == person.account_id:
            return True
        return any(
            viewer.id in chat.members and person.id in chat.members for chat in self.chats.values()
        )

    # ---------------------------------------------------------------- tokens

    def issue_session(
        self,
        owner_id: str,
        *,
        client_id: str,
        scope: tuple[str, ...],
        access_ttl: int,
        refresh_ttl: int,
    ) -> OAuthSession:
        now = self.now()
        session = OAuthSession(
            id=self.random_digits(19),
            owner_id=owner_id,
            client_id=client_id,
            scope=scope,
            access_token=self.new_token("sbx-at"),
            access_expires_at=now + access_ttl,
            refresh_token=self.new_token("sbx-rt"),
            refresh_expires_at=now + refresh_ttl,
            access_ttl=access_ttl,
            refresh_ttl=refresh_ttl,
            endpoint_id=secrets.token_urlsafe(16),
        )
        self._index_session(session)
        self._end_sessions_beyond_the_limit(owner_id, client_id)
        return session

    def _end_sessions_beyond_the_limit(self, owner_id: str, client_id: str) -> None:
        """At most MAX_PARALLEL_SESSIONS live sessions per user and app: the oldest go.

        The limit of 5 is the platform's; that the oldest session is ended (rather than the
        new login refused) is UNCONFIRMED, and is the choice that punishes a client logging
        in again and again while it still holds tokens it means to use.
        """
        now = self.now()
        live = [
            session
            for session in self.sessions.values()
            if session.owner_id == owner_id
            and session.client_id == client_id
            and session.access_expires_at is not None
            and (session.access_expires_at > now or (session.refresh_expires_at or 0) > now)
        ]
        for session in live[: max(0, len(live) - MAX_PARALLEL_SESSIONS)]:
            self.revoke_session(session)

    def issue_permanent_token(self, owner_id: str, token: str | None = None) -> OAuthSession:
        """A bot token: never expires and has no refresh token, like a bot install's."""
        session = OAuthSession(
            id=self.random_digits(19),
            owner_id=owner_id,
            client_id=self.app_client_id,
            scope=self.app_scopes,
            access_token=token or self.new_token("sbx-bot"),
            access_expires_at=None,
            refresh_token=None,
            refresh_expires_at=None,
            access_ttl=PERMANENT_TOKEN_LIFETIME,
            refresh_ttl=0,
            endpoint_id=secrets.token_urlsafe(16),
        )
        self._index_session(session)
        return session

    def permanent_session(self, owner_id: str) -> OAuthSession | None:
        """The bot's permanent token session, if it has one."""
        return next(
            (
                session
                for session in self.sessions.values()
                if session.owner_id == owner_id and session.access_expires_at is None
            ),
            None,
        )

    def _index_session(self, session: OAuthSession) -> None:
        self.sessions[session.id] = session
        self.access_tokens[session.access_token] = session
        if session.refresh_token:
            self.refresh_tokens[session.refresh_token] = session

    def rotate_session(self, session: OAuthSession) -> OAuthSession:
        """Refresh: new access and refresh tokens; the old ones stop working at once."""
        self.access_tokens.pop(session.access_token, None)
        if session.refresh_token:
            self.refresh_tokens.pop(session.refresh_token, None)
        now = self.now()
        session.access_token = self.new_token("sbx-at")
        session.access_expires_at = now + session.access_ttl
        session.refresh_token = self.new_token("sbx-rt")
        session.refresh_expires_at = now + session.refresh_ttl
        self._index_session(session)
        return session

    def revoke_session(self, session: OAuthSession) -> None:
        self.sessions.pop(session.id, None)
        self.access_tokens.pop(session.access_token, None)
        if session.refresh_token:
            self.refresh_tokens.pop(session.refresh_token, None)

    def issue_authorization_code(
        self,
        owner_id: str,
        redirect_uri: str,
        *,
        client_id: str | None = None,
        code_challenge: str | None = None,
        code_challenge_method: str | None = None,
    ) -> AuthorizationCode:
        """What the authorize step would hand a public bot's redirect URI (valid 60 s)."""
        code = AuthorizationCode(
            code=self.new_token("sbx-code"),
            owner_id=owner_id,
            client_id=client_id or self.app_client_id,
            redirect_uri=redirect_uri,
            expires_at=self.now() + 60,
            code_challenge=code_challenge,
            code_challenge_method=code_challenge_method,
        )
        self.authorization_codes[code.code] = code
        if redirect_uri not in self.app_redirect_uris:
            self.app_redirect_uris.append(redirect_uri)
        return code

    # ----------------------------------------------------------------- chats

    def chats_of(self, extension_id: str) -> list[Chat]:
        return [chat for chat in self.chats.values() if extension_id in chat.members]

    def personal_chat(self, extension_id: str) -> Chat | None:
        for chat in self.chats.values():
            if chat.type == "Personal" and chat.members == [extension_id]:
                return chat
        return None

    def find_conversation(self, members: set[str]) -> Chat | None:
        """The existing Direct/Group/Personal chat with exactly these members."""
        for chat in self.chats.values():
            if chat.type in ("Direct", "Group", "Personal") and set(chat.members) == members:
                return chat
        return None

    def add_chat(
        self,
        type_: ChatType,
        members: list[str],
        *,
        name: str | None = None,
        description: str | None = None,
        public: bool | None = None,
    ) -> Chat:
        now = self.now()
        unique_members = list(dict.fromkeys(members))
        chat = Chat(
            id=self.next_id("chat", 1055879168000),
            type=type_,
            name=name,
            description=description,
            members=unique_members,
            public=public if type_ == "Team" else None,
            creation_time=now,
            last_modified_time=now,
        )
        self.chats[chat.id] = chat
        return chat

    def posts_in(self, chat_id: str) -> list[Post]:
        return [post for post in self.posts.values() if post.chat_id == chat_id]

    def add_post(
        self,
        chat: Chat,
        creator_id: str,
        *,
        text: str | None,
        type_: str = "TextMessage",
        mentions: list[JSON] | None = None,
        card_id: str | None = None,
        added_person_ids: list[str] | None = None,
    ) -> Post:
        now = self.now()
        post = Post(
            id=self.next_id("post", 26848769679000),
            chat_id=chat.id,
            creator_id=creator_id,
            type=type_,
            text=text,
            mentions=mentions,
            creation_time=now,
            last_modified_time=now,
            card_id=card_id,
            added_person_ids=added_person_ids,
        )
        self.posts[post.id] = post
        chat.last_modified_time = now
        return post

    # --------------------------------------------------------- subscriptions

    def live_subscription(self, subscription_id: str) -> Subscription | None:
        """The subscription unless it has expired; expired ones are dropped for good."""
        subscription = self.subscriptions.get(subscription_id)
        if subscription is None:
            return None
        if subscription.expiration_time <= self.now():
            del self.subscriptions[subscription_id]
            self.expired_subscriptions[subscription_id] = subscription
            return None
        return subscription

    def live_subscriptions(self) -> list[Subscription]:
        result = []
        for subscription_id in list(self.subscriptions):
            subscription = self.live_subscription(subscription_id)
            if subscription is not None:
                result.append(subscription)
        return result

    def record_delivery_failure(self, subscription: Subscription, reason: str) -> None:
        """Count a failed delivery; too many within the window blacklist the subscription."""
        now = self.now()
        subscription.failures.append(now)
        while subscription.failures and subscription.failures[0] <= (
            now - self.blacklist_window_seconds
        ):
            subscription.failures.popleft()
        if (
            subscription.status == "Active"
            and len(subscription.failures) >= self.blacklist_after_failures
        ):
            subscription.status = "Blacklisted"
            subscription.blacklisted_at = now
            subscription.blacklist_reason = reason

    # ------------------------------------------------------------- ringsense

    def store_ringsense_record(self, record: JSON, account_id: str | None = None) -> None:
        """Keep a record under its account (default: the owner extension's account).

        The REST record is the call's current state and never goes back in time: a version
        older (by `lastModifiedTime`) than the one kept is announced but does not replace it,
        which is how a late, reordered notification looks from the API."""
        if account_id is None:
            owner = self.extensions.get(str(record.get("ownerExtensionId")))
            account_id = owner.account_id if owner else self.account_id
        key = (account_id, str(record.get("domain", "pbx")), str(record["sourceRecordId"]))
        kept = self.ringsense_records.get(key)
        if kept is not None:
            kept_time, new_time = kept.get("lastModifiedTime"), record.get("lastModifiedTime")
            if isinstance(kept_time, str) and isinstance(new_time, str) and new_time < kept_time:
                return
        self.ringsense_records[key] = record

    def ringsense_record(self, account_id: str, domain: str, record_id: str) -> JSON | None:
        return self.ringsense_records.get((account_id, domain, record_id))

    def ringsense_session(self, account_id: str, domain: str, source_session_id: str) -> list[JSON]:
        return [
            record
            for (record_account, record_domain, _), record in self.ringsense_records.items()
            if record_account == account_id
            and record_domain == domain
            and record.get("sourceSessionId") == source_session_id
        ]

    def new_telephony_session_id(self) -> str:
        """Shaped like the platform's, e.g. `s-a0e7b361acc0az191bec7e275z7cae070000`."""
        hexdigits = "0123456789abcdef"

        def chunk(length: int) -> str:
            return "".join(self.random.choice(hexdigits) for _ in range(length))

        return f"s-a{chunk(11)}z{int(self.now() * 1000):x}z{chunk(6)}0000"

    def legs_in_session(self, telephony_session_id: str) -> int:
        """How many call-log records a telephony session already has (counted as they are
        logged: a scan of the whole log made each simulated call dearer than the last)."""
        return self._legs_per_session[telephony_session_id]

    def log_call_leg(self, entry: CallLogEntry) -> None:
        self.call_log.append(entry)
        self._legs_per_session[entry.telephony_session_id] += 1

    def new_call_log_id(self) -> str:
        alphabet = string.ascii_letters + string.digits
        return "".join(self.random.choice(alphabet) for _ in range(15))
