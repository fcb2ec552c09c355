"""Repeating what others wrote, safely: in chat posts and in log lines.

In chat. RingCentral renders markdown in text posts and (we must assume) in every text of a
card, and turns `![:Person](id)` / `![:Team](id)` into mentions that notify people and
`[text](url)` into links. Text the bot repeats from someone else (a command word, a chat
name, a call title, what was said on a call) must be shown, never acted on. Whether
RingCentral's markdown honours backslash escapes is UNCONFIRMED, so escaping is not relied
on: `quote_for_chat` replaces the characters the dangerous syntaxes are built from with
look-alikes that no markdown dialect parses (fullwidth brackets, the asterisk operator, a
modifier grave). Whatever the renderer does with them, no bracket sequence, emphasis or
code span can form, and a person still reads the text as written. Invisible separators
were not chosen because some clients strip them, which would rebuild the syntax.

In logs. Anything a caller controls goes through `for_log` before it is logged, so CR, LF
and other control characters cannot start a forged log line; the value is shown the way
`repr` shows it, cut to a sane length.
"""

from __future__ import annotations

import re
from typing import Final

# Each character markdown builds links, mentions, emphasis or code from, and its look-alike.
_LOOK_ALIKES: Final = str.maketrans(
    {
        "[": "\uff3b",  # FULLWIDTH LEFT SQUARE BRACKET
        "]": "\uff3d",  # FULLWIDTH RIGHT SQUARE BRACKET
        "*": "\u2217",  # ASTERISK OPERATOR
        "`": "\u02cb",  # MODIFIER LETTER GRAVE ACCENT
    }
)
_BOT_EMPHASIS: Final = re.compile(r"\*\*(.+?)\*\*")
LOG_VALUE_MAX: Final = 200


def quote_for_chat(text: str) -> str:
    """Someone else's text, made safe to repeat in a post or card: mentions, links,
    emphasis and code spans in it are shown as written and never take effect."""
    return text.translate(_LOOK_ALIKES)


def plain_text(text: str) -> str:
    """A card's `fallbackText` (what mobile notifications show): the bot's own `**bold**`
    dropped and everything else quoted, so nothing in it can be read as markup."""
    return quote_for_chat(_BOT_EMPHASIS.sub(r"\1", text))


def for_log(value: object, limit: int = LOG_VALUE_MAX) -> str:
    """A caller-supplied value for a log line: `repr`-style escapes (so CR, LF, NUL and
    lone surrogates are shown as `\\r`, `\\n`, `\\x00`, `\\ud800`), at most `limit`
    characters of the value."""
    text = value if isinstance(value, str) else str(value)
    shown = repr(text[:limit])
    return shown + "…" if len(text) > limit else shown
