"""Fischer clocks as pure values."""

from __future__ import annotations

import chess
from hypothesis import given
from hypothesis import strategies as st

from engine.rules.clock import Clock, TimeControl


def test_press_charges_elapsed_adds_increment_and_switches() -> None:
    """The mover loses the elapsed time, gains the increment, and the other side runs."""
    clock = Clock.from_control(TimeControl.from_seconds(60, 2)).start(chess.WHITE, 1_000)
    clock = clock.press(6_000, 2_000)
    assert (clock.white_ms, clock.black_ms, clock.running) == (57_000, 60_000, chess.BLACK)
    assert clock.remaining_ms(chess.BLACK, 16_000) == 50_000
    assert clock.deadline_ms() == 66_000


@given(
    initial=st.integers(1_000, 10_000_000),
    increment=st.integers(0, 60_000),
    gaps=st.lists(st.integers(0, 5_000_000), max_size=40),
)
def test_live_view_is_never_negative_and_time_only_flows_for_the_mover(
    initial: int, increment: int, gaps: list[int]
) -> None:
    """Any sequence of presses: views are >= 0 and the waiting side's time never changes."""
    clock = Clock(initial, initial).start(chess.WHITE, 0)
    now = 0
    for gap in gaps:
        waiting = not clock.running
        before = clock.stored_ms(waiting)
        now += gap
        view = clock.to_json(now)
        assert view["white_ms"] >= 0 and view["black_ms"] >= 0
        clock = clock.press(now, increment)
        assert clock.stored_ms(waiting) == before
        assert clock.running == waiting
    stopped = clock.stop(now + 1)
    assert stopped.running is None and stopped.is_flagged(now + 10**9) is False


def test_flag_falls_exactly_at_zero() -> None:
    """A side is flagged when its remaining time reaches zero, not before."""
    clock = Clock(1_000, 1_000).start(chess.BLACK, 10)
    assert not clock.is_flagged(1_009)
    assert clock.is_flagged(1_010)
    assert clock.to_json(5_000)["black_ms"] == 0
