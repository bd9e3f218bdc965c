"""Iterative-deepening alpha-beta search of one position, pure and synchronous.

`iter_search` runs a search job: a fresh board, and a fresh `SearchMemory` (transposition
table, move-ordering history, pawn table) unless the caller lends one: a UCI game keeps its
memory from move to move.
It yields a `SearchInfo` after every completed depth; the caller stops it by ceasing to iterate,
by `max_depth` / `max_nodes`, or within a depth through `should_stop`, which is polled every
`POLL_NODES` nodes (the core never reads a clock: a deadline is a `should_stop` that reads one).

Inside: negamax with principal variation search and aspiration windows, a quiescence search of
captures and promotions, check extension, null-move and futility pruning, late move reductions,
and mate scores corrected for distance through the transposition table.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Final

import chess
from librt.vecs import append, vec
from mypy_extensions import i64

from engine.search.bits import in_check as side_in_check
from engine.search.board import PositionKey, SearchBoard
from engine.search.checks import CheckSquares
from engine.search.constants import (
    WHITE,
)
from engine.search.endings import scale_drawish
from engine.search.evaluation import (
    blend,
    evaluate_terms,
    move_delta,
    positional_terms,
)
from engine.search.generation import is_legal, legal_moves, tactical_gain, tactical_move
from engine.search.move import Move
from engine.search.ordering import (
    HASH_MOVE,
    KILLER,
    QUIET,
    MoveOrder,
    MovePicker,
    is_losing_capture,
    tactical_moves,
)
from engine.search.pawns import PawnTable
from engine.search.transposition import (
    EXACT,
    LOWER,
    MATE,
    MATE_BOUND,
    UPPER,
    TranspositionTable,
    entry_depth,
    entry_flag,
    entry_move,
    entry_score,
    score_from_table,
    score_to_table,
)

__all__ = ["POLL_NODES", "SearchInfo", "SearchMemory", "iter_search"]

POLL_NODES: Final = 64
"""How many nodes pass between two calls of `should_stop` (2-3 ms of search on one core)."""

_MAX_PLY: Final = 100
_INFINITY: Final = MATE + 1
_NULL_MOVE: Final = Move(0, 0)
_ASPIRATION_CP: Final = 35
_FUTILITY_MARGINS: Final[tuple[int, ...]] = (0, 150, 320)
_REVERSE_FUTILITY_CP: Final = 110
_DELTA_CP: Final = 180
_LATE_MOVE_COUNTS: Final[tuple[int, ...]] = (0, 7, 12, 20)
# Reductions grow with both depth and move number; the log-log shape is the common one.
_LMR: Final = tuple(
    tuple(0 if d < 3 or n < 3 else int(0.6 + math.log(d) * math.log(n) / 2.2) for n in range(64))
    for d in range(_MAX_PLY + 2)
)


@dataclass(frozen=True, slots=True)
class SearchInfo:
    """The result of one completed depth of a search.

    Scores are from White's point of view: exactly one of `score_cp` and `mate` is set.
    `mate` counts moves of the mating side: +3 means White mates in 3, -3 Black mates in 3.
    `best` and `pv` are UCI; `pv[0] == best` and the PV is legal from the searched position.
    `nodes` counts every node the job has visited so far, all depths included; `seldepth` is
    the deepest ply from the root the job has reached so far, quiescence included. `complete`
    is False only for the last info of a search asked for `partial` results (see `iter_search`).
    `multipv` is the line's rank in a search for several lines (1 is the best).
    """

    depth: int
    score_cp: int | None
    mate: int | None
    best: str
    pv: tuple[str, ...]
    nodes: int
    seldepth: int = 0
    complete: bool = True
    multipv: int = 1


class SearchMemory:
    """What one game's searches pass on, each to the next: the transposition table, the
    history of the quiet moves that cut off (halved as each search starts; the killers are
    forgotten then) and the pawn table.

    The table and the pawn table hold results per position, valid wherever the game goes; the
    history only guides the order in which the moves are tried (the killers, tied to one
    tree's plies, are forgotten and every move is checked for legality before it is tried).
    A new game starts a new memory.
    """

    __slots__ = ("order", "pawns", "table")

    def __init__(self, table: TranspositionTable | None = None) -> None:
        self.table = table if table is not None else TranspositionTable()
        self.order = MoveOrder(_MAX_PLY)
        self.pawns = PawnTable()


def iter_search(
    fen: str,
    *,
    moves: Sequence[str] = (),
    max_depth: int = 64,
    max_nodes: int | None = None,
    should_stop: Callable[[], bool] | None = None,
    memory: SearchMemory | None = None,
    partial: bool = False,
    multipv: int = 1,
    searchmoves: Sequence[str] = (),
) -> Iterator[SearchInfo]:
    """Search the position `fen` deeper and deeper, yielding a `SearchInfo` per completed depth
    (per line of it with `multipv`).

    `moves` (UCI) are the moves played from `fen` to reach the position to search, as in UCI's
    `position fen ... moves ...`: the search then knows the game's history, and a line that
    repeats a position of it scores as a draw. `memory` is the game's `SearchMemory` to use
    and keep filling (its move-ordering history is aged first, see `MoveOrder.age`); without
    it the job has a fresh one of its own.

    With `partial`, a depth interrupted by `max_nodes` or `should_stop` after it has proved a
    root move better than the last completed depth's best is yielded too, as a last info with
    `complete=False`: its `best` is that move and its score is a bound, not exact. A player
    with a clock wants that move; an analysis wants complete depths only.

    `multipv` above 1 asks for that many best lines (as UCI's `MultiPV`): each depth searches
    the root once per line, each time without the moves that head the lines before, and
    yields the lines in rank order, each with its `multipv` (so the last info of a depth is its
    worst line: a caller wanting the best takes those with `multipv == 1`); a depth cut short
    yields the lines it completed, which are complete themselves. `searchmoves` (UCI)
    restricts the root to those moves (repeats count once), as UCI's `go searchmoves`. The
    stopping rules below follow the best line.

    The search ends after `max_depth`, once a mate score has been confirmed by two consecutive
    depths, when the job has visited `max_nodes` nodes, or when `should_stop()` returns True
    (polled every `POLL_NODES` nodes). A line interrupted by either of the last two is not
    yielded, so every yielded info is complete (but see `partial`). A position without a legal
    move (checkmate or stalemate) yields nothing: the game is over and there is nothing to
    search.

    Any repetition (a position met twice) counts as a draw, the common simplification of the
    threefold rule. Raises ValueError for a malformed FEN, an impossible position
    (python-chess `Board.status()`), a move of `moves` that is not legal where it is played or
    one of `searchmoves` that is not legal in the searched position.
    """
    game = chess.Board(fen)
    if not game.is_valid():
        raise ValueError(f"invalid position: {game.status()!r}")
    # The moves are replayed on the search's own board: python-chess's would take a few
    # milliseconds for a game's hundred moves, at every search of a position late in it.
    replay = SearchBoard(game)
    history: list[PositionKey] = []
    for uci in moves:
        move = _legal_move(replay, uci)
        history.append(replay.key())
        replay.push(move)
    # The search starts from the position itself: its board knows nothing of the moves before.
    # A repetition cannot reach past the last capture or pawn move.
    clock = replay.halfmove_clock
    history = history[max(len(history) - clock, 0) :] if clock else []
    board = SearchBoard(replay.fen())
    root_moves = legal_moves(board)
    if searchmoves:
        legal = {move.uci(): move for move in root_moves}
        unknown = [uci for uci in searchmoves if uci not in legal]
        if unknown:
            raise ValueError(f"searchmoves not legal in {board.fen()!r}: {' '.join(unknown)}")
        root_moves = [legal[uci] for uci in dict.fromkeys(searchmoves)]
    if not root_moves:
        return
    lines = max(min(multipv, len(root_moves)), 1)
    if memory is None:
        memory = SearchMemory()
    else:
        memory.order.age()
    job = _SearchJob(board, root_moves, max_nodes, should_stop, memory)
    for key in history:
        job.push_key(key)
    white_to_move = board.turn == WHITE
    scores = [0] * lines
    previous_mate: int | None = None
    best: Move | None = None
    no_line: tuple[Move, ...] = ()
    for depth in range(1, min(max_depth, _MAX_PLY - 10) + 1):
        # Typed as the attribute is, not as the empty tuple: compiled (mypyc), the reads
        # below would otherwise check the attribute against the narrower type.
        job.improved = no_line
        heads: list[Move] = []
        infos: list[SearchInfo] = []
        try:
            for rank in range(lines):
                # The best line reorders the job's root moves in place, as a single line does.
                candidates = (
                    job.root_moves if rank == 0 else [m for m in job.root_moves if m not in heads]
                )
                scores[rank] = job.search_depth(depth, scores[rank], candidates)
                line = job.pv[0] or (candidates[0],)
                heads.append(line[0])
                infos.append(job.info(depth, line, scores[rank], white_to_move, True, rank + 1))
        except _Aborted:
            yield from infos
            if not infos and partial and job.improved and job.improved[0] != best:
                yield job.info(depth, job.improved, job.improved_score, white_to_move, False)
            return
        if lines > 1:
            # The next depth tries the lines' heads first, in their order.
            job.root_moves[:] = [*heads, *(m for m in job.root_moves if m not in heads)]
        best = heads[0]
        yield from infos
        mate = infos[0].mate
        if mate is not None and mate == previous_mate:
            return
        previous_mate = mate


def _legal_move(board: SearchBoard, uci: str) -> Move:
    """The legal move of `board` that `uci` names, as python-chess's `parse_uci` reads it;
    ValueError when there is none (an illegal, null or malformed move)."""
    for move in legal_moves(board):
        if move.uci() == uci:
            return move
    # Not written as the search writes its moves (castling as the king taking its rook, say):
    # python-chess's reading decides, and words the refusal.
    game = board.to_board()
    try:
        parsed = game.parse_uci(uci)
    except ValueError:
        parsed = chess.Move.null()
    if not parsed:
        raise ValueError(f"illegal move {uci!r} in {game.fen()!r}")
    return Move.from_chess(parsed)


def _mate_in_moves(white_score: int) -> int | None:
    """Turn a White-view score into moves to mate (White mating positive), or None."""
    if abs(white_score) <= MATE_BOUND:
        return None
    plies = MATE - abs(white_score)
    moves = (plies + 1) // 2
    return moves if white_score > 0 else -moves


class _Aborted(Exception):
    """Raised inside the tree when the node budget is spent or the caller asks to stop."""


class _SearchJob:
    """The mutable state of one search job: board, tables, counters and the current PV."""

    __slots__ = (
        "board",
        "improved",
        "improved_score",
        "key_count",
        "keys",
        "max_nodes",
        "next_poll",
        "nodes",
        "order",
        "pawns",
        "pickers",
        "pv",
        "root_moves",
        "root_terms",
        "seldepth",
        "should_stop",
        "table",
    )

    def __init__(
        self,
        board: SearchBoard,
        root_moves: list[Move],
        max_nodes: int | None,
        should_stop: Callable[[], bool] | None,
        memory: SearchMemory,
    ) -> None:
        self.board = board
        self.root_moves = root_moves
        self.root_terms = evaluate_terms(board)
        self.max_nodes = max_nodes
        self.should_stop = should_stop
        self.nodes = 0
        self.seldepth = 0
        # The best root line proved so far in the depth being searched, and its score.
        self.improved: tuple[Move, ...] = ()
        self.improved_score = 0
        # Poll at the very first node, so that a stop requested before the job starts is seen.
        self.next_poll = 1
        self.table = memory.table
        self.order = memory.order
        self.pawns = memory.pawns
        # Keys of the game's positions before the root (see `iter_search`), then of those from
        # the root down to the parent of the current node: the first `key_count` of `keys`.
        self.keys = vec[i64]()
        self.key_count = 0
        self.pv: list[tuple[Move, ...]] = [() for _ in range(_MAX_PLY + 2)]
        # A move picker per ply, each reset by the node at its ply (a node's picker is its
        # own until the node returns; its children use the next ply's).
        self.pickers = [MovePicker(self.order, board, None, ply) for ply in range(_MAX_PLY + 2)]

    def info(
        self,
        depth: int,
        line: tuple[Move, ...],
        score: int,
        white_to_move: bool,
        complete: bool,
        multipv: int = 1,
    ) -> SearchInfo:
        """The `SearchInfo` of the root `line` found at `depth`, `score` from the root's
        side to move (the board itself may be left inside the tree by an abort)."""
        white_score = score if white_to_move else -score
        mate = _mate_in_moves(white_score)
        pv = tuple(move.uci() for move in line)
        return SearchInfo(
            depth=depth,
            score_cp=None if mate is not None else white_score,
            mate=mate,
            best=pv[0],
            pv=pv,
            nodes=self.nodes,
            seldepth=self.seldepth,
            complete=complete,
            multipv=multipv,
        )

    def push_key(self, key: PositionKey) -> None:
        """Append `key` to the keys the repetition check reads, with room after it for a
        line as deep as the search goes: the tree's nodes write their keys in place, one per
        ply below `_MAX_PLY` (the margin is the root's key and one to spare)."""
        keys = self.keys
        while len(keys) < self.key_count + _MAX_PLY + 3:
            keys = append(keys, 0)
        keys[self.key_count] = key
        self.keys = keys
        self.key_count += 1

    def _schedule_poll(self) -> None:
        next_poll = self.nodes + POLL_NODES
        if self.max_nodes is not None and self.max_nodes < next_poll:
            next_poll = self.max_nodes
        self.next_poll = next_poll

    def _poll(self) -> None:
        if self.max_nodes is not None and self.nodes >= self.max_nodes:
            raise _Aborted
        if self.should_stop is not None and self.should_stop():
            raise _Aborted
        self._schedule_poll()

    def _static(self, mg: int, eg: int, phase: int) -> int:
        """The static evaluation of the current position, from the side to move's view.

        `mg`, `eg` and `phase` are its incrementally kept terms; the positional terms are added.
        """
        return self._static_unscaled(mg, eg, phase)[0]

    def _static_unscaled(self, mg: int, eg: int, phase: int) -> tuple[int, int]:
        """`_static`, and the same before `scale_drawish` (both from the side to move's view)."""
        board = self.board
        extra_mg, extra_eg = positional_terms(board, self.pawns)
        unscaled = blend(mg + extra_mg, eg + extra_eg, phase)
        score = scale_drawish(board, unscaled)
        return (score, unscaled) if board.turn else (-score, -unscaled)

    def search_depth(self, depth: int, previous: int, moves: list[Move]) -> int:
        """Search the root `moves` to `depth` inside an aspiration window around `previous`;
        the move found best goes to the front of `moves`."""
        if depth < 4 or abs(previous) > MATE_BOUND:
            return self._search_root(depth, -_INFINITY, _INFINITY, moves)
        window = _ASPIRATION_CP
        alpha, beta = previous - window, previous + window
        while True:
            score = self._search_root(depth, alpha, beta, moves)
            if score <= alpha:
                alpha = max(score - window, -_INFINITY)
            elif score >= beta:
                beta = min(score + window, _INFINITY)
            else:
                return score
            window *= 2

    def _search_root(self, depth: int, alpha: int, beta: int, moves: list[Move]) -> int:
        board = self.board
        mg, eg, phase = self.root_terms
        self.pv[0] = ()
        self.push_key(board.key())
        best_score = -_INFINITY
        for index, move in enumerate(tuple(moves)):
            d_mg, d_eg, d_phase = move_delta(board, move)
            board.push(move)
            check = side_in_check(board)
            c_mg, c_eg, c_phase = mg + d_mg, eg + d_eg, phase + d_phase
            if index == 0:
                score = -self._search(depth - 1, -beta, -alpha, 1, check, c_mg, c_eg, c_phase, True)
            else:
                score = -self._search(
                    depth - 1, -alpha - 1, -alpha, 1, check, c_mg, c_eg, c_phase, True
                )
                if alpha < score < beta:
                    score = -self._search(
                        depth - 1, -beta, -alpha, 1, check, c_mg, c_eg, c_phase, True
                    )
            board.pop()
            if score > best_score:
                best_score = score
                if score > alpha:
                    alpha = score
                    self.pv[0] = self.improved = (move, *self.pv[1])
                    self.improved_score = score
                    # The next iteration, and any aspiration re-search, starts with this move.
                    moves.remove(move)
                    moves.insert(0, move)
                    if score >= beta:
                        break
        self.key_count -= 1
        return best_score

    def _search(
        self,
        depth: int,
        alpha: int,
        beta: int,
        ply: int,
        in_check: bool,
        mg: int,
        eg: int,
        phase: int,
        null_ok: bool,
    ) -> int:
        """Negamax with PVS; returns the score from the side to move's point of view."""
        if in_check:
            depth += 1
        if depth <= 0 or ply >= _MAX_PLY:
            return self._quiesce(alpha, beta, ply, in_check, mg, eg, phase)
        self.nodes += 1
        if self.nodes >= self.next_poll:
            self._poll()
        pv = self.pv
        pv[ply] = ()
        board = self.board

        # Mate distance pruning: no line from here can beat a mate already found nearer the root.
        if alpha < -MATE + ply:
            alpha = -MATE + ply
            if beta <= alpha:
                return alpha
        if beta > MATE - ply - 1:
            beta = MATE - ply - 1
            if alpha >= beta:
                return beta

        key = board.key()
        halfmove_clock = board.halfmove_clock
        if halfmove_clock >= 100:
            # The fifty-move draw, unless the move that reached it delivered mate.
            if in_check and not legal_moves(board):
                return -MATE + ply
            return 0
        keys = self.keys
        count = self.key_count
        if halfmove_clock >= 4:
            # A repetition needs at least four plies and cannot reach past an irreversible move.
            for index in range(count - 4, max(count - halfmove_clock, 0) - 1, -2):
                if keys[index] == key:
                    return 0
        if not (board.pawns | board.rooks | board.queens) and board.is_insufficient_material():
            return 0

        pv_node = beta - alpha > 1
        hash_move = None
        entry = self.table.probe(key)
        if entry:
            stored_depth = entry_depth(entry)
            flag = entry_flag(entry)
            hash_move = entry_move(entry)
            if hash_move is not None and not is_legal(board, hash_move):
                # Another position with the same key (a chance of about 2**-64): its move and
                # its score are not this one's.
                hash_move = None
                stored_depth = -1
            if stored_depth >= depth and not pv_node:
                score = score_from_table(entry_score(entry), ply)
                if (
                    flag == EXACT
                    or (flag == LOWER and score >= beta)
                    or (flag == UPPER and score <= alpha)
                ):
                    return score

        turn = board.turn
        futile = False
        if not pv_node and not in_check:
            static = self._static(mg, eg, phase)
            if depth <= 3 and beta < MATE_BOUND and static - _REVERSE_FUTILITY_CP * depth >= beta:
                return static
            if (
                null_ok
                and depth >= 2
                and static >= beta
                and board.side(turn) & ~(board.pawns | board.kings)
            ):
                # Null move: if passing still fails high, a real move would too (no zugzwang
                # while the side to move keeps a piece).
                # Deeper nodes, and those further above beta, prove the cut-off with less.
                reduction = 2 + depth // 3 + min((static - beta) // 200, 2)
                keys[count] = key
                self.key_count = count + 1
                board.push(_NULL_MOVE)
                score = -self._search(
                    depth - 1 - reduction, -beta, -beta + 1, ply + 1, False, mg, eg, phase, False
                )
                board.pop()
                self.key_count = count
                if score >= beta:
                    return beta if score >= MATE_BOUND else score
            futile = depth <= 2 and static + _FUTILITY_MARGINS[depth] <= alpha

        order = self.order
        late_move_count = _LATE_MOVE_COUNTS[depth] if depth <= 3 and not pv_node else 999
        lmr = _LMR[depth]
        keys[count] = key
        self.key_count = count + 1
        best_score = -_INFINITY
        best_move = None
        flag = UPPER
        legal = 0
        searched = 0
        quiets_searched: list[Move] = []
        checks: CheckSquares | None = None
        picker = self.pickers[ply]
        picker.reset(hash_move)
        while (move := picker.next()) is not None:
            stage = picker.stage
            legal += 1
            quiet = KILLER <= stage <= QUIET or (
                stage == HASH_MOVE and not move.promotion and not board.is_capture(move)
            )
            # Futility and late-move pruning: a quiet move that gives no check cannot lift a
            # hopeless frontier node, and late quiet moves rarely matter near the leaves.
            # Whether it checks is told without playing it where the bitboards can tell (most
            # moves asked about are pruned); the few they cannot tell about are played to see.
            prunable = searched and quiet and not in_check and (futile or legal > late_move_count)
            if prunable:
                if checks is None:
                    checks = CheckSquares(board)
                if not checks.may_check(board, move):
                    continue
            d_mg, d_eg, d_phase = move_delta(board, move)
            board.push(move)
            check = side_in_check(board)
            if prunable and not check:
                board.pop()
                continue
            # Arguments written out: compiled, a call with `*args` or through a bound method
            # goes through Python's calling convention instead of a direct C call.
            c_ply, c_mg, c_eg, c_phase = ply + 1, mg + d_mg, eg + d_eg, phase + d_phase
            if searched == 0:
                score = -self._search(
                    depth - 1, -beta, -alpha, c_ply, check, c_mg, c_eg, c_phase, True
                )
            else:
                # Principal variation search: prove the move worse with a null window, possibly
                # at reduced depth, and search it fully only when that proof fails.
                reduction = 0
                if stage == QUIET and not check and not in_check:
                    reduction = lmr[min(searched, 63)]
                    if pv_node and reduction:
                        reduction -= 1
                score = -self._search(
                    depth - 1 - reduction,
                    -alpha - 1,
                    -alpha,
                    c_ply,
                    check,
                    c_mg,
                    c_eg,
                    c_phase,
                    True,
                )
                if score > alpha and reduction:
                    score = -self._search(
                        depth - 1, -alpha - 1, -alpha, c_ply, check, c_mg, c_eg, c_phase, True
                    )
                if alpha < score < beta:
                    score = -self._search(
                        depth - 1, -beta, -alpha, c_ply, check, c_mg, c_eg, c_phase, True
                    )
            board.pop()
            searched += 1
            if score > best_score:
                best_score = score
                best_move = move
                if score > alpha:
                    alpha = score
                    flag = EXACT
                    if pv_node:
                        pv[ply] = (move, *pv[ply + 1])
                    if score >= beta:
                        flag = LOWER
                        if quiet:
                            order.record_cutoff(board, move, ply, depth, quiets_searched)
                        break
            if quiet:
                quiets_searched.append(move)
        self.key_count = count

        if legal == 0:
            return -MATE + ply if in_check else 0
        if searched == 0:
            # Every move was pruned as futile: the node is worth at most alpha.
            best_score = alpha
        self.table.store(key, depth, flag, score_to_table(best_score, ply), best_move)
        return best_score

    def _quiesce(
        self, alpha: int, beta: int, ply: int, in_check: bool, mg: int, eg: int, phase: int
    ) -> int:
        """Search captures and promotions (every evasion in check) until the position is quiet."""
        self.nodes += 1
        if self.nodes >= self.next_poll:
            self._poll()
        self.pv[ply] = ()
        if ply > self.seldepth:
            self.seldepth = ply
        board = self.board
        if ply >= _MAX_PLY:
            return self._static(mg, eg, phase)

        if in_check:
            # No standing pat in check: every evasion must be tried, and none means mate.
            best_score = -MATE + ply
            picker = self.pickers[ply]
            picker.reset(None)
            while (move := picker.next()) is not None:
                d_mg, d_eg, d_phase = move_delta(board, move)
                board.push(move)
                score = -self._quiesce(
                    -beta,
                    -alpha,
                    ply + 1,
                    side_in_check(board),
                    mg + d_mg,
                    eg + d_eg,
                    phase + d_phase,
                )
                board.pop()
                if score > best_score:
                    best_score = score
                    if score > alpha:
                        alpha = score
                        if score >= beta:
                            break
            return best_score

        static, unscaled = self._static_unscaled(mg, eg, phase)
        if static >= beta:
            return static
        if static > alpha:
            alpha = static
        best_score = static
        # Delta pruning bounds what a capture can gain from the higher of the scaled and the
        # unscaled evaluation: taking the piece that made an ending drawish (the bishop of rook
        # against bishop) gains what the scaling had taken away as well.
        base = max(static, unscaled)
        for packed in tactical_moves(board, alpha - base - _DELTA_CP + 1):
            gain = tactical_gain(packed)
            move = tactical_move(packed)
            if base + gain + _DELTA_CP <= alpha:
                break  # Moves come in falling order of gain: none of the rest can lift alpha.
            if is_losing_capture(board, move, gain):
                continue
            d_mg, d_eg, d_phase = move_delta(board, move)
            board.push(move)
            score = -self._quiesce(
                -beta, -alpha, ply + 1, side_in_check(board), mg + d_mg, eg + d_eg, phase + d_phase
            )
            board.pop()
            if score > best_score:
                best_score = score
                if score > alpha:
                    alpha = score
                    if score >= beta:
                        break
        return best_score
