"""Finished games' PGN files, written by a small thread pool for humans and other tools.

The files are a convenience copy: the store is the record. Each file is written to a
temporary name, fsynced and renamed, so a reader never sees half a game.
"""

from __future__ import annotations

import asyncio
import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

_SAFE_ID = re.compile(r"[A-Za-z0-9]{8,64}")


class PgnArchive:
    """Writes ``<dir>/<game id>.pgn``; ``close()`` waits for the writes under way."""

    def __init__(self, directory: Path, *, threads: int = 2) -> None:
        self.directory = directory
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="gm-pgn")

    async def write(self, game_id: str, pgn: str) -> Path:
        """Write (or replace) the game's file off the loop and return its path.

        Raises ValueError for an id that is not a server-made id, OSError on I/O failure.
        """
        if not _SAFE_ID.fullmatch(game_id):
            raise ValueError(f"not a game id: {game_id!r}")
        path = self.directory / f"{game_id}.pgn"
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._pool, _write_atomically, path, pgn)
        return path

    def close(self) -> None:
        """Wait for pending writes and stop the threads."""
        self._pool.shutdown(wait=True)


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".pgn.tmp")
    with tmp.open("w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
