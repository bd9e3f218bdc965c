"""FIDE Tournament Report File (TRF16) of a tournament, and the pairing engines' TRF(x) input.

Pure: a :class:`TournamentState` in, text out. :func:`tournament_trf` is the public report;
:func:`trf_for_pairing` is the same file plus what the Swiss engines (bbpPairings, JaVaFo,
py4swiss) need to pair the next round; :func:`parse_pairings` reads their answer.

Per round a player's entry is ``opponent colour result`` (columns 92 on, ten per round):
a game is ``  12 w 1`` (``1 = 0`` played, ``+ -`` forfeits); a player without a game has
opponent ``0000`` and colour ``-``, the result saying why: ``U`` the pairing-allocated bye,
``H`` a requested half-point bye, ``Z`` a requested zero-point bye, the round robin's free
round (0 points, no game) and every absence (rounds before a late entry, rounds after a
withdrawal). An unfinished game keeps its opponent and colour with a blank result.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from engine.tournament.state import FORFEITS, RESULT_POINTS, Entrant, TournamentState

# TRF16's titles (columns 11-13); others are not representable and left blank.
TITLES = frozenset({"GM", "IM", "WGM", "FM", "WIM", "CM", "WFM", "WCM"})
# The widest pairing number the fixed columns hold.
MAX_PLAYERS = 9999

_BYE_CHAR = {"pairing": "U", "half": "H", "zero": "Z", "free": "Z"}
_GAME_CHAR = {1.0: "1", 0.5: "=", 0.0: "0"}
_FORMAT_TEXT = {
    "round_robin": "Round robin (FIDE Berger tables)",
    "double_round_robin": "Double round robin (FIDE Berger tables)",
}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})")


def _clean(text: str) -> str:
    """One line of text: control characters (newlines included) become spaces."""
    return _CONTROL.sub(" ", text).strip()


def _date(value: str) -> str:
    """TRF's ``YYYY/MM/DD`` for an ISO date (other text is kept as given)."""
    match = _ISO_DATE.match(value)
    return "/".join(match.groups()) if match else _clean(value)


def _points(value: float) -> str:
    """Points as TRF writes them, one decimal: ``4.5``."""
    return f"{value:.1f}"


class _Entry:
    """One round of one player: the 8 characters and the points they score."""

    __slots__ = ("points", "text")

    def __init__(self, opponent: int, colour: str, result: str, points: float) -> None:
        number = f"{opponent:>4}" if opponent else "0000"
        self.text = f"{number} {colour} {result}"
        self.points = points


def _absent() -> _Entry:
    return _Entry(0, "-", "Z", 0.0)


def _round_entries(state: TournamentState) -> dict[str, list[_Entry]]:
    """Every player's entries for the paired rounds, in round order."""
    numbers = {p.id: p.number for p in state.players}
    entries: dict[str, list[_Entry]] = {p.id: [] for p in state.players}
    for rnd in state.rounds:
        filled: set[str] = set()
        for pairing in rnd.pairings:
            white_points, black_points = RESULT_POINTS[pairing.result]
            if pairing.result == "*":
                white_char = black_char = " "
            elif pairing.result in FORFEITS:
                white_char = "+" if white_points else "-"
                black_char = "+" if black_points else "-"
            else:
                white_char = _GAME_CHAR[white_points]
                black_char = _GAME_CHAR[black_points]
            white, black = pairing.white, pairing.black
            entries[white].append(_Entry(numbers[black], "w", white_char, white_points))
            entries[black].append(_Entry(numbers[white], "b", black_char, black_points))
            filled |= {white, black}
        for bye in rnd.byes:
            entries[bye.player].append(_Entry(0, "-", _BYE_CHAR[bye.kind], bye.points))
            filled.add(bye.player)
        for player in state.players:
            if player.id not in filled:
                entries[player.id].append(_absent())
    return entries


def _player_line(entrant: Entrant, rank: int, entries: Sequence[_Entry]) -> str:
    """The ``001`` line: fixed columns up to the rank (89), then ten columns per round."""
    if not 1 <= entrant.number <= MAX_PLAYERS:
        raise ValueError(f"TRF holds pairing numbers 1..{MAX_PLAYERS}, not {entrant.number}")
    title = (entrant.title or "").upper()
    rating = entrant.rating if entrant.rating and 0 < entrant.rating <= 9999 else None
    fide_id = entrant.fide_id if entrant.fide_id and entrant.fide_id > 0 else None
    line = (
        "001"
        + f" {entrant.number:>4}"  # 5-8
        + " "  # 9
        + " "  # 10: sex (not recorded)
        + f"{title if title in TITLES else '':>3}"  # 11-13
        + " "
        + f"{_clean(entrant.name)[:33]:<33}"  # 15-47
        + " "
        + f"{rating if rating is not None else '':>4}"  # 49-52
        + " "
        + f"{_clean(entrant.federation or '').upper()[:3]:<3}"  # 54-56
        + " "
        + f"{fide_id if fide_id is not None else '':>11}"[-11:]  # 58-68
        + " "
        + " " * 10  # 70-79: birth date (not recorded)
        + " "
        + f"{_points(sum(e.points for e in entries)):>4}"  # 81-84
        + " "
        + f"{rank:>4}"  # 86-89
    )
    return line + "".join("  " + e.text for e in entries)


def _header(state: TournamentState) -> list[str]:
    setup = state.setup
    fields: list[tuple[str, str | None]] = [
        ("012", setup.name),
        ("022", setup.city),
        ("032", setup.federation),
        ("042", _date(setup.start_date) if setup.start_date else None),
        ("052", _date(setup.end_date) if setup.end_date else None),
        ("062", str(len(state.players))),
        ("072", str(sum(1 for p in state.players if p.rating))),
        ("092", _FORMAT_TEXT.get(setup.format, setup.pairing_system or "Swiss")),
        ("102", setup.arbiter),
        ("122", setup.control.pgn_tag),
    ]
    return [f"{code} {_clean(value)}" for code, value in fields if value and _clean(value)]


def _ranks(state: TournamentState, ranking: Sequence[str] | None) -> dict[str, int]:
    if ranking is None:
        return {p.id: p.number for p in state.players}
    ranks = {player_id: i for i, player_id in enumerate(ranking, start=1)}
    missing = [p.id for p in state.players if p.id not in ranks]
    if missing:
        raise ValueError(f"the ranking leaves out players {missing}")
    return ranks


def _lines(
    state: TournamentState,
    ranking: Sequence[str] | None,
    entries: dict[str, list[_Entry]],
) -> list[str]:
    ranks = _ranks(state, ranking)
    players = sorted(state.players, key=lambda p: p.number)
    return _header(state) + [_player_line(p, ranks[p.id], entries[p.id]) for p in players]


def tournament_trf(state: TournamentState, ranking: Sequence[str] | None = None) -> str:
    """The TRF16 report of every paired round: header lines where known, then one ``001``
    line per player in pairing-number order.

    ``ranking`` is the standings order (player ids, first first) for the rank column;
    without it the rank is the pairing number. Points include byes. Raises ValueError for
    a ranking that leaves a player out or more than 9999 players.
    """
    return "\n".join(_lines(state, ranking, _round_entries(state))) + "\n"


def trf_for_pairing(
    state: TournamentState, round_no: int, ranking: Sequence[str] | None = None
) -> str:
    """The engines' input for pairing ``round_no`` (the next round, all before it decided).

    Adds, to :func:`tournament_trf`: an entry for ``round_no`` for each player who must not be
    paired in it (a requested bye ``0000 - H`` or ``0000 - Z``, a withdrawal ``0000 - Z``:
    that is how bbpPairings, JaVaFo and py4swiss learn who is absent), ``XXR`` (total
    rounds), ``XXC white1``, and, when the pairing-allocated bye is not worth 1, its value
    as ``XXS PAB=x`` (JaVaFo, py4swiss) and ``BBU x`` (bbpPairings; each ignores the
    other's line). Raises ValueError when ``round_no`` is not the next round or a board
    before it has no result.
    """
    if round_no != len(state.rounds) + 1:
        raise ValueError(f"round {round_no} is not the next round ({len(state.rounds) + 1})")
    for rnd in state.rounds:
        if not rnd.is_finished:
            raise ValueError(f"round {rnd.number} has a board without a result")
    entries = _round_entries(state)
    for player in state.players:
        bye = state.requested_byes.get((player.id, round_no))
        if not player.plays_in(round_no):
            entries[player.id].append(_absent())
        elif bye is not None:
            entries[player.id].append(_Entry(0, "-", "H" if bye else "Z", bye))
    lines = _lines(state, ranking, entries)
    lines += [f"XXR {state.rounds_total}", "XXC white1"]
    if state.setup.bye_points != 1.0:
        value = _points(state.setup.bye_points)
        lines += [f"XXS PAB={value}", f"BBU {value}"]
    return "\n".join(lines) + "\n"


def parse_pairings(text: str) -> list[tuple[int, int]]:
    """The pairs of the engines' output: a count, then ``white black`` per line, black 0
    for the pairing-allocated bye.

    Raises ValueError naming the fault for anything else: a missing or wrong count, a
    line that is not two numbers, a player paired with himself or twice.
    """
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        raise ValueError("the pairing engine's output is empty")
    try:
        count = int(lines[0])
    except ValueError:
        raise ValueError(f"the pairing count is not a number: {lines[0]!r}") from None
    if count != len(lines) - 1:
        raise ValueError(f"the engine announced {count} pairs and gave {len(lines) - 1}")
    pairs: list[tuple[int, int]] = []
    seen: set[int] = set()
    for line in lines[1:]:
        parts = line.split()
        if len(parts) != 2 or not all(part.isdigit() for part in parts):
            raise ValueError(f"a pairing line is not two numbers: {line!r}")
        white, black = int(parts[0]), int(parts[1])
        if white == 0 or white == black:
            raise ValueError(f"an impossible pairing: {line!r}")
        for number in (white, black):
            if number and number in seen:
                raise ValueError(f"player {number} is paired twice")
            seen.add(number)
        pairs.append((white, black))
    if sum(1 for _, black in pairs if black == 0) > 1:
        raise ValueError("more than one pairing-allocated bye")
    return pairs
