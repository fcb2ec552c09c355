"""The to-do card (`todo.card.json.j2`): open next steps, each with its call and a Done
button, as `todo`, `todo all` and the daily rollup show them (the rollup with the day's
calls first). Which items exist and whose they are is `bot.todo`'s."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final
from zoneinfo import ZoneInfo

from bot.cards.formatting import UNTITLED_CALL, format_start_time, short_line
from bot.cards.render import CardRenderer, SubmitAction, fitting_card

if TYPE_CHECKING:
    from bot.storage import NextStepItem

TODO_TEMPLATE: Final = "todo.card.json.j2"

ACTION_TODO_DONE: Final = "todo.done"
"""The Done button of an item; data: the item id and which list the card shows."""
DATA_ITEM: Final = "item"
DATA_LIST: Final = "list"
DATA_DAY: Final = "day"
"""On a rollup's Done: the day the rollup is of, so the card is redrawn as that day's."""
LIST_MINE: Final = "mine"
LIST_ALL: Final = "all"
LIST_ROLLUP: Final = "rollup"

MAX_ITEMS: Final = 25
"""Items on one card: enough for a day's work. Wordy items are shown fewer at a time
(`fitting_card`), so the card stays inside RingCentral's size limit."""

NO_OPEN_ITEMS: Final = "No open next steps. Nice work."


def todo_view(
    items: Sequence[NextStepItem],
    tz: ZoneInfo,
    *,
    heading: str,
    list_name: str,
    total: int | None = None,
    show_owner: bool = False,
    notice: str | None = None,
    calls: Sequence[str] = (),
    calls_heading: str | None = None,
    day: str | None = None,
) -> dict[str, Any]:
    """The values `todo.card.json.j2` needs: a heading, an optional notice ("Marked done:
    …"), an optional list of call lines (the daily rollup's), then one row per item with
    its call, its text, its owner when asked, and a Done button; a line when there are more
    than shown."""
    rows = []
    for item in items:
        call_line = " · ".join(
            part
            for part in (short_line(item.call_title) or UNTITLED_CALL, _start(item.call_start, tz))
            if part
        )
        rows.append(
            {
                "call": call_line,
                "text": item.text,
                "owner": (item.owner_name or "") if show_owner else "",
                "done": SubmitAction(
                    "Done",
                    ACTION_TODO_DONE,
                    {
                        DATA_ITEM: str(item.item_id),
                        DATA_LIST: list_name,
                        **({DATA_DAY: day} if day else {}),
                    },
                ).as_view(),
            }
        )
    hidden = (total if total is not None else len(items)) - len(items)
    return {
        "heading": heading,
        "notice": notice,
        "calls_heading": calls_heading,
        "calls": list(calls),
        "items": rows,
        "empty_text": NO_OPEN_ITEMS,
        "more_text": f"And {hidden} more: mark some done to see them." if hidden > 0 else None,
        "fallback_text": f"{heading}: {len(rows) + max(hidden, 0)} open",
    }


def todo_card(
    renderer: CardRenderer,
    items: Sequence[NextStepItem],
    tz: ZoneInfo,
    *,
    total: int | None = None,
    **options: Any,
) -> dict[str, Any]:
    """The card with as many of `items` as fit RingCentral's card size (at least one); the
    rest are counted in its "And N more" line."""
    everything = total if total is not None else len(items)

    def render(shown: int) -> dict[str, Any]:
        return renderer.render(
            TODO_TEMPLATE, **todo_view(items[:shown], tz, total=everything, **options)
        )

    return fitting_card(render, len(items))


def done_notice(item: NextStepItem) -> str:
    """The line a list shows after a Done: which item was closed, in one short line."""
    return f"Marked done: {short_line(item.text)}"


def _start(stored: str | None, tz: ZoneInfo) -> str | None:
    if not stored:
        return None
    try:
        moment = datetime.fromisoformat(stored.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return format_start_time(moment, tz)
