"""REST routes of games (``/api/games``)."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from app.auth import Operator, Seat, Tokens, authenticated
from app.broadcast import Broadcast
from app.errors import ApiError
from app.games import GameService
from app.openapi import BEARER, OPTIONAL_BEARER, body, errors, text
from app.responses import Game, GameCreated, GameList, Review, ReviewStatus
from app.review import ReviewService
from app.schemas import DIGITS, CreateGameIn, DrawIn, MoveIn, ResultIn
from engine.rules.clock import TimeControl
from engine.rules.game import GameState, Player
from engine.rules.view import game_json
from engine.rules.wire import GameJSON
from workers.store import Store

router = APIRouter(prefix="/api/games", tags=["games"])

_NO_GAME = {404: "no such game"}
_REFUSED = {
    409: "refused by the game's state: illegal_move, not_your_turn, stale_ply, game_over, ..."
}
# Every answer of a route that changes a game: who may, which game, what the state allows.
_CHANGE = errors(400, 401, 403, 404, 409, 413, 422, 429, 503, notes={**_NO_GAME, **_REFUSED})

# Games per page of ``GET /api/games``: by default, and at most.
DEFAULT_PAGE = 50
MAX_PAGE = 500


def _service(request: Request) -> GameService:
    service: GameService = request.app.state.games
    return service


def _tokens(request: Request) -> Tokens:
    tokens: Tokens = request.app.state.tokens
    return tokens


def _view(service: GameService, state: GameState) -> GameJSON:
    return game_json(state, service.now_ms(), spectators=service.spectators(state.setup.id))


def _game(service: GameService, state: GameState) -> Response:
    """The game's JSON, from the body kept for its ``seq`` (see app/game_views.py)."""
    return Response(service.json_body(state), media_type="application/json")


def _player(data: Any) -> Player:
    return Player(data.name, data.rating, data.title, data.fide_id)


@router.post(
    "",
    status_code=201,
    responses={201: body(GameCreated), **errors(400, 401, 403, 413, 422, 429, 503)},
    openapi_extra=BEARER,
    dependencies=[Depends(authenticated)],
)
async def create_game(body: CreateGameIn, request: Request) -> JSONResponse:
    """Create a game (operator). Answers the game and both player tokens, once."""
    _tokens(request).require_operator(request)
    service = _service(request)
    new = await service.create(
        _player(body.white),
        _player(body.black),
        TimeControl.from_seconds(body.clock.initial, body.clock.increment),
        mode=body.mode,
        fen=body.fen,
    )
    return JSONResponse({"game": _view(service, new.state), "tokens": new.tokens}, status_code=201)


async def _seen(request: Request, game_id: str) -> GameState:
    """The game as the bearer may see it: live for the operator and the game's players,
    else as the public sees it (behind by its tournament's broadcast delay)."""
    state = (await _service(request).fetch(game_id)).state
    broadcast: Broadcast = request.app.state.broadcast
    if not broadcast.is_delayed(state.setup.tournament):
        return state
    identity = _tokens(request).identify(request)
    if isinstance(identity, Operator) or (isinstance(identity, Seat) and identity.game == game_id):
        return state
    return broadcast.game(game_id)


@router.get(
    "",
    responses={200: body(GameList), **errors(401, 422, 429)},
    openapi_extra=OPTIONAL_BEARER,
)
async def list_games(
    request: Request,
    status: Annotated[Literal["created", "started", "finished"] | None, Query()] = None,
    tournament: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE), DIGITS] = DEFAULT_PAGE,
    cursor: Annotated[str | None, Query(pattern=r"^[0-9]{1,18}$")] = None,
) -> Response:
    """Games newest first, ``limit`` per page; ``next`` is the ``cursor`` of the following
    page, null on the last one. Filtered by status and tournament; the public view unless
    the bearer is the operator."""
    service = _service(request)
    broadcast: Broadcast = request.app.state.broadcast
    store: Store = request.app.state.store
    identity = await _tokens(request).identify_stored(request, store.seat_of)
    operator = isinstance(identity, Operator)
    rows = await asyncio.to_thread(
        store.list_games,
        status=status,
        tournament=tournament,
        before=None if cursor is None else int(cursor),
        limit=limit,
        # The public sees delayed games in another status than the store's.
        any_status_in=() if operator else broadcast.delayed_tournaments(),
    )
    parts: list[bytes] = []
    for row in rows:
        state = service.state_of(row.id)
        if state is not None:
            if not operator:
                state = broadcast.game(row.id)
            if status is None or state.status == status:
                parts.append(service.json_body(state))
        elif row.summary is not None and (status is None or row.status == status):
            # Not in memory: finished, shown in full and watched by no one; the stored
            # text is the answer as it is.
            parts.append(row.summary.encode())
    following = _dumps(str(rows[-1].position) if len(rows) == limit else None)
    body = b'{"games":[%s],"next":%s}' % (b",".join(parts), following.encode())
    return Response(body, media_type="application/json")


def _dumps(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"))


@router.get(
    "/{game_id}",
    responses={200: body(Game), **errors(401, 404, 429, notes=_NO_GAME)},
    openapi_extra=OPTIONAL_BEARER,
)
async def get_game(game_id: str, request: Request) -> Response:
    """The game's full state."""
    service = _service(request)
    return _game(service, await _seen(request, game_id))


@router.get(
    "/{game_id}/pgn",
    response_class=Response,
    responses={
        200: text("application/x-chess-pgn", "the game's PGN with [%clk] after every move"),
        **errors(401, 404, 429, 503, notes=_NO_GAME),
    },
    openapi_extra=OPTIONAL_BEARER,
)
async def get_pgn(game_id: str, request: Request) -> Response:
    """The game as PGN with ``[%clk]`` after every move."""
    service = _service(request)
    pgn = await service.pgn(await _seen(request, game_id))
    return Response(pgn, media_type="application/x-chess-pgn")


@router.post(
    "/{game_id}/start",
    responses={200: body(Game), **errors(401, 403, 404, 409, 429, 503, notes=_NO_GAME)},
    openapi_extra=BEARER,
    dependencies=[Depends(authenticated)],
)
async def start_game(game_id: str, request: Request) -> Response:
    """Start a created game (operator): the side to move's clock starts."""
    _tokens(request).require_operator(request)
    service = _service(request)
    return _game(service, await service.start(await service.fetch(game_id)))


@router.post(
    "/{game_id}/moves",
    responses={200: body(Game), **_CHANGE},
    openapi_extra=BEARER,
    dependencies=[Depends(authenticated)],
)
async def post_move(game_id: str, body: MoveIn, request: Request) -> Response:
    """Play a move (the player to move, or the operator). 200 once durably written."""
    service = _service(request)
    live = await service.fetch(game_id)
    identity = _tokens(request).require_seat_or_operator(request, game_id)
    by = identity.color if isinstance(identity, Seat) else None
    state = await service.move(live, body.move, by=by, ply=body.ply, clock_ms=body.clock_ms)
    return _game(service, state)


@router.post(
    "/{game_id}/resign",
    responses={200: body(Game), **errors(401, 403, 404, 409, 429, 503, notes=_NO_GAME)},
    openapi_extra=BEARER,
    dependencies=[Depends(authenticated)],
)
async def resign(game_id: str, request: Request) -> Response:
    """The bearer's side resigns (players only)."""
    service = _service(request)
    live = await service.fetch(game_id)
    seat = _tokens(request).require_seat(request, game_id)
    return _game(service, await service.resign(live, seat.color))


@router.post(
    "/{game_id}/draw",
    responses={200: body(Game), **_CHANGE},
    openapi_extra=BEARER,
    dependencies=[Depends(authenticated)],
)
async def draw(game_id: str, body: DrawIn, request: Request) -> Response:
    """Offer, accept or decline a draw, or claim one by rule (players only)."""
    service = _service(request)
    live = await service.fetch(game_id)
    seat = _tokens(request).require_seat(request, game_id)
    return _game(service, await service.draw(live, seat.color, body.action))


@router.post(
    "/{game_id}/result",
    responses={200: body(Game), **_CHANGE},
    openapi_extra=BEARER,
    dependencies=[Depends(authenticated)],
)
async def set_result(game_id: str, body: ResultIn, request: Request) -> Response:
    """Set the result as arbiter (operator)."""
    _tokens(request).require_operator(request)
    service = _service(request)
    state = await service.adjudicate(await service.fetch(game_id), body.result, body.reason)
    return _game(service, state)


# --- game review (app/review.py) ---


def _reviews(request: Request) -> ReviewService | None:
    reviews: ReviewService | None = request.app.state.reviews
    return reviews


_REVIEW = {
    "model": Review | ReviewStatus,
    "description": "the review (status done), or where it stands (none, queued, running)",
}


@router.get(
    "/{game_id}/review",
    responses={200: _REVIEW, **errors(401, 404, 429, notes=_NO_GAME)},
    openapi_extra=OPTIONAL_BEARER,
)
async def get_review(game_id: str, request: Request) -> JSONResponse:
    """The game's review: ``status`` ``done`` with the review, else ``none`` (no review
    done or under way; an unfinished game is reviewed when it ends), ``queued`` (with
    ``ahead``: reviews to do before it) or ``running`` (with ``progress``)."""
    state = await _seen(request, game_id)
    if state.review is not None:
        return JSONResponse(state.review)
    reviews = _reviews(request)
    if not state.is_finished or reviews is None:
        return JSONResponse({"status": "none"})
    status = reviews.status(game_id)
    real = _service(request).state_of(game_id)
    if status["status"] == "none" and real is not None and real.review is not None:
        # Done, but a broadcast delay holds it back from the public for now.
        total = real.ply + 1
        status = {"status": "running", "progress": {"done": total, "total": total}}
    return JSONResponse(status)


@router.post(
    "/{game_id}/review",
    status_code=202,
    responses={
        202: {"model": ReviewStatus, "description": "where the review stands"},
        **errors(
            401,
            403,
            404,
            409,
            429,
            503,
            notes={**_NO_GAME, 409: "not_finished, no_moves, or review_off"},
        ),
    },
    openapi_extra=BEARER,
    dependencies=[Depends(authenticated)],
)
async def request_review(game_id: str, request: Request) -> JSONResponse:
    """Review a finished game (again) at the server's budget (operator): 202 with where the
    review stands; the ``review`` event and ``GET .../review`` have it when it is done.
    409 ``not_finished`` for a game still running, ``no_moves`` for one without a move,
    ``review_off`` when reviews (or analysis) are off."""
    _tokens(request).require_operator(request)
    state = (await _service(request).fetch(game_id)).state
    reviews = _reviews(request)
    if reviews is None:
        raise ApiError(409, "review_off", "game review is off (GM_REVIEW, GM_ANALYSIS)")
    if not state.is_finished:
        raise ApiError(409, "not_finished", "only a finished game can be reviewed")
    if state.ply == 0:
        raise ApiError(409, "no_moves", "the game has no move to review")
    return JSONResponse(await reviews.request(game_id), status_code=202)
