"""Standings and C.07 tie-breaks on hand-computed crosstables, and their invariants."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.rules.clock import TimeControl
from engine.rules.errors import InvalidInput
from engine.tournament.standings import TIEBREAKS, standings, validate_tiebreaks
from engine.tournament.state import (
    RESULT_POINTS,
    Bye,
    Entrant,
    Pairing,
    Round,
    TournamentSetup,
    TournamentState,
    add_player,
    evolve_all,
    pair_round,
    request_bye,
    requested_byes,
    start_round,
    withdraw,
)
from engine.tournament.wire import ByeKind, EntrantJSON, Format, PairingResult

RATINGS = {"p1": 2400, "p2": 2300, "p3": 2200, "p4": 2100, "p5": 2000, "p6": 1900, "p7": None}


def _entrant(pid: str, rating: int | None) -> EntrantJSON:
    return {
        "id": pid,
        "number": 0,
        "name": pid.upper(),
        "rating": rating,
        "title": None,
        "fide_id": None,
        "federation": None,
    }


def _play(
    state: TournamentState,
    boards: list[tuple[str, str, PairingResult]],
    byes: list[Bye],
) -> TournamentState:
    """Pair the next round with ``boards`` and ``byes``, start it, and set every result."""
    number = len(state.rounds) + 1
    paired = [(white, black, f"g{number}.{i}") for i, (white, black, _) in enumerate(boards)]
    state = evolve_all(state, pair_round(state, number, paired, byes))
    state = evolve_all(state, start_round(state, number))
    for board, (_, _, result) in enumerate(boards, start=1):
        state = state.with_result(number, board, result)
    return state


def _swiss() -> TournamentState:
    """Seven players, 5 rounds; p8 enters late (before round 3).

    R1: p1-p4 1-0, p2-p5 =, p3-p6 0-1, p7 pairing-allocated bye (1)
    R2: p6-p1 0-1, p7-p2 0-1, p4-p3 +/- (p3 forfeits), p5 half-point bye
    (p3 withdraws after round 2; p8 enters)
    R3: p1-p2 =, p4-p5 0-1, p6-p7 1-0, p8 PAB
    R4: p2-p6 1-0, p5-p1 0-1, p7-p8 0-1, p4 PAB
    R5: p1-p8 1-0, p6-p5 =, p7-p4 1-0, p2 PAB
    """
    setup = TournamentSetup("t1", "Open", "swiss", TimeControl(60_000, 0), swiss_rounds=5)
    state = TournamentState(setup)
    for pid, rating in RATINGS.items():
        state = evolve_all(state, add_player(state, _entrant(pid, rating)))
    state = _play(
        state,
        [("p1", "p4", "1-0"), ("p2", "p5", "1/2-1/2"), ("p3", "p6", "0-1")],
        [Bye("p7", 1.0, "pairing")],
    )
    state = evolve_all(state, request_bye(state, "p5", 2, 0.5))
    state = _play(
        state,
        [("p6", "p1", "0-1"), ("p7", "p2", "0-1"), ("p4", "p3", "+/-")],
        requested_byes(state, 2),
    )
    state = evolve_all(state, withdraw(state, "p3"))
    state = evolve_all(state, add_player(state, _entrant("p8", 1800)))
    state = _play(
        state,
        [("p1", "p2", "1/2-1/2"), ("p4", "p5", "0-1"), ("p6", "p7", "1-0")],
        [Bye("p8", 1.0, "pairing")],
    )
    state = _play(
        state,
        [("p2", "p6", "1-0"), ("p5", "p1", "0-1"), ("p7", "p8", "0-1")],
        [Bye("p4", 1.0, "pairing")],
    )
    return _play(
        state,
        [("p1", "p8", "1-0"), ("p6", "p5", "1/2-1/2"), ("p7", "p4", "1-0")],
        [Bye("p2", 1.0, "pairing")],
    )


ALL_SWISS: tuple[str, ...] = ("BH-C1", "BH", "SB", "PS", "WIN", "BH-C2", "BH-M1", "SB-C1")
ALL_SWISS += ("WON", "BPG", "BWG", "REP", "ARO", "AOB")

# Scores: p1 4.5, p2 4, p3 0, p4 2, p5 2.5, p6 2.5, p7 2, p8 2.
#
# Scores as the opponents see them (Art. 16.3), "adj":
#   p3: R1 loss 0, R2 forfeit loss (16.2.4) 0, R3-R5 absent after withdrawing: requested
#       byes followed only by VURs (16.2.5) count as draws -> 0 + 0 + 3 x 0.5 = 1.5
#   p5: R2 half-point bye followed by games (16.2.3) counts 0.5 as awarded -> 2.5
#   p8: R1-R2 absent before entering, followed by a PAB (16.2.3) count 0 -> 2
#   p4: forfeit win (16.2.2) and PAB (16.2.1) count as awarded -> 2
#   everyone else: their score.
# A player's own unplayed round adds a dummy with the player's own score (Art. 16.4).
EXPECTED_SWISS = {
    # BH = 2 (p4) + 2.5 (p6) + 4 (p2) + 2.5 (p5) + 2 (p8) = 13; no VURs: C1 cuts a 2, C2
    # both 2s, M1 a 2 and the 4. SB = 2 + 2.5 + 4 x 0.5 + 2.5 + 2 = 11.
    "p1": (4.5, 5, {"BH-C1": 11, "BH": 13, "SB": 11, "PS": 13.5, "WIN": 4, "BH-C2": 9,
                    "BH-M1": 7, "SB-C1": 9, "WON": 4, "BPG": 2, "BWG": 2, "REP": 5,
                    "ARO": 2020, "AOB": 14.2}),
    # BH = 2.5 (p5) + 2 (p7) + 4.5 (p1) + 2.5 (p6) + 4 (R5 PAB: dummy = own 4) = 15.5.
    # SB = 2.5 x 0.5 + 2 + 4.5 x 0.5 + 2.5 + 4 x 1 = 12; SB-C1 cuts p7's 2 -> 10.
    # ARO skips unrated p7: (2000 + 2400 + 1900) / 3 = 2100.
    # AOB = (15.5 + 12.5 + 13 + 14.5) / 4 = 13.875 -> 13.88.
    "p2": (4.0, 4, {"BH-C1": 13.5, "BH": 15.5, "SB": 12, "PS": 11, "WIN": 3, "BH-C2": 11,
                    "BH-M1": 9, "SB-C1": 10, "WON": 2, "BPG": 2, "BWG": 1, "REP": 5,
                    "ARO": 2100, "AOB": 13.88}),
    # p5: see below the table.
    "p5": (2.5, 4, {"BH-C1": 13, "BH": 15.5, "SB": 6.5, "PS": 8, "WIN": 1, "BH-C2": 11,
                    "BH-M1": 8.5, "SB-C1": 4.5, "WON": 1, "BPG": 3, "BWG": 1, "REP": 4,
                    "ARO": 2175, "AOB": 14}),
    "p6": (2.5, 5, {"BH-C1": 13, "BH": 14.5, "SB": 4.75, "PS": 8.5, "WIN": 2, "BH-C2": 11,
                    "BH-M1": 8.5, "SB-C1": 3.25, "WON": 2, "BPG": 2, "BWG": 1, "REP": 5,
                    "ARO": 2225, "AOB": 11.8}),
    # BH = 4.5 (p1) + 2 (R2 forfeit win: dummy = own 2) + 2.5 (p5) + 2 (R4 PAB dummy)
    # + 2 (p7) = 13; no VURs. SB = 0 + 2 x 1 + 0 + 2 x 1 + 0 = 4.
    "p4": (2.0, 3, {"BH-C1": 11, "BH": 13, "SB": 4, "PS": 6, "WIN": 2, "BH-C2": 9,
                    "BH-M1": 6.5, "SB-C1": 4, "WON": 0, "BPG": 2, "BWG": 0, "REP": 5,
                    "ARO": 2200, "AOB": 13.67}),
    "p7": (2.0, 4, {"BH-C1": 10.5, "BH": 12.5, "SB": 4, "PS": 6, "WIN": 2, "BH-C2": 8.5,
                    "BH-M1": 6.5, "SB-C1": 4, "WON": 1, "BPG": 1, "BWG": 0, "REP": 5,
                    "ARO": 2025, "AOB": 13.88}),
    # BH = 2 + 2 (R1-R2 absent: VUR dummies of own 2) + 2 (R3 PAB dummy) + 2 (p7)
    # + 4.5 (p1) = 12.5; C1 and C2 cut the VURs; M1 a VUR 2 and the 4.5 -> 6.
    # SB = 0 + 0 + 2 x 1 + 2 x 1 + 0 = 4; SB-C1 cuts a VUR (0 >= least 0) -> 4.
    "p8": (2.0, 2, {"BH-C1": 10.5, "BH": 12.5, "SB": 4, "PS": 5, "WIN": 2, "BH-C2": 8.5,
                    "BH-M1": 6, "SB-C1": 4, "WON": 1, "BPG": 2, "BWG": 1, "REP": 3,
                    "ARO": 2400, "AOB": 12.75}),
    # BH = 2.5 (p6) + four dummies of own score 0 (forfeit loss, three absences: VURs).
    # C1/C2 cut VURs (0 >= least value 0); M1 cuts a VUR 0, then the highest, 2.5.
    "p3": (0.0, 1, {"BH-C1": 2.5, "BH": 2.5, "SB": 0, "PS": 0, "WIN": 0, "BH-C2": 2.5,
                    "BH-M1": 0, "SB-C1": 0, "WON": 0, "BPG": 0, "BWG": 0, "REP": 1,
                    "ARO": 1900, "AOB": 14.5}),
}  # fmt: skip
# p5 in detail: BH = 4 (p2) + 2.5 (R2 half bye, VUR: dummy = own 2.5) + 2 (p4) + 4.5 (p1)
# + 2.5 (p6) = 15.5. Cut-1 (Art. 16.5) cuts the VUR's 2.5, not the least value p4's 2
# -> 13 (13.5 without the exception); Cut-2 then cuts 2 -> 11; Median-1 cuts the VUR and 4.5.
# SB = 4 x 0.5 + 2.5 x 0.5 + 2 x 1 + 0 + 2.5 x 0.5 = 6.5. SB-C1: the least significant value
# is p4's (score 2, product 2); the VUR's product 1.25 is lower, so the 2 is cut -> 4.5.
# p6: SB = 1.5 (p3's adjusted score, a win) + 0 + 2 + 0 + 1.25 = 4.75; BH-C1 cuts the 1.5;
# SB-C1 cuts p3's contribution 1.5 -> 3.25.


def test_swiss_crosstable_points_and_every_tiebreak() -> None:
    """Every player's points, games played and tie-breaks match the hand computation."""
    table = standings(_swiss(), ALL_SWISS)
    got = {s["player"]: (s["points"], s["played"], s["tiebreaks"]) for s in table}
    assert got == EXPECTED_SWISS


def test_swiss_order_uses_the_default_tiebreaks() -> None:
    """Ties break on BH-C1, BH, SB, PS, WIN; everyone is listed, the withdrawn player too."""
    table = standings(_swiss())
    assert [s["player"] for s in table] == ["p1", "p2", "p5", "p6", "p4", "p7", "p8", "p3"]
    assert [s["rank"] for s in table] == [1, 2, 3, 4, 5, 6, 7, 8]
    # p5 and p6 share BH-C1 13, BH splits them; p7 and p8 share BH-C1, BH and SB, PS splits.
    assert list(table[2]["tiebreaks"]) == ["BH-C1", "BH", "SB", "PS", "WIN"]


def test_direct_encounter_in_a_swiss_counts_only_a_fully_met_group() -> None:
    """p4, p7, p8 (2 points) did not all meet; after BH-C1 p7 and p8 did: p8 won."""
    alone = {s["player"]: s["tiebreaks"]["DE"] for s in standings(_swiss(), ["DE"])}
    assert (alone["p4"], alone["p7"], alone["p8"]) == (0, 0, 0)
    after = standings(_swiss(), ["BH-C1", "DE"])
    assert [s["player"] for s in after][4:7] == ["p4", "p8", "p7"]
    assert {s["player"]: s["tiebreaks"]["DE"] for s in after[5:7]} == {"p8": 1, "p7": 0}


def test_a_round_in_progress_counts_only_its_finished_boards() -> None:
    """Unfinished boards give nothing; byes of the round count at once."""
    state = _swiss()
    last = state.rounds[-1]
    state = state.with_result(5, 1, "*").with_result(5, 2, "*")
    table = {s["player"]: s for s in standings(state)}
    assert table["p1"]["points"] == 3.5
    assert table["p8"]["points"] == 2.0
    assert table["p2"]["points"] == 4.0  # the PAB of round 5
    assert table["p7"]["points"] == 2.0
    assert (table["p6"]["points"], table["p5"]["points"]) == (2.0, 2.0)
    assert table["p1"]["played"] == 4
    assert last.pairings[2].result == "1-0"  # the third board stays decided


def test_through_round_shows_earlier_standings() -> None:
    """Standings after round 1 count round 1 only (the late entrant scores nothing)."""
    table = {s["player"]: s for s in standings(_swiss(), ["BH", "WIN"], through_round=1)}
    assert {pid: s["points"] for pid, s in table.items()} == {
        "p1": 1, "p2": 0.5, "p3": 0, "p4": 0, "p5": 0.5, "p6": 1, "p7": 1, "p8": 0
    }  # fmt: skip
    # p7's bye is its only round: a dummy with its own score 1. p8 is absent (a VUR
    # that is the last round counted: 16.2.5, a draw for opponents; it has none).
    assert table["p7"]["tiebreaks"] == {"BH": 1, "WIN": 1}
    assert table["p8"]["tiebreaks"] == {"BH": 0, "WIN": 0}


def _round_robin(fmt: Format, results: dict[int, list[PairingResult]]) -> TournamentState:
    """Six players on the FIDE Berger table for 6 (C.05 Annex 1), with ``results``."""
    tables = {
        1: [(1, 6), (2, 5), (3, 4)],
        2: [(6, 4), (5, 3), (1, 2)],
        3: [(2, 6), (3, 1), (4, 5)],
        4: [(6, 5), (1, 4), (2, 3)],
        5: [(3, 6), (4, 2), (5, 1)],
    }
    setup = TournamentSetup("t2", "RR", fmt, TimeControl(60_000, 0))
    players = tuple(Entrant(f"r{i}", i, f"R{i}") for i in range(1, 7))
    rounds = tuple(
        Round(
            n,
            tuple(
                Pairing(board, f"r{w}", f"r{b}", None, result)
                for board, ((w, b), result) in enumerate(zip(tables[n], results[n], strict=True), 1)
            ),
            started=True,
        )
        for n in sorted(results)
    )
    return TournamentState(setup, players, rounds)


# r1..r4 all score 2; among them: r1-r2 =, r3-r1 =, r1-r4 1-0, r2-r3 +/- (r3 forfeits),
# r4-r2 1-0, r3-r4 1-0. Against r5 and r6: r1 0, r2 0.5, r3 0.5, r4 1. r5 and r6 score 3.5
# and drew each other; r1 forfeited to r5 in round 5.
RR_RESULTS: dict[int, list[PairingResult]] = {
    1: ["0-1", "1/2-1/2", "1-0"],  # r1-r6, r2-r5, r3-r4
    2: ["1/2-1/2", "1-0", "1/2-1/2"],  # r6-r4, r5-r3, r1-r2
    3: ["0-1", "1/2-1/2", "1/2-1/2"],  # r2-r6, r3-r1, r4-r5
    4: ["1/2-1/2", "1-0", "+/-"],  # r6-r5, r1-r4, r2-r3
    5: ["1/2-1/2", "1-0", "+/-"],  # r3-r6, r4-r2, r5-r1 (r1 forfeits)
}


def test_round_robin_direct_encounter_ranks_the_group_and_its_subgroups() -> None:
    """r1..r4 all met (the forfeit counts in a round robin): among them r1 scored 2, r2 and
    r3 1.5, r4 1; r2 and r3 are then compared alone (r2 won by forfeit). r5 and r6 drew."""
    table = standings(_round_robin("round_robin", RR_RESULTS), ["DE"])
    assert [(s["player"], s["points"], s["tiebreaks"]["DE"]) for s in table] == [
        ("r5", 3.5, 0),
        ("r6", 3.5, 0),
        ("r1", 2.0, 3),
        ("r2", 2.0, 2),
        ("r3", 2.0, 1),
        ("r4", 2.0, 0),
    ]


def test_round_robin_sonneborn_berger_and_wins() -> None:
    """SB counts the forfeit as a game against the scheduled opponent (Art. 15.2); WIN
    counts the forfeit win, WON does not."""
    table = standings(_round_robin("round_robin", RR_RESULTS), ["SB", "DE", "WIN", "WON"])
    got = {s["player"]: s["tiebreaks"] for s in table}
    # r1: r2 2 x 0.5 + r3 2 x 0.5 + r4 2 x 1 = 4.  r2: r1 1 + r3 2 (forfeit win) + r5 3.5 x 0.5
    # = 4.75.  r3: r1 1 + r4 2 + r6 3.5 x 0.5 = 4.75.  r4: r2 2 + r5 1.75 + r6 1.75 = 5.5.
    # r5: r2 1 + r3 2 + r4 1 + r6 1.75 + r1 2 (forfeit win: r1's 2, no dummy) = 7.75.  r6: r1 2 + r4 1 + r2 2 + r5 1.75 + r3 1.
    assert {p: v["SB"] for p, v in got.items()} == {
        "r1": 4, "r2": 4.75, "r3": 4.75, "r4": 5.5, "r5": 7.75, "r6": 7.75
    }  # fmt: skip
    assert {p: v["WIN"] for p, v in got.items()} == {
        "r1": 1, "r2": 1, "r3": 1, "r4": 1, "r5": 2, "r6": 2
    }  # fmt: skip
    assert (got["r2"]["WON"], got["r5"]["WON"]) == (0, 1)
    # r5 and r6 share SB, DE (a draw) and WIN; WON puts r6 first (r5 won one by forfeit).
    # Then SB: r4 (5.5), r2 and r3 (4.75: DE, r2 won by forfeit), r1.
    assert [s["player"] for s in table] == ["r6", "r5", "r4", "r2", "r3", "r1"]


def test_round_robin_direct_encounter_needs_every_pair_to_have_met() -> None:
    """After round 1, r3 and r6 (1 point) and r1 and r4 (0) had not met and r2 and r5 drew:
    DE is 0 everywhere and the pairing number decides."""
    table = standings(_round_robin("round_robin", RR_RESULTS), ["DE"], through_round=1)
    assert all(s["tiebreaks"]["DE"] == 0 for s in table)
    assert [s["player"] for s in table] == ["r3", "r6", "r2", "r5", "r1", "r4"]


def test_defaults_follow_the_format_and_unknown_tiebreaks_are_refused() -> None:
    """Round robins default to SB, DE, WIN; unknown or repeated acronyms raise InvalidInput."""
    table = standings(_round_robin("double_round_robin", RR_RESULTS))
    assert list(table[0]["tiebreaks"]) == ["SB", "DE", "WIN"]
    assert validate_tiebreaks(["bh-c1", " SB "]) == ("BH-C1", "SB")
    with pytest.raises(InvalidInput):
        validate_tiebreaks(["BH", "XYZ"])
    with pytest.raises(InvalidInput):
        validate_tiebreaks(["BH", "BH"])
    with pytest.raises(InvalidInput):
        standings(_swiss(), ["KOYA"])


# --- properties ---

BYE_KINDS: list[ByeKind] = ["pairing", "half", "zero"]
RESULTS: list[PairingResult] = ["1-0", "0-1", "1/2-1/2", "+/-", "-/+", "-/-", "*"]


@st.composite
def swiss_states(draw: st.DrawFn) -> TournamentState:
    """Random Swiss-like tournaments: any pairings, results, byes and absences."""
    n = draw(st.integers(2, 8))
    rounds_total = draw(st.integers(1, 5))
    setup = TournamentSetup(
        "t3", "Prop", "swiss", TimeControl(60_000, 0), swiss_rounds=rounds_total
    )
    ratings = st.one_of(st.none(), st.integers(1000, 2800))
    players = tuple(Entrant(f"x{i}", i, f"X{i}", draw(ratings)) for i in range(1, n + 1))
    rounds = []
    for number in range(1, rounds_total + 1):
        ids = draw(st.permutations([p.id for p in players]))
        absent = draw(st.integers(0, len(ids) // 2))
        present = ids[absent:]
        boards = []
        for board, i in enumerate(range(0, len(present) - 1, 2), start=1):
            result = draw(st.sampled_from(RESULTS))
            boards.append(Pairing(board, present[i], present[i + 1], None, result))
        byes = []
        if len(present) % 2:
            kind: ByeKind = draw(st.sampled_from(BYE_KINDS))
            points = {"pairing": draw(st.sampled_from([1.0, 0.5, 0.0])), "half": 0.5}
            byes.append(Bye(present[-1], points.get(kind, 0.0), kind))
        rounds.append(Round(number, tuple(boards), tuple(byes), started=True))
    return TournamentState(setup, players, tuple(rounds))


@settings(max_examples=150, deadline=None)
@given(swiss_states(), st.permutations(sorted(TIEBREAKS)))
def test_standings_invariants(state: TournamentState, names: list[str]) -> None:
    """Points are the sum of decided games and byes; ranks are 1..n; the order never rises."""
    expected = {p.id: 0.0 for p in state.players}
    for rnd in state.rounds:
        for p in rnd.pairings:
            white, black = RESULT_POINTS[p.result]
            expected[p.white] += white
            expected[p.black] += black
        for bye in rnd.byes:
            expected[bye.player] += bye.points
    table = standings(state, names)
    assert {s["player"]: s["points"] for s in table} == expected
    assert [s["rank"] for s in table] == list(range(1, len(state.players) + 1))
    keys = [(s["points"], *(s["tiebreaks"][n] for n in names)) for s in table]
    assert keys == sorted(keys, reverse=True)
    assert all(s["played"] <= len(state.rounds) for s in table)
