"""`python -m engine`: the built-in search as a UCI engine on standard input and output.

This is the program's edge, the one place of the engine allowed I/O and a clock. The main
thread reads commands from standard input and answers at once (`isready` included, even while
searching); a search runs in one thread of its own, the same `iter_search` the analysis workers
run, with the clock and the stop request injected as its `should_stop`. The parsing, options,
time planning and formatting are the pure `engine.uci` package.

A game keeps its search memory (transposition table, move-ordering history, pawn table) from
one `go` to the next (`ucinewgame` or a new `Hash` clears it). When the clock cuts a depth
short after it has found a better move than the last complete depth, that move is played. The
moves of `position ... moves ...` go to the search, which scores a repetition of the game's
positions as a draw.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import chess

from engine.search.search import SearchInfo, SearchMemory, iter_search
from engine.search.transposition import TranspositionTable
from engine.uci.commands import (
    Command,
    Go,
    IsReady,
    PonderHit,
    Position,
    Quit,
    SetOption,
    Stop,
    Uci,
    UciError,
    UciNewGame,
    parse_command,
)
from engine.uci.options import Options, apply_option, option_lines
from engine.uci.output import format_bestmove, format_info, format_string, id_lines
from engine.uci.timing import plan_time

_MAX_DEPTH = 64


@dataclass(slots=True)
class _Deadlines:
    """Absolute clock readings (seconds) for one search; `ponderhit` moves them."""

    soft_s: float | None
    hard_s: float | None
    pondering: bool


class _Session:
    """The engine between two commands: options, position, search memory and the running
    search."""

    def __init__(self, write: Callable[[str], None], clock: Callable[[], float]) -> None:
        self.write = write
        self.clock = clock
        self.options = Options()
        self.position = Position(chess.STARTING_FEN, ())
        self.memory = SearchMemory(TranspositionTable(self.options.table_entries))
        self.thread: threading.Thread | None = None
        self.stop = threading.Event()
        self.wake = threading.Event()
        self.go = Go()
        self.started_s = 0.0
        self.deadlines = _Deadlines(None, None, False)

    def handle(self, command: Command) -> bool:
        """Carry out one command; False once the program should end."""
        if isinstance(command, IsReady):
            self.write("readyok")
        elif isinstance(command, Stop):
            self.stop.set()
            self.wake.set()
        elif isinstance(command, PonderHit):
            self._ponderhit()
        elif isinstance(command, Quit):
            self.finish()
            return False
        elif isinstance(command, Uci):
            for line in (*id_lines(), *option_lines(), "uciok"):
                self.write(line)
        else:
            # A bad value is refused before anything changes, the running search included.
            options = self.options
            if isinstance(command, SetOption):
                options = apply_option(options, command.name, command.value)
            elif isinstance(command, Go):
                self._check_searchmoves(command)
            # Everything else changes what a search uses: no search may be running meanwhile.
            self.finish()
            if isinstance(command, UciNewGame):
                self.memory = SearchMemory(TranspositionTable(self.options.table_entries))
            elif isinstance(command, SetOption):
                if options.hash_mb != self.options.hash_mb:
                    self.memory = SearchMemory(TranspositionTable(options.table_entries))
                self.options = options
            elif isinstance(command, Position):
                self.position = command
            else:
                self._start(command)
        return True

    def finish(self) -> None:
        """Stop any running search and wait until it has written its `bestmove`."""
        thread = self.thread
        if thread is not None:
            self.stop.set()
            self.wake.set()
            thread.join()
            self.thread = None

    def _check_searchmoves(self, go: Go) -> None:
        """Refuse a `go searchmoves` with a move that is not legal in the position."""
        if not go.searchmoves:
            return
        legal = {move.uci() for move in self.position.board().legal_moves}
        unknown = [uci for uci in go.searchmoves if uci not in legal]
        if unknown:
            raise UciError(f"go searchmoves: not legal here: {' '.join(unknown)}")

    def _start(self, go: Go) -> None:
        self.stop = threading.Event()
        self.wake = threading.Event()
        self.go = go
        self.started_s = self.clock()
        self.deadlines = self._deadlines(go, self.started_s)
        self.thread = threading.Thread(
            target=self._search,
            args=(go, self.position, self.memory, self.stop, self.wake, self.deadlines),
            name="gm-uci-search",
            daemon=True,
        )
        self.thread.start()

    def _deadlines(self, go: Go, now_s: float) -> _Deadlines:
        white_to_move = self.position.board().turn == chess.WHITE
        plan = plan_time(go, white_to_move, self.options.move_overhead_ms)
        return _Deadlines(
            None if plan.soft_ms is None else now_s + plan.soft_ms / 1000,
            None if plan.hard_ms is None else now_s + plan.hard_ms / 1000,
            go.ponder,
        )

    def _ponderhit(self) -> None:
        if self.thread is None or not self.deadlines.pondering:
            return
        # The opponent played the expected move: the clock runs for us from now on.
        fresh = self._deadlines(replace(self.go, ponder=False), self.clock())
        self.deadlines.soft_s = fresh.soft_s
        self.deadlines.hard_s = fresh.hard_s
        self.deadlines.pondering = False
        self.wake.set()

    def _search(
        self,
        go: Go,
        position: Position,
        memory: SearchMemory,
        stop: threading.Event,
        wake: threading.Event,
        deadlines: _Deadlines,
    ) -> None:
        clock = self.clock
        board = position.board()
        white_to_move = board.turn == chess.WHITE
        legal = [m for m in board.legal_moves if not go.searchmoves or m.uci() in go.searchmoves]
        timed = go.movetime_ms is None and not go.infinite and deadlines.hard_s is not None
        multipv = self.options.multipv
        lines = max(min(multipv, len(legal)), 1)
        sign = 1 if white_to_move else -1

        def should_stop() -> bool:
            hard_s = deadlines.hard_s
            return stop.is_set() or (hard_s is not None and clock() >= hard_s)

        last: SearchInfo | None = None
        try:
            for info in iter_search(
                position.fen,
                moves=position.moves,
                max_depth=go.depth or _MAX_DEPTH,
                max_nodes=go.nodes,
                should_stop=should_stop,
                memory=memory,
                partial=True,
                multipv=multipv,
                searchmoves=go.searchmoves,
            ):
                if info.multipv == 1:
                    last = info
                if not info.complete:
                    break  # A better move found by a depth cut short: played, not reported.
                elapsed_ms = int((clock() - self.started_s) * 1000)
                self.write(format_info(info, white_to_move, elapsed_ms, multipv > 1))
                if info.multipv < lines:
                    continue  # The depth's other lines come next.
                found = last.mate if last is not None and last.mate is not None else 0
                if go.mate is not None and 0 < found * sign <= go.mate:
                    break  # The mate asked for is found.
                soft_s = deadlines.soft_s
                if soft_s is not None and clock() >= soft_s:
                    break
                if timed and len(legal) == 1:
                    break  # One legal move: no time to spend on it.
        except Exception as exc:  # A GUI must get its bestmove whatever happens.
            self.write(format_string(f"error: search failed: {exc!r}"))
        # UCI: an infinite or pondering search gives its move only once told to.
        while not stop.is_set() and (go.infinite or deadlines.pondering):
            wake.wait()
            wake.clear()
        best: str | None = None
        ponder: str | None = None
        if last is not None:
            best, ponder = last.best, (last.pv[1] if len(last.pv) > 1 else None)
        elif legal:
            best = legal[0].uci()
        self.write(format_bestmove(best, ponder))


def _writer() -> Callable[[str], None]:
    lock = threading.Lock()
    stdout = sys.stdout

    def write(line: str) -> None:
        with lock:
            stdout.write(line + "\n")
            stdout.flush()

    return write


def main() -> None:
    """Speak UCI on standard input and output until `quit` or the end of input."""
    # The reader thread needs the GIL to see a `stop`; the search thread gives it up every
    # switch interval, 5 ms by default, which would be a good part of the 50 ms budget.
    sys.setswitchinterval(0.001)
    write = _writer()
    session = _Session(write, time.monotonic)
    while True:
        line = sys.stdin.readline()
        if not line:
            break
        try:
            command = parse_command(line)
            if command is not None and not session.handle(command):
                return
        except UciError as exc:
            write(format_string(f"error: {exc}"))
    session.finish()


if __name__ == "__main__":
    main()
