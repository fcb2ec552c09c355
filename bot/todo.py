"""Open next steps as to-do items: made from a call's insights, listed by `todo` and the
daily rollup, closed by their Done button (the card is `bot.cards.todo`).

Who an item is on: the colleague of the call's account who said it (RingSense's speaker of
the next step), else the call's owner, who follows up on what a customer promised or on
what nobody took. Items live as long as their call (retention, uninstall).
"""

from __future__ import annotations

from bot.ringsense import CallInsights


def next_step_assignments(insights: CallInsights) -> list[tuple[str, str, str | None]]:
    """`(assignee extension, text, owner name)` for each next step of the call, in order.

    The assignee is the speaker of the step when they are a colleague of the call's account
    (bot/access.py's rule: known to be of that account), else the call's owner. The same
    text twice counts once."""
    colleagues = insights.entitled_extension_ids()
    seen: set[str] = set()
    steps: list[tuple[str, str, str | None]] = []
    for step in insights.next_steps:
        text = step.text.strip()
        if not text or text in seen:
            continue
        seen.add(text)
        speaker = insights.speaker(step.speaker_id)
        extension = speaker.extension_id if speaker is not None else None
        assignee = extension if extension in colleagues else insights.owner_extension_id
        steps.append(
            (assignee or insights.owner_extension_id, text, insights.speaker_name(step.speaker_id))
        )
    return steps
