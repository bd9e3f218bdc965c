"""Spectators over real WebSockets and NDJSON streams against a real server."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import chess
import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.conftest import LiveServer, serve


def ws_url(live: LiveServer, path: str) -> str:
    """The ws:// URL of ``path`` on the live server."""
    return live.url.replace("http://", "ws://") + path


async def recv_json(ws: Any, wait_s: float = 5.0) -> dict[str, Any]:
    """The next message that is a game event or snapshot (spectator counts are skipped)."""
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), wait_s))
        if message["type"] != "spectators":
            return message  # type: ignore[no-any-return]


async def play(live: LiveServer, game_id: str, moves: list[str]) -> None:
    """Play ``moves`` as the operator, each with its ply."""
    game = (await live.client.get(f"/api/games/{game_id}")).json()
    for offset, move in enumerate(moves):
        r = await live.client.post(
            f"/api/games/{game_id}/moves",
            json={"move": move, "ply": game["ply"] + offset},
            headers=live.auth(),
        )
        assert r.status_code == 200, r.text


def long_game(n: int, seed: int = 7) -> list[str]:
    """``n`` random legal moves (UCI) from the start that neither end the game nor repeat much."""
    rng = random.Random(seed)
    board = chess.Board()
    out: list[str] = []
    while len(out) < n:
        moves = list(board.legal_moves)
        rng.shuffle(moves)
        for move in moves:
            board.push(move)
            if board.outcome(claim_draw=False) is None and not board.is_repetition(4):
                out.append(move.uci())
                break
            board.pop()
        else:
            raise RuntimeError("no continuation")
    return out


async def test_every_spectator_gets_every_event_in_order(live: LiveServer) -> None:
    """Twenty spectators each see the snapshot and then every event with consecutive seq."""
    game_id, _ = await live.started_game()
    sockets = [await websockets.connect(ws_url(live, f"/ws/games/{game_id}")) for _ in range(20)]
    try:
        for ws in sockets:
            snap = await recv_json(ws)
            assert snap["type"] == "snapshot"
            assert snap["game"]["seq"] == 1
        moves = ["e4", "e5", "Nf3", "Nc6", "Bb5", "a6"]
        await play(live, game_id, moves)
        for ws in sockets:
            events = [await recv_json(ws) for _ in moves]
            assert [e["seq"] for e in events] == list(range(2, 2 + len(moves)))
            assert [e["san"] for e in events] == moves
            assert all(e["type"] == "move" and e["game"] == game_id for e in events)
    finally:
        for ws in sockets:
            await ws.close()


async def test_resume_with_since_replays_only_what_was_missed(live: LiveServer) -> None:
    """After a dropped connection, ``since`` brings exactly the missed events; too old a seq gets a snapshot."""
    game_id, _ = await live.started_game()
    moves = long_game(76)
    await play(live, game_id, moves[:2])
    async with websockets.connect(ws_url(live, f"/ws/games/{game_id}")) as ws:
        snap = await recv_json(ws)
        last_seen = snap["game"]["seq"]
    await play(live, game_id, moves[2:5])
    async with websockets.connect(ws_url(live, f"/ws/games/{game_id}?since={last_seen}")) as ws:
        missed = [await recv_json(ws) for _ in range(3)]
        assert [m["seq"] for m in missed] == [last_seen + 1, last_seen + 2, last_seen + 3]
        assert [m["uci"] for m in missed] == moves[2:5]
        await play(live, game_id, moves[5:6])
        assert (await recv_json(ws))["seq"] == last_seen + 4
    await play(live, game_id, moves[6:76])
    async with websockets.connect(ws_url(live, f"/ws/games/{game_id}?since={last_seen}")) as ws:
        snap = await recv_json(ws)
        assert snap["type"] == "snapshot"
        assert snap["game"]["seq"] == last_seen + 4 + 70


async def test_resume_survives_a_restart(tmp_path: Path) -> None:
    """The replay history is rebuilt from the store, so ``since`` works after a restart."""
    async with serve(tmp_path / "data") as live:
        game_id, _ = await live.started_game()
        await play(live, game_id, ["e4", "c5", "Nf3"])
    async with (
        serve(tmp_path / "data") as live,
        websockets.connect(ws_url(live, f"/ws/games/{game_id}?since=2")) as ws,
    ):
        replay = [await recv_json(ws) for _ in range(2)]
        assert [(m["seq"], m["san"]) for m in replay] == [(3, "c5"), (4, "Nf3")]
        await play(live, game_id, ["d6"])
        assert (await recv_json(ws))["seq"] == 5


def raw_spectator(url: str, path: str) -> socket.socket:
    """A WebSocket handshake on a raw socket with a tiny receive buffer; the caller never reads."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    sock.connect((host, int(port)))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    response = b""
    while b"\r\n\r\n" not in response:
        response += sock.recv(1)
    assert response.startswith(b"HTTP/1.1 101")
    return sock


def read_until_dropped(sock: socket.socket, timeout_s: float = 30.0) -> int | None:
    """Read server frames until a close frame (its code) or the connection's end (None).

    Raises TimeoutError when the server neither closes nor drops within ``timeout_s``.
    """
    sock.settimeout(timeout_s)
    buffer = b""

    def take(n: int) -> bytes | None:
        nonlocal buffer
        while len(buffer) < n:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                return None
            if not chunk:
                return None
            buffer += chunk
        data, buffer = buffer[:n], buffer[n:]
        return data

    while True:
        if (head := take(2)) is None:
            return None
        opcode, length = head[0] & 0x0F, head[1] & 0x7F
        if length >= 126:
            if (extended := take(2 if length == 126 else 8)) is None:
                return None
            length = int.from_bytes(extended, "big")
        if (payload := take(length)) is None:
            return None
        if opcode == 0x8:
            return int.from_bytes(payload[:2], "big")


async def test_a_spectator_that_never_reads_does_not_hold_back_the_others(tmp_path: Path) -> None:
    """With a stuck raw-socket spectator, readers still get every event; the stuck one is skipped, then closed."""
    async with serve(
        tmp_path / "data",
        spectator_buffer_bytes=1024,
        spectator_behind_s=0.5,
        spectator_sndbuf_bytes=4096,
    ) as live:
        game_id, _ = await live.started_game()
        stuck = await asyncio.to_thread(raw_spectator, live.url, f"/ws/games/{game_id}")
        readers = [await websockets.connect(ws_url(live, f"/ws/games/{game_id}")) for _ in range(3)]
        try:
            for ws in readers:
                assert (await recv_json(ws))["type"] == "snapshot"
            moves = long_game(400)

            async def read_all(ws: Any) -> list[int]:
                return [(await recv_json(ws, wait_s=30))["seq"] for _ in moves]

            readers_done = asyncio.gather(*(read_all(ws) for ws in readers))
            await play(live, game_id, moves)
            for seqs in await readers_done:
                assert seqs == list(range(2, 2 + len(moves)))
            metrics = (await live.client.get("/metrics")).text
            dropped = next(
                line
                for line in metrics.splitlines()
                if line.startswith("gm_messages_dropped_total")
            )
            assert float(dropped.split()[1]) > 0
            for _ in range(100):
                game = (await live.client.get(f"/api/games/{game_id}")).json()
                if game["spectators"] == len(readers):
                    break
                await asyncio.sleep(0.05)
            assert game["spectators"] == len(readers)
            # Only now read what the stuck socket was sent: skipped events, then the close.
            code = await asyncio.to_thread(read_until_dropped, stuck)
            assert code in (1013, None)
        finally:
            stuck.close()
            for ws in readers:
                await ws.close()


async def read_until_closed(ws: Any) -> None:
    """Read until the server closes (raises ConnectionClosed), at most a few seconds."""
    async with asyncio.timeout(5):
        while True:
            await ws.recv()


@pytest.mark.parametrize(
    ("send", "code"),
    [
        ("x" * 5000, 1009),
        (b"\x00\x01", 1003),
        ('{"type": "subscribe", "game": "other"}', 1008),
    ],
)
async def test_spectators_may_only_ping(live: LiveServer, send: str | bytes, code: int) -> None:
    """Oversized frames close with 1009, binary with 1003, anything but a ping with 1008."""
    game_id, _ = await live.create_game()
    async with websockets.connect(ws_url(live, f"/ws/games/{game_id}")) as ws:
        await recv_json(ws)
        await ws.send("ping")
        assert json.loads(await ws.recv()) in (
            {"type": "pong"},
            {"type": "spectators", "game": game_id, "count": 1},
        )
        await ws.send(send)
        with pytest.raises(ConnectionClosed) as closed:
            await read_until_closed(ws)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == code


async def test_ping_flood_closes_with_1008(live: LiveServer) -> None:
    """A spectator sending pings faster than the rate limit is closed with 1008."""
    game_id, _ = await live.create_game()
    async with websockets.connect(ws_url(live, f"/ws/games/{game_id}")) as ws:
        for _ in range(30):
            await ws.send("ping")
        with pytest.raises(ConnectionClosed) as closed:
            await read_until_closed(ws)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1008


async def test_admission_cap_origin_and_unknown_game(tmp_path: Path) -> None:
    """Handshakes are refused with HTTP errors: unknown game 404, bad origin 403, over the cap 503."""
    async with serve(
        tmp_path / "data", max_spectators=2, origins=("https://watch.example",)
    ) as live:
        game_id, _ = await live.create_game()
        with pytest.raises(InvalidStatus) as refused:
            await websockets.connect(ws_url(live, "/ws/games/AAAAAAAA"))
        assert refused.value.response.status_code == 404
        with pytest.raises(InvalidStatus) as refused:
            await websockets.connect(
                ws_url(live, f"/ws/games/{game_id}"), origin="https://evil.example"
            )  # type: ignore[arg-type]
        assert refused.value.response.status_code == 403
        url = ws_url(live, f"/ws/games/{game_id}")
        a = await websockets.connect(url, origin="https://watch.example")  # type: ignore[arg-type]
        b = await websockets.connect(url)
        with pytest.raises(InvalidStatus) as refused:
            await websockets.connect(url)
        assert refused.value.response.status_code == 503
        assert json.loads(refused.value.response.body)["error"]["code"] == "unavailable"
        await a.close()
        await b.close()


async def test_spectator_count_is_pushed_and_visible_over_rest(live: LiveServer) -> None:
    """Spectator counts reach spectators (without seq) and the REST game shows them."""
    game_id, _ = await live.create_game()
    async with (
        websockets.connect(ws_url(live, f"/ws/games/{game_id}")) as a,
        websockets.connect(ws_url(live, f"/ws/games/{game_id}")) as b,
    ):
        await recv_json(a)
        await recv_json(b)
        while True:
            message = json.loads(await asyncio.wait_for(a.recv(), 5))
            if message["type"] == "spectators" and message["count"] == 2:
                break
        assert "seq" not in message
        assert (await live.client.get(f"/api/games/{game_id}")).json()["spectators"] == 2


async def ndjson_lines(client: httpx.AsyncClient, path: str) -> AsyncIterator[dict[str, Any]]:
    """Parsed non-empty lines of an NDJSON stream."""
    async with client.stream("GET", path) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("application/x-ndjson")
        async for line in r.aiter_lines():
            if line.strip():
                yield json.loads(line)


async def test_ndjson_stream_carries_the_same_payloads(live: LiveServer) -> None:
    """The NDJSON stream starts with the snapshot and then carries each event as on the socket."""
    game_id, _ = await live.started_game()
    lines = ndjson_lines(live.client, f"/api/stream/games/{game_id}")
    snap = await anext(lines)
    assert snap["type"] == "snapshot"
    assert snap["game"]["id"] == game_id
    await play(live, game_id, ["e4"])
    event = await anext(lines)
    assert (event["type"], event["seq"], event["san"], event["ply"]) == ("move", 2, "e4", 1)
    r = await live.client.post(
        f"/api/games/{game_id}/result", json={"result": "1/2-1/2"}, headers=live.auth()
    )
    assert r.status_code == 200
    end = await anext(lines)
    assert (end["type"], end["seq"], end["result"], end["termination"]) == (
        "end",
        3,
        "1/2-1/2",
        "arbiter",
    )
    await lines.aclose()


async def test_plain_asgi_servers_get_the_queued_fallback(tmp_path: Path) -> None:
    """Under uvicorn's stock WebSocket protocol (no direct path), spectators still get every event and the same limits."""
    async with serve(tmp_path / "data", uvicorn_overrides={"ws": "websockets-sansio"}) as live:
        game_id, _ = await live.started_game()
        async with websockets.connect(ws_url(live, f"/ws/games/{game_id}")) as ws:
            assert (await recv_json(ws))["type"] == "snapshot"
            await play(live, game_id, ["e4", "e5"])
            assert [(await recv_json(ws))["seq"] for _ in range(2)] == [2, 3]
            await ws.send("ping")
            assert json.loads(await asyncio.wait_for(ws.recv(), 5)) in (
                {"type": "pong"},
                {"type": "spectators", "game": game_id, "count": 1},
            )
            await ws.send("hello")
            with pytest.raises(ConnectionClosed) as closed:
                await read_until_closed(ws)
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 1008
