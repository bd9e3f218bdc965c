"""The search's board: python-chess's `Board` with a push and pop cut down to standard chess.

A search plays and takes back every move it visits, so `push` and `pop` run once per node.
python-chess's own are general: Chess960 conversions, a state object per move, the cleaning
of castling rights and drops. `SearchBoard` keeps the same fields in the same states for the
moves its own generator gives (standard chess, castling written as the king's two-square move)
and saves each position's fields as one tuple. Everything else is python-chess's.

Only `push` and `pop` are replaced: a `SearchBoard` must not be copied (`copy` would not
carry the saved tuples) and must be set up from a FEN, not from another board's stack.
"""

from __future__ import annotations

import chess

__all__ = ["SearchBoard"]

_ROOK_CASTLING = {
    # king's destination: (rook's square before, rook's square after)
    chess.G1: (chess.H1, chess.F1),
    chess.C1: (chess.A1, chess.D1),
    chess.G8: (chess.H8, chess.F8),
    chess.C8: (chess.A8, chess.D8),
}
_BACK_RANKS = (chess.BB_RANK_8, chess.BB_RANK_1)  # indexed by colour
_State = tuple[int, int, int, int, int, int, int, int, int, int, bool, int, int | None, int, int]


class SearchBoard(chess.Board):
    """A standard-chess board whose `push` and `pop` are the search's fast ones."""

    def __init__(self, fen: str) -> None:
        super().__init__(fen)
        self._saved: list[_State] = []

    def push(self, move: chess.Move) -> None:
        """Play the legal (or null) `move`, as python-chess's `push` does."""
        occupied_co = self.occupied_co
        turn = self.turn
        ep_square = self.ep_square
        self._saved.append(
            (
                self.pawns,
                self.knights,
                self.bishops,
                self.rooks,
                self.queens,
                self.kings,
                occupied_co[chess.WHITE],
                occupied_co[chess.BLACK],
                self.occupied,
                self.promoted,
                turn,
                self.castling_rights,
                ep_square,
                self.halfmove_clock,
                self.fullmove_number,
            )
        )
        self.move_stack.append(move)
        self.ep_square = None
        self.halfmove_clock += 1
        if not turn:
            self.fullmove_number += 1
        self.turn = not turn
        if not move:
            return

        from_square = move.from_square
        to_square = move.to_square
        from_bb = chess.BB_SQUARES[from_square]
        to_bb = chess.BB_SQUARES[to_square]
        piece = self.piece_type_at(from_square)
        captured = self.piece_type_at(to_square)
        self.castling_rights &= ~(from_bb | to_bb)
        promoted = self.promoted
        was_promoted = promoted & from_bb
        promoted &= ~(from_bb | to_bb)
        if captured is not None:
            self._toggle(captured, to_bb)
            occupied_co[not turn] ^= to_bb
            self.occupied ^= to_bb
            self.halfmove_clock = 0

        if piece == chess.PAWN:
            self.halfmove_clock = 0
            diff = to_square - from_square
            if diff == 16 or diff == -16:
                self.ep_square = from_square + diff // 2
            elif to_square == ep_square and captured is None:
                # En passant: the pawn taken stands beside the one that takes.
                taken_bb = chess.BB_SQUARES[to_square - 8 if turn else to_square + 8]
                self.pawns ^= taken_bb
                occupied_co[not turn] ^= taken_bb
                self.occupied ^= taken_bb
        elif piece == chess.KING:
            self.castling_rights &= ~_BACK_RANKS[turn]
            rook_squares = _ROOK_CASTLING.get(to_square)
            if rook_squares is not None and abs(to_square - from_square) == 2:
                rook_bb = chess.BB_SQUARES[rook_squares[0]] | chess.BB_SQUARES[rook_squares[1]]
                self.rooks ^= rook_bb
                occupied_co[turn] ^= rook_bb
                self.occupied ^= rook_bb

        landed = move.promotion
        if landed:
            self.pawns ^= from_bb
            self._toggle(landed, to_bb)
            promoted |= to_bb
        else:
            assert piece is not None, "push() needs a legal move"
            self._toggle(piece, from_bb | to_bb)
            if was_promoted:
                promoted |= to_bb
        self.promoted = promoted
        occupied_co[turn] ^= from_bb | to_bb
        self.occupied ^= from_bb | to_bb

    def pop(self) -> chess.Move:
        """Take back the last move pushed, as python-chess's `pop` does."""
        (
            self.pawns,
            self.knights,
            self.bishops,
            self.rooks,
            self.queens,
            self.kings,
            white,
            black,
            self.occupied,
            self.promoted,
            self.turn,
            self.castling_rights,
            self.ep_square,
            self.halfmove_clock,
            self.fullmove_number,
        ) = self._saved.pop()
        self.occupied_co[chess.WHITE] = white
        self.occupied_co[chess.BLACK] = black
        return self.move_stack.pop()

    def _toggle(self, piece_type: int, mask: int) -> None:
        if piece_type == chess.PAWN:
            self.pawns ^= mask
        elif piece_type == chess.KNIGHT:
            self.knights ^= mask
        elif piece_type == chess.BISHOP:
            self.bishops ^= mask
        elif piece_type == chess.ROOK:
            self.rooks ^= mask
        elif piece_type == chess.QUEEN:
            self.queens ^= mask
        else:
            self.kings ^= mask
