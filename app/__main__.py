"""``python -m app [--host H] [--port P] [--data-dir D]``: run the server under uvicorn."""

from __future__ import annotations

import logging
import sys

import uvicorn

from app.factory import create_app
from app.settings import Settings


def main(argv: list[str] | None = None) -> int:
    """Parse settings, then serve until interrupted. Returns the exit status."""
    try:
        settings = Settings.from_env().with_args(argv)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        ws_per_message_deflate=False,
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
    uvicorn.Server(config).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
