"""The review of a whole game from an evaluation of each of its positions.

Positions are numbered by the half-moves before them: position 0 is the start, position
``i`` the one after move ``i``. Each evaluation is White's view (``{"cp": 31}``, ``{"mate":
-3}``); ``{"mate": 0}`` is a checkmate on the board (the side to move is mated, as PGN
readers take ``#0``). A review gives every move its score, accuracy and, where it dropped
enough, a judgment with the engine's better line; each side its accuracy, average
centipawn loss and counts of inaccuracies, mistakes and blunders.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import chess

from engine.review.accuracy import (
    average_centipawn_loss,
    capped_cp,
    game_accuracy,
    win_percent,
)
from engine.review.judgment import PovScore, Verdict, judge
from engine.rules.game import GameState
from engine.rules.wire import (
    BudgetJSON,
    GameEvent,
    JudgmentJSON,
    MoveReviewJSON,
    PlayerReviewJSON,
    ReviewJSON,
    ScoreJSON,
)

__all__ = [
    "VARIATION_PLIES",
    "PositionEval",
    "asks_for_review",
    "build_review",
    "meets_budget",
    "terminal_score",
]

VARIATION_PLIES = 20
"""The longest better line given with a judged move (half-moves), as lichess gives."""


@dataclass(frozen=True, slots=True)
class PositionEval:
    """One position's evaluation: White-view ``score``, the ``depth`` reached (0 for a
    position decided on the board), the engine's ``best`` move and line (UCI)."""

    score: ScoreJSON
    depth: int
    best: str | None = None
    pv: tuple[str, ...] = ()


def terminal_score(board: chess.Board) -> ScoreJSON | None:
    """The score of a position with nothing to search, else None: ``{"mate": 0}`` for a
    checkmate, ``{"cp": 0}`` for a stalemate or a draw the position alone decides
    (insufficient material, the 75-move rule)."""
    if board.is_checkmate():
        return {"mate": 0}
    if board.is_game_over(claim_draw=False):
        return {"cp": 0}
    return None


def asks_for_review(state: GameState, events: Sequence[GameEvent]) -> bool:
    """Whether committing ``events``, which led to ``state``, asks for the game's review:
    they end it, it has a move, and it has no review (a review does not depend on the
    result, so correcting only the result keeps it; a takeback drops it)."""
    return (
        state.is_finished
        and state.ply > 0
        and state.review is None
        and any(e["type"] == "end" for e in events)
    )


def meets_budget(budget: BudgetJSON, depth: int, nodes: int) -> bool:
    """Whether a search that reached ``depth`` with ``nodes`` nodes spent the budget."""
    if "nodes" in budget:
        return nodes >= budget["nodes"]
    return depth >= budget.get("depth", 0)


def build_review(
    initial_fen: str,
    moves: Sequence[str],
    evals: Sequence[PositionEval],
    *,
    engine: str,
    budget: BudgetJSON,
    completed_at: str,
) -> ReviewJSON:
    """The review of the game from ``initial_fen`` through ``moves`` (UCI, legal), with one
    evaluation per position (``len(moves) + 1``, the start position first).

    A move that is the engine's own choice is never judged (a fixed-depth search may see
    its own move drop one ply deeper). Raises ValueError when the counts do not match or a
    move is illegal.
    """
    if len(evals) != len(moves) + 1:
        raise ValueError(f"{len(moves)} moves need {len(moves) + 1} evaluations, not {len(evals)}")
    board = chess.Board(initial_fen)
    first = board.turn
    white_views: list[PovScore] = []
    boards: list[chess.Board] = []
    for i, evaluation in enumerate(evals):
        white_views.append(_white_view(evaluation.score, board.turn))
        boards.append(board.copy(stack=False))
        if i < len(moves):
            move = chess.Move.from_uci(moves[i])
            if not board.is_legal(move):
                raise ValueError(f"move {i + 1} ({moves[i]}) is illegal")
            board.push(move)
    percents = [win_percent(v.cp, v.mate_sign) for v in white_views]
    accuracy = game_accuracy(percents, first)
    loss = average_centipawn_loss([capped_cp(v.cp, v.mate_sign) for v in white_views], first)
    counts = {chess.WHITE: dict.fromkeys(("Inaccuracy", "Mistake", "Blunder"), 0)}
    counts[chess.BLACK] = dict(counts[chess.WHITE])
    reviewed: list[MoveReviewJSON] = []
    for i, uci in enumerate(moves):
        before_board = boards[i]
        mover = before_board.turn
        before = evals[i]
        verdict = None
        if before.best != uci:
            verdict = judge(_pov(white_views[i], mover), _pov(white_views[i + 1], mover))
        judgment: JudgmentJSON | None = None
        variation: list[str] = []
        if verdict is not None:
            counts[mover][verdict.name] += 1
            line = _legal_line(before_board, before.pv)
            variation = [m.uci() for m in line]
            judgment = {
                "name": verdict.name,
                "nag": verdict.nag,
                "comment": _comment(verdict, before_board, line),
            }
        reviewed.append(
            {
                "ply": i + 1,
                "uci": uci,
                "san": before_board.san(chess.Move.from_uci(uci)),
                "score": evals[i + 1].score,
                "depth": evals[i + 1].depth,
                "accuracy": round(accuracy.moves[i], 1),
                "judgment": judgment,
                "best": before.best,
                "variation": variation,
            }
        )
    start = evals[0]

    def side(color: chess.Color) -> PlayerReviewJSON:
        value = accuracy.white if color == chess.WHITE else accuracy.black
        return {
            "accuracy": None if value is None else round(value, 1),
            "acpl": loss.white if color == chess.WHITE else loss.black,
            "inaccuracy": counts[color]["Inaccuracy"],
            "mistake": counts[color]["Mistake"],
            "blunder": counts[color]["Blunder"],
        }

    return {
        "status": "done",
        "engine": engine,
        "budget": budget,
        "completed_at": completed_at,
        "initial": {"score": start.score, "depth": start.depth, "best": start.best},
        "white": side(chess.WHITE),
        "black": side(chess.BLACK),
        "moves": reviewed,
    }


def _white_view(score: ScoreJSON, turn: chess.Color) -> PovScore:
    """A White-view wire score as a :class:`PovScore` of White (``mate`` 0: the side to
    move is mated)."""
    if "mate" in score:
        return PovScore(mate=score["mate"], mated=score["mate"] == 0 and turn == chess.WHITE)
    return PovScore(cp=score.get("cp", 0))


def _pov(white: PovScore, color: chess.Color) -> PovScore:
    """``white`` (White's view) from ``color``'s view."""
    if color == chess.WHITE:
        return white
    if white.mate is not None:
        if white.mate == 0:
            return PovScore(mate=0, mated=not white.mated)
        return PovScore(mate=-white.mate)
    return PovScore(cp=None if white.cp is None else -white.cp)


def _legal_line(board: chess.Board, pv: Sequence[str]) -> list[chess.Move]:
    """The engine's line from ``board`` up to :data:`VARIATION_PLIES`, cut at the first move
    that is not legal there (a line is only as good as the search that gave it)."""
    line: list[chess.Move] = []
    board = board.copy(stack=False)
    for uci in pv[:VARIATION_PLIES]:
        try:
            move = chess.Move.from_uci(uci)
        except ValueError:
            break
        if not board.is_legal(move):
            break
        line.append(move)
        board.push(move)
    return line


def _comment(verdict: Verdict, board: chess.Board, line: Sequence[chess.Move]) -> str:
    """Lichess's words: ``"Blunder. Nxh4 was best."``."""
    if not line:
        return f"{verdict.reason}."
    return f"{verdict.reason}. {board.san(line[0])} was best."
