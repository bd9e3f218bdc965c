"""The game core against python-chess as the reference model."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import chess
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from engine.rules import commands as core
from engine.rules.clock import TimeControl
from engine.rules.errors import (
    AlreadyStarted,
    CannotClaim,
    GameOver,
    GameRefusal,
    IllegalMove,
    InvalidInput,
    NoDrawOffer,
    NotStarted,
    NotYourTurn,
    RuleError,
    StalePly,
)
from engine.rules.game import GameSetup, GameState, Player, evolve_all, parse_start_fen
from engine.rules.wire import GameEvent

Command = Callable[[GameState, int], list[GameEvent]]

CONTROL = TimeControl(initial_ms=60_000, increment_ms=1_000)
SQUARES = st.sampled_from(chess.SQUARE_NAMES)


def new_game(fen: str = chess.STARTING_FEN, mode: str = "server") -> GameState:
    """A created game with a one-minute-plus-one-second clock."""
    setup = GameSetup(
        id="g1234567",
        white=Player("White"),
        black=Player("Black"),
        control=CONTROL,
        initial_fen=fen,
        mode=mode,  # type: ignore[arg-type]
    )
    return GameState.new(setup)


def apply(state: GameState, events: list[GameEvent], now: int) -> GameState:
    """Fold events as the service does."""
    return evolve_all(state, events, now)


def position(state: GameState) -> tuple[str, list[chess.Move]]:
    """The state's board, which states share and which no command may mutate."""
    return state.board.fen(), list(state.board.move_stack)


def started(fen: str = chess.STARTING_FEN, mode: str = "server") -> GameState:
    """A game started at t=0."""
    state = new_game(fen, mode)
    return apply(state, core.start(state, 0), 0)


def play_all(state: GameState, moves: list[str], now: int = 0) -> GameState:
    """Play moves for whoever is to move, all at ``now``."""
    for text in moves:
        state = apply(state, core.play(state, text, now), now)
    return state


class GameMachine(RuleBasedStateMachine):
    """Random legal and illegal commands; the core must agree with python-chess throughout."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0
        self.state = started()
        self.log: list[GameEvent] = []
        self.log.append(
            {
                "type": "start",
                "game": "g1234567",
                "seq": 1,
                "fen": chess.STARTING_FEN,
                "clock": self.state.clock.to_json(0),
            }
        )
        self.model = chess.Board()
        self.model_ms = {chess.WHITE: CONTROL.initial_ms, chess.BLACK: CONTROL.initial_ms}
        self.last_press = 0
        self.flagged = False

    def act(self, command: Command) -> list[GameEvent]:
        """Record a flag fall first, then run the command, like the service does."""
        for events in (core.expire(self.state, self.now), None):
            if events is None:
                before = position(self.state)
                try:
                    events = command(self.state, self.now)
                except GameRefusal:
                    assert position(self.state) == before
                    raise
            self.state = apply(self.state, events, self.now)
            self.log.extend(events)
        return self.log

    def run(self, command):  # type: ignore[no-untyped-def]
        """``act`` and return the events the command itself produced."""
        before = len(self.log)
        self.act(command)
        return self.log[before:]

    def model_flag(self) -> bool:
        """Whether the side to move has run out of time in the reference clock."""
        if self.model_finished():
            return False
        mover = self.model.turn
        return self.model_ms[mover] - (self.now - self.last_press) <= 0

    def model_finished(self) -> bool:
        return self.flagged or self.state.is_finished

    # --- rules ---

    @rule(ms=st.integers(0, 25_000))
    def advance(self, ms: int) -> None:
        """Time passes."""
        self.now += ms

    @rule(data=st.data(), as_san=st.booleans())
    def legal_move(self, data: st.DataObject, as_san: bool) -> None:
        """A legal move for the side to move at the right ply is accepted."""
        finished_before = self.state.is_finished
        flag = self.model_flag()
        if finished_before or flag or self.model.is_game_over():
            with pytest.raises(GameOver):
                self.act(lambda s, now: core.play(s, "e4", now))
            self.check_flag_end(flag)
            return
        move = data.draw(st.sampled_from(list(self.model.legal_moves)))
        text = self.model.san(move) if as_san else move.uci()
        mover = self.model.turn
        by = data.draw(st.sampled_from([mover, None]))
        ply = data.draw(st.sampled_from([self.model.ply(), None]))
        events = self.run(lambda s, now: core.play(s, text, now, by=by, ply=ply))
        assert events[0]["type"] == "move" and events[0]["uci"] == move.uci()
        self.model_ms[mover] += CONTROL.increment_ms - (self.now - self.last_press)
        self.last_press = self.now
        self.model.push(move)
        outcome = self.model.outcome(claim_draw=False)
        if outcome is None:
            assert len(events) == 1
        else:
            assert events[-1]["type"] == "end"
            assert self.state.result == outcome.result()

    @rule(data=st.data())
    def reverse_last_own_move(self, data: st.DataObject) -> None:
        """Undoing one's previous move (by moving back) is legal and builds repetitions."""
        if len(self.model.move_stack) < 2 or self.model_finished() or self.model_flag():
            return
        previous = self.model.move_stack[-2]
        back = chess.Move(previous.to_square, previous.from_square)
        if back not in self.model.legal_moves:
            return
        self.legal_move_text(back)

    def legal_move_text(self, move: chess.Move) -> None:
        mover = self.model.turn
        self.run(lambda s, now: core.play(s, move.uci(), now))
        self.model_ms[mover] += CONTROL.increment_ms - (self.now - self.last_press)
        self.last_press = self.now
        self.model.push(move)

    @rule(a=SQUARES, b=SQUARES)
    def any_uci(self, a: str, b: str) -> None:
        """Arbitrary square pairs: accepted only when legal, else refused without change."""
        move = chess.Move.from_uci(a + b) if a != b else chess.Move.null()
        text = move.uci()
        if self.model_finished() or self.model_flag() or self.model.is_game_over():
            with pytest.raises(GameOver):
                self.act(lambda s, now: core.play(s, text, now))
            self.check_flag_end(self.model_flag())
            return
        if move in self.model.legal_moves:
            self.legal_move_text(move)
            return
        with pytest.raises(IllegalMove):
            self.act(lambda s, now: core.play(s, text, now))

    @precondition(lambda self: not self.model_finished())
    @rule()
    def wrong_side(self) -> None:
        """A player moving out of turn is refused."""
        if self.model_flag() or self.model.is_game_over():
            return
        with pytest.raises(NotYourTurn):
            self.act(lambda s, now: core.play(s, "e4", now, by=not self.model.turn))

    @rule(data=st.data())
    def retry_or_stale(self, data: st.DataObject) -> None:
        """Re-sending the move played at a past ply is a no-op; anything else there is stale."""
        if not self.model.move_stack:
            return
        ply = data.draw(st.integers(0, len(self.model.move_stack) - 1))
        same = data.draw(st.booleans())
        played = self.model.move_stack[ply]
        if same:
            seq = self.state.seq
            events = self.run(lambda s, now: core.play(s, played.uci(), now, ply=ply))
            assert [e for e in events if e["type"] != "end"] == []
            if not self.flag_recorded_now(seq):
                assert self.state.seq == seq
            return
        board = self.model.copy()
        while len(board.move_stack) > ply:
            board.pop()
        others = [m for m in board.legal_moves if m != played]
        if not others:
            return
        other = data.draw(st.sampled_from(others))
        expected = (
            GameOver
            if self.model_finished() or self.model_flag() or self.model.is_game_over()
            else StalePly
        )
        with pytest.raises(expected):
            self.act(lambda s, now: core.play(s, other.uci(), now, ply=ply))
        self.check_flag_end(self.model_flag())

    def flag_recorded_now(self, seq_before: int) -> bool:
        if self.state.seq == seq_before + 1 and self.state.termination == "timeout":
            self.flagged = True
            return True
        return False

    @rule(color=st.booleans())
    def claim(self, color: bool) -> None:
        """A claim succeeds exactly on threefold repetition or the fifty-move rule."""
        if self.model_finished() or self.model_flag() or self.model.is_game_over():
            with pytest.raises(GameOver):
                self.act(lambda s, now: core.draw(s, color, "claim", now))
            self.check_flag_end(self.model_flag())
            return
        if self.model.is_repetition(3) or self.model.is_fifty_moves():
            self.run(lambda s, now: core.draw(s, color, "claim", now))
            assert self.state.result == "1/2-1/2"
            expected = "threefold_repetition" if self.model.is_repetition(3) else "fifty_moves"
            assert self.state.termination == expected
        else:
            with pytest.raises(CannotClaim):
                self.act(lambda s, now: core.draw(s, color, "claim", now))

    @rule(color=st.booleans(), action=st.sampled_from(["offer", "accept", "decline"]))
    def draw_offers(self, color: bool, action: str) -> None:
        """Offers, acceptances and declines follow the pending offer."""
        if self.model_finished() or self.model_flag() or self.model.is_game_over():
            with pytest.raises(GameOver):
                self.act(lambda s, now: core.draw(s, color, action, now))  # type: ignore[arg-type]
            self.check_flag_end(self.model_flag())
            return
        pending = self.state.draw_offer
        if action in ("accept", "decline") and pending != (not color):
            with pytest.raises(NoDrawOffer):
                self.act(lambda s, now: core.draw(s, color, action, now))  # type: ignore[arg-type]
            return
        self.run(lambda s, now: core.draw(s, color, action, now))  # type: ignore[arg-type]
        if pending == (not color) and action in ("offer", "accept"):
            assert self.state.termination == "agreement"
        elif action == "decline":
            assert self.state.draw_offer is None
        else:
            assert self.state.draw_offer == color

    @rule()
    def checkpoint(self) -> None:
        """A clock checkpoint changes no time; replaying it gives the same game."""
        flag = self.model_flag()
        before = self.state.clock.to_json(self.now)
        self.run(lambda s, now: core.checkpoint(s, now))
        if flag:
            self.check_flag_end(True)
        else:
            assert self.state.clock.to_json(self.now) == before

    @precondition(lambda self: len(self.log) > 30)
    @rule(color=st.booleans())
    def resign(self, color: bool) -> None:
        """Resigning ends a running game for the other side."""
        if self.model_finished() or self.model_flag() or self.model.is_game_over():
            with pytest.raises(GameOver):
                self.act(lambda s, now: core.resign(s, color, now))
            self.check_flag_end(self.model_flag())
            return
        self.run(lambda s, now: core.resign(s, color, now))
        assert self.state.result == ("0-1" if color == chess.WHITE else "1-0")

    def check_flag_end(self, flag: bool) -> None:
        if flag:
            self.flagged = True
            assert self.state.termination == "timeout"
            loser = self.model.turn
            if self.model.has_insufficient_material(not loser):
                assert self.state.result == "1/2-1/2"
            else:
                assert self.state.result == ("0-1" if loser == chess.WHITE else "1-0")

    # --- invariants ---

    @invariant()
    def agrees_with_python_chess(self) -> None:
        """FEN and move list match the reference board."""
        assert self.state.board.fen() == self.model.fen()
        assert [m.uci for m in self.state.moves] == [m.uci() for m in self.model.move_stack]
        assert self.state.ply == len(self.state.moves) == self.model.ply()

    @invariant()
    def clocks_agree_and_never_negative(self) -> None:
        """Live clocks are never negative and match a reference Fischer clock while running."""
        view = self.state.clock.to_json(self.now)
        assert view["white_ms"] >= 0 and view["black_ms"] >= 0
        if not self.state.is_finished:
            mover = self.model.turn
            other = not mover
            key = {chess.WHITE: "white_ms", chess.BLACK: "black_ms"}
            assert view[key[other]] == self.model_ms[other]  # type: ignore[literal-required]
            live = self.model_ms[mover] - (self.now - self.last_press)
            assert view[key[mover]] == max(0, live)  # type: ignore[literal-required]
            assert view["running"] == ("white" if mover == chess.WHITE else "black")

    @invariant()
    def seq_counts_events_and_rebuild_agrees(self) -> None:
        """``seq`` is the number of events and replaying them yields the same game."""
        assert self.state.seq == len(self.log)
        assert [e["seq"] for e in self.log] == list(range(1, len(self.log) + 1))
        rebuilt = GameState.rebuild(self.state.setup, self.log, self.now)
        assert rebuilt.board.fen() == self.state.board.fen()
        assert rebuilt.moves == self.state.moves
        assert (rebuilt.status, rebuilt.result, rebuilt.termination) == (
            self.state.status,
            self.state.result,
            self.state.termination,
        )
        assert rebuilt.draw_offer == self.state.draw_offer

    @invariant()
    def nothing_after_the_end(self) -> None:
        """Once finished, the end event is the last one and the clock is stopped."""
        ends = [i for i, e in enumerate(self.log) if e["type"] == "end"]
        assert len(ends) <= 1
        if ends:
            assert ends[0] == len(self.log) - 1
            assert self.state.is_finished and self.state.clock.running is None


TestGameMachine = GameMachine.TestCase
TestGameMachine.settings = settings(
    max_examples=150,
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def test_moves_before_start_are_refused() -> None:
    """A created game refuses moves and actions until it starts, and starts once."""
    state = new_game()
    with pytest.raises(NotStarted):
        core.play(state, "e4", 0)
    with pytest.raises(NotStarted):
        core.resign(state, chess.WHITE, 0)
    state = apply(state, core.start(state, 0), 0)
    with pytest.raises(AlreadyStarted):
        core.start(state, 0)


def test_malformed_move_text_is_invalid_input() -> None:
    """Text that is neither UCI nor SAN is a schema error, not an illegal move."""
    with pytest.raises(InvalidInput):
        core.play(started(), "hello", 0)
    for null in ("0000", "--"):
        with pytest.raises(IllegalMove):
            core.play(started(), null, 0)


def test_checkmate_stalemate_and_dead_positions_end_at_once() -> None:
    """Checkmate, stalemate and insufficient material end the game with the move."""
    mate = play_all(started(), ["f3", "e5", "g4", "Qh4#"])
    assert (mate.result, mate.termination) == ("0-1", "checkmate")
    stalemate = play_all(started("7k/5Q2/6K1/8/8/8/8/8 w - - 0 1"), ["Kh6"])
    assert stalemate.termination == "stalemate" and stalemate.result == "1/2-1/2"
    alive = play_all(started("8/8/4k3/8/3r4/2K5/8/8 w - - 0 1"), ["Kb2"])
    assert alive.status == "started"
    dead = play_all(started("8/8/4k3/8/3r4/2K5/8/8 w - - 0 1"), ["Kxd4"])
    assert dead.termination == "insufficient_material"


def test_seventy_five_move_rule_ends_without_claim() -> None:
    """At 150 half-moves without capture or pawn move the game ends by itself."""
    state = started("8/8/8/4k3/8/8/4K3/R7 w - - 149 90")
    state = play_all(state, ["Ra2"])
    assert state.termination == "seventyfive_moves"


def test_flag_against_lone_king_opponent_is_a_draw() -> None:
    """White flags, but Black has only a king: the game is drawn (FIDE 6.9)."""
    state = started("8/8/8/4k3/8/8/4K3/R7 w - - 0 1")
    assert core.expire(state, 59_999) == []
    [end] = core.expire(state, 60_000)
    assert end["type"] == "end" and (end["result"], end["termination"]) == ("1/2-1/2", "timeout")
    state = started("8/8/8/4k3/8/8/4K3/r7 w - - 0 1")
    [end] = core.expire(state, 60_000)
    assert end["result"] == "0-1"


def test_relay_clock_takes_reported_time_and_never_flags() -> None:
    """Relay games take the mover's reported time and are never lost on time by the server."""
    state = started(mode="relay")
    state = apply(state, core.play(state, "e4", 5_000, clock_ms=57_000), 5_000)
    assert state.moves[0].clock_ms == 57_000
    assert core.expire(state, 10_000_000) == []
    # A server-clock game refuses a reported time: well-formed, refused by its mode.
    with pytest.raises(RuleError):
        core.play(started(), "e4", 0, clock_ms=1_000)


def test_draw_offer_lapses_when_the_opponent_moves() -> None:
    """An offer stands until the offered side moves; then it can no longer be accepted."""
    state = started()
    state = apply(state, core.draw(state, chess.WHITE, "offer", 0), 0)
    assert core.draw(state, chess.WHITE, "offer", 0) == []
    state = play_all(state, ["e4"])
    assert state.draw_offer == chess.WHITE
    state = play_all(state, ["e5"])
    assert state.draw_offer is None
    with pytest.raises(NoDrawOffer):
        core.draw(state, chess.BLACK, "accept", 0)


def test_arbiter_result_and_nothing_after_it() -> None:
    """The arbiter ends even an unstarted game; afterwards every command is game_over."""
    state = new_game()
    state = apply(state, core.adjudicate(state, "1-0", 0, "forfeit"), 0)
    assert (state.status, state.result, state.termination) == ("finished", "1-0", "arbiter")
    for command in (
        lambda: core.play(state, "e4", 0),
        lambda: core.start(state, 0),
        lambda: core.draw(state, chess.WHITE, "claim", 0),
        lambda: core.adjudicate(state, "0-1", 0),
    ):
        with pytest.raises(GameOver):
            command()


def test_custom_start_fen_is_validated() -> None:
    """Malformed, impossible and already-decided start positions are refused."""
    assert parse_start_fen("4k3/8/8/8/8/8/4P3/4K3 b - - 0 1").startswith("4k3")
    for fen in ("not a fen", "8/8/8/8/8/8/8/8 w - - 0 1", "4k3/8/8/8/8/8/8/4K3 w - - 0 1"):
        with pytest.raises(InvalidInput):
            parse_start_fen(fen)


def test_black_to_move_start_runs_blacks_clock() -> None:
    """From a position with Black to move, Black's clock runs first."""
    state = started("4k3/8/8/8/8/8/4P3/4K3 b - - 0 1")
    assert state.clock.running == chess.BLACK


def test_rebuild_charges_nobody_the_time_before_it() -> None:
    """A game rebuilt after a pause counts the running side's time from the rebuild only."""
    state = new_game()
    log: list[GameEvent] = []
    for command, now in [
        (core.start, 0),
        (lambda s, t: core.play(s, "e4", t), 10_000),
        (core.checkpoint, 25_000),
    ]:
        events = command(state, now)
        state = apply(state, events, now)
        log += events
    rebuilt = GameState.rebuild(state.setup, log, 500_000)
    assert rebuilt.clock.remaining_ms(chess.BLACK, 500_000) == 45_000
    assert rebuilt.clock.remaining_ms(chess.BLACK, 501_000) == 44_000
    assert rebuilt.clock.remaining_ms(chess.WHITE, 501_000) == 51_000


class RelayTakebackMachine(RuleBasedStateMachine):
    """Relay moves with reported clocks, results, withdrawals and takebacks to any ply."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0
        self.state = new_game(mode="relay")
        self.log: list[GameEvent] = []
        self.model = chess.Board()
        self.clocks: list[int] = []
        self.takebacks = 0

    def act(self, events: list[GameEvent]) -> list[GameEvent]:
        self.state = apply(self.state, events, self.now)
        self.log.extend(events)
        return events

    @rule(ms=st.integers(0, 5_000))
    def advance(self, ms: int) -> None:
        """Time passes."""
        self.now += ms

    @rule(data=st.data(), clock_ms=st.integers(0, 90_000))
    def relay_move(self, data: st.DataObject, clock_ms: int) -> None:
        """A relayed legal move is stored with the reported clock (starting the game first)."""
        if self.state.is_finished or self.model.is_game_over():
            return
        if self.state.status == "created":
            self.act(core.start(self.state, self.now))
        move = data.draw(st.sampled_from(list(self.model.legal_moves)))
        self.act(core.play(self.state, move.uci(), self.now, clock_ms=clock_ms))
        self.model.push(move)
        self.clocks.append(clock_ms)

    @rule(data=st.data())
    def take_back(self, data: st.DataObject) -> None:
        """Going back to any earlier ply drops the later moves and reopens the game."""
        ply = data.draw(st.integers(0, self.state.ply))
        was_finished = self.state.is_finished
        events = self.act(core.take_back(self.state, ply, self.now))
        if ply == self.model.ply() and not was_finished:
            assert events == []
            return
        [event] = events
        assert event["type"] == "takeback" and event["ply"] == ply
        self.takebacks += 1
        while self.model.ply() > ply:
            self.model.pop()
        del self.clocks[ply:]
        assert (self.state.status, self.state.result, self.state.termination) == (
            "started",
            "*",
            None,
        )
        assert self.state.draw_offer is None
        for color, key in ((chess.WHITE, "white_ms"), (chess.BLACK, "black_ms")):
            own = [c for i, c in enumerate(self.clocks) if (i % 2 == 0) == (color == chess.WHITE)]
            assert event["clock"][key] == (own[-1] if own else CONTROL.initial_ms)  # type: ignore[literal-required]

    @rule(result=st.sampled_from(["1-0", "0-1", "1/2-1/2"]))
    def arbiter_result(self, result: str) -> None:
        """The arbiter ends the game, or decides a finished one again."""
        if self.state.is_finished:
            self.act(core.decide(self.state, result, "arbiter", self.now))  # type: ignore[arg-type]
        else:
            self.act(core.adjudicate(self.state, result, self.now))  # type: ignore[arg-type]
        assert self.state.result == result or self.state.termination != "arbiter"

    @rule(color=st.booleans())
    def draw_offer(self, color: bool) -> None:
        """Draw offers stand until a takeback clears them."""
        if self.state.status == "started":
            self.act(core.draw(self.state, color, "offer", self.now))

    @rule(data=st.data())
    def out_of_range(self, data: st.DataObject) -> None:
        """A ply beyond the game or below zero is refused without change."""
        ply = data.draw(st.sampled_from([-1, self.state.ply + 1]))
        before = position(self.state)
        with pytest.raises(InvalidInput):
            core.take_back(self.state, ply, self.now)
        assert position(self.state) == before

    @invariant()
    def agrees_with_python_chess(self) -> None:
        """FEN, moves and clocks match the reference; ``line`` counts the takebacks."""
        assert self.state.board.fen() == self.model.fen()
        assert [m.uci for m in self.state.moves] == [m.uci() for m in self.model.move_stack]
        assert [m.clock_ms for m in self.state.moves] == self.clocks
        assert self.state.line == self.takebacks

    @invariant()
    def seq_gap_free_and_rebuild_agrees(self) -> None:
        """``seq`` counts the events and replaying them yields the same game."""
        assert [e["seq"] for e in self.log] == list(range(1, len(self.log) + 1))
        assert self.state.seq == len(self.log)
        rebuilt = GameState.rebuild(self.state.setup, self.log, self.now)
        # A rebuilt clock resumes at ``now`` (a restart costs nobody time): compare the rest.
        resumed = replace(rebuilt.clock, since_ms=self.state.clock.since_ms)
        assert replace(rebuilt, clock=resumed) == self.state
        assert rebuilt.board.fen() == self.state.board.fen()
        assert rebuilt.board.move_stack == self.state.board.move_stack


TestRelayTakebackMachine = RelayTakebackMachine.TestCase
TestRelayTakebackMachine.settings = settings(
    max_examples=100,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def test_take_back_is_for_relay_games_only() -> None:
    """A server game's moves are the players' own: a takeback is refused as invalid."""
    state = play_all(started(), ["e4", "e5"])
    with pytest.raises(InvalidInput):
        core.take_back(state, 1, 0)


def test_take_back_reopens_a_finished_relay_game() -> None:
    """A takeback to the current ply of a mated game withdraws the result; evals after it go."""
    state = play_all(started(mode="relay"), ["f3", "e5", "g4", "Qh4#"])
    assert state.termination == "checkmate"
    reopened = apply(state, core.take_back(state, 4, 0), 0)
    assert (reopened.status, reopened.result, reopened.termination) == ("started", "*", None)
    assert reopened.ply == 4 and reopened.line == 1
    back = apply(reopened, core.take_back(reopened, 2, 0), 0)
    assert (
        back.board.fen()
        == chess.Board("rnbqkbnr/pppp1ppp/8/4p3/8/5P2/PPPPP1PP/RNBQKBNR w KQkq - 0 2").fen()
    )
    assert back.line == 2 and back.turn == chess.WHITE
    assert back.clock.running == chess.WHITE
