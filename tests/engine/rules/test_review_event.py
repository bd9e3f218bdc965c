"""A game's review as a game event: recorded only for the moves reviewed, folded into the
state, dropped by a takeback, kept by snapshots, and written into the PGN."""

from __future__ import annotations

import io
import json
from dataclasses import replace

import chess
import chess.pgn

from engine.review.review import PositionEval, asks_for_review, build_review
from engine.rules import commands as core
from engine.rules.clock import TimeControl
from engine.rules.game import GameSetup, GameState, Player, evolve_all
from engine.rules.pgn import export_pgn
from engine.rules.snapshot import from_snapshot, snapshot_json
from engine.rules.wire import ReviewJSON
from tests.engine.review.test_review import HUNG_QUEEN, HUNG_QUEEN_EVALS

SETUP = GameSetup(
    "g1234567",
    Player("White"),
    Player("Black"),
    TimeControl(600_000, 0),
    mode="relay",
    created_at="2026-11-30T09:00:00Z",
)


def finished_game() -> GameState:
    """3...Qh4?? 4.Nxh4, and Black resigns."""
    state = GameState.new(SETUP)
    state = evolve_all(state, core.start(state, 0), 0)
    for uci in HUNG_QUEEN:
        state = evolve_all(state, core.play(state, uci, 1_000), 1_000)
    return evolve_all(state, core.resign(state, chess.BLACK, 2_000), 2_000)


def the_review() -> ReviewJSON:
    """The review of :func:`finished_game`."""
    return build_review(
        chess.STARTING_FEN,
        HUNG_QUEEN,
        HUNG_QUEEN_EVALS,
        engine="test",
        budget={"depth": 6},
        completed_at="2026-11-30T10:00:00Z",
    )


def reviewed_game() -> GameState:
    """:func:`finished_game` with its review recorded."""
    state = finished_game()
    return evolve_all(state, core.record_review(state, the_review()), 3_000)


def test_the_review_event_is_recorded_and_folded() -> None:
    """A review of the finished game's moves is one ``review`` event with the next seq;
    folding it puts the review in the state."""
    state = finished_game()
    [event] = core.record_review(state, the_review())
    assert event["type"] == "review" and event["seq"] == state.seq + 1
    after = evolve_all(state, [event], 3_000)
    assert after.review == the_review() and after.seq == state.seq + 1
    assert after.is_finished and after.result == "1-0"


def test_a_review_of_other_moves_or_of_an_unfinished_game_is_dropped() -> None:
    """Nothing is recorded for a game still running or whose moves are not those reviewed."""
    state = finished_game()
    running = replace(state, status="started", result="*", termination=None)
    assert core.record_review(running, the_review()) == []
    shorter = the_review()
    shorter["moves"] = shorter["moves"][:-1]
    assert core.record_review(state, shorter) == []


def test_a_takeback_drops_the_review_and_a_snapshot_keeps_it() -> None:
    """A relay correction that reopens the game drops its review; a snapshot restores it."""
    state = reviewed_game()
    data = json.loads(json.dumps(snapshot_json(state)))
    assert from_snapshot(SETUP, data, 4_000).review == state.review
    del data["review"]
    assert from_snapshot(SETUP, data, 4_000).review is None
    reopened = evolve_all(state, core.take_back(state, 5, 4_000), 4_000)
    assert reopened.review is None and reopened.status == "started"


def test_the_pgn_of_a_reviewed_game_carries_evals_nags_and_the_better_line() -> None:
    """Every move has the review's [%eval]; 3...Qh4 has $4, lichess's comment, and 3...Nf6
    with the engine's line as a variation; python-chess reads back the same moves."""
    text = export_pgn(reviewed_game(), site="test")
    game = chess.pgn.read_game(io.StringIO(text))
    assert game is not None and not game.errors
    assert [m.uci() for m in game.mainline_moves()] == HUNG_QUEEN
    nodes = list(game.mainline())
    for node, evaluation in zip(nodes, HUNG_QUEEN_EVALS[1:], strict=True):
        assert node.eval() is not None and node.eval().white().score() == evaluation.score["cp"]  # type: ignore[union-attr]
    blunder = nodes[5]
    assert blunder.nags == {4} and "Blunder. Nf6 was best." in blunder.comment
    assert "(0.40 → 8.80)" in blunder.comment
    assert all(not node.nags for i, node in enumerate(nodes) if i != 5)
    parent = nodes[4]
    assert [v.move.uci() for v in parent.variations] == ["d8h4", "g8f6"]
    line = parent.variations[1]
    assert [m.uci() for m in line.mainline_moves()] == ["d2d3", "f8c5"]
    flat = " ".join(text.split())
    assert "Qh4 $4 {" in flat and "} ( 3... Nf6 4. d3 Bc5 ) 4. Nxh4" in flat


def test_a_mate_on_the_board_gets_an_eval_of_hash_zero() -> None:
    """The mating move's [%eval #0] reads back as the side to move mated."""
    state = GameState.new(replace(SETUP, mode="server"))
    state = evolve_all(state, core.start(state, 0), 0)
    moves = ["f2f3", "e7e5", "g2g4", "d8h4"]
    for uci in moves:
        state = evolve_all(state, core.play(state, uci, 0), 0)
    assert state.is_finished
    evals = [
        PositionEval({"cp": 20}, 6, "e2e4", ("e2e4",)),
        PositionEval({"cp": -60}, 6, "e7e5", ("e7e5",)),
        PositionEval({"cp": -70}, 6, "e2e4", ("e2e4",)),
        PositionEval({"mate": -1}, 6, "d8h4", ("d8h4",)),
        PositionEval({"mate": 0}, 0),
    ]
    review = build_review(
        chess.STARTING_FEN, moves, evals, engine="t", budget={"depth": 6}, completed_at=""
    )
    state = evolve_all(state, core.record_review(state, review), 0)
    game = chess.pgn.read_game(io.StringIO(export_pgn(state, site="test")))
    assert game is not None
    last = game.end()
    assert "[%eval #0]" in last.comment
    assert last.eval() is not None and last.eval().pov(chess.BLACK).is_mate()  # type: ignore[union-attr]
    assert last.eval().white().mate() == 0  # type: ignore[union-attr]


def test_only_an_end_with_moves_not_yet_reviewed_asks_for_a_review() -> None:
    """The end of a game asks for its review; correcting only the result of a reviewed game
    does not (the review does not depend on it), but ending it again after a takeback does."""
    state = GameState.new(SETUP)
    state = evolve_all(state, core.start(state, 0), 0)
    no_move = core.decide(state, "1-0", "forfeit", 0)
    assert not asks_for_review(evolve_all(state, no_move, 0), no_move)
    ended = finished_game()
    assert asks_for_review(ended, [{"type": "end"}])  # type: ignore[list-item]
    state = reviewed_game()
    correction = core.decide(state, "1/2-1/2", "arbiter", 4_000)
    assert not asks_for_review(evolve_all(state, correction, 4_000), correction)
    events = core.take_back(state, state.ply, 4_000)
    state = evolve_all(state, events, 4_000)
    more = core.decide(state, "1-0", "arbiter", 5_000)
    events += more
    assert asks_for_review(evolve_all(state, more, 5_000), events)
