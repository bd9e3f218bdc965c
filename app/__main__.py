"""``python -m app [--host H] [--port P] [--data-dir D]``: run the server under uvicorn."""

from __future__ import annotations

import logging
import resource
import signal
import sys

import uvicorn

from app.factory import create_app, end_streams
from app.logs import install_queue_logging, stop_listener
from app.server import Server, uvicorn_config
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


def _stopped(signum: int, frame: object) -> None:
    """The handler uvicorn re-raises a stop signal to after its graceful shutdown."""


# The exit status after the history could not be written: EX_TEMPFAIL (sysexits.h), so
# that it differs from uvicorn's own start-up failure (3); supervisors restart on it.
EXIT_STORE_FAILED = 75


def main(argv: list[str] | None = None) -> int:
    """Parse settings, then serve until interrupted. Returns the exit status."""
    try:
        settings = Settings.from_env().with_args(argv)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    listener = install_queue_logging(settings.log_level)
    try:
        raise_file_limit()
        failed = False
        server: uvicorn.Server | None = None

        def stop_after_store_failure() -> None:
            # Memory may now disagree with what the disk holds: stop (requests in flight
            # get their 503), exit non-zero, and let the supervisor restart from disk.
            nonlocal failed
            failed = True
            if server is not None:
                server.should_exit = True

        app = create_app(settings, on_fatal=stop_after_store_failure)
        # uvicorn's own logging config writes to stderr from the loop: use the queue.
        server = Server(
            uvicorn_config(app, settings, log_config=None), on_stop=lambda: end_streams(app)
        )
        # uvicorn handles SIGTERM/SIGINT itself (spectators get 1012), then re-raises the
        # signal to the handler it found: make that one return, so a clean stop exits 0.
        for stop_signal in (signal.SIGTERM, signal.SIGINT):
            signal.signal(stop_signal, _stopped)
        server.run()
        for stop_signal in (signal.SIGTERM, signal.SIGINT):
            signal.signal(stop_signal, signal.SIG_DFL)
        return EXIT_STORE_FAILED if failed else 0
    finally:
        stop_listener(listener)


if __name__ == "__main__":
    sys.exit(main())
