"""Tests for engine.uci.output: info lines from the side to move's view, bestmove, strings."""

from __future__ import annotations

from engine.search.search import SearchInfo
from engine.uci.output import format_bestmove, format_info, format_string, id_lines

INFO = SearchInfo(
    depth=6, score_cp=-35, mate=None, best="e7e5", pv=("e7e5", "g1f3"), nodes=12_000, seldepth=14
)


def test_info_line_holds_every_field() -> None:
    """depth, seldepth, score, nodes, nps, time and pv, in the order UCI lists them."""
    assert format_info(INFO, False, 400) == (
        "info depth 6 seldepth 14 score cp 35 nodes 12000 nps 30000 time 400 pv e7e5 g1f3"
    )


def test_scores_are_from_the_side_to_move() -> None:
    """A White-view score is negated when Black is to move, mates included."""
    assert " score cp -35 " in format_info(INFO, True, 400)
    mate = SearchInfo(3, None, -2, "c6c4", ("c6c4",), 500, 5)
    assert " score mate 2 " in format_info(mate, False, 10)
    assert " score mate -2 " in format_info(mate, True, 10)


def test_no_division_by_zero_at_time_zero() -> None:
    """A depth completed within the first millisecond still gets an nps figure."""
    assert " nps 12000000 time 0 " in format_info(INFO, True, 0)


def test_bestmove_with_and_without_ponder() -> None:
    """The ponder move is given when known, and no legal move is the null move."""
    assert format_bestmove("e2e4", "e7e5") == "bestmove e2e4 ponder e7e5"
    assert format_bestmove("e2e4", None) == "bestmove e2e4"
    assert format_bestmove(None, None) == "bestmove 0000"


def test_strings_stay_on_one_line() -> None:
    """An error message with newlines cannot break the protocol's line framing."""
    assert format_string("bad\nthing\t here") == "info string bad thing here"


def test_id_lines() -> None:
    """`uci` is answered with a name and an author."""
    assert [line.split()[1] for line in id_lines()] == ["name", "author"]
