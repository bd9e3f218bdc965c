"""A relay of 500 boards pushed every 2 s: the event loop's lag while it runs.

The server (``python -m app``, analysis off so the relay alone is measured) runs a relay-mode
Swiss of 1,000 players; round 1 is paired (500 boards). Every board has a random game of 80
to 120 plies prepared in advance. The first push puts 40 plies on every board (the catch-up
a late-starting broadcast does); then, every 2 s, the whole round's PGN is pushed again,
with about one board in fifteen having gained a move (a move every 30 s a board, as in a
classical round). Measured while the pushes run: the server's own loop-lag histogram
(``gm_event_loop_lag_seconds``, a 100 ms timer: quantiles are bucket bounds) and each
push's round-trip time.

    python bench/relay.py [--boards 500] [--interval 2] [--seconds 30]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import chess
import chess.pgn
import harness
import httpx

LAG_METRIC = "gm_event_loop_lag_seconds"


def random_game(rng: random.Random, plies: int) -> list[str]:
    """A random legal game of up to ``plies`` half-moves, in SAN."""
    board = chess.Board()
    sans = []
    for _ in range(plies):
        moves = list(board.legal_moves)
        if not moves or board.is_game_over():
            break
        move = rng.choice(moves)
        sans.append(board.san(move))
        board.push(move)
    return sans


def game_text(white: str, black: str, board: int, sans: list[str]) -> str:
    """One board's PGN as electronic boards write it: tags, moves, ``[%clk]`` comments."""
    tags = (
        f'[Event "Relay bench"]\n[Round "1.{board}"]\n[Board "{board}"]\n'
        f'[White "{white}"]\n[Black "{black}"]\n[Result "*"]\n\n'
    )
    parts = []
    for i, san in enumerate(sans):
        seconds = 5400 - 20 * i
        clock = f"{{ [%clk {seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}] }}"
        parts.append(
            f"{i // 2 + 1}. {san} {clock}" if i % 2 == 0 else f"{i // 2 + 1}... {san} {clock}"
        )
    return tags + " ".join(parts) + " *\n\n"


def lag_buckets(metrics: dict[str, float]) -> list[tuple[float, float]]:
    """Cumulative (upper bound, count) of the loop-lag histogram."""
    out = []
    for key, value in metrics.items():
        if key.startswith(LAG_METRIC + "_bucket"):
            bound = key.split('le="')[1].split('"')[0]
            out.append((float("inf") if bound == "+Inf" else float(bound), value))
    return sorted(out)


def quantile(
    before: list[tuple[float, float]], after: list[tuple[float, float]], pct: float
) -> float:
    """The bucket bound under which ``pct`` of the samples taken between two scrapes fall."""
    delta = [(b, a - c) for (b, a), (_, c) in zip(after, before, strict=True)]
    total = delta[-1][1]
    for bound, count in delta:
        if count >= total * pct:
            return bound
    return float("inf")


def scrape(client: httpx.Client) -> dict[str, float]:
    """The server's metrics."""
    return harness.parse_metrics(client.get("/metrics").text)


def main() -> None:
    """Run the relay scenario and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boards", type=int, default=500)
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        server = harness.AppServer(
            Path(tmp) / "data", Path(tmp) / "server.log", {"GM_ANALYSIS": "0"}
        )
        with server:
            client = server.http
            assert client is not None
            headers = harness.auth(server.operator_token)
            players = [
                {"name": f"Player {i:04d}", "rating": 2700 - i} for i in range(2 * args.boards)
            ]
            body = {
                "name": "Relay bench",
                "format": "swiss",
                "rounds": 9,
                "mode": "relay",
                "clock": {"initial": 5400, "increment": 30},
                "players": players,
            }
            t = client.post("/api/tournaments", json=body, headers=headers).json()
            names = {p["id"]: p["name"] for p in t["players"]}
            started = time.perf_counter()
            paired = client.post(
                f"/api/tournaments/{t['id']}/rounds", json={}, headers=headers, timeout=120
            ).json()
            print(
                f"paired {len(paired['pairings'])} boards in {time.perf_counter() - started:.2f} s"
            )
            boards = [
                (names[p["white"]], names[p["black"]], p["board"]) for p in paired["pairings"]
            ]
            games = [random_game(rng, rng.randrange(80, 121)) for _ in boards]
            shown = [min(40, len(g)) for g in games]
            push_headers = {**headers, "Content-Type": "application/x-chess-pgn"}

            def push() -> float:
                text = "".join(
                    game_text(w, b, n, g[:k])
                    for (w, b, n), g, k in zip(boards, games, shown, strict=True)
                )
                t0 = time.perf_counter()
                r = client.post(
                    f"/api/tournaments/{t['id']}/rounds/1/pgn",
                    content=text.encode(),
                    headers=push_headers,
                    timeout=120,
                )
                r.raise_for_status()
                errors = [g for g in r.json()["games"] if g["error"]]
                if errors:
                    print("errors:", errors[:3], file=sys.stderr)
                return time.perf_counter() - t0

            size_mb = (
                sum(
                    len(game_text(w, b, n, g[:k]))
                    for (w, b, n), g, k in zip(boards, games, shown, strict=True)
                )
                / 1e6
            )
            first = push()
            print(f"first push ({sum(shown)} plies, {size_mb:.2f} MB): {first * 1000:.0f} ms")
            before = lag_buckets(scrape(client))
            cpu_before = server.cpu_seconds() or 0.0
            times = []
            changed_total = 0
            deadline = time.monotonic() + args.seconds
            next_at = time.monotonic()
            while time.monotonic() < deadline:
                next_at += args.interval
                for i, g in enumerate(games):
                    if shown[i] < len(g) and rng.random() < args.interval / 30:
                        shown[i] += 1
                        changed_total += 1
                times.append(push())
                time.sleep(max(0.0, next_at - time.monotonic()))
            after = lag_buckets(scrape(client))
            cpu = (server.cpu_seconds() or 0.0) - cpu_before
            times.sort()
            print(
                f"{len(times)} pushes every {args.interval} s, "
                f"{changed_total / len(times):.1f} changed boards a push"
            )
            print(
                f"push round trip: median {statistics.median(times) * 1000:.1f} ms, "
                f"p99 {harness.percentile(times, 99) * 1000:.1f} ms, max {times[-1] * 1000:.1f} ms"
            )
            print(f"server CPU: {cpu / args.seconds * 100:.0f}% of one core")
            print(
                f"loop lag: p50 <= {quantile(before, after, 0.5) * 1000:g} ms, "
                f"p99 <= {quantile(before, after, 0.99) * 1000:g} ms, "
                f"max <= {quantile(before, after, 1.0) * 1000:g} ms"
            )
            print(harness.machine())


if __name__ == "__main__":
    main()
