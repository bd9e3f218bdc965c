"""``python -m app [--host H] [--port P] [--data-dir D]``: run the server under uvicorn.

``python -m app token create --account NAME [--scopes study:read,study:write]
[--description D] [--expires-days N] [--data-dir D]`` creates a personal token in the data
directory's database instead, and prints it once.
"""

from __future__ import annotations

import argparse
import gc
import logging
import resource
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

import uvicorn

from app.accounts import DAY_MS, DEFAULT_SCOPES, TOKEN_DAYS, create_token_offline, iso_time
from app.cluster import EdgeSupervisor, EmbeddedRedis, edge_environment, listening_socket
from app.factory import create_app, end_streams
from app.logs import install_queue_logging, stop_listener
from app.server import Server, uvicorn_config
from app.settings import Settings
from workers.store import Store, StoreUnavailable


def raise_file_limit() -> None:
    """Lift the soft limit on open files to the hard limit: each spectator is a socket."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1_048_576)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            logging.getLogger(__name__).warning("could not raise the open-file limit from %d", soft)


def _stop_handler(server: uvicorn.Server) -> Callable[[int, object], None]:
    """The handler of SIGTERM/SIGINT outside uvicorn's own.

    It is installed once the app and the server are built (a signal before that still ends
    the process the default way) and holds until uvicorn takes the stop signals over as it
    starts to serve: over the edges' start, a full garbage collection and the event loop's
    creation. A signal then (an edge whose core dies as it starts gets one) must stop the
    server too, which uvicorn checks after its start-up. After its graceful shutdown uvicorn
    raises the signal again to this handler, which then changes nothing.
    """

    def stop(signum: int, frame: object) -> None:
        server.should_exit = True

    return stop


# The exit status after the history could not be written: EX_TEMPFAIL (sysexits.h), so
# that it differs from uvicorn's own start-up failure (3); supervisors restart on it.
EXIT_STORE_FAILED = 75
# How long a thread may hold the GIL while another waits for it (CPython's default: 5 ms).
SWITCH_INTERVAL_S = 0.0005


def token_command(argv: list[str]) -> int:
    """``python -m app token create ...``: print a new personal token. Returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m app token", description="Manage accounts' personal tokens."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="create a personal token and print it once")
    create.add_argument("--account", required=True, help="account name (created if new)")
    create.add_argument(
        "--scopes",
        default=",".join(DEFAULT_SCOPES),
        help=f"comma-separated scopes (default {','.join(DEFAULT_SCOPES)})",
    )
    create.add_argument("--description", default="", help="what the token is for")
    create.add_argument("--expires-days", type=int, default=TOKEN_DAYS, help="lifetime in days")
    create.add_argument("--data-dir", type=Path, help="data directory (GM_DATA_DIR)")
    args = parser.parse_args(argv)
    try:
        flags = [] if args.data_dir is None else ["--data-dir", str(args.data_dir)]
        settings = Settings.from_env().with_args(flags)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.expires_days < 1:
        print("error: --expires-days must be at least 1", file=sys.stderr)
        return 2
    scopes = tuple(s.strip() for s in args.scopes.split(",") if s.strip())
    now_ms = time.time_ns() // 1_000_000
    try:
        secret, info = create_token_offline(
            Store(settings.db_path),
            args.account,
            scopes,
            args.description,
            now_ms=now_ms,
            expires_ms=now_ms + args.expires_days * DAY_MS,
        )
    except (ValueError, StoreUnavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(secret)
    print(
        f"token {info.id} of account {info.account} ({' '.join(info.scopes) or 'no scopes'}), "
        f"expires {iso_time(info.expires_ms)}; shown once. A running server sees it when it "
        "next starts (POST /api/tokens takes effect at once).",
        file=sys.stderr,
    )
    return 0


def _cluster(
    settings: Settings,
) -> tuple[Settings, list[socket.socket], EdgeSupervisor, EmbeddedRedis | None]:
    """This process as the core of ``settings.edges`` edges on its port (app/cluster.py):
    the core's settings, its socket (a private one for its edges), the edges (not started)
    and the embedded Redis (started) when no bus is configured."""
    redis = None
    bus = settings.bus
    if not bus:
        redis = EmbeddedRedis(settings.data_dir / "bus")
        redis.start()
        bus = redis.url
    # The edges hold the public port (each binds it with SO_REUSEPORT); the core listens on
    # a private loopback port only, where the edges pass it what is not theirs.
    private = listening_socket("127.0.0.1", 0, reuse_port=False)
    core_url = f"http://127.0.0.1:{private.getsockname()[1]}"
    env = edge_environment(settings.host, settings.port, bus, core_url)
    edges = EdgeSupervisor(settings.edges, env)
    # The core trusts what its edges forward (X-Forwarded-For): only they reach its port.
    core = settings.model_copy(
        update={"bus": bus, "role": "core", "forwarded_allow_ips": ("127.0.0.1",)}
    )
    return core, [private], edges, redis


def main(argv: list[str] | None = None) -> int:
    """Parse settings, then serve until interrupted. Returns the exit status."""
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["token"]:
        return token_command(args[1:])
    try:
        settings = Settings.from_env().with_args(argv)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    listener = install_queue_logging(settings.log_level, settings.log_format)
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

        sockets = None
        edges: EdgeSupervisor | None = None
        redis: EmbeddedRedis | None = None
        remote_analysis = None
        if settings.edges:
            settings, sockets, edges, redis = _cluster(settings)
            if redis is not None:
                # A bus of our own, for our edges: analysis stays in local processes.
                remote_analysis = False
        elif settings.reuse_port:
            sockets = [listening_socket(settings.host, settings.port, reuse_port=True)]
        if settings.role == "edge":
            from app.edge import create_edge_app

            app = create_edge_app(settings)
        else:
            app = create_app(
                settings, on_fatal=stop_after_store_failure, remote_analysis=remote_analysis
            )
        # uvicorn's own logging config writes to stderr from the loop: use the queue.
        server = Server(
            uvicorn_config(app, settings, log_config=None), on_stop=lambda: end_streams(app)
        )
        # uvicorn handles SIGTERM/SIGINT itself (spectators get 1012), then re-raises the
        # signal to the handler it found: make that one return, so a clean stop exits 0.
        for stop_signal in (signal.SIGTERM, signal.SIGINT):
            signal.signal(stop_signal, _stop_handler(server))
        if edges is not None:
            edges.start()
        # Everything imported and built so far lives as long as the process: keep it out
        # of the cyclic collector's full passes, which otherwise walk it all each time.
        # And make those passes ten times rarer: under a flood, the requests waiting for
        # their turn outlive the young generations, and each full pass over them stops
        # the loop for tens of milliseconds (see bench/flood.py in the README).
        gc.collect()
        gc.freeze()
        young, middle, _ = gc.get_threshold()
        gc.set_threshold(young, middle, 100)
        # The loop thread holds the GIL while it is busy; another thread that wants it (the
        # store's writer, with a move to acknowledge, or a PGN render) gets it only when the
        # switch interval has passed, and wants it back after each write. CPython's 5 ms
        # made every durable move wait several times that under load; and a render thread
        # holding the GIL for 5 ms held the loop as long.
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        try:
            server.run(sockets=sockets)
        finally:
            if edges is not None:
                edges.stop()
            if redis is not None:
                redis.stop()
        for stop_signal in (signal.SIGTERM, signal.SIGINT):
            signal.signal(stop_signal, signal.SIG_DFL)
        return EXIT_STORE_FAILED if failed else 0
    finally:
        stop_listener(listener)


if __name__ == "__main__":
    sys.exit(main())
