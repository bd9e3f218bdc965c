"""The public JSON view of a tournament (``<Tournament>`` in ``shared/API.md``)."""

from __future__ import annotations

from typing import Any

from engine.tournament.standings import standings
from engine.tournament.state import Round, TournamentState
from engine.tournament.wire import DEFAULT_TIEBREAKS, PairingJSON, RoundJSON, StandingJSON


def tiebreaks_of(state: TournamentState) -> tuple[str, ...]:
    """The tie-breaks in force: the tournament's own, else the format's defaults."""
    return state.setup.tiebreaks or DEFAULT_TIEBREAKS[state.setup.format]


def round_json(rnd: Round) -> RoundJSON:
    """One round with its pairings, byes and status."""
    pairings: list[PairingJSON] = [
        {
            "board": p.board,
            "white": p.white,
            "black": p.black,
            "game": p.game,
            "result": p.result,
        }
        for p in rnd.pairings
    ]
    data: RoundJSON = {
        "round": rnd.number,
        "status": rnd.status,
        "pairings": pairings,
        "byes": [b.to_json() for b in rnd.byes],
    }
    if rnd.start_at is not None:
        data["start_at"] = rnd.start_at
    if rnd.id is not None:
        data["id"] = rnd.id
        data["name"] = rnd.name or f"Round {rnd.number}"
        data["delay"] = rnd.delay_s
    return data


def standings_json(state: TournamentState) -> list[StandingJSON]:
    """The standings now, with the tournament's tie-breaks."""
    return standings(state, tiebreaks_of(state))


def tournament_json(
    state: TournamentState,
    *,
    full: bool = True,
    standings: list[StandingJSON] | None = None,
) -> dict[str, Any]:
    """``GET /api/tournaments/{id}``; ``full=False`` leaves out rounds and standings (lists).

    ``standings`` are the state's standings when the caller has them already.
    """
    setup = state.setup
    data: dict[str, Any] = {
        "id": setup.id,
        "name": setup.name,
        "format": setup.format,
        "status": state.status,
        "mode": setup.mode,
        "clock": {
            "initial": setup.control.initial_ms // 1000,
            "increment": setup.control.increment_ms // 1000,
        },
        "delay": setup.delay_s,
        "tiebreaks": list(tiebreaks_of(state)),
        "bye_points": setup.bye_points,
        "pairing_system": setup.pairing_system,
        "rounds_total": state.rounds_total,
        "rounds_paired": len(state.rounds),
        "created_at": setup.created_at,
        "players": [
            {**p.to_json(), "withdrawn": p.withdrawn_from is not None} for p in state.players
        ],
    }
    for key in ("site", "city", "federation", "start_date", "end_date", "arbiter"):
        value = getattr(setup, key)
        if value is not None:
            data[key] = value
    if full:
        data["rounds"] = [round_json(r) for r in state.rounds]
        data["standings"] = standings_json(state) if standings is None else standings
    return data
