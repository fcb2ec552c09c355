"""Dispatch: routers of handlers, the context they receive, and the middleware chain.

Handlers are plain `async def h(ctx: Context) -> None` functions registered on a
per-module `Router` by event kind, command word or card action id. Everything that
applies to many handlers (ignore the bot's own posts, which messages are commands, load
the author's settings, turn failures into a reply) is middleware here, not handler code.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot import events
from bot.events import ChatMessage, Notification
from bot.services import Services
from bot.settings import UserSettings

log = logging.getLogger(__name__)

Handler = Callable[["Context"], Awaitable[None]]
Middleware = Callable[["Context", Handler], Awaitable[None]]


class Ignored(Exception):
    """Raised by middleware to stop a notification that needs no handling (e.g. own posts)."""


@dataclass(frozen=True)
class CommandSpec:
    name: str
    handler: Handler
    summary: str
    usage: str
    aliases: tuple[str, ...] = ()


@dataclass
class Context:
    """What a handler gets: the services, the notification, and for commands the message."""

    services: Services
    notification: Notification
    message: ChatMessage | None = None
    command: CommandSpec | None = None
    args: str = ""
    settings: UserSettings | None = None
    dispatcher: Dispatcher | None = None
    _replies: int = field(default=0, repr=False)

    @property
    def kind(self) -> str:
        return self.notification.kind

    async def reply(self, text: str) -> None:
        """Answer in the chat the message came from (queued in the outbox, sent once)."""
        if self.message is None:
            raise RuntimeError("reply() needs a chat message to answer")
        self._replies += 1
        await self.services.storage.enqueue(
            f"reply:{self.notification.uuid}:{self._replies}",
            {"kind": "chat", "chatId": self.message.chat_id},
            {"kind": "text", "text": text},
        )
        self.services.wake_outbox()

    async def send_card(
        self,
        destination: Mapping[str, str],
        card: Mapping[str, Any],
        *,
        card_key: str | None = None,
    ) -> None:
        """Queue a card for a destination. With `card_key`, a card already posted for that key
        in that destination is updated in place instead of a second one being posted."""
        self._replies += 1
        await self.services.storage.enqueue(
            f"card:{self.notification.uuid}:{self._replies}",
            destination,
            {"kind": "card", "card": dict(card)},
            card_key=card_key,
        )
        self.services.wake_outbox()


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
        self, name: str, *, summary: str, usage: str = "", aliases: Sequence[str] = ()
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            spec = CommandSpec(name, handler, summary, usage or name, tuple(aliases))
            for word in (name, *aliases):
                self.commands[word.lower()] = spec
            return handler

        return register

    def card_action(self, action_id: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.card_actions[action_id] = handler
            return handler

        return register


class Dispatcher:
    """Routes a stored notification to its handler through the middleware chain."""

    def __init__(self, routers: Iterable[Router], middlewares: Sequence[Middleware] = ()) -> None:
        self.routers = list(routers)
        self.middlewares = list(middlewares) or default_middlewares()
        self.event_handlers: dict[str, list[Handler]] = {}
        self.commands: dict[str, CommandSpec] = {}
        for router in self.routers:
            for kind, handlers in router.event_handlers.items():
                self.event_handlers.setdefault(kind, []).extend(handlers)
            for word, spec in router.commands.items():
                if word in self.commands and self.commands[word] is not spec:
                    raise ValueError(f"command word {word!r} is registered twice")
                self.commands[word] = spec

    def command_specs(self) -> list[CommandSpec]:
        """Each command once, in registration order."""
        seen: dict[str, CommandSpec] = {}
        for spec in self.commands.values():
            seen.setdefault(spec.name, spec)
        return list(seen.values())

    async def dispatch(self, services: Services, notification: Notification) -> bool:
        """Handle one notification; False when nothing was registered for it."""
        ctx = Context(services, notification, dispatcher=self)
        if notification.kind == events.POST_ADDED:
            handler: Handler = self._handle_message
        else:
            handlers = self.event_handlers.get(notification.kind)
            if not handlers:
                return False
            handler = _run_all(handlers)
        chain = handler
        for middleware in reversed(self.middlewares):
            chain = _bind(middleware, chain)
        try:
            await chain(ctx)
        except Ignored as why:
            log.debug("notification %s ignored: %s", notification.uuid, why)
        return True

    async def _handle_message(self, ctx: Context) -> None:
        message = ctx.message
        if message is None:
            raise Ignored("not a text message")
        bot_id = ctx.services.bot_extension_id
        text = message.text_without_mention_of(bot_id)
        word, _, args = text.partition(" ")
        spec = self.commands.get(word.lower())
        if spec is None:
            await ctx.reply(self.unknown_command_reply(word))
            return
        ctx.command = spec
        ctx.args = args.strip()
        await spec.handler(ctx)

    def unknown_command_reply(self, word: str) -> str:
        lines: list[str] = []
        if word:
            close = difflib.get_close_matches(word.lower(), list(self.commands), n=1, cutoff=0.6)
            if close:
                lines.append(f'I don\'t know "{word}". Did you mean **{close[0]}**?')
            else:
                lines.append(f'I don\'t know "{word}".')
        lines.append(self.help_text())
        return "\n\n".join(lines)

    def help_text(self) -> str:
        lines = ["Here is what I can do:"]
        for spec in self.command_specs():
            lines.append(f"- **{spec.usage}**: {spec.summary}")
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


async def parse_chat_message(ctx: Context, next_handler: Handler) -> None:
    """Posts become commands: not the bot's own, in a direct chat or mentioning the bot."""
    if ctx.kind != events.POST_ADDED:
        await next_handler(ctx)
        return
    message = ChatMessage.from_post(ctx.notification.body)
    if message is None:
        raise Ignored("not a text message")
    bot_id = ctx.services.bot_extension_id
    if message.creator_id == bot_id or message.creator_id == ctx.notification.owner_id:
        raise Ignored("the bot's own post")
    if bot_id not in message.mentioned_ids and not await ctx.services.is_direct_chat(
        message.chat_id
    ):
        raise Ignored("a group message that does not mention the bot")
    ctx.message = message
    await next_handler(ctx)


async def load_author_settings(ctx: Context, next_handler: Handler) -> None:
    if ctx.message is not None:
        ctx.settings = await ctx.services.storage.user_settings(ctx.message.creator_id)
    await next_handler(ctx)


async def reply_on_error(ctx: Context, next_handler: Handler) -> None:
    """A command that fails gets an answer a person understands; the error is logged."""
    from bot.rc import RingCentralError, describe_error

    try:
        await next_handler(ctx)
    except Ignored:
        raise
    except RingCentralError as err:
        if ctx.message is None or err.retryable:
            raise
        log.warning("command failed: %s", err)
        await ctx.reply(f"Sorry, that did not work. {describe_error(err)}")
    except Exception:
        if ctx.message is None:
            raise
        log.exception("command %r failed", ctx.command.name if ctx.command else None)
        await ctx.reply("Sorry, something went wrong on my side. The team has been told.")


def default_middlewares() -> list[Middleware]:
    return [parse_chat_message, load_author_settings, reply_on_error]
