"""lichess's broadcast API on Grandmaster's broadcasts, for the tools operators already use.

The lichess Broadcaster app, broadcastCLI and berserk let the user set the server's base
URL: pointed at Grandmaster, they create broadcasts and rounds, push each round's PGN and
read it back through these routes, answered as lichess answers them (see
``app/lichess_view.py`` for the shapes). Writes need a token with the ``study:write``
scope (an account's, or the operator's); a broadcast belongs to the account that created
it. Errors here are lichess's ``{"error": "..."}``, not the contract's format, because
these clients read that; a push always answers 200 with its per-game errors inside.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, StreamingResponse
from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.exceptions import HTTPException

from app.auth import Account, Operator, Tokens
from app.broadcast import Broadcast
from app.broadcast_rounds import BroadcastRounds
from app.errors import ApiError, with_challenge
from app.games import GameService
from app.hub import Hub
from app.lichess_view import game_preview, my_round_json, round_json, slug, tour_json
from app.openapi import BEARER, OPTIONAL_BEARER, PGN_TEXT, Responses, body, errors, text
from app.relay import RelayService
from app.relay_fetch import NotPublicError, SourceError, public_address
from app.responses import (
    LichessError,
    MyRound,
    Ok,
    PushResult,
    RoundWithGames,
    ToursPage,
    TourWithRounds,
)
from app.schemas import DIGITS, NAME_FORMAT, ClockIn, CreateTournamentIn
from app.settings import Settings
from app.spectators import QueuedSpectator
from app.tournaments import LiveTournament, TournamentService
from engine.rules.errors import GameRefusal, RuleError
from engine.rules.game import GameState
from engine.tournament.state import Round, TournamentState
from workers.archive import RenderBusy
from workers.store import StoreUnavailable

log = logging.getLogger(__name__)

WRITE = "study:write"
# A broadcast's games have a clock even when the boards send none: 90 minutes + 30 s.
_DEFAULT_CLOCK = ClockIn(initial=5400, increment=30)
# lichess's page size of /api/broadcast/by/{user}, and its highest page.
_PAGE = 24
_MAX_PAGE = 20
# The live round stream sends a space when idle this long (seconds).
_KEEPALIVE_S = 60.0
_UPSTREAM = "The relay has an upstream URL, and cannot be pushed to."
# The latest ``startsAt`` taken (Unix ms): the year 3000.
_MAX_STARTS_MS = 32_503_680_000_000


class LichessRoute(APIRoute):
    """A route whose errors leave as lichess's ``{"error": "..."}`` with the status."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """The route's handler, with errors translated."""
        handler = super().get_route_handler()

        async def translated(request: Request) -> Response:
            try:
                return await handler(request)
            except ApiError as exc:
                return _error(exc.status, exc.message, with_challenge(exc))
            except GameRefusal as exc:
                # Well-formed but refused by the state (a 65th round...): 409, as the
                # contract's routes; malformed: 400, as lichess.
                return _error(409 if isinstance(exc, RuleError) else 400, exc.message)
            except StoreUnavailable as exc:
                return _error(503, str(exc), {"Retry-After": "5"})
            except RenderBusy as exc:
                return _error(503, str(exc), {"Retry-After": "1"})
            except (ValidationError, RequestValidationError) as exc:
                # A parameter lichess would refuse (``page=x``) too: lichess answers 400.
                problems = "; ".join(str(e.get("msg", "invalid")) for e in exc.errors()[:5])
                return _error(400, problems or "invalid")
            except HTTPException as exc:
                # The body limit, crossed while the body was read (app/limits.py).
                return _error(exc.status_code, str(exc.detail), dict(exc.headers or {}))

        return translated


router = APIRouter(tags=["lichess broadcasts"], route_class=LichessRoute)

_NOTES = {
    400: "a field or parameter lichess would refuse, or a body that is not JSON or a form",
    403: "a token without the scope study:write, or another account's broadcast",
    404: "no such broadcast or round",
    409: "refused by the broadcast's state (a round too many, a finished round...)",
}


def _errors(*statuses: int) -> Responses:
    """The lichess-shaped error answers of these statuses."""
    return errors(*statuses, shape=LichessError, notes=_NOTES)


_WRITE = _errors(400, 401, 403, 404, 409, 413, 429, 503)
_PGN_BODY = {
    "requestBody": {
        "description": "the round's games as PGN, as the boards show them now",
        "content": {
            "text/plain": {"schema": PGN_TEXT},
            "application/x-chess-pgn": {"schema": PGN_TEXT},
        },
        "required": True,
    }
}
_NAME_FIELD = {
    "type": "string",
    "minLength": 3,
    "maxLength": 80,
    "format": NAME_FORMAT,
    "description": "3 to 80 characters once trimmed",
}


def _form(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    """A lichess request body: form-encoded (lichess) or JSON (berserk), as these name.

    A blank optional form field, and in JSON a null (or an empty text) is the field left
    out.
    """

    def optional(schema: dict[str, Any], *absent: dict[str, Any]) -> dict[str, Any]:
        return {"anyOf": [schema, *absent]}

    blank = {"const": ""}
    form = {
        "type": "object",
        "properties": {
            name: schema if name in required else optional(schema, blank)
            for name, schema in properties.items()
        },
        "required": required,
    }
    nullable = {
        name: schema
        if name in required
        else optional(schema, {"type": "null"}, *([blank] if schema["type"] == "string" else []))
        for name, schema in properties.items()
    }
    json_body = {"type": "object", "properties": nullable, "required": required}
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {"schema": form},
                "application/json": {"schema": json_body},
            },
        }
    }


_TOUR_BODY = _form(
    {
        "name": _NAME_FIELD,
        "description": {"type": "string", "description": "kept up to 20000 characters"},
        "markdown": {"type": "string", "description": "the same as description"},
    },
    ["name"],
)
_ROUND_BODY = _form(
    {
        "name": _NAME_FIELD,
        "startsAt": {
            "type": "integer",
            "minimum": 0,
            "maximum": _MAX_STARTS_MS,
            "description": "Unix ms (or a local yyyy-MM-ddTHH:mm, taken as UTC)",
        },
        "syncUrl": {"type": "string", "maxLength": 2000, "pattern": "^https?://"},
        "delay": {"type": "integer", "minimum": 0, "maximum": 3600},
        "status": {"type": "string", "enum": ["new", "started", "finished"]},
    },
    ["name"],
)
_PAGE_OR_JSON = {
    "description": "a redirect to the tournament's page (browsers; no JSON asked for)",
    "headers": {"Location": {"required": True, "schema": {"type": "string"}}},
}


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


# --- who, and what they may change ---


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _writer(request: Request) -> str:
    """The account of a token with ``study:write`` (the operator's token: the operator)."""
    tokens: Tokens = request.app.state.tokens
    identity = tokens.require_scope(request, WRITE)
    return _name_of(request, identity)


def _name_of(request: Request, identity: Operator | Account) -> str:
    if isinstance(identity, Account):
        return identity.name
    settings: Settings = request.app.state.settings
    return settings.operator_name


def _reader(request: Request) -> Operator | Account | None:
    """The bearer, when it is the operator or an account (for ``writeable``)."""
    tokens: Tokens = request.app.state.tokens
    try:
        identity = tokens.identify(request)
    except ApiError:
        return None
    return identity if isinstance(identity, Operator | Account) else None


def _may_write(
    request: Request, identity: Operator | Account | None, state: TournamentState
) -> bool:
    if identity is None:
        return False
    if isinstance(identity, Operator):
        return True
    return WRITE in identity.scopes and state.setup.owner == identity.name


def _require_owner(request: Request, live: LiveTournament) -> None:
    tokens: Tokens = request.app.state.tokens
    identity = tokens.require_scope(request, WRITE)
    if not _may_write(request, identity, live.state):
        raise ApiError(403, "forbidden", "You can't do that")


def _tour(request: Request, tour_id: str) -> LiveTournament:
    service: TournamentService = request.app.state.tournaments
    live = service.get(tour_id)
    if not live.state.setup.is_broadcast:
        raise ApiError(404, "not_found", "Not found")
    return live


def _round(request: Request, round_id: str) -> tuple[LiveTournament, Round]:
    rounds: BroadcastRounds = request.app.state.rounds
    try:
        return rounds.find(round_id)
    except ApiError:
        raise ApiError(404, "not_found", "Not found") from None


def _round_of(state: TournamentState, round_id: str) -> Round:
    """The round ``round_id`` of ``state``; 404 when the state has none (a round created
    under a broadcast delay is not public yet)."""
    for rnd in state.rounds:
        if rnd.id == round_id:
            return rnd
    raise ApiError(404, "not_found", "Not found")


def _public(request: Request, live: LiveTournament) -> TournamentState:
    broadcast: Broadcast = request.app.state.broadcast
    return broadcast.tournament(live.id) or live.state


# --- request bodies: form-encoded (lichess) or JSON (berserk) ---


async def _fields(request: Request) -> dict[str, str]:
    """The body's fields as lichess reads them: JSON nulls and empty strings are absent,
    nested objects become dotted keys, ``true``/``false`` and numbers their text."""
    raw = await request.body()
    kind = request.headers.get("content-type", "")
    if "json" in kind or raw.lstrip()[:1] == b"{":
        try:
            data = json.loads(raw or b"{}")
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, "bad_request", "the body is not JSON") from None
        if not isinstance(data, dict):
            raise ApiError(400, "bad_request", "the body must be a JSON object")
        for field, kinds in _JSON_FIELDS.items():
            value = data.get(field)
            if value is not None and (isinstance(value, bool) or not isinstance(value, kinds)):
                raise _form_error(field, "Invalid value")
        flat: dict[str, str] = {}
        _flatten(data, "", flat)
        return flat
    text = raw.decode("utf-8", errors="replace")
    return {k: v for k, v in urllib.parse.parse_qsl(text, keep_blank_values=False) if v.strip()}


# The documented fields of a JSON body and the JSON types each may have (a form sends text).
_JSON_FIELDS: dict[str, type | tuple[type, ...]] = {
    "name": str,
    "description": str,
    "markdown": str,
    "syncUrl": str,
    "status": str,
    "startsAt": (int, float),
    "delay": (int, float),
}


def _flatten(value: Any, key: str, out: dict[str, str]) -> None:
    if value is None or value == "":
        return
    if isinstance(value, dict):
        for name, item in value.items():
            _flatten(item, f"{key}.{name}" if key else str(name), out)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _flatten(item, f"{key}[{i}]", out)
    elif isinstance(value, bool):
        out[key] = "true" if value else "false"
    elif isinstance(value, float) and value.is_integer():
        # JSON's 81.0 is the integer 81, as a form would send it.
        out[key] = str(int(value))
    else:
        out[key] = str(value)


def _form_error(field: str, message: str) -> ApiError:
    return ApiError(400, "bad_request", json.dumps({field: [message]}))


def _name(fields: dict[str, str]) -> str:
    name = fields.get("name", "").strip()
    if not 3 <= len(name) <= 80:
        raise _form_error("name", "Must be between 3 and 80 characters long")
    return name


def _starts_at(fields: dict[str, str]) -> str | None:
    """``startsAt`` as Unix ms or as a local ``yyyy-MM-ddTHH:mm`` (taken as UTC)."""
    value = fields.get("startsAt")
    if value is None:
        return None
    try:
        if value.isdigit():
            if int(value) > _MAX_STARTS_MS:
                raise ValueError(value)
            when = datetime.fromtimestamp(int(value) / 1000, UTC)
        else:
            when = datetime.fromisoformat(value).replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        raise _form_error("startsAt", "Invalid date") from None
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _delay(fields: dict[str, str]) -> int:
    value = fields.get("delay", "0")
    if not value.isdigit() or int(value) > 3600:
        raise _form_error("delay", "Must be between 0 and 3600")
    return int(value)


def _sync_url(fields: dict[str, str]) -> str | None:
    url = fields.get("syncUrl")
    if url is None:
        return None
    if not url.startswith(("http://", "https://")) or len(url) > 2000:
        raise _form_error("syncUrl", "Invalid URL")
    return url


async def _public_source(request: Request, url: str | None) -> None:
    """An account (not the operator) may only name sources on public addresses: the server
    fetches them, and must not be made to fetch its own network (lila refuses loopback
    hosts too). Raises a form error otherwise."""
    if url is None:
        return
    tokens: Tokens = request.app.state.tokens
    if isinstance(tokens.identify(request), Operator):
        return
    host = urllib.parse.urlsplit(url).hostname or ""
    try:
        await public_address(host, 0)
    except NotPublicError:
        raise _form_error("syncUrl", "The source must be on a public address") from None
    except SourceError:
        raise _form_error("syncUrl", "Unknown host") from None


def _status(fields: dict[str, str]) -> bool:
    """Whether the round is marked finished (``status``, or berserk's old ``finished``)."""
    status = fields.get("status")
    if status is not None and status not in ("new", "started", "finished"):
        raise _form_error("status", "Invalid value")
    return status == "finished" or fields.get("finished") == "true"


# --- tours and rounds ---


@router.post(
    "/broadcast/new",
    responses={200: body(TourWithRounds), **_errors(400, 401, 403, 413, 429, 503)},
    openapi_extra={**BEARER, **_TOUR_BODY},
)
async def create_tour(request: Request) -> JSONResponse:
    """Create a broadcast: ``{"tour", "rounds": []}``."""
    owner = _writer(request)
    fields = await _fields(request)
    body = CreateTournamentIn(
        name=_name(fields), format="broadcast", mode="relay", clock=_DEFAULT_CLOCK
    )
    info = {
        key.removeprefix("info."): value[:120]
        for key, value in fields.items()
        if key.startswith("info.") and "." not in key.removeprefix("info.")
    }
    description = fields.get("markdown") or fields.get("description")
    service: TournamentService = request.app.state.tournaments
    state = await service.create(
        body, owner=owner, description=(description or "")[:20000] or None, info=info
    )
    return JSONResponse({"tour": tour_json(_base(request), state), "rounds": []})


@router.post(
    "/broadcast/{tour_id}/new",
    responses={200: body(MyRound), **_WRITE},
    openapi_extra={**BEARER, **_ROUND_BODY},
)
async def create_round(tour_id: str, request: Request) -> JSONResponse:
    """Create a round of a broadcast: ``{"round", "tour", "study"}``."""
    live = _tour(request, tour_id)
    _require_owner(request, live)
    fields = await _fields(request)
    sync_url = _sync_url(fields)
    await _public_source(request, sync_url)
    rounds: BroadcastRounds = request.app.state.rounds
    rnd = await rounds.create(
        live,
        _name(fields),
        start_at=_starts_at(fields),
        sync_url=sync_url,
        delay_s=_delay(fields),
    )
    if _status(fields):
        rnd = await rounds.update(
            live,
            rnd.number,
            name=rnd.name or "",
            start_at=rnd.start_at,
            sync_url=rnd.sync_url,
            delay_s=rnd.delay_s,
            finished=True,
        )
    return JSONResponse(my_round_json(_base(request), live.state, rnd, writeable=True))


@router.post(
    "/broadcast/round/{round_id}/edit",
    responses={200: body(RoundWithGames), **_WRITE},
    openapi_extra={**BEARER, **_ROUND_BODY},
)
async def edit_round(
    round_id: str, request: Request, patch: Annotated[str | None, Query()] = None
) -> JSONResponse:
    """Change a round: every field as given (absent ones cleared), or with ``patch=1``
    only those given. Answers the round as ``GET`` does."""
    live, rnd = _round(request, round_id)
    _require_owner(request, live)
    fields = await _fields(request)
    await _public_source(request, _sync_url(fields))
    partial = patch in ("1", "true")
    rounds: BroadcastRounds = request.app.state.rounds
    await rounds.update(
        live,
        rnd.number,
        name=_name(fields) if "name" in fields or not partial else rnd.name or "",
        start_at=_starts_at(fields) if "startsAt" in fields or not partial else rnd.start_at,
        sync_url=_sync_url(fields) if "syncUrl" in fields or not partial else rnd.sync_url,
        delay_s=_delay(fields) if "delay" in fields or not partial else rnd.delay_s,
        finished=_status(fields) if "status" in fields or not partial else rnd.closed,
    )
    return JSONResponse(await _round_show(request, round_id))


@router.get(
    "/api/broadcast/my-rounds",
    response_class=Response,
    responses={
        200: text("application/x-ndjson", "one round (MyRound) per line"),
        **_errors(400, 401, 403, 429),
    },
    openapi_extra=BEARER,
)
async def my_rounds(
    request: Request, nb: Annotated[int | None, Query(ge=1), DIGITS] = None
) -> StreamingResponse:
    """NDJSON: every round of the bearer's broadcasts, newest broadcast first."""
    tokens: Tokens = request.app.state.tokens
    identity = tokens.require_scope(request, "study:read")
    service: TournamentService = request.app.state.tournaments
    base = _base(request)
    lines = []
    for live in reversed(list(service.all())):
        state = live.state
        if not state.setup.is_broadcast or not _owns(request, identity, state):
            continue
        writeable = _may_write(request, identity, state)
        for rnd in reversed(state.rounds):
            lines.append(json.dumps(my_round_json(base, state, rnd, writeable=writeable)) + "\n")
    return StreamingResponse(
        iter(lines[:nb] if nb is not None else lines), media_type="application/x-ndjson"
    )


def _owns(request: Request, identity: Operator | Account, state: TournamentState) -> bool:
    return isinstance(identity, Operator) or state.setup.owner == identity.name


@router.get("/api/broadcast/by/{user}", responses={200: body(ToursPage), **_errors(400, 429)})
async def tours_by(
    user: str, request: Request, page: Annotated[int, Query(ge=1, le=_MAX_PAGE), DIGITS] = 1
) -> JSONResponse:
    """The broadcasts an account created, newest first, 24 a page (lichess's paginator)."""
    service: TournamentService = request.app.state.tournaments
    base = _base(request)
    owned = [
        live
        for live in reversed(list(service.all()))
        if live.state.setup.is_broadcast
        and (live.state.setup.owner or "").casefold() == user.casefold()
    ]
    results = []
    for live in owned[(page - 1) * _PAGE : page * _PAGE]:
        state = _public(request, live)
        entry: dict[str, Any] = {"tour": tour_json(base, state)}
        current = next((r for r in state.rounds if r.status != "finished"), None)
        if current is not None:
            entry["round"] = round_json(base, state, current)
        results.append(entry)
    pages = max(1, -(-len(owned) // _PAGE))
    return JSONResponse(
        {
            "currentPage": page,
            "maxPerPage": _PAGE,
            "currentPageResults": results,
            "previousPage": page - 1 if page > 1 else None,
            "nextPage": page + 1 if page < pages else None,
            "nbResults": len(owned),
            "nbPages": pages,
        }
    )


# --- PGN (before the routes whose last segment is any id) ---


@router.get(
    "/api/broadcast/round/{round_id}.pgn",
    response_class=Response,
    responses={
        200: text("application/x-chess-pgn", "every game of the round"),
        **_errors(404, 429, 503),
    },
)
async def round_pgn(round_id: str, request: Request) -> Response:
    """Every game of the round as PGN, in board order."""
    live, _ = _round(request, round_id)
    state = _public(request, live)
    rnd = _round_of(state, round_id)
    text = "".join(await _round_pgns(request, state, rnd))
    return Response(text, media_type="application/x-chess-pgn")


@router.get(
    "/api/broadcast/{tour_id}.pgn",
    response_class=Response,
    responses={
        200: text("application/x-chess-pgn", "every game of the broadcast"),
        **_errors(404, 429, 503),
    },
)
async def tour_pgn(tour_id: str, request: Request) -> Response:
    """Every game of every round, in round and board order, as a download."""
    live = _tour(request, tour_id)
    state = _public(request, live)
    parts = []
    for rnd in state.rounds:
        parts += await _round_pgns(request, state, rnd)
    day = datetime.now(UTC).strftime("%Y.%m.%d")
    name = f"grandmaster_broadcast_{slug(state.setup.name)}_{state.id}_{day}.pgn"
    return Response(
        "".join(parts),
        media_type="application/x-chess-pgn",
        headers={"Content-Disposition": f"attachment; filename={name}"},
    )


async def _round_pgns(request: Request, state: TournamentState, rnd: Round) -> list[str]:
    games = await _public_games(request, rnd)
    url = f"{_base(request)}/broadcast/-/-/{rnd.id}"
    return [await _pgn(request, game, url) for game in games]


async def _pgn(request: Request, game: GameState, url: str) -> str:
    """A game's PGN with its ``GameURL``, ending in two blank lines (PGN readers such as
    berserk's end a game at the second)."""
    games: GameService = request.app.state.games
    text = await games.pgn(game)
    head, _, moves = text.partition("\n\n")
    return f'{head}\n[GameURL "{url}"]\n\n{moves.rstrip()}\n\n\n'


async def _public_games(request: Request, rnd: Round) -> list[GameState]:
    """The round's games as the public sees them, in board order."""
    games: GameService = request.app.state.games
    broadcast: Broadcast = request.app.state.broadcast
    ids = [p.game for p in sorted(rnd.pairings, key=lambda p: p.board) if p.game is not None]
    loaded = await games.fetch_many(ids)
    return [broadcast.game(live.id) for live in loaded]


# --- reading tours and rounds ---


@router.get("/api/broadcast/{tour_id}", responses={200: body(TourWithRounds), **_errors(404, 429)})
async def get_tour(tour_id: str, request: Request) -> JSONResponse:
    """A broadcast with its rounds."""
    return JSONResponse(_tour_show(request, _tour(request, tour_id)))


def _tour_show(request: Request, live: LiveTournament) -> dict[str, Any]:
    state = _public(request, live)
    base = _base(request)
    data: dict[str, Any] = {
        "tour": tour_json(base, state),
        "rounds": [round_json(base, state, r) for r in state.rounds],
    }
    current = next((r for r in state.rounds if r.status != "finished"), None)
    if state.rounds:
        data["defaultRoundId"] = (current or state.rounds[-1]).id
    return data


@router.get(
    "/api/broadcast/{tour_slug}/{round_slug}/{round_id}",
    responses={200: body(RoundWithGames), **_errors(404, 429)},
    openapi_extra=OPTIONAL_BEARER,
)
async def get_round(tour_slug: str, round_slug: str, round_id: str, request: Request) -> Any:
    """A round with its games (the slugs are not checked; clients send ``-``)."""
    return JSONResponse(await _round_show(request, round_id))


@router.get(
    "/broadcast/{tour_slug}/{round_slug}/{round_id}",
    responses={200: body(RoundWithGames), 303: _PAGE_OR_JSON, **_errors(404, 429)},
    openapi_extra=OPTIONAL_BEARER,
)
async def show_round(tour_slug: str, round_slug: str, round_id: str, request: Request) -> Any:
    """The round as JSON for API clients (``Accept: application/json`` or a token), else
    the tournament's web page."""
    if _wants_json(request):
        return JSONResponse(await _round_show(request, round_id))
    live, rnd = _round(request, round_id)
    return RedirectResponse(f"/tournaments/{live.id}#round-{rnd.number}", status_code=303)


@router.get(
    "/broadcast/{tour_slug}/{tour_id}",
    responses={200: body(TourWithRounds), 303: _PAGE_OR_JSON, **_errors(404, 429)},
    openapi_extra=OPTIONAL_BEARER,
)
async def show_tour(tour_slug: str, tour_id: str, request: Request) -> Any:
    """The broadcast as JSON for API clients, else its web page."""
    live = _tour(request, tour_id)
    if _wants_json(request):
        return JSONResponse(_tour_show(request, live))
    return RedirectResponse(f"/tournaments/{live.id}", status_code=303)


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "application/json" in accept or "authorization" in request.headers


async def _round_show(request: Request, round_id: str) -> dict[str, Any]:
    live, _ = _round(request, round_id)
    reader = _reader(request)
    # Its owner sees a round the broadcast delay still hides (it has just made or edited
    # it); the public sees it once public.
    writeable = _may_write(request, reader, live.state)
    state = live.state if writeable else _public(request, live)
    rnd = _round_of(state, round_id)
    base = _base(request)
    games: GameService = request.app.state.games
    data = my_round_json(base, state, rnd, writeable=writeable)
    now = games.now_ms()
    data["games"] = [game_preview(g, now) for g in await _public_games(request, rnd)]
    return data


# --- pushing ---


@router.post(
    "/api/broadcast/round/{round_id}/push",
    responses={200: body(PushResult), **_WRITE},
    openapi_extra={**BEARER, **_PGN_BODY},
)
@router.post(
    "/broadcast/round/{round_id}/push",
    responses={200: body(PushResult), **_WRITE},
    openapi_extra={**BEARER, **_PGN_BODY},
)
async def push(round_id: str, request: Request) -> JSONResponse:
    """A round's PGN, as the boards show it now: always 200, each game's outcome inside
    (``moves``: the game's half-moves now, or ``error``), in the pushed order."""
    started = time.perf_counter()
    live, rnd = _round(request, round_id)
    _require_owner(request, live)
    body = await request.body()
    if not body.strip():
        # Refused whole whatever the round, as the schema says: the body is required.
        raise ApiError(400, "bad_request", "No PGN: the body is empty")
    if rnd.sync_url is not None:
        return JSONResponse({"games": [{"tags": {}, "error": _UPSTREAM}]})
    relay: RelayService = request.app.state.relay
    games: GameService = request.app.state.games
    pushed = await relay.push_games(live, rnd.number, body)
    # A finished game may have left memory: read back, its half-moves are known.
    await games.fetch_many(line["game"] for _, line in pushed if line["game"] is not None)
    lines: list[dict[str, Any]] = []
    for game, line in pushed:
        tags = {k: v for k, v in game.tags.items() if k != "Date"}
        if line["error"] is not None:
            failed: dict[str, Any] = {"tags": tags, "error": line["error"]}
            lines.append(failed)
            continue
        state = None if line["game"] is None else games.state_of(line["game"])
        moves: dict[str, Any] = {"tags": tags, "moves": 0 if state is None else state.ply}
        lines.append(moves)
    # The server's own time for the push (what bench/relay.py --lichess reports).
    spent_ms = (time.perf_counter() - started) * 1000
    return JSONResponse({"games": lines}, headers={"Server-Timing": f"push;dur={spent_ms:.2f}"})


@router.post(
    "/api/broadcast/round/{round_id}/reset",
    responses={200: body(Ok), **_errors(401, 403, 404, 409, 429, 503)},
    openapi_extra=BEARER,
)
@router.post(
    "/broadcast/round/{round_id}/reset",
    responses={200: body(Ok), **_errors(401, 403, 404, 409, 429, 503)},
    openapi_extra=BEARER,
)
async def reset(round_id: str, request: Request) -> JSONResponse:
    """Empty the round (its games stay stored): ``{"ok": true}``."""
    live, rnd = _round(request, round_id)
    _require_owner(request, live)
    rounds: BroadcastRounds = request.app.state.rounds
    await rounds.reset(live, rnd.number)
    return JSONResponse({"ok": True})


# --- the live round stream ---


@router.get(
    "/api/stream/broadcast/round/{round_id}.pgn",
    response_class=Response,
    responses={
        200: text(
            "application/x-chess-pgn",
            "every game, then each game again when it changes (a space when idle)",
        ),
        **_errors(404, 429, 503),
    },
)
async def stream_round(round_id: str, request: Request) -> StreamingResponse:
    """Every game of the round as PGN, then each game again, in full, when it changes; a
    space when idle for a minute. Counts against the spectator cap, like every stream."""
    live, _ = _round(request, round_id)
    hub: Hub = request.app.state.hub
    if hub.is_full:
        raise ApiError(503, "unavailable", "too many spectators", {"Retry-After": "10"})
    broadcast: Broadcast = request.app.state.broadcast
    games = [p.game for p in _public_round(request, live, round_id).pairings if p.game]
    await request.app.state.games.fetch_many(games)
    spectator = QueuedSpectator()
    first = broadcast.tournament_message(live.id)
    hub.subscribe_tournament(spectator, live.id, first, games, None)
    return StreamingResponse(
        _round_stream(request, live, round_id, spectator), media_type="application/x-chess-pgn"
    )


def _public_round(request: Request, live: LiveTournament, round_id: str) -> Round:
    state = _public(request, live)
    return _round_of(state, round_id)


async def _round_stream(
    request: Request, live: LiveTournament, round_id: str, spectator: QueuedSpectator
) -> AsyncIterator[str]:
    hub: Hub = request.app.state.hub
    broadcast: Broadcast = request.app.state.broadcast
    url = f"{_base(request)}/broadcast/-/-/{round_id}"
    try:
        sent: set[str] = set()
        dirty: list[str] = []
        while True:
            rnd = _public_round(request, live, round_id)
            ours = {p.game for p in rnd.pairings if p.game is not None}
            # New boards first (in board order), then the games that changed.
            for pairing in sorted(rnd.pairings, key=lambda p: p.board):
                if pairing.game is not None and pairing.game not in sent:
                    sent.add(pairing.game)
                    if pairing.game not in dirty:
                        dirty.append(pairing.game)
            for game_id in dirty:
                if game_id in ours:
                    yield await _pgn(request, broadcast.game(game_id), url)
            dirty = []
            try:
                message = await asyncio.wait_for(spectator.queue.get(), _KEEPALIVE_S)
            except TimeoutError:
                yield " "
                continue
            while message is not None:
                if message.seq is not None and message.game not in dirty:
                    dirty.append(message.game)
                message = spectator.queue.get_nowait() if not spectator.queue.empty() else None
            if spectator.is_closed:
                return
    finally:
        hub.unsubscribe(spectator)
