"""The over-the-board relay: a pushed multi-game PGN, read cheaply, and the events it implies.

Electronic boards (DGT LiveChess and the like) publish the whole round as one PGN, again
and again, every second or so; almost every game in it is unchanged since the last push.
The work is therefore split in three steps of rising cost, so that a caller pays for a
game only when its text changed:

1. :func:`split_games` cuts the text into games without reading a single move: one regular
   expression finds the tag lines, consecutive tag lines form a header, and whatever lies
   between two headers is the first one's movetext. Each game gets a :attr:`PushedGame.digest`
   of its text; the caller keeps the digest of every board and skips a game whose digest did
   not change (pushing the same PGN twice then costs one pass of the regular expression and
   one hash per game).
2. :func:`read_moves` tokenises the movetext of a changed game into SAN words with their
   ``[%clk]`` times, without a board. It is a hand-written tokenizer (one regular expression,
   modelled on python-chess's ``MOVETEXT_REGEX``) rather than ``chess.pgn.read_game``:
   python-chess parses and plays every SAN as it reads (``parse_san`` is the expensive part,
   tens of microseconds a move), while most moves of a changed game are already stored and
   only need comparing as text. It skips comments ``{...}`` and ``; ...``, NAGs ``$n``,
   ``!?`` suffixes, move numbers ``12.``/``12...``, variations ``( ... )`` (nested) and
   ``%`` escape lines; it reads ``[%clk h:mm:ss]``/``[%clk h:mm:ss.sss]`` from the comments
   after a mainline move and ignores ``[%emt]`` and every other annotation.
3. :func:`relay_events` compares the pushed moves with the stored game: stored moves whose
   SAN matches textually (check marks, ``!?`` and ``0-0`` spellings aside) are taken as they
   are; only the first differing move is parsed against a board to tell a spelling
   difference (``Nbd2`` for ``Nd2``) from a real correction. It returns the events to append,
   built with :mod:`engine.rules.commands` so that their ``seq`` chain.

The rules of :func:`relay_events`, the board being the truth:

- a relay game starts with its first move (``start`` then the moves);
- only moves beyond the stored ones are added, each with its ``[%clk]`` as ``clock_ms``
  (the mover's time after the move); a move without ``[%clk]`` gets the time computed from
  ``now_ms``, like any relayed move without a clock;
- when the pushed game differs from the stored one at some ply (a different move, or fewer
  moves: a move taken back on the board), the game is taken back to the common prefix
  (:func:`~engine.rules.commands.take_back`) and continues as pushed;
- a ``Result`` tag (else the movetext's termination marker) that the moves do not already
  decide ends the game with termination ``arbiter``; a changed result is decided again
  (:func:`~engine.rules.commands.decide`); a result withdrawn back to ``*`` reopens the game
  (a takeback at the current ply); a result that the position decides by rule (checkmate,
  stalemate, dead position, 75 moves, fivefold) stands whatever the tag says;
- a game ended by ``forfeit`` is the arbiter's decision and the relay leaves it alone;
- stored moves keep their clocks: a push that changes only the ``[%clk]`` of a stored move
  changes nothing (rewriting history for a clock would take back and replay the game);
- an unreadable or illegal move is an error of that game: the moves before it are applied,
  nothing after it is, and no move is taken back because the pushed game ends early;
  likewise for a game without termination marker (cut short: its last word, which may be a
  partial SAN, is not trusted) and for an unterminated comment or variation. The result is
  only applied from a game read completely.

Pushing the same game again yields no events. Everything here is pure: ``now_ms`` is passed
in; parsing may run in a worker thread.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

import chess

from engine.rules import commands
from engine.rules.errors import GameRefusal, IllegalMove, InvalidInput
from engine.rules.game import GameState, evolve_all
from engine.rules.moves import is_move_text, parse_move
from engine.rules.wire import GameEvent, Result, Termination

# A tag line ``[Name "value"]``, alone on its line. The text is searched with a leading
# newline so that the pattern starts with a literal (the regex engine then scans for it).
_TAG_LINE = re.compile(
    r'\n[ \t]*\[([A-Za-z0-9][A-Za-z0-9_+#=:-]*)[ \t]+"((?:[^"\\\n]|\\.)*)"[ \t]*\][ \t]*(?=\n|$)'
)
# C0 control characters other than tab, line feed, form feed and carriage return.
_CONTROL = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f]")
_TOKEN = re.compile(
    r"""
    (\{[^}]*\}?)              # 1 brace comment (unterminated when it lacks its brace)
    |(;[^\n]*)                # 2 rest-of-line comment
    |(?:(?<=\n)|^)(%[^\n]*)   # 3 escape line
    |(\$\d+)                  # 4 NAG
    |(\()                     # 5 variation start
    |(\))                     # 6 variation end
    |(1-0|0-1|1/2-1/2|½-½|\*)(?![^\s{}();$])  # 7 termination marker
    |(\d+\s*\.+)              # 8 move number
    |([^\s{}();$]+)           # 9 a word: SAN, with suffixes, or garbage
    """,
    re.VERBOSE,
)
# The last move of a DGT board game when its kings are put on the centre squares.
_DGT_KING = re.compile(r"^K[a-h]?[1-8]?x?[de][45][+#]?$")
_CLOCK = re.compile(r"\[%clk\s+(\d+):(\d{1,2}):(\d{1,2})(?:\.(\d*))?\s*\]")
_RESULTS: dict[str, Result] = {
    "1-0": "1-0",
    "0-1": "0-1",
    "1/2-1/2": "1/2-1/2",
    "½-½": "1/2-1/2",
    "*": "*",
}
# Terminations implied by the position itself: no tag can override them.
_BY_RULE: frozenset[Termination] = frozenset(
    {"checkmate", "stalemate", "insufficient_material", "seventyfive_moves", "fivefold_repetition"}
)
_ANNOTATION = "!?+#"


@dataclass(frozen=True, slots=True)
class PushedGame:
    """One game of a push, not yet read: its tags, its raw movetext, a digest of its text.

    ``index`` is its position in the push (0 first). ``digest`` is a hex BLAKE2b of the
    game's text (tags and movetext, line endings normalised): equal digests mean equal
    games, across pushes and processes.
    """

    index: int
    tags: dict[str, str]
    movetext: str
    digest: str

    @property
    def board(self) -> int | None:
        """The ``[Board]`` tag as a number, if it is one."""
        return _positive_int(self.tags.get("Board", ""))

    @property
    def round_board(self) -> tuple[int | None, int | None]:
        """``[Round "3.12"]`` as ``(3, 12)``; a part that is not a number is None."""
        value = self.tags.get("Round", "")
        head, dot, tail = value.partition(".")
        return _positive_int(head), (_positive_int(tail) if dot else None)

    @property
    def white(self) -> str:
        """The ``[White]`` tag, or an empty string."""
        return self.tags.get("White", "")

    @property
    def black(self) -> str:
        """The ``[Black]`` tag, or an empty string."""
        return self.tags.get("Black", "")


@dataclass(frozen=True, slots=True)
class PushedMoves:
    """The mainline of a pushed game as text: what :func:`read_moves` found.

    ``sans[i]`` is the SAN of half-move ``i + 1`` as written (suffixes included) and
    ``clocks_ms[i]`` its ``[%clk]`` in ms, or None. ``result`` is the ``Result`` tag when it
    is a result, else the termination marker, else ``*``. ``fen`` is the ``[FEN]`` tag of a
    game from a set-up position. ``error`` says why reading stopped early (the moves
    before it are good); ``is_complete`` is true when the whole game was read and it ends
    with a termination marker: only then may a shorter game take moves back, and only then
    is the result applied.
    """

    sans: tuple[str, ...]
    clocks_ms: tuple[int | None, ...]
    result: Result = "*"
    fen: str | None = None
    error: str | None = None
    is_complete: bool = True


@dataclass(frozen=True, slots=True)
class RelayOutcome:
    """What a push did to one game: the events to append, in order, and the report.

    ``state`` is the game with ``events`` folded in (what :func:`evolve_all` gives).
    ``moves_added`` counts move events; ``corrected`` is true when stored moves were taken
    back or the result was changed or withdrawn; ``result`` is the game's result after the
    events; ``error`` names what could not be applied (None when all was).
    """

    state: GameState
    events: list[GameEvent] = field(default_factory=list)
    moves_added: int = 0
    corrected: bool = False
    result: Result = "*"
    error: str | None = None


def split_games(text: str) -> list[PushedGame]:
    """Cut a pushed PGN into games without reading their moves.

    A game is a header (consecutive tag lines) and the text up to the next header; a tag
    line inside an open brace comment belongs to the comment. Text before the first header
    that is not blank is a game without tags (it matches no board, but it is reported).
    Tag values are unescaped (``\\"`` and ``\\\\``); a repeated tag keeps its first value.
    Never raises: any text splits into zero or more games.
    """
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = "\n" + text
    # Header blocks as [start, end) offsets with their tags.
    blocks: list[tuple[int, int, dict[str, str]]] = []
    for match in _TAG_LINE.finditer(text):
        name, value = match.group(1), match.group(2)
        if "\\" in value:
            value = value.replace('\\"', '"').replace("\\\\", "\\")
        if blocks and _is_blank(text, blocks[-1][1], match.start()):
            start, _, tags = blocks[-1]
            blocks[-1] = (start, match.end(), tags)
            tags.setdefault(name, value)
            continue
        if blocks and _opens_comment(text, blocks[-1][1], match.start()):
            continue
        blocks.append((match.start(), match.end(), {name: value}))
    games: list[PushedGame] = []
    if not blocks or not _is_blank(text, 0, blocks[0][0]):
        end = blocks[0][0] if blocks else len(text)
        games.append(_pushed(len(games), {}, text, 0, end, 0))
    for i, (start, header_end, tags) in enumerate(blocks):
        end = blocks[i + 1][0] if i + 1 < len(blocks) else len(text)
        games.append(_pushed(len(games), tags, text, start, end, header_end))
    return games


def pgn_problem(text: str) -> str | None:
    """Why ``text`` fetched from a relay source is not PGN at all, or None when it may be.

    Binary content (control characters other than whitespace) and text without a single
    tag pair are refused whole: a source that serves them is broken (an error page, a
    wrong URL, random bytes), which the poller reports and backs off from instead of
    reporting each scrap as a game. A PGN text with bad games is not refused here; those
    games are reported one by one.
    """
    if _CONTROL.search(text) is not None:
        return "not PGN: binary content"
    if _TAG_LINE.search("\n" + text) is None:
        return 'not PGN: no tag pair such as [White "..."]'
    return None


def read_moves(game: PushedGame) -> PushedMoves:
    """The mainline moves of ``game`` as SAN text with clocks; no board is involved.

    Words are checked for the shape of a SAN (or UCI) move only; legality is
    :func:`relay_events`' business. Reading stops at the termination marker, at a word that
    is no move (``error`` names it and its ply), at an unterminated comment, and at the end
    of an open variation; never raises.
    """
    sans: list[str] = []
    clocks: list[int | None] = []
    marker: str | None = None
    error: str | None = None
    depth = 0
    last_is_word = False
    for match in _TOKEN.finditer(game.movetext):
        kind = match.lastindex
        token = match.group(kind or 0)
        last_is_word = False
        if kind == 1:
            if not token.endswith("}"):
                error = f"unterminated comment after ply {len(sans)}"
                break
            if depth == 0 and sans and "%clk" in token:
                clock = _CLOCK.search(token)
                if clock is not None:
                    clocks[-1] = _clock_ms(clock)
        elif kind == 5:
            depth += 1
        elif kind == 6:
            depth = max(0, depth - 1)
        elif kind == 7:
            if depth == 0:
                marker = token
                break
        elif kind == 9 and depth == 0:
            san = token.rstrip("!?")
            if not is_move_text(san):
                if match.end() < len(game.movetext):
                    error = f"unreadable move {token[:20]!r} at ply {len(sans) + 1}"
                break  # else the text ends inside this word: the game is cut short
            sans.append(san)
            clocks.append(None)
            last_is_word = True
    if error is None and depth > 0:
        error = f"unterminated variation after ply {len(sans)}"
    if error is None and marker is None:
        error = "no termination marker: the game looks cut short"
        if last_is_word:
            # The text ends inside a word: the last SAN may be partial ("O-O" of "O-O-O").
            sans.pop()
            clocks.pop()
    tag = game.tags.get("Result", "").strip()
    result = _RESULTS.get(tag) or _RESULTS.get(marker or "*", "*")
    fen = game.tags.get("FEN")
    _clocks_from_tags(game.tags, fen, clocks)
    return PushedMoves(tuple(sans), tuple(clocks), result, fen, error, error is None)


def _clocks_from_tags(tags: dict[str, str], fen: str | None, clocks: list[int | None]) -> None:
    """``WhiteClock`` / ``BlackClock`` tags (``h:mm:ss`` or seconds) give the last two
    moves their movers' clocks where the movetext has none, as lichess reads them."""
    white_first = fen is None or " b " not in fen
    for back in (1, 2):
        index = len(clocks) - back
        if index < 0 or clocks[index] is not None:
            continue
        white_moved = (index % 2 == 0) == white_first
        value = tags.get("WhiteClock" if white_moved else "BlackClock")
        if value is not None:
            clocks[index] = _tag_clock_ms(value)


def _tag_clock_ms(text: str) -> int | None:
    parts = text.strip().split(":")
    if not 1 <= len(parts) <= 3 or not all(p.isdigit() for p in parts):
        return None
    seconds = 0
    for part in parts:
        seconds = seconds * 60 + int(part)
    return seconds * 1000 if seconds < 100 * 3600 else None


def relay_events(state: GameState, pushed: PushedMoves, now_ms: int) -> RelayOutcome:
    """The events that make the stored relay game what the board shows (see the module).

    ``state`` is the game as stored; the events are to be appended in order (their ``seq``
    follow ``state.seq``) and folded with :func:`~engine.rules.game.evolve_all`, which the
    returned :attr:`RelayOutcome.state` already did. Never raises for bad input: a server
    game, another start position, an illegal move or a move after the end of the game is
    the outcome's ``error``, with the events that could be applied before it.
    """
    run = _Run(state, now_ms)
    if state.setup.mode != "relay":
        return run.outcome("not a relay game")
    if state.termination == "forfeit":
        return run.outcome("the board was decided by forfeit; the relay leaves it alone")
    if pushed.fen is not None and not _same_position(pushed.fen, state.setup.initial_fen):
        return run.outcome("the pushed game starts from another position")
    common, differs, error = _common_prefix(state, pushed.sans)
    if error is not None:
        return run.outcome(error if pushed.error is None else f"{error}; {pushed.error}")
    new = pushed.sans[common:]
    shorter = common < state.ply and pushed.is_complete
    if differs or shorter:
        run.apply(commands.take_back(state, common, now_ms), corrected=True)
    elif new and state.is_finished and state.termination not in _BY_RULE:
        # The board played on after a result it showed: the result was premature.
        run.apply(commands.take_back(state, state.ply, now_ms), corrected=True)
    if new and run.state.status == "created":
        run.apply(commands.start(run.state, now_ms))
    for i, san in enumerate(new, start=common):
        if run.state.is_finished:
            return run.outcome(f"{_move_name(state, i, san)}: the game is already over")
        try:
            events = commands.play(run.state, san, now_ms, clock_ms=pushed.clocks_ms[i])
        except GameRefusal as exc:
            if i == len(pushed.sans) - 1 and _DGT_KING.match(san):
                # Electronic boards emit an illegal king move to the centre when the
                # pieces are put back after a game (how the result is signalled): ignored.
                break
            return run.outcome(f"illegal move {_move_name(state, i, san)}: {exc.message}")
        run.apply(events, moves=1)
    if pushed.error is not None:
        return run.outcome(pushed.error)
    return run.outcome(_settle_result(run, pushed.result, now_ms))


class _Run:
    """The events of one :func:`relay_events` call, folded as they are decided."""

    def __init__(self, state: GameState, now_ms: int) -> None:
        self.state = state
        self.now_ms = now_ms
        self.events: list[GameEvent] = []
        self.moves_added = 0
        self.corrected = False

    def apply(self, events: list[GameEvent], *, moves: int = 0, corrected: bool = False) -> None:
        self.state = evolve_all(self.state, events, self.now_ms)
        self.events.extend(events)
        self.moves_added += moves
        self.corrected = self.corrected or (corrected and bool(events))

    def outcome(self, error: str | None) -> RelayOutcome:
        return RelayOutcome(
            self.state,
            self.events,
            self.moves_added,
            self.corrected,
            self.state.result,
            error,
        )


def _settle_result(run: _Run, result: Result, now_ms: int) -> str | None:
    """End, re-decide or reopen the game so its result is ``result``; an error or None."""
    state = run.state
    if state.termination in _BY_RULE:
        if result not in ("*", state.result):
            return f"the Result tag {result} contradicts the {state.termination} ({state.result})"
        return None
    if result == state.result:
        return None
    if result == "*":
        run.apply(commands.take_back(state, state.ply, now_ms), corrected=True)
    elif state.is_finished:
        run.apply(commands.decide(state, result, "arbiter", now_ms), corrected=True)
    else:
        run.apply(commands.adjudicate(state, result, now_ms))
    return None


def _common_prefix(state: GameState, sans: tuple[str, ...]) -> tuple[int, bool, str | None]:
    """How many pushed moves agree with the stored ones, whether one differs, and an error.

    Moves are compared as text first; a textual difference is settled on a board (built
    once, at the first difference). A pushed move that is illegal where a stored move
    stands is an error, not a correction: nothing is taken back for a garbled move.
    """
    stored = state.moves
    board: chess.Board | None = None
    for i in range(min(len(stored), len(sans))):
        if _plain(sans[i]) == _plain(stored[i].san):
            if board is not None:
                board.push(chess.Move.from_uci(stored[i].uci))
            continue
        if board is None:
            board = state.board_at(i)
        try:
            move = parse_move(board, sans[i])
        except (IllegalMove, InvalidInput) as exc:
            return i, False, f"illegal move {_move_name(state, i, sans[i])}: {exc.message}"
        if move.uci() != stored[i].uci:
            return i, True, None
        board.push(move)
    return min(len(stored), len(sans)), False, None


def _plain(san: str) -> str:
    """SAN without check marks or annotations, castling with letters."""
    return san.rstrip(_ANNOTATION).replace("0", "O")


def _move_name(state: GameState, index: int, san: str) -> str:
    """``12...Nf3 (ply 24)`` for half-move ``index + 1`` of the game."""
    start = chess.Board(state.setup.initial_fen)
    plies = index + (0 if start.turn == chess.WHITE else 1)
    number = start.fullmove_number + plies // 2
    dots = "." if plies % 2 == 0 else "..."
    return f"{number}{dots}{san} (ply {index + 1})"


def _same_position(fen: str, initial_fen: str) -> bool:
    try:
        return chess.Board(fen).fen() == chess.Board(initial_fen).fen()
    except ValueError:
        return False


def _clock_ms(match: re.Match[str]) -> int:
    hours, minutes, seconds, fraction = match.groups()
    ms = (int(hours) * 3600 + int(minutes) * 60 + int(seconds)) * 1000
    if fraction:
        ms += int((fraction + "00")[:3])
    return ms


def _positive_int(text: str) -> int | None:
    text = text.strip()
    if text.isdigit() and len(text) <= 6 and int(text) > 0:
        return int(text)
    return None


def _is_blank(text: str, start: int, end: int) -> bool:
    return start >= end or text[start:end].isspace()


def _opens_comment(text: str, start: int, end: int) -> bool:
    """Whether ``text[start:end]`` leaves a brace comment open (no nesting in PGN)."""
    opened = text.rfind("{", start, end)
    return opened >= 0 and text.find("}", opened, end) < 0


def _pushed(
    index: int, tags: dict[str, str], text: str, start: int, end: int, header_end: int
) -> PushedGame:
    body = text[start:end].strip()
    digest = hashlib.blake2b(body.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
    return PushedGame(index, tags, text[header_end:end].strip(), digest)
