"""How uvicorn is configured to serve the app (used by ``python -m app`` and the tests)."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from typing import Any

import uvicorn
from fastapi import FastAPI

from app import http_protocol, ws_protocol
from app.admission import Admission
from app.settings import Settings

_log = logging.getLogger(__name__)


def uvicorn_config(app: FastAPI, settings: Settings, **overrides: Any) -> uvicorn.Config:
    """The server configuration: our HTTP and WebSocket protocols, no compression, small
    inbound frames.

    The HTTP protocol (app/http_protocol.py) enforces the settings' connection caps and
    header and body timeouts, counting into one :class:`~app.admission.Admission`, which is
    also left on ``app.state.admission``.

    permessage-deflate is off because it costs a compressor per spectator (CPU and tens of
    KiB of memory each) and would defeat encoding each event once for everyone.

    When the installed uvicorn lacks the internals app/ws_protocol.py needs, logs one
    warning and lets uvicorn pick its stock protocol (``ws="auto"``): spectators then get
    the bounded-queue fallback, as under any other ASGI server.
    """
    ws: type[asyncio.Protocol] | str = ws_protocol.FanoutWebSocketProtocol
    if ws_protocol.UNSUPPORTED_REASON is not None:
        _log.warning(
            "uvicorn %s: %s; serving WebSockets with uvicorn's stock protocol and the "
            "queued spectator fallback (pyproject.toml pins the tested range)",
            uvicorn.__version__,
            ws_protocol.UNSUPPORTED_REASON,
        )
        ws = "auto"
    if "*" in settings.forwarded_allow_ips:
        _log.warning(
            "GM_FORWARDED_ALLOW_IPS=*: every peer is trusted to name its client in "
            "X-Forwarded-For, so any client can pick the address its connection caps and "
            "rate limits count against; never use it on a port clients reach directly, "
            "only behind a proxy that overwrites the header"
        )
    admission = Admission(
        max_total=settings.max_connections,
        max_per_address=settings.max_connections_per_ip,
        header_timeout_s=settings.header_timeout_s,
        body_timeout_s=settings.body_timeout_s,
        trusted=http_protocol.trusted_proxies(settings.forwarded_allow_ips),
    )
    http: type[asyncio.Protocol] | str = http_protocol.protocol_class(admission)
    if http_protocol.UNSUPPORTED_REASON is not None:
        _log.warning(
            "uvicorn %s: %s; serving HTTP with uvicorn's stock protocol: no connection caps "
            "and no header or body timeouts (pyproject.toml pins the tested range)",
            uvicorn.__version__,
            http_protocol.UNSUPPORTED_REASON,
        )
        http = "auto"
    # /metrics reads the counts (app/factory.py).
    state = getattr(app, "state", None)
    if state is not None:
        state.admission = admission
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
        "access_log": settings.access_log,
        "lifespan": "on",
        "http": http,
        # The client address is the peer's, or what a trusted proxy forwards: uvicorn's
        # middleware sets it for the app (the rate limiter), app/http_protocol.py reads the
        # same header with the same parser for the connection caps.
        "proxy_headers": bool(settings.forwarded_allow_ips),
        "forwarded_allow_ips": list(settings.forwarded_allow_ips),
        "timeout_keep_alive": settings.keep_alive_s,
        "ws": ws,
        "ws_max_size": settings.ws_max_message_bytes,
        "ws_ping_interval": settings.ws_ping_interval_s,
        "ws_ping_timeout": settings.ws_ping_interval_s,
        "ws_per_message_deflate": False,
        "timeout_graceful_shutdown": 5,
        "backlog": 4096,
    }
    options.update(overrides)
    return uvicorn.Config(app, **options)


class Server(uvicorn.Server):
    """uvicorn's server, which tells the app when it starts to stop.

    uvicorn waits up to ``timeout_graceful_shutdown`` for responses in flight before the
    lifespan ends, and an NDJSON stream never ends by itself: ``on_stop`` (called first
    thing in the shutdown, on the loop) lets the app end its streams so that the stop is
    prompt and each stream ends cleanly (WebSockets get 1012 from uvicorn itself).
    """

    def __init__(self, config: uvicorn.Config, on_stop: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_stop = on_stop

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Tell the app, then shut down as uvicorn does."""
        try:
            self._on_stop()
        except Exception:
            _log.exception("ending the streams at shutdown failed")
        await super().shutdown(sockets)
