"""Dispatch: routers of handlers, the context they receive, and the middleware chain.

Handlers are plain `async def h(ctx: Context) -> None` functions registered on a
per-module `Router` by event kind, command word or card action id. Everything that
applies to many handlers (which bot install an event belongs to, ignoring the bot's own
posts, which messages are commands, loading the author's settings, turning failures into
an answer) is middleware here, not handler code.
"""

from __future__ import annotations

import difflib
import enum
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot import events
from bot.access import Identity
from bot.cards import message_dialog
from bot.events import CardSubmission, ChatMessage, Notification
from bot.quoting import for_log, quote_for_chat
from bot.rc import (
    RingCentralError,
    RingCentralNotFound,
    RingCentralPermissionError,
    describe_error,
)
from bot.reply_limits import Verdict, quiet_notice, too_many_commands_notice
from bot.services import BotInstall, Services
from bot.settings import UserSettings
from bot.storage import DIGEST_PRIORITY, REPLY_PRIORITY, QueuedDelivery

log = logging.getLogger(__name__)

Handler = Callable[["Context"], Awaitable[None]]
Middleware = Callable[["Context", Handler], Awaitable[None]]

CARD_SUBMIT = "card.submit"


class Dispatched(enum.Enum):
    """What became of a notification handed to `Dispatcher.dispatch`."""

    NO_HANDLER = "no handler is registered for its kind"
    HANDLED = "handled (or ignored on purpose)"
    INBOX_ROW_DONE = "handled, and its inbox row marked done in the handler's transaction"


class Ignored(Exception):
    """Raised by middleware to stop an event that needs no handling (e.g. own posts)."""


@dataclass(frozen=True)
class CommandSpec:
    name: str
    handler: Handler
    summary: str
    usage: str
    aliases: tuple[str, ...] = ()
    details: str = ""


@dataclass
class Context:
    """What a handler gets: the services, the bot install, and what happened.

    Exactly one of `notification` (a webhook notification) and `submission` (a card button
    press) is set. For commands, `message`, `command` and `args` are set too.
    """

    services: Services
    event_id: str
    kind: str
    notification: Notification | None = None
    submission: CardSubmission | None = None
    install: BotInstall | None = None
    message: ChatMessage | None = None
    command: CommandSpec | None = None
    args: str = ""
    settings: UserSettings | None = None
    dispatcher: Dispatcher | None = None
    response: dict[str, Any] | None = None
    attempt: int = 1
    last_attempt: bool = False
    inbox_id: int | None = None
    """The inbox row the notification was stored as (None: a card press, or work made
    without one). A handler may mark it done in its own last transaction (a digest does)
    and then says so with `inbox_row_finished`, so the worker does not write it again."""
    inbox_row_finished: bool = False
    _queued: int = field(default=0, repr=False)
    _author_confirmed: bool | None = field(default=None, repr=False)
    _actor_identity: tuple[Identity | None] | None = field(default=None, repr=False)
    _held: list[QueuedDelivery] | None = field(default=None, repr=False)

    @property
    def bot(self) -> BotInstall:
        if self.install is None:
            raise RuntimeError("no bot install resolved for this event")
        return self.install

    @property
    def actor_id(self) -> str | None:
        """Who did it: the author of the message or the person who pressed the button."""
        if self.message is not None:
            return self.message.creator_id
        if self.submission is not None:
            return self.submission.user_id
        return None

    async def actor_identity(self) -> Identity | None:
        """Who did it, as (account, extension), once RingCentral confirms the person belongs
        to the account of the install the event came through; None when it cannot be
        established (another company's person, a guest, someone the bot cannot see)."""
        if self._actor_identity is None:
            identity: Identity | None = None
            actor = self.actor_id
            claimed = self.submission.user_account_id if self.submission is not None else None
            if (
                actor is not None
                and self.install is not None
                and claimed
                in (
                    None,
                    self.install.account_id,
                )
            ):
                identity = await self.services.identity_of(self.install, actor)
            self._actor_identity = (identity,)
        return self._actor_identity[0]

    async def author_confirmed(self) -> bool:
        """Whether RingCentral itself confirms who acted where, not just the notification body.

        A message is read back: it must exist, in this chat, by this author. A button press
        (already signed by RingCentral) must come from a member of the chat the card is in.
        Used before anything that changes where data goes or what is kept.
        """
        if self._author_confirmed is None:
            self._author_confirmed = await self._confirm_author()
        return self._author_confirmed

    async def _confirm_author(self) -> bool:
        actor, chat_id = self.actor_id, self.chat_id
        if actor is None or chat_id is None or self.install is None:
            return False
        try:
            if self.message is not None:
                post = await self.bot.api.get_post(chat_id, self.message.post_id)
                return (
                    str(post.get("id")) == self.message.post_id
                    and str(post.get("creatorId")) == actor
                    and str(post.get("groupId", chat_id)) == chat_id
                )
            members = await self.services.chat_member_ids(self.bot, chat_id)
        except (RingCentralNotFound, RingCentralPermissionError) as err:
            log.info("%s %s: could not confirm its author (%s)", self.kind, self.event_id, err)
            return False
        return actor in members

    @property
    def chat_id(self) -> str | None:
        if self.message is not None:
            return self.message.chat_id
        if self.submission is not None:
            return self.submission.chat_id
        return None

    async def reply(self, text: str) -> None:
        """Answer in the chat the message or button press came from."""
        chat_id = self.chat_id
        if chat_id is None:
            raise RuntimeError("reply() needs a chat to answer in")
        await self.send_text({"kind": "chat", "chatId": chat_id}, text)

    async def reply_card(self, card: Mapping[str, Any]) -> None:
        chat_id = self.chat_id
        if chat_id is None:
            raise RuntimeError("reply_card() needs a chat to answer in")
        await self.send_card({"kind": "chat", "chatId": chat_id}, card)

    async def send_text(self, destination: Mapping[str, str], text: str) -> None:
        await self._enqueue(destination, {"kind": "text", "text": text})

    async def reply_interim(self, text: str) -> None:
        """Tell the person we will answer later, under a key of its own.

        The retried attempt numbers its messages from 1 again, so that a message an earlier
        attempt already queued is not sent twice; the interim answer must therefore stay
        out of that numbering, or it would take the real answer's key and swallow it.
        """
        chat_id = self.chat_id
        if chat_id is None:
            raise RuntimeError("reply_interim() needs a chat to answer in")
        await self._enqueue(
            {"kind": "chat", "chatId": chat_id},
            {"kind": "text", "text": text},
            dedupe_key=f"{self.kind}:{self.event_id}:interim",
        )

    async def send_card(
        self,
        destination: Mapping[str, str],
        card: Mapping[str, Any],
        *,
        card_key: str | None = None,
        digest: bool = False,
        timing: Mapping[str, float] | None = None,
    ) -> None:
        """Queue a card for a destination. With `card_key`, a card already posted for that key
        in that destination is updated in place instead of a second one being posted.
        A `digest` goes ahead of replies and may use the pacing and budget kept for digests.
        `timing` (epoch seconds: `arrivedAt`, `recordingEndedAt`) travels with the delivery
        so the call-to-card latency is measured when the card is really posted."""
        message: dict[str, Any] = {"kind": "card", "card": dict(card)}
        if timing:
            message["timing"] = dict(timing)
        await self._enqueue(
            destination,
            message,
            card_key=card_key,
            priority=DIGEST_PRIORITY if digest else REPLY_PRIORITY,
        )

    async def update_card(self, card_id: str, card: Mapping[str, Any]) -> None:
        """Replace a card we posted earlier (e.g. the settings card after Save)."""
        destination = {"kind": "card", "cardId": card_id}
        await self._enqueue(destination, {"kind": "card_update", "card": dict(card)})

    def hold_deliveries(self) -> None:
        """From now on, what the handler queues is kept here instead of written at once,
        until `release_deliveries`: the handler stores it in its own transaction, with
        whatever else the same unit of work writes (a digest: the call)."""
        if self._held is None:
            self._held = []

    def release_deliveries(self) -> list[QueuedDelivery]:
        """What was queued since `hold_deliveries`, for the caller to store; queuing
        writes at once again."""
        held, self._held = self._held or [], None
        return held

    async def _enqueue(
        self,
        destination: Mapping[str, str],
        message: Mapping[str, Any],
        card_key: str | None = None,
        dedupe_key: str | None = None,
        priority: int = REPLY_PRIORITY,
    ) -> None:
        if dedupe_key is None:
            self._queued += 1
            dedupe_key = f"{self.kind}:{self.event_id}:{self._queued}"
        if self._held is not None:
            self._held.append(
                QueuedDelivery(
                    dedupe_key, destination, message, card_key, self.bot.account_id, priority
                )
            )
            return
        await self.services.storage.enqueue(
            dedupe_key,
            destination,
            message,
            card_key=card_key,
            account_id=self.bot.account_id,
            priority=priority,
        )
        # No wake: the storage hands the committed delivery to the delivery worker.


async def require_confirmed_author(ctx: Context) -> None:
    """Stop here, silently, unless RingCentral confirms the author (`author_confirmed`): a
    forged notification must not change anything, nor make the bot post anything."""
    if not await ctx.author_confirmed():
        raise Ignored("its author could not be confirmed with RingCentral")


def direct(extension_id: str) -> dict[str, str]:
    """The destination 'a direct message with this person'."""
    return {"kind": "direct", "extensionId": extension_id}


def chat(chat_id: str) -> dict[str, str]:
    return {"kind": "chat", "chatId": chat_id}


class Router:
    """One topic's handlers (`handlers/<topic>.py` makes one and registers on it)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.event_handlers: dict[str, list[Handler]] = {}
        self.commands: dict[str, CommandSpec] = {}
        self.card_actions: dict[str, Handler] = {}

    def event(self, kind: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.event_handlers.setdefault(kind, []).append(handler)
            return handler

        return register

    def command(
        self,
        name: str,
        *,
        summary: str,
        usage: str = "",
        aliases: Sequence[str] = (),
        details: str = "",
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            spec = CommandSpec(name, handler, summary, usage or name, tuple(aliases), details)
            for word in (name, *aliases):
                if word.lower() in self.commands:
                    raise ValueError(f"command word {word!r} is registered twice")
                self.commands[word.lower()] = spec
            return handler

        return register

    def card_action(self, action_id: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.card_actions[action_id] = handler
            return handler

        return register


class Dispatcher:
    """Routes a stored notification or a card press to its handler through the middleware."""

    def __init__(self, routers: Iterable[Router], middlewares: Sequence[Middleware] = ()) -> None:
        self.routers = list(routers)
        self.middlewares = list(middlewares) or default_middlewares()
        self.event_handlers: dict[str, list[Handler]] = {}
        self.commands: dict[str, CommandSpec] = {}
        self.card_actions: dict[str, Handler] = {}
        for router in self.routers:
            for kind, handlers in router.event_handlers.items():
                self.event_handlers.setdefault(kind, []).extend(handlers)
            for word, spec in router.commands.items():
                if word in self.commands and self.commands[word] is not spec:
                    raise ValueError(f"command word {word!r} is registered twice")
                self.commands[word] = spec
            for action_id, handler in router.card_actions.items():
                if action_id in self.card_actions:
                    raise ValueError(f"card action {action_id!r} is registered twice")
                self.card_actions[action_id] = handler

    def command_specs(self) -> list[CommandSpec]:
        """Each command once, in registration order."""
        seen: dict[str, CommandSpec] = {}
        for spec in self.commands.values():
            seen.setdefault(spec.name, spec)
        return list(seen.values())

    def command(self, word: str) -> CommandSpec | None:
        return self.commands.get(word.lower())

    async def dispatch(
        self,
        services: Services,
        notification: Notification,
        *,
        attempt: int = 1,
        last_attempt: bool = False,
        inbox_id: int | None = None,
    ) -> Dispatched:
        """Handle one notification (stored as inbox row `inbox_id`), and say what became
        of it.

        `attempt` counts from 1; `last_attempt` says a temporary failure now is final.
        """
        ctx = Context(services, notification.uuid, notification.kind, notification, dispatcher=self)
        ctx.attempt, ctx.last_attempt, ctx.inbox_id = attempt, last_attempt, inbox_id
        if notification.kind == events.POST_ADDED:
            handler: Handler = self._handle_message
        else:
            handlers = self.event_handlers.get(notification.kind)
            if not handlers:
                return Dispatched.NO_HANDLER
            handler = _run_all(handlers)
        await self._run(ctx, handler)
        return Dispatched.INBOX_ROW_DONE if ctx.inbox_row_finished else Dispatched.HANDLED

    async def dispatch_submission(
        self, services: Services, submission: CardSubmission
    ) -> tuple[bool, dict[str, Any] | None]:
        """Handle a card button press; the result is (handled, response body for RingCentral)."""
        handler = self.card_actions.get(submission.action)
        if handler is None:
            return False, None
        ctx = Context(
            services, submission.uuid, CARD_SUBMIT, submission=submission, dispatcher=self
        )
        await self._run(ctx, handler)
        return True, ctx.response

    async def _run(self, ctx: Context, handler: Handler) -> None:
        chain = handler
        for middleware in reversed(self.middlewares):
            chain = _bind(middleware, chain)
        try:
            await chain(ctx)
        except Ignored as why:
            log.debug("%s %s ignored: %s", ctx.kind, for_log(ctx.event_id), for_log(why))

    async def _handle_message(self, ctx: Context) -> None:
        message = ctx.message
        if message is None:
            raise Ignored("not a text message")
        text = message.text_without_mention_of(ctx.bot.extension_id)
        word, _, args = text.partition(" ")
        spec = self.command(word)
        limits = ctx.services.reply_limits
        person = f"{ctx.bot.account_id}:{message.creator_id}"
        first_try = ctx.attempt == 1  # a retry was counted the first time
        if spec is None:
            verdict = await limits.unknown_word(person) if first_try else Verdict.ANSWER
            if verdict is Verdict.SILENT:
                raise Ignored("unknown word from a person the bot is quiet with")
            notice = verdict is Verdict.NOTICE
            await ctx.reply(quiet_notice() if notice else self.unknown_command_reply(word))
            return
        verdict, wait_s = await limits.command(person) if first_try else (Verdict.ANSWER, 0.0)
        if verdict is Verdict.SILENT:
            raise Ignored("a person over their command quota")
        if verdict is Verdict.NOTICE:
            await ctx.reply(too_many_commands_notice(wait_s))
            return
        ctx.command = spec
        ctx.args = args.strip()
        await spec.handler(ctx)

    def unknown_command_reply(self, word: str) -> str:
        """What to say to a word that is no command: the closest command alone when it looks
        like a typo, else a pointer to **help** (a wall of help text for a typo buries the
        one word the person needed); the help itself when nothing was typed. The word is
        repeated quoted."""
        if not word:
            return self.help_text()  # nothing typed (a bare mention): what I can do
        shown = quote_for_chat(word)
        close = difflib.get_close_matches(word.lower(), list(self.commands), n=1, cutoff=0.6)
        if close:
            return f'I don\'t know "{shown}". Did you mean **{self.commands[close[0]].name}**?'
        return f'I don\'t know "{shown}". Say **help** to see what I can do.'

    def help_text(self) -> str:
        lines = ["Here is what I can do:"]
        for spec in self.command_specs():
            lines.append(f"- **{spec.usage}**: {spec.summary}")
        lines.append("\nSay **help <command>** for more about one of them.")
        return "\n".join(lines)


def _run_all(handlers: Sequence[Handler]) -> Handler:
    async def run(ctx: Context) -> None:
        for handler in handlers:
            await handler(ctx)

    return run


def _bind(middleware: Middleware, next_handler: Handler) -> Handler:
    async def bound(ctx: Context) -> None:
        await middleware(ctx, next_handler)

    return bound


# -- middleware -----------------------------------------------------------------------


async def resolve_install(ctx: Context, next_handler: Handler) -> None:
    """Which installed bot this event belongs to; events for no known install are dropped.

    Team-messaging and extension notifications carry the bot's extension id as `ownerId`;
    RingSense notifications belong to the account whose reader subscribed (`ownerId`); a card
    press names the bot that posted the card.
    """
    ctx.install = _install_of(ctx)
    if ctx.install is None and ctx.services.reload_installs is not None:
        # Another replica may have taken this install (or connection) a moment ago.
        await ctx.services.reload_installs()
        ctx.install = _install_of(ctx)
    if ctx.install is None:
        raise Ignored("no installed bot for this event")
    await next_handler(ctx)


def _install_of(ctx: Context) -> BotInstall | None:
    services = ctx.services
    if ctx.submission is not None:
        return services.install_for_bot(ctx.submission.bot_id) or (
            services.install_for_account(ctx.submission.user_account_id)
        )
    if ctx.notification is not None:
        if ctx.kind == events.RINGSENSE_INSIGHTS:
            # The account whose RingSense identity the notification came to: the service
            # user's own, or an account's connected reader. Anyone else: not ours.
            account_id = services.ringsense_account_of_subscriber(ctx.notification.owner_id)
            return services.install_for_account(account_id) if account_id else None
        return services.install_for_bot(ctx.notification.owner_id)
    return ctx.install  # neither: whatever the caller set


async def parse_chat_message(ctx: Context, next_handler: Handler) -> None:
    """Posts become commands: not the bot's own, in a direct chat or mentioning the bot."""
    if ctx.kind != events.POST_ADDED or ctx.notification is None:
        await next_handler(ctx)
        return
    message = ChatMessage.from_post(ctx.notification.body)
    if message is None:
        raise Ignored("not a text message")
    bot_id = ctx.bot.extension_id
    if message.creator_id == bot_id:
        raise Ignored("the bot's own post")
    if bot_id not in message.mentioned_ids:
        try:
            direct_chat = await ctx.services.is_direct_chat(ctx.bot, message.chat_id)
        except (RingCentralNotFound, RingCentralPermissionError) as err:
            raise Ignored(f"a message in a chat the bot cannot read ({err.error_code})") from None
        if not direct_chat:
            raise Ignored("a group message that does not mention the bot")
    ctx.message = message
    await next_handler(ctx)


async def confirm_message_author(ctx: Context, next_handler: Handler) -> None:
    """A chat message is acted on only once RingCentral confirms it: the post exists, in
    that chat, by that author. The Verification-Token alone proves nothing about who wrote
    what, and a forged message must neither change anything nor make the bot say anything
    (not even "I don't know that command"). One read per message people send the bot."""
    if ctx.message is not None:
        await require_confirmed_author(ctx)
    await next_handler(ctx)


async def load_actor_settings(ctx: Context, next_handler: Handler) -> None:
    actor = ctx.actor_id
    if actor is not None:
        ctx.settings = await ctx.services.storage.user_settings(actor)
    await next_handler(ctx)


async def answer_on_error(ctx: Context, next_handler: Handler) -> None:
    """A command or button press that fails gets an answer a person understands.

    Retryable RingCentral failures of events (not of people's requests) propagate, so the
    inbox worker retries them later.
    """
    asked_by_a_person = ctx.message is not None or ctx.submission is not None
    try:
        await next_handler(ctx)
    except Ignored:
        raise
    except RingCentralError as err:
        if not asked_by_a_person:
            raise
        if err.retryable and ctx.message is not None and not ctx.last_attempt:
            # The inbox will try again; say so once, so nobody is left wondering.
            if ctx.attempt == 1:
                await ctx.reply_interim(f"{describe_error(err)} I'll answer as soon as it works.")
            raise
        log.warning("%s failed: %s", ctx.kind, err)
        later = " Please try again later." if err.retryable else ""
        await _apologise(ctx, f"Sorry, that did not work. {describe_error(err)}{later}")
    except Exception:
        if not asked_by_a_person:
            raise
        log.exception("%s %r failed", ctx.kind, ctx.command.name if ctx.command else None)
        await _apologise(ctx, "Sorry, something went wrong on my side. It has been logged.")


async def _apologise(ctx: Context, text: str) -> None:
    if ctx.submission is not None:
        ctx.response = message_dialog(ctx.services.cards, "Something went wrong", text)
    else:
        await ctx.reply(text)


def default_middlewares() -> list[Middleware]:
    return [
        resolve_install,
        parse_chat_message,
        confirm_message_author,
        load_actor_settings,
        answer_on_error,
    ]
