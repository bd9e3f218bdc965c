"""Spectators that stop reading, on real sockets: dropped at the TCP level, counted until gone."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest
import websockets
from websockets.exceptions import InvalidStatus

import app.ws_protocol
from tests.app.test_live import long_game, play, raw_spectator, read_until_dropped, ws_url
from tests.conftest import LiveServer, serve

STUCK = 20
# Small buffers everywhere, so that a few dozen events fill a connection that is not read.
ABORT_S = 10.0
SETTINGS = {
    "max_spectators": STUCK,
    "ws_ping_interval_s": 1.0,
    "spectator_behind_s": 1.0,
    "spectator_buffer_bytes": 1024,
    "spectator_sndbuf_bytes": 4096,
}
# TCP states in /proc/net/tcp: the server side of a connection still there (holding or
# sending data) versus closed by its owner.
_ESTABLISHED, _FIN_WAIT1, _LISTEN = "01", "04", "0A"


def _tcp_sockets() -> list[tuple[int, int, str, int]]:
    """(local port, remote port, state, unsent bytes) of every IPv4 TCP socket."""
    found = []
    with open("/proc/net/tcp") as table:
        next(table)
        for line in table:
            fields = line.split()
            local_port = int(fields[1].split(":")[1], 16)
            remote_port = int(fields[2].split(":")[1], 16)
            found.append((local_port, remote_port, fields[3], int(fields[4].split(":")[0], 16)))
    return found


def server_side(port: int) -> list[tuple[str, int]]:
    """(state, unsent bytes) of each server-side TCP socket on ``port``, listener excluded."""
    return [
        (st, unsent) for local, _, st, unsent in _tcp_sockets() if local == port and st != _LISTEN
    ]


def unsent_to(port: int, clients: list[socket.socket]) -> list[int]:
    """Unsent bytes of the server side of each of ``clients``' connections to ``port``.

    Matched by the clients' own ports: another connection to the server (the test's HTTP
    client, whose last response may wait on a delayed ACK) must not be counted as stuck."""
    peers = {client.getsockname()[1] for client in clients}
    return [
        unsent for local, remote, _, unsent in _tcp_sockets() if local == port and remote in peers
    ]


def held(port: int) -> list[tuple[str, int]]:
    """Server-side sockets that still hold a connection or unsent data."""
    return [
        (state, unsent)
        for state, unsent in server_side(port)
        if state in (_ESTABLISHED, _FIN_WAIT1) or unsent > 0
    ]


def port_of(live: LiveServer) -> int:
    return int(live.url.rsplit(":", 1)[1])


async def wait_until_gone(port: int, timeout_s: float) -> None:
    """Poll until no server-side socket on ``port`` is held; fail listing them after ``timeout_s``."""
    for _ in range(round(timeout_s / 0.05)):
        if not held(port):
            return
        await asyncio.sleep(0.05)
    assert not held(port), f"server side still held after {timeout_s} s: {held(port)}"


def raw_stream(url: str, path: str) -> socket.socket:
    """An NDJSON stream request on a raw socket with a tiny receive buffer; never read."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    sock.connect((host, int(port)))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    return sock


def read_to_end(sock: socket.socket, timeout_s: float = 5.0) -> bytes:
    """Everything the server sent until it closed (EOF) or reset the connection."""
    sock.settimeout(timeout_s)
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk


async def test_websocket_spectators_that_never_read_are_dropped_and_counted_until_gone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Twenty never-reading WebSocket spectators fill their buffers, keep the cap full while
    closing, and are then really gone at the TCP level."""
    # A closing phase long enough to observe on a loaded machine.
    monkeypatch.setattr(app.ws_protocol, "ABORT_AFTER_S", ABORT_S)
    async with serve(tmp_path / "data", **SETTINGS) as live:
        port = port_of(live)
        game_id, _ = await live.started_game()
        moves = long_game(240)
        await play(live, game_id, moves[:200])
        path = f"/ws/games/{game_id}?since=140"
        stuck = [await asyncio.to_thread(raw_spectator, live.url, path) for _ in range(STUCK)]
        try:
            await play(live, game_id, moves[200:])
            # Really stuck: every server-side socket holds data its client does not read
            # (once the fan-out, which runs beside the moves, has written to all of them).
            for _ in range(100):
                if len([u for u in unsent_to(port, stuck) if u > 0]) == STUCK:
                    break
                await asyncio.sleep(0.05)
            assert len([u for u in unsent_to(port, stuck) if u > 0]) == STUCK, server_side(port)

            async def dropped_from_game() -> None:
                while True:
                    game = (await live.client.get(f"/api/games/{game_id}")).json()
                    if game["spectators"] == 0:
                        return
                    await asyncio.sleep(0.05)

            # Closing (ping timeout or too far behind), no longer watching the game...
            await asyncio.wait_for(dropped_from_game(), ABORT_S)
            # ...but still connected, so still counted against the cap.
            assert held(port), "closed too soon for this test to see the closing phase"
            with pytest.raises(InvalidStatus) as refused:
                await websockets.connect(ws_url(live, f"/ws/games/{game_id}"))
            assert refused.value.response.status_code == 503
            # Within ABORT_AFTER_S of the close, the server side is gone.
            await wait_until_gone(port, ABORT_S + 5)
            metrics = (await live.client.get("/metrics")).text
            assert "gm_spectators 0.0" in metrics.splitlines()
            async with websockets.connect(ws_url(live, f"/ws/games/{game_id}")) as ws:
                assert "snapshot" in await asyncio.wait_for(ws.recv(), 5)
            for sock in stuck:
                code = await asyncio.to_thread(read_until_dropped, sock, 5.0)
                assert code in (None, 1011, 1013)
        finally:
            for sock in stuck:
                sock.close()


async def test_ndjson_readers_that_never_read_are_dropped_and_counted_until_gone(
    tmp_path: Path,
) -> None:
    """Twenty never-reading NDJSON readers count against the cap while stuck, and are reset
    once behind for ``spectator_behind_s``: their server side is gone."""
    async with serve(tmp_path / "data", **{**SETTINGS, "spectator_behind_s": 8.0}) as live:
        port = port_of(live)
        game_id, _ = await live.started_game()
        moves = long_game(240)
        await play(live, game_id, moves[:200])
        path = f"/api/stream/games/{game_id}?since=140"
        stuck = [await asyncio.to_thread(raw_stream, live.url, path) for _ in range(STUCK)]
        try:
            await play(live, game_id, moves[200:])
            assert len([u for u in unsent_to(port, stuck) if u > 0]) == STUCK, server_side(port)
            # Stuck and behind, not yet dropped: the cap is full.
            r = await live.client.get(f"/api/stream/games/{game_id}")
            assert r.status_code == 503
            await wait_until_gone(port, 15)
            metrics = (await live.client.get("/metrics")).text
            assert "gm_spectators 0.0" in metrics.splitlines()
            async with live.client.stream("GET", f"/api/stream/games/{game_id}") as r:
                assert r.status_code == 200
            for sock in stuck:
                data = await asyncio.to_thread(read_to_end, sock)
                assert data.startswith(b"HTTP/1.1 200")
        finally:
            for sock in stuck:
                sock.close()
