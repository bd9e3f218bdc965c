"""Commands from the GUI to the engine (UCI), parsed from one line of text each.

`parse_command` accepts the commands an engine must understand and refuses anything else with
`UciError`; the caller answers that with an `info string` and carries on, as UCI asks engines
to do with input they do not understand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, TypeAlias

import chess

__all__ = [
    "Command",
    "Go",
    "IsReady",
    "PonderHit",
    "Position",
    "Quit",
    "SetOption",
    "Stop",
    "Uci",
    "UciError",
    "UciNewGame",
    "parse_command",
]


class UciError(ValueError):
    """A line that is not a well-formed UCI command, or names an impossible position."""


@dataclass(frozen=True, slots=True)
class Uci:
    """`uci`: identify the engine and list its options, then `uciok`."""


@dataclass(frozen=True, slots=True)
class IsReady:
    """`isready`: answer `readyok` (at once, even while searching)."""


@dataclass(frozen=True, slots=True)
class UciNewGame:
    """`ucinewgame`: the next position belongs to another game; forget the last one."""


@dataclass(frozen=True, slots=True)
class Stop:
    """`stop`: end the search now and give the best move found."""


@dataclass(frozen=True, slots=True)
class PonderHit:
    """`ponderhit`: the opponent played the expected move; the ponder search becomes real."""


@dataclass(frozen=True, slots=True)
class Quit:
    """`quit`: end the program as soon as possible."""


@dataclass(frozen=True, slots=True)
class SetOption:
    """`setoption name <name> [value <value>]`; `value` is None for a button."""

    name: str
    value: str | None


@dataclass(frozen=True, slots=True)
class Position:
    """`position startpos|fen <fen> [moves ...]`: a legal start and legal moves (UCI) from it.

    `after` is the FEN after the moves, when the parser has it: `board` then reads it instead
    of replaying the moves (a `go` late in a game would replay a hundred of them, on its clock).
    """

    fen: str
    moves: tuple[str, ...]
    after: str = field(default="", compare=False, repr=False)

    def board(self) -> chess.Board:
        """The board after every move (without the moves: the search is given those apart)."""
        if self.after:
            return chess.Board(self.after)
        board = chess.Board(self.fen)
        for uci in self.moves:
            board.push_uci(uci)
        return chess.Board(board.fen())


@dataclass(frozen=True, slots=True)
class Go:
    """`go` with its limits; times in milliseconds, None where the GUI gave none.

    `searchmoves` are UCI moves the search is restricted to (their legality is the position's
    to judge); `mate` asks for a mate in that many moves: the search stops once it has one.
    """

    wtime_ms: int | None = None
    btime_ms: int | None = None
    winc_ms: int = 0
    binc_ms: int = 0
    movestogo: int | None = None
    movetime_ms: int | None = None
    depth: int | None = None
    nodes: int | None = None
    infinite: bool = False
    ponder: bool = False
    mate: int | None = None
    searchmoves: tuple[str, ...] = ()


Command: TypeAlias = (
    Uci | IsReady | UciNewGame | Stop | PonderHit | Quit | SetOption | Position | Go
)

_SIMPLE: Final[dict[str, Command]] = {
    "uci": Uci(),
    "isready": IsReady(),
    "ucinewgame": UciNewGame(),
    "stop": Stop(),
    "ponderhit": PonderHit(),
    "quit": Quit(),
}
_GO_NUMBERS: Final = {
    "wtime": "wtime_ms",
    "btime": "btime_ms",
    "winc": "winc_ms",
    "binc": "binc_ms",
    "movestogo": "movestogo",
    "movetime": "movetime_ms",
    "depth": "depth",
    "nodes": "nodes",
    "mate": "mate",
}
_GO_FLAGS: Final = {"infinite", "ponder"}
# Counts that must be positive to mean anything; clock times may be negative (a flagged GUI).
_GO_POSITIVE: Final = {"movestogo", "movetime", "depth", "nodes", "mate"}
_GO_KEYWORDS: Final = {*_GO_NUMBERS, *_GO_FLAGS, "searchmoves"}


def parse_command(line: str) -> Command | None:
    """Parse one line from the GUI; None for a blank line.

    Raises UciError for an unknown command, a malformed one, an illegal position or move.
    """
    tokens = line.split()
    if not tokens:
        return None
    head, rest = tokens[0], tokens[1:]
    if head in _SIMPLE:
        return _SIMPLE[head]
    if head == "position":
        return _parse_position(rest)
    if head == "go":
        return _parse_go(rest)
    if head == "setoption":
        return _parse_setoption(rest)
    raise UciError(f"unknown command {head!r}")


def _parse_position(tokens: list[str]) -> Position:
    if not tokens:
        raise UciError("position needs 'startpos' or 'fen <fen>'")
    if "moves" in tokens:
        split = tokens.index("moves")
        start, moves = tokens[:split], tokens[split + 1 :]
    else:
        start, moves = tokens, []
    if start == ["startpos"]:
        fen = chess.STARTING_FEN
    elif start[:1] == ["fen"] and len(start) > 1:
        fen = " ".join(start[1:])
    else:
        raise UciError(f"position needs 'startpos' or 'fen <fen>', got {' '.join(start)!r}")
    try:
        board = chess.Board(fen)
    except ValueError as exc:
        raise UciError(f"bad FEN {fen!r}: {exc}") from None
    if not board.is_valid():
        raise UciError(f"impossible position {fen!r}: {board.status()!r}")
    fen = board.fen()
    played: list[str] = []
    for uci in moves:
        try:
            move = board.parse_uci(uci)
        except ValueError:
            raise UciError(f"illegal move {uci!r} in {board.fen()!r}") from None
        if not move:
            raise UciError(f"null move {uci!r} in {board.fen()!r}")
        played.append(move.uci())
        board.push(move)
    return Position(fen, tuple(played), board.fen())


def _parse_go(tokens: list[str]) -> Go:
    values: dict[str, object] = {}
    index = 0
    while index < len(tokens):
        token = tokens[index]
        index += 1
        if token in _GO_FLAGS:
            values[token] = True
        elif token == "searchmoves":  # noqa: S105 (a UCI keyword, not a secret)
            # Every move up to the next keyword: UCI lets the list end anywhere.
            moves: list[str] = []
            while index < len(tokens) and tokens[index] not in _GO_KEYWORDS:
                try:
                    moves.append(chess.Move.from_uci(tokens[index]).uci())
                except ValueError:
                    raise UciError(f"go searchmoves: not a move {tokens[index]!r}") from None
                index += 1
            if not moves:
                raise UciError("go searchmoves needs at least one move")
            values["searchmoves"] = tuple(moves)
        elif token in _GO_NUMBERS:
            if index >= len(tokens):
                raise UciError(f"go {token} needs a number")
            try:
                number = int(tokens[index])
            except ValueError:
                raise UciError(f"go {token} needs a number, got {tokens[index]!r}") from None
            if token in _GO_POSITIVE and number <= 0:
                raise UciError(f"go {token} must be positive, got {number}")
            values[_GO_NUMBERS[token]] = number
            index += 1
        else:
            raise UciError(f"unknown go parameter {token!r}")
    return Go(**values)  # type: ignore[arg-type]


def _parse_setoption(tokens: list[str]) -> SetOption:
    if not tokens or tokens[0] != "name" or len(tokens) < 2:
        raise UciError("setoption needs 'name <name> [value <value>]'")
    if "value" in tokens:
        split = tokens.index("value")
        name, value = " ".join(tokens[1:split]), " ".join(tokens[split + 1 :])
    else:
        name, value = " ".join(tokens[1:]), None
    if not name:
        raise UciError("setoption needs a name")
    return SetOption(name, value)
