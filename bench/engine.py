"""Benchmark the built-in engine: search speed and the Win At Chess (WAC) tactical suite.

Run from anywhere:
`python bench/engine.py [--time 1.0] [--limit N] [--jobs J] [--[no-]agreement] [--stockfish PATH]`.

Speed: nodes per second and the depth completed in `--time` seconds for a few positions.
WAC: each position is searched for `--time` seconds; it counts as solved when the best move of
the last completed depth is one of the EPD's `bm` moves. With `--jobs 1` (the default) every
figure is for a single core; more jobs only shorten the wall time of the suite.
`--nodes N` replaces the time limit of the suite by a node budget: a figure independent of the
machine and its load, for comparing changes to the search.

Agreement with Stockfish: the middlegame positions of the test games (`tests/data/games/*.pgn`,
plies 20 to 60, i.e. from move 10 to move 30; positions that are over are left out, repeated
positions counted once) are searched by Stockfish to depth 18 (one thread) and by the built-in
engine for `--time` seconds; the share of positions where both choose the same move is reported.
It runs when Stockfish is found (`--stockfish`, else /usr/games/stockfish, else `stockfish` on
PATH) unless `--no-agreement`; `--agreement` makes a missing Stockfish an error.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import chess
import chess.engine
import chess.pgn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.search.search import SearchInfo, iter_search

WAC_PATH = Path(__file__).resolve().parent / "data" / "wac.epd"
GAMES_DIR = Path(__file__).resolve().parent.parent / "tests" / "data" / "games"
STOCKFISH_PATHS = ("/usr/games/stockfish", "stockfish")
MIDDLEGAME_PLIES = (20, 60)
REFERENCE_DEPTH = 18

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


@dataclass(frozen=True, slots=True)
class Agreement:
    """The built-in engine's move against the reference engine's in one position."""

    source: str
    fen: str
    reference: str
    found: str
    depth: int

    @property
    def agrees(self) -> bool:
        """Whether both engines chose the same move."""
        return self.reference == self.found


def find_stockfish(path: str | None) -> str | None:
    """``path`` if given and executable, else the first of :data:`STOCKFISH_PATHS` found."""
    for candidate in (path,) if path else STOCKFISH_PATHS:
        found = shutil.which(candidate)
        if found:
            return found
    return None


def middlegame_positions(directory: Path) -> list[tuple[str, str]]:
    """``(source, fen)`` of every position at plies 20..60 of the PGN games in ``directory``.

    The ply is counted from the start of the game as the position's move number gives it (a
    game set up from a FEN keeps that FEN's move number). Positions that are over (mate,
    stalemate, insufficient material, fivefold repetition, seventy-five moves) are left out;
    a position that recurs (same placement, side to move, castling and en passant) is kept
    once, from its first occurrence.
    """
    low, high = MIDDLEGAME_PLIES
    seen: set[str] = set()
    positions = []
    for path in sorted(directory.glob("*.pgn")):
        with path.open(encoding="utf-8") as handle:
            while (game := chess.pgn.read_game(handle)) is not None:
                board = game.board()
                for move in game.mainline_moves():
                    board.push(move)
                    if not low <= board.ply() <= high or board.is_game_over():
                        continue
                    key = " ".join(board.fen().split()[:4])
                    if key not in seen:
                        seen.add(key)
                        positions.append((f"{path.stem}:{board.ply()}", board.fen()))
    return positions


def reference_moves(stockfish: str, fens: list[str], depth: int) -> list[str]:
    """Stockfish's best move (UCI) at ``depth`` for each FEN, one thread, its default hash.

    The position is given without its history, as the built-in engine gets it. Raises
    chess.engine.EngineError when the engine fails.
    """
    moves = []
    engine = chess.engine.SimpleEngine.popen_uci(stockfish)
    try:
        if "Threads" in engine.options:
            engine.configure({"Threads": 1})
        for fen in fens:
            result = engine.play(chess.Board(fen), chess.engine.Limit(depth=depth))
            moves.append(result.move.uci() if result.move else "-")
    finally:
        engine.quit()
    return moves


def run_builtin_move(args: tuple[str, float]) -> tuple[str, int]:
    """The built-in engine's best move (UCI) and completed depth after ``time_s`` seconds."""
    fen, time_s = args
    timed = timed_search(fen, time_s)
    if timed.info is None:
        return "-", 0
    return timed.info.best, timed.info.depth


def run_agreement(
    stockfish: str, time_s: float, jobs: int, verbose: bool
) -> tuple[list[Agreement], float]:
    """Compare the engines on :func:`middlegame_positions`; returns the rows and wall seconds."""
    positions = middlegame_positions(GAMES_DIR)
    fens = [fen for _, fen in positions]
    started = time.perf_counter()
    references = reference_moves(stockfish, fens, REFERENCE_DEPTH)
    work = [(fen, time_s) for fen in fens]
    if jobs > 1:
        with multiprocessing.Pool(jobs) as pool:
            found = list(pool.imap(run_builtin_move, work))
    else:
        found = [run_builtin_move(item) for item in work]
    rows = [
        Agreement(source, fen, reference, best, depth)
        for (source, fen), reference, (best, depth) in zip(
            positions, references, found, strict=True
        )
    ]
    for row in rows:
        if verbose or not row.agrees:
            board = chess.Board(row.fen)
            mark = "same" if row.agrees else "diff"
            played, expected = (
                board.san(chess.Move.from_uci(uci)) if uci != "-" else "-"
                for uci in (row.found, row.reference)
            )
            print(
                f"{mark} {row.source}: built-in {played} (depth {row.depth}), stockfish {expected}",
                flush=True,
            )
    return rows, time.perf_counter() - started


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
    parser.add_argument(
        "--agreement",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="best-move agreement with Stockfish on the test games' middlegames "
        "(default: when Stockfish is found)",
    )
    parser.add_argument(
        "--stockfish",
        default=None,
        help="Stockfish binary (default: /usr/games/stockfish, else stockfish on PATH)",
    )
    options = parser.parse_args()
    stockfish = None if options.agreement is False else find_stockfish(options.stockfish)
    if options.agreement and stockfish is None:
        parser.error(f"--agreement: no Stockfish at {options.stockfish or STOCKFISH_PATHS}")

    speed = [] if options.skip_speed else run_speed(options.time)
    lines = parse_wac(options.epd)[: options.limit]
    started = time.perf_counter()
    results = run_suite(lines, options.time, options.nodes, options.jobs, options.verbose)
    wall_s = time.perf_counter() - started
    solved = sum(result.solved for result in results)
    if results and options.jobs > 1 and not options.verbose:
        failed = [result.name for result in results if not result.solved]
        print("failed:", " ".join(failed))
    agreement: list[Agreement] = []
    agreement_wall_s = 0.0
    if stockfish is not None:
        agreement, agreement_wall_s = run_agreement(
            stockfish, options.time, options.jobs, options.verbose
        )
    elif options.agreement is None:
        print(f"note: no Stockfish found ({', '.join(STOCKFISH_PATHS)}): agreement skipped")

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
    if agreement:
        agreed = sum(row.agrees for row in agreement)
        low, high = MIDDLEGAME_PLIES
        print()
        print(
            "| Agreement | Positions | Built-in budget | Jobs | Reference | Same move | Share "
            "| Wall (s) |"
        )
        print("|---|---|---|---|---|---|---|---|")
        print(
            f"| {GAMES_DIR.name}/*.pgn plies {low}-{high} | {len(agreement)} "
            f"| {options.time:g} s | {options.jobs} | Stockfish depth {REFERENCE_DEPTH} "
            f"| {agreed} | {100.0 * agreed / len(agreement):.1f}% | {agreement_wall_s:.0f} |"
        )


if __name__ == "__main__":
    main()
