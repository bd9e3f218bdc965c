"""PGN export reads back with python-chess."""

from __future__ import annotations

import io

import chess
import chess.pgn
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.rules import commands as core
from engine.rules.clock import TimeControl
from engine.rules.game import GameSetup, GameState, Player, evolve_all
from engine.rules.pgn import export_pgn


@settings(max_examples=40, deadline=None)
@given(data=st.data(), custom=st.booleans())
def test_export_reads_back_to_the_same_moves_clocks_and_result(
    data: st.DataObject, custom: bool
) -> None:
    """Random games (also from a custom FEN) export to PGN that python-chess reads back."""
    fen = "r3k2r/8/8/8/8/8/8/R3K2R w KQkq - 0 1" if custom else chess.STARTING_FEN
    setup = GameSetup(
        id="abcdEFGH",
        white=Player("Carlsen, M", 2830, "GM", 1503014),
        black=Player("Nepo"),
        control=TimeControl.from_seconds(5400, 30),
        initial_fen=fen,
        created_at="2026-11-21T10:00:00Z",
        round=3,
        board=1,
    )
    state = GameState.new(setup)
    state = evolve_all(state, core.start(state, 0), 0)
    now = 0
    for _ in range(data.draw(st.integers(0, 40))):
        if state.is_finished:
            break
        now += data.draw(st.integers(0, 90_000))
        move = data.draw(st.sampled_from(list(state.board.legal_moves)))
        state = evolve_all(state, core.play(state, move.uci(), now), now)
    evals = {ply: {"cp": ply * 7 - 50} for ply in range(1, state.ply + 1, 2)}
    text = export_pgn(state, site="https://example.org", evals=evals)  # type: ignore[arg-type]
    game = chess.pgn.read_game(io.StringIO(text))
    assert game is not None and not game.errors
    assert game.headers["Result"] == state.result
    assert game.headers["TimeControl"] == "5400+30"
    assert game.headers["WhiteElo"] == "2830" and game.headers["Round"] == "3.1"
    assert [m.uci() for m in game.mainline_moves()] == [m.uci for m in state.moves]
    for ply, node in enumerate(game.mainline(), start=1):
        assert node.clock() is not None
        assert round(node.clock() * 1000) == state.moves[ply - 1].clock_ms  # type: ignore[operator]
        if ply in evals:
            assert node.eval() is not None and node.eval().white().score() == evals[ply]["cp"]  # type: ignore[union-attr]
    assert game.board().fen() == fen
