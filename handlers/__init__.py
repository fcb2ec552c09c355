"""What the bot does, one router per topic. `bot/` knows only this list."""

from __future__ import annotations

from bot.router import Router
from handlers import (
    ai,
    calls,
    commands,
    connect,
    digests,
    find,
    lifecycle,
    ringcx,
    settings,
    share,
    todo,
    upkeep,
)


def all_routers() -> list[Router]:
    return [
        digests.router,
        lifecycle.router,
        commands.router,
        calls.router,
        connect.router,
        settings.router,
        upkeep.router,
        ai.router,
        ringcx.router,
        todo.router,
        find.router,
        share.router,
    ]
