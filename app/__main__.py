"""``python -m app [--host H] [--port P] [--data-dir D]``: run the server under uvicorn."""

from __future__ import annotations

import logging
import resource
import sys

import uvicorn

from app.factory import create_app
from app.server import uvicorn_config
from app.settings import Settings


def raise_file_limit() -> None:
    """Lift the soft limit on open files to the hard limit: each spectator is a socket."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1_048_576)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            logging.getLogger(__name__).warning("could not raise the open-file limit from %d", soft)


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
    raise_file_limit()
    uvicorn.Server(uvicorn_config(create_app(settings), settings)).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
