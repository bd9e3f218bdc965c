"""Winning chances, the accuracy of a move and of a game, and the average centipawn loss.

All of lichess's figures rest on one curve: the winning chances of a centipawn score,
``2 / (1 + exp(-0.00368208 * cp)) - 1`` in [-1, 1], a logistic fitted on rated games. A
"win percent" is the same on 0-100 with the score capped at +-1000 cp; a mate counts as the
cap. A move's accuracy is an exponential of the drop in its mover's win percent; a game's is
the mean of a volatility-weighted mean and a harmonic mean of its moves' accuracies, so
that one blunder in a calm game weighs more than one in a wild position, and a bad move
is not averaged away by many easy ones.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import chess

__all__ = [
    "CP_CEILING",
    "CentipawnLoss",
    "GameAccuracy",
    "average_centipawn_loss",
    "capped_cp",
    "game_accuracy",
    "move_accuracy",
    "win_percent",
    "winning_chances",
]

CP_CEILING = 1000
"""Scores beyond +-1000 cp are capped there for win percents and centipawn losses; a mate
counts as the cap."""

_WIN_SLOPE = 0.00368208


def winning_chances(cp: float) -> float:
    """The winning chances of ``cp`` (from one side's view) on [-1, 1]; not capped."""
    return max(-1.0, min(1.0, 2 / (1 + math.exp(-_WIN_SLOPE * cp)) - 1))


def capped_cp(cp: int | None, mate_sign: int) -> int:
    """A score as centipawns within +-:data:`CP_CEILING`: ``cp`` capped, or a mate (``cp``
    None) as the cap with ``mate_sign`` (+1 for the side whose view it is, -1 against)."""
    if cp is None:
        return CP_CEILING if mate_sign > 0 else -CP_CEILING
    return max(-CP_CEILING, min(CP_CEILING, cp))


def win_percent(cp: int | None, mate_sign: int = 0) -> float:
    """The win percent (0-100) of a score: ``cp``, or a mate for ``mate_sign`` (see
    :func:`capped_cp`)."""
    return 50 + 50 * winning_chances(capped_cp(cp, mate_sign))


def move_accuracy(before: float, after: float) -> float:
    """The accuracy (0-100) of a move that took its mover's win percent from ``before`` to
    ``after``: 100 when it did not drop, then falling exponentially with the drop (about 81
    for a drop of 5, 41 for 20, 5 for 60; lichess adds 1 for the engine's own uncertainty)."""
    if after >= before:
        return 100.0
    raw = 103.1668100711649 * math.exp(-0.04354415386753951 * (before - after)) - 3.166924740191411
    return max(0.0, min(100.0, raw + 1))


@dataclass(frozen=True, slots=True)
class GameAccuracy:
    """Each side's game accuracy (None for a side that made no move) and each move's."""

    white: float | None
    black: float | None
    moves: tuple[float, ...]


def game_accuracy(white_percents: Sequence[float], first: chess.Color) -> GameAccuracy:
    """The accuracies of a game from White's win percent in each position (the start
    position first, then one per half-move); ``first`` moved first.

    Each move is weighted by the volatility around it: the standard deviation of the win
    percents in a window of ``n // 10`` positions (at least 2, at most 8; the first windows
    repeat the first one), kept within [0.5, 12]. A side's accuracy is the mean of its
    weighted mean and its harmonic mean (each accuracy counted as at least 1 there).
    """
    n = len(white_percents) - 1
    if n <= 0:
        return GameAccuracy(None, None, ())
    size = max(2, min(8, n // 10))
    first_window = list(white_percents[:size])
    windows = [first_window] * (min(size, len(white_percents)) - 2)
    windows += [
        list(white_percents[i : i + size]) for i in range(max(1, len(white_percents) - size + 1))
    ]
    weights = [max(0.5, min(12.0, _deviation(window))) for window in windows]
    accuracies: list[float] = []
    by_side: dict[chess.Color, list[tuple[float, float]]] = {chess.WHITE: [], chess.BLACK: []}
    for i in range(n):
        mover = first if i % 2 == 0 else not first
        before, after = white_percents[i], white_percents[i + 1]
        if mover == chess.BLACK:
            before, after = 100 - before, 100 - after
        accuracy = move_accuracy(before, after)
        accuracies.append(accuracy)
        by_side[mover].append((accuracy, weights[i]))
    return GameAccuracy(
        _side_accuracy(by_side[chess.WHITE]),
        _side_accuracy(by_side[chess.BLACK]),
        tuple(accuracies),
    )


def _deviation(values: Sequence[float]) -> float:
    """The population standard deviation."""
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


def _side_accuracy(moves: Sequence[tuple[float, float]]) -> float | None:
    if not moves:
        return None
    total_weight = sum(weight for _, weight in moves)
    weighted = sum(accuracy * weight for accuracy, weight in moves) / total_weight
    harmonic = len(moves) / sum(1 / max(1.0, accuracy) for accuracy, _ in moves)
    # Within [0, 100] although rounding can take a weighted mean of 100s just past 100.
    return min(100.0, (weighted + harmonic) / 2)


@dataclass(frozen=True, slots=True)
class CentipawnLoss:
    """Each side's average centipawn loss (None for a side that made no move)."""

    white: int | None
    black: int | None


def average_centipawn_loss(white_cps: Sequence[int], first: chess.Color) -> CentipawnLoss:
    """Average centipawn loss per side from White's capped score in each position (the start
    position first; see :func:`capped_cp`): what each move gave away, never less than 0,
    averaged over the side's moves and rounded down, as lichess does."""
    losses: dict[chess.Color, list[int]] = {chess.WHITE: [], chess.BLACK: []}
    for i in range(len(white_cps) - 1):
        mover = first if i % 2 == 0 else not first
        change = white_cps[i + 1] - white_cps[i]
        losses[mover].append(max(0, -change if mover == chess.WHITE else change))
    white, black = losses[chess.WHITE], losses[chess.BLACK]
    return CentipawnLoss(
        sum(white) // len(white) if white else None, sum(black) // len(black) if black else None
    )
