"""Transposition table and mate-score conventions of the search.

A table belongs to a search, or to a game's searches in turn: nothing here is module-level state.
Scores are in centipawns from the side to move's point of view; a mate is `MATE - plies` for the
side that mates (`-(MATE - plies)` for the side that is mated), with `plies` counted from the root.
"""

from __future__ import annotations

from typing import Final

from librt.vecs import extend, vec
from mypy_extensions import i64

from engine.search.generation import MOVES, move_index
from engine.search.move import Move

__all__ = [
    "DEFAULT_ENTRIES",
    "EXACT",
    "LOWER",
    "MATE",
    "MATE_BOUND",
    "UPPER",
    "TranspositionTable",
    "entry_depth",
    "entry_flag",
    "entry_move",
    "entry_score",
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


DEFAULT_ENTRIES: Final = 1 << 18
"""The size of a search's own table (4 MB), when the caller lends none."""

# An entry, from the high bits down: the depth (above bit 34), the flag (bits 32-33), the score
# plus 2**16 (17 bits: a stored score is a mate's 32,000 at most, and the ply after it), and the
# move's index in `MOVES` (15 bits; 0, the null move, is no move). No entry is 0: depth >= 1.
_SCORE_OFFSET: Final = 1 << 16
_EMPTY: Final = vec[i64]([0] * DEFAULT_ENTRIES)


def entry_depth(entry: i64) -> int:
    """The depth of an entry `TranspositionTable.probe` found."""
    return entry >> 34


def entry_flag(entry: i64) -> int:
    """The bound flag (`EXACT`, `LOWER`, `UPPER`) of an entry `TranspositionTable.probe` found."""
    return entry >> 32 & 3


def entry_score(entry: i64) -> int:
    """The score of an entry `TranspositionTable.probe` found, as stored (`score_from_table`
    makes it the node's)."""
    return (entry >> 15 & 0x1FFFF) - _SCORE_OFFSET


def entry_move(entry: i64) -> Move | None:
    """The best move of an entry `TranspositionTable.probe` found, or None."""
    index = entry & 0x7FFF
    return MOVES[index] if index else None


class TranspositionTable:
    """A bounded map from position keys to search results, of machine words.

    Keys are `engine.search.board.PositionKey` Zobrist keys: two positions share one only by
    rare chance, so a caller checks that a stored move is legal before it plays it. The table
    is direct-mapped: a key's low bits pick one of its slots (a power of two, at most
    `max_entries`), which keeps the last result stored there. A slot is two `vec` items, the
    key and the entry packed into one integer (depth, flag, score and the move's index in
    `MOVES`, from the high bits down): 16 bytes, where a dictionary of tuples took about 500
    and built objects at every store.
    """

    __slots__ = ("_entries", "_keys", "_mask")

    def __init__(self, max_entries: int = DEFAULT_ENTRIES) -> None:
        if max_entries < 2:
            raise ValueError("a transposition table needs room for at least two entries")
        size = 1 << (max_entries.bit_length() - 1)
        self._mask: i64 = size - 1
        # Copied from an empty table (a block copy), doubled as often as needed: filling a
        # `vec` item by item takes about 50 ns an item, 0.2 s for 4M slots.
        keys = _EMPTY[:size]
        while len(keys) < size:
            keys = extend(keys, keys)
        self._keys = keys
        self._entries = keys[:]

    def __len__(self) -> int:
        """How many slots hold an entry."""
        return sum(1 for entry in self._entries if entry)

    def capacity(self) -> int:
        """How many entries the table can hold."""
        return len(self._entries)

    def probe(self, key: i64) -> i64:
        """The entry stored for `key` (read with `entry_depth` .. `entry_move`), 0 if none."""
        slot = key & self._mask
        entry = self._entries[slot]
        if entry and self._keys[slot] == key:
            return entry
        return 0

    def store(self, key: i64, depth: int, flag: int, score: int, move: Move | None) -> None:
        """Store a result for `key` at `depth` (at least 1) with its bound `flag`, `score` as
        `score_to_table` gives it and best `move` (None when there is none), in place of what
        its slot held."""
        index = 0 if move is None else move_index(move)
        slot = key & self._mask
        self._keys[slot] = key
        self._entries[slot] = (
            i64(depth) << 34 | i64(flag) << 32 | i64(score + _SCORE_OFFSET) << 15 | index
        )
