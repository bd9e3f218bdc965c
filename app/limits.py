"""Request limits: larger bodies are refused with 413 before they are buffered, and
anonymous requests are rate-limited per client address."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.admission import address_key
from app.errors import error_response_at
from app.ratelimit import RateLimiter


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
    """ASGI middleware: requests without a bearer token, per client address, at most
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
            or any(name == b"authorization" for name, _ in scope["headers"])
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


# The reads whose cost grows with the data: the API and the lichess routes. The site's
# pages and files (a venue's spectators may share one address), health checks, metrics and
# the edges' state reads (/internal) are not counted.
_LIMITED = ("/api/", "/broadcast/")
