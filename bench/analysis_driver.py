"""Benchmark the two ways of driving a UCI engine: from the event loop, or via worker processes.

Run from the repository's virtualenv:
``python bench/analysis_driver.py [--engine /usr/games/stockfish] [--jobs 60] [--processes 2]
[--max-time 0.5] [--rounds 3] [--json out.json]``.

For each driver (``loop``: :class:`workers.analysis_uci.UciEnginePool`; ``processes``:
:class:`workers.analysis.AnalysisPool` with ``uci:``), in alternating rounds, the script starts
a pool of ``--processes`` engines in this process, then keeps every engine busy with ``--jobs``
positions from seeded random games (``--max-time`` seconds each, no depth limit), and after
every fourth job stops one running job to time the stop. Measured per round:

- the CPU time of this process (all its threads, not its children) per job and per reported
  depth: what the server's own process pays for analysis, whatever the machine's load;
- the stop latency, from ``stop()`` to the job's ``on_done`` (median and max);
- the event loop's responsiveness: how late a 1 ms timer running alongside fires (median
  and p99), which is what the loop's share of the work costs every other task.

Medians over rounds are printed as a markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import chess

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from workers.analysis import AnalysisPool, Job
from workers.analysis_uci import UciEnginePool
from workers.analysis_worker import DepthInfo


def positions(count: int, seed: int) -> list[str]:
    """``count`` positions from seeded random games, 10 to 40 plies in, none over."""
    rng = random.Random(seed)
    found: list[str] = []
    while len(found) < count:
        board = chess.Board()
        for _ in range(rng.randint(10, 40)):
            moves = list(board.legal_moves)
            if not moves:
                break
            board.push(rng.choice(moves))
        if not board.is_game_over():
            found.append(board.fen())
    return found


class Meter:
    """The pool's listener: counts depths, times stops, frees slots."""

    def __init__(self) -> None:
        self.depths = 0
        self.done: dict[int, bool] = {}
        self.stopped_at: dict[int, float] = {}
        self.stop_latencies_s: list[float] = []
        self.changed = asyncio.Event()

    def on_info(self, job: Job, info: DepthInfo, engine: str) -> None:
        self.depths += 1

    def on_done(self, job: Job, ok: bool) -> None:
        self.done[job.id] = ok
        if job.id in self.stopped_at:
            self.stop_latencies_s.append(time.perf_counter() - self.stopped_at[job.id])
        self.changed.set()


async def lateness(samples: list[float], stop: asyncio.Event) -> None:
    """How late a 1 ms timer fires, until ``stop`` is set."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        at = loop.time()
        await asyncio.sleep(0.001)
        samples.append(loop.time() - at - 0.001)


async def one_round(driver: str, args: argparse.Namespace, fens: list[str]) -> dict[str, Any]:
    """One pool, ``len(fens)`` jobs; the figures of the round."""
    pool: UciEnginePool | AnalysisPool
    if driver == "loop":
        pool = UciEnginePool(args.engine, args.processes)
    else:
        pool = AnalysisPool(f"uci:{args.engine}", args.processes)
    meter = Meter()
    pool.listener = meter
    await pool.start()
    late: list[float] = []
    stop = asyncio.Event()
    timer = asyncio.get_running_loop().create_task(lateness(late, stop))
    cpu0, wall0 = time.process_time(), time.perf_counter()
    queue = list(fens)
    submitted: list[Job] = []
    try:
        while queue or len(meter.done) < len(submitted):
            while queue and pool.idle():
                job = pool.new_job(queue.pop(), args.max_time, 99)
                assert pool.submit(job)
                submitted.append(job)
                if len(submitted) % 4 == 0:
                    # Let it start searching, then cut it, as the scheduler does.
                    asyncio.get_running_loop().call_later(0.1, cut, pool, job, meter)
            meter.changed.clear()
            await meter.changed.wait()
        cpu_s, wall_s = time.process_time() - cpu0, time.perf_counter() - wall0
    finally:
        stop.set()
        await timer
        await pool.close()
    late_ms = sorted(1000 * x for x in late)
    return {
        "driver": driver,
        "jobs": len(submitted),
        "failed": sum(1 for ok in meter.done.values() if not ok),
        "depths": meter.depths,
        "cpu_ms_per_job": 1000 * cpu_s / len(submitted),
        "cpu_us_per_depth": 1e6 * cpu_s / max(1, meter.depths),
        "cpu_pct": 100 * cpu_s / wall_s,
        "stop_ms_p50": 1000 * statistics.median(meter.stop_latencies_s),
        "stop_ms_max": 1000 * max(meter.stop_latencies_s),
        "timer_late_ms_p50": late_ms[len(late_ms) // 2],
        "timer_late_ms_p99": late_ms[int(len(late_ms) * 0.99)],
    }


def cut(pool: UciEnginePool | AnalysisPool, job: Job, meter: Meter) -> None:
    """Stop ``job`` if it still runs, noting when."""
    if job.id not in meter.done and job.stop_sent_s is None:
        meter.stopped_at[job.id] = time.perf_counter()
        pool.stop(job)


async def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every round of every driver, alternating."""
    results = []
    for n in range(args.rounds):
        for driver in ("loop", "processes") if n % 2 == 0 else ("processes", "loop"):
            result = await one_round(driver, args, positions(args.jobs, seed=n))
            print(json.dumps(result), flush=True)
            results.append(result)
    return results


def main() -> int:
    """Run and print the table; 1 when a job failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", default="/usr/games/stockfish", help="UCI engine path")
    parser.add_argument("--jobs", type=int, default=60, help="positions per round (60)")
    parser.add_argument("--processes", type=int, default=2, help="engines (2)")
    parser.add_argument("--max-time", type=float, default=0.5, help="seconds per job (0.5)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per driver (3)")
    parser.add_argument("--json", type=Path, help="also write the rounds to this file")
    args = parser.parse_args()
    results = asyncio.run(run(args))
    keys = [
        "cpu_ms_per_job",
        "cpu_us_per_depth",
        "cpu_pct",
        "stop_ms_p50",
        "stop_ms_max",
        "timer_late_ms_p50",
        "timer_late_ms_p99",
    ]
    print()
    print("| driver | " + " | ".join(keys) + " |")
    print("|---|" + "---:|" * len(keys))
    for driver in ("loop", "processes"):
        rows = [r for r in results if r["driver"] == driver]
        medians = [statistics.median(r[k] for r in rows) for k in keys]
        print(f"| {driver} | " + " | ".join(f"{m:.2f}" for m in medians) + " |")
    print(
        f"\nMedians of {args.rounds} rounds; {args.jobs} jobs of {args.max_time:g} s per round on "
        f"{args.processes} engines ({args.engine}), every fourth job stopped after 0.1 s."
    )
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 1 if any(r["failed"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
