"""Time the built-in search on a fixed set of positions at a fixed node budget.

Run in each of two checkouts, alternately, on a quiet machine:
`python bench/search_speed.py [--nodes 20000] [--runs 3] [--cpu]`.

The positions are every fifteenth position of the WAC suite and three middlegames; each is
searched until the job has spent `--nodes` nodes (the depth then under way is cut short). A
change that leaves the search's decisions alone gives the same depths and node counts (those
of each position's last completed depth, summed), so the times compare its speed alone; they
are printed so that a change of the tree shows. `--cpu` times the process's CPU time
instead of the wall clock (on a shared host, less of the neighbours' load shows).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.search.search import iter_search

WAC_PATH = Path(__file__).resolve().parent / "data" / "wac.epd"
MIDDLEGAMES = (
    "r1bq1rk1/pp2bppp/2n1pn2/3p4/2PP4/2N1PN2/PP2BPPP/R2QKB1R w KQ - 0 8",
    "r2q1rk1/pp1nbppp/2p1pn2/3p1b2/2PP4/1PN1PN2/P3BPPP/R1BQ1RK1 w - - 1 9",
    "2r2rk1/1bqnbppp/p3pn2/1p6/3NP3/P1N1B3/1PP1BPPP/R2Q1RK1 w - - 0 14",
)


def positions() -> list[str]:
    """The FENs searched: WAC positions 1, 16, 31, ... and the middlegames."""
    lines = [line for line in WAC_PATH.read_text().splitlines() if line.strip()]
    wac = [" ".join(line.split()[:4]) for line in lines if not line.startswith("#")]
    return [*wac[:300:15], *MIDDLEGAMES]


def run(fens: list[str], nodes: int, clock: Callable[[], float]) -> tuple[float, int, int]:
    """Search every position; the seconds taken (by `clock`), the sum of depths and of nodes."""
    start = clock()
    depths = total = 0
    for fen in fens:
        infos = list(iter_search(fen, max_nodes=nodes))
        if infos:
            last = infos[-1]
            depths += last.depth
            total += last.nodes
    return clock() - start, depths, total


def main() -> None:
    """Parse the options, time the runs and print their median."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=20_000, help="node budget per position")
    parser.add_argument("--runs", type=int, default=3, help="runs to take the median of")
    parser.add_argument("--cpu", action="store_true", help="CPU time, not the wall clock's")
    args = parser.parse_args()
    clock = time.process_time if args.cpu else time.perf_counter
    fens = positions()
    times = []
    for _ in range(args.runs):
        seconds, depths, total = run(fens, args.nodes, clock)
        times.append(seconds)
        print(f"{seconds:.2f} s  depth {depths / len(fens):.2f} on average  {total} nodes")
    print(f"median {statistics.median(times):.2f} s over {len(fens)} positions")


if __name__ == "__main__":
    main()
