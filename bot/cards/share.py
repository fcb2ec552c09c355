"""Share after review: the "Share to…" button of a digest in a direct chat, that digest
(`render_direct_digest`), and the card that lists where it can go (`share.card.json.j2`).

A digest is shared only to a group chat or team where the bot and the sharer both are and
where everyone may see the call (bot/access.py: its owner, the colleagues on it and the
account's administrators, all confirmed as people of the call's account). A call with
people from outside the company is shared only after the sharer confirms.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final
from zoneinfo import ZoneInfo

from bot.cards.digest import DATA_CALL_KEY, DIGEST_TEMPLATE, digest_view
from bot.cards.formatting import UNTITLED_CALL, short_line
from bot.cards.render import CardRenderer, SubmitAction
from bot.ringsense import CallInsights

SHARE_TEMPLATE: Final = "share.card.json.j2"

ACTION_SHARE: Final = "digest.share"
"""'Share to…' on a digest in a direct chat; data: callKey."""
ACTION_SHARE_TO: Final = "digest.share.to"
"""A chat on the share card; data: callKey, chatId, and confirmed=yes once confirmed."""
DATA_CHAT_ID: Final = "chatId"
DATA_CONFIRMED: Final = "confirmed"
CONFIRMED: Final = "yes"


def share_button(call_key: str) -> SubmitAction:
    return SubmitAction("Share to…", ACTION_SHARE, {DATA_CALL_KEY: call_key})


def render_direct_digest(
    renderer: CardRenderer,
    insights: CallInsights,
    tz: ZoneInfo,
    sections: Sequence[str] | None,
    *,
    call_key: str,
    feedback: str | None = None,
) -> dict[str, Any]:
    """The digest for a person's own direct chat: the digest with its buttons, and
    "Share to…" after them; with `feedback` (`feedback_result`), what its reader thought."""
    view = digest_view(
        insights,
        tz,
        sections,
        actions=[share_button(call_key)],
        call_key=call_key,
        feedback=feedback,
    )
    return renderer.render(DIGEST_TEMPLATE, **view)


def share_view(
    insights: CallInsights,
    call_key: str,
    chats: Sequence[tuple[str, str]],
    *,
    notice: str | None = None,
    warning: str | None = None,
    confirm_chat: tuple[str, str] | None = None,
    skipped: int = 0,
) -> dict[str, Any]:
    """The values `share.card.json.j2` needs: the call's title, a button per chat
    `(chat id, name)`, an optional result line, and for a call with external people the
    question with its "Share anyway" button."""
    title = short_line(insights.title) or UNTITLED_CALL

    def to(chat_id: str, name: str) -> dict[str, Any]:
        data = {DATA_CALL_KEY: call_key, DATA_CHAT_ID: chat_id}
        return SubmitAction(name, ACTION_SHARE_TO, data).as_view()

    return {
        "title": title,
        "notice": notice,
        "warning": warning,
        "confirm": (
            SubmitAction(
                "Share anyway",
                ACTION_SHARE_TO,
                {DATA_CALL_KEY: call_key, DATA_CHAT_ID: confirm_chat[0], DATA_CONFIRMED: CONFIRMED},
            ).as_view()
            if confirm_chat
            else None
        ),
        "chats": [to(chat_id, name.strip() or f"Chat {chat_id}") for chat_id, name in chats],
        "empty_text": (
            "There is no group chat or team where we both are and everyone may see this "
            "call. Add me to one with the people who were on it."
        ),
        "skipped_text": (
            f"{skipped} other chat{'s' if skipped != 1 else ''} not listed: not everyone "
            "there may see this call."
            if skipped
            else None
        ),
        "fallback_text": f"Share {title}",
    }


def share_card(
    renderer: CardRenderer,
    insights: CallInsights,
    call_key: str,
    chats: Sequence[tuple[str, str]],
    **options: Any,
) -> dict[str, Any]:
    return renderer.render(SHARE_TEMPLATE, **share_view(insights, call_key, chats, **options))
