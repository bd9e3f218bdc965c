"""uvicorn's HTTP/1.1 protocol, answering requests it cannot parse in the contract's format.

A request whose framing is broken (a malformed request line or header, an unknown HTTP
version, a bad ``Content-Length`` or chunk) never reaches the app: uvicorn's protocol
answers it itself, with ``400`` and ``text/plain`` "Invalid HTTP request received.". No
public setting changes that answer, so :class:`ContractHttpToolsProtocol` overrides
``send_400_response`` of uvicorn's httptools protocol (a private method; uvicorn is pinned
to the releases ``app/ws_protocol.py`` is tested with, and
``tests/app/test_http_protocol.py`` fails when the method is gone or no longer called)
to answer ``{"error": {"code": "bad_request", "message"}}``. The connection is closed
after it, as uvicorn does: the stream cannot be trusted past a framing error.
"""

from __future__ import annotations

import json

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class ContractHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol whose own 400s are in the contract's format."""

    def send_400_response(self, msg: str) -> None:
        """Answer a request that could not be parsed, then close the connection."""
        body = json.dumps(
            {"error": {"code": "bad_request", "message": f"malformed HTTP request: {msg}"}}
        ).encode()
        head = [b"HTTP/1.1 400 Bad Request\r\n"]
        for name, value in self.server_state.default_headers:
            head.extend([name, b": ", value, b"\r\n"])
        head.extend(
            [
                b"content-type: application/json\r\n",
                b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
                b"connection: close\r\n",
                b"\r\n",
            ]
        )
        self.transport.write(b"".join(head) + body)
        self.transport.close()
