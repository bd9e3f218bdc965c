"""Judge the built-in engine's moves in match games with a full-strength Stockfish.

Run from anywhere, on the PGN of `python bench/match.py ... --pgn games.pgn`:
`python bench/judge.py games.pgn [--depth 16] [--stockfish PATH]`.

For every move the built-in engine ("Grandmaster PVS" in the PGN's headers) played after the
opening, Stockfish (full strength, one thread) evaluates the position before and after it at
`--depth`. Reported, over all games and from the built-in engine's side: how many moves lost
more than 100 and more than 300 centipawns against Stockfish's best, the average loss, and how
far the built-in engine's own evaluation of the position after its move (the PGN's `[%eval]`,
which match.py writes) stood from Stockfish's: its mean (above 0: the built-in engine thinks
itself better off than it is) and its mean absolute value. A mate counts as 1000 cp.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import chess
import chess.engine
import chess.pgn

OURS = "Grandmaster PVS"
STOCKFISH_PATH = "/usr/games/stockfish"
MATE_CP = 1000


def cp(score: chess.engine.PovScore, colour: chess.Color) -> int:
    """`score` from `colour`'s side in centipawns, mates as `MATE_CP`."""
    value = score.pov(colour).score(mate_score=MATE_CP)
    assert value is not None
    return max(-MATE_CP, min(MATE_CP, value))


def main() -> None:
    """Parse the options, judge every game and print the summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pgn", type=Path)
    parser.add_argument("--depth", type=int, default=16)
    parser.add_argument("--stockfish", default=STOCKFISH_PATH)
    args = parser.parse_args()
    judge = chess.engine.SimpleEngine.popen_uci(args.stockfish)
    judge.configure({"Threads": 1, "Hash": 64})
    limit = chess.engine.Limit(depth=args.depth)
    losses: list[int] = []
    gaps: list[int] = []
    games = 0
    try:
        with args.pgn.open() as source:
            while (game := chess.pgn.read_game(source)) is not None:
                ours = chess.WHITE if game.headers.get("White") == OURS else chess.BLACK
                # match.py marks where the opening line ends.
                opening = int(game.headers.get("BookPlies", "0"))
                games += 1
                board = game.board()
                for node in game.mainline():
                    mover = board.turn
                    if mover == ours and board.ply() >= opening:
                        before = judge.analyse(board, limit)["score"]
                        board.push(node.move)
                        after = judge.analyse(board, limit)["score"]
                        losses.append(max(cp(before, ours) - cp(after, ours), 0))
                        own = node.eval()
                        if own is not None:
                            gaps.append(cp(own, ours) - cp(after, ours))
                    else:
                        board.push(node.move)
    finally:
        judge.quit()
    print(f"{games} games, {len(losses)} moves of the built-in engine judged at depth {args.depth}")
    if losses:
        print(
            f"lost over 100 cp: {sum(loss > 100 for loss in losses)}; over 300 cp: "
            f"{sum(loss > 300 for loss in losses)}; average loss {statistics.mean(losses):.0f} cp"
        )
    if gaps:
        print(
            f"own evaluation minus Stockfish's: mean {statistics.mean(gaps):+.0f} cp, "
            f"mean absolute {statistics.mean(abs(gap) for gap in gaps):.0f} cp"
        )


if __name__ == "__main__":
    main()
