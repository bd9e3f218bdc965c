"""Move generation for the search, straight from python-chess's attack tables.

python-chess's generator is general: it computes each piece's attacks through a method per
piece, tries castling, and tests every move's legality; the search asks for captures at most
of its nodes and for quiet moves at many. `SidePieces` reads the side to move's pieces once
per node (their attacks, its king and the pieces pinned to it) and gives the captures and the
quiet moves from that, in the very order python-chess's generator gives them, so that the
search's move order, and with it its tree, does not depend on which generator made them.

A side in check has only evasions: `SidePieces` then has `in_check` set and nothing else, and
the caller asks `legal_evasions`. `legal_moves` gives every legal move, for the root and the
promotions; `castling_moves`, `en_passant_moves` and `is_legal_quiet` the rest the search needs.

The loops here walk a bitboard square by square (`highest_square`, then clear that square's
bit) rather than over `squares_down`'s list: they run at nearly every node, and compiled, the
list is an object built and freed each time where the walk is arithmetic on a machine word.
"""

from __future__ import annotations

from typing import Final

from librt.vecs import append, vec
from mypy_extensions import i64

from engine.search.bits import (
    BISHOP_LINES,
    ROOK_LINES,
    attackers,
    between,
    bishop_attacks,
    highest_square,
    lowest_square,
    more_than_one,
    piece_type_at,
    ray,
    rook_attacks,
    squares_down,
    wrap,
)
from engine.search.board import SearchBoard
from engine.search.constants import (
    BB_ALL,
    BB_CORNERS,
    BB_KING_ATTACKS,
    BB_KNIGHT_ATTACKS,
    BB_PAWN_ATTACKS,
    BB_RANK_1,
    BB_RANK_2,
    BB_RANK_3,
    BB_RANK_4,
    BB_RANK_5,
    BB_RANK_6,
    BB_RANK_7,
    BB_RANK_8,
    BB_SQUARES,
    BISHOP,
    KING,
    KNIGHT,
    PAWN,
    QUEEN,
    ROOK,
)
from engine.search.evaluation import PIECE_VALUES
from engine.search.move import Move

__all__ = [
    "MOVES",
    "SidePieces",
    "add_tactical",
    "add_tried",
    "castling_moves",
    "en_passant_moves",
    "is_legal",
    "is_legal_quiet",
    "is_tried",
    "legal_evasions",
    "legal_moves",
    "lone_blockers",
    "move_index",
    "quiet_move",
    "sort_falling",
    "tactical_gain",
    "tactical_move",
]

MOVES: Final = [Move(index >> 6 & 63, index & 63, index >> 12) for index in range(6 * 4096)]
"""Every move, made once, at its `move_index`: a search makes a million moves a minute. Moves
are values (compared and hashed by their squares) that nothing changes, so one is shared. (The
items with a pawn's 1 as promotion are never used; index 0 is the null move, a1 to a1.)"""

# Moves and their sort keys packed into one integer, the move's index in the low bits: one
# integer rather than a tuple per move (a tuple is an object more, and sorting tuples calls a
# key function). A plain move's index fits 12 bits, any move's 15; a capture's gain, the
# captured piece's value and any promotion's, fits 11 (a queen taken by a pawn promoting to a
# queen gains the most); no node has 256 captures.
_PLAIN_BITS: Final = 12
_MOVE_BITS: Final = 15
_GAIN_BITS: Final = 11
_PLACE_BITS: Final = 8
assert 2 * PIECE_VALUES[QUEEN] - PIECE_VALUES[PAWN] < 1 << _GAIN_BITS


def move_index(move: Move) -> int:
    """The index of `move` in `MOVES`: `promotion << 12 | from_square << 6 | to_square`."""
    return move.promotion << 12 | move.from_square << 6 | move.to_square


def add_tactical(scored: vec[i64], order: int, gain: int, move: int) -> vec[i64]:
    """`scored` with a capture or promotion appended as one integer: its MVV-LVA `order` (not
    negative), the place it came in (so that equal orders keep it when sorted, falling), its
    `gain` and its `move_index` `move`, from the high bits down; `tactical_gain` and
    `tactical_move` read it back."""
    place = (1 << _PLACE_BITS) - 1 - len(scored)
    return append(
        scored, ((order << _PLACE_BITS | place) << _GAIN_BITS | gain) << _MOVE_BITS | move
    )


def sort_falling(keys: vec[i64]) -> None:
    """Sort `keys` in place, greatest first: an insertion sort of machine words, for the few
    dozen keys of a node's moves (where `list.sort` compared Python integers)."""
    for index in range(1, len(keys)):
        key = keys[index]
        place = index - 1
        while place >= 0 and keys[place] < key:
            keys[place + 1] = keys[place]
            place -= 1
        keys[place + 1] = key


def tactical_gain(packed: int) -> int:
    """The gain of a move packed by `add_tactical`."""
    return packed >> _MOVE_BITS & (1 << _GAIN_BITS) - 1


def tactical_move(packed: int) -> Move:
    """The move packed by `add_tactical`."""
    return MOVES[packed & (1 << _MOVE_BITS) - 1]


def quiet_move(packed: int) -> Move:
    """The move of a key of `SidePieces.add_quiet_moves` (its low 12 bits)."""
    return MOVES[packed & (1 << _PLAIN_BITS) - 1]


def add_tried(tried: i64, move: Move) -> i64:
    """`tried` (up to three moves packed for `is_tried`; 0 is none) with `move` added: each
    move's `from_square << 6 | to_square` plus one, in 16 bits each, where a set was an object
    and a hash per lookup."""
    return tried << 16 | (move.from_square << 6 | move.to_square) + 1


def is_tried(tried: i64, key: int) -> bool:
    """Whether `key` (`from_square << 6 | to_square`) is one of the moves `tried` packs."""
    key += 1
    while tried:
        if tried & 0xFFFF == key:
            return True
        tried >>= 16
    return False


def lone_blockers(king: int, snipers: i64, occupied: i64) -> i64:
    """The pieces that alone stand between `king` and one of `snipers` (sliders aimed at it)."""
    blockers: i64 = 0
    while snipers:
        sniper = highest_square(snipers)
        snipers ^= BB_SQUARES[sniper]
        found = between(king, sniper) & occupied
        if found and not more_than_one(found):
            blockers |= found
    return blockers


class SidePieces:
    """The side to move's pieces in one position, read once for its captures and quiet moves."""

    __slots__ = ("in_check", "king", "own", "pinned", "placed", "reaches", "turn")

    in_check: bool
    king: int
    own: i64
    pinned: i64
    placed: vec[i64]
    reaches: vec[i64]
    turn: bool

    def __init__(self, board: SearchBoard) -> None:
        turn = self.turn = board.turn
        own = self.own = board.side(turn)
        king = self.king = lowest_square(board.kings & own)
        self.in_check = bool(attackers(board, not turn, king, board.occupied))
        # The knights, bishops, rooks and queens, type by type and each by falling square
        # (ties of move order between pieces of one type then come as python-chess's generator
        # gives them): `placed` holds `piece_type << 6 | square`, `reaches` the squares
        # attacked. Machine words side by side: a tuple per piece would be three objects.
        placed = vec[i64](capacity=16)
        reaches = vec[i64](capacity=16)
        self.pinned = 0
        if not self.in_check:
            occupied = board.occupied
            self.pinned = _pinned(board, king, own, occupied)
            for piece_type in range(KNIGHT, KING):
                pieces = board.pieces_mask(piece_type, turn)
                while pieces:
                    square = highest_square(pieces)
                    pieces ^= BB_SQUARES[square]
                    placed = append(placed, piece_type << 6 | square)
                    reaches = append(reaches, _piece_attacks(piece_type, square, occupied))
        self.placed = placed
        self.reaches = reaches

    def add_captures(
        self,
        board: SearchBoard,
        targets: i64,
        promoting: i64,
        scored: vec[i64],
    ) -> vec[i64]:
        """`scored` with the legal captures of `targets` (not by `promoting` pawns, nor en
        passant) appended through `add_tactical`."""
        values = PIECE_VALUES
        turn = self.turn
        king = self.king
        pinned = self.pinned
        squares = BB_SQUARES
        king_bb = squares[king]
        placed = self.placed
        reaches = self.reaches
        for index in range(len(reaches)):
            hits = reaches[index] & targets
            if not hits:
                continue
            attacker = placed[index] >> 6
            from_square = placed[index] & 63
            is_pinned = pinned & squares[from_square]
            while hits:
                to_square = highest_square(hits)
                hits ^= squares[to_square]
                if is_pinned and not ray(from_square, to_square) & king_bb:
                    continue
                gain = values[piece_type_at(board, to_square) or PAWN]
                scored = add_tactical(
                    scored, gain * 8 - attacker, gain, from_square << 6 | to_square
                )
        hits = BB_KING_ATTACKS[king] & targets
        while hits:
            to_square = highest_square(hits)
            hits ^= squares[to_square]
            if not attackers(board, not turn, to_square, board.occupied):
                gain = values[piece_type_at(board, to_square) or PAWN]
                scored = add_tactical(scored, gain * 8 - KING, gain, king << 6 | to_square)
        # The pawns' loop is the pieces' over again, written out: walking both as one
        # sequence (a list or a chain of the two) costs 2-3% of a search.
        pawn_attacks = BB_PAWN_ATTACKS[turn]
        pawns = self.own & board.pawns & ~promoting
        while pawns:
            from_square = highest_square(pawns)
            pawns ^= squares[from_square]
            hits = pawn_attacks[from_square] & targets
            if not hits:
                continue
            is_pinned = pinned & squares[from_square]
            while hits:
                to_square = highest_square(hits)
                hits ^= squares[to_square]
                if is_pinned and not ray(from_square, to_square) & king_bb:
                    continue
                gain = values[piece_type_at(board, to_square) or PAWN]
                scored = add_tactical(scored, gain * 8 - PAWN, gain, from_square << 6 | to_square)
        return scored

    def add_quiet_moves(
        self,
        board: SearchBoard,
        tried: i64,
        history: list[int],
        offset: int,
        scored: vec[i64],
    ) -> vec[i64]:
        """`scored` with the legal moves that neither capture nor promote (nor take en passant)
        and are not `tried` appended (`tried` packs up to three moves' `from_square << 6 |
        to_square` in 16 bits each, see `add_tried`), each as one integer that sorts by
        `history[offset | from << 6 | to]` first, then in python-chess's generation order, and
        whose low 12 bits are the move's `from_square << 6 | to_square` (a key per move: a
        pair would be an object more per move, and sorting pairs calls a key function)."""
        turn = self.turn
        king = self.king
        pinned = self.pinned
        own = self.own
        empty = ~board.occupied
        squares = BB_SQUARES
        king_bb = squares[king]
        # python-chess's order, as a rank that falls as the move comes later: pieces by falling
        # from- then to-square, castling, single then double pawn pushes by falling to-square.
        placed = self.placed
        reaches = self.reaches
        for index in range(len(reaches)):
            moves = reaches[index] & empty
            if not moves:
                continue
            from_square = placed[index] & 63
            is_pinned = pinned & squares[from_square]
            base = offset | from_square << 6
            order = 16383 - (63 - from_square) * 64 - 63
            while moves:
                to_square = highest_square(moves)
                moves ^= squares[to_square]
                if is_pinned and not ray(from_square, to_square) & king_bb:
                    continue
                if is_tried(tried, from_square << 6 | to_square):
                    continue
                key = (history[base | to_square] << 14) + order + to_square
                scored = append(scored, key << 12 | from_square << 6 | to_square)
        base = offset | king << 6
        order = 16383 - (63 - king) * 64 - 63
        steps = BB_KING_ATTACKS[king] & empty
        while steps:
            to_square = highest_square(steps)
            steps ^= squares[to_square]
            if is_tried(tried, king << 6 | to_square) or attackers(
                board, not turn, to_square, board.occupied
            ):
                continue
            key = (history[base | to_square] << 14) + order + to_square
            scored = append(scored, key << 12 | king << 6 | to_square)
        if board.castling_rights & own:
            for move in castling_moves(board):
                if is_tried(tried, move.from_square << 6 | move.to_square):
                    continue
                order = 16383 - 4096 - (0 if move.to_square > move.from_square else 1)
                index = move.from_square << 6 | move.to_square
                scored = append(scored, ((history[offset | index] << 14) + order) << 12 | index)
        pawns = board.pawns & own
        if turn:
            singles = pawns << 8 & empty & ~BB_RANK_8
            doubles = (pawns << 8 & empty) << 8 & empty & BB_RANK_4
            step = 8
        else:
            singles = pawns >> 8 & empty & ~BB_RANK_1
            doubles = (pawns >> 8 & empty) >> 8 & empty & BB_RANK_5
            step = -8
        scored = _add_pushes(singles, step, 4098, pinned, king_bb, tried, history, offset, scored)
        return _add_pushes(doubles, 2 * step, 4162, pinned, king_bb, tried, history, offset, scored)


def _add_pushes(
    targets: i64,
    distance: int,
    first: int,
    pinned: i64,
    king_bb: i64,
    tried: i64,
    history: list[int],
    offset: int,
    scored: vec[i64],
) -> vec[i64]:
    """`SidePieces.add_quiet_moves` for the pawn pushes `distance` long onto `targets`; `first`
    places them in python-chess's order."""
    while targets:
        to_square = highest_square(targets)
        targets ^= BB_SQUARES[to_square]
        from_square = to_square - distance
        if pinned & BB_SQUARES[from_square] and not ray(from_square, to_square) & king_bb:
            continue
        if is_tried(tried, from_square << 6 | to_square):
            continue
        order = 16383 - first - (63 - to_square)
        index = from_square << 6 | to_square
        scored = append(scored, ((history[offset | index] << 14) + order) << 12 | index)
    return scored


def _add_pawn_moves(
    moves: list[Move], board: SearchBoard, pawns: i64, target: i64, pinned: i64, king_bb: i64
) -> None:
    """Append the legal captures, then pushes, of the side to move's `pawns` onto `target`
    (en passant aside), in python-chess's order; a pinned pawn moves only along its pin."""
    squares = BB_SQUARES
    turn = board.turn
    theirs = board.side(not turn)
    pawn_attacks = BB_PAWN_ATTACKS[turn]
    froms = pawns
    while froms:
        from_square = highest_square(froms)
        froms ^= squares[from_square]
        is_pinned = pinned & squares[from_square]
        tos = pawn_attacks[from_square] & theirs & target
        while tos:
            to_square = highest_square(tos)
            tos ^= squares[to_square]
            if not is_pinned or ray(from_square, to_square) & king_bb:
                _add_pawn_move(moves, from_square, to_square)
    empty = ~board.occupied
    if turn:
        singles = wrap(pawns << 8) & empty
        doubles = singles << 8 & empty & (BB_RANK_3 | BB_RANK_4)
        step = 8
    else:
        singles = pawns >> 8 & empty
        doubles = singles >> 8 & empty & (BB_RANK_6 | BB_RANK_5)
        step = -8
    tos = singles & target
    while tos:
        to_square = highest_square(tos)
        tos ^= squares[to_square]
        from_square = to_square - step
        if not pinned & squares[from_square] or ray(from_square, to_square) & king_bb:
            _add_pawn_move(moves, from_square, to_square)
    tos = doubles & target
    while tos:
        to_square = highest_square(tos)
        tos ^= squares[to_square]
        from_square = to_square - 2 * step
        if not pinned & squares[from_square] or ray(from_square, to_square) & king_bb:
            moves.append(MOVES[from_square << 6 | to_square])


def legal_evasions(board: SearchBoard, from_mask: i64, to_mask: i64) -> list[Move]:
    """The legal moves of a side in check from `from_mask` to `to_mask`, as python-chess's
    `generate_legal_moves(from_mask, to_mask)` gives them, in its order."""
    turn = board.turn
    own = board.side(turn)
    occupied = board.occupied
    squares = BB_SQUARES
    king = lowest_square(board.kings & own)
    checkers = attackers(board, not turn, king, occupied)
    moves: list[Move] = []
    # The king steps off every checking slider's line, its own square included.
    attacked: i64 = 0
    checking = checkers & (board.bishops | board.rooks | board.queens)
    while checking:
        checker = highest_square(checking)
        checking ^= squares[checker]
        attacked |= ray(king, checker) & ~squares[checker]
    if squares[king] & from_mask:
        tos = BB_KING_ATTACKS[king] & ~own & ~attacked & to_mask
        while tos:
            to_square = highest_square(tos)
            tos ^= squares[to_square]
            if not attackers(board, not turn, to_square, occupied):
                moves.append(MOVES[king << 6 | to_square])
    checker = highest_square(checkers)
    if squares[checker] != checkers:
        return moves  # Double check: only the king may move.
    # Capture or block the one checker, with a piece not pinned to the king (or moving along
    # its pin); a pin cannot be a check's ray, so `ray` tells both apart.
    line = between(king, checker) | checkers
    target = line & to_mask
    pinned = _pinned(board, king, own, occupied)
    king_bb = squares[king]
    from_mask &= ~board.kings
    froms = own & ~board.pawns & from_mask
    while froms:
        from_square = highest_square(froms)
        froms ^= squares[from_square]
        piece_type = piece_type_at(board, from_square)
        tos = _piece_attacks(piece_type, from_square, occupied) & ~own & target
        is_pinned = pinned & squares[from_square]
        while tos:
            to_square = highest_square(tos)
            tos ^= squares[to_square]
            if not is_pinned or ray(from_square, to_square) & king_bb:
                moves.append(MOVES[from_square << 6 | to_square])
    pawns = board.pawns & own & from_mask
    if pawns:
        _add_pawn_moves(moves, board, pawns, target, pinned, king_bb)
    ep_square = board.ep_square
    if ep_square:
        # En passant, blocking or taking the checker.
        if pawns:
            moves.extend(en_passant_moves(board, from_mask, target))
        if not squares[ep_square] & line and ep_square + (-8 if turn else 8) == checker:
            moves.extend(en_passant_moves(board, from_mask, to_mask))
    return moves


def legal_moves(board: SearchBoard, from_mask: i64 = BB_ALL, to_mask: i64 = BB_ALL) -> list[Move]:
    """The legal moves from `from_mask` to `to_mask`, as python-chess's
    `generate_legal_moves(from_mask, to_mask)` gives them, in its order (castling, written as
    the king's move, is asked for by the rook's square, as python-chess does)."""
    turn = board.turn
    own = board.side(turn)
    occupied = board.occupied
    king = lowest_square(board.kings & own)
    if attackers(board, not turn, king, occupied):
        return legal_evasions(board, from_mask, to_mask)
    squares = BB_SQUARES
    king_bb = squares[king]
    pinned = _pinned(board, king, own, occupied)
    moves: list[Move] = []
    froms = own & ~board.pawns & from_mask
    while froms:
        from_square = highest_square(froms)
        froms ^= squares[from_square]
        piece_type = piece_type_at(board, from_square)
        if piece_type == KING:
            tos = BB_KING_ATTACKS[king] & ~own & to_mask
            while tos:
                to_square = highest_square(tos)
                tos ^= squares[to_square]
                if not attackers(board, not turn, to_square, occupied):
                    moves.append(MOVES[king << 6 | to_square])
            continue
        tos = _piece_attacks(piece_type, from_square, occupied) & ~own & to_mask
        is_pinned = pinned & squares[from_square]
        while tos:
            to_square = highest_square(tos)
            tos ^= squares[to_square]
            if not is_pinned or ray(from_square, to_square) & king_bb:
                moves.append(MOVES[from_square << 6 | to_square])
    if from_mask & king_bb:
        moves.extend(castling_moves(board, to_mask))
    pawns = board.pawns & own & from_mask
    if not pawns:
        return moves
    _add_pawn_moves(moves, board, pawns, to_mask, pinned, king_bb)
    if board.ep_square:
        moves.extend(en_passant_moves(board, from_mask, to_mask))
    return moves


def castling_moves(board: SearchBoard, rook_mask: i64 = BB_ALL) -> list[Move]:
    """The side to move's legal castling moves (king's side first, as python-chess gives
    them) with a rook of `rook_mask`: its king and that rook unmoved, the squares between them
    empty, and neither the king's square, nor those it crosses or lands on, attacked."""
    turn = board.turn
    own = board.side(turn)
    back_rank = BB_RANK_1 if turn else BB_RANK_8
    king_home = 4 if turn else 60  # e1, e8
    king = BB_SQUARES[king_home]
    if not board.kings & own & ~board.promoted & king:
        return []
    moves: list[Move] = []
    corners = board.castling_rights & board.rooks & own & back_rank & BB_CORNERS & rook_mask
    occupied = board.occupied
    for rook_square in squares_down(corners):
        rook = BB_SQUARES[rook_square]
        queen_side = rook_square < king_home
        king_to = king_home - 2 if queen_side else king_home + 2
        rook_to = king_home - 1 if queen_side else king_home + 1
        king_to_bb = BB_SQUARES[king_to]
        rook_to_bb = BB_SQUARES[rook_to]
        king_path = between(king_home, king_to)
        must_be_empty = king_path | between(rook_square, rook_to) | king_to_bb | rook_to_bb
        if (occupied ^ king ^ rook) & must_be_empty:
            continue
        without_king = occupied ^ king
        if any(
            attackers(board, not turn, square, without_king)
            for square in squares_down(king_path | king)
        ):
            continue
        if attackers(board, not turn, king_to, without_king ^ rook ^ rook_to_bb):
            continue
        moves.append(MOVES[king_home << 6 | king_to])
    return moves


def en_passant_moves(board: SearchBoard, from_mask: i64, to_mask: i64) -> list[Move]:
    """The legal en passant captures by pawns of `from_mask` onto a square of `to_mask`, as
    python-chess gives them (by falling square of the pawn that takes)."""
    ep_square = board.ep_square
    if not ep_square or not BB_SQUARES[ep_square] & to_mask & ~board.occupied:
        return []
    turn = board.turn
    takers = (
        board.pawns
        & board.side(turn)
        & from_mask
        & BB_PAWN_ATTACKS[not turn][ep_square]
        & (BB_RANK_5 if turn else BB_RANK_4)
    )
    return [
        move
        for move in (MOVES[from_square << 6 | ep_square] for from_square in squares_down(takers))
        if _king_safe_after(board, move)
    ]


def is_legal_quiet(board: SearchBoard, move: Move) -> bool:
    """Whether `move`, neither a capture nor a promotion nor en passant, is legal in `board`
    (python-chess's `is_legal` for such a move; a capture, promotion or en passant says
    False)."""
    if move.promotion:
        return False
    from_square = move.from_square
    to_square = move.to_square
    turn = board.turn
    own = board.side(turn)
    from_bb = BB_SQUARES[from_square]
    to_bb = BB_SQUARES[to_square]
    occupied = board.occupied
    if not own & from_bb or occupied & to_bb:
        return False
    piece_type = piece_type_at(board, from_square)
    if piece_type == PAWN:
        step = 8 if turn else -8
        if to_square < 8 or to_square >= 56:
            return False
        if to_square - from_square == 2 * step:
            start = BB_RANK_2 if turn else BB_RANK_7
            if not from_bb & start or occupied & BB_SQUARES[from_square + step]:
                return False
        elif to_square - from_square != step:
            return False
    elif piece_type == KING:
        if abs(to_square - from_square) == 2 and to_square >> 3 == from_square >> 3:
            return move in castling_moves(board)
        if not BB_KING_ATTACKS[from_square] & to_bb:
            return False
        return not attackers(board, not turn, to_square, occupied ^ from_bb)
    elif not _piece_attacks(piece_type, from_square, occupied) & to_bb:
        return False
    return _king_safe_after(board, move)


def is_legal(board: SearchBoard, move: Move) -> bool:
    """Whether `move` is legal in `board`, as python-chess's `is_legal` (castling written as
    the king's two-square move): for a move read back through a position's key, which two
    positions share only by rare chance."""
    if is_legal_quiet(board, move):
        return True
    return move in legal_moves(board, BB_SQUARES[move.from_square], BB_SQUARES[move.to_square])


def _king_safe_after(board: SearchBoard, move: Move) -> bool:
    """Whether the pseudo-legal `move` leaves the mover's king unattacked."""
    board.push(move)
    king = board.kings & board.side(not board.turn)
    safe = not attackers(board, board.turn, lowest_square(king), board.occupied)
    board.pop()
    return safe


def _pinned(board: SearchBoard, king: int, own: i64, occupied: i64) -> i64:
    """The side to move's pieces pinned to its `king` (python-chess's `_slider_blockers`)."""
    snipers = (ROOK_LINES[king] & (board.rooks | board.queens)) | (
        BISHOP_LINES[king] & (board.bishops | board.queens)
    )
    return lone_blockers(king, snipers & board.side(not board.turn), occupied) & own


def _piece_attacks(piece_type: int, square: int, occupied: i64) -> i64:
    """The squares a knight, bishop, rook or queen (`piece_type`) on `square` attacks."""
    if piece_type == KNIGHT:
        return BB_KNIGHT_ATTACKS[square]
    if piece_type == BISHOP:
        return bishop_attacks(square, occupied)
    if piece_type == ROOK:
        return rook_attacks(square, occupied)
    return bishop_attacks(square, occupied) | rook_attacks(square, occupied)


def _add_pawn_move(moves: list[Move], from_square: int, to_square: int) -> None:
    """A pawn's move, as the four promotions in python-chess's order on the last rank."""
    if to_square < 8 or to_square >= 56:
        for piece in (QUEEN, ROOK, BISHOP, KNIGHT):
            moves.append(Move(from_square, to_square, piece))
    else:
        moves.append(MOVES[from_square << 6 | to_square])
