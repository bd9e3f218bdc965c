"""FIDE Berger tables (Handbook C.05, Annex 1) in closed form, single and double round robin.

Players are numbered 1..n by pairing number. With an odd ``n`` the tables for ``n + 1`` are
used and number ``n + 1`` is the dummy: whoever meets it is free that round. The dummy's
pair is *not* returned by :func:`berger_round`; :func:`free_player` names the free player.

For ``m = n - 1`` rounds (``n`` even, dummy included), round ``r`` pairs ``n`` with the
player ``x`` for which ``2x = r + 1 (mod m)`` on board 1 (``x`` White in odd rounds, ``n``
White in even ones), then on board ``k`` (2 and up) ``x + k - 1`` (White) against
``x - k + 1`` (Black), both taken modulo ``m`` into 1..m. This reproduces the published
tables exactly (see the tests).
"""

from __future__ import annotations


def _table_size(players: int) -> int:
    """The even table size for ``players`` entrants (the dummy included)."""
    if players < 2:
        raise ValueError("a round robin needs at least two players")
    return players + players % 2


def rounds_in(players: int, double: bool = False) -> int:
    """How many rounds a (double) round robin of ``players`` entrants has."""
    single = _table_size(players) - 1
    return 2 * single if double else single


def _table_round(size: int, round_no: int) -> list[tuple[int, int]]:
    """Round ``round_no`` of the Berger table for an even ``size``, dummy pair included."""
    m = size - 1
    if not 1 <= round_no <= m:
        raise ValueError(f"a table for {size} players has rounds 1..{m}, not {round_no}")
    # 2x = r + 1 (mod m): r odd gives (r + 1) / 2, r even gives r / 2 + size / 2.
    x = (round_no + 1) // 2 if round_no % 2 else round_no // 2 + size // 2
    pairs = [(x, size) if round_no % 2 else (size, x)]
    for k in range(1, size // 2):
        pairs.append(((x + k - 1) % m + 1, (x - k - 1) % m + 1))
    return pairs


def _without_dummy(players: int, pairs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    return [(w, b) for w, b in pairs if w <= players and b <= players]


def berger_round(players: int, round_no: int) -> list[tuple[int, int]]:
    """The (white, black) pairing numbers of round ``round_no`` (1 first), in board order.

    With an odd number of ``players`` the pair with the dummy (``players + 1``) is left
    out, so boards are the list's order; :func:`free_player` says who sits out. Raises
    ValueError for fewer than two players or a round outside 1..:func:`rounds_in`.
    """
    return _without_dummy(players, _table_round(_table_size(players), round_no))


def free_player(players: int, round_no: int, double: bool = False) -> int | None:
    """The player who meets the dummy in round ``round_no`` (odd counts), else None.

    ``double`` selects the double round robin's round order. Raises ValueError as
    :func:`berger_round` does.
    """
    size = _table_size(players)
    single = size - 1
    if not 1 <= round_no <= rounds_in(players, double):
        raise ValueError(f"round {round_no} is outside rounds 1..{rounds_in(players, double)}")
    if size == players:
        return None
    table_round = _double_table_round(single, round_no)[0] if double else round_no
    white, black = _table_round(size, table_round)[0]
    return white if black == size else black


def _double_table_round(single: int, round_no: int) -> tuple[int, bool]:
    """The table round that round ``round_no`` of a double round robin plays, and whether
    its colours are reversed (second cycle)."""
    if round_no > single:
        return round_no - single, True
    # The last two rounds of the first cycle swap, so that no one gets three games
    # with the same colour in a row across the cycles (C.05 Annex 1).
    if single >= 3 and round_no == single - 1:
        return single, False
    if single >= 3 and round_no == single:
        return single - 1, False
    return round_no, False


def double_round_robin_round(players: int, round_no: int) -> list[tuple[int, int]]:
    """The (white, black) pairs of round ``round_no`` of a double round robin.

    Rounds 1..m are the Berger table with its last two rounds exchanged; rounds
    m+1..2m repeat the table in its own order with colours reversed. The dummy's pair is
    left out as in :func:`berger_round`. Raises ValueError as it does.
    """
    size = _table_size(players)
    single = size - 1
    if not 1 <= round_no <= 2 * single:
        raise ValueError(f"a double round robin of {players} has rounds 1..{2 * single}")
    table_round, reversed_colours = _double_table_round(single, round_no)
    pairs = _table_round(size, table_round)
    if reversed_colours:
        pairs = [(b, w) for w, b in pairs]
    return _without_dummy(players, pairs)
