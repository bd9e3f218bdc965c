"""The TCP connection under an HTTP response, for NDJSON streams that must not pile up.

A stream reader that stops reading must cost a bounded amount and not for long, as a
WebSocket spectator does: its kernel send buffer is capped (SO_SNDBUF), nothing more is
written while the transport holds more than a small backlog, a reader that stays behind
is dropped with a reset, and the stream counts as a spectator until the connection is gone.

Why uvicorn's internals: ASGI gives an HTTP app no handle on its connection, and uvicorn
puts none in the HTTP scope. The ``receive`` callable uvicorn passes to the app is a bound
method of its ``RequestResponseCycle``, which holds the ``transport``. :class:`ExposeConnection`,
the outermost middleware (before any that wraps ``receive``), is the one place that relies
on that, and offers the transport to routes as the ``grandmaster.connection`` scope
extension. Under another server the extension is absent and streams run without these
limits. The pin on uvicorn in pyproject.toml covers this module too, and
tests/app/test_stuck_clients.py fails if the extension stops appearing under uvicorn.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from app.ws_protocol import reset

CONNECTION_EXTENSION = "grandmaster.connection"
# How often a stream waiting for its reader looks at the transport's backlog again.
_POLL_S = 0.05


class ExposeConnection:
    """ASGI middleware: ``scope["extensions"]["grandmaster.connection"]`` under uvicorn.

    The value is ``{"transport": asyncio.Transport}``. Add it last (outermost).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Add the extension to HTTP scopes when the transport can be found."""
        if scope["type"] == "http":
            transport = getattr(getattr(receive, "__self__", None), "transport", None)
            # Duck-typed: uvloop's transports are not asyncio.Transport subclasses.
            if hasattr(transport, "get_write_buffer_limits"):
                scope.setdefault("extensions", {})[CONNECTION_EXTENSION] = {"transport": transport}
        await self.app(scope, receive, send)


class StreamConnection:
    """What a streaming response may do with its connection: cap, watch, reset, close."""

    __slots__ = ("_transport",)

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport

    @classmethod
    def from_scope(cls, connection: HTTPConnection) -> StreamConnection | None:
        """The connection of ``connection``'s request; None under servers without it."""
        extension: Any = connection.scope.get("extensions", {}).get(CONNECTION_EXTENSION)
        return None if extension is None else cls(extension["transport"])

    def limit_kernel_buffer(self, size: int) -> None:
        """Cap the socket's kernel send buffer (SO_SNDBUF) at about ``size`` bytes."""
        sock = self._transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)

    async def has_room(self, max_buffer: int, within_s: float) -> bool:
        """Wait until at most ``max_buffer`` bytes are unsent; False if not ``within_s``.

        The bound is also kept below the transport's low-water mark, so that the server's
        next write never waits for the reader (that wait would have no deadline).
        """
        low, _ = self._transport.get_write_buffer_limits()
        limit = min(max_buffer, low)
        if self._transport.get_write_buffer_size() <= limit:
            return True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within_s
        while loop.time() < deadline:
            await asyncio.sleep(_POLL_S)
            if self._transport.get_write_buffer_size() <= limit:
                return not self._transport.is_closing()
        return False

    async def reset(self) -> None:
        """Drop the connection now (TCP reset) and return once the server has seen it go."""
        # Mid-response, uvicorn's transport is closing only once the connection is lost.
        if not self._transport.is_closing():
            reset(self._transport)
        # The abort scheduled connection_lost with call_soon: a turn of the loop later the
        # server's protocol has run it, and its further sends are no-ops.
        await asyncio.sleep(0)
        await asyncio.sleep(0)
