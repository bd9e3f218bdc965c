"""The search's move: python-chess's `Move` for standard chess, as a class of the search's own.

The search reads a move's squares at every node, many times. python-chess's `Move` is a
dataclass, a Python object whose fields compiled code reads by name through its dictionary,
and whose `==` runs interpreted; compiled with the search (`make native`), this class is a C
struct with an `==` in C. It holds what a move of standard chess needs (no drops), with
python-chess's meaning and `uci()`; `from_chess` and `to_chess` convert where the search meets
python-chess.
"""

from __future__ import annotations

from typing import Final

import chess

__all__ = ["Move"]

_NAMES: Final = chess.SQUARE_NAMES
_SYMBOLS: Final[tuple[str, ...]] = ("", "p", "n", "b", "r", "q", "k")


class Move:
    """A move from `from_square` to `to_square`, promoting to `promotion` (a piece type) or
    not (0); from a1 to a1, the null move."""

    __slots__ = ("from_square", "promotion", "to_square")

    from_square: int
    to_square: int
    promotion: int

    def __init__(self, from_square: int, to_square: int, promotion: int = 0) -> None:
        self.from_square = from_square
        self.to_square = to_square
        self.promotion = promotion

    @staticmethod
    def from_chess(move: chess.Move) -> Move:
        """python-chess's (standard-chess) `move`."""
        return Move(move.from_square, move.to_square, move.promotion or 0)

    def to_chess(self) -> chess.Move:
        """This move as python-chess's `Move`."""
        return chess.Move(self.from_square, self.to_square, self.promotion or None)

    def uci(self) -> str:
        """The move in UCI's notation, as python-chess's `Move.uci()` writes it."""
        if not (self.from_square or self.to_square or self.promotion):
            return "0000"
        return _NAMES[self.from_square] + _NAMES[self.to_square] + _SYMBOLS[self.promotion]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Move):
            return NotImplemented
        return (
            self.from_square == other.from_square
            and self.to_square == other.to_square
            and self.promotion == other.promotion
        )

    def __hash__(self) -> int:
        return self.promotion << 12 | self.from_square << 6 | self.to_square

    def __repr__(self) -> str:
        return f"Move({self.from_square}, {self.to_square}, {self.promotion})"
