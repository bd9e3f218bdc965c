"""The receiving end of fan-out: one object per connected spectator.

A spectator takes already-serialised events and must never make the publisher wait.
:class:`DirectSpectator` writes a pre-encoded WebSocket frame straight into the
connection's transport (one ``transport.write`` per client, the cost floor) and, when
the client does not read and its buffer passes a limit, stops writing, marks itself
behind, and later either catches up with a fresh snapshot or is closed with 1013.
:class:`QueuedSpectator` serves NDJSON streams (and WebSockets on servers without the
direct path) with a bounded queue drained by the connection's own task; when the queue
is full it is closed rather than allowed to grow.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

from websockets.frames import Frame, Opcode


class Message:
    """One outgoing message, encoded once: JSON ``text`` and its WebSocket ``frame``."""

    __slots__ = ("_frame", "game", "seq", "text")

    def __init__(self, text: str, *, game: str, seq: int | None) -> None:
        self.text = text
        self.game = game
        self.seq = seq
        self._frame: bytes | None = None

    @property
    def frame(self) -> bytes:
        """The unmasked server-to-client text frame, built on first use and then shared."""
        if self._frame is None:
            self._frame = Frame(Opcode.TEXT, self.text.encode()).serialize(mask=False)
        return self._frame


class Spectator(Protocol):
    """What the hub needs of a subscriber."""

    games: set[str]
    sent: int
    skipped: int

    def deliver(self, message: Message) -> None:
        """Take one message now, without waiting; may mark itself behind or closed."""

    def close(self, code: int, reason: str) -> None:
        """Close the connection (1013 when behind, 1001 on shutdown)."""

    @property
    def is_closed(self) -> bool:
        """Whether the connection is gone; the hub drops closed spectators."""

    @property
    def is_behind(self) -> bool:
        """Whether messages were skipped and a fresh snapshot is owed."""

    def catch_up(self, now_s: float) -> bool:
        """If behind and writable again, reset via snapshots; False when hopelessly stuck."""


class DirectTransport(Protocol):
    """The minimal surface of the server's WebSocket connection the direct path uses."""

    def write_frame(self, frame: bytes) -> None:
        """Append an encoded frame to the transport (never blocks)."""

    def buffered_bytes(self) -> int:
        """Bytes accepted but not yet handed to the kernel."""

    def limit_kernel_buffer(self, size: int) -> None:
        """Cap the kernel's send buffer of the connection."""

    def close_with(self, code: int, reason: str) -> None:
        """Start the closing handshake and drop the connection if it never completes."""

    @property
    def is_open(self) -> bool:
        """Whether frames may still be written."""


SnapshotFor = Callable[[str], Message]


class DirectSpectator:
    """A WebSocket spectator written to synchronously from the publishing loop.

    ``max_buffer`` bounds what one spectator may hold in user-space memory: beyond it
    nothing more is written until it drains. A spectator behind for ``max_behind_s`` is
    closed with 1013.
    """

    __slots__ = (
        "_behind_since",
        "_snapshot",
        "_transport",
        "games",
        "max_behind_s",
        "max_buffer",
        "sent",
        "skipped",
        "tournament",
    )

    def __init__(
        self,
        transport: DirectTransport,
        snapshot: SnapshotFor,
        *,
        max_buffer: int = 16 * 1024,
        max_behind_s: float = 15.0,
    ) -> None:
        self._transport = transport
        self._snapshot = snapshot
        # On a tournament socket: the current tournament message (rounds, standings), owed
        # first when the spectator catches up, since skipped tournament messages carry no
        # seq to resume from.
        self.tournament: Callable[[], Message] | None = None
        self._behind_since: float | None = None
        self.games: set[str] = set()
        self.max_buffer = max_buffer
        self.max_behind_s = max_behind_s
        self.sent = 0
        self.skipped = 0

    def deliver(self, message: Message) -> None:
        """Write the shared frame, or skip it when the client is not keeping up."""
        if self._behind_since is not None or self._transport.buffered_bytes() > self.max_buffer:
            if self._behind_since is None:
                self._behind_since = asyncio.get_running_loop().time()
            self.skipped += 1
            return
        self._transport.write_frame(message.frame)
        self.sent += 1

    def catch_up(self, now_s: float) -> bool:
        """Resend the tournament (on a tournament socket) and each game's snapshot once the
        buffer drained; False when stuck too long."""
        if self._behind_since is None:
            return True
        if self._transport.buffered_bytes() <= self.max_buffer:
            self._behind_since = None
            if self.tournament is not None:
                self._transport.write_frame(self.tournament().frame)
                self.sent += 1
            for game in sorted(self.games):
                self._transport.write_frame(self._snapshot(game).frame)
                self.sent += 1
            return True
        return now_s - self._behind_since < self.max_behind_s

    def close(self, code: int, reason: str) -> None:
        """Close with ``code``."""
        self._transport.close_with(code, reason)

    @property
    def is_closed(self) -> bool:
        """Whether the socket can no longer be written."""
        return not self._transport.is_open

    @property
    def is_behind(self) -> bool:
        """Whether a snapshot is owed."""
        return self._behind_since is not None


class QueuedSpectator:
    """A spectator whose connection task drains a bounded queue (NDJSON streams).

    A full queue closes the spectator: it is never allowed to grow past ``max_queue``.
    A writer that can block in a send (ASGI's waits while the client does not read) must
    race it against :meth:`wait_closed`, so that the close takes effect while it is stuck.
    """

    __slots__ = ("_closed", "_closing", "close_code", "games", "queue", "sent", "skipped")

    def __init__(self, max_queue: int = 256) -> None:
        self.queue: asyncio.Queue[Message | None] = asyncio.Queue(max_queue)
        self.games: set[str] = set()
        self._closed = False
        self._closing = asyncio.Event()
        self.close_code: int | None = None
        self.sent = 0
        self.skipped = 0

    def deliver(self, message: Message) -> None:
        """Enqueue, or close when the reader is too far behind."""
        if self._closed:
            return
        try:
            self.queue.put_nowait(message)
            self.sent += 1
        except asyncio.QueueFull:
            self.skipped += 1
            self.close(1013, "too slow")

    def close(self, code: int, reason: str) -> None:
        """Stop; the draining task sees ``None`` (or finds the queue closed) and ends."""
        if self._closed:
            return
        self._closed = True
        self.close_code = code
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(None)
        self._closing.set()

    async def wait_closed(self) -> None:
        """Return once :meth:`close` was called (at once if it already was)."""
        await self._closing.wait()

    @property
    def is_closed(self) -> bool:
        """Whether the spectator was closed."""
        return self._closed

    @property
    def is_behind(self) -> bool:
        """Queued spectators never skip silently; they are closed instead."""
        return False

    def catch_up(self, now_s: float) -> bool:
        """Nothing to catch up."""
        return not self._closed
