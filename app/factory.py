"""The composition root: ``create_app(settings)`` builds everything inside one lifespan.

Nothing is created at import time. Start-up order: operator token, store (opened and read
in a worker thread), archive pool, game service (games rebuilt, timers armed), loop-lag
probe; shutdown runs in reverse.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import Gauge

from app.accounts import AccountService
from app.analysis import AnalysisService
from app.auth import Tokens, load_operator_token
from app.broadcast import Broadcast
from app.broadcast_rounds import BroadcastRounds
from app.errors import error_response, install_error_handlers
from app.games import GameService
from app.hub import REPLAY_HISTORY, Hub
from app.limits import AnonymousRateLimit, AnonymousTurns, BodyLimit
from app.metrics import (
    Metrics,
    cancel_and_wait,
    collect_admission,
    watch_gc,
    watch_loop_lag,
)
from app.openapi import body, errors, install_openapi, text
from app.ratelimit import RateLimiter
from app.relay import RelayService
from app.responses import Health
from app.review import ReviewService
from app.routes_accounts import router as accounts_router
from app.routes_games import router as games_router
from app.routes_lichess import router as lichess_router
from app.routes_live import router as live_router
from app.routes_site import router as site_router
from app.routes_tournaments import router as tournaments_router
from app.settings import Settings
from app.stream_connection import ExposeConnection
from app.tournaments import StandingsCache, TournamentService
from engine.rules.view import game_json
from engine.rules.wire import BudgetJSON, GameJSON, Result, Termination
from workers.analysis import AnalysisPool, Pool
from workers.archive import PgnArchive
from workers.pairing import engine_from_setting
from workers.store import Store, StoredGame, StoredTournament

log = logging.getLogger(__name__)

# Threads of the loop's default executor (see ``lifespan``).
BLOCKING_THREADS = 2


def monotonic_ms() -> int:
    """The default time source of game clocks."""
    return time.monotonic_ns() // 1_000_000


def unix_ms() -> int:
    """The default wall clock: Unix time in ms (commit times, scheduled rounds, delays)."""
    return time.time_ns() // 1_000_000


def create_app(
    settings: Settings,
    *,
    now_ms: Callable[[], int] = monotonic_ms,
    wall_ms: Callable[[], int] = unix_ms,
    store: Store | None = None,
    on_fatal: Callable[[], None] | None = None,
    remote_analysis: bool | None = None,
) -> FastAPI:
    """A fresh app for ``settings``; ``now_ms`` and ``store`` may be injected by tests.

    ``on_fatal`` is called on the loop when the history can no longer be written: the
    process should stop (non-zero) so that its supervisor restarts it from disk.
    ``remote_analysis`` False keeps analysis in local processes even with a bus (the bus
    ``--edges`` starts for itself); None: remote whenever there is a bus.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        # Blocking work sent off the loop (store reads for lists and games not in memory,
        # relay parsing, token lookups) runs in this many threads, not asyncio's default
        # of cores + 4: each thread running Python wants the interpreter lock back from the
        # loop, and so does the store's writer with a move to acknowledge. With six list
        # readers a move waited 16 ms (p50) under bench/flood.py's list flood; with two, 5.
        loop.set_default_executor(
            ThreadPoolExecutor(max_workers=BLOCKING_THREADS, thread_name_prefix="gm-blocking")
        )
        token = await loop.run_in_executor(
            None, load_operator_token, settings.operator_token_value(), settings.operator_token_path
        )
        metrics = Metrics()
        # The histogram is thread-safe: the writer thread records each commit itself.
        history = store or Store(
            settings.db_path, observe_commit=metrics.store_commit_seconds.observe
        )

        def fatal(exc: BaseException) -> None:
            log.critical(
                "the history cannot be written (%s): stopping, so that a restart rebuilds "
                "from disk",
                exc,
            )
            if on_fatal is not None:
                on_fatal()

        def on_store_failure(exc: BaseException) -> None:
            # From the writer thread: hand over to the loop.
            loop.call_soon_threadsafe(fatal, exc)

        history.on_failure = on_store_failure
        await loop.run_in_executor(None, history.open)
        archive = PgnArchive(settings.pgn_dir)
        tokens = Tokens(
            token,
            RateLimiter(settings.player_requests_per_s, settings.player_requests_burst),
            wall_ms=wall_ms,
        )
        accounts = AccountService(
            history, tokens, operator_name=settings.operator_name, wall_ms=wall_ms
        )
        games = GameService(
            history,
            archive,
            tokens,
            now_ms=now_ms,
            site=settings.site,
            wall_ms=wall_ms,
            cache_size=settings.game_cache,
        )

        def public_json(game_id: str) -> GameJSON:
            state = broadcast.game(game_id)
            return game_json(state, now_ms(), spectators=hub.spectators(game_id))

        hub = Hub(public_json, metrics, now_ms=now_ms, max_spectators=settings.max_spectators)
        standings = StandingsCache()
        broadcast = Broadcast(
            hub,
            games.state_of,
            lambda tid: tournaments.state_of(tid),
            standings,
            now_ms=now_ms,
            wall_ms=wall_ms,
        )
        games.sink = broadcast
        pairing = engine_from_setting(settings.pairing_engine, settings.pairing_timeout_s)
        tournaments = TournamentService(history, games, pairing, wall_ms=wall_ms, sink=broadcast)
        games.observers.append(tournaments.on_game_commit)
        relay = RelayService(tournaments, games, settings)
        rounds = BroadcastRounds(tournaments, games, wall_ms=wall_ms)
        relay.rounds = rounds
        try:
            accounts.restore(await loop.run_in_executor(None, history.load_access_tokens))
            stored_tournaments = await loop.run_in_executor(None, history.load_tournaments)
            stored, outcomes = await loop.run_in_executor(
                None, _read_games, history, stored_tournaments, wall_ms()
            )
            unknown = games.restore(stored)
            if unknown:
                # A log from before statuses and snapshots were kept: written once.
                await history.update_games(unknown)
            tournaments.restore(stored_tournaments, outcomes)
            broadcast.restore(stored_tournaments, stored, outcomes)
            games.evict()
            del stored, outcomes
            relay.start()
            _collect_store_metrics(metrics, history, games)
            collect_admission(metrics, app.state)
            lag_probe = loop.create_task(watch_loop_lag(metrics), name="gm-loop-lag")
            housekeeping = loop.create_task(hub.run(), name="gm-hub")
            publisher = None
            audience_task = None
            if settings.bus:
                from app.bus import Audience, BusPublisher, process_id

                publisher = BusPublisher(settings.bus)
                await publisher.start()
                hub.tap = publisher
                audience = Audience(publisher.redis, hub, process_id(), every_game=True)
                audience_task = loop.create_task(audience.run(), name="gm-audience")
            remote = bool(settings.bus) if remote_analysis is None else remote_analysis
            analysis = await _start_analysis(settings, games, hub, metrics, remote=remote)
            app.state.analysis = analysis
            reviews = await _start_reviews(settings, games, history, analysis, wall_ms)
            app.state.reviews = reviews
            if reviews is not None:
                backlog = Gauge(
                    "gm_reviews_queued",
                    "Game reviews asked for and not done (running ones included).",
                    registry=metrics.registry,
                )
                metrics.on_scrape(lambda: backlog.set(reviews.backlog))
            checkpoints = loop.create_task(
                games.run_checkpoints(settings.clock_checkpoint_s), name="gm-clock-checkpoints"
            )
            app.state.settings = settings
            app.state.store = history
            app.state.tokens = tokens
            app.state.accounts = accounts
            app.state.games = games
            app.state.hub = hub
            app.state.broadcast = broadcast
            app.state.standings = standings
            app.state.tournaments = tournaments
            app.state.relay = relay
            app.state.rounds = rounds
            app.state.archive = archive
            app.state.metrics = metrics
            log.info("data directory: %s", settings.data_dir.resolve())
            # Registered last and removed first: a start or stop that fails leaves no
            # callback behind in the process (tests start many apps).
            unwatch_gc = watch_gc(metrics)
            try:
                yield
            finally:
                unwatch_gc()
                await cancel_and_wait(checkpoints)
                if reviews is not None:
                    await reviews.close()
                if analysis is not None:
                    await analysis.close()
                    await analysis.pool.close()
                await relay.close()
                await cancel_and_wait(housekeeping)
                if audience_task is not None:
                    await cancel_and_wait(audience_task)
                if publisher is not None:
                    await publisher.close()
                await cancel_and_wait(lag_probe)
                await tournaments.close()
                broadcast.close()
                await games.close()
        finally:
            await loop.run_in_executor(None, archive.close)
            await loop.run_in_executor(None, history.close)

    app = FastAPI(
        title="Grandmaster",
        summary="Live tournament chess server: games, clocks, durable history, spectators.",
        version="0.1.0",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    install_openapi(app)
    app.add_middleware(
        BodyLimit,
        max_bytes=settings.max_body_bytes,
        large_bytes=settings.max_pgn_bytes,
        large_paths=re.compile(
            r"/api/tournaments/[^/]+/rounds/\d+/pgn|/(api/)?broadcast/round/[^/]+/push"
        ),
    )
    app.add_middleware(
        AnonymousRateLimit, rate=settings.anon_requests_per_s, burst=settings.anon_requests_burst
    )
    # Outside the rate limit: refused requests wait their turn too.
    app.add_middleware(
        AnonymousTurns,
        concurrency=settings.anon_concurrency,
        max_waiting=settings.anon_queue,
        max_buffered_bytes=settings.max_body_bytes,
        max_waiting_per_address=settings.anon_queue_per_address,
        per_iteration=settings.anon_per_iteration,
    )
    # Outermost, so that it sees the server's own ``receive`` (see app/stream_connection.py).
    app.add_middleware(ExposeConnection)
    app.include_router(games_router)
    app.include_router(tournaments_router)
    app.include_router(live_router)
    app.include_router(lichess_router)
    app.include_router(site_router)
    app.include_router(accounts_router)

    @app.get(
        "/healthz",
        tags=["operations"],
        responses={200: body(Health), **errors(503, notes={503: "the history cannot be written"})},
    )
    async def healthz(request: Request) -> JSONResponse:
        """200 ``{"status": "ok"}`` while the history is writable; else 503."""
        history: Store = request.app.state.store
        if not history.is_healthy:
            return error_response(503, "unavailable", "the history log cannot be written")
        return JSONResponse({"status": "ok"})

    @app.get(
        "/metrics",
        tags=["operations"],
        response_class=Response,
        responses={200: text("text/plain", "Prometheus text exposition (version 0.0.4)")},
    )
    async def metrics(request: Request) -> Response:
        """Prometheus text exposition."""
        instruments: Metrics = request.app.state.metrics
        return Response(instruments.render(), media_type="text/plain; version=0.0.4")

    return app


async def _start_analysis(
    settings: Settings, games: GameService, hub: Hub, metrics: Metrics, *, remote: bool
) -> AnalysisService | None:
    """The analysis pool (remote workers over the bus when ``remote``) and its scheduler,
    or None when analysis is off."""
    if not settings.analysis:
        return None
    pool: Pool
    if remote:
        # Imported only here: without a bus, nothing imports redis.
        from workers.analysis_bus import BusAnalysisPool

        pool = BusAnalysisPool(settings.bus)
    else:
        pool = AnalysisPool(settings.engine, settings.analysis_processes or os.cpu_count() or 1)
    service = AnalysisService(
        pool,
        games,
        hub,
        metrics,
        max_time_s=settings.analysis_max_time_s,
        min_time_s=settings.analysis_min_time_s,
        max_depth=settings.analysis_max_depth,
        cache_size=settings.analysis_cache_size,
    )
    await pool.start()
    games.observers.append(service.on_commit)
    await service.start()
    if remote:
        log.info("analysis: remote workers over the bus (%d slots now)", pool.size)
    else:
        log.info("analysis: %d %s processes", pool.size, pool.engine_name)
    return service


async def _start_reviews(
    settings: Settings,
    games: GameService,
    store: Store,
    analysis: AnalysisService | None,
    wall_ms: Callable[[], int],
) -> ReviewService | None:
    """The review of finished games on the analysis service's background lane, or None
    when analysis or reviews are off."""
    if analysis is None or not settings.review:
        return None
    budget: BudgetJSON = (
        {"nodes": settings.review_nodes}
        if settings.review_nodes > 0
        else {"depth": settings.review_depth}
    )
    reviews = ReviewService(
        games,
        store,
        analysis,
        budget=budget,
        max_time_s=settings.review_max_time_s,
        wall_ms=wall_ms,
    )
    games.observers.append(reviews.on_commit)
    games.queues_reviews = True
    await reviews.start()
    return reviews


def end_streams(app: FastAPI) -> None:
    """Call when the server starts to stop: every spectator stream ends (see app/server.py)."""
    hub: Hub | None = getattr(app.state, "hub", None)
    if hub is not None:
        hub.end_streams()


def _read_games(
    store: Store, tournaments: list[StoredTournament], now_wall_ms: int
) -> tuple[list[StoredGame], dict[str, tuple[Result, Termination | None]]]:
    """What start-up reads of the games (blocking): every unfinished game, and the
    finished ones a broadcast delay still holds back (with all their events); the
    outcomes of finished tournament games."""
    delayed: dict[str, int] = {}
    for item in tournaments:
        # The tournament's delay, or the longest of its broadcast rounds'.
        delay_s = max(
            [int(item.setup.get("delay_s") or 0)]
            + [int(e.get("delay_s") or 0) for e in item.events]
        )
        if delay_s:
            delayed[item.id] = delay_s * 1000
    held = [
        game
        for tid, delay_ms in delayed.items()
        for game in store.released_after(tid, now_wall_ms - delay_ms)
    ]
    stored = store.load_games(also=held, full_tournaments=delayed.keys(), window=REPLAY_HISTORY)
    outcomes: dict[str, tuple[Result, Termination | None]] = store.finished_outcomes()  # type: ignore[assignment]
    return stored, outcomes


def _collect_store_metrics(metrics: Metrics, store: Store, games: GameService) -> None:
    counted = 0

    def collect() -> None:
        nonlocal counted
        metrics.store_pending.set(store.pending)
        metrics.games_in_memory.set(games.loaded)
        metrics.moves_accepted.inc(games.moves_accepted - counted)
        counted = games.moves_accepted

    metrics.on_scrape(collect)
