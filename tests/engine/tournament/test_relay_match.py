"""Matching the games of a relay push to the boards of a round."""

from __future__ import annotations

from engine.rules.relay import RelayOutcome, split_games
from engine.tournament.relay import match_boards, name_key, report
from engine.tournament.state import Entrant, Pairing, Round

PLAYERS = {
    "p1": Entrant("p1", 1, "Magnus Carlsen"),
    "p2": Entrant("p2", 2, "Nepomniachtchi, Ian"),
    "p3": Entrant("p3", 3, "Firouzja, Alireza"),
    "p4": Entrant("p4", 4, "Ding Liren"),
    "p5": Entrant("p5", 5, "Dominguez Pérez, Leinier"),
    "p6": Entrant("p6", 6, "Caruana, Fabiano"),
}
ROUND = Round(
    3,
    (
        Pairing(1, "p1", "p2", "g1"),
        Pairing(2, "p3", "p4", "g2"),
        Pairing(3, "p5", "p6", "g3"),
    ),
)


def game(white: str, black: str, *, board: str | None = None, rnd: str | None = None) -> str:
    """One pushed game with the given tags and two moves."""
    tags = [f'[White "{white}"]', f'[Black "{black}"]', '[Result "*"]']
    if board is not None:
        tags.append(f'[Board "{board}"]')
    if rnd is not None:
        tags.append(f'[Round "{rnd}"]')
    return "\n".join(tags) + "\n\n1. e4 e5 *\n\n"


def boards(text: str) -> list[int | None]:
    """The board each game of ``text`` matched, None for none."""
    return [
        m.pairing.board if m.pairing else None
        for m in match_boards(ROUND, PLAYERS, split_games(text))
    ]


def test_match_by_board_tag_first() -> None:
    """[Board] decides, whatever the names say."""
    assert boards(game("X", "Y", board="2") + game("Caruana, Fabiano", "Z", board="1")) == [2, 1]


def test_match_by_the_board_part_of_round() -> None:
    """Without [Board], [Round "3.2"] is board 2 of round 3."""
    [match] = match_boards(ROUND, PLAYERS, split_games(game("X", "Y", rnd="3.2")))
    assert match.pairing is not None and match.pairing.game == "g2" and match.matched_by == "round"


def test_round_of_another_round_falls_back_to_names() -> None:
    """[Round "2.1"] pushed to round 3 is not board 1: names decide (and fit nothing here)."""
    [match] = match_boards(ROUND, PLAYERS, split_games(game("X", "Y", rnd="2.1")))
    assert match.pairing is None and match.error is not None


def test_match_by_names_in_every_spelling() -> None:
    """ "Last, First" and "First Last", any case, accents or not, and initials all match."""
    text = (
        game("Carlsen, Magnus", "Ian Nepomniachtchi")
        + game("ALIREZA FIROUZJA", "Ding, Liren", rnd="?")
        + game("Dominguez Perez, Leinier", "Caruana, F.")
    )
    matches = match_boards(ROUND, PLAYERS, split_games(text))
    assert [m.pairing.board if m.pairing else None for m in matches] == [1, 2, 3]
    assert {m.matched_by for m in matches} == {"names"}


def test_reversed_colours_and_strangers_do_not_match() -> None:
    """Names that fit a board with the colours swapped, or fit no one, are errors."""
    text = game("Nepomniachtchi, Ian", "Carlsen, Magnus") + game(
        "Kasparov, Garry", "Karpov, Anatoly"
    )
    reversed_, stranger = match_boards(ROUND, PLAYERS, split_games(text))
    assert reversed_.pairing is None and "reversed" in (reversed_.error or "")
    assert stranger.pairing is None and "no board matches" in (stranger.error or "")


def test_two_games_for_one_board_the_later_is_an_error() -> None:
    """The second game claiming board 1 is refused; the first keeps it."""
    text = game("Carlsen, Magnus", "Nepomniachtchi, Ian") + game("A", "B", board="1")
    first, second = match_boards(ROUND, PLAYERS, split_games(text))
    assert first.pairing is not None and first.pairing.board == 1
    assert second.pairing is None and "already taken" in (second.error or "")


def test_an_unknown_board_number_is_an_error() -> None:
    """[Board "9"] in a round of three boards matches nothing."""
    [match] = match_boards(ROUND, PLAYERS, split_games(game("A", "B", board="9")))
    assert match.pairing is None and "no board 9" in (match.error or "")


def test_ambiguous_short_names_match_nothing() -> None:
    """A loose name that fits two boards matches none of them."""
    players = {
        **PLAYERS,
        "p7": Entrant("p7", 7, "Carlsen, Henrik"),
        "p8": Entrant("p8", 8, "Nepomniachtchi, Ian"),
    }
    rnd = Round(1, (Pairing(1, "p1", "p2", "g1"), Pairing(2, "p7", "p8", "g2")))
    [match] = match_boards(rnd, players, split_games(game("Carlsen", "Nepomniachtchi")))
    assert match.pairing is None


def test_name_key_folds_case_accents_and_order() -> None:
    """Name keys ignore order, case, accents and punctuation."""
    assert name_key("Carlsen, Magnus") == name_key("MAGNUS carlsen") == ("carlsen", "magnus")
    assert name_key("Dominguez Pérez, Leinier") == name_key("Leinier Dominguez Perez")


def test_report_lines() -> None:
    """The answer line carries the board, game and what the relay did, or the match error."""
    [unmatched] = match_boards(ROUND, PLAYERS, split_games(game("A", "B", board="9")))
    assert report(unmatched, None) == {
        "board": None,
        "game": None,
        "moves_added": 0,
        "corrected": False,
        "result": "*",
        "error": "no board 9 in round 3",
    }
    [matched] = match_boards(ROUND, PLAYERS, split_games(game("A", "B", board="2")))
    outcome = RelayOutcome(state=None, moves_added=2, corrected=True, result="1-0")  # type: ignore[arg-type]
    line = report(matched, outcome)
    assert (line["board"], line["game"], line["moves_added"], line["corrected"]) == (
        2,
        "g2",
        2,
        True,
    )
    assert line["result"] == "1-0" and line["error"] is None
