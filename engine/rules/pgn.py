"""PGN export of a game, built with python-chess's own writer so it always reads back."""

from __future__ import annotations

from collections.abc import Mapping

import chess
import chess.engine
import chess.pgn

from engine.rules.game import GameState
from engine.rules.wire import MoveReviewJSON, ReviewJSON, ScoreJSON, Termination

# The PGN ``[Termination]`` tag, spelled as lichess exports it.
_PGN_TERMINATION: dict[Termination, str] = {
    "timeout": "Time forfeit",
    "arbiter": "Adjudication",
    "forfeit": "Abandoned",
}


def score_to_pov(score: ScoreJSON) -> chess.engine.PovScore:
    """A White-view wire score as python-chess's ``PovScore``."""
    if "mate" in score:
        return chess.engine.PovScore(chess.engine.Mate(score["mate"]), chess.WHITE)
    return chess.engine.PovScore(chess.engine.Cp(score.get("cp", 0)), chess.WHITE)


def export_pgn(state: GameState, *, site: str, evals: Mapping[int, ScoreJSON] | None = None) -> str:
    """The game as PGN text ending in a blank line.

    Tags: the Seven Tag Roster, then ratings, titles, ``TimeControl``, ``Termination``,
    ``Board`` and ``FEN``/``SetUp`` for a custom start. Every move carries ``[%clk]`` (the
    mover's time after the move) and ``[%eval]`` where ``evals`` has the position after it,
    keyed by ply (by default, the game's own recorded evaluations). A reviewed game (unless
    ``evals`` is given) has the review's ``[%eval]`` on every move, and each judged move its
    NAG, lichess's comment and the engine's better line as a variation.
    """
    review = state.review if evals is None else None
    if evals is None:
        evals = {ply: e["score"] for ply, e in state.evals.items()}
    if review is not None:
        evals = {**evals, **{m["ply"]: m["score"] for m in review["moves"]}}
    setup = state.setup
    game = chess.pgn.Game()
    headers = game.headers
    headers["Event"] = setup.event
    headers["Site"] = site
    headers["Date"] = _pgn_date(setup.created_at)
    headers["Round"] = _round_tag(setup.round, setup.board)
    headers["White"] = setup.white.name
    headers["Black"] = setup.black.name
    headers["Result"] = state.result
    for color, player in (("White", setup.white), ("Black", setup.black)):
        if player.rating is not None:
            headers[f"{color}Elo"] = str(player.rating)
        if player.title:
            headers[f"{color}Title"] = player.title
        if player.fide_id is not None:
            headers[f"{color}FideId"] = str(player.fide_id)
    headers["TimeControl"] = setup.control.pgn_tag
    headers["Termination"] = _termination_tag(state)
    if setup.board is not None:
        headers["Board"] = str(setup.board)
    headers["GameId"] = setup.id
    if setup.initial_fen != chess.STARTING_FEN:
        headers["FEN"] = setup.initial_fen
        headers["SetUp"] = "1"
    game.setup(chess.Board(setup.initial_fen))
    node: chess.pgn.GameNode = game
    for ply, record in enumerate(state.moves, start=1):
        node = node.add_variation(chess.Move.from_uci(record.uci))
        node.set_clock(record.clock_ms / 1000)
        if ply in evals:
            _set_eval(node, evals[ply])
    if review is not None:
        _annotate(game, review)
    exporter = chess.pgn.StringExporter(headers=True, variations=True, comments=True)
    return game.accept(exporter) + "\n\n"


def _set_eval(node: chess.pgn.ChildNode, score: ScoreJSON) -> None:
    """``[%eval]`` of the position after ``node``'s move; ``#0`` for a checkmate on the board
    (which python-chess does not write, and reads as the side to move mated)."""
    if score.get("mate") == 0:
        node.comment = f"{node.comment} [%eval #0]".strip()
    else:
        node.set_eval(score_to_pov(score))


def _annotate(game: chess.pgn.Game, review: ReviewJSON) -> None:
    """NAGs, comments and better lines of the judged moves of ``game``'s main line."""
    judged = {m["ply"]: m for m in review["moves"] if m["judgment"] is not None}
    parent: chess.pgn.GameNode = game
    for ply, node in enumerate(game.mainline(), start=1):
        move = judged.get(ply)
        if move is not None and move["judgment"] is not None:
            judgment = move["judgment"]
            node.nags.add(judgment["nag"])
            before = review["moves"][ply - 2]["score"] if ply > 1 else review["initial"]["score"]
            words = f"({_eval_words(before)} → {_eval_words(move['score'])}) {judgment['comment']}"
            node.comment = f"{node.comment} {words}".strip()
            _add_line(parent, move)
        parent = node


def _add_line(parent: chess.pgn.GameNode, move: MoveReviewJSON) -> None:
    """The engine's line from ``parent``'s position as a variation beside the move played."""
    if not move["variation"] or move["variation"][0] == move["uci"]:
        return
    board = parent.board()
    node = parent
    for uci in move["variation"]:
        candidate = chess.Move.from_uci(uci)
        if not board.is_legal(candidate):
            return
        node = node.add_variation(candidate)
        board.push(candidate)


def _eval_words(score: ScoreJSON) -> str:
    """A score as lichess words it in comments: ``0.31``, ``-2.50``, ``Mate in 3``."""
    if "mate" in score:
        return f"Mate in {abs(score['mate'])}"
    return f"{score.get('cp', 0) / 100:.2f}"


def _round_tag(round_no: int | None, board: int | None) -> str:
    """``[Round]``: ``"3.12"`` for board 12 of round 3 (as broadcasts write it), or ``-``."""
    if round_no is None:
        return "-"
    return f"{round_no}.{board}" if board is not None else str(round_no)


def _pgn_date(created_at: str) -> str:
    """``2026-11-21T10:00:00Z`` -> ``2026.11.21``; unknown parts stay ``??``."""
    if len(created_at) >= 10:
        return created_at[:10].replace("-", ".")
    return "????.??.??"


def _termination_tag(state: GameState) -> str:
    if state.termination is None:
        return "Unterminated"
    return _PGN_TERMINATION.get(state.termination, "Normal")
