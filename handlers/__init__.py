"""What the bot does, one router per topic. `bot/` knows only this list."""

from __future__ import annotations

from bot.router import Router
from handlers import commands, digests


def all_routers() -> list[Router]:
    return [digests.router, commands.router]
