"""Request bodies as pydantic models: strict types, unknown fields refused (422)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from engine.rules.errors import InvalidInput
from engine.rules.game import parse_start_fen
from engine.rules.moves import MAX_MOVE_TEXT, is_move_text
from engine.tournament.standings import TIEBREAKS

Title = Literal["GM", "IM", "FM", "CM", "WGM", "WIM", "WFM", "WCM", "NM", "LM", "BOT"]


def _integral(value: object) -> object:
    """An integral JSON number written with a fraction (``942.0``) as the integer it is:
    JSON has one number type, and JSON Schema's ``integer`` admits it."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# After an int's constraints (so that they stay JSON Schema's minimum and maximum): a JSON
# integer; strings, booleans and fractions stay refused (422).
INTEGRAL = BeforeValidator(_integral)


def _plain_digits(value: object) -> object:
    """A query or path parameter's integer as plain ASCII digits: ``int()`` would also
    take `` 5``, ``\\f5`` or Arabic-Indic digits, which no schema's ``integer`` describes."""
    if isinstance(value, str) and not (value.isascii() and value.isdigit()):
        raise ValueError("expected an integer written in digits")
    return value


# After a parameter's constraints: only plain digits (every such parameter is >= 0).
DIGITS = BeforeValidator(_plain_digits)
# Strings the OpenAPI names by a format of its own (JSON Schema cannot say them).
NAME_FORMAT = "printable-name"
TEXT_FORMAT = "printable-text"
FEN_FORMAT = "chess-fen"
ZONED_TIME_FORMAT = "zoned-date-time"
# What ``engine.rules.moves.is_move_text`` accepts: UCI, SAN or a null move's spelling.
MOVE_PATTERN = (
    r"^(?:[a-h][1-8][a-h][1-8][qrbn]?"
    r"|(?:[NBRQK]?[a-h]?[1-8]?x?[a-h][1-8](?:=?[QRBNqrbn])?|[O0]-[O0](?:-[O0])?)[+#]?[!?]{0,2}"
    r"|0000|--|Z0|@@@@|null)$"
)


_NAME = {"format": NAME_FORMAT, "description": "printable, without double quotes, not blank"}


# A C.07 acronym the standings compute, as documented; the server also takes it in any
# case with spaces around (and refuses one listed twice in any spelling).
_TIEBREAK = {
    "pattern": "^(?:" + "|".join(sorted(TIEBREAKS)) + ")$",
    "description": "a C.07 acronym (case and spaces around are forgiven)",
}


class Body(BaseModel):
    """Base of every request body: exact field names and JSON types only."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def printable_name(name: str) -> str:
    """A player's or tournament's name, stripped; ValueError unless printable, no ``"``
    (names go into PGN tags and TRF columns as they are)."""
    name = name.strip()
    if not name or not name.isprintable() or '"' in name:
        raise ValueError("names must be printable, without double quotes")
    return name


class PlayerIn(Body):
    """A player of a game."""

    name: Annotated[
        str,
        Field(min_length=1, max_length=100, json_schema_extra=_NAME),
        AfterValidator(printable_name),
    ]
    rating: Annotated[int, Field(ge=0, le=4000), INTEGRAL] | None = None
    title: Title | None = None
    fide_id: Annotated[int, Field(ge=1, le=10**10), INTEGRAL] | None = None


class ClockIn(Body):
    """Time control in seconds: initial time and Fischer increment per move."""

    initial: Annotated[int, Field(ge=1, le=86_400), INTEGRAL]
    increment: Annotated[int, Field(ge=0, le=600), INTEGRAL] = 0


class CreateGameIn(Body):
    """``POST /api/games``."""

    white: PlayerIn
    black: PlayerIn
    clock: ClockIn
    fen: (
        Annotated[
            str,
            Field(
                max_length=100,
                json_schema_extra={"format": FEN_FORMAT, "description": "a legal start FEN"},
            ),
        ]
        | None
    ) = None
    mode: Literal["server", "relay"] = "server"

    @field_validator("fen")
    @classmethod
    def _valid_fen(cls, fen: str | None) -> str | None:
        if fen is None:
            return None
        try:
            return parse_start_fen(fen)
        except InvalidInput as exc:
            raise ValueError(exc.message) from None


class MoveIn(Body):
    """``POST /api/games/{id}/moves``: ``ply`` makes retries safe, ``clock_ms`` is for relays."""

    move: Annotated[
        str,
        Field(min_length=1, max_length=MAX_MOVE_TEXT, json_schema_extra={"pattern": MOVE_PATTERN}),
    ]
    ply: Annotated[int, Field(ge=0, le=100_000), INTEGRAL] | None = None
    clock_ms: Annotated[int, Field(ge=0, le=86_400_000 * 2), INTEGRAL] | None = None

    @field_validator("move")
    @classmethod
    def _move_shape(cls, move: str) -> str:
        if not is_move_text(move):
            raise ValueError("move must be UCI (e2e4, e7e8q) or SAN (e4, Nf3, O-O, exd8=Q+)")
        return move


class DrawIn(Body):
    """``POST /api/games/{id}/draw``."""

    action: Literal["offer", "accept", "decline", "claim"]


class ResultIn(Body):
    """``POST /api/games/{id}/result``: the arbiter's decision."""

    result: Literal["1-0", "0-1", "1/2-1/2"]
    reason: Annotated[str, Field(max_length=500)] = ""


class EntrantIn(PlayerIn):
    """A tournament player: ``federation`` is a three-letter FIDE code."""

    federation: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] | None = None


class CreateTournamentIn(Body):
    """``POST /api/tournaments``; ``rounds`` is for a Swiss only, and a broadcast is relayed."""

    # What app/tournaments.py checks across fields, stated for the OpenAPI.
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {
                    "properties": {"format": {"const": "swiss"}, "rounds": {"type": "integer"}},
                    "required": ["rounds"],
                },
                {
                    "properties": {
                        "format": {"enum": ["round_robin", "double_round_robin"]},
                        "rounds": {"type": "null"},
                    }
                },
                {
                    "properties": {
                        "format": {"const": "broadcast"},
                        "mode": {"const": "relay"},
                        "rounds": {"type": "null"},
                    },
                    "required": ["mode"],
                },
            ]
        }
    )

    name: Annotated[
        str,
        Field(min_length=1, max_length=120, json_schema_extra=_NAME),
        AfterValidator(printable_name),
    ]
    format: Literal["round_robin", "double_round_robin", "swiss", "broadcast"]
    rounds: Annotated[int, Field(ge=1, le=30), INTEGRAL] | None = None
    clock: ClockIn
    mode: Literal["server", "relay"] = "server"
    players: Annotated[list[EntrantIn], Field(max_length=5000)] = []
    tiebreaks: (
        Annotated[
            list[Annotated[str, Field(max_length=12, json_schema_extra=_TIEBREAK)]],
            Field(max_length=10, json_schema_extra={"uniqueItems": True}),
        ]
        | None
    ) = None
    bye_points: Annotated[float, Field(ge=0, le=1, multiple_of=0.5)] = 1.0
    delay: Annotated[int, Field(ge=0, le=3600), INTEGRAL] = 0
    relay_url: Annotated[str, Field(max_length=2000, pattern=r"^https?://")] | None = None
    site: Annotated[str, Field(max_length=120)] | None = None
    city: Annotated[str, Field(max_length=120)] | None = None
    federation: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] | None = None
    start_date: Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}$")] | None = None
    end_date: Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}$")] | None = None
    arbiter: Annotated[str, Field(max_length=120)] | None = None


class ByeIn(Body):
    """``POST /api/tournaments/{id}/players/{pid}/bye``: a requested bye."""

    round: Annotated[int, Field(ge=1, le=30), INTEGRAL]
    points: Annotated[float, Field(ge=0, le=0.5, multiple_of=0.5)]


class PairRoundIn(Body):
    """``POST /api/tournaments/{id}/rounds``: ``start_at`` schedules the games' start.

    A broadcast's round is created empty: ``name``, ``sync_url`` (a PGN source polled
    while it is live) and ``delay`` are for those only.
    """

    start_at: (
        Annotated[
            str,
            Field(
                max_length=40,
                json_schema_extra={
                    "format": ZONED_TIME_FORMAT,
                    "description": "ISO-8601 with a time zone, years 2000 to 2999",
                },
            ),
        ]
        | None
    ) = None
    name: (
        Annotated[
            str,
            Field(min_length=1, max_length=80, json_schema_extra=_NAME),
            AfterValidator(printable_name),
        ]
        | None
    ) = None
    sync_url: Annotated[str, Field(max_length=2000, pattern=r"^https?://")] | None = None
    delay: Annotated[int, Field(ge=0, le=3600), INTEGRAL] | None = None

    @field_validator("start_at")
    @classmethod
    def _iso_time(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError("start_at must be an ISO-8601 time") from None
        if when.tzinfo is None:
            raise ValueError("start_at needs a time zone (Z or +hh:mm)")
        if not 2000 <= when.year <= 2999:
            raise ValueError("start_at must be a time between the years 2000 and 2999")
        return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class BoardResultIn(Body):
    """``POST /api/tournaments/{id}/rounds/{n}/results``: set or correct a board's result."""

    board: Annotated[int, Field(ge=1, le=10_000), INTEGRAL]
    result: Literal["1-0", "0-1", "1/2-1/2", "+/-", "-/+", "-/-"]
