"""The transposition table: entries packed into machine words read back as stored."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.search.move import Move
from engine.search.transposition import (
    EXACT,
    LOWER,
    MATE,
    UPPER,
    TranspositionTable,
    entry_depth,
    entry_flag,
    entry_move,
    entry_score,
    score_to_table,
)

keys = st.integers(-(2**63), 2**63 - 1)
moves = st.one_of(
    st.none(),
    st.builds(
        Move,
        st.integers(0, 63),
        st.integers(0, 63),
        st.sampled_from([0, 2, 3, 4, 5]),
    ).filter(lambda move: move.from_square != move.to_square),
)


@given(
    keys,
    st.integers(1, 200),
    st.sampled_from([EXACT, LOWER, UPPER]),
    st.integers(-MATE, MATE),
    st.integers(0, 100),
    moves,
    moves,
)
def test_an_entry_reads_back_as_stored_until_another_key_takes_its_slot(
    key: int, depth: int, flag: int, score: int, ply: int, move: Move | None, other: Move | None
) -> None:
    """Depth, flag, score (mates included, as stored) and move come back from `probe`; a key
    of the same slot misses, and once stored there replaces the first."""
    table = TranspositionTable(1024)
    stored = score_to_table(score, ply)
    table.store(key, depth, flag, stored, move)
    entry = table.probe(key)
    assert entry != 0 and len(table) == 1
    assert (entry_depth(entry), entry_flag(entry), entry_score(entry)) == (depth, flag, stored)
    assert entry_move(entry) == move
    rival = key ^ 1 << 40  # the same low bits, so the same slot
    assert table.probe(rival) == 0
    table.store(rival, 1, UPPER, -stored, other)
    assert table.probe(key) == 0 and entry_move(table.probe(rival)) == other
    assert len(table) == 1


def test_the_size_is_the_power_of_two_at_most_asked_for() -> None:
    """A table holds at most the entries asked for, rounded down to a power of two."""
    assert TranspositionTable(1000).capacity() == 512
    assert TranspositionTable(1 << 20).capacity() == 1 << 20
    assert TranspositionTable(2).capacity() == 2
    with pytest.raises(ValueError, match="at least two"):
        TranspositionTable(1)
