"""JSON in and out of the sandbox with orjson, reading and writing what the standard
library did.

A simulated call moves its transcript (about 40 KB of JSON at 200 utterances, 300 KB at
1,500) through the sandbox four times: the control request that starts it, the webhook
notification, the control answer that reports the delivery, and the bot's REST read of the
record. With the standard library's encoder and decoder that was most of the sandbox's CPU
per call once cards were checked cheaply; orjson does the same work several times faster.

Nothing the sandbox accepts or answers changes in meaning: a body orjson will not read
(NaN, integers beyond 64 bits, lone surrogates) is read by the standard library as before,
and a value orjson will not write (integers beyond 64 bits) is written by it. Output is
compact and UTF-8 (no `\\uXXXX` escapes), which any JSON reader takes as the same values.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web

_OPTIONS = orjson.OPT_NON_STR_KEYS


def dumps(value: Any) -> bytes:
    """`value` as compact UTF-8 JSON."""
    try:
        return orjson.dumps(value, option=_OPTIONS)
    except orjson.JSONEncodeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def loads(raw: bytes | str) -> Any:
    """The JSON value in `raw`; raises what `json.loads` raises for what it cannot read
    (`json.JSONDecodeError`, `UnicodeDecodeError`), both `ValueError`s."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw)


def json_response(
    body: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """What `web.json_response` answers (`application/json; charset=utf-8`), encoded once
    by orjson."""
    return web.Response(
        body=dumps(body),
        status=status,
        headers=headers,
        content_type="application/json",
        charset="utf-8",
    )
