"""Reading a client's move text (UCI or SAN) against a position.

Syntax and legality are told apart on purpose: text that is neither UCI nor SAN is
:class:`~engine.rules.errors.InvalidInput` (the request is malformed wherever it is sent), while
well-formed text that names no legal move here, null moves included, is
:class:`~engine.rules.errors.IllegalMove`.
"""

from __future__ import annotations

import re

import chess

from engine.rules.errors import IllegalMove, InvalidInput

_UCI = re.compile(r"[a-h][1-8][a-h][1-8][qrbn]?")
_SAN = re.compile(
    r"(?:[NBRQK]?[a-h]?[1-8]?x?[a-h][1-8](?:=?[QRBNqrbn])?|[O0]-[O0](?:-[O0])?)[+#]?[!?]{0,2}"
)
# Every spelling of a null move that python-chess or PGN tools produce.
_NULL = frozenset({"0000", "--", "Z0", "@@@@", "null"})
MAX_MOVE_TEXT = 12


def is_move_text(text: str) -> bool:
    """Whether ``text`` is shaped like a UCI move, a SAN move or a null move."""
    return len(text) <= MAX_MOVE_TEXT and (
        text in _NULL or _UCI.fullmatch(text) is not None or _SAN.fullmatch(text) is not None
    )


def parse_move(board: chess.Board, text: str) -> chess.Move:
    """The legal move that ``text`` names in ``board``'s position.

    Raises InvalidInput when ``text`` is neither UCI nor SAN, IllegalMove when it is a null
    move, names an illegal move, or is an ambiguous SAN. ``board`` is not changed.
    """
    if not is_move_text(text):
        raise InvalidInput(f"{text[:MAX_MOVE_TEXT]!r} is neither a UCI nor a SAN move")
    if text in _NULL:
        raise IllegalMove("null moves are not allowed")
    try:
        if _UCI.fullmatch(text):
            move = board.parse_uci(text)
        else:
            move = board.parse_san(text.replace("0", "O").rstrip("!?"))
    except chess.AmbiguousMoveError:
        raise IllegalMove(f"{text} is ambiguous in this position") from None
    except ValueError:
        raise IllegalMove(f"{text} is not a legal move in this position") from None
    if not move:
        raise IllegalMove("null moves are not allowed")
    return move
