"""Live routes: WebSockets for spectators and the NDJSON stream of a game."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Query, Request, WebSocket
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.websockets import WebSocketDisconnect

from app.broadcast import Broadcast
from app.errors import ApiError, error_response
from app.games import GameService
from app.hub import SERVER_STOPPING, Hub
from app.openapi import errors, text
from app.ratelimit import TokenBucket
from app.schemas import DIGITS
from app.settings import Settings
from app.spectators import DirectSpectator, Message, QueuedSpectator, Spectator
from app.stream_connection import StreamConnection
from app.tournaments import TournamentService
from app.ws_protocol import DIRECT_EXTENSION
from engine.rules.snapshot import snapshot_json

router = APIRouter(tags=["live"])

_PONG = Message('{"type":"pong"}', game="", seq=None)
_PINGS = frozenset({"ping", "null", '{"type":"ping"}', '{"type": "ping"}'})
# Idle NDJSON streams get an empty line this often so proxies keep them open.
_STREAM_KEEPALIVE_S = 10.0
# How long the queued fallback's close frame may take: ASGI gives no way to drop a client
# that stopped reading, only to stop waiting for it.
_CLOSE_WAIT_S = 2.0


@router.websocket("/ws/games/{game_id}")
async def watch_game(websocket: WebSocket, game_id: str) -> None:
    """Spectate one game: a snapshot (or the missed events after ``since``), then events."""
    service: GameService = websocket.app.state.games
    try:
        found = await service.fetch_many([game_id])
    except ApiError as exc:
        await _deny(websocket, exc)
        return
    if not found:
        await _deny(websocket, ApiError(404, "not_found", "no such game"))
        return
    await _spectate(websocket, [game_id], tournament=None)


@router.websocket("/ws/tournaments/{tournament_id}")
async def watch_tournament(websocket: WebSocket, tournament_id: str) -> None:
    """Spectate a tournament on one socket: the tournament, then every game (later ones
    included), rounds and standings. Resume is per game: ``since=<game>:<seq>,...``."""
    service: GameService = websocket.app.state.games
    tournaments: TournamentService = websocket.app.state.tournaments
    live = tournaments.state_of(tournament_id)
    if live is None:
        await _deny(websocket, ApiError(404, "not_found", "no such tournament"))
        return
    # Finished games are loaded first; a round paired meanwhile adds games, which are in
    # memory from the start: the list taken after the last await is complete.
    games = live.game_ids()
    for _ in range(3):
        await service.fetch_many(games)
        games = tournaments.get(tournament_id).state.game_ids()
        if all(game in service for game in games):
            break
    games = [game for game in games if game in service]
    await _spectate(websocket, games, tournament=tournament_id)


@router.get(
    "/api/stream/games/{game_id}",
    response_class=Response,
    responses={
        200: text(
            "application/x-ndjson",
            "the snapshot, then one JSON event per line (an empty line when idle)",
        ),
        **errors(404, 422, 429, 503, notes={404: "no such game"}),
    },
)
async def stream_game(
    game_id: str,
    request: Request,
    since: Annotated[int | None, Query(ge=0), DIGITS] = None,
) -> StreamingResponse:
    """NDJSON: the snapshot (or the events after ``since``), then one line per event.

    The same limits as a WebSocket spectator: a capped kernel buffer, a reader that falls
    behind for ``spectator_behind_s`` is dropped, and the stream counts against
    ``max_spectators`` until its connection is gone.
    """
    settings: Settings = request.app.state.settings
    service: GameService = request.app.state.games
    hub: Hub = request.app.state.hub
    await service.fetch(game_id)
    if hub.is_full:
        raise ApiError(503, "unavailable", "too many spectators", {"Retry-After": "10"})
    connection = StreamConnection.from_scope(request)
    if connection is not None:
        connection.limit_kernel_buffer(settings.spectator_sndbuf_bytes)
    spectator = QueuedSpectator()
    hub.subscribe(spectator, [game_id], since)
    lines = _lines(hub, spectator, connection, settings)
    return StreamingResponse(lines, media_type="application/x-ndjson")


async def _lines(
    hub: Hub, spectator: QueuedSpectator, connection: StreamConnection | None, settings: Settings
) -> AsyncIterator[str]:
    """The stream's lines (an empty one when idle) until the spectator is closed.

    With the connection at hand, nothing is written while it holds more than
    ``spectator_buffer_bytes`` unsent; a reader still behind after ``spectator_behind_s``
    (or whose queue overflowed) is reset rather than buffered, and the spectator is
    released only once the connection is gone.
    """
    try:
        while True:
            try:
                message = await asyncio.wait_for(spectator.queue.get(), _STREAM_KEEPALIVE_S)
                line = None if message is None else message.text + "\n"
            except TimeoutError:
                line = "\n"
            if line is None:
                # Closed by the hub: too slow (reset, as a WebSocket gets 1013), or the
                # server stops (a clean end: the client reconnects with since=).
                if connection is not None and spectator.close_code != SERVER_STOPPING:
                    await connection.reset()
                return
            if connection is not None and not await connection.has_room(
                settings.spectator_buffer_bytes, settings.spectator_behind_s
            ):
                spectator.close(1013, "too slow")
                await connection.reset()
                return
            yield line
    finally:
        hub.unsubscribe(spectator)


async def _spectate(websocket: WebSocket, games: list[str], tournament: str | None) -> None:
    settings: Settings = websocket.app.state.settings
    hub: Hub = websocket.app.state.hub
    broadcast: Broadcast = websocket.app.state.broadcast
    origin = websocket.headers.get("origin")
    if settings.origins and origin is not None and origin not in settings.origins:
        await _deny(websocket, ApiError(403, "forbidden", "origin not allowed"))
        return
    raw_since = websocket.query_params.get("since")
    since: int | dict[str, int] | None
    try:
        parse = _parse_since if tournament is None else _parse_game_since
        since = parse(raw_since)
    except ValueError:
        expected = "<seq>" if tournament is None else "<game>:<seq>,<game>:<seq>,..."
        await _deny(websocket, ApiError(422, "invalid", f"since must be {expected}"))
        return
    if hub.is_full:
        await _deny(websocket, ApiError(503, "unavailable", "too many spectators"))
        return
    await websocket.accept()
    # In memory again (and touched, so not evicted before the subscription below).
    service: GameService = websocket.app.state.games
    try:
        games = [live.id for live in await service.fetch_many(games)]
    except ApiError as exc:
        await websocket.close(1013, exc.message[:120])
        return
    direct = websocket.scope.get("extensions", {}).get(DIRECT_EXTENSION)
    rules = InputRules(settings, asyncio.get_running_loop().time())
    if direct is not None:
        connection = direct["connection"]
        connection.limit_kernel_buffer(settings.spectator_sndbuf_bytes)
        spectator = DirectSpectator(
            connection,
            hub.snapshot,
            max_buffer=settings.spectator_buffer_bytes,
            max_behind_s=settings.spectator_behind_s,
        )
        if tournament is not None:
            tid = tournament
            spectator.tournament = lambda: Message(
                broadcast.tournament_message(tid), game="", seq=None
            )
        _subscribe(hub, spectator, games, since, tournament, broadcast)
        # The connection lives on without this handler: see app/ws_protocol.py.
        connection.detach(DetachedSpectator(spectator, hub, rules))
        return
    queued = QueuedSpectator()
    loop = asyncio.get_running_loop()
    drain = loop.create_task(_drain(websocket, queued, settings.spectator_behind_s))
    _subscribe(hub, queued, games, since, tournament, broadcast)
    pings = loop.create_task(_read_pings(websocket, queued, rules))
    tasks = (drain, pings)
    try:
        # Either side may end the session: the reader when the client leaves or breaks a
        # rule, the writer when the client stopped reading (the reader then waits forever).
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        if queued.is_closed:
            # Let the writer send the close frame the verdict asked for (it is bounded).
            await asyncio.wait((drain,))
    finally:
        hub.unsubscribe(queued)
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks)
        for task in tasks:
            if not task.cancelled() and (error := task.exception()) is not None:
                raise error


def _subscribe(
    hub: Hub,
    spectator: Spectator,
    games: list[str],
    since: int | dict[str, int] | None,
    tournament: str | None,
    broadcast: Broadcast,
) -> None:
    if tournament is None:
        hub.subscribe(spectator, games, since)
    elif not isinstance(since, int):
        first = broadcast.tournament_message(tournament)
        hub.subscribe_tournament(spectator, tournament, first, games, since)


class InputRules:
    """What a spectator may send: text pings, a few a second. Judges one message at a time."""

    __slots__ = ("bucket",)

    def __init__(self, settings: Settings, now_s: float) -> None:
        self.bucket = TokenBucket(settings.ws_messages_per_s, settings.ws_messages_burst, now_s)

    def judge(self, text: str | None, now_s: float) -> tuple[int, str] | None:
        """None for a ping to answer, else the close code and reason."""
        if not self.bucket.take(now_s):
            return 1008, "rate limit: at most a few pings a second"
        if text is None:
            return 1003, "spectators may only send text pings"
        if text.strip() not in _PINGS:
            return 1008, "spectators may only send pings"
        return None


class DetachedSpectator:
    """The listener of a detached spectator connection: pings in, pongs out, unsubscribe."""

    __slots__ = ("hub", "rules", "spectator")

    def __init__(self, spectator: DirectSpectator, hub: Hub, rules: InputRules) -> None:
        self.spectator = spectator
        self.hub = hub
        self.rules = rules

    def on_text(self, text: str) -> None:
        """Answer a ping, or close on anything else."""
        self._judge(text)

    def on_binary(self, data: bytes) -> None:
        """Binary is never accepted."""
        self._judge(None)

    def on_closed(self) -> None:
        """Forget the spectator."""
        self.hub.unsubscribe(self.spectator)

    def _judge(self, text: str | None) -> None:
        verdict = self.rules.judge(text, asyncio.get_running_loop().time())
        if verdict is None:
            self.spectator.deliver(_PONG)
        else:
            self.spectator.close(*verdict)


async def _read_pings(websocket: WebSocket, spectator: QueuedSpectator, rules: InputRules) -> None:
    """Answer pings until the client leaves; anything else, or a flood, closes the socket."""
    loop = asyncio.get_running_loop()
    while True:
        try:
            message = await websocket.receive()
        except (WebSocketDisconnect, RuntimeError):
            return
        if message["type"] == "websocket.disconnect":
            return
        verdict = rules.judge(message.get("text"), loop.time())
        if verdict is not None:
            spectator.close(*verdict)
            return
        spectator.deliver(_PONG)


async def _drain(websocket: WebSocket, spectator: QueuedSpectator, behind_s: float) -> None:
    """Fallback writer for servers without the direct path: send what is queued, then close.

    ASGI's send waits while the client does not read, so each send is raced against the
    spectator's close (its queue filled, or a verdict) and against ``behind_s``: a send
    still pending then is abandoned, the spectator closed (1013 unless a verdict came
    first) and the close frame given ``_CLOSE_WAIT_S``. So the task ends at most about
    ``behind_s + _CLOSE_WAIT_S`` after a client stops reading; returns early when the
    client is gone.
    """
    closing = asyncio.ensure_future(spectator.wait_closed())
    try:
        while (message := await spectator.queue.get()) is not None:
            send = asyncio.ensure_future(websocket.send_text(message.text))
            await asyncio.wait(
                (send, closing), timeout=behind_s, return_when=asyncio.FIRST_COMPLETED
            )
            if not send.done():
                send.cancel()
                await asyncio.wait((send,))
                spectator.close(1013, "too slow")
                break
            if (error := send.exception()) is not None:
                if isinstance(error, RuntimeError | WebSocketDisconnect):
                    return
                raise error
    finally:
        closing.cancel()
    with contextlib.suppress(TimeoutError, RuntimeError, WebSocketDisconnect):
        await asyncio.wait_for(websocket.close(spectator.close_code or 1000), _CLOSE_WAIT_S)


async def _deny(websocket: WebSocket, error: ApiError) -> None:
    """Refuse the handshake with an HTTP error in the contract's format."""
    response = error_response(error.status, error.code, error.message, error.headers)
    try:
        await websocket.send_denial_response(response)
    except RuntimeError:
        await websocket.close(1008, error.message)


def _parse_game_since(raw: str | None) -> dict[str, int] | None:
    """``g1:5,g2:7`` -> ``{"g1": 5, "g2": 7}`` (at most a few thousand games)."""
    if raw is None or raw == "":
        return None
    result: dict[str, int] = {}
    for part in raw.split(",")[:5000]:
        game, sep, seq = part.partition(":")
        if not sep or not game.isalnum() or len(game) > 64:
            raise ValueError(part)
        value = _parse_since(seq)
        if value is None:
            raise ValueError(part)
        result[game] = value
    return result


def _parse_since(raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    value = int(raw)
    if value < 0:
        raise ValueError(raw)
    return value


@router.get("/internal/games/{game_id}/state", include_in_schema=False)
async def game_state(game_id: str, request: Request) -> JSONResponse:
    """A game as the public sees it, as its setup and snapshot: what an edge rebuilds it
    from (``app/edge.py``). Public information only."""
    service: GameService = request.app.state.games
    broadcast: Broadcast = request.app.state.broadcast
    await service.fetch(game_id)
    state = broadcast.game(game_id)
    return JSONResponse({"setup": asdict(state.setup), "snapshot": snapshot_json(state)})


@router.get("/internal/tournaments/{tournament_id}/follow", include_in_schema=False)
async def tournament_follow(tournament_id: str, request: Request) -> JSONResponse:
    """What an edge needs to follow a tournament: its first message (as the public sees
    it) and every game of it (``app/edge.py``). Public information only."""
    tournaments: TournamentService = request.app.state.tournaments
    broadcast: Broadcast = request.app.state.broadcast
    live = tournaments.state_of(tournament_id)
    if live is None:
        raise ApiError(404, "not_found", "no such tournament")
    return JSONResponse(
        {"message": broadcast.tournament_message(tournament_id), "games": live.game_ids()}
    )


@router.websocket("/{path:path}")
async def unknown_socket(websocket: WebSocket, path: str) -> None:
    """Any other WebSocket path: 404 in the contract's format, as for HTTP."""
    await _deny(websocket, ApiError(404, "not_found", "no such WebSocket route"))


# What an edge's routes share with these (app/edge.py).
deny = _deny
spectate = _spectate
