"""Tests for engine/__main__.py: `python -m engine` as a UCI engine, driven by real clients.

Most tests use python-chess's `chess.engine` as the GUI; a few speak the protocol by hand, to
send what a well-behaved client never sends or to see the order of the lines. Every search is
bounded by depth, nodes or a clock the test keeps, and every wait has a generous bound.
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import chess
import chess.engine
import pytest

from engine.__main__ import _Session
from engine.uci.commands import parse_command

ROOT = Path(__file__).resolve().parent.parent.parent
COMMAND = [sys.executable, "-m", "engine"]
MIDDLEGAME = "r1bq1rk1/pp2bppp/2n1pn2/3p4/2PP4/2N1PN2/PP2BPPP/R2QKB1R w KQ - 0 8"
MATE_IN_1 = "6k1/5ppp/8/8/8/8/8/R5K1 w - - 0 1"
WAIT_S = 30.0


@pytest.fixture
def engine() -> Iterator[chess.engine.SimpleEngine]:
    """The engine started as a GUI would start it, quit at the end."""
    client = chess.engine.SimpleEngine.popen_uci(COMMAND, cwd=str(ROOT), timeout=WAIT_S)
    try:
        yield client
    finally:
        client.quit()


class RawEngine:
    """The engine process spoken to line by line, its output read by a thread into a queue."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            COMMAND,
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def expect(self, prefix: str) -> list[str]:
        """Read lines up to and including the first one starting with `prefix`."""
        seen: list[str] = []
        deadline = time.monotonic() + WAIT_S
        while True:
            try:
                line = self.lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                raise AssertionError(f"no {prefix!r} line; saw {seen}") from None
            seen.append(line)
            if line.startswith(prefix):
                return seen

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(WAIT_S)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()


@pytest.fixture
def raw() -> Iterator[RawEngine]:
    """The engine process with its pipes, killed at the end if still running."""
    process = RawEngine()
    try:
        yield process
    finally:
        process.close()


def test_uci_identifies_and_declares_options(engine: chess.engine.SimpleEngine) -> None:
    """`uci` gives a name and the Hash, Threads and Move Overhead options, which can be set."""
    assert engine.id["name"] == "Grandmaster PVS"
    assert engine.options["Hash"].type == "spin"
    assert (engine.options["Threads"].min, engine.options["Threads"].max) == (1, 1)
    assert engine.options["Move Overhead"].default == 30
    assert engine.options["MultiPV"].default == 1
    engine.configure({"Hash": 16, "Move Overhead": 50})
    engine.ping()  # isready: the engine is still there and answering
    assert engine.play(chess.Board(), chess.engine.Limit(depth=2)).move is not None


def test_go_depth_reports_every_depth_and_a_ponder_move(
    engine: chess.engine.SimpleEngine,
) -> None:
    """`go depth 4` reports info lines up to depth 4, then a best move with a ponder move."""
    board = chess.Board(MIDDLEGAME)
    infos: list[chess.engine.InfoDict] = []
    with engine.analysis(board, chess.engine.Limit(depth=4)) as analysis:
        for info in analysis:
            if "depth" in info:
                infos.append(info)
        best = analysis.wait()
    assert [info["depth"] for info in infos] == [1, 2, 3, 4]
    last = infos[-1]
    for key in ("seldepth", "score", "nodes", "nps", "time", "pv"):
        assert key in last, key
    assert last["seldepth"] >= 4
    assert best.move == last["pv"][0]
    assert best.ponder == last["pv"][1]
    assert board.is_legal(best.move)


# White takes the queen with the knight or the bishop; anything else loses the bishop to it.
TWO_WAYS_TO_THE_QUEEN = "6k1/5ppp/8/3q3r/8/2N2B2/5PPP/6K1 w - - 0 1"


def test_multipv_gives_the_best_lines_in_order(engine: chess.engine.SimpleEngine) -> None:
    """`MultiPV` 3: three lines with different first moves, best first; the two captures of
    the queen lead."""
    board = chess.Board(TWO_WAYS_TO_THE_QUEEN)
    lines = engine.analyse(board, chess.engine.Limit(depth=4), multipv=3)
    assert [line["multipv"] for line in lines] == [1, 2, 3]
    assert {lines[0]["pv"][0].uci(), lines[1]["pv"][0].uci()} == {"c3d5", "f3d5"}
    assert lines[2]["pv"][0] not in (lines[0]["pv"][0], lines[1]["pv"][0])
    scores = [line["score"].relative.score() for line in lines]
    assert scores == sorted(scores, reverse=True), scores
    assert scores[1] > scores[2] + 300  # keeping the queen is worth far more than the rest


def test_multipv_plays_the_first_lines_move(raw: RawEngine) -> None:
    """With `MultiPV` 2 each depth reports both lines, and the move played heads the first."""
    raw.send("setoption name MultiPV value 2")
    raw.send(f"position fen {TWO_WAYS_TO_THE_QUEEN}")
    raw.send("go depth 3")
    seen = raw.expect("bestmove")
    infos = [line.split() for line in seen if line.startswith("info depth")]
    ranks = [(int(i[i.index("depth") + 1]), int(i[i.index("multipv") + 1])) for i in infos]
    assert ranks == [(1, 1), (1, 2), (2, 1), (2, 2), (3, 1), (3, 2)]
    first = next(i for i in reversed(infos) if i[i.index("multipv") + 1] == "1")
    assert seen[-1].split()[1] == first[first.index("pv") + 1]


def test_searchmoves_restricts_the_moves_searched(engine: chess.engine.SimpleEngine) -> None:
    """`go searchmoves` plays the best of the moves given, however good the others are."""
    board = chess.Board(TWO_WAYS_TO_THE_QUEEN)
    allowed = [chess.Move.from_uci("g1f1"), chess.Move.from_uci("f3h5")]
    result = engine.play(
        board, chess.engine.Limit(depth=3), root_moves=allowed, info=chess.engine.INFO_ALL
    )
    assert result.move == chess.Move.from_uci("f3h5")


def test_go_mate_stops_once_the_mate_is_found(engine: chess.engine.SimpleEngine) -> None:
    """`go mate 1` reports the mate and plays it at once, without confirming it deeper."""
    infos: list[chess.engine.InfoDict] = []
    with engine.analysis(chess.Board(MATE_IN_1), chess.engine.Limit(mate=1)) as analysis:
        for info in analysis:
            if "depth" in info:
                infos.append(info)
        best = analysis.wait()
    assert best.move == chess.Move.from_uci("a1a8")
    assert [info["depth"] for info in infos] == [1]
    assert infos[0]["score"].relative == chess.engine.Mate(1)


def test_scores_are_from_the_side_to_move(engine: chess.engine.SimpleEngine) -> None:
    """White mating is `mate 1` with White to move, and `mate -1` with Black to move and mated."""
    info = engine.analyse(chess.Board(MATE_IN_1), chess.engine.Limit(depth=3))
    assert info["score"].relative == chess.engine.Mate(1)
    # WAC.001 after Qg6: Black to move is mated next move whatever it does.
    mated = chess.Board("2rr3k/pp3pp1/1nnqbNQp/3pN3/2pP4/2P5/PPB4P/R4RK1 b - - 1 1")
    info = engine.analyse(mated, chess.engine.Limit(depth=4))
    assert info["score"].relative == chess.engine.Mate(-1)


def test_go_nodes_stays_within_the_budget(engine: chess.engine.SimpleEngine) -> None:
    """`go nodes N` never reports more than N nodes."""
    info = engine.analyse(chess.Board(MIDDLEGAME), chess.engine.Limit(nodes=3_000))
    assert 0 < info["nodes"] <= 3_000


def test_go_movetime_plays_a_legal_move(engine: chess.engine.SimpleEngine) -> None:
    """`go movetime` ends by itself with a legal move and the time it took."""
    board = chess.Board(MIDDLEGAME)
    result = engine.play(board, chess.engine.Limit(time=0.2), info=chess.engine.INFO_ALL)
    assert result.move is not None and board.is_legal(result.move)
    assert result.info["time"] > 0


def test_go_with_clocks_plays_a_legal_move(engine: chess.engine.SimpleEngine) -> None:
    """`go wtime btime winc binc movestogo` ends by itself with a legal move."""
    board = chess.Board()
    board.push_uci("e2e4")
    limit = chess.engine.Limit(
        white_clock=5.0, black_clock=3.0, white_inc=0.1, black_inc=0.1, remaining_moves=10
    )
    result = engine.play(board, limit)
    assert result.move is not None and board.is_legal(result.move)


def test_position_moves_from_a_fen_are_played(engine: chess.engine.SimpleEngine) -> None:
    """`position fen ... moves ...` is searched after the moves: the answer is Black's."""
    board = chess.Board(MIDDLEGAME)
    board.push_uci("c4d5")
    result = engine.play(board, chess.engine.Limit(depth=3))
    assert result.move is not None and board.is_legal(result.move)
    assert board.color_at(result.move.from_square) == chess.BLACK


def test_infinite_search_stops_when_told(engine: chess.engine.SimpleEngine) -> None:
    """`go infinite` runs until `stop`, which is answered with a best move at once."""
    board = chess.Board(MIDDLEGAME)
    with engine.analysis(board) as analysis:
        for info in analysis:
            if info.get("depth", 0) >= 3:
                break
        started = time.monotonic()
        analysis.stop()
        best = analysis.wait()
        waited_s = time.monotonic() - started
    assert best.move is not None and board.is_legal(best.move)
    # A loose bound that only a stop ignored until the search ends could miss; the latency
    # itself is measured by bench/uci_stop.py.
    assert waited_s < 1.0


def test_infinite_search_waits_for_stop_after_a_mate(raw: RawEngine) -> None:
    """An infinite search that has found a mate keeps its move until `stop`, as UCI asks."""
    raw.send("uci")
    raw.expect("uciok")
    raw.send(f"position fen {MATE_IN_1}")
    raw.send("go infinite")
    raw.expect("info depth 2 ")  # the mate confirmed: the search itself has ended
    raw.send("isready")
    lines = raw.expect("readyok")
    assert not any(line.startswith("bestmove") for line in lines)
    raw.send("stop")
    assert raw.expect("bestmove")[-1] == "bestmove a1a8"


def test_ponderhit_turns_pondering_into_a_timed_search(raw: RawEngine) -> None:
    """`go ponder` searches until `ponderhit`, then plays by its clock without a `stop`."""
    raw.send("uci")
    raw.expect("uciok")
    raw.send("position startpos moves e2e4 e7e5")
    raw.send("go ponder wtime 2000 btime 2000")
    raw.expect("info depth 3 ")
    raw.send("isready")
    assert not any(line.startswith("bestmove") for line in raw.expect("readyok"))
    raw.send("ponderhit")
    best = raw.expect("bestmove")[-1].split()
    board = chess.Board()
    board.push_uci("e2e4")
    board.push_uci("e7e5")
    assert board.is_legal(chess.Move.from_uci(best[1]))


def test_isready_is_answered_during_a_search(raw: RawEngine) -> None:
    """`isready` during an infinite search gets `readyok` without ending the search."""
    raw.send(f"position fen {MIDDLEGAME}")
    raw.send("go infinite")
    raw.expect("info depth 2 ")
    raw.send("isready")
    assert not any(line.startswith("bestmove") for line in raw.expect("readyok"))
    raw.send("stop")
    raw.expect("bestmove")


def test_bad_input_gets_an_error_and_changes_nothing(raw: RawEngine) -> None:
    """Unknown commands, bad options and bad positions get an `info string error`, nothing else.

    The last good position stays the one searched, and the engine keeps answering.
    """
    raw.send("position startpos moves e2e4")
    for line in (
        "xyzzy",
        "setoption name Hash value lots",
        "setoption name Threads value 4",
        "position fen 8/8 w - - 0 1",
        "position startpos moves e2e4 e2e4",
        "go depth zero",
        "go mate 0",
        "go searchmoves",
        "go searchmoves e7e5 e2e4",
        "go searchmoves e7e9",
        "setoption name MultiPV value 0",
    ):
        raw.send(line)
        answer = raw.expect("info string")
        # The error alone: no search started (a bad go would otherwise give a bestmove).
        assert len(answer) == 1, (line, answer)
        assert answer[0].startswith("info string error: "), line
    raw.send("go depth 2")
    answer = raw.expect("bestmove")
    assert not any(seen.startswith("info string") for seen in answer), answer
    best = chess.Move.from_uci(answer[-1].split()[1])
    after_e4 = chess.Board()
    after_e4.push_uci("e2e4")
    assert after_e4.is_legal(best)


def test_no_legal_move_gives_the_null_move(raw: RawEngine) -> None:
    """A checkmated side to move gets `bestmove 0000` rather than silence."""
    raw.send("position fen R5k1/5ppp/8/8/8/8/8/6K1 b - - 0 1")
    raw.send("go depth 3")
    assert raw.expect("bestmove")[-1] == "bestmove 0000"


def test_quit_during_a_search_ends_the_process(raw: RawEngine) -> None:
    """`quit` ends the program even while an infinite search runs."""
    raw.send(f"position fen {MIDDLEGAME}")
    raw.send("go infinite")
    raw.expect("info depth 1 ")
    raw.send("quit")
    assert raw.process.wait(WAIT_S) == 0


def test_end_of_input_ends_the_process(raw: RawEngine) -> None:
    """A GUI that goes away (standard input closed) ends the engine too."""
    assert raw.process.stdin is not None
    raw.process.stdin.close()
    assert raw.process.wait(WAIT_S) == 0


def test_ucinewgame_forgets_the_last_game(raw: RawEngine) -> None:
    """After `ucinewgame` the same search costs as many nodes as in a fresh engine."""

    def nodes_of_depth_5() -> int:
        raw.send(f"position fen {MIDDLEGAME}")
        raw.send("go depth 5")
        lines = raw.expect("bestmove")
        return int(lines[-2].split(" nodes ")[1].split()[0])

    fresh = nodes_of_depth_5()
    assert nodes_of_depth_5() < fresh  # the game's table remembered the first search
    raw.send("ucinewgame")
    assert nodes_of_depth_5() == fresh


def test_a_games_searches_share_one_memory_until_a_new_game() -> None:
    """Each `go` of a game searches with the memory the one before left (its history learned,
    aged as the next search starts); `ucinewgame` and a new `Hash` start a new memory, any
    other option keeps it."""
    session = _Session(lambda line: None, time.monotonic)

    def send(line: str) -> None:
        command = parse_command(line)
        assert command is not None
        session.handle(command)

    def search(fen: str) -> None:
        send(f"position fen {fen}")
        send("go depth 4")
        assert session.thread is not None
        session.thread.join(WAIT_S)  # Depth 4 ends the search by itself.

    memory = session.memory
    search(MIDDLEGAME)
    assert any(memory.order.history) and len(memory.table) > 0
    send("setoption name MultiPV value 2")
    search(MIDDLEGAME)
    assert session.memory is memory
    send("ucinewgame")
    assert session.memory is not memory and not any(session.memory.order.history)
    memory = session.memory
    search(MIDDLEGAME)
    send("setoption name Hash value 8")
    assert session.memory is not memory and len(session.memory.table) == 0


def test_the_worse_side_repeats_and_the_better_side_does_not(
    engine: chess.engine.SimpleEngine,
) -> None:
    """The moves of `position ... moves` are the game's history: repetitions are seen.

    A rook down, Black goes back to h8 and repeats the starting position (a draw, score 0); a
    rook up, White does not play Kf1 again, though without the history it is its best move.
    """
    worse = chess.Board("7k/5ppp/8/8/8/8/5PPP/3R2K1 w - - 0 1")
    for uci in ("d1d2", "h8g8", "d2d1"):
        worse.push_uci(uci)
    info = engine.analyse(worse, chess.engine.Limit(depth=5))
    assert info["pv"][0] == chess.Move.from_uci("g8h8")
    assert info["score"].relative == chess.engine.Cp(0)

    better = chess.Board("6k1/5pp1/7p/8/8/8/5PPP/3R1K2 b - - 1 1")
    for uci in ("g8h8", "f1g1", "h8g8"):
        better.push_uci(uci)
    without_history = chess.Board(better.fen())
    plain = engine.play(without_history, chess.engine.Limit(depth=5), game=object())
    assert plain.move == chess.Move.from_uci("g1f1")
    result = engine.play(better, chess.engine.Limit(depth=5), game=object())
    assert result.move is not None and result.move != chess.Move.from_uci("g1f1")


# One game in `make test` (about 30 s), four in `make test-full`.
SELF_PLAY_GAMES = 4 if os.environ.get("GM_TEST_FULL") == "1" else 1


@pytest.mark.timeout(1200)
def test_never_loses_on_time_at_ten_seconds_and_a_tenth(tmp_path: Path) -> None:
    """Games against itself at 10+0.1, clocks kept by the test: no side ever flags."""
    engines = [
        chess.engine.SimpleEngine.popen_uci(COMMAND, cwd=str(ROOT), timeout=WAIT_S)
        for _ in range(2)
    ]
    try:
        for game in range(SELF_PLAY_GAMES):
            board = chess.Board()
            board.push_uci(("e2e4", "d2d4")[game % 2])
            clocks = {chess.WHITE: 10.0, chess.BLACK: 10.0}
            while not board.is_game_over(claim_draw=True) and board.ply() < 160:
                mover = engines[(board.ply() + game) % 2]
                limit = chess.engine.Limit(
                    white_clock=clocks[chess.WHITE],
                    black_clock=clocks[chess.BLACK],
                    white_inc=0.1,
                    black_inc=0.1,
                )
                started = time.monotonic()
                result = mover.play(board, limit, game=game)
                clocks[board.turn] -= time.monotonic() - started
                assert clocks[board.turn] > 0, f"flagged at ply {board.ply()} of game {game}"
                clocks[board.turn] += 0.1
                assert result.move is not None
                board.push(result.move)
            (tmp_path / f"game{game}.txt").write_text(f"{board.ply()} plies, {clocks}")
    finally:
        for client in engines:
            client.quit()


def test_a_bad_option_during_a_search_leaves_the_search_running(raw: RawEngine) -> None:
    """A refused `setoption` does not stop an infinite search: it changes nothing at all."""
    raw.send(f"position fen {MIDDLEGAME}")
    raw.send("go infinite")
    raw.expect("info depth 2 ")
    raw.send("setoption name Hash value none")
    raw.send("isready")
    lines = raw.expect("readyok")
    assert any(line.startswith("info string error: ") for line in lines)
    assert not any(line.startswith("bestmove") for line in lines)
    raw.send("stop")
    raw.expect("bestmove")
