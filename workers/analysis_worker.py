"""The body of one analysis process: take a position, report every completed depth.

A worker speaks over one duplex pipe. Parent to worker: ``("go", job, fen, max_time_s,
max_depth)``, ``("stop", job)``, ``("quit",)``. Worker to parent: ``("ready", engine)``
once (or ``("failed", reason)`` when the engine does not start, and it exits), then
``("info", job, depth, cp, mate, best, pv, nodes)`` per completed depth and
``("done", job)`` when the job ends for any reason. Messages hold only primitives; no
``chess.Board`` crosses the pipe. Nothing survives from one job to the next except the
UCI engine process a worker drives.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Protocol

import chess
import chess.engine

from engine.search.search import iter_search

BUILTIN_NAME = "grandmaster-pvs"


@dataclass(frozen=True, slots=True)
class DepthInfo:
    """One completed depth: White-view ``cp`` or ``mate``, UCI ``best`` and ``pv``."""

    depth: int
    cp: int | None
    mate: int | None
    best: str
    pv: tuple[str, ...]
    nodes: int


class Backend(Protocol):
    """A search engine a worker can drive."""

    name: str

    def search(
        self, fen: str, max_depth: int, should_stop: Callable[[], bool]
    ) -> Iterator[DepthInfo]:
        """Yield completed depths until done or ``should_stop()``."""

    def close(self) -> None:
        """Release the engine."""


class BuiltinBackend:
    """The pure-Python principal variation search of :mod:`engine.search.search`."""

    name = BUILTIN_NAME

    def search(
        self, fen: str, max_depth: int, should_stop: Callable[[], bool]
    ) -> Iterator[DepthInfo]:
        """Iterative deepening, stoppable every few hundred nodes."""
        for info in iter_search(fen, max_depth=max_depth, should_stop=should_stop):
            yield DepthInfo(info.depth, info.score_cp, info.mate, info.best, info.pv, info.nodes)
            if should_stop():
                return

    def close(self) -> None:
        """Nothing to release."""


class UciBackend:
    """Any UCI engine, driven through python-chess (one engine process per worker)."""

    def __init__(self, path: str) -> None:
        self._engine = chess.engine.SimpleEngine.popen_uci(path)
        options = self._engine.options
        settings: dict[str, int] = {}
        if "Threads" in options:
            settings["Threads"] = 1
        if "Hash" in options:
            settings["Hash"] = 64
        if settings:
            self._engine.configure(settings)
        self.name = str(self._engine.id.get("name", os.path.basename(path)))

    def search(
        self, fen: str, max_depth: int, should_stop: Callable[[], bool]
    ) -> Iterator[DepthInfo]:
        """Stream the engine's ``info`` lines, one per completed depth.

        Nothing read after the stop is passed on: stopped mid-iteration, Stockfish prints a
        last ``info depth N ... pv`` (no bound flag) for the depth it did not finish, which
        would pass for a completed one. A completed depth in flight at the stop is lost.
        """
        board = chess.Board(fen)
        if board.is_game_over():
            return
        with self._engine.analysis(board, chess.engine.Limit(depth=max_depth)) as analysis:
            done = threading.Event()
            stopping = threading.Event()

            def watch() -> None:
                # The analysis iterator blocks on the engine; a stop must not wait for it.
                while not done.wait(0.02):
                    if should_stop():
                        stopping.set()
                        analysis.stop()
                        return

            watcher = threading.Thread(target=watch, name="gm-uci-watch", daemon=True)
            watcher.start()
            try:
                last_depth = 0
                for info in analysis:
                    if stopping.is_set():
                        continue
                    depth = info.get("depth")
                    score = info.get("score")
                    pv = info.get("pv")
                    if depth is None or score is None or not pv or depth <= last_depth:
                        continue
                    if "lowerbound" in info or "upperbound" in info:
                        continue
                    last_depth = depth
                    white = score.white()
                    moves = tuple(m.uci() for m in pv)
                    yield DepthInfo(
                        depth, white.score(), white.mate(), moves[0], moves, info.get("nodes", 0)
                    )
            finally:
                done.set()
                watcher.join()

    def close(self) -> None:
        """Quit the engine process."""
        with contextlib.suppress(chess.engine.EngineError, OSError, TimeoutError):
            self._engine.quit()


def make_backend(spec: str) -> Backend:
    """``"builtin"`` or ``"uci:/path/to/engine"``. Raises ValueError for anything else."""
    if spec == "builtin":
        return BuiltinBackend()
    if spec.startswith("uci:") and len(spec) > 4:
        return UciBackend(spec[4:])
    raise ValueError(f"unknown engine {spec!r}: use 'builtin' or 'uci:/path/to/engine'")


def worker_main(conn: Connection, engine_spec: str, niceness: int) -> None:
    """Run jobs from ``conn`` until told to quit or the parent goes away."""
    with contextlib.suppress(OSError):
        os.nice(niceness)
    try:
        backend = make_backend(engine_spec)
    except Exception as exc:
        # The pool's start() shows this; after start it delays the next attempt.
        with contextlib.suppress(OSError):
            conn.send(("failed", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", backend.name))
    try:
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                return
            if message[0] == "quit":
                return
            if message[0] != "go":
                continue
            _, job, fen, max_time_s, max_depth = message
            if _run_job(conn, backend, job, fen, max_time_s, max_depth):
                return
    finally:
        backend.close()


def _run_job(
    conn: Connection, backend: Backend, job: int, fen: str, max_time_s: float, max_depth: int
) -> bool:
    """Run one job; True when the parent asked to quit meanwhile."""
    deadline = time.monotonic() + max_time_s
    quit_requested = False
    stopped = False
    lock = threading.Lock()

    def should_stop() -> bool:
        nonlocal quit_requested, stopped
        with lock:
            if stopped:
                return True
            if time.monotonic() >= deadline:
                stopped = True
            while not stopped and conn.poll():
                message = conn.recv()
                if message[0] == "quit":
                    quit_requested = stopped = True
                elif message[0] == "stop" and message[1] == job:
                    stopped = True
            return stopped

    try:
        for info in backend.search(fen, max_depth, should_stop):
            conn.send(("info", job, info.depth, info.cp, info.mate, info.best, info.pv, info.nodes))
    except ValueError as exc:
        conn.send(("error", job, str(exc)))
    conn.send(("done", job))
    return quit_requested
