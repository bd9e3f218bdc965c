"""Benchmark the built-in engine: search speed and the Win At Chess (WAC) tactical suite.

Run from anywhere: `python bench/engine.py [--time 1.0] [--limit N] [--jobs J]`.

Speed: nodes per second and the depth completed in `--time` seconds for a few positions.
WAC: each position is searched for `--time` seconds; it counts as solved when the best move of
the last completed depth is one of the EPD's `bm` moves. With `--jobs 1` (the default) every
figure is for a single core; more jobs only shorten the wall time of the suite.
`--nodes N` replaces the time limit of the suite by a node budget: a figure independent of the
machine and its load, for comparing changes to the search.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import chess

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.search import SearchInfo, iter_search

WAC_PATH = Path(__file__).resolve().parent / "data" / "wac.epd"

SPEED_POSITIONS = {
    "start": chess.STARTING_FEN,
    "middlegame": "r1bq1rk1/pp2bppp/2n1pn2/3p4/2PP4/2N1PN2/PP2BPPP/R2QKB1R w KQ - 0 8",
    "endgame": "8/5pk1/6p1/8/3R4/6PP/5PK1/1r6 w - - 0 1",
}


@dataclass(frozen=True, slots=True)
class Timed:
    """The last completed depth of a timed search, with the time it took to get there."""

    info: SearchInfo | None
    elapsed_s: float


@dataclass(frozen=True, slots=True)
class WacResult:
    """The outcome of one WAC position."""

    name: str
    solved: bool
    expected: tuple[str, ...]
    found: str
    depth: int


def timed_search(fen: str, time_s: float, max_nodes: int | None = None) -> Timed:
    """Search `fen` for `time_s` seconds of wall time (or `max_nodes` nodes, if given).

    Returns the last completed depth and the wall time it took to complete.
    """
    start = time.perf_counter()
    deadline = math.inf if max_nodes else start + time_s
    last: SearchInfo | None = None
    elapsed_s = 0.0

    def should_stop() -> bool:
        return time.perf_counter() >= deadline

    for info in iter_search(fen, max_nodes=max_nodes, should_stop=should_stop):
        last = info
        elapsed_s = time.perf_counter() - start
        if elapsed_s >= time_s and not max_nodes:
            break
    return Timed(last, elapsed_s)


def parse_wac(path: Path) -> list[str]:
    """Return the EPD lines of `path`, skipping comments and blank lines."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line.strip() and not line.startswith("#")]


def run_wac_position(args: tuple[str, float, int | None]) -> WacResult:
    """Search one EPD line for the given time or nodes; compare the result with its `bm` moves."""
    line, time_s, max_nodes = args
    board, operations = chess.Board.from_epd(line)
    expected_moves = operations["bm"]
    assert isinstance(expected_moves, list)
    expected = tuple(board.san(move) for move in expected_moves if isinstance(move, chess.Move))
    name = str(operations.get("id", "?"))
    timed = timed_search(board.fen(), time_s, max_nodes)
    if timed.info is None:
        return WacResult(name, False, expected, "-", 0)
    found = chess.Move.from_uci(timed.info.best)
    solved = found in expected_moves
    return WacResult(name, solved, expected, board.san(found), timed.info.depth)


def run_speed(time_s: float) -> list[tuple[str, int, int, int]]:
    """Return `(name, depth, nodes, nps)` for each speed position."""
    rows = []
    for name, fen in SPEED_POSITIONS.items():
        timed = timed_search(fen, time_s)
        info = timed.info
        if info is None:
            rows.append((name, 0, 0, 0))
            continue
        nps = int(info.nodes / timed.elapsed_s) if timed.elapsed_s else 0
        rows.append((name, info.depth, info.nodes, nps))
        print(f"{name:>10}: depth {info.depth}, {info.nodes} nodes, {nps} nps", flush=True)
    return rows


def run_suite(
    lines: list[str], time_s: float, max_nodes: int | None, jobs: int, verbose: bool
) -> list[WacResult]:
    """Run the WAC positions, in `jobs` processes when more than one."""
    work = [(line, time_s, max_nodes) for line in lines]
    results: list[WacResult] = []
    if jobs > 1:
        with multiprocessing.Pool(jobs) as pool:
            results = list(pool.imap(run_wac_position, work))
    else:
        for item in work:
            result = run_wac_position(item)
            results.append(result)
            if verbose or not result.solved:
                mark = "ok  " if result.solved else "FAIL"
                print(
                    f"{mark} {result.name}: played {result.found}, "
                    f"expected {' '.join(result.expected)} (depth {result.depth})",
                    flush=True,
                )
    return results


def main() -> None:
    """Parse the options, run both benchmarks and print a markdown summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time", type=float, default=1.0, help="seconds per position")
    parser.add_argument("--limit", type=int, default=None, help="only the first N WAC positions")
    parser.add_argument("--jobs", type=int, default=1, help="WAC positions run in parallel")
    parser.add_argument(
        "--nodes", type=int, default=None, help="WAC: a node budget instead of --time (repeatable)"
    )
    parser.add_argument("--epd", type=Path, default=WAC_PATH, help="EPD suite to run")
    parser.add_argument("--skip-speed", action="store_true", help="run the suite only")
    parser.add_argument("--verbose", action="store_true", help="print every position")
    options = parser.parse_args()

    speed = [] if options.skip_speed else run_speed(options.time)
    lines = parse_wac(options.epd)[: options.limit]
    started = time.perf_counter()
    results = run_suite(lines, options.time, options.nodes, options.jobs, options.verbose)
    wall_s = time.perf_counter() - started
    solved = sum(result.solved for result in results)
    if results and options.jobs > 1 and not options.verbose:
        failed = [result.name for result in results if not result.solved]
        print("failed:", " ".join(failed))

    print()
    print("| Position | Time (s) | Depth | Nodes | Nodes/s |")
    print("|---|---|---|---|---|")
    for name, depth, nodes, nps in speed:
        print(f"| {name} | {options.time:g} | {depth} | {nodes} | {nps} |")
    if results:
        share = 100.0 * solved / len(results)
        print()
        budget = f"{options.nodes} nodes" if options.nodes else f"{options.time:g} s"
        print("| Suite | Positions | Budget/position | Jobs | Solved | Share | Wall (s) |")
        print("|---|---|---|---|---|---|---|")
        print(
            f"| {options.epd.name} | {len(results)} | {budget} | {options.jobs} "
            f"| {solved} | {share:.1f}% | {wall_s:.0f} |"
        )


if __name__ == "__main__":
    main()
