"""Tests for engine.uci.timing: how long a search may take for each kind of `go`."""

from __future__ import annotations

from engine.uci.commands import Go
from engine.uci.timing import MOVES_TO_GO, TimePlan, plan_time


def test_infinite_and_ponder_have_no_time_bound() -> None:
    """Only `stop` (or `ponderhit`) ends these searches."""
    assert plan_time(Go(infinite=True), True, 30) == TimePlan(None, None)
    assert plan_time(Go(ponder=True, wtime_ms=1000), True, 30) == TimePlan(None, None)


def test_depth_or_nodes_alone_have_no_time_bound() -> None:
    """Without a clock or a move time the search is bounded by its own limits."""
    assert plan_time(Go(depth=5), True, 30) == TimePlan(None, None)


def test_movetime_is_a_hard_bound_less_the_overhead() -> None:
    """A fixed time per move is used in full, less what the GUI's latency needs."""
    assert plan_time(Go(movetime_ms=300), False, 30) == TimePlan(None, 270)
    assert plan_time(Go(movetime_ms=10), False, 30) == TimePlan(None, 1)


def test_clock_of_the_side_to_move_is_used() -> None:
    """White's clock for White, Black's for Black."""
    go = Go(wtime_ms=60_000, btime_ms=6_000)
    white, black = plan_time(go, True, 0), plan_time(go, False, 0)
    assert white.hard_ms is not None and black.hard_ms is not None
    assert white.hard_ms == 10 * black.hard_ms


def test_sudden_death_shares_the_clock_and_adds_the_increment() -> None:
    """At 10+0.1 a move gets a share of ten seconds plus most of the increment."""
    plan = plan_time(Go(wtime_ms=10_000, btime_ms=10_000, winc_ms=100, binc_ms=100), True, 30)
    base = 9_970 / MOVES_TO_GO + 75
    assert plan == TimePlan(int(base * 0.7), int(base * 3))


def test_never_more_than_half_the_clock() -> None:
    """Two moves to go give half the clock as the base, but the hard bound stays at half."""
    plan = plan_time(Go(wtime_ms=10_000, movestogo=2), True, 0)
    assert plan == TimePlan(3_500, 5_000)


def test_a_low_clock_spends_less_than_the_increment() -> None:
    """With fewer than twenty increments left, a move plans less than the increment it earns."""
    plan = plan_time(Go(wtime_ms=1_000, winc_ms=100), True, 30)
    assert plan.soft_ms is not None and plan.soft_ms < 100 * 0.75
    full = plan_time(Go(wtime_ms=5_000, winc_ms=100), True, 30)
    assert full.soft_ms == int((4_970 / MOVES_TO_GO + 75) * 0.7)


def test_last_move_before_the_control_may_use_most_of_the_clock() -> None:
    """With one move to go the clock is refilled after it, so nine tenths may be spent."""
    plan = plan_time(Go(wtime_ms=10_030, movestogo=1), True, 30)
    assert plan.hard_ms == 9_000


def test_a_flagged_clock_still_gives_a_bound() -> None:
    """No time left (or a negative clock) gives the smallest bound, not an error."""
    assert plan_time(Go(wtime_ms=-50, btime_ms=1000), True, 30) == TimePlan(1, 1)


def test_repeatedly_at_ten_plus_a_tenth_the_clock_never_runs_out() -> None:
    """Spending every hard bound in full, move after move, keeps time on the clock at 10+0.1."""
    clock_ms = 10_000
    for _ in range(300):
        plan = plan_time(Go(wtime_ms=clock_ms, btime_ms=clock_ms, winc_ms=100), True, 30)
        assert plan.hard_ms is not None
        clock_ms += 100 - (plan.hard_ms + 30)  # the overhead is what a move costs beyond it
        assert clock_ms > 0


def test_at_ten_plus_a_tenth_the_clock_settles_well_above_a_flag() -> None:
    """Spending twice the soft bound a move (a depth begun just before it), at 10+0.1 the clock
    settles near a second, so a stall of a few hundred milliseconds cannot flag."""
    clock_ms = 10_000
    lowest_ms = clock_ms
    for move in range(300):
        plan = plan_time(Go(wtime_ms=clock_ms, btime_ms=clock_ms, winc_ms=100), True, 30)
        assert plan.soft_ms is not None and plan.hard_ms is not None
        clock_ms += 100 - (min(2 * plan.soft_ms, plan.hard_ms) + 30)
        if move > 100:
            lowest_ms = min(lowest_ms, clock_ms)
    assert lowest_ms > 700
