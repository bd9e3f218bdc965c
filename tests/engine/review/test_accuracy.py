"""Winning chances, move and game accuracy, average centipawn loss (lichess's figures)."""

from __future__ import annotations

import chess
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.review.accuracy import (
    CP_CEILING,
    average_centipawn_loss,
    game_accuracy,
    move_accuracy,
    win_percent,
    winning_chances,
)

START = win_percent(15)
percents = st.floats(min_value=0, max_value=100, allow_nan=False)


def white_percents(cps: list[int]) -> list[float]:
    """White's win percents: lichess's start (+0.15), then one per half-move."""
    return [START] + [win_percent(cp) for cp in cps]


def test_win_percent_is_even_at_zero_symmetric_and_capped() -> None:
    """0 cp is 50%, +x and -x sum to 100, scores beyond the ceiling and mates are the cap."""
    assert win_percent(0) == pytest.approx(50)
    assert win_percent(300) + win_percent(-300) == pytest.approx(100)
    assert win_percent(5000) == win_percent(CP_CEILING)
    assert win_percent(None, 1) == win_percent(CP_CEILING)
    assert win_percent(None, -1) == win_percent(-CP_CEILING)
    assert 97 < win_percent(CP_CEILING) < 98


@given(st.integers(-10_000, 10_000), st.integers(-10_000, 10_000))
def test_winning_chances_are_bounded_and_increase_with_the_score(a: int, b: int) -> None:
    """Winning chances stay in [-1, 1] and never fall as the score rises."""
    low, high = sorted((a, b))
    assert -1 <= winning_chances(low) <= winning_chances(high) <= 1


@given(percents, percents)
def test_move_accuracy_is_a_percentage_and_perfect_without_a_drop(
    before: float, after: float
) -> None:
    """A move's accuracy is within [0, 100], and 100 when the mover's chances did not drop."""
    accuracy = move_accuracy(before, after)
    assert 0 <= accuracy <= 100
    if after >= before:
        assert accuracy == 100


@given(percents, st.floats(0, 100), st.floats(0, 100))
def test_move_accuracy_falls_as_the_drop_grows(before: float, drop: float, more: float) -> None:
    """The bigger the drop in winning chances, the lower (never higher) the accuracy."""
    small, large = sorted((drop, more))
    assert move_accuracy(before, before - small) >= move_accuracy(before, before - large)


def test_move_accuracy_known_points() -> None:
    """About 81 for a drop of 5 points, 41 for 20, 5 for 60."""
    assert move_accuracy(70, 65) == pytest.approx(80.8, abs=0.1)
    assert move_accuracy(70, 50) == pytest.approx(41.0, abs=0.1)
    assert move_accuracy(80, 20) == pytest.approx(5.4, abs=0.1)


@pytest.mark.parametrize(
    ("cps", "first", "white", "black"),
    [
        ([15, 15], chess.WHITE, 100, 100),
        ([-900, -900], chess.WHITE, 10, 100),
        ([15, 900], chess.WHITE, 100, 10),
        ([-900, 0], chess.WHITE, 10, 10),
        ([15] * 20 + [-900], chess.WHITE, 50, 100),
        ([15] * 21 + [900], chess.WHITE, 100, 50),
        ([-50, 15] * 5, chess.WHITE, 76, 76),
        ([-50, 15] * 50, chess.WHITE, 76, 76),
        ([-135, 15] * 50, chess.WHITE, 54, 54),
        ([-435, 15] * 50, chess.WHITE, 20, 20),
        ([900, 900], chess.BLACK, 100, 10),
        ([15, -900], chess.BLACK, 10, 100),
    ],
)
def test_game_accuracy_matches_lichess_reference_games(
    cps: list[int], first: chess.Color, white: float, black: float
) -> None:
    """The game accuracies of lichess's own reference cases (within its tolerances: 1 point
    for perfect play, 5 for one blunder, 8 for average play)."""
    result = game_accuracy(white_percents(cps), first)
    tolerance = {100: 1, 10: 5, 50: 5}
    assert result.white == pytest.approx(white, abs=tolerance.get(white, 8))
    assert result.black == pytest.approx(black, abs=tolerance.get(black, 8))
    assert len(result.moves) == len(cps)


def test_a_side_that_never_loses_ground_has_an_accuracy_of_100_exactly() -> None:
    """White gains on each move and Black keeps what it had: every move is perfect, and the
    weighted mean of White's 100s, which rounds to 100.00000000000001 here, is still 100."""
    gains = (7.1, 11.9, 11.9, 7.1, 7.1, 1.3, 1.3, 1.3, 1.0)
    percents = [50.0]
    for gain in (*gains, 0.0, 0.0, 0.0, 0.0):
        percents += [min(100.0, percents[-1] + gain)] * 2
    result = game_accuracy(percents[:26], chess.WHITE)
    assert result.white == 100 and result.black == 100


def test_game_accuracy_of_a_side_without_moves_is_none() -> None:
    """No move, no accuracy: a one-move game has White's figure only."""
    assert game_accuracy([START], chess.WHITE).white is None
    one = game_accuracy(white_percents([20]), chess.WHITE)
    assert one.white == pytest.approx(100, abs=1) and one.black is None


@given(st.lists(st.integers(-1500, 1500), min_size=1, max_size=120), st.booleans())
def test_game_accuracy_is_a_percentage_for_any_game(cps: list[int], white_first: bool) -> None:
    """Whatever the evaluations, each side's accuracy and each move's are within [0, 100]."""
    result = game_accuracy(white_percents(cps), chess.WHITE if white_first else chess.BLACK)
    for value in (result.white, result.black, *result.moves):
        assert value is None or 0 <= value <= 100


def test_average_centipawn_loss_counts_only_what_each_side_gave_away() -> None:
    """White gives 100 then 0 (a gain counts as 0), Black 200 and 50: 50 and 125."""
    result = average_centipawn_loss([20, -80, 120, 300, 350], chess.WHITE)
    assert (result.white, result.black) == (50, 125)
    assert average_centipawn_loss([0], chess.WHITE) == type(result)(None, None)
