"""Write a wide book of balanced opening lines for self-play, chosen by Stockfish.

Run from anywhere: `python bench/openings.py --lines 200 --seed 1 > openings-wide.txt`.

`bench/data/openings.txt` has 20 main lines; self-play over them replays the same 40 starts
every round, and games of one start are much alike, so a few hundred games count for fewer
than they seem. Here each line is 8 plies, each ply picked at random among the best four
moves of a shallow Stockfish search (`--pick-depth`, 6), so the lines stay openings a player
might choose; a line is kept when a deeper search (`--check-depth`, 12) finds it within
`--max-cp` (50) of equal, and each position once. The output is the book's format: a comment
header, then one line of UCI moves each.
"""

from __future__ import annotations

import argparse
import random

import chess
import chess.engine
from match import STOCKFISH_PATH


def main() -> None:
    """Parse the options, pick the lines and print them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--plies", type=int, default=8)
    parser.add_argument("--pick-depth", type=int, default=6)
    parser.add_argument("--check-depth", type=int, default=12)
    parser.add_argument("--max-cp", type=int, default=50)
    parser.add_argument("--stockfish", default=STOCKFISH_PATH)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    engine = chess.engine.SimpleEngine.popen_uci(args.stockfish)
    try:
        engine.configure({"Threads": 1, "Hash": 32})
        seen: set[str] = set()
        lines: list[str] = []
        while len(lines) < args.lines:
            board = chess.Board()
            while board.ply() < args.plies and not board.is_game_over():
                infos = engine.analyse(board, chess.engine.Limit(depth=args.pick_depth), multipv=4)
                board.push(rng.choice([info["pv"][0] for info in infos if info.get("pv")]))
            if board.ply() < args.plies or board.is_game_over() or board.epd() in seen:
                continue
            score = engine.analyse(board, chess.engine.Limit(depth=args.check_depth))["score"]
            white_cp = score.white().score(mate_score=100_000)
            if white_cp is not None and abs(white_cp) <= args.max_cp:
                seen.add(board.epd())
                lines.append(" ".join(move.uci() for move in board.move_stack))
    finally:
        engine.quit()
    print(
        f"# {len(lines)} balanced opening lines for bench/selfplay.py, by bench/openings.py\n"
        f"# --seed {args.seed}: {args.plies} plies, each among Stockfish's best four at depth "
        f"{args.pick_depth}, within {args.max_cp} cp of equal at depth {args.check_depth}."
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
