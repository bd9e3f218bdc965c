"""Measure a change to the built-in engine by self-play against a baseline checkout of it.

Run from the checkout to measure:
`nice -n 19 python bench/selfplay.py --baseline /work/wt-baseline --movetime 0.1 [--games 200
--skip 0]`.

Both sides are `python -m engine` over UCI, one started in this checkout (or in `--ours`, a
copy of one, so that work can go on here meanwhile) and one in the `--baseline` checkout, with
the same interpreter and `PYTHONPATH` set to each checkout. Each side has a fixed time per
move (or `--nodes` per move instead, which is deterministic and so repeats games). Every line
of the book (`--openings`, by default `bench/data/openings-wide.txt`: 200 balanced lines from
`bench/openings.py`, so that games are as independent as their number says) is played twice,
once with each colour, `--rounds` times over; `--games` takes that many games of the
schedule after the first `--skip` (two processes on two cores: `--games 200` and `--games
200 --skip 200`). Because both sides are the same Python program under the
same load, fixed-time games are fair; the nodes per second of each side are printed so that a
change that slows the engine down shows.

Adjudication keeps runs short: a game is won once both engines' own scores have agreed for
`--resign-moves` moves each that one side is at least `--resign-cp` ahead, drawn once both have
stayed within `--draw-cp` for as many moves after ply 80, and drawn at `--max-plies`. The
game's own end (mate, stalemate, repetition, fifty moves, insufficient material) comes first.

Output: one line per game, then games, wins/draws/losses of this checkout, the score with its
95% margin (from the spread of the game scores), the Elo difference with its margin, and the
nodes per second of each side.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import chess
import chess.engine
from match import (
    Adjudication,
    Streaks,
    natural_end,
    read_openings,
    score_lines,
)

ROOT = Path(__file__).resolve().parent.parent
WIDE_OPENINGS_PATH = ROOT / "bench" / "data" / "openings-wide.txt"


@dataclass(frozen=True, slots=True)
class Side:
    """Search effort one engine spent over a match."""

    nodes: int = 0
    search_ms: int = 0

    def plus(self, other: Side) -> Side:
        """This effort and `other` together."""
        return Side(self.nodes + other.nodes, self.search_ms + other.search_ms)

    def add(self, info: chess.engine.InfoDict) -> Side:
        """This effort plus one search's `info`."""
        return Side(
            self.nodes + int(info.get("nodes", 0)),
            self.search_ms + int(1000 * float(info.get("time", 0.0))),
        )


def start_engine(checkout: Path) -> chess.engine.SimpleEngine:
    """Start `python -m engine` of `checkout` with that checkout first on the import path."""
    env = dict(os.environ, PYTHONPATH=str(checkout))
    return chess.engine.SimpleEngine.popen_uci(
        [sys.executable, "-m", "engine"], cwd=str(checkout), env=env
    )


def play_game(
    opening: list[str],
    ours_white: bool,
    ours: chess.engine.SimpleEngine,
    theirs: chess.engine.SimpleEngine,
    limit: chess.engine.Limit,
    args: argparse.Namespace,
) -> tuple[float, str, int, dict[bool, Side]]:
    """Play one game; return our score, the reason, its plies and the effort of each side."""
    board = chess.Board()
    for uci in opening:
        board.push_uci(uci)
    game = object()  # a new game for both engines: python-chess sends ucinewgame
    effort = {True: Side(), False: Side()}
    # Both engines' scores feed the streaks, alternately: twice the moves, so that each
    # engine's own count is the option's.
    streaks = Streaks(
        Adjudication(
            args.resign_cp, 2 * args.resign_moves, args.draw_cp, 2 * args.draw_moves, args.max_plies
        )
    )
    white_score: float | None = None
    reason = ""
    while white_score is None:
        ended = natural_end(board, args.max_plies)
        if ended is not None:
            white_score, reason = ended
            break
        our_turn = board.turn == (chess.WHITE if ours_white else chess.BLACK)
        engine = ours if our_turn else theirs
        result = engine.play(board, limit, game=game, info=chess.engine.INFO_ALL)
        effort[our_turn] = effort[our_turn].add(result.info)
        score = result.info.get("score")
        if score is not None:
            white_cp = score.white().score(mate_score=100_000)
            assert white_cp is not None
            # One streak for both engines: it grows while each move's mover sees the same side
            # lost, so a resignation needs both engines to agree on alternate moves.
            judged = streaks.see(white_cp, board.ply())
            if judged is not None:
                white_score, reason = judged
        if result.move is None:
            raise RuntimeError(f"no move from {'ours' if our_turn else 'baseline'}: {board.fen()}")
        board.push(result.move)
        if white_score is not None:
            break
    score = white_score if ours_white else 1.0 - white_score
    return score, reason, board.ply(), effort


def main() -> None:
    """Parse the options, play the games and print the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, required=True, help="checkout to play against")
    parser.add_argument("--ours", type=Path, default=ROOT, help="checkout to measure")
    parser.add_argument("--movetime", type=float, default=0.1, help="seconds per move, both")
    parser.add_argument("--nodes", type=int, default=0, help="nodes per move instead of time")
    parser.add_argument("--rounds", type=int, default=1, help="times through the openings")
    parser.add_argument("--games", type=int, default=0, help="stop after N games")
    parser.add_argument("--skip", type=int, default=0, help="games of the schedule to leave out")
    parser.add_argument("--openings", type=Path, default=WIDE_OPENINGS_PATH)
    parser.add_argument("--resign-cp", type=int, default=800)
    parser.add_argument("--resign-moves", type=int, default=3)
    parser.add_argument("--draw-cp", type=int, default=10)
    parser.add_argument("--draw-moves", type=int, default=8)
    parser.add_argument("--max-plies", type=int, default=200)
    args = parser.parse_args()
    openings = read_openings(args.openings)
    schedule = [(i // 2, i % 2 == 0) for i in range(2 * len(openings))] * args.rounds
    if not 0 <= args.skip < len(schedule):
        parser.error(f"--skip must leave some of the {len(schedule)} games of the schedule")
    schedule = schedule[args.skip :]
    if args.games:
        schedule = schedule[: args.games]
    limit = (
        chess.engine.Limit(nodes=args.nodes)
        if args.nodes
        else chess.engine.Limit(time=args.movetime)
    )
    print(
        f"{args.ours.resolve()} vs {args.baseline.resolve()}, {limit}, {len(schedule)} games, "
        f"load average at start {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    started = time.monotonic()
    ours = start_engine(args.ours.resolve())
    theirs = start_engine(args.baseline.resolve())
    scores: list[float] = []
    effort = {True: Side(), False: Side()}
    try:
        for index, (opening_index, ours_white) in enumerate(schedule):
            score, reason, plies, spent = play_game(
                openings[opening_index], ours_white, ours, theirs, limit, args
            )
            scores.append(score)
            effort = {side: effort[side].plus(spent[side]) for side in effort}
            print(
                f"game {args.skip + index + 1:3d} opening {opening_index + 1:3d} "
                f"{'white' if ours_white else 'black'}: {score:.1f} ({reason}, {plies} plies)",
                flush=True,
            )
    finally:
        ours.quit()
        theirs.quit()
    print("\n".join(score_lines(scores)))
    for side, name in ((True, "ours"), (False, "baseline")):
        spent = effort[side]
        print(f"{name} nodes per second {spent.nodes * 1000 // max(spent.search_ms, 1)}")
    minutes = (time.monotonic() - started) / 60
    print(f"{minutes:.1f} min; load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
