"""Short notices and the dialogs that answer a button press."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from bot.cards.digest import FEEDBACK_VERDICTS, VERDICT_HELPFUL, VERDICT_NOT_HELPFUL
from bot.cards.formatting import short_line
from bot.cards.render import CardError, CardRenderer

NOTICE_TEMPLATE: Final = "notice.card.json.j2"


FEEDBACK_TITLE: Final = "Thanks for your feedback"
FEEDBACK_TEXTS: Final[Mapping[str, str]] = {
    VERDICT_HELPFUL: "Glad the digest helped. Thanks for letting us know.",
    VERDICT_NOT_HELPFUL: "Sorry it missed the mark. Thanks for telling us; it helps us improve.",
}


def notice_view(text: str) -> dict[str, Any]:
    """The values `notice.card.json.j2` needs: one short text, shown literally."""
    if not text.strip():
        raise CardError("a notice needs some text")
    return {"text": text, "fallback_text": short_line(text)}


def message_dialog(renderer: CardRenderer, title: str, text: str) -> dict[str, Any]:
    """A RingCentral dialog response (the answer to a button_submit) with a short notice:
    `{"type": "dialog", "dialog": {"title", "size": "small", "card": <AdaptiveCard>}}`."""
    card = renderer.render(NOTICE_TEMPLATE, **notice_view(text))
    return {"type": "dialog", "dialog": {"title": title, "size": "small", "card": card}}


def feedback_dialog(renderer: CardRenderer, verdict: str) -> dict[str, Any]:
    """The dialog that thanks someone for pressing "Helpful" or "Not helpful"."""
    if verdict not in FEEDBACK_TEXTS:
        raise ValueError(f"verdict must be one of {FEEDBACK_VERDICTS}, got {verdict!r}")
    return message_dialog(renderer, FEEDBACK_TITLE, FEEDBACK_TEXTS[verdict])
