"""The Berger tables against FIDE's published ones (C.05 Annex 1), and their properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.tournament.berger import (
    berger_round,
    double_round_robin_round,
    free_player,
    rounds_in,
)


def _table(text: str) -> list[list[tuple[int, int]]]:
    rounds = []
    for line in text.strip().splitlines():
        _, pairs = line.split(":")
        rounds.append([tuple(int(x) for x in pair.split("-")) for pair in pairs.split()])
    return rounds  # type: ignore[return-value]


# Typed from the FIDE Handbook, C.05 Annex 1 (Berger tables).
FIDE_TABLES = {
    4: _table(
        """
        1: 1-4 2-3
        2: 4-3 1-2
        3: 2-4 3-1
        """
    ),
    6: _table(
        """
        1: 1-6 2-5 3-4
        2: 6-4 5-3 1-2
        3: 2-6 3-1 4-5
        4: 6-5 1-4 2-3
        5: 3-6 4-2 5-1
        """
    ),
    8: _table(
        """
        1: 1-8 2-7 3-6 4-5
        2: 8-5 6-4 7-3 1-2
        3: 2-8 3-1 4-7 5-6
        4: 8-6 7-5 1-4 2-3
        5: 3-8 4-2 5-1 6-7
        6: 8-7 1-6 2-5 3-4
        7: 4-8 5-3 6-2 7-1
        """
    ),
    10: _table(
        """
        1: 1-10 2-9 3-8 4-7 5-6
        2: 10-6 7-5 8-4 9-3 1-2
        3: 2-10 3-1 4-9 5-8 6-7
        4: 10-7 8-6 9-5 1-4 2-3
        5: 3-10 4-2 5-1 6-9 7-8
        6: 10-8 9-7 1-6 2-5 3-4
        7: 4-10 5-3 6-2 7-1 8-9
        8: 10-9 1-8 2-7 3-6 4-5
        9: 5-10 6-4 7-3 8-2 9-1
        """
    ),
}


@pytest.mark.parametrize("players", sorted(FIDE_TABLES))
def test_even_counts_match_the_fide_tables(players: int) -> None:
    """Every round of 4, 6, 8 and 10 players is FIDE's, board by board, colours included."""
    table = FIDE_TABLES[players]
    assert rounds_in(players) == len(table)
    for round_no, expected in enumerate(table, start=1):
        assert berger_round(players, round_no) == expected
        assert free_player(players, round_no) is None


@pytest.mark.parametrize("players", [3, 5, 7, 9])
def test_odd_counts_use_the_next_table_and_the_dummy_opponent_is_free(players: int) -> None:
    """With an odd count the table of n+1 applies; whoever meets n+1 sits out."""
    table = FIDE_TABLES[players + 1]
    dummy = players + 1
    assert rounds_in(players) == len(table)
    for round_no, expected in enumerate(table, start=1):
        free = [w if b == dummy else b for w, b in expected if dummy in (w, b)]
        games = [(w, b) for w, b in expected if dummy not in (w, b)]
        assert berger_round(players, round_no) == games
        assert free_player(players, round_no) == free[0]


def test_three_players_literally() -> None:
    """Three players: 3 sits out first, then 1, then 2 (the table for four)."""
    assert [berger_round(3, r) for r in (1, 2, 3)] == [[(2, 3)], [(1, 2)], [(3, 1)]]
    assert [free_player(3, r) for r in (1, 2, 3)] == [1, 3, 2]


def test_double_round_robin_of_four_swaps_the_last_two_rounds_of_the_first_cycle() -> None:
    """Four players: rounds 2 and 3 exchanged, then the table again with colours reversed."""
    assert [double_round_robin_round(4, r) for r in range(1, 7)] == [
        [(1, 4), (2, 3)],
        [(2, 4), (3, 1)],
        [(4, 3), (1, 2)],
        [(4, 1), (3, 2)],
        [(3, 4), (2, 1)],
        [(4, 2), (1, 3)],
    ]
    assert rounds_in(4, double=True) == 6


def test_two_players_play_one_game_each_colour() -> None:
    """Two players: one round, and in a double round robin the return game reversed."""
    assert rounds_in(2) == 1
    assert berger_round(2, 1) == [(1, 2)]
    assert [double_round_robin_round(2, r) for r in (1, 2)] == [[(1, 2)], [(2, 1)]]


def test_out_of_range_is_refused() -> None:
    """Round 0, a round past the last one, or fewer than two players raise ValueError."""
    with pytest.raises(ValueError, match="rounds"):
        berger_round(4, 0)
    with pytest.raises(ValueError, match="rounds"):
        berger_round(4, 4)
    with pytest.raises(ValueError, match="rounds"):
        double_round_robin_round(5, 11)
    with pytest.raises(ValueError, match="two players"):
        berger_round(1, 1)


def _colours(players: int, double: bool) -> dict[int, str]:
    """Each player's sequence over the rounds: W, B, or - when free."""
    pair_round = double_round_robin_round if double else berger_round
    seen: dict[int, str] = {p: "" for p in range(1, players + 1)}
    for round_no in range(1, rounds_in(players, double) + 1):
        pairs = pair_round(players, round_no)
        in_round = [p for pair in pairs for p in pair]
        free = free_player(players, round_no, double)
        if free is not None:
            in_round.append(free)
            seen[free] += "-"
        # Each player exactly once a round: on one board, or free.
        assert sorted(in_round) == list(range(1, players + 1))
        for white, black in pairs:
            seen[white] += "W"
            seen[black] += "B"
    return seen


@given(st.integers(min_value=2, max_value=30))
def test_single_cycle_meets_everyone_once_with_balanced_colours(players: int) -> None:
    """Each pair meets once; whites and blacks of a player differ by at most one."""
    met: set[frozenset[int]] = set()
    for round_no in range(1, rounds_in(players) + 1):
        for white, black in berger_round(players, round_no):
            pair = frozenset((white, black))
            assert pair not in met
            met.add(pair)
    assert len(met) == players * (players - 1) // 2
    for sequence in _colours(players, double=False).values():
        assert abs(sequence.count("W") - sequence.count("B")) <= 1


@given(st.integers(min_value=2, max_value=30))
def test_double_round_robin_meets_twice_with_each_colour_never_three_alike(players: int) -> None:
    """Each pair meets once per cycle, once with each colour; no three same colours in a
    row (a free round does not break a streak) and each cycle is balanced."""
    single = rounds_in(players)
    games: dict[tuple[int, int], int] = {}
    for round_no in range(1, 2 * single + 1):
        for pair in double_round_robin_round(players, round_no):
            games[pair] = games.get(pair, 0) + 1
    assert all(count == 1 for count in games.values())
    assert len(games) == players * (players - 1)
    assert all((black, white) in games for white, black in games)
    for sequence in _colours(players, double=True).values():
        played = sequence.replace("-", "")
        assert "WWW" not in played and "BBB" not in played, sequence
        for cycle in (sequence[:single], sequence[single:]):
            assert abs(cycle.count("W") - cycle.count("B")) <= 1
        # Each cycle has every pair once.
    for cycle_start in (1, single + 1):
        met = {
            frozenset(pair)
            for r in range(cycle_start, cycle_start + single)
            for pair in double_round_robin_round(players, r)
        }
        assert len(met) == players * (players - 1) // 2
