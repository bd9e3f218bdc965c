"""The relay of pushed PGN: splitting, reading and the events that make a game what the board shows."""

from __future__ import annotations

import io
import re
from pathlib import Path

import chess
import chess.pgn
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.rules.clock import TimeControl
from engine.rules.game import GameSetup, GameState, Player, evolve_all
from engine.rules.relay import (
    PushedMoves,
    RelayOutcome,
    pgn_problem,
    read_moves,
    relay_events,
    split_games,
)
from engine.rules.wire import GameEvent

GAMES = Path(__file__).parents[2] / "data" / "games"
CONTROL = TimeControl.from_seconds(5400, 30)
# Morphy's Opera Game (tests/data/games/opera_1858.pgn), ending 17.Rd8#.
OPERA = [
    "e4",
    "e5",
    "Nf3",
    "d6",
    "d4",
    "Bg4",
    "dxe5",
    "Bxf3",
    "Qxf3",
    "dxe5",
    "Bc4",
    "Nf6",
    "Qb3",
    "Qe7",
    "Nc3",
    "c6",
    "Bg5",
    "b5",
    "Nxb5",
    "cxb5",
    "Bxb5+",
    "Nbd7",
    "O-O-O",
    "Rd8",
    "Rxd7",
    "Rxd7",
    "Rd1",
    "Qe6",
    "Bxd7+",
    "Nxd7",
    "Qb8+",
    "Nxb8",
    "Rd8#",
]


def relay_game(game_id: str = "g0000001", fen: str = chess.STARTING_FEN) -> GameState:
    """A created relay game."""
    setup = GameSetup(
        id=game_id,
        white=Player("Carlsen, Magnus"),
        black=Player("Nepomniachtchi, Ian"),
        control=CONTROL,
        mode="relay",
        initial_fen=fen,
    )
    return GameState.new(setup)


def clk(ms: int) -> str:
    """``[%clk]`` text as DGT boards write it (whole seconds unless ``ms`` has a fraction)."""
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, frac = divmod(rest, 1000)
    text = f"{h}:{m:02d}:{s:02d}"
    return text + (f".{frac:03d}".rstrip("0") if frac else "")


def pgn(
    sans: list[str],
    result: str = "*",
    *,
    clocks: list[int] | None = None,
    board: int | None = 1,
    marker: str | None = None,
    extra: str = "",
) -> str:
    """One game as a DGT board pushes it: tags, numbered moves with ``[%clk]``, a marker."""
    clocks = clocks if clocks is not None else [5_400_000 - 1000 * i for i in range(len(sans))]
    tags = [
        '[Event "Test Open"]',
        '[Round "3.1"]',
        '[White "Carlsen, Magnus"]',
        '[Black "Nepomniachtchi, Ian"]',
        f'[Result "{result}"]',
        extra,
    ]
    if board is not None:
        tags.insert(2, f'[Board "{board}"]')
    words = []
    for i, san in enumerate(sans):
        if i % 2 == 0:
            words.append(f"{i // 2 + 1}.")
        words.append(f"{san} {{[%clk {clk(clocks[i])}]}}")
    words.append(result if marker is None else marker)
    return "\n".join(t for t in tags if t) + "\n\n" + " ".join(words) + "\n\n"


def read_one(text: str) -> PushedMoves:
    """The moves of the only game of ``text``."""
    [game] = split_games(text)
    return read_moves(game)


class Relay:
    """A relay game fed pushes, keeping the event log as the service would."""

    def __init__(self, state: GameState | None = None) -> None:
        self.state = state or relay_game()
        self.log: list[GameEvent] = []
        self.now = 0

    def push(self, text: str) -> RelayOutcome:
        """Relay the only game of ``text``; check the events chain and fold as reported."""
        self.now += 1000
        outcome = relay_events(self.state, read_one(text), self.now)
        assert [e["seq"] for e in outcome.events] == list(
            range(self.state.seq + 1, self.state.seq + 1 + len(outcome.events))
        )
        folded = evolve_all(self.state, outcome.events, self.now)
        assert folded == outcome.state
        assert outcome.moves_added == sum(1 for e in outcome.events if e["type"] == "move")
        assert outcome.result == folded.result
        self.state = folded
        self.log.extend(outcome.events)
        return outcome

    def sans(self) -> list[str]:
        """The stored moves as SAN."""
        return [m.san for m in self.state.moves]


# --- appending, idempotence ---


def test_pushing_more_moves_adds_only_the_new_ones_with_their_clocks() -> None:
    """Pushing N moves then N+3 adds 3 moves, each with the mover's [%clk] as clock_ms."""
    relay = Relay()
    clocks = [5_399_000, 5_398_500, 5_390_250, 5_381_000, 5_300_100, 5_250_000, 5_200_000]
    first = relay.push(pgn(OPERA[:4], clocks=clocks[:4]))
    assert [e["type"] for e in first.events] == ["start", "move", "move", "move", "move"]
    assert first.moves_added == 4 and not first.corrected and first.error is None
    second = relay.push(pgn(OPERA[:7], clocks=clocks))
    assert second.moves_added == 3 and [e["type"] for e in second.events] == ["move"] * 3
    assert [m.clock_ms for m in relay.state.moves] == clocks
    assert relay.state.clock.white_ms == clocks[6] and relay.state.clock.black_ms == clocks[5]
    assert relay.sans() == OPERA[:7]


def test_the_same_push_twice_changes_nothing() -> None:
    """A game pushed again as it was yields no events, finished or not."""
    relay = Relay()
    for text in (pgn(OPERA[:10]), pgn(OPERA[:12], "1/2-1/2")):
        relay.push(text)
        again = relay.push(text)
        assert again.events == [] and again.moves_added == 0 and not again.corrected
        assert again.error is None


def test_a_game_without_moves_does_not_start() -> None:
    """A relay game starts with its first move: a pushed header alone causes nothing."""
    outcome = Relay().push(pgn([]))
    assert outcome.events == [] and outcome.state.status == "created"


def test_spelling_differences_are_no_correction() -> None:
    """Over-specified SAN, missing check marks, 0-0 castling and UCI name the stored moves."""
    relay = Relay()
    relay.push(pgn(["e4", "e5", "Nf3", "Nc6", "Bc4", "Nf6", "O-O", "Bc5"]))
    respelled = ["e2e4", "e5!", "Ngf3", "Nc6?!", "Bf1c4", "Nf6", "0-0", "Bc5", "d3"]
    outcome = relay.push(pgn(respelled))
    assert [e["type"] for e in outcome.events] == ["move"] and not outcome.corrected
    assert relay.sans()[-1] == "d3"


# --- corrections ---


def test_last_move_taken_back_on_the_board() -> None:
    """A push with one move fewer takes it back; the next move is then a new one."""
    relay = Relay()
    relay.push(pgn(OPERA[:8]))
    outcome = relay.push(pgn(OPERA[:7]))
    [event] = outcome.events
    assert event["type"] == "takeback" and event["ply"] == 7
    assert outcome.corrected and relay.state.ply == 7 and relay.state.line == 1
    assert relay.state.board.fen() == relay.state.board_at(7).fen()
    assert relay.push(pgn(OPERA[:8])).moves_added == 1


def test_a_different_move_at_an_earlier_ply_replays_from_there() -> None:
    """When ply 5 differs, the game goes back to ply 4 and continues as pushed."""
    relay = Relay()
    relay.push(pgn(OPERA[:10]))
    other = [*OPERA[:4], "Nc3", "Nf6", "Bc4"]
    outcome = relay.push(pgn(other))
    assert [e["type"] for e in outcome.events] == ["takeback", "move", "move", "move"]
    assert outcome.events[0]["ply"] == 4  # type: ignore[typeddict-item]
    assert outcome.corrected and outcome.moves_added == 3
    assert relay.sans() == other


def test_a_changed_result_is_decided_again() -> None:
    """A result changed from 1-0 to 1/2-1/2 is one new end event by the arbiter."""
    relay = Relay()
    relay.push(pgn(OPERA[:20], "1-0"))
    assert (relay.state.result, relay.state.termination) == ("1-0", "arbiter")
    outcome = relay.push(pgn(OPERA[:20], "1/2-1/2"))
    [event] = outcome.events
    assert event["type"] == "end" and event["result"] == "1/2-1/2"
    assert outcome.corrected and outcome.result == "1/2-1/2"


def test_a_withdrawn_result_reopens_the_game() -> None:
    """A result withdrawn back to * is a takeback at the current ply and nothing more."""
    relay = Relay()
    relay.push(pgn(OPERA[:20], "0-1"))
    outcome = relay.push(pgn(OPERA[:20], "*"))
    [event] = outcome.events
    assert event["type"] == "takeback" and event["ply"] == 20
    assert outcome.corrected and outcome.result == "*"
    assert relay.state.status == "started" and relay.state.ply == 20
    assert relay.push(pgn(OPERA[:21])).moves_added == 1


def test_moves_after_a_premature_result_reopen_the_game() -> None:
    """A board that plays on after showing a result was wrong: the game continues."""
    relay = Relay()
    relay.push(pgn(OPERA[:6], "1-0"))
    outcome = relay.push(pgn(OPERA[:8]))
    assert [e["type"] for e in outcome.events] == ["takeback", "move", "move"]
    assert outcome.corrected and relay.state.status == "started"


# --- results ---


def test_checkmate_ends_by_rule_whatever_the_tag() -> None:
    """Mate on the board ends the game 1-0 by checkmate with a * tag, and a wrong tag changes nothing."""
    relay = Relay()
    outcome = relay.push(pgn(OPERA, "*"))
    assert (relay.state.result, relay.state.termination) == ("1-0", "checkmate")
    assert outcome.events[-1]["type"] == "end"
    assert relay.push(pgn(OPERA, "1-0")).events == []
    wrong = relay.push(pgn(OPERA, "0-1"))
    assert wrong.events == [] and wrong.result == "1-0"
    assert wrong.error is not None and "checkmate" in wrong.error


def test_a_result_the_moves_do_not_decide_is_the_arbiters() -> None:
    """A decisive Result tag on an open position ends the game with termination arbiter."""
    relay = Relay()
    outcome = relay.push(pgn(OPERA[:9], "0-1"))
    assert outcome.events[-1]["type"] == "end"
    assert (relay.state.result, relay.state.termination) == ("0-1", "arbiter")


def test_a_result_without_any_move() -> None:
    """A forfeit-like result on a game that never started ends it without starting it."""
    relay = Relay()
    outcome = relay.push(pgn([], "1-0"))
    assert [e["type"] for e in outcome.events] == ["end"]
    assert relay.state.result == "1-0"


def test_a_forfeited_board_is_left_alone() -> None:
    """A game the arbiter decided by forfeit is not reopened by the board."""
    from engine.rules import commands

    state = relay_game()
    state = evolve_all(state, commands.decide(state, "1-0", "forfeit", 0), 0)
    outcome = relay_events(state, read_one(pgn(OPERA[:4])), 0)
    assert outcome.events == [] and outcome.error is not None


# --- reading PGN ---


def test_comments_nags_variations_and_clock_formats() -> None:
    """Only the mainline is read; [%clk] with fractions is parsed, [%emt] and the rest ignored."""
    text = """[Event "x"]
[White "A"]
[Black "B"]
[Result "*"]
[Unknown "tag \\"quoted\\""]

{ A game comment [%clk 9:99:99] } 1. e4 $1 {[%clk 1:29:56]} {[%emt 0:00:04]} 1... e5!? { [%clk 1:29:50.5] }
; a line comment 2. h4
2.Nf3 {[%clk 1:29:00]} (2. Nc3 {[%clk 0:00:01]} Nf6 (2... Nc6 3. Bb5) 3. f4) 2... Nc6?! {[%eval 0.3] [%clk 1:28:00.25]}
% an escaped line 3. a4
3. Bb5 a6 *
"""
    [game] = split_games(text)
    assert game.tags["Unknown"] == 'tag "quoted"'
    moves = read_moves(game)
    assert moves.sans == ("e4", "e5", "Nf3", "Nc6", "Bb5", "a6")
    assert moves.clocks_ms == (5_396_000, 5_390_500, 5_340_000, 5_280_250, None, None)
    assert moves.error is None and moves.is_complete


def test_real_games_read_back_as_python_chess_reads_them() -> None:
    """Every game of tests/data/games reads to python-chess's mainline, clocks and result."""
    for path in sorted(GAMES.glob("*.pgn")):
        text = path.read_text()
        expected = chess.pgn.read_game(io.StringIO(text))
        assert expected is not None
        [game] = split_games(text)
        moves = read_moves(game)
        nodes = list(expected.mainline())
        assert list(moves.sans) == [n.san() for n in nodes], path.name
        assert [c / 1000 for c in moves.clocks_ms if c is not None] == pytest.approx(
            [n.clock() for n in nodes]
        )
        assert moves.result == expected.headers["Result"]


def test_real_games_relay_to_their_python_chess_ending() -> None:
    """Relayed in full, each sample game ends as python-chess says (by rule or by tag)."""
    for path in sorted(GAMES.glob("*.pgn")):
        text = path.read_text()
        [game] = split_games(text)
        fen = game.tags.get("FEN", chess.STARTING_FEN)
        relay = Relay(relay_game(fen=fen))
        outcome = relay.push(text)
        assert outcome.error is None, path.name
        assert relay.state.result == game.tags["Result"], path.name
        board = chess.pgn.read_game(io.StringIO(text)).end().board()  # type: ignore[union-attr]
        assert relay.state.board.fen() == board.fen()
        assert relay.push(text).events == []


def test_split_keeps_tag_lines_inside_comments_and_digests_are_stable() -> None:
    """A tag-like line inside a comment stays in its game; equal text, equal digest."""
    one = pgn(OPERA[:4], board=1)
    inside = pgn(OPERA[:2], board=2).replace("{[%clk 1:30:00]}", '{ see\n[Board "9"]\nbelow }')
    text = one + inside + pgn(OPERA[:6], board=3)
    games = split_games(text)
    assert [g.board for g in games] == [1, 2, 3]
    assert read_moves(games[1]).sans == tuple(OPERA[:2])
    again = split_games(text.replace("\n", "\r\n"))
    assert [g.digest for g in again] == [g.digest for g in games]
    changed = split_games(one + inside + pgn(OPERA[:7], board=3))
    assert [g.digest == h.digest for g, h in zip(games, changed, strict=True)] == [
        True,
        True,
        False,
    ]


def test_text_before_the_first_header_is_a_game_without_tags() -> None:
    """Leading garbage is reported as a tagless game; the games after it are intact."""
    games = split_games("garbage here\n\n" + pgn(OPERA[:3]))
    assert games[0].tags == {} and games[1].board == 1
    assert read_moves(games[0]).error is not None
    assert read_moves(games[1]).sans == tuple(OPERA[:3])


# --- garbage ---


def test_an_illegal_move_keeps_the_moves_before_it_and_names_itself() -> None:
    """An illegal move at ply 6 is the game's error; plies 1-5 are stored, nothing after."""
    relay = Relay()
    outcome = relay.push(pgn([*OPERA[:5], "Qh5", *OPERA[6:9]]))
    assert outcome.moves_added == 5 and relay.sans() == OPERA[:5]
    assert outcome.error is not None and "3...Qh5" in outcome.error and "ply 6" in outcome.error
    assert relay.push(pgn(OPERA[:9])).moves_added == 4


def test_a_final_king_move_to_the_centre_is_the_boards_result_signal() -> None:
    """An illegal last king move to d4, d5, e4 or e5 (DGT boards' pieces put back) is dropped; elsewhere, or not last, it is an error."""
    relay = Relay()
    outcome = relay.push(pgn([*OPERA[:6], "Ke4"], "1-0"))
    assert outcome.error is None and relay.sans() == OPERA[:6]
    assert relay.state.result == "1-0"
    for line in ([*OPERA[:6], "Ke3"], [*OPERA[:6], "Ke4", *OPERA[6:8]], [*OPERA[:6], "Qd4"]):
        assert Relay().push(pgn(line)).error is not None


def test_clock_tags_give_the_last_moves_their_clocks() -> None:
    """WhiteClock and BlackClock set the clocks of the last two moves that have no [%clk]."""
    text = pgn(OPERA[:5], extra='[WhiteClock "1:20:00"]\n[BlackClock "4700"]')
    text = re.sub(r" \{\[%clk [^]]*\]\}", "", text)
    read = read_one(text)
    assert read.clocks_ms == (None, None, None, 4_700_000, 4_800_000)
    kept = read_one(pgn(OPERA[:5], extra='[WhiteClock "0:00:01"]'))
    assert kept.clocks_ms[-1] != 1000


def test_a_garbled_move_where_a_stored_one_stands_takes_nothing_back() -> None:
    """An illegal move at a stored ply is an error, not a correction."""
    relay = Relay()
    relay.push(pgn(OPERA[:10]))
    outcome = relay.push(pgn([*OPERA[:3], "Ke3", *OPERA[4:10]]))
    assert outcome.events == [] and outcome.error is not None and "2...Ke3" in outcome.error
    assert relay.sans() == OPERA[:10]


def test_unreadable_words_stop_reading_without_taking_back() -> None:
    """A word that is no move ends the read there; a shorter read takes nothing back."""
    relay = Relay()
    relay.push(pgn(OPERA[:10]))
    outcome = relay.push(pgn([*OPERA[:4], "X#&k", *OPERA[5:10]]))
    assert outcome.events == [] and outcome.error is not None and "X#&k" in outcome.error
    assert relay.state.ply == 10


def test_a_truncated_game_adds_its_complete_moves_only() -> None:
    """Text cut inside a move adds the moves before it and takes nothing back."""
    full = pgn(OPERA[:12], clocks=[60_000] * 12)
    relay = Relay()
    relay.push(pgn(OPERA[:8]))
    cut = full[: full.rindex(OPERA[11]) + 2]  # "Nf6" cut to "Nf"
    outcome = relay.push(cut)
    assert relay.sans() == OPERA[:11] and outcome.moves_added == 3
    assert outcome.error is not None and "cut short" in outcome.error
    short = full[: full.index("5.")]
    outcome = relay.push(short)
    assert outcome.events == [] and relay.state.ply == 11
    castled = pgn(OPERA[:23])
    outcome = relay.push(castled[: castled.index("O-O-O") + 3])  # "O-O-O" cut to "O-O"
    assert relay.sans() == OPERA[:22] and outcome.error is not None
    in_comment = full[: full.rindex("[%clk")]
    assert relay.push(in_comment).error == "unterminated comment after ply 12"
    assert relay.sans() == OPERA[:22]


def test_an_unclosed_variation_is_an_error() -> None:
    """A variation left open ends the read: the mainline before it is used."""
    moves = read_one('[Board "1"]\n\n1. e4 e5 2. Nf3 (2. f4 exf4 *')
    assert moves.sans == ("e4", "e5", "Nf3") and moves.error is not None and not moves.is_complete


def test_another_start_position_is_refused() -> None:
    """A pushed [FEN] that is not the game's start position is the game's error."""
    extra = '[FEN "4k3/8/8/8/8/8/4P3/4K3 w - - 0 1"]\n[SetUp "1"]'
    outcome = Relay().push(pgn(["e3"], extra=extra))
    assert outcome.events == [] and outcome.error is not None


def test_a_server_game_is_not_relayed() -> None:
    """Pushing to a server game is an error with no events."""
    setup = GameSetup(id="g0000002", white=Player("A"), black=Player("B"), control=CONTROL)
    outcome = relay_events(GameState.new(setup), read_one(pgn(OPERA[:2])), 0)
    assert outcome.events == [] and outcome.error == "not a relay game"


def test_one_bad_game_leaves_the_others_of_the_push_alone() -> None:
    """In a push of three games, the illegal one errs and the other two are relayed in full."""
    text = pgn(OPERA[:6], board=1) + pgn(["e4", "e5", "Ke3"], board=2) + pgn(OPERA[:9], board=3)
    outcomes = [
        relay_events(relay_game(f"g000000{i}"), read_moves(game), 0)
        for i, game in enumerate(split_games(text))
    ]
    assert [o.moves_added for o in outcomes] == [6, 2, 9]
    assert [o.error is None for o in outcomes] == [True, False, True]


@given(st.binary(max_size=2000))
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
def test_random_bytes_never_raise(data: bytes) -> None:
    """Any bytes, decoded as the route would, split and relay without raising."""
    text = data.decode("utf-8", "replace")
    for game in split_games(text) + split_games(pgn(OPERA[:4]) + text):
        relay_events(relay_game(), read_moves(game), 0)


@given(st.text(alphabet='[]{}()";$!?%.*-/\n 0123456789abcdefghNBRQKOx=+#', max_size=400))
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
def test_pgn_shaped_noise_never_raises(noise: str) -> None:
    """Text made of PGN's own punctuation and move letters splits and relays without raising."""
    for game in split_games(pgn(OPERA[:4]) + noise):
        relay_events(relay_game(), read_moves(game), 0)


# --- convergence ---


def exported(board: chess.Board, clocks: list[int], result: str, upto: int) -> str:
    """The first ``upto`` moves of ``board``'s game, with clocks, written by python-chess."""
    game = chess.pgn.Game()
    game.headers["White"] = "Carlsen, Magnus"
    game.headers["Black"] = "Nepomniachtchi, Ian"
    game.headers["Board"] = "1"
    game.headers["Result"] = result
    node: chess.pgn.GameNode = game
    for move, ms in zip(board.move_stack[:upto], clocks, strict=False):
        node = node.add_variation(move)
        node.set_clock(ms / 1000)
    return str(game) + "\n\n"


def position(board: chess.Board, upto: int) -> chess.Board:
    """The position after the first ``upto`` moves of ``board``'s game."""
    start = chess.Board()
    for move in board.move_stack[:upto]:
        start.push(move)
    return start


def random_game(draw: st.DrawFn, start: chess.Board | None = None) -> tuple[chess.Board, list[int]]:
    """A random legal game (to its end by rule or up to 60 plies) with random clocks,
    continuing ``start`` when given."""
    board = start.copy() if start is not None else chess.Board()
    for _ in range(draw(st.integers(0, 60))):
        if board.outcome(claim_draw=False) is not None:
            break
        board.push(draw(st.sampled_from(list(board.legal_moves))))
    clocks = draw(st.lists(st.integers(0, 5_400_000), min_size=board.ply(), max_size=board.ply()))
    return board, clocks


@st.composite
def pushes_of_two_lines(draw: st.DrawFn) -> list[tuple[chess.Board, list[int], int, str]]:
    """Pushes of prefixes of a game and of another game branching off it, then the game in full."""
    main, main_clocks = random_game(draw)
    branch_at = draw(st.integers(0, main.ply()))
    other, other_clocks = random_game(draw, position(main, branch_at))
    # Stored moves keep their clocks (see engine.rules.relay): where the two games agree on
    # the moves, they agree on the clocks.
    common = 0
    for a, b in zip(main.move_stack, other.move_stack, strict=False):
        if a != b:
            break
        common += 1
    other_clocks = main_clocks[:common] + other_clocks[common:]
    steps = draw(
        st.lists(
            st.tuples(st.booleans(), st.integers(0, 60), st.sampled_from(["*", "1-0", "1/2-1/2"])),
            max_size=6,
        )
    )
    pushes = []
    for is_other, upto, result in steps:
        board, clocks = (other, other_clocks) if is_other else (main, main_clocks)
        pushes.append((board, clocks, min(upto, board.ply()), result))
    outcome = main.outcome(claim_draw=False)
    final = outcome.result() if outcome is not None else draw(st.sampled_from(["*", "0-1"]))
    return [*pushes, (main, main_clocks, main.ply(), final)]


@given(pushes_of_two_lines())
@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
def test_pushed_games_converge_to_the_last_push(
    pushes: list[tuple[chess.Board, list[int], int, str]],
) -> None:
    """Prefixes of two games sharing an opening, in any order, then one in full: after every
    push the stored game is exactly that push (moves, clocks, result), a second push of the
    same text adds nothing, and the log rebuilds the game."""
    relay = Relay()
    for board, clocks, upto, result in pushes:
        text = exported(board, clocks, result, upto)
        relay.push(text)
        assert [m.uci for m in relay.state.moves] == [m.uci() for m in board.move_stack[:upto]]
        assert [m.clock_ms for m in relay.state.moves] == clocks[:upto]
        rule = position(board, upto).outcome(claim_draw=False)
        assert relay.state.result == (result if rule is None else rule.result())
        assert relay.state.board.fen() == position(board, upto).fen()
        assert relay.push(text).events == []
    rebuilt = GameState.rebuild(relay.state.setup, relay.log, relay.now)
    assert rebuilt.moves == relay.state.moves and rebuilt.result == relay.state.result
    assert rebuilt.line == relay.state.line
    assert [e["seq"] for e in relay.log] == list(range(1, len(relay.log) + 1))


def test_garbage_is_told_from_pgn() -> None:
    """Binary bytes and text without a tag pair are not PGN; a PGN with bad games may be."""
    assert pgn_problem(bytes(range(256)).decode("latin-1")) == "not PGN: binary content"
    assert pgn_problem("<html>502</html>") is not None
    assert pgn_problem('[White "A"]\n[Black "B"]\n\n1. e4 Zz9 *\n') is None
