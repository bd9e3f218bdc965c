"""``python -m app [--host H] [--port P] [--data-dir D]``: run the server under uvicorn."""

from __future__ import annotations

import logging
import sys

import uvicorn

from app.factory import create_app
from app.server import uvicorn_config
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
    uvicorn.Server(uvicorn_config(create_app(settings), settings)).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
