"""Request limits: larger bodies are refused with 413 before they are buffered,
anonymous requests are rate-limited per client address, and served a few at a time."""

from __future__ import annotations

import asyncio
import re
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.admission import address_key
from app.auth import Tokens
from app.errors import error_response_at
from app.ratelimit import RateLimiter
from app.stream_connection import CONNECTION_EXTENSION

_KNOWN_BEARER = "gm.known_bearer"
#: Where :class:`AnonymousTurns` leaves itself in the scope of a request it governs, so that
#: the connection (app/http_protocol.py) can park with it once the request is answered.
TURNS_SCOPE_KEY = "gm.anonymous_turns"


class Parkable(Protocol):
    """A connection that stopped reading until its turn to send another request comes."""

    def resume_parked(self) -> bool:
        """Read again; False when the connection closed meanwhile."""

    def mark_known_client(self) -> None:
        """A request on it carries a token the server knows: it never parks from now on."""


def has_known_token(scope: Scope) -> bool:
    """:func:`_has_known_token`, worked out once per request (both anonymous limits ask)."""
    known = scope.get(_KNOWN_BEARER)
    if known is None:
        known = scope[_KNOWN_BEARER] = _has_known_token(scope)
    return bool(known)


def _has_known_token(scope: Scope) -> bool:
    """Whether the request carries a bearer token the server knows (in memory).

    Only such requests skip the anonymous limits: any other ``Authorization`` header (made
    up, malformed, or a player's token of a game that left memory, which the route looks
    up in the store) counts as anonymous, so that the store lookup it costs is rate-limited
    and runs in a turn. Costs a SHA-256 and a few dict lookups.
    """
    header = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            header = value
            break
    if header is None:
        return False
    scheme, _, token = header.decode("latin-1").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return False
    app = scope.get("app")
    tokens: Tokens | None = getattr(getattr(app, "state", None), "tokens", None)
    return tokens is not None and tokens.resolve(token) is not None


class BodyLimit:
    """ASGI middleware: 413 ``too_large`` for a body over ``max_bytes``.

    A declared ``Content-Length`` over the limit is refused at once; a chunked body is
    counted as it arrives and refused when it crosses the limit.
    """

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        *,
        large_bytes: int | None = None,
        large_paths: re.Pattern[str] | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        # Routes that take documents rather than commands (a round's PGN) get their own cap.
        self.large_bytes = large_bytes or max_bytes
        self.large_paths = large_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Wrap ``receive`` of HTTP requests; pass everything else through."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes
        if self.large_paths is not None and self.large_paths.fullmatch(scope["path"]):
            limit = self.large_bytes
        await self._limited(scope, receive, send, limit)

    async def _limited(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > limit:
                    refusal = error_response_at(
                        scope["path"],
                        413,
                        "too_large",
                        f"the body is over {limit} bytes",
                        {"Connection": "close"},
                    )
                    await refusal(scope, receive, send)
                    return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise HTTPException(413, f"the body is over {limit} bytes")
            return message

        await self.app(scope, limited_receive, send)


class AnonymousRateLimit:
    """ASGI middleware: requests without a known bearer token, per client address, at most
    ``rate`` a second (bursts of ``burst``); more get 429 ``rate_limited`` with
    ``Retry-After``, on the API and lichess routes only. ``rate`` 0 switches it off.
    WebSocket handshakes are not counted (spectator connections have their own cap).

    The address is the one uvicorn gives (behind a proxy in ``GM_FORWARDED_ALLOW_IPS``, the
    one it forwards), keyed as the connection caps key it (:func:`app.admission.address_key`).
    """

    def __init__(
        self,
        app: ASGIApp,
        rate: float,
        burst: float,
        *,
        now_s: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self._limiter = RateLimiter(rate, burst) if rate > 0 else None
        self._now_s = now_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Let the request through, or answer 429 at once."""
        limiter = self._limiter
        if (
            limiter is None
            or scope["type"] != "http"
            or not scope["path"].startswith(_LIMITED)
            or has_known_token(scope)
        ):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        address = address_key(client[0]) if client else ""
        if limiter.allow(address, self._now_s()):
            await self.app(scope, receive, send)
            return
        response = error_response_at(
            scope["path"],
            429,
            "rate_limited",
            "too many requests from this address without a token",
            {"Retry-After": str(limiter.retry_after_s)},
        )
        await response(scope, receive, send)


class AnonymousTurns:
    """ASGI middleware: requests without a known bearer token (:func:`has_known_token`) on
    the API and lichess routes run
    at most ``concurrency`` at a time, in arrival order; the others wait their turn, at
    most ``max_waiting`` of them (beyond, 503 ``unavailable`` with ``Retry-After`` at
    once). ``concurrency`` 0 switches it off. Everything else (players, the operator,
    health checks, metrics, the site, WebSockets) goes straight through.

    Why: every request the loop reads runs on the loop until its first real wait, in the
    order the requests were read, so a thousand readers each holding a request open put
    a thousand turns in front of the next move or health check however cheap each read
    is. Waiting here costs the loop nothing, so at most ``concurrency`` reads stand
    between a player and the loop. A turn ends when the response starts (or the request
    ends without one): a stream holds none for its whole life. Requests that the
    per-address limit refuses take a turn too (place this outside it), so that a client
    ignoring its 429s cannot crowd the loop either. A request's body (up to
    ``max_buffered_bytes``; set it to the body limit) is read before its turn is taken, so
    that a body sent slowly holds no turn while it trickles in. At most
    ``max_waiting_per_address`` of the waiters (0: no cap) come from one client address
    (more get 429 at once), so that one address cannot fill the queue; and a waiter whose
    connection closed meanwhile (uvicorn does not cancel it) is skipped when its turn
    comes, rather than run for nobody.

    At most ``per_iteration`` requests start their turn in one iteration of the event loop
    (0: no such bound); the rest start in the iterations after. Why: a cached read answers
    without ever waiting, so its turn ends in the step that took it and the next request
    takes the same turn at once. Without this bound, every request the loop read at once
    (a thousand clients each sending its next request as soon as an answer is in) runs to
    its end in one iteration, and a health check or a move read meanwhile waits for all of
    them; with it, an iteration's reads cost at most ``per_iteration`` answers.

    With that bound, connections park: a kept-alive connection whose request was answered
    while ``per_iteration`` or more requests wait (or others are parked) stops reading
    (:meth:`park`), and parked connections read again, in the order they parked, at most
    ``per_iteration`` an iteration while fewer than twice that wait. A flood's next
    requests then wait in the kernel's socket buffers rather than as tasks, coroutines
    and scopes in the process, which every pass of the cyclic collector would walk (with
    two thousand of them, passes of the young generations stopped the loop 10-20 ms).
    """

    def __init__(
        self,
        app: ASGIApp,
        concurrency: int,
        max_waiting: int,
        max_buffered_bytes: int = 64 * 1024,
        max_waiting_per_address: int = 0,
        per_iteration: int = 0,
    ) -> None:
        self.app = app
        self.concurrency = concurrency
        self.max_waiting = max_waiting
        self.max_buffered_bytes = max_buffered_bytes
        self.max_waiting_per_address = max_waiting_per_address
        self.per_iteration = per_iteration
        self.running = 0
        # Turns that may still start in this iteration of the loop, and whether the call
        # that gives the next iteration its own (and hands them to waiters) is scheduled.
        self._budget = per_iteration
        self._refill_due = False
        # Connections that stopped reading, in the order they did (see :meth:`park`).
        self._parked: deque[Parkable] = deque()
        self.parked_total = 0
        # Requests skipped when their turn came because their client had hung up.
        self.skipped_gone = 0
        # Each waiter's future is resolved when a finished turn is handed over to it: True
        # to run, False when its connection closed meanwhile. With it, the waiter's
        # transport (None: unknown), looked at before the turn is handed over.
        self._waiting: deque[tuple[asyncio.Future[bool], Any]] = deque()
        self._waiting_per_address: dict[str, int] = {}

    @property
    def waiting(self) -> int:
        """How many requests wait for a turn (cancelled ones may still be counted)."""
        return len(self._waiting)

    @property
    def parked(self) -> int:
        """How many connections are parked (closed ones may still be counted)."""
        return len(self._parked)

    def should_park(self) -> bool:
        """Whether a connection whose request (one of ours) was just answered should stop
        reading for now: enough requests wait, or connections parked before it do."""
        return bool(self.per_iteration) and (
            bool(self._parked) or len(self._waiting) >= self.per_iteration
        )

    def park(self, connection: Parkable) -> None:
        """Keep ``connection`` (which stopped reading) until its turn to read comes."""
        self._parked.append(connection)
        self.parked_total += 1
        self._refill_next()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the request in its turn, or answer 503 when too many wait."""
        if (
            self.concurrency <= 0
            or scope["type"] != "http"
            or not scope["path"].startswith(_LIMITED)
        ):
            await self.app(scope, receive, send)
            return
        if has_known_token(scope):
            if self.per_iteration:
                _mark_known_client(scope)
            await self.app(scope, receive, send)
            return
        if self.per_iteration:
            scope[TURNS_SCOPE_KEY] = self
        # The body is read before the turn is taken, so that a client sending it slowly
        # (or never: up to the body timeout) holds no turn meanwhile.
        early = await _read_body(receive, self.max_buffered_bytes)

        async def replay() -> Message:
            if early:
                return early.popleft()
            return await receive()

        transport = _transport(scope)
        if self.running < self.concurrency and not self._waiting and self._may_start():
            self.running += 1
        elif len(self._waiting) >= self.max_waiting:
            response = error_response_at(
                scope["path"],
                503,
                "unavailable",
                "too many requests without a token are waiting; try again shortly",
                {"Retry-After": "1"},
            )
            await response(scope, replay, send)
            return
        else:
            client = scope.get("client")
            address = address_key(client[0]) if client else ""
            held = self._waiting_per_address.get(address, 0)
            if self.max_waiting_per_address and held >= self.max_waiting_per_address:
                response = error_response_at(
                    scope["path"],
                    429,
                    "rate_limited",
                    "too many requests without a token from this address are waiting",
                    {"Retry-After": "1"},
                )
                await response(scope, replay, send)
                return
            self._waiting_per_address[address] = held + 1
            turn: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
            self._waiting.append((turn, transport))
            try:
                if not await turn:
                    # Its client hung up. Waiting for the server to say so (uvicorn answers
                    # ``http.disconnect`` once the connection is lost) keeps it from
                    # taking the unanswered request for an app error.
                    await receive()
                    return
            except asyncio.CancelledError:
                if turn.done() and not turn.cancelled() and turn.result():
                    # The turn was handed over just as the request went away.
                    self._next()
                raise
            finally:
                left = self._waiting_per_address[address] - 1
                if left:
                    self._waiting_per_address[address] = left
                else:
                    del self._waiting_per_address[address]
        ended = False

        async def send_in_turn(message: Message) -> None:
            nonlocal ended
            if not ended and message["type"] == "http.response.start":
                ended = True
                self._next()
            await send(message)

        try:
            await self.app(scope, replay, send_in_turn)
        finally:
            if not ended:
                self._next()

    def _next(self) -> None:
        """A turn ended: free it, and hand free turns to the requests waiting."""
        self.running -= 1
        self._hand_over()

    def _hand_over(self) -> None:
        """Give free turns, while this iteration has starts left, to the first requests
        still waiting whose client is still there (a request is not cancelled when its
        client hangs up)."""
        waiting = self._waiting
        while waiting and self.running < self.concurrency:
            turn, transport = waiting[0]
            if turn.done():
                waiting.popleft()
                continue
            if transport is not None and transport.is_closing():
                waiting.popleft()
                self.skipped_gone += 1
                turn.set_result(False)
                continue
            if not self._may_start():
                return
            waiting.popleft()
            self.running += 1
            turn.set_result(True)
        self._resume_later()

    def _may_start(self) -> bool:
        """Whether a turn may start in this iteration of the loop; if so, count it."""
        if not self.per_iteration:
            return True
        if not self._budget:
            return False
        self._budget -= 1
        self._refill_next()
        return True

    def _refill_next(self) -> None:
        if not self._refill_due:
            # Called back in the next iteration, before the requests it reads run.
            self._refill_due = True
            asyncio.get_running_loop().call_soon(self._refill)

    def _refill(self) -> None:
        """A new iteration of the loop: its own starts, handed first to the waiters; then
        parked connections read again while few requests wait."""
        self._refill_due = False
        self._budget = self.per_iteration
        self._hand_over()
        parked = self._parked
        resumed = 0
        while (
            parked and resumed < self.per_iteration and len(self._waiting) < 2 * self.per_iteration
        ):
            if parked.popleft().resume_parked():
                resumed += 1
        self._resume_later()

    def _resume_later(self) -> None:
        """Parked connections are resumed by the next iteration's refill while few requests
        wait (when many do, a turn handed to one of them spends a start and calls it)."""
        if self._parked and len(self._waiting) < 2 * self.per_iteration:
            self._refill_next()


def _mark_known_client(scope: Scope) -> None:
    """Tell the request's connection (app/http_protocol.py) that it carried a known token,
    when it is a connection that parks: a player's client may read without its token and
    then move, and its move must not wait behind parked readers. Marked as the request
    starts, so that a request pipelined behind it cannot hide it."""
    transport = _transport(scope)
    protocol = None if transport is None else transport.get_protocol()
    mark = getattr(protocol, "mark_known_client", None)
    if mark is not None:
        mark()


def _transport(scope: Scope) -> Any:
    """The request's transport, where the server exposes it (app/stream_connection.py)."""
    extension = scope.get("extensions", {}).get(CONNECTION_EXTENSION)
    return None if extension is None else extension["transport"]


async def _read_body(receive: Receive, max_bytes: int) -> deque[Message]:
    """The request's messages up to the end of its body, its client's disconnection, or
    the first past ``max_bytes`` (the rest is left to be received: the inner app refuses
    a body over its limit, or a route needing a token answers before reading it)."""
    messages: deque[Message] = deque()
    received = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request" or not message.get("more_body", False):
            return messages
        received += len(message.get("body", b""))
        if received > max_bytes:
            return messages


# The reads whose cost grows with the data: the API and the lichess routes. The site's
# pages and files (a venue's spectators may share one address), health checks, metrics and
# the edges' state reads (/internal) are not counted.
_LIMITED = ("/api/", "/broadcast/")
