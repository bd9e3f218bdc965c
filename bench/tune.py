"""Fit the built-in engine's evaluation weights to Stockfish's judgement of many positions.

Two steps, run from anywhere:

`python bench/tune.py generate --games 20000 --seed 11 --out positions-11.txt` has Debian's
Stockfish play itself (`--play-depth`, 6) from the lines of `bench/data/openings.txt`, each
followed by up to six random moves, with a random move now and then (4%) so that the games
reach unbalanced positions too (a piece up, a pawn down). A few positions of each game (8%:
the positions of one game are much alike) are scored deeper (`--label-depth`, 10) and written
as `FEN;cp;bestmove`: Stockfish's score from White's point of view and its best move. Run one
per core with different seeds; the files are appended to, and a run can be stopped any time.
With `--player ours` the built-in engine plays the games instead (`--play-nodes` a move, 3,000)
and the end of its principal variation is scored too wherever a position is: the positions its
search steers into are where its evaluation's errors cost games.

`python bench/tune.py fit positions-*.txt --tables shift --keep-scale` keeps the quiet
positions (not in check, Stockfish's move neither a capture nor a promotion, no mate score, no
ending whose evaluation `engine.search.endings.scale_drawish` shrinks), each once, writes each
as the features of `engine.search.features` (the evaluation is a weighted sum of them) and fits
the weights by gradient descent so that the evaluation's winning chances match Stockfish's: the
mean squared difference of the two logistic curves over the positions fitted, the error Texel's
tuning method minimises against game results. It starts from the weights in the code.
`--keep-scale` first finds the logistic scale that fits the code's own evaluation best and
keeps it, so that the fitted weights keep the evaluation's centipawns (the search's margins are
in them) instead of taking on Stockfish's. `--tables shift` moves a piece's placement table of
a game phase as a whole (its material) rather than square by square: over a few hundred
thousand positions the squares' own weights fit the games they came from (see the README).
Every tenth block of 500 lines is held out of the fit; the weights kept are those of the least
error on them. It prints the errors, the fitted material and tables in the evaluation module's
layout and the other weights by name, and writes all of them as JSON (`--out`).

Needs numpy (the fit only; in the test extras).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import sys
from pathlib import Path
from typing import TextIO

import chess
import chess.engine
from match import OPENINGS_PATH, ROOT, STOCKFISH_PATH, read_openings

sys.path.insert(0, str(ROOT))

from engine.search import evaluation
from engine.search.board import SearchBoard
from engine.search.endings import scale_drawish

MATE_CP = 100_000
DRAWISH_MARGIN = 100
"""Within this of 0 the fitted weights may turn a position's evaluation the other way."""
RESIGN_CP = 1500


def generate(args: argparse.Namespace) -> None:
    """Play games (Stockfish or the built-in engine against itself) and append a sample of
    their positions, with Stockfish's scores."""
    rng = random.Random(args.seed)
    openings = read_openings(OPENINGS_PATH)
    with contextlib.ExitStack() as engines:
        engine = chess.engine.SimpleEngine.popen_uci(args.stockfish)
        engines.callback(engine.quit)
        player = engine
        if args.player == "ours":
            player = chess.engine.SimpleEngine.popen_uci([sys.executable, "-m", "engine"], cwd=ROOT)
            engines.callback(player.quit)
        engine.configure({"Threads": 1, "Hash": 16})
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
                written += play_game(engine, player, board, rng, args, out)
                if (game_index + 1) % 20 == 0:
                    out.flush()
                    print(f"{game_index + 1} games, {written} positions", flush=True)


def play_game(
    engine: chess.engine.SimpleEngine,
    player: chess.engine.SimpleEngine,
    board: chess.Board,
    rng: random.Random,
    args: argparse.Namespace,
    out: TextIO,
) -> int:
    """Play one game on from `board` (`player` moves, `engine` scores), write the positions
    sampled; return how many."""
    if player is engine:
        play = chess.engine.Limit(depth=args.play_depth)
    else:
        play = chess.engine.Limit(nodes=args.play_nodes)
    label = chess.engine.Limit(depth=args.label_depth)
    game = object()
    written = lost_streak = 0
    while board.outcome(claim_draw=True) is None and board.ply() < args.max_plies:
        result = player.play(
            board, play, game=game, info=chess.engine.INFO_SCORE | chess.engine.INFO_PV
        )
        score = result.info.get("score")
        if result.move is None or score is None:
            break
        if rng.random() < args.sample:
            # Positions of one game are much alike: a few per game, judged deeper.
            written += label_position(engine, board, label, game, out)
            line = result.info.get("pv") or []
            # The move played can come from a depth cut short, whose line is not reported.
            if player is not engine and len(line) > 1 and line[0] == result.move:
                # Where the built-in engine's search expects the game to go: the positions
                # its evaluation steers towards, which it may overrate.
                leaf = board.copy(stack=False)
                for move in line:
                    leaf.push(move)
                if leaf.outcome() is None:
                    written += label_position(engine, leaf, label, object(), out)
        white_cp = score.white().score(mate_score=MATE_CP)
        assert white_cp is not None
        lost_streak = lost_streak + 1 if abs(white_cp) >= RESIGN_CP else 0
        if lost_streak >= 4:
            break
        move = result.move
        if rng.random() < args.random_rate:
            move = rng.choice(list(board.legal_moves))
        board.push(move)
    return written


def label_position(
    engine: chess.engine.SimpleEngine,
    board: chess.Board,
    label: chess.engine.Limit,
    game: object,
    out: TextIO,
) -> int:
    """Write `board` with Stockfish's score and best move; return how many were written.

    `game` is python-chess's game marker: Stockfish keeps its hash within one game."""
    info = engine.analyse(board, label, game=game)
    judged = info.get("score")
    pv = info.get("pv")
    if judged is None or not pv:
        return 0
    judged_cp = judged.white().score(mate_score=MATE_CP)
    out.write(f"{board.fen()};{judged_cp};{pv[0].uci()}\n")
    return 1


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
                try:
                    fen, cp, uci = line.rstrip("\n").split(";")
                    white_cp = int(cp)
                    board = chess.Board(fen)
                    move = chess.Move.from_uci(uci)
                except ValueError:
                    continue  # the last line of a run stopped while it wrote
                if abs(white_cp) >= MATE_CP // 2:
                    continue
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

    boards, all_scores, all_held_out = read_positions(args.positions)
    middlegame = np.array([weight.middlegame for weight in WEIGHTS])
    features = np.zeros((len(boards), len(WEIGHTS)), dtype=np.float32)
    start = [weight.value for weight in WEIGHTS]
    scores: list[int] = []
    held_out: list[bool] = []
    agree = drawish = 0
    for board, score, held in zip(boards, all_scores, all_held_out, strict=True):
        counts, phase = feature_counts(board)
        weighted = evaluate_counts(start, counts, phase)
        # Where `scale_drawish` shrinks the evaluation (or would, were the other side ahead of
        # a close one) the evaluation is not the weighted sum: left out.
        near = weighted if abs(weighted) >= DRAWISH_MARGIN else -weighted or 1
        ours = SearchBoard(board)
        if scale_drawish(ours, weighted) != weighted or scale_drawish(ours, near) != near:
            drawish += 1
            continue
        row = len(scores)
        share = phase_fraction(phase)
        for index, count in counts.items():
            features[row, index] = count * (share if middlegame[index] else 1.0 - share)
        agree += weighted == evaluation.evaluate_white(ours)
        scores.append(score)
        held_out.append(held)
    features = features[: len(scores)]
    print(
        f"{len(scores)} quiet positions ({drawish} drawish endings left out), "
        f"{sum(held_out)} held out; features agree with the evaluation on {agree}",
        flush=True,
    )
    stockfish_scale = np.log(10) / 400

    def chances(evaluations: np.ndarray, scale: float) -> np.ndarray:
        """Winning chances of centipawn scores, on the logistic curve of `scale`."""
        return 1 / (1 + np.exp(-scale * evaluations))

    target = chances(np.array(scores, dtype=np.float64), stockfish_scale)
    test = np.array(held_out)
    x_fit, y_fit = features[~test], target[~test]
    x_test, y_test = features[test], target[test]
    # The fit moves groups of weights: each weight alone, or with `--tables shift` a piece's
    # whole table of a game phase by one number (its material), its shape kept.
    # A table weight is named "<phase> <piece> <square>"; its group is "<phase> <piece>".
    keys = [
        weight.name.rsplit(" ", 1)[0]
        if args.tables == "shift" and weight.name.rsplit(" ", 1)[-1] in chess.SQUARE_NAMES
        else weight.name
        for weight in WEIGHTS
    ]
    groups = {key: index for index, key in enumerate(dict.fromkeys(keys))}
    member = np.zeros((len(WEIGHTS), len(groups)), dtype=np.float32)
    member[np.arange(len(WEIGHTS)), [groups[key] for key in keys]] = 1
    start_values = np.array(start, dtype=np.float64)
    base_fit, base_test = x_fit @ start_values, x_test @ start_values
    # A group the fit's positions hardly show (a king on the far ranks in a middlegame) would
    # be fitted to a handful of games: it keeps the code's values. A position counts by the
    # share of its game phase the weight has (a middlegame weight hardly counts in an endgame).
    shown = np.abs(x_fit).sum(axis=0) @ member >= args.min_positions
    x_fit, x_test = x_fit @ member, x_test @ member
    shifts = np.zeros(len(groups))
    # Texel's first step: the scale that best turns the code's own evaluation into winning
    # chances is kept throughout, so that the fit keeps the evaluation's scale (the search's
    # margins are in its centipawns) and Stockfish's scale does not come with its scores.
    scale = stockfish_scale
    if args.keep_scale:
        candidates = stockfish_scale * np.linspace(0.5, 2.0, 151)
        errors = [np.mean((chances(base_fit, k) - y_fit) ** 2) for k in candidates]
        scale = float(candidates[int(np.argmin(errors))])
    print(f"scale: {scale / stockfish_scale:.3f} of Stockfish's")
    print(f"{int(shown.sum())} of {len(groups)} groups shown in {args.min_positions} positions")

    def error(x: np.ndarray, base: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
        return float(np.mean((chances(base + x @ w, scale) - y) ** 2))

    print(
        f"start: fit error {error(x_fit, base_fit, y_fit, shifts):.6f}, "
        f"held out {error(x_test, base_test, y_test, shifts):.6f}",
        flush=True,
    )
    # Adam over full batches: the weights are centipawns, so a step of about `rate` each.
    # The weights kept are those with the least error on the held-out positions, checked
    # every 25 steps: past that point the fit learns its own games rather than chess.
    best = (error(x_test, base_test, y_test, shifts), 0, shifts.copy())
    moment = np.zeros_like(shifts)
    square = np.zeros_like(shifts)
    for step in range(1, args.steps + 1):
        predicted = chances(base_fit + x_fit @ shifts, scale)
        slope = 2 * (predicted - y_fit) * predicted * (1 - predicted) * scale
        gradient = (x_fit.T @ slope / len(y_fit) + args.l2 * shifts) * shown
        moment = 0.9 * moment + 0.1 * gradient
        square = 0.999 * square + 0.001 * gradient**2
        rate = args.rate * (0.1 ** (step / args.steps))
        shifts -= rate * (moment / (1 - 0.9**step)) / (np.sqrt(square / (1 - 0.999**step)) + 1e-12)
        if step % 25 == 0:
            held = error(x_test, base_test, y_test, shifts)
            if held < best[0]:
                best = (held, step, shifts.copy())
        if step % 100 == 0 or step == args.steps:
            print(
                f"step {step}: fit error {error(x_fit, base_fit, y_fit, shifts):.6f}, "
                f"held out {error(x_test, base_test, y_test, shifts):.6f}",
                flush=True,
            )
    print(f"kept step {best[1]}: held out {best[0]:.6f}")
    fitted = [round(value) for value in start_values + member @ best[2]]
    predicted = chances(features[test] @ np.array(fitted, dtype=np.float64), scale)
    print(f"rounded: held out {float(np.mean((predicted - y_test) ** 2)):.6f}")
    args.out.write_text(json.dumps(dict(zip([w.name for w in WEIGHTS], fitted, strict=True))))
    print(format_weights(fitted))


def main() -> None:
    """Parse the command line and run a step."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    steps = parser.add_subparsers(dest="step", required=True)
    gen = steps.add_parser("generate", help="play games, write positions Stockfish scored")
    gen.add_argument("--games", type=int, default=1000)
    gen.add_argument(
        "--player", choices=("stockfish", "ours"), default="stockfish", help="who plays the games"
    )
    gen.add_argument("--play-depth", type=int, default=6, help="Stockfish's depth for its moves")
    gen.add_argument("--play-nodes", type=int, default=3000, help="the built-in engine's nodes")
    gen.add_argument("--label-depth", type=int, default=10, help="its depth for the scores")
    gen.add_argument("--sample", type=float, default=0.08, help="share of positions scored")
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
    fitting.add_argument(
        "--keep-scale", action="store_true", help="keep the evaluation's scale (Texel's K)"
    )
    fitting.add_argument(
        "--tables", choices=("fit", "shift"), default="fit", help="fit each square, or shift"
    )
    fitting.add_argument(
        "--min-positions", type=int, default=500, help="fit weights shown this often"
    )
    fitting.add_argument("--l2", type=float, default=0.0, help="pull towards the code's weights")
    fitting.add_argument("--out", type=Path, default=Path("weights.json"))
    args = parser.parse_args()
    if args.step == "generate":
        generate(args)
    else:
        fit(args)


if __name__ == "__main__":
    main()
