"""The one helper for repeating others' text in chat, and the one for log lines."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.quoting import LOG_VALUE_MAX, for_log, plain_text, quote_for_chat

HOSTILE = [
    "![:Person](123)",
    "![:Team](456)",
    "[click](https://evil)",
    "**bold**",
    "`code`",
    "[ref]: https://evil",
    "![image](https://evil/pixel.png)",
    "<https://evil>",
    "!\\[:Person\\](123)",  # backslashes do not help either way
    "[nested [brackets]](https://evil)",
]
MARKUP = re.compile(r"!?\[[^\]]*\]\s*[(:]|\*\*|`")
BACK = str.maketrans({"\uff3b": "[", "\uff3d": "]", "\u2217": "*", "\u02cb": "`"})


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_is_shown_but_cannot_act(text: str) -> None:
    quoted = quote_for_chat(text)
    assert not MARKUP.search(quoted), quoted
    assert not set("[]*`") & set(quoted)
    assert quoted.translate(BACK) == text  # a person reads what was written


@given(st.text())
def test_no_text_survives_as_markup(text: str) -> None:
    quoted = quote_for_chat(text)
    assert not set("[]*`") & set(quoted)
    assert len(quoted) == len(text)


def test_fallback_text_is_plain() -> None:
    assert plain_text("Say **optout** to stop") == "Say optout to stop"
    assert plain_text("Call from [x](https://evil)") == "Call from \uff3bx\uff3d(https://evil)"


@pytest.mark.parametrize(
    "value",
    ["x\r\nERROR forged", "a\x00b", "\ud800", "tab\there", "\x1b[2J", "\u2028line"],
)
def test_a_log_value_stays_on_one_line(value: str) -> None:
    shown = for_log(value)
    assert "\n" not in shown and "\r" not in shown and "\x00" not in shown
    assert "\x1b" not in shown and "\u2028" not in shown
    shown.encode("utf-8")  # a lone surrogate is escaped, not passed on


def test_a_long_log_value_is_cut() -> None:
    shown = for_log("y" * 10_000)
    assert len(shown) < LOG_VALUE_MAX + 10 and shown.endswith("…")
