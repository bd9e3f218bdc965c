"""DGT LiveChess Cloud documents read into a round PGN that the relay pipeline accepts."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import chess
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.rules.livechess import (
    MAX_BOARDS,
    MAX_FILE_BYTES,
    MAX_PLIES,
    LiveChessError,
    LiveGame,
    LivePairing,
    LivePlayer,
    LiveRound,
    game_pgn,
    parse_game,
    parse_index,
    round_pgn,
)
from engine.rules.relay import read_moves, split_games

DATA = Path(__file__).parents[2] / "data" / "livechess"
ROUND = DATA / "round-1"


def read(path: Path) -> bytes:
    """A fixture document as the server sends it."""
    return path.read_bytes()


def fixture_round() -> tuple[LiveRound, dict[int, LiveGame | str]]:
    """The fixture round: its index and its three game files, parsed."""
    index = parse_index(read(ROUND / "index.json"))
    games: dict[int, LiveGame | str] = {
        n: parse_game(read(ROUND / f"game-{n}.json")) for n in (1, 2, 3)
    }
    return index, games


def test_index_gives_boards_players_titles_fide_ids_results_and_date() -> None:
    """Pairings become boards 1..n, names "Last, First Middle", titles, FIDE ids and results."""
    index = parse_index(read(ROUND / "index.json"))
    assert index.date == "2024.05.01"
    assert [p.board for p in index.pairings] == [1, 2, 3]
    first = index.pairings[0]
    assert first.white == LivePlayer("Carlsen, Magnus", "GM", 1503014)
    assert first.black == LivePlayer("Nakamura, Hikaru", "GM", 2016192)
    assert [p.result for p in index.pairings] == ["*", "1/2-1/2", "*"]
    third = index.pairings[2]
    assert third.white == LivePlayer("Kowalska, Anna Maria", None, None)
    assert third.black == LivePlayer("de Vries, Jan", "FM", 1000000)


def test_game_moves_carry_remaining_time_and_the_clock_object_wins_for_the_last_moves() -> None:
    """``SAN clk+emt`` gives remaining and spent seconds; ``+emt`` alone or a bare SAN give no
    remaining time; the ``clock`` object replaces the last move of each colour (lila's rule)."""
    game = parse_game(read(ROUND / "game-1.json"))
    assert [m.san for m in game.moves] == ["e4", "c5", "Nf3", "d6", "d4", "cxd4"]
    assert [m.clock_s for m in game.moves] == [5400, 5390, 5385, None, 5310, 5281]
    assert [m.spent_s for m in game.moves] == [12, 10, 45, 38, None, 98]
    assert game.result == "*" and game.error is None and game.fen is None


def test_lila_move_strings_read_as_lila_reads_them() -> None:
    """The move shapes of lila's GameJsonTest: clock and time spent, time spent alone, clock alone."""
    doc = {"moves": ["d4 1852+6", "Nc6 +26", "Kxg3 1521", "c8=Q +18", "Qc8# 1796+10"]}
    game = parse_game(json.dumps(doc))
    assert [(m.san, m.clock_s, m.spent_s) for m in game.moves] == [
        ("d4", 1852, 6),
        ("Nc6", None, 26),
        ("Kxg3", 1521, None),
        ("c8=Q", None, 18),
        ("Qc8#", 1796, 10),
    ]


def test_round_pgn_is_read_by_the_relay_pipeline_with_moves_clocks_and_results() -> None:
    """The round PGN splits into one game per board with Board and Round tags, and
    read_moves gives the SAN, the clocks in ms and the result of each."""
    index, games = fixture_round()
    built = round_pgn(4, index, games)
    assert built.errors == {}
    pushed = split_games(built.text)
    assert [(g.board, g.round_board) for g in pushed] == [(1, (4, 1)), (2, (4, 2)), (3, (4, 3))]
    tags = pushed[0].tags
    assert (tags["White"], tags["Black"]) == ("Carlsen, Magnus", "Nakamura, Hikaru")
    assert (tags["WhiteTitle"], tags["WhiteFideId"], tags["BlackFideId"]) == (
        "GM",
        "1503014",
        "2016192",
    )
    assert tags["Date"] == "2024.05.01"
    assert "WhiteTitle" not in pushed[2].tags and "WhiteFideId" not in pushed[2].tags
    first = read_moves(pushed[0])
    assert first.sans == ("e4", "c5", "Nf3", "d6", "d4", "cxd4")
    assert first.clocks_ms == (5_400_000, 5_390_000, 5_385_000, None, 5_310_000, 5_281_000)
    assert (first.result, first.is_complete) == ("*", True)
    second = read_moves(pushed[1])
    assert (second.result, second.is_complete, len(second.sans)) == ("1/2-1/2", True, 6)
    third = read_moves(pushed[2])
    assert third.sans[-2:] == ("Nf6", "Qxf7#")
    assert third.clocks_ms[-1] == 5_360_000


def test_the_game_files_result_overrides_the_index_and_unknown_results_are_none() -> None:
    """A decided result in the game file wins over the index's; an undecided one leaves the
    index's; a result that is no PGN result is no result."""
    pairing = LivePairing(1, None, None, "1-0")
    decided = LiveGame((), "0-1")
    undecided = LiveGame((), "*")
    assert read_moves(split_games(game_pgn(1, pairing, decided))[0]).result == "0-1"
    assert read_moves(split_games(game_pgn(1, pairing, undecided))[0]).result == "1-0"
    doc = {
        "pairings": [
            {"result": "white wins"},
            {"result": "\u00bd\u2013\u00bd"},
            {"result": "0\u20141"},
        ]
    }
    assert [p.result for p in parse_index(json.dumps(doc)).pairings] == ["*", "1/2-1/2", "0-1"]
    assert parse_game('{"moves": [], "result": "1-0"}').result == "1-0"


def test_an_unreadable_move_cuts_the_game_without_result_or_takeback() -> None:
    """The moves before a bad move string are kept; the PGN game ends with a comment and no
    marker, so the relay reads it as cut short (no takeback, no result), and the board's
    error names the move."""
    game = parse_game(read(DATA / "game-bad-move.json"))
    assert [m.san for m in game.moves] == ["e4", "e5", "Nf3"]
    assert game.error is not None and "move 4" in game.error
    index = LiveRound(None, (LivePairing(1, LivePlayer("A"), LivePlayer("B"), "1-0"),))
    built = round_pgn(1, index, {1: game})
    assert "1" in str(built.errors) and "move 4" in built.errors[1]
    (pushed,) = split_games(built.text)
    moves = read_moves(pushed)
    assert moves.sans == ("e4", "e5", "Nf3")
    assert not moves.is_complete
    assert "Result" not in pushed.tags


def test_a_board_whose_file_could_not_be_had_is_left_out_and_reported() -> None:
    """A board given a reason, or no game at all, is not in the text; the others are."""
    index, games = fixture_round()
    games[2] = "game-2.json: HTTP 500"
    del games[3]
    built = round_pgn(1, index, games)
    assert [g.board for g in split_games(built.text)] == [1]
    assert built.errors == {2: "game-2.json: HTTP 500", 3: "game-3.json was not read"}


def test_a_chess960_game_carries_its_start_position() -> None:
    """``chess960`` other than 518 is a FEN tag of that position, which the relay reads."""
    game = parse_game(read(DATA / "game-960.json"))
    assert game.fen == chess.Board.from_chess960_pos(0).fen()
    (pushed,) = split_games(game_pgn(1, LivePairing(1, None, None), game))
    assert read_moves(pushed).fen == game.fen
    assert parse_game('{"moves": [], "chess960": 518}').fen is None


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"not json", "not JSON"),
        (b"\xff\xfe\x00garbage", "not JSON"),
        (b"[]", "expected an object"),
        (b"{}", "'pairings' is missing"),
        (b'{"pairings": {}}', "'pairings' is missing or not a list"),
        (b'{"pairings": [1]}', "pairing 1: expected an object"),
        (b'{"pairings": [{"white": "Carlsen"}]}', "white: expected an object"),
        (b'{"pairings": [{"white": {"lname": 7}}]}', "'lname' should be a string"),
        (b'{"pairings": [{"white": {"fideid": 1.5}}]}', "'fideid'"),
        (b'{"pairings": [{"white": {"fideid": true}}]}', "'fideid'"),
        (b'{"pairings": [{"result": 1}]}', "'result' should be a string"),
        (b'{"pairings": [], "date": 20240501}', "'date' should be a string"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"pairings": [' + b"{}," * MAX_BOARDS + b"{}]}", "pairings (at most"),
        (b'{"pairings": [], "x": "' + b"a" * MAX_FILE_BYTES + b'"}', "larger than"),
        (b'{"pairings": [], "n": ' + b"9" * 5000 + b"}", "not JSON"),
    ],
)
def test_bad_index_documents_raise_livechess_error(raw: bytes, message: str) -> None:
    """Every unreadable index raises LiveChessError naming the problem."""
    with pytest.raises(LiveChessError, match=message.replace("(", r"\(")):
        parse_index(raw)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (read(DATA / "game-bad-type.json"), "'moves' is missing or not a list"),
        (b"{}", "'moves' is missing"),
        (b'{"moves": [], "result": ["1-0"]}', "'result' should be a string"),
        (b'{"moves": [], "clock": "1:00:00"}', "'clock' should be an object"),
        (b'{"moves": [], "clock": {"white": "5400"}}', "'white' should be an integer"),
        (b'{"moves": [], "chess960": "518"}', "'chess960' should be an integer"),
        (b'{"moves": [], "chess960": 960}', "not 0 to 959"),
        (b'{"moves": [' + b'"e4",' * MAX_PLIES + b'"e5"]}', "moves (at most"),
        (b"\x00", "not JSON"),
    ],
)
def test_bad_game_documents_raise_livechess_error(raw: bytes, message: str) -> None:
    """Every unreadable game file raises LiveChessError naming the problem."""
    with pytest.raises(LiveChessError, match=message.replace("(", r"\(")):
        parse_game(raw)


def test_a_non_string_move_cuts_the_game_and_absurd_clocks_are_no_clock() -> None:
    """A move that is not a string is a bad move; a remaining time of more than 7 digits is none."""
    game = parse_game('{"moves": ["e4 99999999", "e5 12", 7, "Nf3"]}')
    assert [(m.san, m.clock_s) for m in game.moves] == [("e4", None), ("e5", 12)]
    assert game.error is not None and "int" in game.error


# --- properties ---


@st.composite
def legal_games(draw: st.DrawFn) -> tuple[list[str], list[int | None], list[int | None]]:
    """A random legal game: its SAN, remaining seconds (some missing), spent seconds."""
    board = chess.Board()
    sans: list[str] = []
    for _ in range(draw(st.integers(0, 60))):
        moves = list(board.legal_moves)
        if not moves:
            break
        move = moves[draw(st.integers(0, len(moves) - 1))]
        sans.append(board.san(move))
        board.push(move)
    clocks = draw(
        st.lists(st.none() | st.integers(0, 9_999_999), min_size=len(sans), max_size=len(sans))
    )
    spent = draw(
        st.lists(st.none() | st.integers(0, 99_999), min_size=len(sans), max_size=len(sans))
    )
    return sans, clocks, spent


def live_move(san: str, clock: int | None, spent: int | None) -> str:
    """A move as LiveChess writes it."""
    times = ("" if clock is None else str(clock)) + ("" if spent is None else f"+{spent}")
    return f"{san} {times}" if times else san


RESULTS = st.sampled_from([None, "*", "1-0", "0-1", "1/2-1/2"])


@given(legal_games(), RESULTS, RESULTS)
@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
def test_legal_games_go_through_livechess_json_and_come_back_the_same(
    game: tuple[list[str], list[int | None], list[int | None]],
    index_result: str | None,
    game_result: str | None,
) -> None:
    """A random legal game written as LiveChess JSON and read back through the round PGN
    and the relay reader has the same SAN, the same clocks and the expected result."""
    sans, clocks, spent = game
    doc = {"moves": [live_move(*m) for m in zip(sans, clocks, spent, strict=True)]}
    if game_result is not None:
        doc["result"] = game_result
    index = {
        "pairings": [{"white": {"lname": "W"}, "black": {"lname": "B"}, "result": index_result}]
    }
    built = round_pgn(2, parse_index(json.dumps(index)), {1: parse_game(json.dumps(doc))})
    assert built.errors == {}
    (pushed,) = split_games(built.text)
    moves = read_moves(pushed)
    assert list(moves.sans) == sans
    assert list(moves.clocks_ms) == [None if c is None else c * 1000 for c in clocks]
    expected = game_result if game_result not in (None, "*") else index_result or "*"
    assert (moves.result, moves.is_complete, moves.error) == (expected, True, None)
    assert pushed.board == 1 and pushed.round_board == (2, 1)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=30,
)
PLAYER = st.fixed_dictionaries(
    {},
    optional={k: JSON | st.text() for k in ("fname", "mname", "lname", "title", "fideid")},
)
PAIRING = st.fixed_dictionaries(
    {}, optional={"white": PLAYER | JSON, "black": PLAYER | JSON, "result": JSON}
)
INDEX = JSON | st.fixed_dictionaries(
    {"pairings": st.lists(PAIRING | JSON, max_size=6)}, optional={"date": JSON | st.text()}
)
GAME = JSON | st.fixed_dictionaries(
    {"moves": st.lists(st.text(max_size=12) | JSON, max_size=8) | JSON},
    optional={
        "result": JSON,
        "clock": JSON | st.fixed_dictionaries({}, optional={"white": JSON, "black": JSON}),
        "chess960": JSON | st.integers(-5, 1000),
    },
)


@given(INDEX, GAME)
@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
def test_arbitrary_json_raises_nothing_but_livechess_error_and_any_parse_builds(
    index_doc: Any, game_doc: Any
) -> None:
    """Any JSON value parses or raises LiveChessError; whatever parses builds a round PGN that
    splits into one game per board, in board order."""
    try:
        index = parse_index(json.dumps(index_doc))
    except LiveChessError:
        index = LiveRound(None, (LivePairing(1, None, None),))
    try:
        game: LiveGame | str = parse_game(json.dumps(game_doc))
    except LiveChessError as exc:
        game = str(exc)
    games = {p.board: game for p in index.pairings}
    built = round_pgn(1, index, games)
    pushed = split_games(built.text)
    boards = [] if isinstance(game, str) else [p.board for p in index.pairings]
    # (An empty text is one game without tags to split_games.)
    assert [g.board for g in pushed if g.tags] == boards
    assert built.text or not boards
    for g in pushed:
        read_moves(g)


@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_arbitrary_bytes_raise_nothing_but_livechess_error(raw: bytes) -> None:
    """Bytes that are no JSON (or the wrong JSON) raise LiveChessError and nothing else."""
    for parse in (parse_index, parse_game):
        with contextlib.suppress(LiveChessError):
            parse(raw)


@given(st.text(), st.text(), st.text())
def test_any_name_survives_as_one_tag_value(first: str, last: str, title: str) -> None:
    """Quotes, backslashes, brackets and line breaks in names do not break the PGN: the tag
    read back is the name with control characters dropped and spaces collapsed."""
    doc = {"pairings": [{"white": {"fname": first, "lname": last, "title": title}}]}
    index = parse_index(json.dumps(doc))
    (pushed,) = split_games(round_pgn(1, index, {1: LiveGame(())}).text)
    white = index.pairings[0].white
    assert pushed.board == 1
    assert pushed.tags.get("White", "") == ("" if white is None else white.name)
    assert "\n" not in pushed.tags.get("White", "")


def test_control_characters_and_lone_surrogates_leave_names() -> None:
    """A name with NUL, escape codes or a lone surrogate (legal in JSON escapes) is written
    without them, so the round PGN is plain UTF-8 text."""
    raw = b'{"pairings": [{"white": {"fname": "Ma\\u0000gnus\\u001b", "lname": "Carl\\ud800sen"}}]}'
    index = parse_index(raw)
    assert index.pairings[0].white == LivePlayer("Carlsen, Magnus")
    text = round_pgn(1, index, {1: LiveGame(())}).text
    assert split_games(text.encode("utf-8").decode())[0].tags["White"] == "Carlsen, Magnus"
