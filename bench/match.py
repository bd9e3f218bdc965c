"""Rate the built-in engine by playing matches against Stockfish held to a UCI_Elo.

Run from anywhere:
`python bench/match.py --elo 1800 --movetime 0.3 [--games N] [--skip K] [--concurrency 1]`.

The built-in engine (`python -m engine`, over UCI) plays Debian's Stockfish with
`UCI_LimitStrength` on and `UCI_Elo` set (Stockfish 15.1's floor is 1350), one thread each, a
fixed time per move for both, searched in full by both: Stockfish keeps its `Move Overhead`
back from clocks only, so the built-in engine's is set to 0 (it keeps it back from `movetime`
too, for GUIs that flag a late answer). Every line of `bench/data/openings.txt` is played
twice, once with each colour; `--games` takes N games of that order, after the first `--skip`
ones (so that a run can be continued later with the games it did not play). Games are
adjudicated to keep runs short: a side resigns once Stockfish's own evaluation has stayed
beyond `--resign-cp` against it for `--resign-moves` of Stockfish's moves in a row; a game is
drawn at `--max-plies`, or once that evaluation has stayed within `--draw-cp` for
`--draw-moves` moves in a row after ply 80. The game's own end (mate, stalemate, repetition,
fifty moves, insufficient material) comes first.

Output: one line per game, then games, wins/draws/losses, the score with its 95% margin (from
the spread of the game scores), the Elo difference with its margin, the rating it gives on
Stockfish's UCI_Elo scale, our nodes per second, and the load average at the start and the end.
`--pgn FILE` writes the games, with the built-in engine's own evaluation after each of its
moves as `[%eval]` and the opening line's length as a `BookPlies` tag, for `bench/judge.py`.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from queue import Queue

import chess
import chess.engine
import chess.pgn

OPENINGS_PATH = Path(__file__).resolve().parent / "data" / "openings.txt"
ROOT = Path(__file__).resolve().parent.parent
STOCKFISH_PATH = "/usr/games/stockfish"
DRAW_AFTER_PLY = 80


@dataclass(frozen=True, slots=True)
class GameResult:
    """One finished game, from the built-in engine's side: `score` is 1, 0.5 or 0."""

    index: int
    opening: int
    ours_white: bool
    score: float
    reason: str
    plies: int
    nodes: int
    search_ms: int
    game: chess.pgn.Game


@dataclass(frozen=True, slots=True)
class Adjudication:
    """When a game is called before its end."""

    resign_cp: int
    resign_moves: int
    draw_cp: int
    draw_moves: int
    max_plies: int


@dataclass(slots=True)
class Streaks:
    """The adjudication of one game under way: fed each judged score, says when it is over.

    The resignation streak grows while consecutive scores see the same side lost (by
    `resign_cp`); the draw streak while they stay within `draw_cp` after `DRAW_AFTER_PLY`.
    """

    rules: Adjudication
    resign: int = 0
    draw: int = 0

    def see(self, white_cp: int, ply: int) -> tuple[float, str] | None:
        """Count `white_cp` (White's view) at `ply`; White's score and the reason once the
        game is adjudicated, else None."""
        rules = self.rules
        lost_by = 0 if abs(white_cp) < rules.resign_cp else (1 if white_cp > 0 else -1)
        self.resign = self.resign + lost_by if self.resign * lost_by > 0 else lost_by
        low = abs(white_cp) <= rules.draw_cp and ply >= DRAW_AFTER_PLY
        self.draw = self.draw + 1 if low else 0
        if abs(self.resign) >= rules.resign_moves:
            return (1.0 if white_cp > 0 else 0.0), "resigned"
        if self.draw >= rules.draw_moves:
            return 0.5, "drawn by eval"
        return None


def read_openings(path: Path) -> list[list[str]]:
    """The opening lines of `path` (UCI moves from the start), checked legal."""
    lines: list[list[str]] = []
    for raw in path.read_text().splitlines():
        if not raw.strip() or raw.startswith("#"):
            continue
        moves = raw.split()
        board = chess.Board()
        for uci in moves:
            board.push_uci(uci)
        lines.append(moves)
    return lines


def open_pair(
    elo: int, stockfish: str
) -> tuple[chess.engine.SimpleEngine, chess.engine.SimpleEngine]:
    """Start the built-in engine and a strength-limited Stockfish."""
    ours = chess.engine.SimpleEngine.popen_uci([sys.executable, "-m", "engine"], cwd=str(ROOT))
    ours.configure({"Move Overhead": 0})
    theirs = chess.engine.SimpleEngine.popen_uci(stockfish)
    theirs.configure({"UCI_LimitStrength": True, "UCI_Elo": elo, "Threads": 1, "Hash": 16})
    return ours, theirs


def play_game(
    index: int,
    opening_index: int,
    opening: list[str],
    ours_white: bool,
    engines: tuple[chess.engine.SimpleEngine, chess.engine.SimpleEngine],
    movetime_s: float,
    rules: Adjudication,
    elo: int,
) -> GameResult:
    """Play one game from `opening` against Stockfish at `elo` and return its result for the
    built-in engine, with the game's record."""
    ours, theirs = engines
    board = chess.Board()
    for uci in opening:
        board.push_uci(uci)
    limit = chess.engine.Limit(time=movetime_s)
    game = object()  # a new game for both engines: python-chess sends ucinewgame
    record = chess.pgn.Game.from_board(board)
    node: chess.pgn.GameNode = record.end()
    opening_plies = board.ply()
    nodes = search_ms = 0
    streaks = Streaks(rules)
    white_score: float | None = None
    reason = ""
    while white_score is None:
        ended = natural_end(board, rules.max_plies)
        if ended is not None:
            white_score, reason = ended
            break
        our_turn = board.turn == (chess.WHITE if ours_white else chess.BLACK)
        if our_turn:
            result = ours.play(board, limit, game=game, info=chess.engine.INFO_ALL)
            nodes += int(result.info.get("nodes", 0))
            search_ms += int(1000 * float(result.info.get("time", 0.0)))
        else:
            result = theirs.play(board, limit, game=game, info=chess.engine.INFO_SCORE)
            score = result.info.get("score")
            if score is not None:
                white_cp = score.white().score(mate_score=100_000)
                assert white_cp is not None
                # The streaks count Stockfish's moves only: its eyes alone adjudicate.
                judged = streaks.see(white_cp, board.ply())
                if judged is not None:
                    white_score, reason = judged
        if result.move is None:
            raise RuntimeError(f"no move from {'ours' if our_turn else 'stockfish'}: {board.fen()}")
        board.push(result.move)
        node = node.add_variation(result.move)
        if our_turn and result.info.get("score") is not None:
            # Our own evaluation of the position after our move, as PGN's [%eval] (White's view).
            node.set_eval(result.info["score"])
    score = white_score if ours_white else 1.0 - white_score
    ours_name, their_name = "Grandmaster PVS", f"Stockfish UCI_Elo {elo}"
    record.headers["White"], record.headers["Black"] = (
        (ours_name, their_name) if ours_white else (their_name, ours_name)
    )
    record.headers["Result"] = {1.0: "1-0", 0.0: "0-1", 0.5: "1/2-1/2"}[white_score]
    record.headers["Round"] = str(index + 1)
    record.headers["Termination"] = reason
    record.headers["OpeningLine"] = str(opening_index + 1)
    record.headers["BookPlies"] = str(opening_plies)
    return GameResult(
        index, opening_index, ours_white, score, reason, board.ply(), nodes, search_ms, record
    )


def natural_end(board: chess.Board, max_plies: int) -> tuple[float, str] | None:
    """White's score and the reason when the game is over on the board (draws claimed) or
    has reached `max_plies`; None while it goes on."""
    outcome = board.outcome(claim_draw=True)
    if outcome is not None:
        score = {chess.WHITE: 1.0, chess.BLACK: 0.0, None: 0.5}[outcome.winner]
        return score, outcome.termination.name.lower()
    if board.ply() >= max_plies:
        return 0.5, "ply cap"
    return None


def elo_difference(score: float) -> float:
    """The Elo difference that expects `score` (0 < score < 1)."""
    return -400 * math.log10(1 / score - 1)


def score_lines(scores: list[float], elo: int | None = None) -> list[str]:
    """W/D/L, the score with its 95% margin (from the spread of the game scores) and the Elo
    difference with its margin; with the opponent's `elo`, the rating it gives too."""
    count = len(scores)
    wins, draws = scores.count(1.0), scores.count(0.5)
    mean = sum(scores) / count
    variance = sum((s - mean) ** 2 for s in scores) / max(count - 1, 1)
    margin = 1.96 * math.sqrt(variance / count)
    epsilon = 0.5 / count
    low, diff, high = (
        elo_difference(min(max(s, epsilon), 1 - epsilon))
        for s in (mean - margin, mean, mean + margin)
    )
    elo_line = f"elo difference {diff:+.0f} (95%: {low:+.0f} .. {high:+.0f})"
    if elo is not None:
        elo_line += (
            f"; rating on Stockfish's UCI_Elo scale {elo + diff:.0f} "
            f"({elo + low:.0f} .. {elo + high:.0f})"
        )
    return [
        f"games {count}  +{wins} ={draws} -{count - wins - draws}",
        f"score {mean:.3f} +- {margin:.3f} (95%)",
        elo_line,
    ]


def summarise(results: list[GameResult], elo: int) -> list[str]:
    """The summary lines: W/D/L, score with 95% margin, Elo difference and rating, NPS."""
    lines = score_lines([r.score for r in results], elo)
    nodes = sum(r.nodes for r in results)
    search_ms = sum(r.search_ms for r in results)
    lines.append(f"our nodes per second {nodes * 1000 // max(search_ms, 1)}")
    return lines


def main() -> None:
    """Parse the options, play the games and print the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--elo", type=int, default=1800, help="Stockfish's UCI_Elo")
    parser.add_argument("--movetime", type=float, default=0.3, help="seconds per move, both")
    parser.add_argument("--games", type=int, default=0, help="games (default: 2 per opening)")
    parser.add_argument("--skip", type=int, default=0, help="games of the order to leave out")
    parser.add_argument("--concurrency", type=int, default=1, help="games at the same time")
    parser.add_argument("--openings", type=Path, default=OPENINGS_PATH)
    parser.add_argument("--stockfish", default=STOCKFISH_PATH)
    parser.add_argument("--resign-cp", type=int, default=1000)
    parser.add_argument("--resign-moves", type=int, default=3)
    parser.add_argument("--draw-cp", type=int, default=15)
    parser.add_argument("--draw-moves", type=int, default=8)
    parser.add_argument("--max-plies", type=int, default=200)
    parser.add_argument("--pgn", type=Path, help="write the games here (our evals as [%%eval])")
    args = parser.parse_args()
    openings = read_openings(args.openings)
    schedule = [(i // 2, i % 2 == 0) for i in range(2 * len(openings))]
    schedule = schedule[args.skip :]
    if args.games:
        schedule = schedule[: args.games]
    rules = Adjudication(
        args.resign_cp, args.resign_moves, args.draw_cp, args.draw_moves, args.max_plies
    )
    print(
        f"built-in engine vs Stockfish UCI_Elo {args.elo}, {args.movetime} s/move, "
        f"{len(schedule)} games after the first {args.skip}, concurrency {args.concurrency}, "
        f"load average at start {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    pairs: Queue[tuple[chess.engine.SimpleEngine, chess.engine.SimpleEngine]] = Queue()
    opened = [open_pair(args.elo, args.stockfish) for _ in range(args.concurrency)]
    for pair in opened:
        pairs.put(pair)
    started = time.monotonic()

    def run(index: int) -> GameResult:
        opening_index, ours_white = schedule[index]
        pair = pairs.get()
        try:
            result = play_game(
                index,
                opening_index,
                openings[opening_index],
                ours_white,
                pair,
                args.movetime,
                rules,
                args.elo,
            )
        finally:
            pairs.put(pair)
        print(
            f"game {args.skip + index + 1:3d} opening {opening_index + 1:2d} "
            f"{'white' if ours_white else 'black'}: {result.score:.1f} "
            f"({result.reason}, {result.plies} plies)",
            flush=True,
        )
        return result

    try:
        with ThreadPoolExecutor(args.concurrency) as pool:
            results = list(pool.map(run, range(len(schedule))))
    finally:
        for ours, theirs in opened:
            ours.quit()
            theirs.quit()
    if args.pgn is not None:
        with args.pgn.open("w") as out:
            for result in results:
                print(result.game, file=out, end="\n\n")
    for line in summarise(results, args.elo):
        print(line)
    minutes = (time.monotonic() - started) / 60
    print(f"{minutes:.1f} min; load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
