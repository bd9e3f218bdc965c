"""DGT LiveChess Cloud as a relay source: a real local server serves a round's index.json and
game files, which change between polls, and a real Grandmaster server polls them."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.livechess import LiveChessCache, fetch_round_pgn, is_livechess_url, round_index_url
from engine.rules.relay import read_moves, split_games
from tests.app.test_relay_api import random_line, relay_tournament, until
from tests.conftest import LiveServer, free_socket, serve

PLAYERS = [
    {"name": n}
    for n in (
        "Carlsen, Magnus",
        "Nakamura, Hikaru",
        "Caruana, Fabiano",
        "Firouzja, Alireza",
        "Ding, Liren",
        "Gukesh, Dommaraju",
    )
]
TID = "0d1c9a6e-5b1f-4c1e-9d7a-3f2b8c4e6a10"
ROUND_DIR = f"/get/{TID}/round-1"


class LiveChessSource:
    """A real HTTP server's content: LiveChess files by path, with ETags, counting 304s."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: Counter[str] = Counter()
        self.not_modified: Counter[str] = Counter()

    def put(self, name: str, doc: Any) -> None:
        """Serve ``doc`` (JSON, or raw bytes) as ``round-1/<name>``."""
        body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
        self.files[f"{ROUND_DIR}/{name}"] = body

    async def serve(self, request: Request) -> Response:
        path = request.url.path
        self.requests[path] += 1
        body = self.files.get(path)
        if body is None:
            return Response("not found", status_code=404)
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        if request.headers.get("if-none-match") == etag:
            self.not_modified[path] += 1
            return Response(status_code=304, headers={"ETag": etag})
        return Response(body, media_type="application/json", headers={"ETag": etag})


@pytest.fixture
async def livechess() -> AsyncIterator[tuple[LiveChessSource, str]]:
    """A LiveChess source on 127.0.0.1 and its base URL."""
    source = LiveChessSource()
    app = Starlette(routes=[Route("/{path:path}", source.serve)])
    sock = free_socket()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    await until(lambda: asyncio.sleep(0, server.started))
    try:
        yield source, f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()


def player(name: str) -> dict[str, Any]:
    """``"Carlsen, Magnus"`` as a LiveChess pairing player."""
    last, _, first = name.partition(", ")
    return {"fname": first, "mname": None, "lname": last, "title": "GM", "fideid": None}


def index(boards: list[tuple[str, str]], results: list[str] | None = None) -> dict[str, Any]:
    """An index.json for boards of (white, black) names."""
    results = results or ["*"] * len(boards)
    return {
        "date": "2024-05-01",
        "pairings": [
            {"white": player(w), "black": player(b), "result": r, "live": r == "*"}
            for (w, b), r in zip(boards, results, strict=True)
        ],
    }


def game(sans: list[str], result: str | None = None, **extra: Any) -> dict[str, Any]:
    """A game-N.json: each move with the mover's remaining seconds and the seconds spent."""
    moves = [f"{san} {5400 - 30 * i}+{30 + i}" for i, san in enumerate(sans)]
    return {"live": result is None, "chess960": 518, "result": result, "moves": moves, **extra}


def test_livechess_urls_are_recognised_and_follow_the_round() -> None:
    """Index URLs are LiveChess sources; the round directory follows the round relayed."""
    lcc = f"https://1.pool.livechesscloud.com/get/{TID}/round-3/index.json"
    assert is_livechess_url(lcc)
    assert is_livechess_url("http://127.0.0.1:8000/x/index.json")
    assert not is_livechess_url("https://example.org/round.pgn")
    assert not is_livechess_url("https://example.org/index.json.pgn")
    assert not is_livechess_url("ftp://example.org/index.json")
    assert round_index_url(lcc, 7) == lcc.replace("round-3", "round-7")
    assert round_index_url("http://h/x/index.json", 7) == "http://h/x/index.json"


async def test_fetch_round_pgn_uses_conditional_requests_and_reports_broken_files(
    livechess: tuple[LiveChessSource, str],
) -> None:
    """The round comes back as PGN; unchanged files are 304s and the call says None; a
    broken game file leaves its board out with an error while the others come through."""
    source, base = livechess
    line = random_line(10, 3)
    source.put("index.json", index([("A, B", "C, D"), ("E, F", "G, H")]))
    source.put("game-1.json", game(line[:4]))
    source.put("game-2.json", b'{"moves": ["e4 5400", ')
    cache = LiveChessCache()
    url = f"{base}{ROUND_DIR}/index.json"
    async with httpx.AsyncClient() as client:
        text = await fetch_round_pgn(client, url, cache)
        assert text is not None
        (pushed,) = split_games(text)
        assert read_moves(pushed).sans == tuple(line[:4])
        assert list(cache.errors) == [2] and "not JSON" in cache.errors[2]
        assert await fetch_round_pgn(client, url, cache) is None
        assert source.not_modified[f"{ROUND_DIR}/index.json"] == 1
        assert source.not_modified[f"{ROUND_DIR}/game-1.json"] == 1
        assert source.not_modified[f"{ROUND_DIR}/game-2.json"] == 1
        source.put("game-2.json", game(line[:2], "0-1"))
        text = await fetch_round_pgn(client, url, cache)
        assert text is not None and cache.errors == {}
        assert [read_moves(g).result for g in split_games(text)] == ["*", "0-1"]
        source.files.pop(f"{ROUND_DIR}/index.json")
        with pytest.raises(Exception, match="HTTP 404"):
            await fetch_round_pgn(client, url, cache)
        assert cache.last_status == 404


async def game_state(live: LiveServer, game_id: str) -> dict[str, Any]:
    """A game as the API shows it."""
    data: dict[str, Any] = (await live.client.get(f"/api/games/{game_id}")).json()
    return data


async def relay_status(live: LiveServer, tid: str) -> dict[str, Any]:
    """The tournament's relay status, as the operator sees it."""
    r = await live.client.get(f"/api/tournaments/{tid}", headers=live.auth())
    relay: dict[str, Any] = r.json().get("relay") or {}
    return relay


async def test_a_livechess_round_is_polled_into_the_games(
    tmp_path: Path, livechess: tuple[LiveChessSource, str]
) -> None:
    """The server polls the LiveChess round of the tournament's current round: moves with
    their clocks and results arrive, unchanged files are asked for conditionally, and a
    broken game file is shown in the relay status without stopping the other boards."""
    source, base = livechess
    # The URL names round 9; the tournament is in round 1, so round-1 is the one read.
    relay_url = f"{base}/get/{TID}/round-9/index.json"
    async with serve(tmp_path / "data", relay_poll_s=0.2, relay_max_backoff_s=0.5) as live:
        tid, pairings = await relay_tournament(live, relay_url=relay_url, players=PLAYERS)
        t = (await live.client.get(f"/api/tournaments/{tid}", headers=live.auth())).json()
        who = {p["id"]: p["name"] for p in t["players"]}
        boards = [(who[p["white"]], who[p["black"]]) for p in pairings]
        games = [p["game"] for p in pairings]
        assert len(boards) == 3
        line = random_line(20, 11)
        source.put("index.json", index(boards))
        source.put("game-1.json", game(line[:6]))
        source.put("game-2.json", game(line[:3]))
        source.put("game-3.json", b"<html>502 Bad Gateway</html>")

        async def at(game_id: str, ply: int) -> bool:
            return bool((await game_state(live, game_id))["ply"] == ply)

        await until(lambda: at(games[0], 6))
        await until(lambda: at(games[1], 3))
        state = await game_state(live, games[0])
        assert [m["san"] for m in state["moves"]] == line[:6]
        assert [m["clock_ms"] for m in state["moves"]] == [(5400 - 30 * i) * 1000 for i in range(6)]

        async def board_3_reported() -> bool:
            error = (await relay_status(live, tid)).get("last_error") or ""
            return "board 3" in error and "not JSON" in error

        await until(board_3_reported)
        assert (await game_state(live, games[2]))["ply"] == 0
        # Nothing changes: the files are asked for again, conditionally.
        for name in ("index.json", "game-1.json", "game-3.json"):
            path = f"{ROUND_DIR}/{name}"
            await until(lambda path=path: asyncio.sleep(0, source.not_modified[path] >= 2))
        assert source.requests[f"/get/{TID}/round-9/index.json"] == 0
        # Board 1 plays on and its clock object gives the last moves' times; board 2 ends by
        # the index's result; board 3's file is repaired.
        source.put("game-1.json", game(line[:8], clock={"white": 5100, "black": 5050, "time": 0}))
        source.put("index.json", index(boards, ["*", "1-0", "*"]))
        source.put("game-3.json", game(line[:2]))
        await until(lambda: at(games[0], 8))
        await until(lambda: at(games[2], 2))
        state = await game_state(live, games[0])
        assert [m["clock_ms"] for m in state["moves"][6:]] == [5_100_000, 5_050_000]

        async def decided() -> bool:
            return bool((await game_state(live, games[1]))["result"] == "1-0")

        await until(decided)
        assert (await game_state(live, games[1]))["termination"] == "arbiter"

        async def healthy() -> bool:
            status = await relay_status(live, tid)
            return status.get("last_error") is None and status.get("failures") == 0

        await until(healthy)
        status = await relay_status(live, tid)
        assert status["last_status"] in (200, 304) and status["games"] == 3
        # The game file's own result: board 1 is won by black.
        source.put("game-1.json", game(line[:8], "0-1"))
        await until(lambda: game_result(live, games[0], "0-1"))


async def game_result(live: LiveServer, game_id: str, result: str) -> bool:
    """Whether the game has ``result``."""
    return bool((await game_state(live, game_id))["result"] == result)
