"""An edge process: spectators' sockets and streams, fed by the bus, next to a core.

The core owns the games; an edge owns nothing that it cannot rebuild from the core. For each
game its spectators watch, it subscribes to the game's bus channel (first), reads the
game's public state from the core (``GET /internal/games/{id}/state``: setup and snapshot),
fills the events between that state and the live ones from the game's Redis Stream, and
from then on folds every event into its own copy of the state (the same pure ``evolve`` the
core runs) and hands the stored text, unchanged, to its hub, which fans it out through the
same one-encode, one-write path and slow-spectator rules as the single process. A gap in
``seq`` (pub/sub is at most once) is filled from the stream, else from a fresh state. When
the bus goes away, spectators are told; when it is back, each game is read again and its
spectators get a fresh snapshot. Every other request is passed to the core.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import APIRouter, FastAPI, Request, WebSocket
from fastapi.responses import JSONResponse, Response, StreamingResponse

from app.bus import Audience, BusFeed, game_channel, process_id, tournament_channel
from app.errors import ApiError, install_error_handlers, not_found
from app.games import game_setup_from_record
from app.hub import Hub
from app.metrics import Metrics, collect_admission
from app.routes_live import deny, spectate, stream_game, unknown_socket, watch_game
from app.settings import Settings
from engine.rules.game import GameState, evolve
from engine.rules.snapshot import SnapshotJSON, from_snapshot
from engine.rules.view import game_json
from engine.rules.wire import GameEvent
from workers.store import EventRecord

log = logging.getLogger(__name__)

# A game nobody on this edge watches any more is dropped after this long (seconds).
IDLE_S = 30.0
# Headers not passed on either way: hop-by-hop ones (RFC 9110 7.6.1), the length (the body is
# passed whole), and what the edge sets itself (forwarding, and its own Date and Server).
_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "transfer-encoding",
        "upgrade",
        "te",
        "trailer",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "content-length",
        "forwarded",
        "x-forwarded-for",
        "x-forwarded-proto",
        "x-forwarded-host",
        "x-real-ip",
    }
)
_ANSWER_SET_BY_EDGE = frozenset({"date", "server"})


@dataclass(eq=False, slots=True)
class EdgeGame:
    """One game on this edge: its public state, once read, and events waiting for it."""

    id: str
    state: GameState | None = None
    waiting: list[tuple[int, str]] = field(default_factory=list)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    idle_since: float | None = None
    repairing: bool = False
    # Why the state could not be read (the core unreachable), if it could not.
    failure: str | None = None


class EdgeGames:
    """The games this edge's spectators watch, kept current from the bus.

    Offers what the spectator routes use of the core's game service (``fetch``,
    ``fetch_many``, ``in``) and of its broadcast (``game``).
    """

    def __init__(
        self, core: httpx.AsyncClient, feed: BusFeed, hub: Hub, now_ms: Callable[[], int]
    ) -> None:
        self._core = core
        self._feed = feed
        self.hub = hub
        self._now_ms = now_ms
        self._games: dict[str, EdgeGame] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        # The latest first message of each followed tournament (as the core gave it).
        self._messages: dict[str, str] = {}
        self.interrupted = False

    def __contains__(self, game_id: object) -> bool:
        entry = self._games.get(str(game_id))
        return entry is not None and entry.state is not None

    def game(self, game_id: str) -> GameState:
        """The game's public state on this edge; ApiError 404 if it is not followed."""
        entry = self._games.get(game_id)
        if entry is None or entry.state is None:
            raise not_found("game")
        return entry.state

    def state_of(self, game_id: str) -> GameState | None:
        """The game's public state, if followed."""
        entry = self._games.get(game_id)
        return None if entry is None else entry.state

    async def fetch(self, game_id: str) -> EdgeGame:
        """Follow the game (subscribe, read its state); ApiError 404 if the core has none."""
        found = await self.fetch_many([game_id])
        if not found:
            raise not_found("game")
        return found[0]

    async def fetch_many(self, game_ids: Iterable[str]) -> list[EdgeGame]:
        """Follow the games named; those the core knows, in order."""
        found = []
        for game_id in dict.fromkeys(game_ids):
            entry = self._games.get(game_id)
            if entry is None:
                entry = self._games[game_id] = EdgeGame(game_id)
                self._spawn(self._load(entry))
            await entry.ready.wait()
            if entry.state is not None:
                entry.idle_since = None
                found.append(entry)
                continue
            if self._games.get(game_id) is entry:
                del self._games[game_id]
            if entry.failure is not None:
                # Not "no such game": the core could not say.
                raise ApiError(
                    503, "unavailable", "the core cannot be reached", {"Retry-After": "5"}
                )
        return found

    # --- reading a game from the core and the stream ---

    async def _load(self, entry: EdgeGame) -> None:
        try:
            # Subscribed first: nothing published from now on is missed.
            await self._feed.subscribe(game_channel(entry.id))
            state = await self._read_state(entry.id)
            if state is None:
                return
            entry.state = state
            # The stream's older events serve since= here too (a spectator whose edge died
            # resumes on this one).
            window = await self._feed.read_stream(entry.id, 0)
            older = _run_ending_at(
                [(seq, body) for seq, body in window if seq <= state.seq], state.seq
            )
            self.hub.restore(entry.id, [b for _, b in older], [s for s, _ in older])
            entry.waiting += [(seq, body) for seq, body in window if seq > state.seq]
            await self._catch_up(entry)
        except Exception as exc:
            entry.failure = f"{type(exc).__name__}: {exc}"
            log.warning("could not follow game %s: %s", entry.id, entry.failure)
        finally:
            if entry.state is None:
                await self._feed.unsubscribe(game_channel(entry.id))
            entry.ready.set()

    async def _read_state(self, game_id: str) -> GameState | None:
        r = await self._core.get(f"/internal/games/{game_id}/state")
        if r.status_code == 404:
            return None
        r.raise_for_status()
        data = r.json()
        snapshot: SnapshotJSON = data["snapshot"]
        return from_snapshot(game_setup_from_record(data["setup"]), snapshot, self._now_ms())

    async def _catch_up(self, entry: EdgeGame) -> None:
        """Apply the stream's events after the state, then what arrived meanwhile."""
        assert entry.state is not None
        events = await self._feed.read_stream(entry.id, entry.state.seq)
        events += entry.waiting
        entry.waiting = []
        for seq, body in sorted(set(events)):
            self._apply(entry, seq, body)

    # --- the bus ---

    # --- tournaments ---

    async def follow_tournament(self, tournament_id: str) -> list[str] | None:
        """Follow a tournament (its bus channel first, then its message and games from
        the core); its games, or None when the core has no such tournament."""
        await self._feed.subscribe(tournament_channel(tournament_id))
        r = await self._core.get(f"/internal/tournaments/{tournament_id}/follow")
        if r.status_code == 404:
            if tournament_id not in self._messages:
                await self._feed.unsubscribe(tournament_channel(tournament_id))
            return None
        r.raise_for_status()
        data = r.json()
        self._messages[tournament_id] = data["message"]
        games: list[str] = data["games"]
        return games

    def tournament_message(self, tournament_id: str) -> str:
        """The tournament's first message for a new follower (ApiError 404 if unknown)."""
        message = self._messages.get(tournament_id)
        if message is None:
            raise not_found("tournament")
        return message

    def _on_tournament(self, tournament_id: str, text: str) -> None:
        data = json.loads(text)
        kind = data.get("type")
        if kind == "game_added":
            game = str(data["game"])
            if self.hub.has_followers(tournament_id):
                self._spawn(self._add_game(game, tournament_id))
            return
        if kind == "tournament":
            self._messages[tournament_id] = text
        self.hub.publish_tournament(tournament_id, text)

    async def _add_game(self, game: str, tournament_id: str) -> None:
        if await self.fetch_many([game]):
            self.hub.game_added(game, tournament_id)

    def on_message(self, channel: str, text: str) -> None:
        """A bus message: an event of a followed game, or a tournament's message."""
        if channel.startswith("gm:tour:"):
            self._on_tournament(channel.removeprefix("gm:tour:"), text)
            return
        if not channel.startswith("gm:game:"):
            return
        entry = self._games.get(channel.removeprefix("gm:game:"))
        if entry is None:
            return
        event: GameEvent = json.loads(text)
        seq = event["seq"]
        if entry.state is None or entry.repairing:
            entry.waiting.append((seq, text))
            return
        if seq <= entry.state.seq:
            return
        if seq == entry.state.seq + 1:
            self._apply(entry, seq, text, event)
            return
        # A gap: pub/sub lost something. The stream has it, else the core does.
        entry.waiting.append((seq, text))
        entry.repairing = True
        self._spawn(self._repair(entry))

    async def _repair(self, entry: EdgeGame) -> None:
        try:
            await self._catch_up(entry)
            assert entry.state is not None
            expected = max((s for s, _ in entry.waiting), default=entry.state.seq)
            if entry.state.seq < expected:
                await self._resync(entry)
        except Exception:
            log.exception("could not repair game %s", entry.id)
        finally:
            entry.repairing = False
            if entry.waiting and entry.state is not None:
                waiting, entry.waiting = entry.waiting, []
                for seq, body in sorted(waiting):
                    self._apply(entry, seq, body)

    async def _resync(self, entry: EdgeGame) -> None:
        """Read the game again from the core; its spectators get a fresh snapshot (never
        an older state than the one they have)."""
        state = await self._read_state(entry.id)
        if state is None or entry.state is None or state.seq <= entry.state.seq:
            return
        entry.state = state
        entry.waiting = [(s, b) for s, b in entry.waiting if s > state.seq]
        self.hub.resync(entry.id)

    async def _resync_held(self, entry: EdgeGame) -> None:
        """:meth:`_resync` while bus events wait (they are applied after it, in order)."""
        entry.repairing = True
        try:
            await self._resync(entry)
        except Exception:
            log.exception("could not resync game %s", entry.id)
        finally:
            entry.repairing = False
            if entry.waiting and entry.state is not None:
                waiting, entry.waiting = entry.waiting, []
                for seq, body in sorted(set(waiting)):
                    self._apply(entry, seq, body)

    def _apply(self, entry: EdgeGame, seq: int, body: str, event: GameEvent | None = None) -> None:
        assert entry.state is not None
        if seq != entry.state.seq + 1:
            return
        if event is None:
            event = json.loads(body)
        entry.state = evolve(entry.state, event, self._now_ms())
        self.hub.publish_records(entry.id, [EventRecord(entry.id, seq, event["type"], None, body)])

    def on_down(self) -> None:
        """The bus is gone: spectators are told their feed is interrupted."""
        self.interrupted = True
        for game_id in list(self._games):
            self.hub.notify(game_id, '{"type":"interrupted","reason":"the live feed is down"}')

    def on_up(self) -> None:
        """The bus is back: read every game again and resync its spectators."""
        self.interrupted = False
        for entry in list(self._games.values()):
            if entry.state is not None and not entry.repairing:
                self._spawn(self._resync_held(entry))

    # --- housekeeping ---

    async def run(self, interval_s: float = 5.0) -> None:
        """Forever: drop games no spectator here has watched for ``IDLE_S``."""
        while True:
            await asyncio.sleep(interval_s)
            now = time.monotonic()
            for tournament_id in list(self._messages):
                if not self.hub.has_followers(tournament_id):
                    del self._messages[tournament_id]
                    await self._feed.unsubscribe(tournament_channel(tournament_id))
            for game_id, entry in list(self._games.items()):
                if self.hub.spectators(game_id) > 0 or entry.state is None:
                    entry.idle_since = None
                    continue
                if entry.idle_since is None:
                    entry.idle_since = now
                elif now - entry.idle_since >= IDLE_S:
                    del self._games[game_id]
                    self.hub.forget(game_id)
                    await self._feed.unsubscribe(game_channel(game_id))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Cancel what is under way."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def _run_ending_at(events: list[tuple[int, str]], last: int) -> list[tuple[int, str]]:
    """The consecutive events ending at ``last`` (a stream with a hole serves ``since=``
    only after the hole)."""
    run: list[tuple[int, str]] = []
    expected = last
    for seq, body in sorted(events, reverse=True):
        if seq != expected:
            break
        run.append((seq, body))
        expected -= 1
    return run[::-1]


class _EdgeBroadcast:
    """What the spectator routes ask of the broadcast, answered from the edge's games."""

    def __init__(self, games: EdgeGames) -> None:
        self._games = games

    def game(self, game_id: str) -> GameState:
        return self._games.game(game_id)

    def tournament(self, tournament_id: str) -> None:
        return None

    def tournament_message(self, tournament_id: str) -> str:
        return self._games.tournament_message(tournament_id)


async def _watch_tournament(websocket: WebSocket, tournament_id: str) -> None:
    """A tournament's socket on an edge: as on the core (see app/routes_live.py)."""
    games: EdgeGames = websocket.app.state.games
    try:
        ids = await games.follow_tournament(tournament_id)
    except httpx.HTTPError:
        await deny(websocket, ApiError(503, "unavailable", "the core cannot be reached"))
        return
    if ids is None:
        await deny(websocket, ApiError(404, "not_found", "no such tournament"))
        return
    await spectate(websocket, ids, tournament=tournament_id)


def create_edge_app(settings: Settings, *, now_ms: Callable[[], int] | None = None) -> FastAPI:
    """An edge for the core at ``settings.core_url`` over the bus ``settings.bus``."""
    clock = now_ms or (lambda: time.monotonic_ns() // 1_000_000)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        metrics = Metrics()
        collect_admission(metrics, app.state)
        core = httpx.AsyncClient(base_url=settings.core_url, timeout=10.0, trust_env=False)
        games: EdgeGames | None = None

        def snapshot(game_id: str) -> Any:
            assert games is not None
            state = games.game(game_id)
            return game_json(state, clock(), spectators=hub.spectators(game_id))

        hub = Hub(snapshot, metrics, now_ms=clock, max_spectators=settings.max_spectators)
        feed = BusFeed(
            settings.bus,
            lambda channel, text: games.on_message(channel, text) if games else None,
            on_down=lambda: games.on_down() if games else None,
            on_up=lambda: games.on_up() if games else None,
        )
        games = EdgeGames(core, feed, hub, clock)
        await feed.start()
        loop = asyncio.get_running_loop()
        housekeeping = loop.create_task(hub.run(), name="gm-edge-hub")
        idle = loop.create_task(games.run(), name="gm-edge-games")
        audience = Audience(feed.redis, hub, process_id(), every_game=False)
        counting = loop.create_task(audience.run(), name="gm-edge-audience")
        app.state.settings = settings
        app.state.hub = hub
        app.state.games = games
        app.state.broadcast = _EdgeBroadcast(games)
        app.state.metrics = metrics
        app.state.core = core
        try:
            yield
        finally:
            for task in (housekeeping, idle, counting):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await games.close()
            await feed.close()
            await core.aclose()

    app = FastAPI(title="Grandmaster edge", lifespan=lifespan)
    install_error_handlers(app)
    router = APIRouter()
    router.add_api_websocket_route("/ws/games/{game_id}", watch_game)
    router.add_api_websocket_route("/ws/tournaments/{tournament_id}", _watch_tournament)
    router.add_api_websocket_route("/{path:path}", unknown_socket)
    router.add_api_route("/api/stream/games/{game_id}", stream_game, methods=["GET"])
    app.include_router(router)

    @app.get("/healthz")
    async def healthz(request: Request) -> JSONResponse:
        """200 while this edge follows the bus and its core is healthy, else 503."""
        games: EdgeGames = request.app.state.games
        core: httpx.AsyncClient = request.app.state.core
        problem = "the bus is down" if games.interrupted else None
        if problem is None:
            try:
                if (await core.get("/healthz", timeout=2.0)).status_code != 200:
                    problem = "the core is not healthy"
            except httpx.HTTPError:
                problem = "the core cannot be reached"
        if problem is not None:
            return JSONResponse({"error": {"code": "unavailable", "message": problem}}, 503)
        return JSONResponse({"status": "ok", "role": "edge"})

    @app.get("/api/games/{game_id}")
    async def get_game(game_id: str, request: Request) -> Response:
        """A game this edge follows, from its own state (public view); else the core's."""
        games: EdgeGames = request.app.state.games
        hub: Hub = request.app.state.hub
        state = games.state_of(game_id)
        if state is None or "authorization" in request.headers:
            # Not followed here, or a bearer who may see it live: the core answers.
            return await to_core(f"api/games/{game_id}", request)
        return JSONResponse(
            game_json(state, clock(), spectators=hub.spectators(game_id)),
            headers={"X-Served-By": "edge"},
        )

    @app.api_route(
        "/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
    )
    async def to_core(path: str, request: Request) -> Response:
        """Anything else is the core's: passed on as it came, answered as the core answers."""
        core: httpx.AsyncClient = request.app.state.core
        named = {
            token.strip().lower()
            for token in request.headers.get("connection", "").split(",")
            if token.strip()
        }
        # Host passes unchanged (the core builds absolute URLs from it); the client's own
        # forwarding headers do not: the edge says who the client is.
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP | named}
        if request.client is not None:
            headers["x-forwarded-for"] = request.client.host
        headers["x-forwarded-proto"] = request.url.scheme
        forwarded = core.build_request(
            request.method,
            "/" + path,
            params=request.url.query,
            headers=headers,
            content=await request.body(),
            # A stream passed through (the lichess round stream) is idle for a minute at
            # a time: no read timeout.
            timeout=httpx.Timeout(10.0, read=None),
        )
        try:
            answer = await core.send(forwarded, stream=True)
        except httpx.HTTPError as exc:
            raise ApiError(503, "unavailable", f"the core cannot be reached: {exc}") from None
        kept = {
            k: v for k, v in answer.headers.items() if k.lower() not in _HOP | _ANSWER_SET_BY_EDGE
        }

        async def body() -> AsyncIterator[bytes]:
            try:
                async for chunk in answer.aiter_raw():
                    yield chunk
            finally:
                await answer.aclose()

        return StreamingResponse(body(), status_code=answer.status_code, headers=kept)

    return app
