"""Time management: how long one `go` may search, from the limits the GUI sends.

Two bounds come out. The soft one is checked between depths: once it has passed, no new depth
is started, because the next one would take several times longer than the last. The hard one
stops the search inside a depth. Both are in milliseconds from the moment `go` arrived; the
caller reads the clock and compares.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from engine.uci.commands import Go

__all__ = ["MOVES_TO_GO", "TimePlan", "plan_time"]

MOVES_TO_GO: Final = 30
"""How many more moves a sudden-death clock is shared between, when the GUI does not say."""

_SOFT_SHARE: Final = 0.7
_INCREMENT_SHARE: Final = 0.75
# Below this many increments on the clock, less of the increment is spent, so that a clock
# run low fills up again instead of living on the edge of a flag.
_INCREMENT_RESERVE: Final = 20
_HARD_FACTOR: Final = 3
_HARD_SHARE: Final = 0.5
_LAST_MOVE_SHARE: Final = 0.9


@dataclass(frozen=True, slots=True)
class TimePlan:
    """`soft_ms`: start no new depth after it; `hard_ms`: stop the search. None: no bound."""

    soft_ms: int | None
    hard_ms: int | None


def plan_time(go: Go, white_to_move: bool, move_overhead_ms: int) -> TimePlan:
    """Plan the time of one search from `go`, for the side to move.

    `infinite` and `ponder` have no time bound (the GUI ends them with `stop`); `movetime` is a
    hard bound less the overhead; a clock gives a share of the remaining time plus most of the
    increment (a smaller part of it once fewer than twenty increments are left on the clock),
    never more than half of what is left (nine tenths on the last move before a time control).
    Depth and node limits are the search's own, not time.
    """
    if go.infinite or go.ponder:
        return TimePlan(None, None)
    if go.movetime_ms is not None:
        return TimePlan(None, max(go.movetime_ms - move_overhead_ms, 1))
    time_left_ms = go.wtime_ms if white_to_move else go.btime_ms
    if time_left_ms is None:
        return TimePlan(None, None)
    increment_ms = go.winc_ms if white_to_move else go.binc_ms
    moves_to_go = go.movestogo if go.movestogo is not None else MOVES_TO_GO
    available_ms = max(time_left_ms - move_overhead_ms, 0)
    share = _LAST_MOVE_SHARE if moves_to_go == 1 else _HARD_SHARE
    increment_ms = max(increment_ms, 0)
    spendable = min(1.0, available_ms / (_INCREMENT_RESERVE * increment_ms)) if increment_ms else 0
    base_ms = available_ms / moves_to_go + increment_ms * _INCREMENT_SHARE * spendable
    hard_ms = min(base_ms * _HARD_FACTOR, available_ms * share)
    soft_ms = min(base_ms * _SOFT_SHARE, hard_ms)
    return TimePlan(max(int(soft_ms), 1), max(int(hard_ms), 1))
