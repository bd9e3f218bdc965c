"""Tests for engine.uci.commands: every command parsed, and malformed lines refused."""

from __future__ import annotations

import chess
import pytest

from engine.uci.commands import (
    Go,
    IsReady,
    PonderHit,
    Position,
    Quit,
    SetOption,
    Stop,
    Uci,
    UciError,
    UciNewGame,
    parse_command,
)


@pytest.mark.parametrize(
    ("line", "command"),
    [
        ("uci", Uci()),
        ("isready\n", IsReady()),
        ("  ucinewgame  ", UciNewGame()),
        ("stop", Stop()),
        ("ponderhit", PonderHit()),
        ("quit", Quit()),
    ],
)
def test_simple_commands(line: str, command: object) -> None:
    """Commands without arguments parse whatever the surrounding whitespace."""
    assert parse_command(line) == command


def test_blank_line_is_nothing() -> None:
    """An empty line is not a command and not an error."""
    assert parse_command("   \n") is None


def test_position_startpos_with_moves() -> None:
    """`position startpos moves ...` keeps the start and the moves in order."""
    command = parse_command("position startpos moves e2e4 e7e5 g1f3")
    assert command == Position(chess.STARTING_FEN, ("e2e4", "e7e5", "g1f3"))
    assert isinstance(command, Position)
    assert command.board().fen() == (
        "rnbqkbnr/pppp1ppp/8/4p3/4P3/5N2/PPPP1PPP/RNBQKB1R b KQkq - 1 2"
    )


def test_position_fen_with_and_without_moves() -> None:
    """`position fen <fen> [moves ...]` reads the six FEN fields up to `moves`."""
    fen = "6k1/5pp1/7p/8/8/8/5PPP/3R2K1 w - - 0 1"
    assert parse_command(f"position fen {fen}") == Position(fen, ())
    assert parse_command(f"position fen {fen} moves d1d7 g8h8") == Position(fen, ("d1d7", "g8h8"))


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("position", "startpos"),
        ("position middlegame", "startpos"),
        ("position fen", "startpos"),
        ("position fen not/a/fen w - - 0 1", "bad FEN"),
        ("position fen 8/8/8/8/8/8/8/8 w - - 0 1", "impossible position"),
        ("position startpos moves e2e5", "illegal move 'e2e5'"),
        ("position startpos moves e2e4 e2e4", "illegal move 'e2e4'"),
        ("position startpos moves 0000", "null move"),
        ("go depth", "needs a number"),
        ("go depth x", "needs a number"),
        ("go depth 0", "positive"),
        ("go movetime -5", "positive"),
        ("go mate 0", "positive"),
        ("go searchmoves", "at least one move"),
        ("go searchmoves depth 3", "at least one move"),
        ("go searchmoves e2e4 xyz", "not a move 'xyz'"),
        ("go searchmoves e2", "not a move 'e2'"),
        ("go bogus 3", "unknown go parameter 'bogus'"),
        ("setoption Hash 12", "setoption needs"),
        ("setoption name", "setoption needs"),
        ("register later", "unknown command 'register'"),
    ],
)
def test_malformed_lines_are_refused(line: str, message: str) -> None:
    """A malformed command, illegal position or illegal move raises UciError saying why."""
    with pytest.raises(UciError, match=message):
        parse_command(line)


def test_go_with_every_limit() -> None:
    """Clock, increment, moves to go, depth, nodes and flags are all read."""
    command = parse_command(
        "go wtime 60000 btime 59000 winc 1000 binc 900 movestogo 20 depth 9 nodes 5000 ponder"
    )
    assert command == Go(
        wtime_ms=60000,
        btime_ms=59000,
        winc_ms=1000,
        binc_ms=900,
        movestogo=20,
        depth=9,
        nodes=5000,
        ponder=True,
    )
    assert parse_command("go movetime 300") == Go(movetime_ms=300)
    assert parse_command("go infinite") == Go(infinite=True)
    assert parse_command("go") == Go()
    assert parse_command("go mate 2") == Go(mate=2)


def test_searchmoves_run_to_the_next_keyword() -> None:
    """`searchmoves` takes every move up to the next `go` keyword, wherever it stands."""
    assert parse_command("go searchmoves e2e4 d2d4 depth 5") == Go(
        searchmoves=("e2e4", "d2d4"), depth=5
    )
    assert parse_command("go infinite searchmoves e7e8q") == Go(
        infinite=True, searchmoves=("e7e8q",)
    )


def test_go_accepts_a_negative_clock() -> None:
    """Some GUIs send a negative time once the clock has run out; it is not an error."""
    assert parse_command("go wtime -20 btime 100") == Go(wtime_ms=-20, btime_ms=100)


def test_setoption_names_and_values_may_hold_spaces() -> None:
    """`setoption` reads the name up to `value`, and a button has no value."""
    assert parse_command("setoption name Move Overhead value 50") == SetOption(
        "Move Overhead", "50"
    )
    assert parse_command("setoption name Clear Hash") == SetOption("Clear Hash", None)
