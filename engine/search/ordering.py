"""Move ordering for one search job: hash move, MVV-LVA captures, killer moves, history.

Alpha-beta search is only as fast as its ordering is good: the earlier the refutation is tried,
the sooner a node is cut. Moves are produced in stages so that a node cut by the hash move or a
capture never pays for generating its quiet moves, which is most of the cost of a node.
"""

from __future__ import annotations

from collections.abc import Iterator
from operator import itemgetter
from typing import Final

import chess

from engine.search.evaluation import PIECE_VALUES
from engine.search.exchange import static_exchange

__all__ = [
    "HASH_MOVE",
    "KILLER",
    "LOSING",
    "QUIET",
    "TACTICAL",
    "MoveOrder",
    "is_losing_capture",
    "tactical_moves",
]

HASH_MOVE: Final = 0
"""Stage of the move remembered by the transposition table."""
TACTICAL: Final = 1
"""Stage of captures and promotions."""
KILLER: Final = 2
"""Stage of quiet moves that cut off a sibling node."""
QUIET: Final = 3
"""Stage of the remaining quiet moves, best history first."""
LOSING: Final = 4
"""Stage of captures that lose material once the exchange on their square is played out."""
LOSING_BELOW: Final = -50
"""A capture whose static exchange falls below this loses material (knight and bishop trade
evenly although their values differ)."""

_HISTORY_LIMIT: Final = 1 << 20
_FIRST_SCORE = itemgetter(0)
_PROMOTION_RANKS = (chess.BB_RANK_2, chess.BB_RANK_7)  # where a pawn of each colour promotes from


def tactical_moves(board: chess.Board, min_gain: int = 0) -> list[tuple[int, chess.Move]]:
    """Return the legal captures and promotions of `board` as `(gain, move)`, best first.

    `gain` is the value of the captured piece plus any promotion gain, for delta pruning; moves
    are ordered most valuable victim first, then least valuable attacker first (MVV-LVA).
    Captures of pieces worth less than `min_gain` may be left out, which saves generating them.
    """
    turn = board.turn
    piece_type_at = board.piece_type_at
    targets = board.occupied_co[not turn]
    promoting = board.pawns & board.occupied_co[turn] & _PROMOTION_RANKS[turn]
    scored: list[tuple[int, int, chess.Move]] = []
    if promoting:
        for move in board.generate_legal_moves(promoting, targets | ~board.occupied):
            gain = PIECE_VALUES[move.promotion or chess.PAWN] - PIECE_VALUES[chess.PAWN]
            gain += PIECE_VALUES[piece_type_at(move.to_square) or 0]
            scored.append((gain * 8 - chess.PAWN, gain, move))
    # Leave out victims too small to matter; the bitboard filter is much cheaper than generating.
    if min_gain > PIECE_VALUES[chess.PAWN]:
        targets &= ~board.pawns
        if min_gain > PIECE_VALUES[chess.BISHOP]:
            targets &= ~(board.knights | board.bishops)
            if min_gain > PIECE_VALUES[chess.ROOK]:
                targets &= ~board.rooks
                if min_gain > PIECE_VALUES[chess.QUEEN]:
                    targets = 0
    if targets:
        king = chess.lsb(board.kings & board.occupied_co[turn])
        if board.attackers_mask(not turn, king):
            # In check only evasions are legal, which python-chess's generator knows.
            for move in board.generate_legal_moves(~promoting, targets):
                gain = PIECE_VALUES[piece_type_at(move.to_square) or chess.PAWN]
                scored.append((gain * 8 - (piece_type_at(move.from_square) or 0), gain, move))
        else:
            _add_captures(board, turn, king, targets, promoting, scored)
    if board.ep_square is not None and min_gain <= PIECE_VALUES[chess.PAWN]:
        for move in board.generate_legal_ep():
            scored.append(
                (PIECE_VALUES[chess.PAWN] * 8 - chess.PAWN, PIECE_VALUES[chess.PAWN], move)
            )
    # Stable: moves of the same score keep python-chess's order (pieces before pawns, each by
    # falling square), which the captures below are generated in.
    scored.sort(key=_FIRST_SCORE, reverse=True)
    return [(gain, move) for _, gain, move in scored]


def _add_captures(
    board: chess.Board,
    turn: chess.Color,
    king: chess.Square,
    targets: chess.Bitboard,
    promoting: chess.Bitboard,
    scored: list[tuple[int, int, chess.Move]],
) -> None:
    """Append the legal captures of `targets` (not by `promoting` pawns) of a side not in
    check, as `(MVV-LVA score, gain, move)`, in python-chess's generation order.

    Straight from python-chess's attack tables: its generic generator pays for every piece's
    quiet moves, castling and a legality test per move, and captures are asked for at most
    nodes of a search.
    """
    own = board.occupied_co[turn]
    occupied = board.occupied
    piece_type_at = board.piece_type_at
    values = PIECE_VALUES
    squares = chess.BB_SQUARES
    king_bb = squares[king]
    pinned = _pinned(board, king, own, occupied)
    # Piece type by piece type: ties of score (same taker type and victim value) keep
    # python-chess's order, falling from-square then falling to-square, all the same.
    diagonal = chess.BB_DIAG_ATTACKS
    diagonal_masks = chess.BB_DIAG_MASKS
    ranks = chess.BB_RANK_ATTACKS
    rank_masks = chess.BB_RANK_MASKS
    files = chess.BB_FILE_ATTACKS
    file_masks = chess.BB_FILE_MASKS
    for attacker, pieces in (
        (chess.KNIGHT, board.knights),
        (chess.BISHOP, board.bishops),
        (chess.ROOK, board.rooks),
        (chess.QUEEN, board.queens),
    ):
        for from_square in chess.scan_reversed(pieces & own):
            if attacker == chess.KNIGHT:
                attacks = chess.BB_KNIGHT_ATTACKS[from_square] & targets
            elif attacker == chess.BISHOP:
                attacks = diagonal[from_square][diagonal_masks[from_square] & occupied] & targets
            else:
                attacks = (
                    ranks[from_square][rank_masks[from_square] & occupied]
                    | files[from_square][file_masks[from_square] & occupied]
                )
                if attacker == chess.QUEEN:
                    attacks |= diagonal[from_square][diagonal_masks[from_square] & occupied]
                attacks &= targets
            if not attacks:
                continue
            is_pinned = pinned & squares[from_square]
            for to_square in chess.scan_reversed(attacks):
                if is_pinned and not chess.ray(from_square, to_square) & king_bb:
                    continue
                gain = values[piece_type_at(to_square) or chess.PAWN]
                scored.append((gain * 8 - attacker, gain, chess.Move(from_square, to_square)))
    for to_square in chess.scan_reversed(chess.BB_KING_ATTACKS[king] & targets):
        if not board.is_attacked_by(not turn, to_square):
            gain = values[piece_type_at(to_square) or chess.PAWN]
            scored.append((gain * 8 - chess.KING, gain, chess.Move(king, to_square)))
    pawn_attacks = chess.BB_PAWN_ATTACKS[turn]
    for from_square in chess.scan_reversed(own & board.pawns & ~promoting):
        attacks = pawn_attacks[from_square] & targets
        if not attacks:
            continue
        is_pinned = pinned & squares[from_square]
        for to_square in chess.scan_reversed(attacks):
            if is_pinned and not chess.ray(from_square, to_square) & king_bb:
                continue
            gain = values[piece_type_at(to_square) or chess.PAWN]
            scored.append((gain * 8 - chess.PAWN, gain, chess.Move(from_square, to_square)))


def _add_quiet_moves(
    board: chess.Board,
    turn: chess.Color,
    king: chess.Square,
    tried: set[int],
    history: list[int],
    offset: int,
    scored: list[tuple[int, chess.Move]],
) -> None:
    """Append the legal moves of a side not in check that neither capture nor promote (nor
    take en passant) and are not in `tried` (`from_square << 6 | to_square`), as
    `(key, move)`: the key sorts by history first, then in python-chess's generation order.
    """
    own = board.occupied_co[turn]
    occupied = board.occupied
    empty = ~occupied & chess.BB_ALL
    squares = chess.BB_SQUARES
    king_bb = squares[king]
    pinned = _pinned(board, king, own, occupied)
    diagonal = chess.BB_DIAG_ATTACKS
    diagonal_masks = chess.BB_DIAG_MASKS
    ranks = chess.BB_RANK_ATTACKS
    rank_masks = chess.BB_RANK_MASKS
    files = chess.BB_FILE_ATTACKS
    file_masks = chess.BB_FILE_MASKS
    # python-chess's order, as a rank that falls as the move comes later: pieces by falling
    # from- then to-square, castling, single then double pawn pushes by falling to-square.
    for attacker, pieces in (
        (chess.KNIGHT, board.knights),
        (chess.BISHOP, board.bishops),
        (chess.ROOK, board.rooks),
        (chess.QUEEN, board.queens),
    ):
        for from_square in chess.scan_reversed(pieces & own):
            if attacker == chess.KNIGHT:
                moves = chess.BB_KNIGHT_ATTACKS[from_square] & empty
            elif attacker == chess.BISHOP:
                moves = diagonal[from_square][diagonal_masks[from_square] & occupied] & empty
            else:
                moves = (
                    ranks[from_square][rank_masks[from_square] & occupied]
                    | files[from_square][file_masks[from_square] & occupied]
                )
                if attacker == chess.QUEEN:
                    moves |= diagonal[from_square][diagonal_masks[from_square] & occupied]
                moves &= empty
            if not moves:
                continue
            is_pinned = pinned & squares[from_square]
            base = offset | from_square << 6
            order = 16383 - (63 - from_square) * 64 - 63
            for to_square in chess.scan_reversed(moves):
                if is_pinned and not chess.ray(from_square, to_square) & king_bb:
                    continue
                if from_square << 6 | to_square in tried:
                    continue
                scored.append(
                    (
                        history[base | to_square] * 16384 + order + to_square,
                        chess.Move(from_square, to_square),
                    )
                )
    base = offset | king << 6
    order = 16383 - (63 - king) * 64 - 63
    for to_square in chess.scan_reversed(chess.BB_KING_ATTACKS[king] & empty):
        if king << 6 | to_square in tried or board.is_attacked_by(not turn, to_square):
            continue
        scored.append(
            (history[base | to_square] * 16384 + order + to_square, chess.Move(king, to_square))
        )
    if board.castling_rights & own:
        for move in board.generate_castling_moves():
            if move.from_square << 6 | move.to_square in tried:
                continue
            order = 16383 - 4096 - (0 if move.to_square > move.from_square else 1)
            key = history[offset | move.from_square << 6 | move.to_square] * 16384 + order
            scored.append((key, move))
    pawns = board.pawns & own
    if turn:
        singles = pawns << 8 & empty & ~chess.BB_RANK_8
        doubles = (pawns << 8 & empty) << 8 & empty & chess.BB_RANK_4
        step = 8
    else:
        singles = pawns >> 8 & empty & ~chess.BB_RANK_1
        doubles = (pawns >> 8 & empty) >> 8 & empty & chess.BB_RANK_5
        step = -8
    for first, targets in ((4098, singles), (4162, doubles & chess.BB_ALL)):
        for to_square in chess.scan_reversed(targets):
            from_square = to_square - step if first == 4098 else to_square - 2 * step
            if pinned & squares[from_square] and not chess.ray(from_square, to_square) & king_bb:
                continue
            if from_square << 6 | to_square in tried:
                continue
            order = 16383 - first - (63 - to_square)
            key = history[offset | from_square << 6 | to_square] * 16384 + order
            scored.append((key, chess.Move(from_square, to_square)))


def _pinned(
    board: chess.Board, king: chess.Square, own: chess.Bitboard, occupied: chess.Bitboard
) -> chess.Bitboard:
    """The pieces of `own` that alone stand between their `king` and an enemy slider."""
    snipers = (
        (chess.BB_RANK_ATTACKS[king][0] | chess.BB_FILE_ATTACKS[king][0])
        & (board.rooks | board.queens)
    ) | (chess.BB_DIAG_ATTACKS[king][0] & (board.bishops | board.queens))
    pinned = 0
    for sniper in chess.scan_reversed(snipers & ~own & occupied):
        between = chess.between(king, sniper) & occupied
        if between and not between & (between - 1):
            pinned |= between
    return pinned & own


def is_losing_capture(board: chess.Board, move: chess.Move, gain: int) -> bool:
    """Whether the legal capture or promotion `move`, taking `gain` by itself, loses material.

    Only a capture by a piece worth more than `gain` can lose, so only that pays for the
    static exchange evaluation.
    """
    attacker = board.piece_type_at(move.from_square) or chess.PAWN
    return (
        PIECE_VALUES[attacker] > gain - LOSING_BELOW and static_exchange(board, move) < LOSING_BELOW
    )


class MoveOrder:
    """Killer moves and history scores gathered during one search, and the staged move order.

    Create one per search job; it remembers nothing across jobs.
    """

    __slots__ = ("history", "killers")

    def __init__(self, max_ply: int) -> None:
        self.killers: list[list[chess.Move | None]] = [[None, None] for _ in range(max_ply + 1)]
        # Indexed by colour * 4096 + from_square * 64 + to_square.
        self.history: list[int] = [0] * 8192

    def moves(
        self, board: chess.Board, hash_move: chess.Move | None, ply: int
    ) -> Iterator[tuple[int, chess.Move]]:
        """Yield every legal move of `board` once, as `(stage, move)`, in search order.

        `hash_move` must be legal in `board` or None. The board must be back in the same position
        whenever the iterator is resumed (push and pop around each yielded move).
        """
        if hash_move is not None:
            yield HASH_MOVE, hash_move
        them = not board.turn
        losing: list[chess.Move] = []
        for gain, move in tactical_moves(board):
            if move == hash_move:
                continue
            if is_losing_capture(board, move, gain):
                losing.append(move)
            else:
                yield TACTICAL, move

        them_mask = board.occupied_co[them]
        killers = self.killers[ply]
        tried = [hash_move]
        for killer in killers:
            if (
                killer is not None
                and killer != hash_move
                and not killer.promotion
                and not them_mask & chess.BB_SQUARES[killer.to_square]
                and board.is_legal(killer)
            ):
                tried.append(killer)
                yield KILLER, killer

        turn = board.turn
        history = self.history
        offset = turn << 12
        king = chess.lsb(board.kings & board.occupied_co[turn])
        scored: list[tuple[int, chess.Move]] = []
        if board.attackers_mask(not turn, king):
            ep_square = board.ep_square
            for move in board.generate_legal_moves(chess.BB_ALL, ~them_mask):
                if move.promotion or move in tried:
                    continue
                if move.to_square == ep_square and board.is_en_passant(move):
                    continue
                scored.append((history[offset | move.from_square << 6 | move.to_square], move))
        else:
            tried_keys = {m.from_square << 6 | m.to_square for m in tried if m is not None}
            _add_quiet_moves(board, turn, king, tried_keys, history, offset, scored)
        # Best history first; equal histories in python-chess's order (the sort is stable, and
        # the keys of `_add_quiet_moves` carry that order).
        scored.sort(key=_FIRST_SCORE, reverse=True)
        for _, move in scored:
            yield QUIET, move
        for move in losing:
            yield LOSING, move

    def record_cutoff(
        self,
        board: chess.Board,
        move: chess.Move,
        ply: int,
        depth: int,
        failed: list[chess.Move],
    ) -> None:
        """Remember that the quiet `move` of `board` cut off the node at `ply`, `depth` deep.

        `failed` are the quiet moves searched before it without a cutoff; they lose history.
        """
        killers = self.killers[ply]
        if killers[0] != move:
            killers[1] = killers[0]
            killers[0] = move
        history = self.history
        offset = board.turn << 12
        bonus = depth * depth
        for other in failed:
            history[offset | other.from_square << 6 | other.to_square] -= bonus
        index = offset | move.from_square << 6 | move.to_square
        history[index] += bonus
        if history[index] > _HISTORY_LIMIT:
            # Keep the relative order while letting recent evidence outweigh old evidence.
            self.history = [value // 2 for value in history]
