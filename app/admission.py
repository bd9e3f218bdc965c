"""Admission: how many connections the server holds, in all and per client address.

One :class:`Admission` per server process counts the connections it holds and refuses the
ones over a cap at once, with a complete HTTP answer in the contract's error format:

- over ``max_per_address`` (the client's own doing): ``429 rate_limited``;
- over ``max_total`` (the server is full, whoever asks): ``503 unavailable``.

Both carry ``Retry-After``. A connection from a trusted proxy is not counted against the
proxy's address (it carries many clients); each request it forwards is counted against
the client address the proxy names instead, for as long as the request (or the WebSocket
it opens) lasts. :func:`address_key` is what "the same client" means here and for the
anonymous-read rate limiter (app/limits.py), so that both agree.

Plain counting on the event loop (and :class:`Deadlines`, one loop timer for many
connections' deadlines); app/http_protocol.py calls it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, Protocol, TypeVar

_log = logging.getLogger(__name__)
T = TypeVar("T", bound=Hashable)
# Seconds a refused client is told to wait: a slot frees when another of its connections
# closes, which the server cannot foresee; a few seconds keep a retrying client to a trickle.
RETRY_AFTER_S = 5


def address_key(host: str) -> str:
    """The key a client address is counted under: IPv4 as is, IPv6 by its /64 prefix.

    One IPv6 host usually holds a whole /64 and can pick any address in it; counting per
    /128 would let it open connections without bound. An IPv6 address that carries an
    IPv4 one (``::ffff:a.b.c.d``, as a dual-stack listener sees IPv4 clients, or NAT64's
    ``64:ff9b::/96``) counts as that IPv4 address: by their /64 all IPv4 clients would
    share one key. Anything else (a Unix socket path, an unparsable forwarded value) is
    its own key.
    """
    if ":" not in host:
        return host
    head = host.split("%", 1)[0]
    try:
        address = ipaddress.IPv6Address(head)
    except ValueError:
        return host
    if address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    if address in _NAT64:
        return str(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return str(ipaddress.IPv6Network((address, 64), strict=False))


# The well-known NAT64 prefix (RFC 6052): the IPv4 address is the last 32 bits.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def error_answer(status: int, reason: str, code: str, message: str, *, retry_after: bool) -> bytes:
    """A whole HTTP/1.1 response with the contract's error body that closes the connection."""
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    head = [
        f"HTTP/1.1 {status} {reason}",
        "content-type: application/json",
        f"content-length: {len(body)}",
        "connection: close",
    ]
    if retry_after:
        head.append(f"retry-after: {RETRY_AFTER_S}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


class Deadlines(Generic[T]):
    """Items due ``timeout_s`` after they are armed, with one timer for all of them.

    Every item gets the same timeout, so they fall due in the order they were armed: an
    insertion-ordered map, and a single loop timer for its head, re-armed as the head
    changes. Arming and disarming cost a map insert and delete, not a timer each (a timer
    per connection costs several microseconds, and 10,000 spectators connect at once).
    ``on_late(item)`` runs on the loop for each item not disarmed in time; it may arm items
    again (in this queue or another).
    """

    __slots__ = ("_due", "_firing", "_loop", "_on_late", "_timer", "timeout_s")

    def __init__(self, timeout_s: float, on_late: Callable[[T], None]) -> None:
        self.timeout_s = timeout_s
        self._on_late = on_late
        self._due: OrderedDict[T, float] = OrderedDict()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        # While late items' handlers run: an item they arm here gets no timer of its own
        # (the firing loop sets the one timer for the new head when it is done).
        self._firing = False

    def __len__(self) -> int:
        return len(self._due)

    def arm(self, item: T, loop: asyncio.AbstractEventLoop) -> None:
        """``item`` is due ``timeout_s`` from now (re-arming moves it to the back)."""
        at = loop.time() + self.timeout_s
        self._due.pop(item, None)
        self._due[item] = at
        if self._timer is None and not self._firing:
            self._loop = loop
            self._timer = loop.call_at(at, self._fire)

    def disarm(self, item: T) -> None:
        """``item`` is no longer due (nothing if it was not armed)."""
        self._due.pop(item, None)

    def _fire(self) -> None:
        self._timer = None
        loop = self._loop
        assert loop is not None
        due = self._due
        now = loop.time()
        self._firing = True
        try:
            while due:
                item, at = next(iter(due.items()))
                if at > now:
                    self._timer = loop.call_at(at, self._fire)
                    return
                del due[item]
                try:
                    self._on_late(item)
                except Exception:
                    # One failing item must not leave the others without a timer.
                    _log.exception("a deadline's handler failed")
        finally:
            self._firing = False


class TrustedProxies(Protocol):
    """Which peers may name the client (uvicorn's own parser of ``forwarded_allow_ips``)."""

    def __contains__(self, host: str | None) -> bool:
        """Whether ``host`` is a trusted proxy."""

    def get_trusted_client_address(self, x_forwarded_for: str) -> tuple[str, int]:
        """The client a trusted proxy's ``X-Forwarded-For`` names (host, port)."""


class Admission:
    """The connection caps and timeouts of one server process, and its counts.

    ``max_total`` and ``max_per_address`` 0 switch that cap off. Times are in seconds.
    Every :meth:`admit` that returns a key must be matched by one :meth:`leave` with it;
    every :meth:`take` that returns True by one :meth:`give_back`.
    """

    __slots__ = (
        "address_refusal",
        "body_timeout_s",
        "closed_idle",
        "full_refusal",
        "header_timeout_s",
        "max_per_address",
        "max_total",
        "open",
        "per_address",
        "refused_address",
        "refused_full",
        "timed_out_body",
        "timed_out_header",
        "timeout_answer",
        "trusted",
    )

    def __init__(
        self,
        *,
        max_total: int,
        max_per_address: int,
        header_timeout_s: float,
        body_timeout_s: float,
        trusted: TrustedProxies | None = None,
    ) -> None:
        self.max_total = max_total
        self.max_per_address = max_per_address
        self.header_timeout_s = header_timeout_s
        self.body_timeout_s = body_timeout_s
        self.trusted = trusted
        self.open = 0
        self.per_address: dict[str, int] = {}
        # Counters for /metrics and the benchmark.
        self.refused_full = 0
        self.refused_address = 0
        self.timed_out_header = 0
        self.timed_out_body = 0
        self.closed_idle = 0
        self.full_refusal = error_answer(
            503,
            "Service Unavailable",
            "unavailable",
            "the server holds as many connections as it may; try again later",
            retry_after=True,
        )
        self.address_refusal = error_answer(
            429,
            "Too Many Requests",
            "rate_limited",
            "too many connections from this address",
            retry_after=True,
        )
        self.timeout_answer = error_answer(
            408,
            "Request Timeout",
            "request_timeout",
            "the request did not arrive in time",
            retry_after=False,
        )

    def is_proxy(self, host: str) -> bool:
        """Whether ``host`` is a trusted proxy (its connections carry other clients)."""
        return self.trusted is not None and host in self.trusted

    def admit(self, host: str) -> tuple[str | None, bytes | None]:
        """Count a new connection from peer ``host``: ``(key, None)`` when admitted, where
        ``key`` is what it counts under per address (None: a proxy's, or no per-address
        cap), or ``(None, answer)`` when refused; ``answer`` is the response to send."""
        if self.max_total and self.open >= self.max_total:
            self.refused_full += 1
            return None, self.full_refusal
        key = None
        if self.max_per_address and not self.is_proxy(host):
            key = address_key(host)
            if not self.take(key):
                self.refused_address += 1
                return None, self.address_refusal
        self.open += 1
        return key, None

    def leave(self, key: str | None) -> None:
        """A connection admitted under ``key`` is gone."""
        self.open -= 1
        if key is not None:
            self.give_back(key)

    def take(self, key: str) -> bool:
        """Count one more connection (or proxied request) of ``key``; False over the cap."""
        held = self.per_address.get(key, 0)
        if held >= self.max_per_address:
            return False
        self.per_address[key] = held + 1
        return True

    def give_back(self, key: str) -> None:
        """One connection (or proxied request) of ``key`` is over."""
        held = self.per_address[key] - 1
        if held:
            self.per_address[key] = held
        else:
            del self.per_address[key]

    def forwarded_key(self, x_forwarded_for: str) -> str | None:
        """The key of the client a trusted proxy names in ``X-Forwarded-For``, if any."""
        if self.trusted is None:
            return None
        host, _ = self.trusted.get_trusted_client_address(x_forwarded_for)
        return address_key(host) if host else None
