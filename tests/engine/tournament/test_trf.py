"""The TRF16 report and the pairing engines' TRF input, column by column."""

from __future__ import annotations

from dataclasses import replace

import pytest

from engine.rules.clock import TimeControl
from engine.tournament.state import (
    Bye,
    TournamentSetup,
    TournamentState,
    add_player,
    evolve_all,
    pair_round,
    request_bye,
    withdraw,
)
from engine.tournament.trf import parse_pairings, tournament_trf, trf_for_pairing
from engine.tournament.wire import EntrantJSON


def _entrant(pid: str, name: str, **extra: object) -> EntrantJSON:
    data: EntrantJSON = {
        "id": pid,
        "number": 0,
        "name": name,
        "rating": None,
        "title": None,
        "fide_id": None,
        "federation": None,
    }
    return {**data, **extra}  # type: ignore[typeddict-item]


def _setup(**extra: object) -> TournamentSetup:
    fields: dict[str, object] = {
        "id": "t1",
        "name": "Grandmaster Open",
        "format": "swiss",
        "control": TimeControl.from_seconds(5400, 30),
        "swiss_rounds": 5,
        "city": "Oslo",
        "federation": "NOR",
        "start_date": "2025-03-01",
        "end_date": "2025-03-05",
        "arbiter": "Jane Arbiter",
        "pairing_system": "FIDE Dutch (C.04.3, rules until 31 Jan 2026), py4swiss 0.3.1",
    }
    fields.update(extra)
    return TournamentSetup(**fields)  # type: ignore[arg-type]


def _tournament(bye_points: float = 1.0) -> TournamentState:
    """Two rounds: a forfeit, a pairing-allocated bye, a late entry, a withdrawal, a
    requested half-point bye and one for round 3 still pending."""
    state = TournamentState(_setup(bye_points=bye_points))
    for entrant in [
        _entrant(
            "a",
            "Carlsen, Magnus",
            rating=2830,
            title="GM",
            fide_id=1503014,
            federation="nor",
        ),
        _entrant("b", "Second, Player", rating=2100, title="FM"),
        _entrant("c", "Third, Player", title="Dr"),
        _entrant("d", "Fourth, Player\nwith a newline"),
        _entrant("e", "Fifth, Player", rating=1500),
    ]:
        state = evolve_all(state, add_player(state, entrant))
    # Round 1: a-b 1-0, c-d +/- (forfeit), e the pairing-allocated bye.
    state = evolve_all(
        state,
        pair_round(
            state,
            1,
            [("a", "b", "g1"), ("c", "d", "g2")],
            [Bye("e", bye_points, "pairing")],
        ),
    )
    state = state.with_result(1, 1, "1-0").with_result(1, 2, "+/-")
    # Before round 2: a late entry, d withdraws, c asks for a half-point bye.
    state = evolve_all(state, add_player(state, _entrant("f", "Late, Entrant")))
    state = evolve_all(state, withdraw(state, "d"))
    state = evolve_all(state, request_bye(state, "c", 2, 0.5))
    state = evolve_all(
        state,
        pair_round(state, 2, [("b", "a", "g3"), ("f", "e", "g4")], [Bye("c", 0.5, "half")]),
    )
    state = state.with_result(2, 1, "1/2-1/2").with_result(2, 2, "0-1")
    # Round 3 to come: b asks for a zero-point bye.
    return evolve_all(state, request_bye(state, "b", 3, 0.0))


def _player_lines(text: str) -> dict[int, str]:
    return {int(line[4:8]): line for line in text.splitlines() if line.startswith("001")}


def test_player_line_has_the_exact_trf16_columns() -> None:
    """The 001 line of a titled, rated player: every field in its TRF16 columns."""
    line = _player_lines(tournament_trf(_tournament()))[1]
    expected = (
        "001    1   GM Carlsen, Magnus                   2830 NOR     1503014"
        "             1.5    1     2 w 1     2 b ="
    )
    assert line == expected
    # The same, field by field (1-based TRF columns).
    assert line[4:8] == "   1"  # 5-8 starting rank
    assert line[10:13] == " GM"  # 11-13 title
    assert line[14:47] == "Carlsen, Magnus".ljust(33)  # 15-47 name
    assert line[48:52] == "2830"  # 49-52 rating
    assert line[53:56] == "NOR"  # 54-56 federation
    assert line[57:68] == "    1503014"  # 58-68 FIDE id
    assert line[80:84] == " 1.5"  # 81-84 points
    assert line[85:89] == "   1"  # 86-89 rank
    assert line[91:99] == "   2 w 1"  # 92-99 round 1
    assert line[101:109] == "   2 b ="  # 102-109 round 2


def test_round_entries_of_forfeits_byes_withdrawal_and_late_entry() -> None:
    """Forfeits are + and -, byes U and H, absences (withdrawn, not yet entered) 0000 - Z."""
    lines = _player_lines(tournament_trf(_tournament()))
    rounds = {n: [line[91 + 10 * i : 99 + 10 * i] for i in range(2)] for n, line in lines.items()}
    assert rounds[2] == ["   1 b 0", "   1 w ="]
    assert rounds[3] == ["   4 w +", "0000 - H"]
    assert rounds[4] == ["   3 b -", "0000 - Z"]  # withdrawn from round 2
    assert rounds[5] == ["0000 - U", "   6 b 1"]
    assert rounds[6] == ["0000 - Z", "   5 w 0"]  # entered after round 1
    points = {n: line[80:84] for n, line in lines.items()}
    assert points == {1: " 1.5", 2: " 0.5", 3: " 1.5", 4: " 0.0", 5: " 2.0", 6: " 0.0"}
    # Nothing after the last round; no line breaks from names; unknown titles blank.
    assert all(len(line) == 109 for line in lines.values())
    assert lines[4][14:47].rstrip() == "Fourth, Player with a newline"
    assert lines[3][10:13] == "   " and lines[2][10:13] == " FM"


def test_header_lines() -> None:
    """The tournament lines come first, dates in TRF's YYYY/MM/DD."""
    head = tournament_trf(_tournament()).splitlines()[:10]
    assert head == [
        "012 Grandmaster Open",
        "022 Oslo",
        "032 NOR",
        "042 2025/03/01",
        "052 2025/03/05",
        "062 6",
        "072 3",
        "092 FIDE Dutch (C.04.3, rules until 31 Jan 2026), py4swiss 0.3.1",
        "102 Jane Arbiter",
        "122 5400+30",
    ]
    bare = TournamentState(_setup(city=None, arbiter=None, start_date=None, end_date=None))
    assert "022" not in tournament_trf(bare) and "102" not in tournament_trf(bare)


def test_rank_column_follows_a_given_ranking() -> None:
    """With the standings order the rank column is the place, else the pairing number."""
    state = _tournament()
    lines = _player_lines(tournament_trf(state, ranking=["e", "a", "c", "b", "f", "d"]))
    assert {n: int(line[85:89]) for n, line in lines.items()} == {
        5: 1,
        1: 2,
        3: 3,
        2: 4,
        6: 5,
        4: 6,
    }
    with pytest.raises(ValueError, match="leaves out"):
        tournament_trf(state, ranking=["a"])


def test_pairing_input_marks_who_must_not_be_paired() -> None:
    """Round 3 input: the zero-point bye and the withdrawn player get a round-3 entry,
    the others none; XXR and XXC follow the players."""
    text = trf_for_pairing(_tournament(), 3)
    lines = _player_lines(text)
    assert lines[2][111:119] == "0000 - Z"  # requested zero-point bye
    assert lines[4][111:119] == "0000 - Z"  # withdrawn
    for number in (1, 3, 5, 6):
        assert len(lines[number]) == 109
    assert text.splitlines()[-2:] == ["XXR 5", "XXC white1"]


def test_pairing_input_half_point_bye_counts_in_points() -> None:
    """A requested half-point bye for the round is 0000 - H, its half point included."""
    state = _tournament()
    state = evolve_all(state, request_bye(state, "a", 3, 0.5))
    line = _player_lines(trf_for_pairing(state, 3))[1]
    assert line[111:119] == "0000 - H"
    assert line[80:84] == " 2.0"


def test_pairing_input_scores_the_pairing_allocated_bye() -> None:
    """A bye worth other than 1 is declared for JaVaFo/py4swiss and for bbpPairings."""
    text = trf_for_pairing(_tournament(bye_points=0.5), 3)
    assert text.splitlines()[-2:] == ["XXS PAB=0.5", "BBU 0.5"]
    assert _player_lines(text)[5][80:84] == " 1.5"
    assert "XXS" not in trf_for_pairing(_tournament(), 3)


def test_pairing_input_refuses_the_wrong_round_or_an_unfinished_one() -> None:
    """Only the next round can be paired, and only once every earlier board is decided."""
    state = _tournament()
    with pytest.raises(ValueError, match="next round"):
        trf_for_pairing(state, 2)
    unfinished = state.with_result(2, 1, "*")
    with pytest.raises(ValueError, match="without a result"):
        trf_for_pairing(unfinished, 3)
    # The report shows an unfinished board with a blank result.
    line = _player_lines(tournament_trf(unfinished))[1]
    assert line[101:109] == "   2 b  "


def test_round_robin_free_round_is_a_zero_point_absence() -> None:
    """The round robin's free player is written 0000 - Z and scores nothing."""
    setup = _setup(format="round_robin", swiss_rounds=0)
    state = TournamentState(setup)
    for pid in "xyz":
        state = evolve_all(state, add_player(state, _entrant(pid, pid.upper())))
    state = evolve_all(state, pair_round(state, 1, [("y", "z", None)], [Bye("x", 0.0, "free")]))
    state = state.with_result(1, 1, "0-1")
    lines = _player_lines(tournament_trf(state))
    assert lines[1][91:99] == "0000 - Z" and lines[1][80:84] == " 0.0"
    assert lines[3][91:99] == "   2 b 1"
    assert "092 Round robin (FIDE Berger tables)" in tournament_trf(state).splitlines()


def test_parse_pairings_reads_the_engines_format() -> None:
    """Count line, then white black; 0 is the pairing-allocated bye."""
    assert parse_pairings("3\n1 4\n3 2\n5 0\n") == [(1, 4), (3, 2), (5, 0)]
    assert parse_pairings("0\n") == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("two\n1 2\n", "count is not a number"),
        ("2\n1 2\n", "announced 2 pairs and gave 1"),
        ("1\n1 x\n", "not two numbers"),
        ("1\n1 2 3\n", "not two numbers"),
        ("1\n2 2\n", "impossible"),
        ("1\n0 3\n", "impossible"),
        ("2\n1 2\n2 3\n", "player 2 is paired twice"),
        ("2\n1 0\n2 0\n", "more than one pairing-allocated bye"),
    ],
)
def test_parse_pairings_rejects_malformed_output(text: str, message: str) -> None:
    """Malformed engine output is a ValueError that says what is wrong."""
    with pytest.raises(ValueError, match=message):
        parse_pairings(text)


def test_too_many_players_for_the_columns() -> None:
    """Pairing numbers beyond 9999 do not fit TRF16's columns."""
    state = _tournament()
    players = (*state.players[:-1], replace(state.players[-1], number=10000))
    with pytest.raises(ValueError, match="9999"):
        tournament_trf(replace(state, players=players))
