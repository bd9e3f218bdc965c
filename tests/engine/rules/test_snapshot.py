"""Snapshots: restoring one and folding the later events gives the replayed state."""

from __future__ import annotations

import json
from dataclasses import replace

import chess
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.rules import commands as core
from engine.rules.clock import TimeControl
from engine.rules.errors import GameRefusal
from engine.rules.game import GameSetup, GameState, Player, evolve_all
from engine.rules.snapshot import from_snapshot, snapshot_json
from engine.rules.wire import GameEvent

SERVER = GameSetup("g1234567", Player("W", 2500), Player("B"), TimeControl(60_000, 1_000))
# Takebacks happen in relay games only.
RELAY = replace(SERVER, mode="relay")
ACTIONS = st.lists(
    st.tuples(
        st.sampled_from(
            ["move", "move", "move", "eval", "clock", "offer", "takeback", "decide", "resign"]
        ),
        st.integers(0, 10_000),
        st.integers(0, 1_000),
    ),
    max_size=60,
)


def played(setup: GameSetup, actions: list[tuple[str, int, int]]) -> list[GameEvent]:
    """The events of a game driven by ``actions`` (refused commands are skipped)."""
    state = GameState.new(setup)
    now = 0
    events = core.start(state, now)
    state = evolve_all(state, events, now)
    for kind, pick, elapsed in actions:
        now += elapsed
        try:
            if kind == "move":
                legal = sorted(state.board.legal_moves, key=chess.Move.uci)
                if not legal:
                    continue
                new = core.play(state, legal[pick % len(legal)].uci(), now)
            elif kind == "eval":
                new = core.record_eval(
                    state,
                    {
                        "ply": state.ply,
                        "depth": pick % 30,
                        "score": {"cp": pick - 5_000},
                        "best": None,
                        "pv": [],
                        "nodes": pick,
                        "engine": "test",
                    },
                )
            elif kind == "clock":
                new = core.checkpoint(state, now)
            elif kind == "offer":
                new = core.draw(state, state.turn, "offer", now)
            elif kind == "takeback":
                new = core.take_back(state, pick % (state.ply + 1), now)
            elif kind == "decide":
                new = core.decide(state, "1/2-1/2", "arbiter", now)
            else:
                new = core.resign(state, chess.BLACK, now)
        except GameRefusal:
            continue
        state = evolve_all(state, new, now)
        events += new
    return events


@settings(max_examples=150, deadline=None)
@given(st.sampled_from([SERVER, RELAY]), ACTIONS, st.integers(0, 200), st.integers(0, 10**9))
def test_snapshot_then_later_events_equals_replay(
    setup: GameSetup, actions: list[tuple[str, int, int]], cut: int, now: int
) -> None:
    """Any prefix's snapshot, through JSON, plus the rest of the events is the full replay."""
    events = played(setup, actions)
    cut = min(cut, len(events))
    taken = snapshot_json(GameState.rebuild(setup, events[:cut], 0))
    restored = from_snapshot(setup, json.loads(json.dumps(taken)), now)
    resumed = evolve_all(restored, events[cut:], now)
    replayed = GameState.rebuild(setup, events, now)
    assert resumed == replayed
    assert resumed.clock.to_json(now + 777) == replayed.clock.to_json(now + 777)
    assert resumed.board.move_stack == replayed.board.move_stack
    assert resumed.board.fen() == replayed.board.fen()
    assert resumed.board.is_repetition(2) == replayed.board.is_repetition(2)
