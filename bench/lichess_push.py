"""The cost of a lichess-style push of a whole round when nothing changed.

The lichess Broadcaster app pushes the round's whole PGN every second, changed or not.
The server (``python -m app``, analysis off) gets a broadcast with one round through the
lichess routes; the first push seats 100 games of 60 to 120 plies; then the same text is
pushed again ``--pushes`` times. Reported: the server's own time per push (its
``Server-Timing: push;dur=`` header: from the route's start to the answer, the thread
that cuts and digests the text included) and the client's round trip, medians and p90.
Goal (issue 10): under 5 ms of server time for a no-change push of 100 games.

    python bench/lichess_push.py [--games 100] [--pushes 200]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

import harness
from relay import game_text, random_game


def main() -> None:
    """Create the round, seat the games, push the same text again and again."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--games", type=int, default=100)
    parser.add_argument("--pushes", type=int, default=200)
    args = parser.parse_args()
    rng = random.Random(7)
    text = "".join(
        game_text(f"White {i}", f"Black {i}", i, random_game(rng, rng.randrange(60, 121)))
        for i in range(1, args.games + 1)
    )
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        server = harness.AppServer(root / "data", root / "server.log", {"GM_ANALYSIS": "0"})
        with server:
            http = server.http
            assert http is not None
            auth = {"Authorization": f"Bearer {server.operator_token}"}
            tour = http.post("/broadcast/new", json={"name": "Push bench"}, headers=auth).json()
            created = http.post(
                f"/broadcast/{tour['tour']['id']}/new", json={"name": "Round 1"}, headers=auth
            ).json()
            url = f"/api/broadcast/round/{created['round']['id']}/push"
            first = http.post(url, content=text, headers=auth).json()["games"]
            assert all("moves" in g for g in first), first[:3]
            server_ms, trip_ms = [], []
            for _ in range(args.pushes):
                started = time.perf_counter()
                r = http.post(url, content=text, headers=auth)
                trip_ms.append((time.perf_counter() - started) * 1000)
                server_ms.append(float(r.headers["server-timing"].split("dur=")[1]))
    size_kb = len(text.encode()) / 1024
    print(f"{args.games} games ({size_kb:.0f} KiB), {args.pushes} no-change pushes")
    for name, values in (("server time", server_ms), ("round trip", trip_ms)):
        p90 = statistics.quantiles(values, n=10)[-1]
        print(f"  {name}: median {statistics.median(values):.2f} ms, p90 {p90:.2f} ms")
    print(harness.machine())


if __name__ == "__main__":
    main()
