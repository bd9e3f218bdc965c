"""Requests uvicorn cannot parse are answered in the contract's format (app/http_protocol.py)."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.conftest import LiveServer

MALFORMED = [
    pytest.param(b"GARBAGE\r\n\r\n", id="no request line"),
    pytest.param(b"GET /api/games HTTP/9.9\r\nHost: x\r\n\r\n", id="unknown version"),
    pytest.param(b"GET /api/games HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", id="bad header"),
    pytest.param(b"GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n", id="control byte in target"),
    pytest.param(
        b"POST /api/games HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        id="bad content-length",
    ),
    pytest.param(
        b"POST /api/games HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n",
        id="bad chunk",
    ),
]


@pytest.mark.parametrize("raw", MALFORMED)
async def test_a_malformed_request_is_400_bad_request_in_json(live: LiveServer, raw: bytes) -> None:
    """A request whose HTTP framing is broken gets 400 with the contract's error body, and the connection is closed."""
    port = int(live.url.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(raw)
        await writer.drain()
        # The server closes the connection after the answer: read to the end.
        answer = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "HTTP/1.1 400 Bad Request"
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    assert headers["content-type"] == "application/json"
    assert headers["connection"] == "close"
    assert int(headers["content-length"]) == len(body)
    error = json.loads(body)["error"]
    assert error["code"] == "bad_request" and error["message"].startswith("malformed HTTP")
    # The server still serves others.
    assert (await live.client.get("/healthz")).status_code == 200
