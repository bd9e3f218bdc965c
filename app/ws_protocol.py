"""uvicorn's websockets-sansio protocol, extended with a non-blocking write path.

ASGI's ``send`` is a coroutine that waits while the transport is paused, so a spectator
that never reads would stall any loop awaiting it. This subclass offers the app, through
the ASGI ``extensions`` of the WebSocket scope, a :class:`DirectConnection`: write an
already-encoded frame now, read the buffered size, or close now.

A spectator's connection can also be *detached* from its ASGI session: the app hands
incoming messages and the close to a listener, and its handler returns while the
connection stays open. A suspended ASGI session costs about 170 Python objects and
30 KiB per connection (the middleware and routing coroutines, exit stacks, Starlette's
WebSocket); thousands of them make memory and full garbage collections grow with the
audience. Under another server the extension is absent and the app keeps the session,
with a bounded queue per spectator.
"""

from __future__ import annotations

import socket
from typing import Any, Protocol

from uvicorn._types import ASGISendEvent
from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request

DIRECT_EXTENSION = "grandmaster.direct"
# How long a closing handshake may wait for a peer that does not read before the
# connection is dropped; uvicorn's own close would wait for the buffer to drain forever.
ABORT_AFTER_S = 5.0


class Listener(Protocol):
    """Receives what a detached connection gets from its peer (on the event loop)."""

    def on_text(self, text: str) -> None:
        """A complete text message."""

    def on_binary(self, data: bytes) -> None:
        """A complete binary message, or text that is not UTF-8."""

    def on_closed(self) -> None:
        """The connection is gone; called once."""


class DirectConnection:
    """Synchronous access to one accepted WebSocket connection (see module docstring)."""

    __slots__ = ("_proto",)

    def __init__(self, proto: FanoutWebSocketProtocol) -> None:
        self._proto = proto

    @property
    def is_open(self) -> bool:
        """Whether the handshake completed and no close has started."""
        p = self._proto
        return (
            p.handshake_complete
            and not p.close_sent
            and not p.disconnected
            and not p.transport.is_closing()
        )

    def write_frame(self, frame: bytes) -> None:
        """Append an encoded frame to the transport; a closed connection ignores it."""
        if self.is_open:
            self._proto.transport.write(frame)

    def limit_kernel_buffer(self, size: int) -> None:
        """Cap the socket's kernel send buffer (SO_SNDBUF) at about ``size`` bytes.

        Without a cap, Linux lets each connection's send buffer grow to ``tcp_wmem``'s
        maximum (4 MiB by default): a thousand stuck spectators could pin gigabytes of
        kernel memory before the server ever notices that they stopped reading.
        """
        sock = self._proto.transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)

    def buffered_bytes(self) -> int:
        """Bytes the transport holds in user space."""
        return self._proto.transport.get_write_buffer_size()

    def detach(self, listener: Listener) -> None:
        """Hand the connection's input and close to ``listener``; the ASGI handler may return.

        Call after ``websocket.accept()``. uvicorn keeps answering pings and closes the
        connection on shutdown as before.
        """
        p = self._proto
        p.detached_to = listener
        # The handshake's request, response and scope are only needed until accept: a
        # detached spectator should hold as little as possible (there are thousands).
        p.request = p.response = None  # type: ignore[assignment]
        p.scope = {}  # type: ignore[typeddict-item]
        if p.read_paused:
            p.read_paused = False
            p.transport.resume_reading()
        if p.disconnected:
            p.detached_to = None
            listener.on_closed()

    def close_with(self, code: int, reason: str) -> None:
        """Send a close frame now and drop the connection if the peer never answers."""
        p = self._proto
        if not self.is_open:
            return
        p.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
        p.conn.send_close(code, reason)
        p.transport.write(b"".join(p.conn.data_to_send()))
        p.close_sent = True
        if p.read_paused:
            p.read_paused = False
            p.transport.resume_reading()
        p.close_timer = p.loop.call_later(ABORT_AFTER_S, p.transport.abort)


class FanoutWebSocketProtocol(WebSocketsSansIOProtocol):
    """Adds ``scope["extensions"]["grandmaster.direct"] = {"connection": DirectConnection}``."""

    detached_to: Listener | None = None

    def handle_connect(self, event: Request) -> None:
        """Build the scope as uvicorn does, then expose the direct path to the app."""
        super().handle_connect(event)
        scope: Any = getattr(self, "scope", None)
        if scope is not None:
            scope["extensions"][DIRECT_EXTENSION] = {"connection": DirectConnection(self)}

    async def send(self, message: ASGISendEvent) -> None:
        """As uvicorn's, but a finished denial response counts as a completed handshake.

        Without this, uvicorn logs "returned without completing handshake" after every
        correctly denied connection (unknown game, spectator cap, origin).
        """
        await super().send(message)
        if message["type"] == "websocket.http.response.body" and not message.get("more_body"):
            self.handshake_complete = True

    def send_receive_event_to_app(self) -> None:
        """Deliver a complete message: to the listener once detached, else to the ASGI app."""
        listener = self.detached_to
        if listener is None:
            super().send_receive_event_to_app()
            return
        data = self.frames[0] if len(self.frames) == 1 else b"".join(self.frames)
        self.frames = []
        if self.close_sent:
            return
        if self.curr_msg_data_type == "text":
            try:
                text = data.decode()
            except UnicodeDecodeError:
                listener.on_binary(data)
                return
            listener.on_text(text)
        else:
            listener.on_binary(data)

    def connection_lost(self, exc: Exception | None) -> None:
        """As uvicorn's, then tell a detached connection's listener."""
        super().connection_lost(exc)
        listener, self.detached_to = self.detached_to, None
        if listener is not None:
            listener.on_closed()

    async def run_asgi(self) -> None:
        """As uvicorn's, except that a detached connection outlives its ASGI handler."""
        try:
            result = await self.app(self.scope, self.receive, self.send)
        except ClientDisconnected:
            pass
        except BaseException:
            self.logger.exception("Exception in ASGI application\n")
            self.send_500_response()
        else:
            if not self.handshake_complete:
                self.logger.error("ASGI callable returned without completing handshake.")
                self.send_500_response()
            elif result is not None:
                self.logger.error("ASGI callable should return None, but returned '%s'.", result)
        if self.detached_to is not None:
            return
        if self.close_timer is None:
            self.transport.close()
