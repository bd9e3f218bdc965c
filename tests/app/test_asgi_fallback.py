"""The queued spectator fallback (app/routes_live.py ``_drain``) under a second ASGI server, Hypercorn."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config as HypercornConfig
from starlette.websockets import WebSocketDisconnect
from websockets.exceptions import ConnectionClosed

from app import Settings, create_app
from app.routes_live import _drain
from app.spectators import Message, QueuedSpectator
from tests.app.test_live import (
    long_game,
    play,
    raw_spectator,
    read_until_closed,
    read_until_dropped,
    recv_json,
    ws_url,
)
from tests.conftest import LiveServer, free_socket


@contextlib.asynccontextmanager
async def serve_hypercorn(
    data_dir: Path, *, sndbuf_bytes: int | None = None, **settings_overrides: Any
) -> AsyncIterator[LiveServer]:
    """Run the real app under Hypercorn on 127.0.0.1, on the test's event loop, until the block exits.

    ``sndbuf_bytes`` caps the kernel send buffer of every accepted connection (they inherit
    it from the listening socket): ASGI gives the app no way to, and with Linux's default
    of up to 4 MiB a stuck client would take minutes of moves to fill.
    """
    settings = Settings(
        data_dir=data_dir,
        operator_token="operator-secret-token",
        analysis=False,
        **settings_overrides,
    )
    app = create_app(settings)
    sock = free_socket()
    if sndbuf_bytes is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf_bytes)
    port = sock.getsockname()[1]
    config = HypercornConfig()
    config.bind = [f"fd://{sock.detach()}"]  # Hypercorn owns (and closes) the socket
    config.accesslog = None
    config.loglevel = "WARNING"
    config.graceful_timeout = 1.0
    shutdown = asyncio.Event()
    task = asyncio.create_task(hypercorn_serve(app, config, shutdown_trigger=shutdown.wait))  # type: ignore[arg-type]
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        try:
            deadline = time.monotonic() + 10
            while True:
                if task.done():
                    task.result()
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get("/healthz")).status_code == 200:
                        break
                assert time.monotonic() < deadline, "hypercorn did not start"
                await asyncio.sleep(0.02)
            yield LiveServer(url, "operator-secret-token", data_dir, app, client)
        finally:
            shutdown.set()
            await task


def session_tasks() -> int:
    """How many tasks of fallback WebSocket sessions (writers and readers) are alive on this loop."""
    names = {"_drain", "_read_pings"}
    return sum(1 for t in asyncio.all_tasks() if t.get_coro().__qualname__ in names)  # type: ignore[union-attr]


async def test_hypercorn_spectators_get_the_snapshot_then_every_event(tmp_path: Path) -> None:
    """Under Hypercorn (no direct path) each spectator gets the snapshot, then every event in order, pongs, and 1008 for anything but a ping."""
    async with serve_hypercorn(tmp_path / "data") as live:
        game_id, _ = await live.started_game()
        sockets = [await websockets.connect(ws_url(live, f"/ws/games/{game_id}")) for _ in range(3)]
        try:
            for ws in sockets:
                assert (await recv_json(ws))["type"] == "snapshot"
            moves = ["e4", "e5", "Nf3", "Nc6"]
            await play(live, game_id, moves)
            for ws in sockets:
                assert [(await recv_json(ws))["seq"] for _ in moves] == [2, 3, 4, 5]
            await sockets[0].send("ping")
            assert json.loads(await asyncio.wait_for(sockets[0].recv(), 5)) in (
                {"type": "pong"},
                {"type": "spectators", "game": game_id, "count": 3},
            )
            await sockets[0].send("hello")
            with pytest.raises(ConnectionClosed) as closed:
                await read_until_closed(sockets[0])
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 1008
        finally:
            for ws in sockets:
                await ws.close()


async def test_hypercorn_spectator_that_never_reads_is_closed_and_holds_back_no_one(
    tmp_path: Path,
) -> None:
    """A raw-socket spectator that stops reading is closed (1013) or dropped and its writer task ends, while a reader on the same game gets every move."""
    async with serve_hypercorn(
        tmp_path / "data", sndbuf_bytes=4096, spectator_behind_s=0.5
    ) as live:
        game_id, _ = await live.started_game()
        stuck = await asyncio.to_thread(raw_spectator, live.url, f"/ws/games/{game_id}")
        reader = await websockets.connect(ws_url(live, f"/ws/games/{game_id}"))
        try:
            assert (await recv_json(reader))["type"] == "snapshot"
            assert session_tasks() == 4
            # About 160 KB of events: past the kernel buffers and asyncio's 64 KiB high water.
            moves = long_game(800, seed=18)

            async def read_all() -> list[int]:
                return [(await recv_json(reader, wait_s=30))["seq"] for _ in moves]

            read = asyncio.ensure_future(read_all())
            await play(live, game_id, moves)
            assert await read == list(range(2, 2 + len(moves)))
            # The stuck spectator's session ends on its own within a bounded time.
            deadline = time.monotonic() + 10
            while session_tasks() > 2 or (
                (await live.client.get(f"/api/games/{game_id}")).json()["spectators"] != 1
            ):
                assert time.monotonic() < deadline, "the stuck spectator is still served"
                await asyncio.sleep(0.05)
            # Only now read what the stuck socket was sent: events, then the close (or the end).
            code = await asyncio.to_thread(read_until_dropped, stuck, 10.0)
            assert code in (1013, None)
        finally:
            stuck.close()
            await reader.close()


class StuckWebSocket:
    """A WebSocket whose sends never complete, as ASGI's do for a client that stopped reading."""

    def __init__(self) -> None:
        self.sends = 0
        self.sending = asyncio.Event()
        self.closes: list[int] = []

    async def send_text(self, text: str) -> None:
        self.sends += 1
        self.sending.set()
        await asyncio.Event().wait()

    async def close(self, code: int = 1000) -> None:
        self.closes.append(code)


async def test_a_full_queue_ends_a_writer_stuck_in_send() -> None:
    """A queue that fills while the writer is stuck in a send closes the spectator with 1013 and ends the writer, without waiting for the send deadline."""
    spectator = QueuedSpectator(max_queue=4)
    websocket = StuckWebSocket()
    drain = asyncio.create_task(_drain(websocket, spectator, behind_s=3600))  # type: ignore[arg-type]
    spectator.deliver(Message("{}", game="g", seq=0))
    await websocket.sending.wait()
    for seq in range(1, 10):
        spectator.deliver(Message("{}", game="g", seq=seq))
    await asyncio.wait_for(drain, 10)
    assert spectator.is_closed
    assert spectator.close_code == 1013
    assert websocket.sends == 1
    assert websocket.closes == [1013]


async def test_a_send_past_the_deadline_closes_with_1013() -> None:
    """A single send still pending after ``behind_s`` closes the spectator with 1013, even with room left in its queue."""
    spectator = QueuedSpectator()
    websocket = StuckWebSocket()
    drain = asyncio.create_task(_drain(websocket, spectator, behind_s=0.01))  # type: ignore[arg-type]
    spectator.deliver(Message("{}", game="g", seq=1))
    await asyncio.wait_for(drain, 10)
    assert spectator.close_code == 1013
    assert websocket.closes == [1013]


async def test_a_client_gone_ends_the_writer_without_a_close() -> None:
    """A send that fails because the client left ends the writer quietly."""

    class Gone(StuckWebSocket):
        async def send_text(self, text: str) -> None:
            raise WebSocketDisconnect(1006)

    spectator = QueuedSpectator()
    websocket = Gone()
    drain = asyncio.create_task(_drain(websocket, spectator, behind_s=3600))  # type: ignore[arg-type]
    spectator.deliver(Message("{}", game="g", seq=1))
    await asyncio.wait_for(drain, 10)
    assert websocket.closes == []
