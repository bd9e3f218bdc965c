"""Move ordering for a search job: hash move, MVV-LVA captures, killer moves, history.

Alpha-beta search is only as fast as its ordering is good: the earlier the refutation is tried,
the sooner a node is cut. Moves are produced in stages so that a node cut by the hash move or a
capture never pays for generating its quiet moves, which is most of the cost of a node.
"""

from __future__ import annotations

from typing import Final

from librt.vecs import append, vec
from mypy_extensions import i64

from engine.search.bits import piece_type_at
from engine.search.board import SearchBoard
from engine.search.constants import (
    BB_ALL,
    BB_RANK_2,
    BB_RANK_7,
    BB_SQUARES,
    BISHOP,
    PAWN,
    QUEEN,
    ROOK,
)
from engine.search.evaluation import PIECE_VALUES
from engine.search.exchange import static_exchange
from engine.search.generation import (
    SidePieces,
    add_tactical,
    add_tried,
    en_passant_moves,
    is_legal_quiet,
    is_tried,
    legal_evasions,
    legal_moves,
    move_index,
    quiet_move,
    sort_falling,
    tactical_gain,
    tactical_move,
)
from engine.search.move import Move

__all__ = [
    "HASH_MOVE",
    "KILLER",
    "LOSING",
    "QUIET",
    "TACTICAL",
    "MoveOrder",
    "MovePicker",
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
_HISTORY_FLOOR: Final = -(1 << 30)


def tactical_moves(
    board: SearchBoard, min_gain: int = 0, pieces: SidePieces | None = None
) -> vec[i64]:
    """Return the legal captures and promotions of `board`, best first, each as one integer
    (`engine.search.generation.tactical_gain` and `tactical_move` read it).

    The gain is the value of the captured piece plus any promotion gain, for delta pruning;
    moves are ordered most valuable victim first, then least valuable attacker first (MVV-LVA).
    Captures of pieces worth less than `min_gain` may be left out, which saves generating them.
    `pieces` is `SidePieces(board)` when the caller has it already.
    """
    turn = board.turn
    targets = board.side(not turn)
    # The pawns one step from promoting.
    promoting = board.pawns & board.side(turn) & (BB_RANK_7 if turn else BB_RANK_2)
    scored = vec[i64](capacity=16)
    if promoting:
        for move in legal_moves(board, promoting, targets | ~board.occupied):
            gain = PIECE_VALUES[move.promotion or PAWN] - PIECE_VALUES[PAWN]
            gain += PIECE_VALUES[piece_type_at(board, move.to_square)]
            scored = add_tactical(scored, gain * 8 - PAWN, gain, move_index(move))
    # Leave out victims too small to matter; the bitboard filter is much cheaper than generating.
    if min_gain > PIECE_VALUES[PAWN]:
        targets &= ~board.pawns
        if min_gain > PIECE_VALUES[BISHOP]:
            targets &= ~(board.knights | board.bishops)
            if min_gain > PIECE_VALUES[ROOK]:
                targets &= ~board.rooks
                if min_gain > PIECE_VALUES[QUEEN]:
                    targets = 0
    if targets:
        if pieces is None:
            pieces = SidePieces(board)
        if pieces.in_check:
            # In check only evasions are legal.
            for move in legal_evasions(board, ~promoting, targets):
                gain = PIECE_VALUES[piece_type_at(board, move.to_square) or PAWN]
                order = gain * 8 - piece_type_at(board, move.from_square)
                scored = add_tactical(scored, order, gain, move_index(move))
        else:
            scored = pieces.add_captures(board, targets, promoting, scored)
    if board.ep_square is not None and min_gain <= PIECE_VALUES[PAWN]:
        for move in en_passant_moves(board, BB_ALL, BB_ALL):
            gain = PIECE_VALUES[PAWN]
            scored = add_tactical(scored, gain * 8 - PAWN, gain, move_index(move))
    # Moves of the same order keep python-chess's, which `SidePieces` keeps too.
    sort_falling(scored)
    return scored


def is_losing_capture(board: SearchBoard, move: Move, gain: int) -> bool:
    """Whether the legal capture or promotion `move`, taking `gain` by itself, loses material.

    Only a capture by a piece worth more than `gain` can lose, so only that pays for the
    static exchange evaluation.
    """
    attacker = piece_type_at(board, move.from_square) or PAWN
    return (
        PIECE_VALUES[attacker] > gain - LOSING_BELOW and static_exchange(board, move) < LOSING_BELOW
    )


class MoveOrder:
    """Killer moves and history scores gathered during a search, and the staged move order.

    A search job makes one of its own, or a game lends its own to each of its searches in
    turn, `age`d between them.
    """

    __slots__ = ("history", "killers")

    def __init__(self, max_ply: int) -> None:
        self.killers: list[list[Move | None]] = [[None, None] for _ in range(max_ply + 1)]
        # Indexed by colour * 4096 + from_square * 64 + to_square.
        self.history: list[int] = [0] * 8192

    def age(self) -> None:
        """Ready for the next search of the same game: the killers, tied to the plies of the
        last search's tree, are forgotten, and the history is halved, so that what cut off
        then still leads the quiet moves and what cuts off now soon outweighs it."""
        for killers in self.killers:
            killers[0] = None
            killers[1] = None
        self.history = [value // 2 for value in self.history]

    def record_cutoff(
        self,
        board: SearchBoard,
        move: Move,
        ply: int,
        depth: int,
        failed: list[Move],
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
            failed_index = offset | other.from_square << 6 | other.to_square
            # Floored, so that the sort keys built of it stay machine words (see
            # `SidePieces.add_quiet_moves`) however long a search lasts.
            if history[failed_index] > _HISTORY_FLOOR:
                history[failed_index] -= bonus
        index = offset | move.from_square << 6 | move.to_square
        history[index] += bonus
        if history[index] > _HISTORY_LIMIT:
            # Keep the relative order while letting recent evidence outweigh old evidence.
            self.history = [value // 2 for value in history]


_NO_KEYS: Final = vec[i64]()
_NO_LOSING: Final[list[Move]] = []

# What a `MovePicker` does at its next call.
_HASH: Final = 0
_GENERATE_TACTICAL: Final = 1
_TACTICAL: Final = 2
_KILLERS: Final = 3
_GENERATE_QUIET: Final = 4
_QUIET: Final = 5
_LOSING: Final = 6
_DONE: Final = 7


class MovePicker:
    """Every legal move of one node once, in search order: the hash move, captures and
    promotions that do not lose material (MVV-LVA), killers, quiet moves by history, then
    the losing captures.

    `next` gives the next move (None after the last) and `stage` the stage it came from
    (`HASH_MOVE` .. `LOSING`). Each stage is generated only when the moves before it are
    spent, so a node cut early never pays for its quiet moves. `hash_move` must be legal in
    `board` or None, and the board must be back in the same position at each call of `next`
    (push and pop around each move given). A class rather than a generator of
    `(stage, move)`: compiled, that would build a tuple per move.
    """

    __slots__ = (
        "_board",
        "_hash_move",
        "_index",
        "_losing",
        "_order",
        "_phase",
        "_pieces",
        "_ply",
        "_quiet",
        "_tactical",
        "_tried",
        "stage",
    )

    def __init__(
        self, order: MoveOrder, board: SearchBoard, hash_move: Move | None, ply: int
    ) -> None:
        # Every field is set here rather than by calling `reset`: compiled, the fields set in
        # `__init__` before any call that could see `self` are known to be always there, and
        # are read without a check (mypyc's always-defined analysis); set through `reset`,
        # each read in `next` would be checked (tried: no faster, by the medians 3% slower).
        self._order = order
        self._board = board
        self._hash_move = hash_move
        self._ply = ply
        self._phase = _HASH
        self._index = 0
        self._pieces: SidePieces | None = None
        # Each stage's keys are made when the stage comes (most nodes are cut before the
        # quiet moves), the losing captures' list only when there is one: until then the
        # shared empty ones, never changed (`reset` puts them back).
        self._tactical = _NO_KEYS
        self._losing = _NO_LOSING
        # The moves given before the quiet stage, packed (see `add_tried`).
        self._tried: i64 = 0
        # Each quiet move as one integer: its sort key, then `from_square << 6 | to_square`
        # in the low 12 bits (see `SidePieces.add_quiet_moves`).
        self._quiet = _NO_KEYS
        self.stage = HASH_MOVE

    def reset(self, hash_move: Move | None) -> None:
        """Start again at the same ply of the same board, which now stands in another position
        (`hash_move` legal in it, or None): a search keeps one picker per ply rather than make
        one per node."""
        self._hash_move = hash_move
        self._phase = _HASH
        self._index = 0
        self._pieces = None
        self._tactical = _NO_KEYS
        self._losing = _NO_LOSING
        self._tried = 0
        self._quiet = _NO_KEYS
        self.stage = HASH_MOVE

    def next(self) -> Move | None:
        """The next move, or None when every legal move has been given."""
        board = self._board
        hash_move = self._hash_move
        while True:
            phase = self._phase
            if phase == _HASH:
                self._phase = _GENERATE_TACTICAL
                if hash_move is not None:
                    self.stage = HASH_MOVE
                    return hash_move
            elif phase == _GENERATE_TACTICAL:
                pieces = self._pieces = SidePieces(board)
                self._tactical = tactical_moves(board, 0, pieces)
                self._tried = 0 if hash_move is None else add_tried(0, hash_move)
                self._index = 0
                self._phase = _TACTICAL
            elif phase == _TACTICAL:
                tactical = self._tactical
                while self._index < len(tactical):
                    packed = tactical[self._index]
                    self._index += 1
                    move = tactical_move(packed)
                    if move == hash_move:
                        continue
                    if is_losing_capture(board, move, tactical_gain(packed)):
                        # Made for the few nodes that have such a capture.
                        if self._losing is _NO_LOSING:
                            self._losing = []
                        self._losing.append(move)
                        continue
                    self.stage = TACTICAL
                    return move
                self._index = 0
                self._phase = _KILLERS
            elif phase == _KILLERS:
                killers = self._order.killers[self._ply]
                while self._index < len(killers):
                    killer = killers[self._index]
                    self._index += 1
                    if (
                        killer is not None
                        and killer != hash_move
                        and not killer.promotion
                        and not board.side(not board.turn) & BB_SQUARES[killer.to_square]
                        and is_legal_quiet(board, killer)
                    ):
                        self._tried = add_tried(self._tried, killer)
                        self.stage = KILLER
                        return killer
                self._phase = _GENERATE_QUIET
            elif phase == _GENERATE_QUIET:
                self._generate_quiet()
                self._index = 0
                self._phase = _QUIET
            elif phase == _QUIET:
                quiet = self._quiet
                if self._index < len(quiet):
                    packed = quiet[self._index]
                    self._index += 1
                    self.stage = QUIET
                    return quiet_move(packed)
                self._index = 0
                self._phase = _LOSING
            elif phase == _LOSING:
                losing = self._losing
                if self._index < len(losing):
                    self._index += 1
                    self.stage = LOSING
                    return losing[self._index - 1]
                self._phase = _DONE
            else:
                return None

    def _generate_quiet(self) -> None:
        """The quiet moves not given yet, best history first, equal histories in
        python-chess's order (history as it stands now: the moves before have changed it)."""
        board = self._board
        pieces = self._pieces
        assert pieces is not None
        history = self._order.history
        offset = board.turn << 12
        tried = self._tried
        scored = vec[i64](capacity=64)
        if pieces.in_check:
            ep_square = board.ep_square
            evasions = legal_evasions(board, BB_ALL, ~board.side(not board.turn))
            # Equal histories in python-chess's order: a falling sequence number breaks ties.
            sequence = len(evasions)
            for move in evasions:
                sequence -= 1
                index = move.from_square << 6 | move.to_square
                if move.promotion or is_tried(tried, index):
                    continue
                if move.to_square == ep_square and board.is_en_passant(move):
                    continue
                scored = append(scored, (history[offset | index] << 8 | sequence) << 12 | index)
        else:
            scored = pieces.add_quiet_moves(board, tried, history, offset, scored)
        sort_falling(scored)
        self._quiet = scored
