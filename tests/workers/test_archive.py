"""The PGN archive's thread pool: renders for readers are bounded, writes are not refused."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from workers.archive import PgnArchive, RenderBusy


async def test_renders_beyond_the_bound_are_refused_at_once(tmp_path: Path) -> None:
    """With two renders under way (one running, one waiting), a third is refused with RenderBusy; once they finish, renders are taken again and an archive write is never refused."""
    archive = PgnArchive(tmp_path, threads=1, max_renders=2)
    gate = threading.Event()

    def slow() -> str:
        gate.wait(5)
        return "pgn"

    try:
        first = asyncio.ensure_future(archive.render(slow))
        second = asyncio.ensure_future(archive.render(slow))
        await asyncio.sleep(0.05)
        with pytest.raises(RenderBusy):
            await archive.render(lambda: "third")
        writing = asyncio.ensure_future(archive.write("gameAAAA", lambda: "[Event]\n\n*\n"))
        gate.set()
        assert await asyncio.gather(first, second) == ["pgn", "pgn"]
        assert await archive.render(lambda: "again") == "again"
        assert (await writing).read_text() == "[Event]\n\n*\n"
    finally:
        gate.set()
        archive.close()


async def test_writes_of_one_game_land_in_order_without_colliding(tmp_path: Path) -> None:
    """Many writes of one game at once all succeed, and the file holds the last one asked for."""
    archive = PgnArchive(tmp_path, threads=4)
    try:
        writes = [archive.write("AbCd1234", lambda i=i: f"version {i}\n" * 2000) for i in range(40)]
        await asyncio.gather(*writes)
        files = await asyncio.to_thread(lambda: {p.name: p.read_text() for p in tmp_path.iterdir()})
        assert files == {"AbCd1234.pgn": "version 39\n" * 2000}
    finally:
        archive.close()
