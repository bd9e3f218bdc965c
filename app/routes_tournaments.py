"""REST routes of tournaments (``/api/tournaments``).

Reads show the public view (behind by the broadcast delay, when there is one) unless the
bearer is the operator, who sees the tournament live.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

import aiofiles
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse

from app.auth import Operator, Tokens, authenticated
from app.broadcast import Broadcast
from app.broadcast_rounds import BroadcastRounds
from app.errors import ApiError
from app.games import GameService
from app.openapi import BEARER, OPTIONAL_BEARER, PGN_TEXT, body, errors, text
from app.relay import RelayService
from app.responses import (
    PairedRound,
    RelayReport,
    Standings,
    Tournament,
    TournamentList,
)
from app.schemas import DIGITS, BoardResultIn, ByeIn, CreateTournamentIn, EntrantIn, PairRoundIn
from app.tournaments import LiveTournament, StandingsCache, TournamentService
from engine.rules.game import GameState
from engine.tournament.errors import TournamentConflict
from engine.tournament.state import TournamentState
from engine.tournament.trf import tournament_trf
from engine.tournament.view import round_json, tournament_json
from engine.tournament.wire import StandingJSON
from workers.archive import PgnArchive
from workers.store import Store

router = APIRouter(prefix="/api/tournaments", tags=["tournaments"])

_NOTES = {
    404: "no such tournament, player, round or board",
    409: "refused by the tournament's state: round_unfinished, tournament_finished, "
    "no_pairing, ...",
}
# Every answer of an operator's change to a tournament.
_CHANGE = errors(400, 401, 403, 404, 409, 413, 422, 429, 503, notes=_NOTES)
# Every answer of a read (a token only changes what is shown: the operator sees it live).
_READ = errors(401, 404, 422, 429, notes=_NOTES)
TournamentId = Annotated[str, Path(max_length=64)]


def _service(request: Request) -> TournamentService:
    service: TournamentService = request.app.state.tournaments
    return service


def _broadcast(request: Request) -> Broadcast:
    broadcast: Broadcast = request.app.state.broadcast
    return broadcast


def _operator(request: Request) -> None:
    tokens: Tokens = request.app.state.tokens
    tokens.require_operator(request)


async def _is_operator(request: Request) -> bool:
    tokens: Tokens = request.app.state.tokens
    store: Store = request.app.state.store
    return isinstance(await tokens.identify_stored(request, store.seat_of), Operator)


def _full(request: Request, state: TournamentState) -> dict[str, Any]:
    """``<Tournament>`` with rounds and standings (computed once per state)."""
    cache: StandingsCache = request.app.state.standings
    return tournament_json(state, standings=cache.of(state))


def _standings(request: Request, state: TournamentState) -> list[StandingJSON]:
    cache: StandingsCache = request.app.state.standings
    return cache.of(state)


async def _seen(request: Request, live: LiveTournament) -> TournamentState:
    """The tournament as the bearer may see it: live for the operator, else public."""
    return _seen_state(request, live, await _is_operator(request))


def _game_seen(request: Request, game_id: str, live_view: bool) -> GameState:
    games: GameService = request.app.state.games
    return games.get(game_id).state if live_view else _broadcast(request).game(game_id)


@router.post(
    "",
    status_code=201,
    responses={201: body(Tournament), **errors(400, 401, 403, 413, 422, 429, 503)},
    openapi_extra=BEARER,
    dependencies=[Depends(authenticated)],
)
async def create_tournament(body: CreateTournamentIn, request: Request) -> JSONResponse:
    """Create a tournament with its players (operator)."""
    _operator(request)
    state = await _service(request).create(body)
    return JSONResponse(_full(request, state), status_code=201)


@router.get(
    "",
    responses={200: body(TournamentList), **errors(401, 422, 429)},
    openapi_extra=OPTIONAL_BEARER,
)
async def list_tournaments(
    request: Request,
    status: Annotated[Literal["created", "running", "finished"] | None, Query()] = None,
) -> JSONResponse:
    """Tournaments, newest first, without rounds and standings."""
    service = _service(request)
    operator = await _is_operator(request)
    items = []
    for live in reversed(list(service.all())):
        state = _seen_state(request, live, operator)
        if status is None or state.status == status:
            items.append(tournament_json(state, full=False))
    return JSONResponse({"tournaments": items})


def _seen_state(request: Request, live: LiveTournament, operator: bool) -> TournamentState:
    if operator:
        return live.state
    public = _broadcast(request).tournament(live.id)
    return live.state if public is None else public


@router.get(
    "/{tournament_id}",
    responses={200: body(Tournament), **_READ},
    openapi_extra=OPTIONAL_BEARER,
)
async def get_tournament(tournament_id: TournamentId, request: Request) -> JSONResponse:
    """The tournament with its rounds and standings (and, for the operator, the state of
    its relay source and of each round's own source)."""
    live = _service(request).get(tournament_id)
    data = _full(request, await _seen(request, live))
    if await _is_operator(request):
        relay: RelayService = request.app.state.relay
        status = relay.status(live.id)
        if status is not None:
            data["relay"] = status
        # A broadcast round's own source (its sync_url) shows its state the same way.
        for rnd in data.get("rounds", []):
            source = relay.round_status(rnd["id"]) if "id" in rnd else None
            if source is not None:
                rnd["source"] = source
    return JSONResponse(data)


@router.post(
    "/{tournament_id}/players",
    status_code=201,
    responses={201: body(Tournament), **_CHANGE},
    openapi_extra=BEARER,
    dependencies=[Depends(authenticated)],
)
async def add_player(
    tournament_id: TournamentId, body: EntrantIn, request: Request
) -> JSONResponse:
    """A late entry, before the next round is paired (operator)."""
    _operator(request)
    service = _service(request)
    state = await service.add_player(service.get(tournament_id), body)
    return JSONResponse(_full(request, state), status_code=201)


@router.post(
    "/{tournament_id}/players/{player_id}/withdraw",
    responses={200: body(Tournament), **_CHANGE},
    openapi_extra=BEARER,
    dependencies=[Depends(authenticated)],
)
async def withdraw(
    tournament_id: TournamentId, player_id: Annotated[str, Path(max_length=64)], request: Request
) -> JSONResponse:
    """Withdraw a player: not paired from the next round on (operator)."""
    _operator(request)
    service = _service(request)
    state = await service.withdraw(service.get(tournament_id), player_id)
    return JSONResponse(_full(request, state))


@router.post(
    "/{tournament_id}/players/{player_id}/bye",
    responses={200: body(Tournament), **_CHANGE},
    openapi_extra=BEARER,
    dependencies=[Depends(authenticated)],
)
async def request_bye(
    tournament_id: TournamentId,
    player_id: Annotated[str, Path(max_length=64)],
    body: ByeIn,
    request: Request,
) -> JSONResponse:
    """A requested half- or zero-point bye for a round not yet paired (operator)."""
    _operator(request)
    service = _service(request)
    live = service.get(tournament_id)
    state = await service.request_bye(live, player_id, body.round, float(body.points))
    return JSONResponse(_full(request, state))


@router.post(
    "/{tournament_id}/rounds",
    status_code=201,
    responses={201: body(PairedRound), **_CHANGE},
    openapi_extra=BEARER,
    dependencies=[Depends(authenticated)],
)
async def pair_round(
    tournament_id: TournamentId, body: PairRoundIn, request: Request
) -> JSONResponse:
    """Pair the next round and create its games (operator); answers their tokens, once.

    A broadcast's round is created empty instead (its boards come with the games pushed).
    """
    _operator(request)
    service = _service(request)
    live = service.get(tournament_id)
    if live.state.setup.is_broadcast:
        rounds: BroadcastRounds = request.app.state.rounds
        created = await rounds.create(
            live,
            body.name,
            start_at=body.start_at,
            sync_url=body.sync_url,
            delay_s=body.delay or 0,
        )
        return JSONResponse({**round_json(created), "tokens": {}}, status_code=201)
    if body.name is not None or body.sync_url is not None or body.delay is not None:
        # Well-formed, but refused by what this tournament is (its format): 409.
        raise TournamentConflict("name, sync_url and delay are for broadcast rounds")
    paired = await service.pair_next(live, body.start_at)
    rnd = round_json(paired.state.round(paired.round))
    return JSONResponse(
        {
            "round": paired.round,
            "pairings": rnd["pairings"],
            "byes": rnd["byes"],
            "tokens": paired.tokens,
        },
        status_code=201,
    )


@router.post(
    "/{tournament_id}/rounds/{round_no}/results",
    responses={200: body(Tournament), **_CHANGE},
    openapi_extra=BEARER,
    dependencies=[Depends(authenticated)],
)
async def set_result(
    tournament_id: TournamentId,
    round_no: Annotated[int, Path(ge=1, le=100), DIGITS],
    body: BoardResultIn,
    request: Request,
) -> JSONResponse:
    """Set or correct a board's result, forfeits included (operator)."""
    _operator(request)
    service = _service(request)
    state = await service.set_result(service.get(tournament_id), round_no, body.board, body.result)
    return JSONResponse(_full(request, state))


@router.post(
    "/{tournament_id}/rounds/{round_no}/pgn",
    responses={200: body(RelayReport), **_CHANGE},
    dependencies=[Depends(authenticated)],
    openapi_extra={
        **BEARER,
        "requestBody": {
            "content": {
                "application/x-chess-pgn": {"schema": PGN_TEXT},
                "text/plain": {"schema": PGN_TEXT},
            },
            "required": True,
        },
    },
)
async def push_pgn(
    tournament_id: TournamentId,
    round_no: Annotated[int, Path(ge=1, le=100), DIGITS],
    request: Request,
) -> JSONResponse:
    """Relay the round's games as PGN (operator): only new moves are appended.

    Answers one report per pushed game, in the pushed order: ``board``, ``game``,
    ``moves_added``, ``corrected``, ``result``, ``error``.
    """
    _operator(request)
    live = _service(request).get(tournament_id)
    content_type = request.headers.get("content-type", "text/plain").split(";")[0].strip()
    if content_type not in ("text/plain", "application/x-chess-pgn", "application/octet-stream"):
        raise ApiError(400, "bad_request", "send the PGN as text/plain or application/x-chess-pgn")
    relay: RelayService = request.app.state.relay
    pgn = await request.body()
    if not pgn.strip():
        raise ApiError(400, "bad_request", "the body is empty: send the round's PGN")
    return JSONResponse({"games": await relay.push(live, round_no, pgn)})


@router.get(
    "/{tournament_id}/standings",
    responses={200: body(Standings), **_READ},
    openapi_extra=OPTIONAL_BEARER,
)
async def get_standings(tournament_id: TournamentId, request: Request) -> JSONResponse:
    """The standings with tie-breaks."""
    state = await _seen(request, _service(request).get(tournament_id))
    return JSONResponse({"tournament": state.id, "standings": _standings(request, state)})


@router.get(
    "/{tournament_id}/trf",
    response_class=Response,
    responses={200: text("text/plain", "the TRF16 report"), **_READ},
    openapi_extra=OPTIONAL_BEARER,
)
async def get_trf(tournament_id: TournamentId, request: Request) -> PlainTextResponse:
    """The FIDE Tournament Report File (TRF16)."""
    state = await _seen(request, _service(request).get(tournament_id))
    ranking = [row["player"] for row in _standings(request, state)]
    # Tens of milliseconds for a large open: off the loop.
    return PlainTextResponse(await asyncio.to_thread(tournament_trf, state, ranking))


@router.get(
    "/{tournament_id}/pgn",
    response_class=Response,
    responses={
        200: text("application/x-chess-pgn", "every game, in round and board order"),
        **_READ,
        **errors(503),
    },
    openapi_extra=OPTIONAL_BEARER,
)
async def get_pgn(tournament_id: TournamentId, request: Request) -> StreamingResponse:
    """Every game in round and board order: finished games from their archive files."""
    live = _service(request).get(tournament_id)
    operator = await _is_operator(request)
    state = await _seen(request, live)
    game_ids = state.game_ids()
    archive: PgnArchive = request.app.state.archive
    # The archive holds the live game: a delayed public view renders its own state.
    use_archive = operator or not _broadcast(request).is_delayed(live.id)

    async def chunks() -> AsyncIterator[str]:
        games: GameService = request.app.state.games
        for game_id in game_ids:
            text = None
            if game_id not in games:
                # Finished and shown in full (else it would be in memory): its file is it.
                text = await _read_archived(archive.path_of(game_id), game_id, None)
            if text is None:
                await games.fetch(game_id)
                game = _game_seen(request, game_id, operator)
                if use_archive and game.is_finished:
                    text = await _read_archived(archive.path_of(game_id), game_id, game.result)
                if text is None:
                    text = await games.pgn(game)
            yield text

    return StreamingResponse(chunks(), media_type="application/x-chess-pgn")


async def _read_archived(path: Any, game_id: str, result: str | None) -> str | None:
    """The archived PGN of a finished game, if the file holds this very version (the
    game's ``result``, when known)."""
    try:
        async with aiofiles.open(path, encoding="utf-8") as f:
            text = await f.read()
    except OSError:
        return None
    # The file is rewritten after every change of a finished game; if it lags (a
    # correction being archived), render instead.
    if f'[GameId "{game_id}"]' not in text:
        return None
    if result is not None and f'[Result "{result}"]' not in text:
        return None
    return text
