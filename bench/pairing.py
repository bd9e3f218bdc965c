"""Benchmark Swiss pairing through the real engine seam (``workers.pairing``).

Run from anywhere: `python bench/pairing.py [--sizes 100,500,2000] [--before 3] [--repeat 5]
[--engine PATH] [--timeout S]`.

For each size a Swiss of that many players is played `--before` rounds deep (each round
paired by the engine, random results with draws, about 2% requested byes), then the next
round is paired `--repeat` times from the same TRF: the figure is the median wall time of
``engine.pair(trf)``, subprocess start included, the goal being 2,000 players within 5 s.
The time ``trf_for_pairing`` takes (it runs inline on the event loop) is shown too.
`--engine` is a bbpPairings executable; by default py4swiss.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from pathlib import Path

# Run as ``python bench/pairing.py``, this directory is sys.path[0], and its engine.py
# would shadow the ``engine`` package.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

from engine.rules.clock import TimeControl  # noqa: E402
from engine.tournament.state import (  # noqa: E402
    Bye,
    TournamentSetup,
    TournamentState,
    add_player,
    evolve_all,
    pair_round,
    request_bye,
    requested_byes,
    start_round,
)
from engine.tournament.trf import trf_for_pairing  # noqa: E402
from workers.pairing import PairingEngine, engine_from_setting  # noqa: E402

RESULTS = ["1-0", "0-1", "1/2-1/2"]
ROUNDS_TOTAL = 9


def new_tournament(players: int) -> TournamentState:
    setup = TournamentSetup(
        id="bench",
        name="Bench Open",
        format="swiss",
        control=TimeControl.from_seconds(5400, 30),
        swiss_rounds=ROUNDS_TOTAL,
    )
    state = TournamentState(setup)
    for index in range(players):
        entrant = {
            "id": f"p{index}",
            "number": 0,
            "name": f"Player {index}",
            "rating": max(1000, 2800 - index),
            "title": None,
            "fide_id": None,
            "federation": None,
        }
        state = evolve_all(state, add_player(state, entrant))  # type: ignore[arg-type]
    return state


async def play_round(
    engine: PairingEngine, state: TournamentState, round_no: int, rng: random.Random
) -> tuple[TournamentState, float]:
    """Pair ``round_no`` with the engine, record random results; the pairing's seconds."""
    for player in state.players:
        if rng.random() < 0.02:
            points = rng.choice([0.5, 0.0])
            state = evolve_all(state, request_bye(state, player.id, round_no, points))
    started = time.perf_counter()
    pairs = await engine.pair(trf_for_pairing(state, round_no))
    elapsed = time.perf_counter() - started
    numbers = state.by_number()
    boards = [(numbers[w].id, numbers[b].id, None) for w, b in pairs if b]
    byes = [Bye(numbers[w].id, 1.0, "pairing") for w, b in pairs if not b]
    byes += requested_byes(state, round_no)
    state = evolve_all(state, pair_round(state, round_no, boards, byes))
    state = evolve_all(state, start_round(state, round_no))
    for board in range(1, len(boards) + 1):
        state = state.with_result(round_no, board, rng.choice(RESULTS))  # type: ignore[arg-type]
    return state, elapsed


async def bench_size(engine: PairingEngine, players: int, before: int, repeat: int) -> None:
    rng = random.Random(players)
    state = new_tournament(players)
    earlier = []
    for round_no in range(1, before + 1):
        state, elapsed = await play_round(engine, state, round_no, rng)
        earlier.append(elapsed)
    round_no = before + 1
    started = time.perf_counter()
    trf = trf_for_pairing(state, round_no)
    trf_ms = (time.perf_counter() - started) * 1000
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        await engine.pair(trf)
        times.append(time.perf_counter() - started)
    rounds = (
        f"  rounds 1-{before}: " + ", ".join(f"{t:.2f}" for t in earlier) + " s" if earlier else ""
    )
    print(
        f"{players:>6} players  round {round_no}: median {statistics.median(times):6.2f} s"
        f"  (min {min(times):.2f}, max {max(times):.2f}, n={repeat})"
        f"  trf_for_pairing {trf_ms:6.1f} ms{rounds}",
        flush=True,
    )


async def pairing_section(args: argparse.Namespace) -> None:
    """Time to pair one round at each size, several rounds deep."""
    engine = engine_from_setting(args.engine, timeout_s=args.timeout)
    print(f"pairing engine: {engine.name}")
    for players in args.sizes:
        await bench_size(engine, players, args.before, args.repeat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes", type=lambda s: [int(x) for x in s.split(",")], default=[100, 500, 2000]
    )
    parser.add_argument("--before", type=int, default=3, help="rounds played before the timed one")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--engine", default=None, help="a bbpPairings executable")
    parser.add_argument("--timeout", type=float, default=600.0, help="per pairing, seconds")
    args = parser.parse_args()
    asyncio.run(pairing_section(args))


if __name__ == "__main__":
    main()
