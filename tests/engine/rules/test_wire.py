"""Wire shapes built by the rules core."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.rules.pgn import score_to_pov
from engine.rules.wire import score_json


def test_score_json_is_cp_or_mate_never_both() -> None:
    """A mate distance wins over a centipawn value; without either the score is refused."""
    assert score_json(31, None) == {"cp": 31}
    assert score_json(0, None) == {"cp": 0}
    assert score_json(None, -3) == {"mate": -3}
    assert score_json(900, 2) == {"mate": 2}
    with pytest.raises(ValueError, match="cp or mate"):
        score_json(None, None)


@given(cp=st.integers(-10_000, 10_000), mate=st.none() | st.integers(-50, 50).filter(bool))
def test_score_json_round_trips_through_the_pgn_score(cp: int, mate: int | None) -> None:
    """The PGN ``[%eval]`` of a wire score keeps its White-view value."""
    pov = score_to_pov(score_json(cp, mate)).white()
    assert (pov.mate(), pov.score()) == ((mate, None) if mate is not None else (None, cp))
