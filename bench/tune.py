"""Fit the built-in engine's evaluation weights to Stockfish's judgement of many positions.

Two steps, run from anywhere:

`python bench/tune.py generate --games 1500 --seed 1 --out positions-1.txt` has Debian's
Stockfish play itself at a fixed depth from the lines of `bench/data/openings.txt`, each
followed by a few random moves, with a random move now and then so that the games reach
unbalanced positions too (a piece up, a pawn down). Every position Stockfish moves in is
written as `FEN;cp;bestmove`: its score from White's point of view at that depth, and the move
it chose. Run one per core with different seeds; the files are appended to.

`python bench/tune.py fit positions-*.txt` keeps the quiet positions (not in check, Stockfish's
move neither a capture nor a promotion, no mate score), writes each as the features of
`engine.search.features` (the evaluation is a weighted sum of them) and fits the weights by
gradient descent so that the evaluation's winning chances match Stockfish's: the mean squared
difference of `1 / (1 + 10 ** (-cp / 400))` over all positions, the error Texel's tuning
method minimises against game results. Starts from the weights in the code; prints the error
before and after on positions held out of the fit, and writes the fitted weights as JSON
(`--out`) for `features.format_tables` to print in the evaluation's own layout.

Needs numpy (the fit only): `pip install numpy`.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import chess
import chess.engine
from match import OPENINGS_PATH, ROOT, STOCKFISH_PATH, read_openings

sys.path.insert(0, str(ROOT))

from engine.search import evaluation

MATE_CP = 100_000
RESIGN_CP = 1500


def generate(args: argparse.Namespace) -> None:
    """Play Stockfish against itself and append each position it moved in, with its score."""
    rng = random.Random(args.seed)
    openings = read_openings(OPENINGS_PATH)
    engine = chess.engine.SimpleEngine.popen_uci(args.stockfish)
    engine.configure({"Threads": 1, "Hash": 16})
    limit = chess.engine.Limit(depth=args.depth)
    written = 0
    with open(args.out, "a") as out:
        for game_index in range(args.games):
            board = chess.Board()
            for uci in rng.choice(openings):
                board.push_uci(uci)
            for _ in range(rng.randint(0, args.random_plies)):
                moves = list(board.legal_moves)
                if not moves:
                    break
                board.push(rng.choice(moves))
            game = object()
            lost_streak = 0
            while board.outcome(claim_draw=True) is None and board.ply() < args.max_plies:
                result = engine.play(board, limit, game=game, info=chess.engine.INFO_SCORE)
                score = result.info.get("score")
                if result.move is None or score is None:
                    break
                white_cp = score.white().score(mate_score=MATE_CP)
                assert white_cp is not None
                out.write(f"{board.fen()};{white_cp};{result.move.uci()}\n")
                written += 1
                lost_streak = lost_streak + 1 if abs(white_cp) >= RESIGN_CP else 0
                if lost_streak >= 4:
                    break
                move = result.move
                if rng.random() < args.random_rate:
                    move = rng.choice(list(board.legal_moves))
                board.push(move)
            if (game_index + 1) % 50 == 0:
                out.flush()
                print(f"{game_index + 1} games, {written} positions", flush=True)
    engine.quit()


def read_positions(paths: list[Path]) -> tuple[list[chess.Board], list[int], list[bool]]:
    """The quiet positions of `paths`, once each, with Stockfish's scores (White's view) and
    whether each is held out of the fit (every tenth block of 500 lines: whole games, mostly)."""
    boards: list[chess.Board] = []
    scores: list[int] = []
    held_out: list[bool] = []
    seen: set[str] = set()
    for path in paths:
        with open(path) as lines:
            for number, line in enumerate(lines):
                fen, cp, uci = line.rstrip("\n").split(";")
                white_cp = int(cp)
                if abs(white_cp) >= MATE_CP // 2:
                    continue
                board = chess.Board(fen)
                move = chess.Move.from_uci(uci)
                if board.is_check() or move.promotion or board.is_capture(move):
                    continue
                key = " ".join(fen.split()[:4])
                if key in seen:
                    continue
                seen.add(key)
                boards.append(board)
                scores.append(white_cp)
                held_out.append(number // 500 % 10 == 0)
    return boards, scores, held_out


def fit(args: argparse.Namespace) -> None:
    """Fit the evaluation's weights to the positions' scores and write them out."""
    import numpy as np

    from engine.search.features import (
        WEIGHTS,
        evaluate_counts,
        feature_counts,
        format_weights,
        phase_fraction,
    )

    boards, scores, held_out = read_positions(args.positions)
    middlegame = np.array([weight.middlegame for weight in WEIGHTS])
    features = np.zeros((len(boards), len(WEIGHTS)), dtype=np.float32)
    start = [weight.value for weight in WEIGHTS]
    agree = 0
    for row, board in enumerate(boards):
        counts, phase = feature_counts(board)
        share = phase_fraction(phase)
        for index, count in counts.items():
            features[row, index] = count * (share if middlegame[index] else 1.0 - share)
        agree += evaluate_counts(start, counts, phase) == evaluation.evaluate_white(board)
    print(
        f"{len(boards)} quiet positions, {sum(held_out)} held out; features agree with the "
        f"evaluation on {agree}",
        flush=True,
    )
    scale = np.log(10) / 400
    target = 1 / (1 + np.exp(-scale * np.array(scores, dtype=np.float64)))
    test = np.array(held_out)
    x_fit, y_fit = features[~test], target[~test]
    x_test, y_test = features[test], target[test]
    values = np.array(start, dtype=np.float64)

    def error(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
        return float(np.mean((1 / (1 + np.exp(-scale * (x @ w))) - y) ** 2))

    print(
        f"start: fit error {error(x_fit, y_fit, values):.6f}, "
        f"held out {error(x_test, y_test, values):.6f}",
        flush=True,
    )
    # Adam over full batches: the weights are centipawns, so a step of about `rate` each.
    moment = np.zeros_like(values)
    square = np.zeros_like(values)
    for step in range(1, args.steps + 1):
        predicted = 1 / (1 + np.exp(-scale * (x_fit @ values)))
        slope = 2 * (predicted - y_fit) * predicted * (1 - predicted) * scale
        gradient = x_fit.T @ slope / len(y_fit) + args.l2 * (values - start)
        moment = 0.9 * moment + 0.1 * gradient
        square = 0.999 * square + 0.001 * gradient**2
        rate = args.rate * (0.1 ** (step / args.steps))
        values -= rate * (moment / (1 - 0.9**step)) / (np.sqrt(square / (1 - 0.999**step)) + 1e-12)
        if step % 100 == 0 or step == args.steps:
            print(
                f"step {step}: fit error {error(x_fit, y_fit, values):.6f}, "
                f"held out {error(x_test, y_test, values):.6f}",
                flush=True,
            )
    fitted = [round(value) for value in values]
    print(f"rounded: held out {error(x_test, y_test, np.array(fitted, dtype=np.float64)):.6f}")
    args.out.write_text(json.dumps(dict(zip([w.name for w in WEIGHTS], fitted, strict=True))))
    print(format_weights(fitted))


def main() -> None:
    """Parse the command line and run a step."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    steps = parser.add_subparsers(dest="step", required=True)
    gen = steps.add_parser("generate", help="play Stockfish against itself, write positions")
    gen.add_argument("--games", type=int, default=1000)
    gen.add_argument("--depth", type=int, default=8)
    gen.add_argument("--seed", type=int, default=1)
    gen.add_argument("--random-plies", type=int, default=6, help="most random plies after a line")
    gen.add_argument("--random-rate", type=float, default=0.04, help="chance of a random move")
    gen.add_argument("--max-plies", type=int, default=300)
    gen.add_argument("--stockfish", default=STOCKFISH_PATH)
    gen.add_argument("--out", type=Path, required=True)
    fitting = steps.add_parser("fit", help="fit the evaluation's weights to positions")
    fitting.add_argument("positions", type=Path, nargs="+")
    fitting.add_argument("--steps", type=int, default=1000)
    fitting.add_argument("--rate", type=float, default=2.0, help="first step size, centipawns")
    fitting.add_argument("--l2", type=float, default=0.0, help="pull towards the code's weights")
    fitting.add_argument("--out", type=Path, default=Path("weights.json"))
    args = parser.parse_args()
    if args.step == "generate":
        generate(args)
    else:
        fit(args)


if __name__ == "__main__":
    main()
