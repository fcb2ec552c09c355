"""RingCentral's batch answer: `207 Multi-Status` with a multipart/mixed body whose first
part lists each resource's status and whose other parts are the resources (or errors)."""

from __future__ import annotations

import json
import secrets
from http import HTTPStatus
from typing import Any

from aiohttp import web


def multi_status(parts: list[tuple[str, int, dict[str, Any]]]) -> web.Response:
    """`parts` are (href, status, body) for each requested id, in request order."""
    boundary = f"Boundary_{secrets.randbelow(10**6)}_{secrets.randbelow(10**9)}"
    summary = {
        "response": [
            {"href": href, "status": status, "responseDescription": HTTPStatus(status).phrase}
            for href, status, _ in parts
        ]
    }
    chunks = [summary, *(body for _, _, body in parts)]
    text = "".join(
        f"--{boundary}\r\nContent-Type: application/json\r\n\r\n{json.dumps(chunk)}\r\n"
        for chunk in chunks
    )
    text += f"--{boundary}--\r\n"
    response = web.Response(status=207, body=text.encode())
    response.headers["Content-Type"] = f"multipart/mixed; boundary={boundary}"
    return response
