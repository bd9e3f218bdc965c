"""The asyncio shell: HTTP, WebSockets, streams and timers on one event loop."""

from app.factory import create_app
from app.settings import Settings

__all__ = ["Settings", "create_app"]
