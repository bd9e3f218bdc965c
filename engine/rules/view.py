"""The public JSON view of a game at an instant."""

from __future__ import annotations

from typing import Any

from engine.rules.game import GameState, current_eval
from engine.rules.wire import GameJSON, color_name


def game_json(state: GameState, now_ms: int, *, spectators: int = 0) -> GameJSON:
    """``GET /api/games/{id}`` for ``state``; the running clock is read at ``now_ms``."""
    setup = state.setup
    return {
        "id": setup.id,
        "tournament": setup.tournament,
        "round": setup.round,
        "board": setup.board,
        "white": setup.white.to_json(),
        "black": setup.black.to_json(),
        "mode": setup.mode,
        "time_control": {
            "initial": setup.control.initial_ms // 1000,
            "increment": setup.control.increment_ms // 1000,
        },
        "status": state.status,
        "result": state.result,
        "termination": state.termination,
        "initial_fen": setup.initial_fen,
        "fen": state.board.fen(),
        "ply": state.ply,
        "moves": [{"uci": m.uci, "san": m.san, "clock_ms": m.clock_ms} for m in state.moves],
        "clock": state.clock.to_json(now_ms),
        "draw_offer": None if state.draw_offer is None else color_name(state.draw_offer),
        "eval": current_eval(state),
        "spectators": spectators,
        "seq": state.seq,
        "created_at": setup.created_at,
    }


def summary_json(game: GameJSON) -> dict[str, Any]:
    """A game as lists show it: everything but its moves."""
    return {key: value for key, value in game.items() if key != "moves"}
