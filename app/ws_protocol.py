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

Why uvicorn's internals: its public interface is ASGI, which suffices for the handshake,
denials and everything before ``accept`` (they go through ASGI here too) but has no way to
write without waiting, to read what a connection holds buffered, to cap its kernel buffer,
to drop a peer that never reads, or to keep a connection without a live handler coroutine.
So this module subclasses uvicorn's private ``WebSocketsSansIOProtocol``: it overrides
``connection_made``, ``handle_connect``, ``send``, ``send_receive_event_to_app``,
``connection_lost`` and ``run_asgi`` and reads or resets the attributes listed in
``_NEEDS_ATTRIBUTES`` below.
Tested against uvicorn 0.52.1 to 0.54.0 and websockets 14.0 to 17.4, the range
pyproject.toml allows; uvicorn 0.52.0 and older lack ``disconnected`` and ``close_timer``.
On import the installed uvicorn is checked for everything listed (tests/app/test_ws_protocol.py
does the same, naming what is missing); when something is, :data:`UNSUPPORTED_REASON` says
what, ``app.server.uvicorn_config`` serves with uvicorn's stock protocol and spectators use
the bounded-queue fallback.
"""

from __future__ import annotations

import dis
import inspect
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from websockets.protocol import State

if TYPE_CHECKING:
    from uvicorn._types import ASGISendEvent
    from uvicorn.protocols.utils import ClientDisconnected
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
    from websockets.http11 import Request

    _IMPORT_ERROR: str | None
else:
    try:
        from uvicorn.protocols.utils import ClientDisconnected
        from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
    except ImportError as exc:
        _IMPORT_ERROR = f"cannot import uvicorn's websockets-sansio protocol ({exc})"

        class ClientDisconnected(Exception):
            """Stand-in: keeps this module importable; never raised then."""

        class WebSocketsSansIOProtocol:
            """Stand-in: keeps this module importable; the subclass below is never used then."""

    else:
        _IMPORT_ERROR = None

# What this module relies on in uvicorn's WebSocketsSansIOProtocol (see the docstring).
# Attributes uvicorn must set (in __init__ or handle_connect), read or reset below:
_NEEDS_ATTRIBUTES = frozenset(
    {
        "app",
        "close_sent",
        "close_timer",
        "conn",
        "curr_msg_data_type",
        "disconnected",
        "frames",
        "handshake_complete",
        "logger",
        "loop",
        "queue",
        "read_paused",
        "request",
        "response",
        "scope",
        "transport",
    }
)
# Methods overridden or called below: their parameters, and whether they are coroutines.
_NEEDS_METHODS: dict[str, tuple[tuple[str, ...], bool]] = {
    "connection_lost": (("self", "exc"), False),
    "connection_made": (("self", "transport"), False),
    "handle_connect": (("self", "event"), False),
    "receive": (("self",), True),
    "run_asgi": (("self",), True),
    "send": (("self", "message"), True),
    "send_500_response": (("self",), False),
    "send_receive_event_to_app": (("self",), False),
}
# The hooks: uvicorn's methods that must still call (or use) what is overridden or read.
_NEEDS_REFERENCES: dict[str, tuple[str, ...]] = {
    "connection_lost": ("close_timer", "disconnected"),
    "handle_bytes": ("send_receive_event_to_app",),
    "handle_connect": ("run_asgi", "scope"),
    "handle_cont": ("send_receive_event_to_app",),
    "handle_text": ("send_receive_event_to_app",),
}


def missing_internals(
    base: type,
    *,
    attributes: frozenset[str] = _NEEDS_ATTRIBUTES,
    methods: dict[str, tuple[tuple[str, ...], bool]] | None = None,
    references: dict[str, tuple[str, ...]] | None = None,
) -> list[str]:
    """What this module needs of uvicorn's protocol class ``base`` and does not find there.

    Empty when ``base`` has everything; otherwise one entry per missing or changed
    attribute, method or hook, by name. Inspects the class and its bytecode only.
    ``attributes``, ``methods`` and ``references`` default to this module's needs;
    app/http_protocol.py passes its own for uvicorn's HTTP protocol.
    """
    needed_methods = _NEEDS_METHODS if methods is None else methods
    needed_references = _NEEDS_REFERENCES if references is None else references
    members = dict(inspect.getmembers(base, inspect.isfunction))
    assigned = {
        instruction.argval
        for method in members.values()
        for instruction in dis.get_instructions(method)
        if instruction.opname == "STORE_ATTR"
    }
    missing = [f"attribute {name!r} (never set)" for name in sorted(attributes - assigned)]
    for name, (params, is_coroutine) in needed_methods.items():
        method = members.get(name)
        if method is None:
            missing.append(f"method {name}()")
        elif (now := tuple(inspect.signature(method).parameters)) != params:
            missing.append(f"method {name}({', '.join(params)}) (now ({', '.join(now)}))")
        elif inspect.iscoroutinefunction(method) != is_coroutine:
            missing.append(f"method {name}() as {'async' if is_coroutine else 'sync'} def")
    for caller, names in needed_references.items():
        method = members.get(caller)
        used = set(method.__code__.co_names) if method is not None else set()
        missing.extend(f"{caller}() using {name}" for name in names if name not in used)
    return missing


def _unsupported_reason() -> str | None:
    if _IMPORT_ERROR is not None:
        return _IMPORT_ERROR
    missing = missing_internals(WebSocketsSansIOProtocol)
    if not missing:
        return None
    return "uvicorn's WebSocketsSansIOProtocol lacks " + "; ".join(missing)


#: Why the installed uvicorn cannot run :class:`FanoutWebSocketProtocol`; None when it can.
UNSUPPORTED_REASON = _unsupported_reason()
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
        """Whether the handshake completed and no close has started (by either side)."""
        p = self._proto
        return (
            p.handshake_complete
            and not p.close_sent
            and not p.disconnected
            and not p.transport.is_closing()
            # A client's close frame read in the same packet as a message before it has
            # already moved the connection to CLOSING (websockets answered it): neither a
            # data frame nor a close of ours may follow (send_close would raise).
            and p.conn.state is State.OPEN
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
        # uvicorn closes once the peer answers (and cancels this); abort() resets.
        p.close_timer = p.loop.call_later(ABORT_AFTER_S, p.transport.abort)


# struct linger {l_onoff = 1, l_linger = 0}: closing the socket then resets the connection
# and the kernel frees its unsent data at once (l_onoff only has to be non-zero, so these
# bytes mean the same in either byte order).
_LINGER_RESET = bytes((1, 0, 0, 0, 0, 0, 0, 0))


def reset(transport: Any) -> None:
    """Abort ``transport`` with a TCP reset, so the kernel discards its unsent data too.

    A plain abort closes the socket, but the kernel keeps sending what it holds to a peer
    that does not read for minutes more; after a reset nothing of the connection is left.
    Call only before the connection is lost: afterwards its descriptor number may already
    belong to another connection.
    """
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    transport.abort()


class _BoundedCloseTransport:
    """The transport as the protocol sees it: every ``close()`` ends within ABORT_AFTER_S.

    uvicorn closes the transport from many places (keepalive ping timeout, the closing
    handshake, shutdown, parse errors, the end of the handler), and a plain close waits
    for the write buffer to drain: for a peer that stopped reading, forever, holding the
    socket and its kernel buffers outside any spectator count. Wrapping the transport puts
    all of those closes, and any uvicorn adds later, on this one path.
    """

    __slots__ = ("_abort_armed", "_proto", "_transport")

    def __init__(self, transport: Any, proto: FanoutWebSocketProtocol) -> None:
        self._transport = transport
        self._proto = proto
        self._abort_armed = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

    def close(self) -> None:
        """Close after the buffer drains, or abort if the connection is still there later."""
        self._transport.close()
        if not self._abort_armed and not self._proto.disconnected:
            self._abort_armed = True
            self._proto.loop.call_later(ABORT_AFTER_S, self._abort_if_open)

    def abort(self) -> None:
        """Drop the connection now, with a reset (see :func:`reset`)."""
        reset(self._transport)

    def _abort_if_open(self) -> None:
        if not self._proto.disconnected:
            self.abort()


class FanoutWebSocketProtocol(WebSocketsSansIOProtocol):
    """Adds ``scope["extensions"]["grandmaster.direct"] = {"connection": DirectConnection}``.

    Every close of the connection, uvicorn's own included, drops it within
    :data:`ABORT_AFTER_S` (see :class:`_BoundedCloseTransport`).
    """

    detached_to: Listener | None = None
    # Called once when the connection is gone: gives its places under the connection caps
    # back (set by app/http_protocol.py when it hands the upgraded connection over).
    on_lost: Callable[[], None] | None = None

    def connection_made(self, transport: Any) -> None:
        """As uvicorn's, with the transport wrapped so that every close is bounded."""
        bounded: Any = _BoundedCloseTransport(transport, self)
        super().connection_made(bounded)

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
        """As uvicorn's, then tell a detached connection's listener.

        Only now is the connection gone: the listener releases its place under the
        spectator cap here, not when the close started.
        """
        super().connection_lost(exc)
        on_lost, self.on_lost = self.on_lost, None
        if on_lost is not None:
            on_lost()
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
