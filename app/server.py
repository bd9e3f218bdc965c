"""How uvicorn is configured to serve the app (used by ``python -m app`` and the tests)."""

from __future__ import annotations

from typing import Any

import uvicorn
from fastapi import FastAPI

from app.settings import Settings
from app.ws_protocol import FanoutWebSocketProtocol


def uvicorn_config(app: FastAPI, settings: Settings, **overrides: Any) -> uvicorn.Config:
    """The server configuration: our WebSocket protocol, no compression, small inbound frames.

    permessage-deflate is off because it costs a compressor per spectator (CPU and tens of
    KiB of memory each) and would defeat encoding each event once for everyone.
    """
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
        "access_log": settings.access_log,
        "lifespan": "on",
        "ws": FanoutWebSocketProtocol,
        "ws_max_size": settings.ws_max_message_bytes,
        "ws_ping_interval": settings.ws_ping_interval_s,
        "ws_ping_timeout": settings.ws_ping_interval_s,
        "ws_per_message_deflate": False,
        "timeout_graceful_shutdown": 5,
        "backlog": 4096,
    }
    options.update(overrides)
    return uvicorn.Config(app, **options)
