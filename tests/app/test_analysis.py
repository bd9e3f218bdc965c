"""Live analysis end to end: a real server with real worker processes and real sockets."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import io
import itertools
import json
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import chess.pgn
import pytest
import websockets

from app.analysis import AnalysisService
from app.analysis_outbox import Outbox
from app.metrics import Metrics
from engine.rules import commands as core
from engine.rules.clock import TimeControl
from engine.rules.game import GameSetup, GameState, Mode, Player, evolve_all
from engine.rules.wire import EvalJSON, GameEvent
from tests.conftest import LiveServer, ServerProcess, serve
from tests.workers.test_analysis_pool import stockfish_or_skip, wait_until
from workers.analysis import AnalysisPool, Job
from workers.analysis_worker import DepthInfo

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


class VirtualTime:
    """Seconds that pass only when the test advances them; sleepers wake at their deadline."""

    def __init__(self) -> None:
        self.now_s = 1_000.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def __call__(self) -> float:
        return self.now_s

    async def sleep(self, delay_s: float) -> None:
        """Return once the test advanced the time by ``delay_s``."""
        future = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now_s + delay_s, next(self._order), future))
        await future

    async def advance(self, delta_s: float) -> None:
        """Let ready tasks run, then move the time on, waking each sleeper at its deadline."""
        await settle()
        end_s = self.now_s + delta_s
        while self._sleepers and self._sleepers[0][0] <= end_s:
            self.now_s, _, future = heapq.heappop(self._sleepers)
            future.set_result(None)
            await settle()
        self.now_s = end_s
        await settle()


async def settle() -> None:
    """Let every ready task run until it waits again (none waits on real I/O here)."""
    for _ in range(10):
        await asyncio.sleep(0)


class RecordingGames:
    """The part of the game service that analysis uses, for ``count`` games; records evals."""

    def __init__(self, time: VirtualTime, count: int = 1, mode: Mode = "server") -> None:
        self.states: dict[str, GameState] = {}
        for n in range(count):
            setup = GameSetup(
                f"g{n:07d}", Player("White"), Player("Black"), TimeControl(60_000, 0), mode=mode
            )
            state = GameState.new(setup)
            self.states[setup.id] = evolve_all(state, core.start(state, 0), 0)
        self.time = time
        self.recorded: list[tuple[float, EvalJSON]] = []
        self.recorded_by_game: dict[str, list[EvalJSON]] = {game: [] for game in self.states}

    @property
    def state(self) -> GameState:
        """The first game's state."""
        return next(iter(self.states.values()))

    def ids(self) -> list[str]:
        """The games' ids, in creation order."""
        return list(self.states)

    def __contains__(self, game: object) -> bool:
        return game in self.states

    def get(self, game: str) -> SimpleNamespace:
        return SimpleNamespace(state=self.states[game])

    async def record_eval(self, game: str, evaluation: EvalJSON) -> None:
        self.recorded.append((self.time(), evaluation))
        self.recorded_by_game[game].append(evaluation)

    def play(self, text: str, game: str | None = None) -> list[GameEvent]:
        """Play ``text`` in ``game`` (the first by default); the events, as committed."""
        game = game or self.ids()[0]
        events = core.play(self.states[game], text, 0)
        self.states[game] = evolve_all(self.states[game], events, 0)
        return events


def depth(n: int) -> DepthInfo:
    """A completed depth ``n`` of some search."""
    return DepthInfo(n, 10 * n, None, "e2e4", ("e2e4",), 1000 * n)


async def test_evals_are_coalesced_to_two_a_second() -> None:
    """A depth every 1/8 s yields one eval at once, then the newest one every 0.5 s."""
    time = VirtualTime()
    games = RecordingGames(time)
    pool = FakePool(free=1)
    hub = SimpleNamespace(spectators=lambda game: 0)
    service = AnalysisService(
        pool,  # type: ignore[arg-type]
        games,  # type: ignore[arg-type]
        hub,  # type: ignore[arg-type]
        Metrics(),
        publish_interval_s=0.5,
        clock=time,
        sleep=time.sleep,
    )
    service.on_commit(games.state, [{"type": "start"}])  # type: ignore[list-item]
    [job] = pool.submitted
    start_s = time()
    for n in range(1, 26):
        service.on_info(job, depth(n), "fake")
        await time.advance(0.125)
    await time.advance(1.0)
    sent = [(at_s - start_s, e["ply"], e["depth"]) for at_s, e in games.recorded]
    # Depth n is offered at (n - 1) / 8 s; each send carries the newest depth offered by then.
    assert sent == [(t / 2, 0, d) for t, d in enumerate([1, 4, 8, 12, 16, 20, 24, 25])]

    pool.free = 1
    events = games.play("e4")
    service.on_commit(games.state, events)
    [_, next_job] = pool.submitted
    service.on_done(job, True)
    service.on_info(next_job, depth(1), "fake")
    await settle()
    # The first evaluation of a new position does not wait for the interval.
    at_s, evaluation = games.recorded[-1]
    assert (at_s - start_s, evaluation["ply"], evaluation["depth"]) == (4.125, 1, 1)
    await service.close()


def test_outbox_sends_the_newest_at_most_once_an_interval() -> None:
    """Deeper evaluations of a position wait out the interval; a new position goes at once."""
    outbox = Outbox(interval_s=0.5)
    first, deeper, deepest = (
        {
            "ply": 3,
            "depth": d,
            "score": {"cp": d},
            "best": "e2e4",
            "pv": ["e2e4"],
            "nodes": 1,
            "engine": "x",
        }
        for d in (1, 2, 3)
    )
    outbox.offer(first)  # type: ignore[arg-type]
    assert outbox.take(10.0) == first
    outbox.offer(deeper)  # type: ignore[arg-type]
    outbox.offer(deepest)  # type: ignore[arg-type]
    assert outbox.wait_s(10.1) == pytest.approx(0.4)
    assert outbox.take(10.1) is None
    assert outbox.take(10.5) == deepest
    assert outbox.take(10.6) is None
    moved_on = {**first, "ply": 4}
    outbox.offer(moved_on)  # type: ignore[arg-type]
    assert outbox.wait_s(10.6) == 0.0
    assert outbox.take(10.6) == moved_on


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
    """Analysed positions carry [%eval] in the PGN, also for a finished game after a restart.

    The game's review is off: finished while either server runs, it would add its own
    evaluations and marks to the PGN between the two reads (test_review.py covers it)."""
    async with serve(tmp_path / "data", **ANALYSIS, review=False) as live:
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
    async with serve(tmp_path / "data", **ANALYSIS, review=False) as live:
        after = (await live.client.get(f"/api/games/{game_id}/pgn")).text
    assert after == before
    game = chess.pgn.read_game(io.StringIO(after))
    assert game is not None
    evals = [node.eval() for node in game.mainline()]
    assert all(e is not None for e in evals)
    assert [n.move.uci() for n in game.mainline()] == ["e2e4", "e7e5", "d1h5"]


async def test_stockfish_drives_analysis_when_configured(tmp_path: Path) -> None:
    """With GM_ENGINE=uci:<stockfish>, spectators get Stockfish's evaluations as eval events."""
    settings = {**ANALYSIS, "engine": f"uci:{stockfish_or_skip()}"}
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
    """Records submissions and stops; ``free`` workers are idle; ``finish`` ends a job."""

    def __init__(self, free: int, clock: VirtualTime | None = None) -> None:
        self.free = free
        self.clock = clock
        self.submitted: list[Job] = []
        self.stopped: list[Job] = []
        self.listener: Any = None
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
        if self.clock is not None:
            job.started_s = self.clock()
        self.submitted.append(job)
        return True

    def stop(self, job: Job) -> None:
        if job.stop_sent_s is None:
            job.stop_sent_s = 0.0
            self.stopped.append(job)

    def running(self) -> list[Job]:
        return self.submitted

    def finish(self, job: Job, ok: bool = True) -> None:
        """``job``'s worker reports it ended and is idle again."""
        self.free += 1
        self.listener.on_done(job, ok)


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


def scheduler(
    games: RecordingGames,
    pool: FakePool,
    time: VirtualTime,
    spectators: dict[str, int] | None = None,
) -> AnalysisService:
    """A service on ``pool`` in virtual time (0.1 s minimum per job, 0.5 s between evals)."""
    counts = spectators or {}
    hub = SimpleNamespace(spectators=lambda game: counts.get(game, 0))
    return AnalysisService(
        pool,  # type: ignore[arg-type]
        games,  # type: ignore[arg-type]
        hub,  # type: ignore[arg-type]
        Metrics(),
        max_time_s=5.0,
        min_time_s=0.1,
        publish_interval_s=0.5,
        clock=time,
        sleep=time.sleep,
    )


def report(service: AnalysisService, job: Job, n: int) -> None:
    """``job``'s worker completed depth ``n`` (as a pool reports it)."""
    job.depth = n
    service.on_info(job, depth(n), "fake")


def start_all(service: AnalysisService, games: RecordingGames) -> None:
    """Every game of ``games`` was started."""
    for game in games.ids():
        service.on_commit(games.states[game], [{"type": "start"}])  # type: ignore[list-item]


async def test_a_move_stops_only_its_own_games_job() -> None:
    """With every worker busy, a move replaces its game's job and cuts no other game's."""
    time = VirtualTime()
    games = RecordingGames(time, count=2)
    pool = FakePool(free=2, clock=time)
    service = scheduler(games, pool, time)
    a = games.ids()[0]
    start_all(service, games)
    job_a, job_b = pool.submitted
    report(service, job_a, 3)
    report(service, job_b, 3)
    await time.advance(1.0)
    events = games.play("e4", a)
    service.on_commit(games.states[a], events)
    assert pool.stopped == [job_a]
    pool.finish(job_a)
    assert pool.submitted[-1].fen == games.states[a].board.fen()
    assert pool.stopped == [job_a]
    assert service.queue_depth == 0
    await service.close()


async def test_a_preempted_position_is_analysed_again_when_a_worker_frees() -> None:
    """A job cut for another game's new position is queued again, and itself cuts no one."""
    time = VirtualTime()
    games = RecordingGames(time, count=2)
    pool = FakePool(free=1, clock=time)
    service = scheduler(games, pool, time)
    a, b = games.ids()
    service.on_commit(games.states[a], [{"type": "start"}])  # type: ignore[list-item]
    [job_a] = pool.submitted
    report(service, job_a, 2)
    await time.advance(1.0)
    # Not the start position, whose evaluation is cached by now.
    events = games.play("d4", b)
    service.on_commit(games.states[b], events)
    assert pool.stopped == [job_a]
    pool.finish(job_a)
    job_b = pool.submitted[-1]
    assert job_b.fen == games.states[b].board.fen()
    # a's position waits to resume; with an evaluation shown already, it is no backlog.
    assert service.queue_depth == 0
    report(service, job_b, 1)
    await time.advance(1.0)
    # Game a already has an evaluation: it waits for a free worker, it does not cut b.
    service._preempt()
    assert pool.stopped == [job_a]
    pool.finish(job_b)
    resumed = pool.submitted[-1]
    assert resumed.fen == games.states[a].board.fen()
    assert resumed.max_time_s == pytest.approx(4.0)
    # Depths it reaches again are not sent again; deeper ones are.
    report(service, resumed, 2)
    report(service, resumed, 3)
    await time.advance(1.0)
    assert [e["depth"] for e in games.recorded_by_game[a]] == [2, 3]
    await service.close()


async def test_a_cached_evaluation_is_not_followed_by_shallower_ones() -> None:
    """Back at a cached position, the depths spectators see for it never go down."""
    time = VirtualTime()
    games = RecordingGames(time)
    pool = FakePool(free=1, clock=time)
    service = scheduler(games, pool, time)
    start_all(service, games)
    [first] = pool.submitted
    after_e4 = "rnbqkbnr/pppppppp/8/8/4P3/8/PPPP1PPP/RNBQKBNR b KQkq -"
    cached: EvalJSON = {**depth_json(10), "ply": 7}
    service.cache.put(after_e4, cached)
    events = games.play("e4")
    service.on_commit(games.state, events)
    pool.finish(first)
    job = pool.submitted[-1]
    assert job.fen.startswith(after_e4)
    for n in range(1, 13):
        report(service, job, n)
        await time.advance(0.125)
    await time.advance(1.0)
    depths = [e["depth"] for e in games.recorded_by_game[games.ids()[0]] if e["ply"] == 1]
    assert depths[0] == 10
    assert depths == sorted(depths)
    assert depths[-1] == 12
    await service.close()


def depth_json(n: int) -> EvalJSON:
    """Depth ``n`` of :func:`depth` as an eval event's fields (ply 0)."""
    info = depth(n)
    return {
        "ply": 0,
        "depth": n,
        "score": {"cp": info.cp or 0},
        "best": info.best,
        "pv": list(info.pv),
        "nodes": info.nodes,
        "engine": "fake",
    }


async def test_live_positions_preempt_background_work_which_resumes_later() -> None:
    """A live position cuts a background job at once; the background one finishes later."""
    time = VirtualTime()
    games = RecordingGames(time)
    pool = FakePool(free=1, clock=time)
    service = scheduler(games, pool, time)
    finished: list[EvalJSON | None] = []
    fen = "r1bqkbnr/pppp1ppp/2n5/4p3/4P3/5N2/PPPP1PPP/RNBQKB1R w KQkq - 2 3"
    assert service.request_background("review:1:4", fen, 4, finished.append)
    [background] = pool.submitted
    report(service, background, 1)
    # Not even the minimum time has passed: live positions never wait for background work.
    start_all(service, games)
    assert pool.stopped == [background]
    pool.finish(background)
    live_job = pool.submitted[-1]
    assert live_job.fen == games.state.board.fen()
    assert service.background_depth == 1
    report(service, live_job, 1)
    await time.advance(1.0)
    service._preempt()
    assert pool.stopped == [background]
    pool.finish(live_job)
    resumed = pool.submitted[-1]
    assert resumed.fen == fen
    report(service, resumed, 1)
    report(service, resumed, 2)
    assert finished == []
    pool.finish(resumed)
    await settle()
    assert [(e["ply"], e["depth"]) for e in finished if e is not None] == [(4, 2)]
    # Background evaluations are the caller's: no game recorded them.
    assert all(e["ply"] == 0 for _, e in games.recorded)
    assert service.background_depth == 0
    await service.close()


async def test_background_work_never_cuts_live_work_and_can_be_cancelled() -> None:
    """A background position waits for a free worker; a cancelled one is dropped untold."""
    time = VirtualTime()
    games = RecordingGames(time)
    pool = FakePool(free=1, clock=time)
    service = scheduler(games, pool, time)
    start_all(service, games)
    [live_job] = pool.submitted
    report(service, live_job, 1)
    await time.advance(1.0)
    finished: list[EvalJSON | None] = []
    fen = "r1bqkbnr/pppp1ppp/2n5/4p3/4P3/5N2/PPPP1PPP/RNBQKB1R w KQkq - 2 3"
    assert service.request_background("review:1:4", fen, 4, finished.append)
    assert service.request_background("review:1:5", fen, 5, finished.append)
    service._preempt()
    assert pool.stopped == []
    service.cancel_background("review:1:4")
    pool.finish(live_job)
    [_, background] = pool.submitted
    service.cancel_background("review:1:5")
    assert pool.stopped == [background]
    pool.finish(background)
    await settle()
    assert finished == []
    assert service.background_depth == 0
    await service.close()


def test_a_missing_engine_stops_the_server_at_once_naming_it(
    server_process: ServerProcess, tmp_path: Path
) -> None:
    """A ``uci:`` path that does not exist ends the start with the engine's error."""
    missing = tmp_path / "no-such-engine"
    server_process.env.update(
        GM_ANALYSIS="1",
        GM_ENGINE=f"uci:{missing}",
        GM_ANALYSIS_PROCESSES="1",
    )
    with pytest.raises(RuntimeError, match="server exited") as failed:
        server_process.start(timeout_s=40)
    assert f"analysis engine 'uci:{missing}' did not start" in str(failed.value)
    assert "No such file or directory" in str(failed.value)


async def test_a_resumed_position_gives_way_at_once_to_a_new_one() -> None:
    """A cut position resumed on a free worker is cut again at once for a new position,
    before the minimum time and before it reports a depth: its game shows one already."""
    time = VirtualTime()
    games = RecordingGames(time, count=3)
    pool = FakePool(free=1, clock=time)
    service = scheduler(games, pool, time)
    a, b, c = games.ids()
    service.on_commit(games.states[a], [{"type": "start"}])  # type: ignore[list-item]
    [job_a] = pool.submitted
    report(service, job_a, 2)
    await time.advance(1.0)
    events = games.play("d4", b)
    service.on_commit(games.states[b], events)
    pool.finish(job_a)
    job_b = pool.submitted[-1]
    report(service, job_b, 1)
    pool.finish(job_b)
    resumed = pool.submitted[-1]
    assert resumed.fen == games.states[a].board.fen()
    events = games.play("c4", c)
    service.on_commit(games.states[c], events)
    assert pool.stopped == [job_a, resumed]
    pool.finish(resumed)
    assert pool.submitted[-1].fen == games.states[c].board.fen()
    await service.close()


async def test_live_analysis_cuts_background_work_on_a_real_worker() -> None:
    """On one real worker busy with a background position, a game's new position is analysed
    first; the background request then resumes and finishes with its deepest evaluation."""
    time = VirtualTime()
    games = RecordingGames(time)
    pool = AnalysisPool("builtin", 1, hang_grace_s=10.0)
    await pool.start()
    hub = SimpleNamespace(spectators=lambda game: 0)
    service = AnalysisService(
        pool,
        games,  # type: ignore[arg-type]
        hub,  # type: ignore[arg-type]
        Metrics(),
        max_time_s=30.0,
        max_depth=3,
    )
    finished: asyncio.Future[EvalJSON | None] = asyncio.get_running_loop().create_future()
    middlegame = "r1bqkb1r/pppp1ppp/2n2n2/4p3/2B1P3/5N2/PPPP1PPP/RNBQK2R w KQkq - 4 4"
    try:
        assert service.request_background(
            "review:x:7", middlegame, 7, finished.set_result, max_time_s=2.0, max_depth=64
        )
        [background] = pool.running()
        await wait_until(lambda: background.depth >= 1)
        start_all(service, games)
        await wait_until(lambda: bool(games.recorded))
        # The background position was cut for the game's, and waits to resume.
        assert background.stop_sent_s is not None
        assert not finished.done()
        async with asyncio.timeout(30):
            evaluation = await finished
        assert evaluation is not None
        assert (evaluation["ply"], evaluation["engine"]) == (7, "grandmaster-pvs")
        assert evaluation["depth"] >= 1
        assert all(e["ply"] == 0 for _, e in games.recorded)
    finally:
        await service.close()
        await pool.close()


def correct_last_move(games: RecordingGames, game: str, text: str) -> list[GameEvent]:
    """A relay correction of ``game``'s last move: take it back and play ``text`` instead."""
    state = games.states[game]
    events = core.take_back(state, state.ply - 1, 0)
    state = evolve_all(state, events, 0)
    more = core.play(state, text, 0)
    games.states[game] = evolve_all(state, more, 0)
    return events + more


async def test_a_corrected_moves_old_position_publishes_nothing_for_the_new_one() -> None:
    """After a correction to another move at the same ply, a depth the old position's job
    still reports, or an unsent evaluation of it, is not recorded for the new position; the
    new position's first evaluation goes out at once, as any new position's does."""
    time = VirtualTime()
    games = RecordingGames(time, mode="relay")
    pool = FakePool(free=1, clock=time)
    service = scheduler(games, pool, time)
    events = games.play("e4")
    service.on_commit(games.state, events)
    [old] = pool.submitted
    start_s = time()
    report(service, old, 3)
    await time.advance(0.1)
    report(service, old, 4)  # waits out the interval in the outbox
    events = correct_last_move(games, games.ids()[0], "d4")
    service.on_commit(games.state, events)
    assert pool.stopped == [old]
    report(service, old, 5)  # on its way before the stop landed
    await settle()
    pool.finish(old)
    [_, new] = pool.submitted
    assert new.fen == games.state.board.fen()
    service.on_info(new, DepthInfo(1, 5, None, "d7d5", ("d7d5",), 100), "fake")
    await time.advance(1.0)
    sent = [(at_s - start_s, e["ply"], e["depth"], e["best"]) for at_s, e in games.recorded]
    assert sent == [(0.0, 1, 3, "e2e4"), (pytest.approx(0.1), 1, 1, "d7d5")]
    await service.close()


async def test_a_cut_job_of_a_corrected_position_is_not_resumed() -> None:
    """A job cut for another game, whose game's move is then corrected, is not queued again
    when it ends: only the new position is analysed."""
    time = VirtualTime()
    games = RecordingGames(time, count=2, mode="relay")
    first, second = games.ids()
    pool = FakePool(free=1, clock=time)
    service = scheduler(games, pool, time)
    events = games.play("e4", first)
    service.on_commit(games.states[first], events)
    [old] = pool.submitted
    report(service, old, 3)
    await time.advance(1.0)
    events = games.play("c4", second)
    service.on_commit(games.states[second], events)
    assert pool.stopped == [old]
    events = correct_last_move(games, first, "d4")
    service.on_commit(games.states[first], events)
    pool.free += 2
    service._dispatch()
    pool.finish(old)
    service._dispatch()
    old_fen = old.fen
    assert [job.fen for job in pool.submitted[1:]].count(old_fen) == 0
    assert games.states[first].board.fen() in [job.fen for job in pool.submitted]
    await service.close()


async def test_nothing_is_scheduled_or_published_after_close() -> None:
    """After close(), a report in flight publishes nothing, a job that ends starts no other,
    a background request is never answered, and the pool no longer reports to the service."""
    time = VirtualTime()
    games = RecordingGames(time)
    pool = FakePool(free=1, clock=time)
    service = scheduler(games, pool, time)
    start_all(service, games)
    [job] = pool.submitted
    answers: list[EvalJSON | None] = []
    assert service.request_background("k", games.state.board.fen(), 0, answers.append)
    await service.close()
    assert pool.listener is not service
    # Reports already on their way: a depth, then the job's end (its worker idle again).
    service.on_info(job, depth(1), "fake")
    pool.free += 1
    service.on_done(job, True)
    service._dispatch()
    assert not service.request_background("k2", games.state.board.fen(), 0, answers.append)
    await time.advance(1.0)
    assert pool.submitted == [job]
    assert games.recorded == []
    assert answers == []
    assert not [o for o in service._outboxes.values() if o.task is not None]


async def test_a_cut_background_job_that_met_its_nodes_budget_is_not_resumed() -> None:
    """A background job cut for a live position, whose last report spent its nodes budget,
    ends its request with that evaluation instead of being queued again."""
    time = VirtualTime()
    games = RecordingGames(time)
    pool = FakePool(free=1, clock=time)
    service = scheduler(games, pool, time)
    finished: list[EvalJSON | None] = []
    fen = "r1bqkbnr/pppp1ppp/2n5/4p3/4P3/5N2/PPPP1PPP/RNBQKB1R w KQkq - 2 3"
    assert service.request_background("review:1:4", fen, 4, finished.append, max_nodes=3000)
    [background] = pool.submitted
    report(service, background, 2)
    start_all(service, games)
    assert pool.stopped == [background]
    report(service, background, 3)  # 3000 nodes: the budget, reached before the stop landed
    pool.finish(background)
    await settle()
    assert [(e["ply"], e["depth"]) for e in finished if e is not None] == [(4, 3)]
    assert [job.fen for job in pool.submitted].count(fen) == 1
    assert service.background_depth == 0
    await service.close()
