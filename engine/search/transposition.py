"""Transposition table and mate-score conventions for one search job.

A table belongs to a single search and dies with it: nothing here is module-level state.
Scores are in centipawns from the side to move's point of view; a mate is `MATE - plies` for the
side that mates (`-(MATE - plies)` for the side that is mated), with `plies` counted from the root.
"""

from __future__ import annotations

from typing import Final, TypeAlias

from engine.search.move import Move

__all__ = [
    "EXACT",
    "LOWER",
    "MATE",
    "MATE_BOUND",
    "UPPER",
    "Entry",
    "TranspositionTable",
    "score_from_table",
    "score_to_table",
]

MATE: Final = 32_000
"""The score of delivering mate right now; a mate `n` plies from the root scores `MATE - n`."""

MATE_BOUND: Final = MATE - 1_000
"""Scores beyond this magnitude are mate scores, never material."""

EXACT: Final = 0
"""The stored score is the exact value of the position."""
LOWER: Final = 1
"""The search failed high: the true value is at least the stored score."""
UPPER: Final = 2
"""The search failed low: the true value is at most the stored score."""

Entry: TypeAlias = tuple[int, int, int, Move | None]
"""`(depth, bound flag, score as stored, best move or None)`."""


def score_to_table(score: int, ply: int) -> int:
    """Convert a score found `ply` plies below the root to one relative to its own node.

    A mate score counts plies from the root; stored as distance from this node, it stays right
    when the same position is met again at another depth of the tree.
    """
    if score > MATE_BOUND:
        return score + ply
    if score < -MATE_BOUND:
        return score - ply
    return score


def score_from_table(score: int, ply: int) -> int:
    """Inverse of `score_to_table` for a node `ply` plies below the root."""
    if score > MATE_BOUND:
        return score - ply
    if score < -MATE_BOUND:
        return score + ply
    return score


class TranspositionTable:
    """A bounded map from position keys to search results, aging out old entries.

    Keys are `engine.search.board.PositionKey` Zobrist keys: two positions share one only by
    rare chance, so a caller checks that a stored move is legal before it plays it. The table
    holds at most `max_entries` entries in two generations: when the young one is full it
    becomes the old one and the previous old one is dropped, so recently used results survive
    and memory is bounded.
    """

    __slots__ = ("_generation_size", "_old", "_young")

    def __init__(self, max_entries: int = 1 << 20) -> None:
        if max_entries < 2:
            raise ValueError("a transposition table needs room for at least two entries")
        self._generation_size = max_entries // 2
        self._young: dict[object, Entry] = {}
        self._old: dict[object, Entry] = {}

    def __len__(self) -> int:
        return len(self._young) + len(self._old)

    def get(self, key: object) -> Entry | None:
        """Return the entry stored for `key`, or None."""
        entry = self._young.get(key)
        if entry is None:
            entry = self._old.get(key)
        return entry

    def put(self, key: object, entry: Entry) -> None:
        """Store `entry` for `key`, replacing any earlier entry for the same key."""
        young = self._young
        if len(young) >= self._generation_size and key not in young:
            self._old = young
            self._young = young = {}
        young[key] = entry
