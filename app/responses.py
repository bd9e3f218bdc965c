"""Response bodies as the OpenAPI documents them (``/openapi.json``, ``shared/API.md``).

These models describe what the routes send; the routes build their JSON elsewhere (the
core's views, ``app/lichess_view.py``) and never pass it through them, so they cost
nothing at run time. Every model forbids fields it does not name: the schemathesis test
(``tests/app/test_openapi_conformance.py``) then fails when a view and its schema drift.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from engine.rules.wire import ColorName, Mode, Result, Status, Termination
from engine.tournament.wire import (
    ByeKind,
    Format,
    PairingResult,
    RoundStatus,
    TournamentStatus,
)


class Out(BaseModel):
    """Base of every response body: exactly the fields named."""

    model_config = ConfigDict(extra="forbid")


# --- errors ---


class ErrorDetail(Out):
    """What went wrong: a stable ``code`` (``illegal_move``, ``not_found``...) and a
    sentence for people."""

    code: str
    message: str


class Error(Out):
    """The contract's error body, with every non-2xx status of the API."""

    error: ErrorDetail


class LichessError(Out):
    """lichess's error body, on the lichess-compatible broadcast routes."""

    error: str


class OAuthError(Out):
    """An OAuth 2 refusal of ``POST /api/token`` (RFC 6749, 5.2)."""

    error: str
    error_description: str


# --- games ---


class ClockOut(Out):
    """Remaining times in ms and the side whose time runs."""

    white_ms: int
    black_ms: int
    running: ColorName | None


class PlayerOut(Out):
    """A player of a game."""

    name: str
    rating: int | None
    title: str | None
    fide_id: int | None


class MoveOut(Out):
    """One half-move; ``clock_ms`` is the mover's time after it, increment included."""

    uci: str
    san: str
    clock_ms: int


class ScoreOut(Out):
    """White's point of view: ``cp`` or ``mate`` (moves; negative when Black mates)."""

    cp: int | None = None
    mate: int | None = None


class EvalOut(Out):
    """The latest evaluation of the position after ``ply`` half-moves."""

    ply: int
    depth: int
    score: ScoreOut
    best: str | None
    pv: list[str]
    nodes: int
    engine: str


class TimeControlOut(Out):
    """Initial time and increment, in seconds."""

    initial: int
    increment: int


class Game(Out):
    """``<Game>``: a game's full state (as the bearer may see it)."""

    id: str
    tournament: str | None
    round: int | None
    board: int | None
    white: PlayerOut
    black: PlayerOut
    mode: Mode
    time_control: TimeControlOut
    status: Status
    result: Result
    termination: Termination | None
    initial_fen: str
    fen: str
    ply: int
    moves: list[MoveOut]
    clock: ClockOut
    draw_offer: ColorName | None
    eval: EvalOut | None
    spectators: int
    seq: int
    created_at: str


class SeatTokens(Out):
    """Both players' bearer tokens; shown once, to the operator."""

    white: str
    black: str


class GameCreated(Out):
    """``POST /api/games``: the game and its players' tokens."""

    game: Game
    tokens: SeatTokens


class GameList(Out):
    """A page of games, newest first; ``next`` is the following page's ``cursor``."""

    games: list[Game]
    next: str | None


class ProgressOut(Out):
    """How far a running review is: positions evaluated of ``total``."""

    done: int
    total: int


class ReviewStatus(Out):
    """A review not done (yet): ``none``, ``queued`` (``ahead``: reviews before it) or
    ``running`` (with ``progress``)."""

    status: Literal["none", "queued", "running"]
    progress: ProgressOut | None = None
    ahead: int | None = None


class JudgmentOut(Out):
    """A move judged an inaccuracy, a mistake or a blunder."""

    name: str
    nag: int
    comment: str


class MoveReviewOut(Out):
    """One reviewed half-move (``score`` after it, White's view)."""

    ply: int
    uci: str
    san: str
    score: ScoreOut
    depth: int
    accuracy: float
    judgment: JudgmentOut | None
    best: str | None
    variation: list[str]


class PlayerReviewOut(Out):
    """One side's accuracy (0-100), average centipawn loss, and counts."""

    accuracy: float | None
    acpl: int | None
    inaccuracy: int
    mistake: int
    blunder: int


class BudgetOut(Out):
    """The search budget of each position: a ``depth`` or a number of ``nodes``."""

    depth: int | None = None
    nodes: int | None = None


class PositionReviewOut(Out):
    """The evaluation of the start position."""

    score: ScoreOut
    depth: int
    best: str | None


class Review(Out):
    """A finished game's review."""

    status: Literal["done"]
    engine: str
    budget: BudgetOut
    completed_at: str
    initial: PositionReviewOut
    white: PlayerReviewOut
    black: PlayerReviewOut
    moves: list[MoveReviewOut]


# --- tournaments ---


class EntrantOut(Out):
    """A tournament player; ``number`` is the pairing number (1 first)."""

    id: str
    number: int
    name: str
    rating: int | None
    title: str | None
    fide_id: int | None
    federation: str | None
    withdrawn: bool


class PairingOut(Out):
    """One board of a round and the game played on it."""

    board: int
    white: str
    black: str | None
    game: str | None
    result: PairingResult


class ByeOut(Out):
    """A player who plays no game in a round, and the points it scores."""

    player: str
    points: float
    kind: ByeKind


class RelayStatus(Out):
    """The state of a tournament's ``relay_url`` source (operator only)."""

    url: str
    polling: bool
    fetches: int
    last_fetch_at: str | None = None
    last_status: int | None = None
    last_error: str | None = None
    failures: int | None = None
    games: int | None = None


class RoundOut(Out):
    """One round; ``start_at`` when scheduled; ``id``, ``name``, ``delay`` for broadcasts,
    and for the operator the state of a broadcast round's own ``source``."""

    round: int
    status: RoundStatus
    start_at: str | None = None
    pairings: list[PairingOut]
    byes: list[ByeOut]
    id: str | None = None
    name: str | None = None
    delay: int | None = None
    source: RelayStatus | None = None


class StandingOut(Out):
    """One line of the standings; ``tiebreaks`` by C.07 acronym."""

    rank: int
    player: str
    points: float
    tiebreaks: dict[str, float]
    played: int


class TournamentSummary(Out):
    """``<Tournament>`` without rounds and standings (as lists show it)."""

    id: str
    name: str
    format: Format
    status: TournamentStatus
    mode: Mode
    clock: TimeControlOut
    delay: int
    tiebreaks: list[str]
    bye_points: float
    pairing_system: str
    rounds_total: int
    rounds_paired: int
    created_at: str
    players: list[EntrantOut]
    site: str | None = None
    city: str | None = None
    federation: str | None = None
    start_date: str | None = None
    end_date: str | None = None
    arbiter: str | None = None


class Tournament(TournamentSummary):
    """``<Tournament>``: with its rounds and standings (and its relay, for the operator)."""

    rounds: list[RoundOut]
    standings: list[StandingOut]
    relay: RelayStatus | None = None


class TournamentList(Out):
    """Tournaments, newest first."""

    tournaments: list[TournamentSummary]


class Standings(Out):
    """``GET /api/tournaments/{id}/standings``."""

    tournament: str
    standings: list[StandingOut]


class PairedRound(Out):
    """A new round: its pairings, byes and each game's player tokens (shown once).

    A broadcast's round is created empty and also has ``status``, ``id``, ``name``
    and ``delay``.
    """

    round: int
    status: RoundStatus | None = None
    start_at: str | None = None
    pairings: list[PairingOut]
    byes: list[ByeOut]
    id: str | None = None
    name: str | None = None
    delay: int | None = None
    tokens: dict[str, SeatTokens]


class RelayGame(Out):
    """One pushed game's outcome: its board and game (null when unmatched), moves
    appended, whether stored moves or the result changed, and its error, if any."""

    board: int | None
    game: str | None
    moves_added: int
    corrected: bool
    result: Result
    error: str | None


class RelayReport(Out):
    """``POST /api/tournaments/{id}/rounds/{n}/pgn``: one line per pushed game."""

    games: list[RelayGame]


# --- accounts and tokens ---


class TokenCreated(Out):
    """A new personal token: ``token`` is the secret, shown this once."""

    id: str
    token: str
    account: str
    scopes: list[str]
    description: str
    expires_at: str


class TokenInfo(Out):
    """A token as listed: never its secret."""

    id: str
    account: str
    scopes: list[str]
    description: str
    created_at: str
    expires_at: str
    expired: bool


class TokenList(Out):
    """Every token not revoked, oldest first."""

    tokens: list[TokenInfo]


class AccountOut(Out):
    """The bearer's account, as lichess's ``/api/account`` shows it (times in Unix ms)."""

    id: str
    username: str
    createdAt: int | None = None  # noqa: N815 (lichess's name)
    seenAt: int  # noqa: N815
    perfs: dict[str, int]


class OAuthToken(Out):
    """An access token issued through OAuth (``expires_in`` in seconds)."""

    token_type: Literal["Bearer"]
    access_token: str
    expires_in: int


# --- lichess's broadcast shapes (app/lichess_view.py) ---


class BroadcastTour(Out):
    """A broadcast (lichess's ``tour``); times in Unix ms."""

    id: str
    name: str
    slug: str
    info: dict[str, str]
    createdAt: int  # noqa: N815
    url: str
    description: str | None = None
    dates: list[int] | None = None


class BroadcastRound(Out):
    """A broadcast round (lichess's ``round``); ``ongoing``/``finished`` only when true."""

    id: str
    name: str
    slug: str
    createdAt: int  # noqa: N815
    rated: bool
    url: str
    finished: bool | None = None
    ongoing: bool | None = None
    startsAt: int | None = None  # noqa: N815
    delay: int | None = None


class Study(Out):
    """What the bearer may do with the round's study."""

    writeable: bool
    features: dict[str, bool]


class MyRound(Out):
    """A round with its broadcast and study (round creation, each my-rounds line)."""

    round: BroadcastRound
    tour: BroadcastTour
    study: Study


class PreviewPlayer(Out):
    """A player of a round's game; ``clock`` in centiseconds, once the game has moves."""

    name: str
    title: str | None = None
    rating: int | None = None
    fideId: int | None = None  # noqa: N815
    clock: int | None = None


class GamePreview(Out):
    """One game of a round as lichess's round JSON lists it."""

    id: str
    name: str
    players: list[PreviewPlayer]
    fen: str | None = None
    lastMove: str | None = None  # noqa: N815
    check: Literal["+", "#"] | None = None
    status: Literal["1-0", "0-1", "½-½", "*"]


class RoundWithGames(MyRound):
    """A round with its games."""

    games: list[GamePreview]


class TourWithRounds(Out):
    """A broadcast with its rounds; ``defaultRoundId`` is the one to show first."""

    tour: BroadcastTour
    rounds: list[BroadcastRound]
    defaultRoundId: str | None = None  # noqa: N815


class TourAndRound(Out):
    """A broadcast, with its current round when one is not finished."""

    tour: BroadcastTour
    round: BroadcastRound | None = None


class ToursPage(Out):
    """One page of an account's broadcasts, as lichess's paginator shows it."""

    currentPage: int  # noqa: N815
    maxPerPage: int  # noqa: N815
    currentPageResults: list[TourAndRound]  # noqa: N815
    previousPage: int | None  # noqa: N815
    nextPage: int | None  # noqa: N815
    nbResults: int  # noqa: N815
    nbPages: int  # noqa: N815


class PushedGame(Out):
    """One pushed game: its tags, and its half-moves now or its error."""

    tags: dict[str, str]
    moves: int | None = None
    error: str | None = None


class PushResult(Out):
    """A push's outcome per game, in the pushed order."""

    games: list[PushedGame]


class Ok(Out):
    """Done."""

    ok: Literal[True]


class Health(Out):
    """The history is writable and the pools are up."""

    status: Literal["ok"]
