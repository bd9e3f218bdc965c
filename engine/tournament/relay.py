"""Which board of a round each game of a relay push is (the lichess broadcast model).

A pushed game is matched, in this order, by its ``[GameId]`` tag (the id of a board's
game, as Grandmaster's own PGN writes it), by its ``[Board]`` tag, by the board part of
``[Round "r.b"]`` (only when ``r`` is this round: a game of another round must not land on
a board of this one), and by its players' names. Names are compared as sets of words,
with case, accents and punctuation dropped, so ``"Carlsen, Magnus"``, ``"Magnus Carlsen"``
and ``"CARLSEN Magnus"`` are one player; a name given with initials (``"Carlsen, M."``)
or with words missing (``"Carlsen"``) matches when every word and initial fits and no
other board of the round fits as well.
Names must match in colour: a game whose names fit a board with the colours reversed is
reported as such, not relayed. When two games of a push match one board, the later one is
the error. Pure: no I/O.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, TypedDict

import chess

from engine.rules.relay import PushedGame, RelayOutcome, read_moves
from engine.rules.wire import Result
from engine.tournament.state import Entrant, Pairing, Round

MatchedBy = Literal["game", "board", "round", "names", "position"]

_WORD = re.compile(r"[^\W_]+")


@dataclass(frozen=True, slots=True)
class BoardMatch:
    """A pushed game and the board it is, or why it is none (``pairing`` None, ``error``)."""

    game: PushedGame
    pairing: Pairing | None
    matched_by: MatchedBy | None = None
    error: str | None = None


class RelayGameJSON(TypedDict):
    """One game's line in the answer to a relay push (``shared/API.md``)."""

    board: int | None
    game: str | None
    moves_added: int
    corrected: bool
    result: Result
    error: str | None


def match_boards(
    rnd: Round, players: Mapping[str, Entrant], pushed: Sequence[PushedGame]
) -> list[BoardMatch]:
    """Match each pushed game to a board of ``rnd``; one :class:`BoardMatch` per game, in order.

    ``players`` maps player ids to entrants (the names to match on). A game that fits no
    board, or a board already taken by an earlier game of the push, gets ``error``. In a
    broadcast round (whose boards were made from pushed games) a board number matches
    only with the board's players (FIDE ids when both sides have them, else names).
    """
    by_board = {p.board: p for p in rnd.pairings}
    names = _NameIndex(rnd, players)
    taken: dict[int, int] = {}
    matches: list[BoardMatch] = []
    for game in pushed:
        match = _match(rnd, by_board, names, game)
        if match.pairing is not None:
            board = match.pairing.board
            if board in taken:
                error = f"board {board} is already taken by game #{taken[board] + 1} of the push"
                match = BoardMatch(game, None, None, error)
            else:
                taken[board] = game.index
        matches.append(match)
    return matches


def match_by_position(
    pushed: Sequence[PushedGame], boards: Sequence[tuple[Pairing, str, Sequence[str]]]
) -> dict[int, Pairing]:
    """Pushed games (of a broadcast round) that no tag matched, matched to free boards by
    the position at their last shared move, as lichess does when a board's tags changed.

    ``boards`` are (pairing, start FEN, stored moves in UCI). Returns the board of each
    matched game by its push index; a board matches one game at most, games with no moves
    match nothing. Pure, but it replays moves: call it off the event loop.
    """
    found: dict[int, Pairing] = {}
    taken: set[int] = set()
    for game in pushed:
        sans = read_moves(game).sans
        for pairing, fen, ucis in boards:
            n = min(len(sans), len(ucis))
            if n == 0 or pairing.board in taken:
                continue
            if _position(fen, sans[:n], san=True) == _position(fen, ucis[:n], san=False):
                found[game.index] = pairing
                taken.add(pairing.board)
                break
    return found


def _position(fen: str, moves: Sequence[str], *, san: bool) -> str | None:
    board = chess.Board(fen)
    try:
        for move in moves:
            if san:
                board.push_san(move)
            else:
                board.push_uci(move)
    except ValueError:
        return None
    return board.epd()


def report(match: BoardMatch, outcome: RelayOutcome | None) -> RelayGameJSON:
    """The answer line of one pushed game; ``outcome`` None when the game was not relayed
    (no board, or its digest did not change: then nothing was added)."""
    pairing = match.pairing
    error = match.error if outcome is None else outcome.error
    return {
        "board": None if pairing is None else pairing.board,
        "game": None if pairing is None else pairing.game,
        "moves_added": 0 if outcome is None else outcome.moves_added,
        "corrected": False if outcome is None else outcome.corrected,
        "result": _result(pairing, outcome),
        "error": error,
    }


def name_key(name: str) -> tuple[str, ...]:
    """A name as a sorted tuple of lower-case ASCII words: ``"Carlsen, Magnus"`` and
    ``"Magnus Carlsen"`` give ``("carlsen", "magnus")``."""
    folded = unicodedata.normalize("NFKD", name.casefold())
    plain = "".join(c for c in folded if not unicodedata.combining(c))
    return tuple(sorted(_WORD.findall(plain.replace("ß", "ss").replace("ø", "o"))))


def _result(pairing: Pairing | None, outcome: RelayOutcome | None) -> Result:
    if outcome is not None:
        return outcome.result
    if pairing is None or pairing.result not in ("1-0", "0-1", "1/2-1/2"):
        return "*"
    return pairing.result


def _match(
    rnd: Round, by_board: Mapping[int, Pairing], names: _NameIndex, game: PushedGame
) -> BoardMatch:
    game_id = game.tags.get("GameId")
    if game_id:
        for same in by_board.values():
            if same.game == game_id:
                return BoardMatch(game, same, "game")
    board = game.board
    round_no, round_board = game.round_board
    if rnd.is_broadcast:
        number = board if board is not None else round_board if round_no == rnd.number else None
        seated = by_board.get(number) if number is not None else None
        if seated is not None and names.plays(seated, game):
            return BoardMatch(game, seated, "board" if board is not None else "round")
        return names.match(game)
    if board is not None:
        if board in by_board:
            return BoardMatch(game, by_board[board], "board")
        return BoardMatch(game, None, None, f"no board {board} in round {rnd.number}")
    if round_no == rnd.number and round_board is not None:
        if round_board in by_board:
            return BoardMatch(game, by_board[round_board], "round")
        return BoardMatch(game, None, None, f"no board {round_board} in round {rnd.number}")
    return names.match(game)


class _NameIndex:
    """The boards of a round by their players' name keys (built once per push)."""

    def __init__(self, rnd: Round, players: Mapping[str, Entrant]) -> None:
        self.keys: list[tuple[Pairing, tuple[str, ...], tuple[str, ...]]] = []
        self.players = players
        for pairing in rnd.pairings:
            white = players.get(pairing.white)
            black = players.get(pairing.black)
            if white is not None and black is not None:
                self.keys.append((pairing, name_key(white.name), name_key(black.name)))

    def plays(self, pairing: Pairing, game: PushedGame) -> bool:
        """Whether the game's players are the board's, colours included: by FIDE id where
        both sides of a comparison have one, else by name."""
        for player_id, colour in ((pairing.white, "White"), (pairing.black, "Black")):
            entrant = self.players.get(player_id)
            if entrant is None:
                return False
            fide = game.tags.get(f"{colour}FideId", "").strip()
            if entrant.fide_id is not None and fide.isdigit():
                if int(fide) != entrant.fide_id:
                    return False
                continue
            pushed = name_key(game.tags.get(colour, ""))
            if not pushed or not _fits(pushed, name_key(entrant.name), exact=False):
                return False
        return True

    def match(self, game: PushedGame) -> BoardMatch:
        white, black = name_key(game.white), name_key(game.black)
        if not white or not black:
            return BoardMatch(game, None, None, "no board matches: no [Board], [Round] or names")
        found = self._find(white, black)
        if found is not None:
            return BoardMatch(game, found, "names")
        if self._find(black, white) is not None:
            error = f"no board matches {game.white} - {game.black}: the colours are reversed"
            return BoardMatch(game, None, None, error)
        return BoardMatch(game, None, None, f"no board matches {game.white} - {game.black}")

    def _find(self, white: tuple[str, ...], black: tuple[str, ...]) -> Pairing | None:
        for exact in (True, False):
            fits = [
                pairing
                for pairing, w, b in self.keys
                if _fits(white, w, exact=exact) and _fits(black, b, exact=exact)
            ]
            if len(fits) == 1:
                return fits[0]
            if fits:
                return None
        return None


def _fits(pushed: tuple[str, ...], entrant: tuple[str, ...], *, exact: bool) -> bool:
    """Whether a pushed name key is the entrant's: equal words, or (loosely) every full
    word of the pushed name in the entrant's and every one-letter word an initial of one
    of the entrant's remaining words."""
    if exact:
        return pushed == entrant
    rest = list(entrant)
    initials = []
    for word in pushed:
        if len(word) == 1:
            initials.append(word)
        elif word in rest:
            rest.remove(word)
        else:
            return False
    if len(initials) == len(pushed):
        return False
    for letter in initials:
        hit = next((w for w in rest if w.startswith(letter)), None)
        if hit is None:
            return False
        rest.remove(hit)
    return True
