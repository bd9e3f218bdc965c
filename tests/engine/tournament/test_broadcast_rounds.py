"""Broadcast rounds in the tournament core: created by hand, boards added, edited, reset."""

from __future__ import annotations

import pytest

from engine.rules.clock import TimeControl
from engine.tournament import state as core
from engine.tournament.errors import TournamentConflict
from engine.tournament.state import TournamentSetup, TournamentState
from engine.tournament.wire import EntrantJSON

SETUP = TournamentSetup("T0000001", "Open", "broadcast", TimeControl(5_400_000, 30_000), "relay")


def entrant(pid: str, name: str) -> EntrantJSON:
    """A player entry."""
    return {
        "id": pid,
        "number": 0,
        "name": name,
        "rating": None,
        "title": None,
        "fide_id": None,
        "federation": None,
    }


def apply(state: TournamentState, events: list[core.TournamentEvent]) -> TournamentState:
    """Fold events, checking they rebuild to the same state from the log."""
    return core.evolve_all(state, events)


def test_a_round_lives_from_empty_to_finished() -> None:
    """A created round is empty and paired-looking, gets boards (running), finishes when closed or when every board has a result, and empties on reset."""
    state = TournamentState(SETUP)
    state = apply(state, core.create_round(state, "R0000001", "Round 1", delay_s=5, created_ms=7))
    rnd = state.round(1)
    assert (rnd.id, rnd.name, rnd.delay_s, rnd.created_ms) == ("R0000001", "Round 1", 5, 7)
    assert rnd.pairings == () and rnd.status == "paired" and state.rounds_total == 1
    for pid, name in (("a", "A"), ("b", "B"), ("c", "C"), ("d", "D")):
        state = apply(state, core.add_player(state, entrant(pid, name)))
    state = apply(state, core.add_boards(state, 1, [(3, "a", "b", "g1"), (3, "c", "d", "g2")]))
    rnd = state.round(1)
    # Board 3 was free for the first game; the second asked for a taken number.
    assert [(p.board, p.game) for p in rnd.pairings] == [(3, "g1"), (4, "g2")]
    assert rnd.status == "running" and state.status == "running"
    with pytest.raises(TournamentConflict):
        core.add_boards(state, 1, [(None, "a", "d", "g3")])
    decided = state.with_result(1, 3, "1-0").with_result(1, 4, "0-1")
    assert decided.round(1).status == "finished" and decided.status == "finished"
    closed = apply(
        state,
        core.update_round(
            state, 1, name="Final", start_at=None, sync_url=None, delay_s=0, finished=True
        ),
    )
    assert closed.round(1).status == "finished" and closed.round(1).name == "Final"
    with pytest.raises(TournamentConflict):
        core.add_boards(closed, 1, [(None, "a", "d", "g3")])
    reset = apply(closed, core.reset_round(closed, 1))
    assert reset.round(1).pairings == () and reset.round(1).status == "paired"
    assert core.reset_round(reset, 1) == []


def test_broadcast_commands_refuse_other_formats_and_limits() -> None:
    """Only a broadcast takes hand-made rounds, at most 64; players may enter at any time."""
    swiss = TournamentState(
        TournamentSetup("T0000002", "Swiss", "swiss", TimeControl(60_000, 0), swiss_rounds=1)
    )
    with pytest.raises(TournamentConflict):
        core.create_round(swiss, "R0000002", "Round 1")
    state = TournamentState(SETUP)
    for n in range(core.MAX_BROADCAST_ROUNDS):
        state = apply(state, core.create_round(state, f"R{n:07d}", f"Round {n + 1}"))
    with pytest.raises(TournamentConflict):
        core.create_round(state, "R9999999", "One too many")
    closed = state
    for rnd in state.rounds:
        closed = apply(
            closed,
            core.update_round(
                closed, rnd.number, name="x", start_at=None, sync_url=None, delay_s=0, finished=True
            ),
        )
    assert closed.status == "finished"
    assert core.add_player(closed, entrant("late", "Late Entry"))
