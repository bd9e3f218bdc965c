"""The search's board: a position's bitboards as a class of the search's own.

A search reads a position's fields at every node and plays and takes back every move it
visits. On python-chess's `Board`, a Python class, code compiled by mypyc (`make native`)
reaches each field through a dictionary lookup, slower even than the interpreter; a class
defined here compiles to a C struct whose fields are read directly, and its `push` and
`pop` compile with it. `SearchBoard` keeps python-chess's fields under python-chess's names
(`occupied_co` as two fields, `white` and `black`, and a read-only view of them), in the same
states after the same moves (tests compare them move by move), for standard
chess with castling written as the king's two-square move. Legal move generation is in
`engine.search.generation`; a board converts to and from a python-chess `Board` where the
search meets the rest of the program.
"""

from __future__ import annotations

import random
from typing import Final

import chess
from librt.vecs import vec
from mypy_extensions import i64

from engine.search.bits import attackers, lowest_square, piece_type_at, popcount, squares_down
from engine.search.constants import (
    BB_DARK_SQUARES,
    BB_LIGHT_SQUARES,
    BB_PAWN_ATTACKS,
    BB_RANK_1,
    BB_RANK_8,
    BB_SQUARES,
    BISHOP,
    BLACK,
    KING,
    KNIGHT,
    PAWN,
    QUEEN,
    ROOK,
    WHITE,
    from_bitboard,
    to_bitboard,
)
from engine.search.move import Move

__all__ = ["PositionKey", "SearchBoard"]

_ROOK_CASTLING: Final = {
    # king's destination: (rook's square before, rook's square after)
    chess.G1: (chess.H1, chess.F1),
    chess.C1: (chess.A1, chess.D1),
    chess.G8: (chess.H8, chess.F8),
    chess.C8: (chess.A8, chess.D8),
}

PositionKey = i64
"""A position's Zobrist key: 64 random bits for each thing python-chess's `_transposition_key`
tells (each piece on its square, the side to move, each castling right, the file of an en
passant square where a pawn can legally take), all exclusive-ored. Equal positions have equal
keys for the repetition rule and the transposition table; two different positions share one
by chance only, about once in 2**64 comparisons, so a move read back through a key is checked
for legality before it is played (`engine.search.generation.is_legal`)."""


def _zobrist_keys(count: int) -> vec[i64]:
    # A fixed seed: the keys are the same in every process and every run.
    rng = random.Random(0x6D5F_C0DE)
    return vec[i64]([to_bitboard(rng.getrandbits(64)) for _ in range(count)])


_KEYS: Final = _zobrist_keys(1024 + 64 + 8 + 1)
# Indexed by colour << 9 | piece type << 6 | square (colour 1 for White, as `WHITE`).
_PIECE_KEYS: Final = _KEYS[:1024]
# Indexed by the square of a castling right's rook.
_CASTLING_KEYS: Final = _KEYS[1024:1088]
# Indexed by the file of an en passant square where a pawn can legally take.
_EP_KEYS: Final = _KEYS[1088:1096]
_WHITE_TO_MOVE_KEY: Final = _KEYS[1096]


def _piece_key(color: bool, piece_type: int, square: int) -> i64:
    return _PIECE_KEYS[(512 if color else 0) | piece_type << 6 | square]


class _Saved:
    """A position's fields as `push` found them, for `pop` to put back.

    A class rather than a tuple: compiled, its fields hold the integers unboxed, where a
    tuple would need an object for each (an allocation per field per move). A board keeps one
    per ply it has reached and fills it again at the next push to that ply, so a push
    allocates nothing once the search has been that deep.
    """

    __slots__ = (
        "bishops",
        "black",
        "castling_rights",
        "ep_square",
        "fullmove_number",
        "halfmove_clock",
        "hash",
        "kings",
        "knights",
        "occupied",
        "pawn_hash",
        "pawns",
        "promoted",
        "queens",
        "rooks",
        "turn",
        "white",
    )

    pawns: i64
    knights: i64
    bishops: i64
    rooks: i64
    queens: i64
    kings: i64
    white: i64
    black: i64
    occupied: i64
    promoted: i64
    turn: bool
    castling_rights: i64
    ep_square: int | None
    halfmove_clock: int
    fullmove_number: int
    hash: i64
    pawn_hash: i64


class SearchBoard:
    """A standard-chess position with python-chess's fields, and the search's push and pop."""

    pawns: i64
    knights: i64
    bishops: i64
    rooks: i64
    queens: i64
    kings: i64
    white: i64
    """White's pieces (python-chess's `occupied_co[WHITE]`; see `side`)."""
    black: i64
    """Black's pieces (python-chess's `occupied_co[BLACK]`)."""
    occupied: i64
    promoted: i64
    turn: bool
    castling_rights: i64
    ep_square: int | None
    halfmove_clock: int
    fullmove_number: int
    hash: i64
    """The Zobrist key of everything but the en passant square (`key` adds it where it counts)."""
    pawn_hash: i64
    """The Zobrist key of the pawns and kings alone (their placement is what pawn terms read)."""
    move_stack: list[Move]
    _saved: list[_Saved]

    def __init__(self, position: str | chess.Board) -> None:
        """The position of a FEN (python-chess reads it: ValueError when it is malformed) or
        of python-chess's `Board` (without its move stack)."""
        board = chess.Board(position) if isinstance(position, str) else position
        self.pawns = to_bitboard(board.pawns)
        self.knights = to_bitboard(board.knights)
        self.bishops = to_bitboard(board.bishops)
        self.rooks = to_bitboard(board.rooks)
        self.queens = to_bitboard(board.queens)
        self.kings = to_bitboard(board.kings)
        self.white = to_bitboard(board.occupied_co[WHITE])
        self.black = to_bitboard(board.occupied_co[BLACK])
        self.occupied = to_bitboard(board.occupied)
        self.promoted = to_bitboard(board.promoted)
        self.turn = board.turn
        # Rights without their king and rook unmoved mean nothing: cleaned, as python-chess's
        # key and FEN clean them, they stay clean through every push.
        self.castling_rights = to_bitboard(board.clean_castling_rights())
        self.ep_square = board.ep_square
        self.halfmove_clock = board.halfmove_clock
        self.fullmove_number = board.fullmove_number
        self.hash, self.pawn_hash = self._hashes()
        self.move_stack = []
        self._saved = []

    def _hashes(self) -> tuple[i64, i64]:
        """`hash` and `pawn_hash` from scratch, as `push` keeps them."""
        full: i64 = _WHITE_TO_MOVE_KEY if self.turn == WHITE else 0
        pawn_hash: i64 = 0
        for color in (BLACK, WHITE):
            own = self.side(color)
            for square in squares_down(own):
                piece_type = piece_type_at(self, square)
                key = _piece_key(color, piece_type, square)
                full ^= key
                if piece_type in (PAWN, KING):
                    pawn_hash ^= key
        for square in squares_down(self.castling_rights):
            full ^= _CASTLING_KEYS[square]
        return full, pawn_hash

    def side(self, color: bool) -> i64:
        """The pieces of `color`: python-chess's `occupied_co[color]`.

        Two fields read through a method rather than a list: compiled, a list holds each
        bitboard as an object, built anew whenever a move changes it."""
        return self.white if color else self.black

    @property
    def occupied_co(self) -> tuple[i64, i64]:
        """python-chess's `occupied_co` (Black's, White's), read-only: built on each read (the
        search reads `side`), a tuple so that a write fails instead of being lost."""
        return self.black, self.white

    def _toggle_side(self, color: bool, mask: i64) -> None:
        if color:
            self.white ^= mask
        else:
            self.black ^= mask

    def to_board(self) -> chess.Board:
        """This position as python-chess's `Board` (without the move stack)."""
        board = chess.Board(None)
        board.pawns = from_bitboard(self.pawns)
        board.knights = from_bitboard(self.knights)
        board.bishops = from_bitboard(self.bishops)
        board.rooks = from_bitboard(self.rooks)
        board.queens = from_bitboard(self.queens)
        board.kings = from_bitboard(self.kings)
        board.occupied_co[WHITE] = from_bitboard(self.white)
        board.occupied_co[BLACK] = from_bitboard(self.black)
        board.occupied = from_bitboard(self.occupied)
        board.promoted = from_bitboard(self.promoted)
        board.turn = self.turn
        board.castling_rights = from_bitboard(self.castling_rights)
        board.ep_square = self.ep_square
        board.halfmove_clock = self.halfmove_clock
        board.fullmove_number = self.fullmove_number
        return board

    def fen(self) -> str:
        """The position's FEN, as python-chess writes it."""
        return self.to_board().fen()

    def key(self) -> PositionKey:
        """The position's `PositionKey`."""
        ep_square = self.ep_square
        if ep_square is not None and self._can_take_en_passant(ep_square):
            return self.hash ^ _EP_KEYS[ep_square & 7]
        return self.hash

    def _can_take_en_passant(self, ep_square: int) -> bool:
        """Whether a pawn of the side to move can legally take en passant on `ep_square`."""
        turn = self.turn
        takers = BB_PAWN_ATTACKS[not turn][ep_square] & self.pawns & self.side(turn)
        if not takers or self.occupied & BB_SQUARES[ep_square]:
            return False
        for from_square in squares_down(takers):
            self.push(Move(from_square, ep_square))
            king = self.kings & self.side(turn)
            safe = not attackers(self, self.turn, lowest_square(king), self.occupied)
            self.pop()
            if safe:
                return True
        return False

    def piece_type_at(self, square: int) -> int:
        """The type of the piece on `square`, 0 when it is empty (python-chess says None)."""
        return piece_type_at(self, square)

    def pieces_mask(self, piece_type: int, color: bool) -> i64:
        """The squares of `color`'s pieces of `piece_type`, as python-chess's `pieces_mask`."""
        if piece_type == PAWN:
            mask = self.pawns
        elif piece_type == KNIGHT:
            mask = self.knights
        elif piece_type == BISHOP:
            mask = self.bishops
        elif piece_type == ROOK:
            mask = self.rooks
        elif piece_type == QUEEN:
            mask = self.queens
        else:
            mask = self.kings
        return mask & self.side(color)

    def is_en_passant(self, move: Move) -> bool:
        """Whether `move` takes en passant, as python-chess's `is_en_passant`."""
        from_square = move.from_square
        to_square = move.to_square
        diff = to_square - from_square
        return (
            self.ep_square == to_square
            and bool(self.pawns & BB_SQUARES[from_square])
            and diff in (7, 9, -7, -9)
            and not self.occupied & BB_SQUARES[to_square]
        )

    def is_capture(self, move: Move) -> bool:
        """Whether `move` takes a piece, as python-chess's `is_capture`."""
        touched = BB_SQUARES[move.from_square] ^ BB_SQUARES[move.to_square]
        return bool(touched & self.side(not self.turn)) or self.is_en_passant(move)

    def is_insufficient_material(self) -> bool:
        """Whether neither side can ever mate, as python-chess's `is_insufficient_material`."""
        return self._cannot_mate(WHITE) and self._cannot_mate(BLACK)

    def _cannot_mate(self, color: bool) -> bool:
        own = self.side(color)
        if own & (self.pawns | self.rooks | self.queens):
            return False
        if own & self.knights:
            # A lone knight mates only with the other side's own pieces in the way.
            return popcount(own) <= 2 and not self.side(not color) & ~self.kings & ~self.queens
        if own & self.bishops:
            # Bishops all on one colour of square, with no knight or pawn to block a king.
            bishops = self.bishops
            one_colour = not bishops & BB_DARK_SQUARES or not bishops & BB_LIGHT_SQUARES
            return one_colour and not self.pawns and not self.knights
        return True

    def push(self, move: Move) -> None:
        """Play the legal (or null) `move`, as python-chess's `push` does."""
        turn = self.turn
        ep_square = self.ep_square
        depth = len(self.move_stack)
        if depth == len(self._saved):
            self._saved.append(_Saved())
        saved = self._saved[depth]
        saved.pawns = self.pawns
        saved.knights = self.knights
        saved.bishops = self.bishops
        saved.rooks = self.rooks
        saved.queens = self.queens
        saved.kings = self.kings
        saved.white = self.white
        saved.black = self.black
        saved.occupied = self.occupied
        saved.promoted = self.promoted
        saved.turn = turn
        saved.castling_rights = self.castling_rights
        saved.ep_square = ep_square
        saved.halfmove_clock = self.halfmove_clock
        saved.fullmove_number = self.fullmove_number
        saved.hash = self.hash
        saved.pawn_hash = self.pawn_hash
        self.move_stack.append(move)
        self.ep_square = None
        self.halfmove_clock += 1
        if not turn:
            self.fullmove_number += 1
        self.turn = not turn
        self.hash ^= _WHITE_TO_MOVE_KEY
        from_square = move.from_square
        to_square = move.to_square
        if from_square == to_square:
            return  # The null move (python-chess's is a1 to a1).

        from_bb = BB_SQUARES[from_square]
        to_bb = BB_SQUARES[to_square]
        piece = self.piece_type_at(from_square)
        captured = self.piece_type_at(to_square)
        rights = self.castling_rights
        self.castling_rights &= ~(from_bb | to_bb)
        promoted = self.promoted
        was_promoted = promoted & from_bb
        promoted &= ~(from_bb | to_bb)
        landed = move.promotion or piece
        leaving = _piece_key(turn, piece, from_square)
        arriving = _piece_key(turn, landed, to_square)
        full = self.hash ^ leaving ^ arriving
        pawn_hash = self.pawn_hash
        if piece in (PAWN, KING):
            pawn_hash ^= leaving
            if landed == piece:
                pawn_hash ^= arriving
        if captured:
            self._toggle(captured, to_bb)
            self._toggle_side(not turn, to_bb)
            self.occupied ^= to_bb
            self.halfmove_clock = 0
            taken = _piece_key(not turn, captured, to_square)
            full ^= taken
            if captured == PAWN:
                pawn_hash ^= taken

        if piece == PAWN:
            self.halfmove_clock = 0
            diff = to_square - from_square
            if diff == 16 or diff == -16:
                self.ep_square = from_square + diff // 2
            elif to_square == ep_square and not captured:
                # En passant: the pawn taken stands beside the one that takes.
                taken_square = to_square - 8 if turn else to_square + 8
                taken_bb = BB_SQUARES[taken_square]
                self.pawns ^= taken_bb
                self._toggle_side(not turn, taken_bb)
                self.occupied ^= taken_bb
                taken = _piece_key(not turn, PAWN, taken_square)
                full ^= taken
                pawn_hash ^= taken
        elif piece == KING:
            self.castling_rights &= ~(BB_RANK_1 if turn else BB_RANK_8)
            rook_squares = _ROOK_CASTLING.get(to_square)
            if rook_squares is not None and abs(to_square - from_square) == 2:
                rook_from, rook_to = rook_squares
                rook_bb = BB_SQUARES[rook_from] | BB_SQUARES[rook_to]
                self.rooks ^= rook_bb
                self._toggle_side(turn, rook_bb)
                self.occupied ^= rook_bb
                full ^= _piece_key(turn, ROOK, rook_from) ^ _piece_key(turn, ROOK, rook_to)
        lost = rights & ~self.castling_rights
        if lost:
            for square in squares_down(lost):
                full ^= _CASTLING_KEYS[square]
        self.hash = full
        self.pawn_hash = pawn_hash

        if landed != piece:
            self.pawns ^= from_bb
            self._toggle(landed, to_bb)
            promoted |= to_bb
        else:
            assert piece, "push() needs a legal move"
            self._toggle(piece, from_bb | to_bb)
            if was_promoted:
                promoted |= to_bb
        self.promoted = promoted
        self._toggle_side(turn, from_bb | to_bb)
        self.occupied ^= from_bb | to_bb

    def pop(self) -> Move:
        """Take back the last move pushed, as python-chess's `pop` does."""
        depth = len(self.move_stack) - 1
        if depth < 0:
            raise IndexError("pop() with no move pushed")
        saved = self._saved[depth]
        self.pawns = saved.pawns
        self.knights = saved.knights
        self.bishops = saved.bishops
        self.rooks = saved.rooks
        self.queens = saved.queens
        self.kings = saved.kings
        self.white = saved.white
        self.black = saved.black
        self.occupied = saved.occupied
        self.promoted = saved.promoted
        self.turn = saved.turn
        self.castling_rights = saved.castling_rights
        self.ep_square = saved.ep_square
        self.halfmove_clock = saved.halfmove_clock
        self.fullmove_number = saved.fullmove_number
        self.hash = saved.hash
        self.pawn_hash = saved.pawn_hash
        return self.move_stack.pop()

    def _toggle(self, piece_type: int, mask: i64) -> None:
        if piece_type == PAWN:
            self.pawns ^= mask
        elif piece_type == KNIGHT:
            self.knights ^= mask
        elif piece_type == BISHOP:
            self.bishops ^= mask
        elif piece_type == ROOK:
            self.rooks ^= mask
        elif piece_type == QUEEN:
            self.queens ^= mask
        else:
            self.kings ^= mask
