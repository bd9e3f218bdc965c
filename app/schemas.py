"""Request bodies as pydantic models: strict types, unknown fields refused (422)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from engine.rules.errors import InvalidInput
from engine.rules.game import parse_start_fen
from engine.rules.moves import MAX_MOVE_TEXT, is_move_text

Title = Literal["GM", "IM", "FM", "CM", "WGM", "WIM", "WFM", "WCM", "NM", "LM", "BOT"]


class Body(BaseModel):
    """Base of every request body: exact field names and JSON types only."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class PlayerIn(Body):
    """A player of a game."""

    name: Annotated[str, Field(min_length=1, max_length=100)]
    rating: Annotated[int, Field(ge=0, le=4000)] | None = None
    title: Title | None = None
    fide_id: Annotated[int, Field(ge=1, le=10**10)] | None = None

    @field_validator("name")
    @classmethod
    def _printable(cls, name: str) -> str:
        name = name.strip()
        if not name or not name.isprintable() or '"' in name:
            raise ValueError("names must be printable, without double quotes")
        return name


class ClockIn(Body):
    """Time control in seconds: initial time and Fischer increment per move."""

    initial: Annotated[int, Field(ge=1, le=86_400)]
    increment: Annotated[int, Field(ge=0, le=600)] = 0


class CreateGameIn(Body):
    """``POST /api/games``."""

    white: PlayerIn
    black: PlayerIn
    clock: ClockIn
    fen: Annotated[str, Field(max_length=100)] | None = None
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

    move: Annotated[str, Field(min_length=1, max_length=MAX_MOVE_TEXT)]
    ply: Annotated[int, Field(ge=0, le=100_000)] | None = None
    clock_ms: Annotated[int, Field(ge=0, le=86_400_000 * 2)] | None = None

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
