"""Which moves are inaccuracies, mistakes and blunders, judged as lichess judges them.

Scores are from the mover's point of view, before and after the move. Between two
centipawn scores, the drop in the mover's winning chances (on [-1, 1], see
:func:`engine.review.accuracy.winning_chances`) decides: 0.1 or more is an inaccuracy, 0.2
a mistake, 0.3 a blunder. Where a mate is involved, only two things count: a move that lets
the opponent force mate ("Checkmate is now unavoidable": a blunder, a mistake if the mover
was already 7 pawns down, an inaccuracy if 10), and a move that lets a forced mate slip
("Lost forced checkmate sequence": a blunder, a mistake if still 7 pawns up, an
inaccuracy if 10). A slower mate than the best is not marked.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.review.accuracy import winning_chances
from engine.rules.wire import JudgmentName

__all__ = ["NAGS", "PovScore", "Verdict", "judge"]

NAGS: dict[JudgmentName, int] = {"Inaccuracy": 6, "Mistake": 2, "Blunder": 4}
"""The PGN NAG of each judgment: ``$6`` is ``?!``, ``$2`` ``?``, ``$4`` ``??``."""

# (drop in winning chances, judgment), the worst first.
_DROPS: tuple[tuple[float, JudgmentName], ...] = (
    (0.3, "Blunder"),
    (0.2, "Mistake"),
    (0.1, "Inaccuracy"),
)


@dataclass(frozen=True, slots=True)
class PovScore:
    """A score from one side's view: ``cp``, or a ``mate`` (positive: that side mates).

    ``mate`` 0 means the side has just mated (the position is checkmate, the other side
    to move) when ``cp`` is None and ``mated`` is False, and that it is mated when ``mated``.
    """

    cp: int | None = None
    mate: int | None = None
    mated: bool = False

    @property
    def mate_sign(self) -> int:
        """+1 if this side mates (or has mated), -1 if it is mated, 0 without a mate."""
        if self.mate is None:
            return 0
        if self.mate == 0:
            return -1 if self.mated else 1
        return 1 if self.mate > 0 else -1


@dataclass(frozen=True, slots=True)
class Verdict:
    """A judged move: its judgment and lichess's words for it."""

    name: JudgmentName
    reason: str

    @property
    def nag(self) -> int:
        """The PGN NAG of the judgment."""
        return NAGS[self.name]


def judge(before: PovScore, after: PovScore) -> Verdict | None:
    """The verdict on a move that took its mover's score from ``before`` to ``after``, or
    None for a move that is not marked."""
    if before.cp is not None and after.cp is not None:
        drop = winning_chances(before.cp) - winning_chances(after.cp)
        for threshold, name in _DROPS:
            if drop >= threshold:
                return Verdict(name, name)
        return None
    if before.mate_sign == 0 and after.mate_sign < 0:
        return Verdict(_by_margin(-(before.cp or 0)), "Checkmate is now unavoidable")
    if before.mate_sign > 0 and after.mate_sign <= 0:
        return Verdict(_by_margin(after.cp or 0), "Lost forced checkmate sequence")
    return None


def _by_margin(cp: int) -> JudgmentName:
    """A mate let in (or let slip) matters less the further the game was already decided:
    ``cp`` is how far the other side was ahead (or the mover still is) without the mate."""
    if cp > 999:
        return "Inaccuracy"
    if cp > 700:
        return "Mistake"
    return "Blunder"
