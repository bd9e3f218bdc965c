"""Lines from the engine to the GUI (UCI): identity, search information and the best move.

Scores on the wire are from the side to move's point of view, as UCI wants; the search reports
them from White's, so every formatter takes whose turn it is.
"""

from __future__ import annotations

from engine.search.search import SearchInfo

__all__ = ["format_bestmove", "format_info", "format_string", "id_lines"]

ENGINE_NAME = "Grandmaster PVS"
ENGINE_AUTHOR = "the Grandmaster developers"


def id_lines() -> list[str]:
    """The `id name` and `id author` lines of the answer to `uci`."""
    return [f"id name {ENGINE_NAME}", f"id author {ENGINE_AUTHOR}"]


def format_info(
    info: SearchInfo, white_to_move: bool, elapsed_ms: int, with_rank: bool = False
) -> str:
    """One `info` line for a completed depth, searched in `elapsed_ms` milliseconds so far;
    `with_rank` gives the line's rank (`multipv`), as a search for several lines does."""
    sign = 1 if white_to_move else -1
    if info.mate is not None:
        score = f"mate {info.mate * sign}"
    else:
        score = f"cp {(info.score_cp or 0) * sign}"
    nps = info.nodes * 1000 // max(elapsed_ms, 1)
    return (
        f"info depth {info.depth} seldepth {max(info.seldepth, info.depth)} "
        + (f"multipv {info.multipv} " if with_rank else "")
        + f"score {score} "
        f"nodes {info.nodes} nps {nps} time {elapsed_ms} pv {' '.join(info.pv)}"
    )


def format_bestmove(best: str | None, ponder: str | None) -> str:
    """The `bestmove` line; `0000` when the position has no legal move (UCI's null move)."""
    if best is None:
        return "bestmove 0000"
    if ponder is None:
        return f"bestmove {best}"
    return f"bestmove {best} ponder {ponder}"


def format_string(text: str) -> str:
    """An `info string` line, on one line whatever `text` holds."""
    return "info string " + " ".join(text.split())
