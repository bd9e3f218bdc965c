"""PGN off the event loop: rendering and finished games' files, on a small thread pool.

Rendering a long game with python-chess takes milliseconds (about 12 ms at 300 plies),
which the event loop must not spend. The files are a convenience copy for humans and
other tools: the store is the record. Each file is written to a temporary name, fsynced
and renamed, so a reader never sees half a game.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

_SAFE_ID = re.compile(r"[A-Za-z0-9]{8,64}")


class RenderBusy(Exception):
    """Too many PGN renders are waiting: the request is refused (the caller answers 503)."""


class PgnArchive:
    """Writes ``<dir>/<game id>.pgn``; ``close()`` waits for the writes under way.

    At most ``max_renders`` renders asked for by readers wait or run at once; beyond that
    :meth:`render` refuses at once, so a flood of PGN reads queues neither without bound
    nor in front of the archive writes.
    """

    def __init__(self, directory: Path, *, threads: int = 2, max_renders: int = 64) -> None:
        self.directory = directory
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="gm-pgn")
        self._max_renders = max_renders
        self._renders = 0
        # Writes of one game in the order they were asked for (two threads would race on
        # its temporary file, and an older version could land last): a lock per game
        # being written, and how many writes hold or wait for it.
        self._writing: dict[str, tuple[asyncio.Lock, int]] = {}

    async def render(self, render: Callable[[], str]) -> str:
        """Run ``render`` (a PGN export of immutable game state) on the pool.

        Raises RenderBusy when ``max_renders`` are already waiting or running.
        """
        if self._renders >= self._max_renders:
            raise RenderBusy(f"{self._renders} PGN renders are under way; try again shortly")
        self._renders += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, render)
        finally:
            self._renders -= 1

    def path_of(self, game_id: str) -> Path:
        """Where a finished game's file is (or will be). Raises ValueError for a bad id."""
        if not _SAFE_ID.fullmatch(game_id):
            raise ValueError(f"not a game id: {game_id!r}")
        return self.directory / f"{game_id}.pgn"

    async def write(self, game_id: str, render: Callable[[], str]) -> Path:
        """Render and write (or replace) the game's file off the loop; return its path.
        Writes of one game happen one at a time, in the order they were asked for.

        Raises ValueError for an id that is not a server-made id, OSError on I/O failure.
        """
        path = self.path_of(game_id)
        lock, users = self._writing.get(game_id, (asyncio.Lock(), 0))
        self._writing[game_id] = (lock, users + 1)
        try:
            async with lock:
                loop = asyncio.get_running_loop()
                await loop.run_in_executor(self._pool, _render_and_write, path, render)
        finally:
            lock, users = self._writing[game_id]
            if users == 1:
                del self._writing[game_id]
            else:
                self._writing[game_id] = (lock, users - 1)
        return path

    def close(self) -> None:
        """Wait for pending writes and stop the threads."""
        self._pool.shutdown(wait=True)


def _render_and_write(path: Path, render: Callable[[], str]) -> None:
    _write_atomically(path, render())


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".pgn.tmp")
    with tmp.open("w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
