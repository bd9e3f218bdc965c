"""Measure how fast `python -m engine` answers `stop`, and how closely it keeps `movetime`.

Run from anywhere: `python bench/uci_stop.py [--trials 40]`.

Stop: the engine runs `go infinite` on a position; after a pause that varies from trial to
trial (0.05 to 0.5 s, so the stop lands anywhere inside a depth) the bench writes `stop` and
times the wait until the `bestmove` line arrives. Movetime: `go movetime 300`, timed from the
`go` line to `bestmove`. Late in a game: `position startpos moves ...` with a fixed game of
100 plies, then `go depth 1`, timed to `bestmove` (what reading the game's moves costs a search
on its clock). All are wall times through real pipes, as a GUI sees them; the engine is spoken
to by hand, one line at a time, so no client library adds its own latency.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

import chess

ROOT = Path(__file__).resolve().parent.parent
POSITIONS = (
    "rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkq - 0 1",
    "r1bq1rk1/pp2bppp/2n1pn2/3p4/2PP4/2N1PN2/PP2BPPP/R2QKB1R w KQ - 0 8",
    "r3k2r/p1ppqpb1/bn2pnp1/3PN3/1p2P3/2N2Q1p/PPPBBPPP/R3K2R w KQkq - 0 1",
    "8/5pk1/6p1/8/3R4/6PP/5PK1/1r6 w - - 0 1",
)


def wait_for(process: subprocess.Popen[str], prefix: str) -> str:
    """Read lines until one starts with `prefix`; return it."""
    assert process.stdout is not None
    while True:
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"the engine ended before {prefix!r}")
        if line.startswith(prefix):
            return line


def send(process: subprocess.Popen[str], line: str) -> None:
    """Write one command line."""
    assert process.stdin is not None
    process.stdin.write(line + "\n")
    process.stdin.flush()


def quantiles(values: list[float]) -> str:
    """Median, 90th percentile and maximum, in milliseconds."""
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
    return (
        f"median {statistics.median(ordered) * 1000:.1f} ms, p90 {p90 * 1000:.1f} ms, "
        f"max {ordered[-1] * 1000:.1f} ms ({len(ordered)} trials)"
    )


def game_moves(plies: int) -> list[str]:
    """The moves (UCI) of a game of `plies` random legal moves, the same at every run."""
    rng = random.Random(2026)
    while True:
        board = chess.Board()
        while board.ply() < plies and not board.is_game_over():
            board.push(rng.choice(list(board.legal_moves)))
        if board.ply() == plies and not board.is_game_over():
            return [move.uci() for move in board.move_stack]


def main() -> None:
    """Run the trials and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=40)
    args = parser.parse_args()
    process = subprocess.Popen(
        [sys.executable, "-m", "engine"],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        bufsize=1,
    )
    print(f"load average at start {os.getloadavg()[0]:.2f}")
    send(process, "uci")
    wait_for(process, "uciok")
    stops: list[float] = []
    movetimes: list[float] = []
    for trial in range(args.trials):
        send(process, f"position fen {POSITIONS[trial % len(POSITIONS)]}")
        send(process, "go infinite")
        wait_for(process, "info depth 1 ")
        time.sleep(0.05 + 0.45 * ((trial * 7) % 10) / 10)
        started = time.perf_counter()
        send(process, "stop")
        wait_for(process, "bestmove")
        stops.append(time.perf_counter() - started)
    for trial in range(args.trials // 4):
        send(process, f"position fen {POSITIONS[trial % len(POSITIONS)]}")
        started = time.perf_counter()
        send(process, "go movetime 300")
        wait_for(process, "bestmove")
        movetimes.append(time.perf_counter() - started)
    late = f"position startpos moves {' '.join(game_moves(100))}"
    depth_ones: list[float] = []
    for _ in range(args.trials // 4):
        send(process, late)
        started = time.perf_counter()
        send(process, "go depth 1")
        wait_for(process, "bestmove")
        depth_ones.append(time.perf_counter() - started)
    send(process, "quit")
    process.wait()
    print(f"stop -> bestmove: {quantiles(stops)}")
    print(f"go movetime 300 -> bestmove: {quantiles(movetimes)}")
    print(f"go depth 1 after 100 plies -> bestmove: {quantiles(depth_ones)}")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
