"""Inaccuracies, mistakes and blunders, by the drop in winning chances and by mates."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.review.accuracy import winning_chances
from engine.review.judgment import NAGS, PovScore, judge

RANK = {None: 0, "Inaccuracy": 1, "Mistake": 2, "Blunder": 3}


def cp(value: int) -> PovScore:
    """A centipawn score from the mover's view."""
    return PovScore(cp=value)


def name(before: PovScore, after: PovScore) -> str | None:
    """The judgment's name, or None."""
    verdict = judge(before, after)
    return None if verdict is None else verdict.name


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        (20, 0, None),
        (0, -60, "Inaccuracy"),
        (0, -120, "Mistake"),
        (0, -180, "Blunder"),
        (50, -850, "Blunder"),
        (-1000, -3000, None),
        (1500, 800, None),
        (900, 400, "Blunder"),
        (0, 50, None),
    ],
)
def test_drops_in_winning_chances(before: int, after: int, expected: str | None) -> None:
    """0.1, 0.2 and 0.3 of winning chances lost are an inaccuracy, a mistake, a blunder; a
    lost position getting more lost, a won one less won, or a gain, is nothing; +9 to +4 is
    a blunder."""
    assert name(cp(before), cp(after)) == expected


@given(st.integers(-3000, 3000), st.integers(0, 3000), st.integers(0, 3000))
def test_a_bigger_drop_is_never_judged_milder(before: int, drop: int, more: int) -> None:
    """From the same score, losing more is judged at least as severely."""
    small, large = sorted((drop, more))
    assert RANK[name(cp(before), cp(before - small))] <= RANK[name(cp(before), cp(before - large))]


@given(st.integers(-3000, 3000), st.integers(-3000, 3000))
def test_centipawn_judgments_follow_the_thresholds(before: int, after: int) -> None:
    """A judgment between centipawn scores is exactly the band its drop falls in."""
    drop = winning_chances(before) - winning_chances(after)
    expected = 3 if drop >= 0.3 else 2 if drop >= 0.2 else 1 if drop >= 0.1 else 0
    assert RANK[name(cp(before), cp(after))] == expected


@pytest.mark.parametrize(
    ("before", "after", "expected", "reason"),
    [
        (cp(0), PovScore(mate=-2), "Blunder", "Checkmate is now unavoidable"),
        (cp(-800), PovScore(mate=-5), "Mistake", "Checkmate is now unavoidable"),
        (cp(-1200), PovScore(mate=-5), "Inaccuracy", "Checkmate is now unavoidable"),
        (PovScore(mate=3), cp(200), "Blunder", "Lost forced checkmate sequence"),
        (PovScore(mate=3), cp(800), "Mistake", "Lost forced checkmate sequence"),
        (PovScore(mate=3), cp(1500), "Inaccuracy", "Lost forced checkmate sequence"),
        (PovScore(mate=2), PovScore(mate=-4), "Blunder", "Lost forced checkmate sequence"),
    ],
)
def test_mates_let_in_or_let_slip(
    before: PovScore, after: PovScore, expected: str, reason: str
) -> None:
    """A mate let in or let slip is a blunder, milder the more the game was decided anyway."""
    verdict = judge(before, after)
    assert verdict is not None and (verdict.name, verdict.reason) == (expected, reason)
    assert verdict.nag == NAGS[verdict.name]


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (PovScore(mate=2), PovScore(mate=5)),
        (PovScore(mate=1), PovScore(mate=0)),
        (cp(100), PovScore(mate=3)),
        (PovScore(mate=-3), cp(-900)),
        (PovScore(mate=-3), PovScore(mate=-1)),
    ],
)
def test_mates_that_change_nothing_are_not_marked(before: PovScore, after: PovScore) -> None:
    """A slower mate, the mating move itself, finding a mate, or an already lost game are
    not marked."""
    assert judge(before, after) is None


def test_nags_are_the_pgn_move_assessments() -> None:
    """$6 is ?!, $2 is ?, $4 is ??."""
    assert NAGS == {"Inaccuracy": 6, "Mistake": 2, "Blunder": 4}
