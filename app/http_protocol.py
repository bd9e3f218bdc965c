"""uvicorn's httptools protocol with admission: connection caps and deadlines on requests.

Each connection is counted by the server's :class:`~app.admission.Admission` when it is
made, and answered at once (429 or 503, then closed) when it is over a cap. Until a
request's header is complete it has ``header_timeout_s`` (from the connection, or from the
first byte of a later request); then its body has ``body_timeout_s``. A connection that
sends nothing in time is closed without a word; one that sent part of a request gets
``408 request_timeout`` (when no response has started) and is closed. Between requests
uvicorn's own keep-alive timeout applies, except on a connection parked by the anonymous
turns (:class:`~app.limits.AnonymousTurns`): it reads nothing until its turn, then its
next header is due within ``header_timeout_s``. Nothing is timed once a request is read: long
NDJSON streams and WebSockets (which keep the connection's place under the caps until they
close) are never cut by these deadlines.

A connection from a trusted proxy is not counted against the proxy's address; each request
it forwards is counted against the client the proxy names in ``X-Forwarded-For`` (read by
uvicorn's own parser of ``forwarded_allow_ips``, as its proxy-headers middleware reads it
for the app), until its response completes or its WebSocket closes.

Refused and timed-out connections are closed gracefully: the answer, then our half of the
connection (FIN), input read and dropped for up to :data:`LINGER_S`, then a reset. Closing
at once with unread input would reset the connection and could destroy the answer.

Why uvicorn's internals: the app (ASGI) sees a request only once its header is complete, so
a client that sends one slowly, or never, never reaches it; uvicorn's ``timeout_keep_alive``
is armed only when a response completes (never at connect nor while a header or body
trickles in), and its ``limit_concurrency`` answers only after a whole header, in plain text.
So this module subclasses uvicorn's private ``HttpToolsProtocol``: it overrides
``connection_made``, ``connection_lost``, ``data_received``, ``on_message_begin``,
``on_headers_complete``, ``on_message_complete``, ``on_response_complete``,
``handle_websocket_upgrade`` and ``send_400_response`` (uvicorn answers a request it
cannot parse itself, in text/plain; this answers it in the contract's format), calls
``_should_upgrade``, reads the attributes in ``_NEEDS_ATTRIBUTES`` and the request cycle's
``response_started``, ``response_complete``, ``disconnected``, ``keep_alive`` and
``message_event``, and uses
``uvicorn.middleware.proxy_headers._TrustedHosts``. Tested with uvicorn 0.54.0; what it
uses is unchanged since 0.52.1, the bottom of pyproject.toml's range. On import the
installed uvicorn is checked; :data:`UNSUPPORTED_REASON` says what is missing, and
``app.server.uvicorn_config`` then serves with uvicorn's stock protocol, without these
limits, after one warning (tests/app/test_http_protocol.py fails, naming what is gone).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections import deque
from typing import TYPE_CHECKING, Any, ClassVar

from app.admission import RETRY_AFTER_S, Admission, Deadlines, TrustedProxies, error_answer
from app.errors import error_response
from app.limits import TURNS_SCOPE_KEY, AnonymousTurns
from app.ws_protocol import FanoutWebSocketProtocol, missing_internals

if TYPE_CHECKING:
    from uvicorn.middleware.proxy_headers import _TrustedHosts
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

    _IMPORT_ERROR: str | None
else:
    try:
        from uvicorn.middleware.proxy_headers import _TrustedHosts
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
    except ImportError as exc:
        _IMPORT_ERROR = f"cannot import uvicorn's httptools protocol ({exc})"

        class HttpToolsProtocol:
            """Stand-in: keeps this module importable; the subclass below is never used then."""

        class RequestResponseCycle:
            """Stand-in, as above."""

        class _TrustedHosts:
            """Stand-in, as above."""

    else:
        _IMPORT_ERROR = None

# What this module relies on (see the docstring): attributes uvicorn's protocol sets.
_NEEDS_ATTRIBUTES = frozenset(
    {
        "app",
        "client",
        "connections",
        "cycle",
        "flow",
        "headers",
        "loop",
        "parser",
        "pipeline",
        "server_state",
        "timeout_keep_alive_task",
        "transport",
    }
)
# Methods overridden or called: their parameters, and whether they are coroutines.
_NEEDS_METHODS: dict[str, tuple[tuple[str, ...], bool]] = {
    "connection_lost": (("self", "exc"), False),
    "connection_made": (("self", "transport"), False),
    "data_received": (("self", "data"), False),
    "handle_websocket_upgrade": (("self",), False),
    "on_headers_complete": (("self",), False),
    "on_message_begin": (("self",), False),
    "on_message_complete": (("self",), False),
    "on_response_complete": (("self",), False),
    "send_400_response": (("self", "msg"), False),
    "_should_upgrade": (("self",), False),
}
# uvicorn's methods that must still call (or use) what is overridden or swapped.
_NEEDS_REFERENCES: dict[str, tuple[str, ...]] = {
    "data_received": (
        "handle_websocket_upgrade",
        "_unset_keepalive_if_required",
        "send_400_response",
    ),
    "on_headers_complete": ("app", "on_response_complete", "cycle"),
    "on_response_complete": ("timeout_keep_alive_task",),
}
# The request cycle's attributes read or set here.
_NEEDS_CYCLE_ATTRIBUTES = frozenset(
    {"disconnected", "keep_alive", "message_event", "response_complete", "response_started"}
)
_NEEDS_TRUSTED_HOSTS = (
    ("__contains__", ("self", "host")),
    ("get_trusted_client_address", ("self", "x_forwarded_for")),
)


def missing_http_internals(base: type, cycle: type, trusted: type) -> list[str]:
    """What this module needs of uvicorn's protocol ``base``, its request ``cycle`` class and
    its ``trusted`` hosts class and does not find there (empty when nothing is missing)."""
    missing = missing_internals(
        base,
        attributes=_NEEDS_ATTRIBUTES,
        methods=_NEEDS_METHODS,
        references=_NEEDS_REFERENCES,
    )
    missing += [
        f"RequestResponseCycle {entry}"
        for entry in missing_internals(
            cycle, attributes=_NEEDS_CYCLE_ATTRIBUTES, methods={}, references={}
        )
    ]
    for name, params in _NEEDS_TRUSTED_HOSTS:
        method = getattr(trusted, name, None)
        if not inspect.isfunction(method) or tuple(inspect.signature(method).parameters) != params:
            missing.append(f"_TrustedHosts.{name}({', '.join(params)})")
    return missing


def _unsupported_reason() -> str | None:
    if _IMPORT_ERROR is not None:
        return _IMPORT_ERROR
    missing = missing_http_internals(HttpToolsProtocol, RequestResponseCycle, _TrustedHosts)
    return "uvicorn's HttpToolsProtocol lacks " + "; ".join(missing) if missing else None


#: Why the installed uvicorn cannot run :class:`AdmittedHttpToolsProtocol`; None when it can.
UNSUPPORTED_REASON = _unsupported_reason()
# How long a refused or timed-out connection is read (and its input dropped) after our
# answer and FIN, before it is reset.
LINGER_S = 1.0
# What a connection waits for.
_HEADER, _BODY, _NOTHING = 0, 1, 2


def trusted_proxies(addresses: tuple[str, ...]) -> TrustedProxies | None:
    """uvicorn's reading of ``forwarded_allow_ips`` (addresses, networks, ``*``); None if empty."""
    return _TrustedHosts(list(addresses)) if addresses else None


def protocol_class(admission: Admission) -> type[AdmittedHttpToolsProtocol]:
    """The protocol class one server passes to uvicorn (``http=``): counts into ``admission``,
    with the server's two deadline queues."""
    base = AdmittedHttpToolsProtocol
    return type(
        "AdmittedHttpToolsProtocol",
        (base,),
        {
            "admission": admission,
            "header_deadlines": Deadlines(admission.header_timeout_s, base.header_late),
            "body_deadlines": Deadlines(admission.body_timeout_s, base.body_late),
        },
    )


class AdmittedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol, counted and timed (see the module docstring).

    Deadlines are entries in the server's two queues (one loop timer each), not a timer
    per connection.
    """

    admission: ClassVar[Admission]
    header_deadlines: ClassVar[Deadlines[AdmittedHttpToolsProtocol]]
    body_deadlines: ClassVar[Deadlines[AdmittedHttpToolsProtocol]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # All set here, in __init__, so that every connection's instance dict keeps sharing
        # one key table (CPython's key-sharing dictionaries).
        # The queue this connection is armed in, if any.
        self._armed: Deadlines[AdmittedHttpToolsProtocol] | None = None
        self._linger: asyncio.TimerHandle | None = None
        self._expecting = _HEADER
        # Whether bytes of the awaited request have come (a silent one gets no answer).
        self._started = False
        self._admitted = False
        # What the connection counts under per address (None: not counted per address).
        self._key: str | None = None
        # A trusted proxy's connection: its requests count against forwarded clients.
        self._proxied = False
        # From a trusted proxy (whether or not its requests are counted per client).
        self._from_proxy = False
        # Has carried a request with a token the server knows: a player's (or account's)
        # connection, whose next request may be a move whatever this one was.
        self._known_client = False
        # Per request from a proxy, in order: the forwarded key it holds (None: none).
        self._forwarded: deque[str | None] | None = None
        self._refuse_upgrade = False
        self._lingering = False
        self._upgraded = False

    def connection_made(self, transport: Any) -> None:
        """As uvicorn's; then admit the connection, or answer it at once and close."""
        super().connection_made(transport)
        admission = self.admission
        host = self.client[0] if self.client else ""
        key, refusal = admission.admit(host)
        if refusal is not None:
            self.connections.discard(self)
            self._answer_and_close(refusal)
            return
        self._admitted = True
        self._key = key
        self._from_proxy = admission.is_proxy(host)
        if key is None and admission.max_per_address and admission.is_proxy(host):
            self._proxied = True
        self._arm(self.header_deadlines)

    def connection_lost(self, exc: Exception | None) -> None:
        """Give the connection's places back, then as uvicorn's."""
        self._cancel_deadline()
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        self._give_back()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """As uvicorn's (input after an answer is dropped); then arm the deadline due."""
        if self._lingering:
            return
        super().data_received(data)
        if self._armed is not None or self._upgraded or self._lingering:
            return
        if self._expecting == _BODY:
            if not self.pipeline:
                # A pipelined request's body is timed from when its turn comes (uvicorn
                # stops reading behind a response under way, which may be a long stream).
                self._arm(self.body_deadlines)
        elif (
            self._expecting == _NOTHING
            and self.timeout_keep_alive_task is None
            and (self.cycle is None or self.cycle.response_complete)
            and not self.transport.is_closing()
        ):
            # Bytes between requests that begin none (blank lines) stopped uvicorn's
            # keep-alive timer: the next request's header is due from now.
            self._expecting = _HEADER
            self._arm(self.header_deadlines)

    def on_message_begin(self) -> None:
        """A request begins: its header is due within the header timeout."""
        super().on_message_begin()
        self._started = True
        self._expecting = _HEADER
        if self._armed is None:
            self._arm(self.header_deadlines)

    def on_headers_complete(self) -> None:
        """The header is in: stop its deadline, count a proxy's request against its client."""
        self._cancel_deadline()
        self._expecting = _BODY
        if not self._proxied:
            super().on_headers_complete()
            return
        admission = self.admission
        values = [value for name, value in self.headers if name == b"x-forwarded-for"]
        key = admission.forwarded_key(b", ".join(values).decode("latin1")) if values else None
        refused = key is not None and not admission.take(key)
        if self._forwarded is None:
            self._forwarded = deque()
        self._forwarded.append(None if refused else key)
        if not refused:
            super().on_headers_complete()
            return
        admission.refused_address += 1
        if self.parser.should_upgrade() and self._should_upgrade():
            self._refuse_upgrade = True
            super().on_headers_complete()
            return
        # uvicorn runs ``self.app`` for the request: this one request gets the refusal.
        app = self.app
        self.app = _refuse_forwarded
        try:
            super().on_headers_complete()
        finally:
            self.app = app

    def on_message_complete(self) -> None:
        """The body is in: nothing more is timed until the next request."""
        self._cancel_deadline()
        self._expecting = _NOTHING
        self._started = False
        super().on_message_complete()

    def on_response_complete(self) -> None:
        """A proxied request's client gets its place back; then as uvicorn's; a pipelined
        request started now whose body is not all in has its body deadline from now."""
        forwarded = self._forwarded
        if forwarded:
            key = forwarded.popleft()
            if key is not None:
                self.admission.give_back(key)
        super().on_response_complete()
        if (
            self._expecting == _BODY
            and self._armed is None
            and not self.pipeline
            and not self.transport.is_closing()
        ):
            self._arm(self.body_deadlines)
        self._park_if_asked()

    def _park_if_asked(self) -> None:
        """An answered request that took an anonymous turn, on a connection now idle
        between requests: stop reading while the turns say so (see
        :class:`~app.limits.AnonymousTurns`); uvicorn's keep-alive timer is stopped, and
        the next request's header deadline is armed when reading resumes."""
        keep_alive = self.timeout_keep_alive_task
        cycle: RequestResponseCycle | None = self.cycle
        # Only between requests: not while the next one's header is coming in, nor with
        # this one's body unread (a route may answer before reading it). A trusted proxy's
        # connection carries other clients' requests (a player's move, next): never; nor a
        # connection that has carried a known token, whose next request may be a move.
        if (
            keep_alive is None
            or cycle is None
            or self.pipeline
            or self._lingering
            or self._from_proxy
            or self._expecting != _NOTHING
            or self._started
            or self._armed is not None
        ):
            return
        turns = cycle.scope.get(TURNS_SCOPE_KEY)
        if self._known_client or not isinstance(turns, AnonymousTurns) or not turns.should_park():
            return
        keep_alive.cancel()
        self.timeout_keep_alive_task = None
        self.flow.pause_reading()
        # uvicorn keeps the answered request's cycle and scope (with FastAPI's exit stacks
        # and the request's headers) until the next request begins: a parked flood's would
        # be thousands of young objects for the collector to walk. Nothing reads them once
        # the response is complete (a connection has no cycle before its first request,
        # and ``on_message_begin`` makes the next scope and headers).
        self.cycle = None  # type: ignore[assignment]
        self.scope = {}  # type: ignore[typeddict-item]
        self.headers = []
        turns.park(self)

    def mark_known_client(self) -> None:
        """A request with a token the server knows came on this connection (called by the
        turns as it starts): never park it from now on."""
        self._known_client = True

    def resume_parked(self) -> bool:
        """Read again (called by the turns); False when the connection closed meanwhile."""
        if self.transport.is_closing():
            return False
        self.flow.resume_reading()
        self._expecting = _HEADER
        self._arm(self.header_deadlines)
        return True

    def handle_websocket_upgrade(self) -> None:
        """Hand the connection's places to the WebSocket protocol, which keeps them until it
        closes (no deadline applies to it); or refuse a proxied client over its cap."""
        self._cancel_deadline()
        if self._refuse_upgrade:
            self._answer_and_close(self.admission.address_refusal)
            return
        super().handle_websocket_upgrade()
        self._upgraded = True
        key = self._key
        if self._forwarded:
            key = self._forwarded.pop()
        if self._admitted:
            self._admitted = False
            self._key = None
            successor = self.transport.get_protocol()
            release = functools.partial(self.admission.leave, key)
            if isinstance(successor, FanoutWebSocketProtocol):
                successor.on_lost = release
            else:
                # uvicorn's stock WebSocket protocol has no hook: the socket goes uncounted.
                release()
        self._give_back()

    def _give_back(self) -> None:
        if self._admitted:
            self._admitted = False
            self.admission.leave(self._key)
        forwarded, self._forwarded = self._forwarded, None
        for key in forwarded or ():
            if key is not None:
                self.admission.give_back(key)

    def _arm(self, deadlines: Deadlines[AdmittedHttpToolsProtocol]) -> None:
        deadlines.arm(self, self.loop)
        self._armed = deadlines

    def _cancel_deadline(self) -> None:
        if self._armed is not None:
            self._armed.disarm(self)
            self._armed = None

    def header_late(self) -> None:
        """Called by the header queue: the request's header did not come in time."""
        self._armed = None
        cycle: RequestResponseCycle | None = self.cycle
        if cycle is not None and not cycle.response_complete:
            # A pipelined request trickles in behind a response still being sent (an NDJSON
            # stream, say): no further request on this connection; the response goes on.
            cycle.keep_alive = False
            self.flow.pause_reading()
            return
        if self._started:
            self.admission.timed_out_header += 1
            self._answer_and_close(self.admission.timeout_answer)
        else:
            self.admission.closed_idle += 1
            self.transport.close()

    def body_late(self) -> None:
        """Called by the body queue: the request's body did not come in time."""
        self._armed = None
        self.admission.timed_out_body += 1
        cycle: RequestResponseCycle | None = self.cycle
        answer = None
        if cycle is not None:
            if not cycle.response_started:
                answer = self.admission.timeout_answer
            # The app waiting for the body is told the client is gone; its answer is dropped.
            cycle.disconnected = True
            cycle.message_event.set()
        self._answer_and_close(answer)

    def send_400_response(self, msg: str) -> None:
        """A request uvicorn could not parse (a bad request line or header, an unknown
        version, a bad Content-Length or chunk): 400 in the contract's format, where
        uvicorn answers text/plain; then closed as a refused connection is. Behind a
        response not yet complete (an NDJSON stream, or pipelined requests) nothing is
        written, which would land inside that response: the responses under way go on,
        then the connection closes."""
        cycle: RequestResponseCycle | None = self.cycle
        if cycle is not None and not cycle.response_complete:
            if self.pipeline or cycle.response_started:
                self._cancel_deadline()
                self._lingering = True  # the rest of the input is dropped
                cycle.keep_alive = False
                self.flow.pause_reading()
                return
            # The request being answered (its body broken, say) is told its client is
            # gone, so that its own answer is dropped rather than written after ours.
            cycle.disconnected = True
            cycle.message_event.set()
        self._answer_and_close(
            error_answer(
                400,
                "Bad Request",
                "bad_request",
                f"malformed HTTP request: {msg}",
                retry_after=False,
            )
        )

    def _answer_and_close(self, answer: bytes | None) -> None:
        """Send ``answer``, then FIN; drop input until the peer closes or LINGER_S passes."""
        self._lingering = True
        self._cancel_deadline()
        transport = self.transport
        if transport.is_closing():
            return
        if answer:
            # The server's own headers (its Date, kept current by uvicorn) after the
            # status line of the answer, which is built once.
            status_line, _, rest = answer.partition(b"\r\n")
            head = [status_line, b"\r\n"]
            for name, value in self.server_state.default_headers:
                head.extend([name, b": ", value, b"\r\n"])
            transport.write(b"".join(head) + rest)
        if not transport.can_write_eof():
            transport.close()
            return
        transport.write_eof()
        self.flow.resume_reading()
        self._linger = self.loop.call_later(LINGER_S, transport.abort)


async def _refuse_forwarded(scope: Any, receive: Any, send: Any) -> None:
    """The answer to a proxied request whose client holds as many places as it may."""
    admission_refusal = error_response(
        429,
        "rate_limited",
        "too many connections from this address",
        {"Retry-After": str(RETRY_AFTER_S)},
    )
    await admission_refusal(scope, receive, send)
