"""DGT LiveChess Cloud as a relay source: its round JSON turned into a round PGN.

LiveChess Cloud publishes a round as one ``index.json`` (the pairings) and one
``game-<n>.json`` per board next to it (``n`` is the pairing's position in the index,
from 1). The formats, as lichess reads them (lila ``modules/relay/src/main/DgtJson.scala``):

- ``index.json``: ``{"date": "2024-05-01" | null, "pairings": [{"white": player | null,
  "black": player | null, "result": "1-0" | "0-1" | "1/2-1/2" | "*" | null, ...}, ...]}``
  with ``player`` = ``{"fname", "mname", "lname", "title": str | null, "fideid": int | null}``;
- ``game-<n>.json``: ``{"moves": ["e4 5400+12", "e5 5390", "Nf3 +8", "d6", ...],
  "result": str | null, "clock": {"white": s, "black": s, "time": ms} | null,
  "chess960": 0..959 | null}``: a move is its SAN, then optionally the mover's remaining time
  in whole seconds, then optionally ``+`` and the seconds it took;
- when ``clock`` is given, its ``white``/``black`` replace the remaining time of the last
  move of that colour (lila's rule: DGT's per-move times lag the clock there);
  ``chess960`` 518 is the standard position.

:func:`round_pgn` writes the round as the PGN the relay pipeline
(:mod:`engine.rules.relay`) reads: one game per board with ``[Board "n"]`` and
``[Round "r.n"]`` (so boards match by number, as in :mod:`engine.tournament.relay`), the
players as ``White``/``Black`` (``"Last, First Middle"``; lichess joins
``fname mname lname`` with spaces, and names match either way), ``WhiteTitle``,
``WhiteFideId`` and their black twins, ``Date``, ``Result`` (the game file's decided
result, else the index's), and a ``{[%clk h:mm:ss]}`` after every move that has a time.

Errors. :func:`parse_index` and :func:`parse_game` raise :class:`LiveChessError` (a
``ValueError``) for any document they cannot read (not JSON, too large, too deeply nested,
a required field missing, a field of the wrong type, too many boards or moves) and never
anything else. Inside a readable game file, a move that is not ``SAN[ seconds][+seconds]``
ends the reading there: the game keeps the moves before it and :attr:`LiveGame.error` says
why. In the round PGN, such a game ends with a comment and no termination marker, so the
relay applies the moves before the fault, takes nothing back and applies no result; a
board whose game file could not be read at all is left out of the PGN (its stored game is
left as it is). Both are listed in :attr:`RoundPgn.errors` for the operator. A result that
is not one of the PGN results is taken as no result (``*``).

Pure: no I/O, no clock.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import chess

from engine.rules.moves import is_move_text
from engine.rules.wire import Result

# A file larger than this is refused unread (a round of 1000 boards is ~300 KB, a game of
# 600 plies ~10 KB).
MAX_FILE_BYTES = 1024 * 1024
MAX_BOARDS = 1000
# The longest recorded over-the-board games are under 600 plies.
MAX_PLIES = 2000
# Remaining times beyond this many digits (about 115 days) are taken as no time.
_MAX_CLOCK_DIGITS = 7
_MAX_NAME = 100
_STANDARD_960 = 518

_TIME = re.compile(r"(\d*)(?:\+(\d*))?")
_TITLE = re.compile(r"[A-Za-z]{1,5}")
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_DASHES = str.maketrans({"\u2013": "-", "\u2014": "-"})
_RESULTS: dict[str, Result] = {
    "1-0": "1-0",
    "0-1": "0-1",
    "1/2-1/2": "1/2-1/2",
    "½-½": "1/2-1/2",
    "*": "*",
}
# Characters that cannot stand in a PGN tag value on one line: controls, surrogates,
# line and paragraph separators.
_UNSAFE = frozenset({"Cc", "Cs", "Zl", "Zp"})


class LiveChessError(ValueError):
    """A LiveChess document that cannot be read; the message says what and where."""


@dataclass(frozen=True, slots=True)
class LivePlayer:
    """One side of a pairing: the name as PGN writes it, title and FIDE id if given."""

    name: str
    title: str | None = None
    fide_id: int | None = None


@dataclass(frozen=True, slots=True)
class LivePairing:
    """Board ``board`` (from 1) of the index: its players (None when absent) and result."""

    board: int
    white: LivePlayer | None
    black: LivePlayer | None
    result: Result = "*"


@dataclass(frozen=True, slots=True)
class LiveRound:
    """A parsed ``index.json``: the round's date (``YYYY.MM.DD``) and its pairings."""

    date: str | None
    pairings: tuple[LivePairing, ...]


@dataclass(frozen=True, slots=True)
class LiveMove:
    """One move of a game file: SAN as written, the mover's remaining and spent seconds."""

    san: str
    clock_s: int | None = None
    spent_s: int | None = None


@dataclass(frozen=True, slots=True)
class LiveGame:
    """A parsed ``game-<n>.json``.

    ``moves`` carry their remaining time with the ``clock`` object already applied.
    ``error`` is set when reading stopped at a move that could not be read: ``moves`` are
    the ones before it. ``fen`` is the start of a Chess960 game (None for the standard one).
    """

    moves: tuple[LiveMove, ...]
    result: Result = "*"
    fen: str | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class RoundPgn:
    """A round as PGN text, with the boards that are left out or cut short, and why."""

    text: str
    errors: dict[int, str] = field(default_factory=dict)


def parse_index(raw: bytes | str) -> LiveRound:
    """Read an ``index.json``.

    Raises LiveChessError when it is not a JSON object with a ``pairings`` list of
    objects, when a field has the wrong type, or beyond :data:`MAX_BOARDS` pairings.
    """
    doc = _object(_load(raw, "index.json"), "index.json")
    pairings = doc.get("pairings")
    if not isinstance(pairings, list):
        raise LiveChessError("index.json: 'pairings' is missing or not a list")
    if len(pairings) > MAX_BOARDS:
        raise LiveChessError(f"index.json: {len(pairings)} pairings (at most {MAX_BOARDS})")
    date = _optional(doc, "date", str, "index.json")
    boards = []
    for i, item in enumerate(pairings):
        where = f"index.json: pairing {i + 1}"
        pairing = _object(item, where)
        boards.append(
            LivePairing(
                i + 1,
                _player(pairing.get("white"), f"{where} white"),
                _player(pairing.get("black"), f"{where} black"),
                _result(_optional(pairing, "result", str, where)),
            )
        )
    return LiveRound(_date(date), tuple(boards))


def parse_game(raw: bytes | str) -> LiveGame:
    """Read a ``game-<n>.json``.

    Raises LiveChessError when it is not a JSON object with a ``moves`` list, when
    ``result``, ``clock`` or ``chess960`` has the wrong type, or beyond :data:`MAX_PLIES`
    moves. A move that cannot be read is not raised: the game stops before it (``error``).
    """
    where = "game file"
    doc = _object(_load(raw, where), where)
    items = doc.get("moves")
    if not isinstance(items, list):
        raise LiveChessError(f"{where}: 'moves' is missing or not a list")
    if len(items) > MAX_PLIES:
        raise LiveChessError(f"{where}: {len(items)} moves (at most {MAX_PLIES})")
    result = _result(_optional(doc, "result", str, where))
    clock = _optional(doc, "clock", dict, where)
    position = _optional(doc, "chess960", int, where)
    fen = None
    if position is not None and position != _STANDARD_960:
        if not 0 <= position <= 959:
            raise LiveChessError(f"{where}: chess960 position {position} is not 0 to 959")
        fen = chess.Board.from_chess960_pos(position).fen()
    moves: list[LiveMove] = []
    error = None
    for item in items:
        move = _move(item) if isinstance(item, str) else None
        if move is None:
            shown = item[:20] if isinstance(item, str) else type(item).__name__
            error = f"move {len(moves) + 1} ({shown!r}) is not a SAN move"
            break
        moves.append(move)
    if clock is not None and error is None:
        moves = _with_clock(moves, clock, where)
    return LiveGame(tuple(moves), result, fen, error)


def game_pgn(round_no: int, pairing: LivePairing, game: LiveGame, date: str | None = None) -> str:
    """One board as a PGN game (tags, movetext, a blank line after it).

    The game's result is its file's when decided, else the index's. A game with an
    ``error`` ends with a comment and no termination marker (read as cut short).
    """
    result: Result = game.result if game.result != "*" else pairing.result
    sides = (("White", pairing.white), ("Black", pairing.black))
    tags = [(side, player.name) for side, player in sides if player is not None and player.name]
    tags += [(f"{s}Title", p.title) for s, p in sides if p is not None and p.title is not None]
    tags += [(f"{s}FideId", str(p.fide_id)) for s, p in sides if p is not None and p.fide_id]
    tags += [("Round", f"{round_no}.{pairing.board}"), ("Board", str(pairing.board))]
    if date is not None:
        tags.append(("Date", date))
    if game.fen is not None:
        tags += [("Variant", "Chess960"), ("SetUp", "1"), ("FEN", game.fen)]
    if game.error is None:
        tags.append(("Result", result))
    header = "".join(f'[{name} "{_escape(value)}"]\n' for name, value in tags)
    words = []
    for ply, move in enumerate(game.moves):
        number = ply // 2 + 1
        words.append(f"{number}." if ply % 2 == 0 else f"{number}...")
        words.append(move.san)
        if move.clock_s is not None:
            words.append(f"{{[%clk {_clock_text(move.clock_s)}]}}")
    if game.error is None:
        words.append(result)
    else:
        words.append(f"{{LiveChess: reading stopped after ply {len(game.moves)}}}")
    return f"{header}\n{' '.join(words)}\n\n"


def round_pgn(round_no: int, index: LiveRound, games: Mapping[int, LiveGame | str]) -> RoundPgn:
    """The round as one PGN text, boards in index order.

    ``games`` maps a board number to its parsed game file, or to the reason it could not
    be had (an HTTP error, a :class:`LiveChessError` message). A board with a reason, or
    missing from ``games``, is left out of the text and listed in ``errors``; so is a
    game cut short by an unreadable move (that one is in the text, cut).
    """
    parts = []
    errors: dict[int, str] = {}
    for pairing in index.pairings:
        game = games.get(pairing.board)
        if game is None:
            errors[pairing.board] = f"game-{pairing.board}.json was not read"
        elif isinstance(game, str):
            errors[pairing.board] = game
        else:
            parts.append(game_pgn(round_no, pairing, game, index.date))
            if game.error is not None:
                errors[pairing.board] = f"game-{pairing.board}.json: {game.error}"
    return RoundPgn("".join(parts), errors)


def _load(raw: bytes | str, where: str) -> Any:
    if not isinstance(raw, bytes | str):
        raise LiveChessError(f"{where}: expected bytes or text, got {type(raw).__name__}")
    if len(raw) > MAX_FILE_BYTES:
        raise LiveChessError(f"{where}: larger than {MAX_FILE_BYTES} bytes")
    try:
        return json.loads(raw)
    except RecursionError:
        raise LiveChessError(f"{where}: nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, int digit limits
        raise LiveChessError(f"{where}: not JSON ({str(exc)[:200]})") from None


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise LiveChessError(f"{where}: expected an object, got {_kind(value)}")
    return value


def _optional(doc: dict[str, Any], key: str, kind: type, where: str) -> Any:
    """``doc[key]`` when it is a ``kind``, None when absent or null; else raises."""
    value = doc.get(key)
    if value is None:
        return None
    # bool is an int to Python, never to JSON.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        wanted = {dict: "an object", str: "a string", int: "an integer"}.get(kind, kind.__name__)
        raise LiveChessError(f"{where}: {key!r} should be {wanted}, got {_kind(value)}")
    return value


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), "a number")


def _player(value: Any, where: str) -> LivePlayer | None:
    if value is None:
        return None
    doc = _object(value, where)
    first, middle, last = (
        _clean(_optional(doc, k, str, where)) for k in ("fname", "mname", "lname")
    )
    given = " ".join(part for part in (first, middle) if part)
    name = f"{last}, {given}" if last and given else last or given
    title = _clean(_optional(doc, "title", str, where)) or None
    fide = doc.get("fideid")
    fide_id: int | None
    if fide is None:
        fide_id = None
    elif isinstance(fide, int) and not isinstance(fide, bool) and 0 <= fide < 10**10:
        fide_id = fide or None
    elif isinstance(fide, str) and fide.strip().isdecimal() and len(fide.strip()) <= 10:
        fide_id = int(fide.strip()) or None
    elif isinstance(fide, str) and not fide.strip():
        fide_id = None
    else:
        raise LiveChessError(f"{where}: 'fideid' should be a FIDE id, got {_kind(fide)}")
    if not name and title is None and fide_id is None:
        return None
    if title is not None and _TITLE.fullmatch(title) is None:
        title = None
    return LivePlayer(name, title, fide_id)


def _clean(text: str | None) -> str:
    """``text`` fit for a one-line tag value: no control characters, spaces collapsed."""
    if not text:
        return ""
    kept = "".join(c for c in text if unicodedata.category(c) not in _UNSAFE)
    return " ".join(kept.split())[:_MAX_NAME].strip()


def _result(text: str | None) -> Result:
    if text is None:
        return "*"
    return _RESULTS.get(text.strip().translate(_DASHES), "*")


def _date(text: str | None) -> str | None:
    match = _DATE.fullmatch(text.strip()) if text else None
    return None if match is None else ".".join(match.groups())


def _move(text: str) -> LiveMove | None:
    """``"Nf3 5400+12"`` as a move; None when its SAN is not one.

    As lila does, a time that is not digits is no time, and words after it are ignored.
    """
    parts = text.split(maxsplit=2)
    if not parts or not is_move_text(parts[0]):
        return None
    clock_s = spent_s = None
    times = _TIME.fullmatch(parts[1]) if len(parts) > 1 else None
    if times is not None:
        clock_s, spent_s = (_seconds(t) for t in times.groups())
    return LiveMove(parts[0], clock_s, spent_s)


def _seconds(digits: str | None) -> int | None:
    if not digits or len(digits) > _MAX_CLOCK_DIGITS:
        return None
    return int(digits)


def _with_clock(moves: list[LiveMove], clock: dict[str, Any], where: str) -> list[LiveMove]:
    """The last move of each colour takes its remaining time from the ``clock`` object."""
    times = []
    for side in ("white", "black"):
        value = _optional(clock, side, int, f"{where} clock")
        times.append(value if value is not None and 0 <= value < 10**_MAX_CLOCK_DIGITS else None)
    out = list(moves)
    for i in range(max(0, len(out) - 2), len(out)):
        seconds = times[i % 2]
        if seconds is not None:
            out[i] = LiveMove(out[i].san, seconds, out[i].spent_s)
    return out


def _clock_text(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02}:{rest % 60:02}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')
