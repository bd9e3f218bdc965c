"""Live analysis end to end: a real server with real worker processes and real sockets."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import shutil
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import chess.pgn
import pytest
import websockets

from app.analysis import AnalysisService
from tests.conftest import LiveServer, serve
from workers.analysis import Job

ANALYSIS = {"analysis": True, "analysis_processes": 1, "analysis_max_time_s": 2.0}


def ws_url(live: LiveServer, path: str) -> str:
    """The ws:// URL of ``path``."""
    return live.url.replace("http://", "ws://") + path


class Watcher:
    """A spectator socket that records every message it receives."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.messages: list[dict[str, Any]] = []
        self.changed = asyncio.Event()
        self.task = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        async for raw in self.ws:
            self.messages.append(json.loads(raw))
            self.changed.set()

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Received game events (with seq), optionally of one type."""
        return [m for m in self.messages if "seq" in m and (kind is None or m["type"] == kind)]

    async def wait_for(self, predicate, timeout_s: float = 20.0) -> None:  # type: ignore[no-untyped-def]
        """Wait (bounded) until ``predicate(self)`` holds, re-checking on messages and every 20 ms."""
        async with asyncio.timeout(timeout_s):
            while not predicate(self):
                self.changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.changed.wait(), 0.02)


@pytest.fixture
async def analysed(tmp_path: Path) -> AsyncIterator[LiveServer]:
    """A server analysing with one built-in-engine worker."""
    async with serve(tmp_path / "data", **ANALYSIS) as live:
        yield live


async def move(live: LiveServer, game_id: str, text: str) -> None:
    """Play ``text`` as the operator."""
    r = await live.client.post(
        f"/api/games/{game_id}/moves", json={"move": text}, headers=live.auth()
    )
    assert r.status_code == 200, r.text


async def test_evals_concern_only_the_current_position(analysed: LiveServer) -> None:
    """Each eval event is for the ply on the board when it was sent, in seq order, and deepens."""
    live = analysed
    game_id, _ = await live.started_game()
    async with websockets.connect(ws_url(live, f"/ws/games/{game_id}")) as ws:
        watcher = Watcher(ws)
        for text in ["e4", "c5", "Nf3", "d6"]:
            ply = len(watcher.events("move"))
            await watcher.wait_for(lambda w, p=ply: any(e["ply"] == p for e in w.events("eval")))
            await move(live, game_id, text)
        await watcher.wait_for(lambda w: any(e["ply"] == 4 for e in w.events("eval")))
        events = watcher.events()
        assert [e["seq"] for e in events] == list(
            range(events[0]["seq"], events[0]["seq"] + len(events))
        )
        board_ply = 0
        depth_at: dict[int, int] = {}
        for event in events:
            if event["type"] == "move":
                board_ply = event["ply"]
            elif event["type"] == "eval":
                assert event["ply"] == board_ply
                assert event["depth"] >= depth_at.get(board_ply, 0)
                depth_at[board_ply] = event["depth"]
                assert set(event["score"]) in ({"cp"}, {"mate"})
                assert event["pv"][0] == event["best"]
                assert event["engine"] == "grandmaster-pvs"
        game = (await live.client.get(f"/api/games/{game_id}")).json()
        assert game["eval"]["ply"] == 4
        watcher.task.cancel()


async def test_evals_are_coalesced_to_about_two_a_second(analysed: LiveServer) -> None:
    """While a position deepens for two seconds, a game emits no more than about two evals a second."""
    live = analysed
    game_id, _ = await live.started_game()
    async with websockets.connect(ws_url(live, f"/ws/games/{game_id}")) as ws:
        watcher = Watcher(ws)
        await watcher.wait_for(lambda w: w.events("eval"))
        await asyncio.sleep(2.5)
        evals = watcher.events("eval")
        # The first is sent at once, then at most one per half second over 2.5 s.
        assert 1 <= len(evals) <= 7
        watcher.task.cancel()


async def test_repeated_position_is_answered_from_the_cache(analysed: LiveServer) -> None:
    """Back at a position seen before, its evaluation arrives without waiting for a new search."""
    live = analysed
    game_id, _ = await live.started_game()
    async with websockets.connect(ws_url(live, f"/ws/games/{game_id}")) as ws:
        watcher = Watcher(ws)
        await watcher.wait_for(
            lambda w: any(e["ply"] == 0 and e["depth"] >= 3 for e in w.events("eval"))
        )
        service: AnalysisService = live.app.state.analysis  # type: ignore[attr-defined]
        cached_depth = service.cache.get("rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkq -")
        assert cached_depth is not None
        for text in ["Nf3", "Nf6", "Ng1", "Ng8"]:
            await move(live, game_id, text)
        await watcher.wait_for(lambda w: any(e["ply"] == 4 for e in w.events("eval")))
        first = next(e for e in watcher.events("eval") if e["ply"] == 4)
        assert first["depth"] >= cached_depth["depth"]
        watcher.task.cancel()


async def test_a_killed_worker_does_not_stop_analysis(analysed: LiveServer) -> None:
    """After SIGKILL of the worker mid-search, later moves are analysed by its replacement."""
    live = analysed
    game_id, _ = await live.started_game()
    service: AnalysisService = live.app.state.analysis  # type: ignore[attr-defined]
    async with websockets.connect(ws_url(live, f"/ws/games/{game_id}")) as ws:
        watcher = Watcher(ws)
        await watcher.wait_for(lambda w: w.events("eval"))
        [pid] = service.pool.pids()
        os.kill(pid, signal.SIGKILL)
        await watcher.wait_for(
            lambda _: (
                service.pool.restarts == 1
                and service.pool.idle() + len(service.pool.running()) == 1
            )
        )
        await move(live, game_id, "d4")
        await watcher.wait_for(lambda w: any(e["ply"] == 1 for e in w.events("eval")))
        assert service.pool.pids() != [pid]
        assert (await live.client.get("/healthz")).status_code == 200
        watcher.task.cancel()


async def test_evaluations_reach_the_pgn_and_survive_a_restart(tmp_path: Path) -> None:
    """Analysed positions carry [%eval] in the PGN, also for a finished game after a restart."""
    async with serve(tmp_path / "data", **ANALYSIS) as live:
        game_id, _ = await live.started_game()
        async with websockets.connect(ws_url(live, f"/ws/games/{game_id}")) as ws:
            watcher = Watcher(ws)
            for ply, text in enumerate(["e4", "e5", "Qh5"], start=1):
                await move(live, game_id, text)
                await watcher.wait_for(
                    lambda w, p=ply: any(e["ply"] == p for e in w.events("eval"))
                )
            watcher.task.cancel()
        r = await live.client.post(
            f"/api/games/{game_id}/result", json={"result": "1-0"}, headers=live.auth()
        )
        assert r.status_code == 200
        before = (await live.client.get(f"/api/games/{game_id}/pgn")).text
    async with serve(tmp_path / "data", **ANALYSIS) as live:
        after = (await live.client.get(f"/api/games/{game_id}/pgn")).text
    assert after == before
    game = chess.pgn.read_game(io.StringIO(after))
    assert game is not None
    evals = [node.eval() for node in game.mainline()]
    assert all(e is not None for e in evals)
    assert [n.move.uci() for n in game.mainline()] == ["e2e4", "e7e5", "d1h5"]


async def test_stockfish_drives_analysis_when_configured(tmp_path: Path) -> None:
    """With GM_ENGINE=uci:<stockfish>, spectators get Stockfish's evaluations as eval events."""
    stockfish = shutil.which("stockfish") or "/usr/games/stockfish"
    settings = {**ANALYSIS, "engine": f"uci:{stockfish}"}
    async with serve(tmp_path / "data", **settings) as live:
        game_id, _ = await live.started_game(fen="6k1/5ppp/8/8/8/8/5PPP/R5K1 w - - 0 1")
        async with websockets.connect(ws_url(live, f"/ws/games/{game_id}")) as ws:
            watcher = Watcher(ws)
            await watcher.wait_for(
                lambda w: any(e["score"] == {"mate": 1} for e in w.events("eval"))
            )
            event = next(e for e in watcher.events("eval") if e["score"] == {"mate": 1})
            assert event["engine"].startswith("Stockfish")
            assert event["best"] == "a1a8"
            watcher.task.cancel()


class FakePool:
    """Records submissions; ``free`` workers are idle."""

    def __init__(self, free: int) -> None:
        self.free = free
        self.submitted: list[Job] = []
        self.listener: object = None
        self.next_id = 0

    def idle(self) -> int:
        return self.free

    def new_job(self, fen: str, max_time_s: float, max_depth: int) -> Job:
        self.next_id += 1
        return Job(self.next_id, fen, max_time_s, max_depth)

    def submit(self, job: Job) -> bool:
        if self.free == 0:
            return False
        self.free -= 1
        self.submitted.append(job)
        return True

    def stop(self, job: Job) -> None:
        job.stop_sent_s = 0.0

    def running(self) -> list[Job]:
        return self.submitted


async def test_busiest_games_are_analysed_first(live: LiveServer) -> None:
    """With one free worker and three waiting games, the one with most spectators goes first."""
    games = live.app.state.games  # type: ignore[attr-defined]
    hub = live.app.state.hub  # type: ignore[attr-defined]
    metrics = live.app.state.metrics  # type: ignore[attr-defined]
    pool = FakePool(free=0)
    service = AnalysisService(pool, games, hub, metrics)  # type: ignore[arg-type]
    ids = [(await live.started_game())[0] for _ in range(3)]
    for game_id, first in zip(ids, ["e4", "d4", "c4"], strict=True):
        await move(live, game_id, first)
    sockets = [await websockets.connect(ws_url(live, f"/ws/games/{ids[1]}")) for _ in range(3)]
    sockets.append(await websockets.connect(ws_url(live, f"/ws/games/{ids[2]}")))
    for game_id in ids:
        service.on_commit(games.get(game_id).state, [{"type": "start"}])  # type: ignore[list-item]
    assert service.queue_depth == 3
    pool.free = 1
    service._dispatch()
    [job] = pool.submitted
    fens = [games.get(game_id).state.board.fen() for game_id in ids]
    assert len(set(fens)) == 3
    assert job.fen == fens[1]
    pool.free = 2
    service._dispatch()
    assert [j.fen for j in pool.submitted] == [fens[1], fens[2], fens[0]]
    assert service.queue_depth == 0
    for ws in sockets:
        await ws.close()
