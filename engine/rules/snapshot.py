"""A game's state as one JSON document, so that a long game need not replay every event.

The store keeps a snapshot next to each game (refreshed every few hundred events and at
every status change); a restart folds only the events after it. A snapshot restored and
then evolved with the later events is the state a replay from the first event gives, which
the property tests hold.
"""

from __future__ import annotations

from typing import NotRequired, TypedDict

import chess

from engine.rules.clock import Clock
from engine.rules.game import GameSetup, GameState, MoveRecord
from engine.rules.wire import (
    ColorName,
    EvalJSON,
    Result,
    ReviewJSON,
    Status,
    Termination,
    color_name,
    parse_color,
)

# Events between two snapshots of a running game: bounds what a restart replays.
SNAPSHOT_EVERY = 256


class SnapshotClockJSON(TypedDict):
    """The clock as its last event left it (a running clock resumes from there)."""

    white_ms: int
    black_ms: int
    running: ColorName | None


class SnapshotJSON(TypedDict):
    """Everything of a :class:`GameState` but its setup, which the store keeps apart."""

    seq: int
    line: int
    status: Status
    result: Result
    termination: Termination | None
    draw_offer: ColorName | None
    clock: SnapshotClockJSON
    # [uci, san, clock_ms] per half-move: the moves are most of a snapshot's size.
    moves: list[tuple[str, str, int]]
    evals: list[EvalJSON]
    # The game's review, once done (absent from snapshots taken before reviews existed).
    review: NotRequired[ReviewJSON | None]


def snapshot_json(state: GameState) -> SnapshotJSON:
    """``state`` without its setup, as JSON-ready values."""
    clock = state.clock
    return {
        "seq": state.seq,
        "line": state.line,
        "status": state.status,
        "result": state.result,
        "termination": state.termination,
        "draw_offer": None if state.draw_offer is None else color_name(state.draw_offer),
        "clock": {
            "white_ms": clock.white_ms,
            "black_ms": clock.black_ms,
            "running": None if clock.running is None else color_name(clock.running),
        },
        "moves": [(m.uci, m.san, m.clock_ms) for m in state.moves],
        "evals": [state.evals[ply] for ply in sorted(state.evals)],
        "review": state.review,
    }


def from_snapshot(setup: GameSetup, data: SnapshotJSON, now_ms: int) -> GameState:
    """The state ``data`` was taken of; a running clock resumes at ``now_ms``.

    The board is rebuilt by pushing the recorded moves (legal when they were accepted), so
    that repetitions before the snapshot still count. Raises ValueError for a snapshot that
    does not fit ``setup`` (a corrupt store).
    """
    board = chess.Board(setup.initial_fen)
    try:
        for uci, _san, _clock_ms in data["moves"]:
            board.push(chess.Move.from_uci(uci))
    except (ValueError, AssertionError) as exc:
        raise ValueError(f"snapshot of game {setup.id} does not fit its setup: {exc}") from None
    clock = data["clock"]
    running = None if clock["running"] is None else parse_color(clock["running"])
    offer = data["draw_offer"]
    return GameState(
        setup=setup,
        board=board,
        clock=Clock(clock["white_ms"], clock["black_ms"], running, now_ms),
        status=data["status"],
        result=data["result"],
        termination=data["termination"],
        moves=tuple(MoveRecord(uci, san, ms) for uci, san, ms in data["moves"]),
        draw_offer=None if offer is None else parse_color(offer),
        seq=data["seq"],
        line=data["line"],
        evals={e["ply"]: e for e in data["evals"]},
        review=data.get("review"),
    )
