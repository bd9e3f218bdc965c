"""Commands: pure functions from a game state and ``now_ms`` to the events they cause.

Every command (``start``, ``play``, ``resign``, ``draw``, ``adjudicate``, ``decide``,
``take_back``, ``expire``, ``checkpoint``, ``record_eval``, ``record_review``) returns the
events it causes, or raises a :class:`~engine.rules.errors.GameRefusal` and causes nothing.
Callers fold the events into the state with :func:`engine.rules.game.evolve_all` once they
are durably stored.
"""

from __future__ import annotations

from typing import Literal

import chess

from engine.rules.errors import (
    AlreadyStarted,
    CannotClaim,
    GameOver,
    IllegalMove,
    InvalidInput,
    NoDrawOffer,
    NotStarted,
    NotYourTurn,
    StalePly,
)
from engine.rules.game import GameState, successor_board
from engine.rules.moves import parse_move
from engine.rules.wire import (
    ClockEvent,
    ClockJSON,
    DrawOfferEvent,
    EndEvent,
    EvalEvent,
    EvalJSON,
    GameEvent,
    MoveEvent,
    Result,
    ReviewEvent,
    ReviewJSON,
    StartEvent,
    TakebackEvent,
    Termination,
    color_name,
)

DrawAction = Literal["offer", "accept", "decline", "claim"]

_TERMINATIONS: dict[chess.Termination, Termination] = {
    chess.Termination.CHECKMATE: "checkmate",
    chess.Termination.STALEMATE: "stalemate",
    chess.Termination.INSUFFICIENT_MATERIAL: "insufficient_material",
    chess.Termination.SEVENTYFIVE_MOVES: "seventyfive_moves",
    chess.Termination.FIVEFOLD_REPETITION: "fivefold_repetition",
}

_RESULTS: dict[str, Result] = {"1-0": "1-0", "0-1": "0-1", "1/2-1/2": "1/2-1/2"}


def start(state: GameState, now_ms: int) -> list[GameEvent]:
    """Start a created game: the side to move's clock runs from ``now_ms``."""
    if state.is_finished:
        raise GameOver("the game is over")
    if state.status == "started":
        raise AlreadyStarted("the game has already started")
    clock = state.clock.start(state.turn, now_ms)
    event: StartEvent = {
        "type": "start",
        "game": state.setup.id,
        "seq": state.seq + 1,
        "fen": state.board.fen(),
        "clock": clock.to_json(now_ms),
    }
    return [event]


def play(
    state: GameState,
    text: str,
    now_ms: int,
    *,
    by: chess.Color | None = None,
    ply: int | None = None,
    clock_ms: int | None = None,
) -> list[GameEvent]:
    """Play the move ``text`` (UCI or SAN) for the side to move.

    ``by`` is the sender's colour (None for an operator or relay, who may move either side).
    ``ply`` is the number of half-moves the sender believes were played: a mismatch is
    StalePly, unless it re-sends the very move accepted at that ply, which returns no event
    (a safe retry, also after the game ended). ``clock_ms`` is the mover's reported time
    after the move, relay games only. Callers run :func:`expire` first so that a flag fall
    is recorded before the move is judged. Returns the move event, and the end event when
    the move ends the game by rule.
    """
    if ply is not None and ply < state.ply and _is_retry(state, text, ply, by):
        return []
    if state.is_finished:
        raise GameOver("the game is over")
    if state.status == "created":
        raise NotStarted("the game has not started")
    if ply is not None and ply != state.ply:
        raise StalePly(f"the game is at ply {state.ply}, not {ply}")
    if by is not None and by != state.turn:
        raise NotYourTurn(f"it is {color_name(state.turn)}'s turn")
    if clock_ms is not None and state.setup.mode != "relay":
        raise InvalidInput("clock_ms is only accepted in relay games")
    if state.setup.mode == "server" and state.clock.is_flagged(now_ms):
        raise GameOver("the flag has fallen")
    move = parse_move(state.board, text)
    san = state.board.san(move)
    board = successor_board(state.board)
    board.push(move)
    clock = state.clock.press(now_ms, state.setup.control.increment_ms, clock_ms)
    outcome = board.outcome(claim_draw=False)
    if outcome is not None:
        clock = clock.stop(now_ms)
    move_event: MoveEvent = {
        "type": "move",
        "game": state.setup.id,
        "seq": state.seq + 1,
        "ply": state.ply + 1,
        "uci": move.uci(),
        "san": san,
        "fen": board.fen(),
        "clock": clock.to_json(now_ms),
    }
    if outcome is None:
        return [move_event]
    result = _RESULTS[outcome.result()]
    termination = _TERMINATIONS[outcome.termination]
    end = _end_event(state, state.seq + 2, result, termination, move_event["clock"])
    return [move_event, end]


def resign(state: GameState, color: chess.Color, now_ms: int) -> list[GameEvent]:
    """``color`` resigns a started game: the other side wins."""
    _require_started(state)
    result: Result = "0-1" if color == chess.WHITE else "1-0"
    return [_end(state, now_ms, result, "resignation")]


def draw(state: GameState, color: chess.Color, action: DrawAction, now_ms: int) -> list[GameEvent]:
    """A player's draw action.

    ``offer`` stands until the opponent answers or moves (an offer crossing the opponent's
    own offer is an agreement; repeating one's own offer changes nothing); ``accept`` and
    ``decline`` answer the opponent's pending offer (else NoDrawOffer); ``claim`` ends the
    game when the current position occurred three times or fifty moves passed without a
    capture or pawn move (else CannotClaim).
    """
    _require_started(state)
    opponent_offered = state.draw_offer == (not color)
    if action == "claim":
        if state.board.is_repetition(3):
            return [_end(state, now_ms, "1/2-1/2", "threefold_repetition")]
        if state.board.is_fifty_moves():
            return [_end(state, now_ms, "1/2-1/2", "fifty_moves")]
        raise CannotClaim("neither threefold repetition nor the fifty-move rule applies")
    if action == "offer" or action == "accept":
        if opponent_offered:
            return [_end(state, now_ms, "1/2-1/2", "agreement")]
        if action == "accept":
            raise NoDrawOffer("there is no draw offer to accept")
        if state.draw_offer == color:
            return []
        return [_draw_offer(state, color)]
    if not opponent_offered:
        raise NoDrawOffer("there is no draw offer to decline")
    return [_draw_offer(state, None)]


def adjudicate(state: GameState, result: Result, now_ms: int, reason: str = "") -> list[GameEvent]:
    """The arbiter sets the result of an unfinished game (also one not yet started)."""
    if state.is_finished:
        raise GameOver("the game is over")
    if result == "*":
        raise InvalidInput("an arbiter result must be 1-0, 0-1 or 1/2-1/2")
    event = _end(state, now_ms, result, "arbiter")
    if reason:
        event["reason"] = reason
    return [event]


def decide(
    state: GameState, result: Result, termination: Termination, now_ms: int
) -> list[GameEvent]:
    """The arbiter's decision on a tournament board: ends the game, or corrects the
    result of a finished one (nothing when it already stands).

    ``termination`` is ``arbiter`` or ``forfeit``; a double forfeit is result ``*`` with
    ``forfeit``. Unlike :func:`adjudicate`, a finished game may be decided again.
    """
    if termination not in ("arbiter", "forfeit"):
        raise InvalidInput("an arbiter decides with termination arbiter or forfeit")
    if result == "*" and termination != "forfeit":
        raise InvalidInput("only a double forfeit leaves the result undecided")
    if state.is_finished and (state.result, state.termination) == (result, termination):
        return []
    return [_end(state, now_ms, result, termination)]


def take_back(state: GameState, ply: int, now_ms: int) -> list[GameEvent]:
    """Go back to the position after ``ply`` half-moves (relay games only).

    The over-the-board source is the truth of a relay game: when the board shows a move
    taken back, another move at some ply, or a result withdrawn, the game returns to the
    last position both agree on. Every move after ``ply`` is dropped; a finished game is
    reopened (``ply`` may then equal :attr:`GameState.ply`: only the result is withdrawn).
    The clock shows each side's last reported time up to ``ply`` (the initial time for a
    side that has not moved) and runs for the side to move from ``now_ms``.

    Returns nothing when ``ply`` is the current ply of an unfinished game. Raises
    InvalidInput for a server game (its moves are the players' own and never taken back)
    and for a ``ply`` outside ``0..state.ply``.
    """
    if state.setup.mode != "relay":
        raise InvalidInput("moves are taken back in relay games only")
    if not 0 <= ply <= state.ply:
        raise InvalidInput(f"ply {ply} is not between 0 and {state.ply}")
    if ply == state.ply and not state.is_finished:
        return []
    board = state.board_at(ply)
    times = {
        chess.WHITE: state.setup.control.initial_ms,
        chess.BLACK: state.setup.control.initial_ms,
    }
    mover = chess.Board(state.setup.initial_fen).turn
    for record in state.moves[:ply]:
        times[mover] = record.clock_ms
        mover = not mover
    event: TakebackEvent = {
        "type": "takeback",
        "game": state.setup.id,
        "seq": state.seq + 1,
        "ply": ply,
        "fen": board.fen(),
        "clock": {
            "white_ms": times[chess.WHITE],
            "black_ms": times[chess.BLACK],
            "running": color_name(board.turn),
        },
    }
    return [event]


def expire(state: GameState, now_ms: int) -> list[GameEvent]:
    """The flag fall of the side to move, if its time is up (server-run clocks only).

    Returns the end event, or nothing. A side whose opponent cannot mate it by any legal
    sequence (judged by material) is not lost on time: the game is drawn (FIDE 6.9).
    """
    if state.setup.mode != "server" or state.status != "started":
        return []
    if not state.clock.is_flagged(now_ms):
        return []
    loser = state.turn
    result: Result
    if state.board.has_insufficient_material(not loser):
        result = "1/2-1/2"
    else:
        result = "0-1" if loser == chess.WHITE else "1-0"
    return [_end(state, now_ms, result, "timeout")]


def checkpoint(state: GameState, now_ms: int) -> list[GameEvent]:
    """A ``clock`` event recording the running clock at ``now_ms`` (nothing when stopped).

    Persisting it bounds what a crash can refund to the side to move: after a restart
    its time resumes from the last recorded event.
    """
    if state.status != "started" or state.clock.running is None:
        return []
    event: ClockEvent = {
        "type": "clock",
        "game": state.setup.id,
        "seq": state.seq + 1,
        "clock": state.clock.to_json(now_ms),
    }
    return [event]


def record_eval(state: GameState, evaluation: EvalJSON) -> list[GameEvent]:
    """An ``eval`` event for the current position of a started game; else nothing.

    An evaluation of an earlier ply (the game moved on while it was computed) is dropped,
    so eval events always concern the position on the board.
    """
    if state.status != "started" or evaluation["ply"] != state.ply:
        return []
    event: EvalEvent = {"type": "eval", "game": state.setup.id, "seq": state.seq + 1, **evaluation}
    return [event]


def record_review(state: GameState, review: ReviewJSON) -> list[GameEvent]:
    """A ``review`` event for a finished game whose moves are the ones reviewed; else nothing.

    A review of moves the game no longer has (a takeback reopened it meanwhile) is dropped.
    """
    reviewed = [move["uci"] for move in review["moves"]]
    if not state.is_finished or reviewed != [move.uci for move in state.moves]:
        return []
    event: ReviewEvent = {"type": "review", "game": state.setup.id, "seq": state.seq + 1, **review}
    return [event]


def _is_retry(state: GameState, text: str, ply: int, by: chess.Color | None) -> bool:
    """Whether ``text`` at ``ply`` is the move that was accepted there, sent by its side."""
    board = state.board_at(ply)
    if by is not None and by != board.turn:
        return False
    try:
        move = parse_move(board, text)
    except (IllegalMove, InvalidInput):
        return False
    return move.uci() == state.moves[ply].uci


def _require_started(state: GameState) -> None:
    if state.is_finished:
        raise GameOver("the game is over")
    if state.status == "created":
        raise NotStarted("the game has not started")


def _end_event(
    state: GameState, seq: int, result: Result, termination: Termination, clock: ClockJSON
) -> EndEvent:
    return {
        "type": "end",
        "game": state.setup.id,
        "seq": seq,
        "result": result,
        "termination": termination,
        "clock": clock,
    }


def _end(state: GameState, now_ms: int, result: Result, termination: Termination) -> EndEvent:
    clock = state.clock.stop(now_ms).to_json(now_ms)
    return _end_event(state, state.seq + 1, result, termination, clock)


def _draw_offer(state: GameState, by: chess.Color | None) -> DrawOfferEvent:
    return {
        "type": "draw_offer",
        "game": state.setup.id,
        "seq": state.seq + 1,
        "by": None if by is None else color_name(by),
    }
