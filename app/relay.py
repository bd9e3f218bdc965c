"""Over-the-board relays: a round's PGN pushed by the operator or polled from a URL.

A push is read in three steps of rising cost (see :mod:`engine.rules.relay`): the text is
cut into games and digested off the loop; a game whose digest is the one last applied
to its board is skipped; only changed games are read move by move, each applied under
its game's lock as one command, so a push is as durable as any move. Results of a push
come back in the pushed order, one per game, errors included.

A tournament with a ``relay_url`` has that URL fetched every ``relay_poll_s`` while a
round is live, with conditional requests (``ETag``/``Last-Modified``), backing off
exponentially on errors; the last status and error are shown to the operator. A broken
source is bounded (:mod:`app.relay_fetch`: a deadline per poll, a size cap enforced while
the body streams, garbage refused as "not PGN"), logged once when its failures begin and
once when it works again, and polled by a task of its own, so it never delays another.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field, replace
from typing import Any

import httpx

from app.broadcast_rounds import BroadcastRounds, Seat, seats_of
from app.errors import not_found
from app.games import GameService
from app.livechess import (
    LiveChessCache,
    LiveChessFetchError,
    fetch_round_pgn,
    is_livechess_url,
    round_index_url,
)
from app.relay_fetch import SourceError, fetch_bounded, pin_public_address, read_pgn
from app.settings import Settings
from app.tournaments import LiveTournament, TournamentService
from engine.rules.errors import GameRefusal
from engine.rules.game import GameState
from engine.rules.livechess import LiveChessError
from engine.rules.relay import (
    PushedGame,
    PushedMoves,
    RelayOutcome,
    read_moves,
    relay_events,
    split_games,
)
from engine.rules.wire import GameEvent
from engine.tournament.relay import (
    BoardMatch,
    RelayGameJSON,
    match_boards,
    match_by_position,
    report,
)
from engine.tournament.state import MAX_PUSHED_GAMES, Entrant, Round

log = logging.getLogger(__name__)


def _broadcast_error(match: BoardMatch, seat: Seat | None, refused: str | None) -> BoardMatch:
    """Say why a pushed game of a broadcast round got no board (games past the limit of
    a push are refused, as lichess does)."""
    if match.game.index >= MAX_PUSHED_GAMES:
        error = f"too many games: at most {MAX_PUSHED_GAMES} per push"
    elif match.pairing is not None:
        return match
    elif refused is not None:
        error = refused
    elif seat is None:
        error = "no players: a game needs [White] and [Black]"
    else:
        return match
    return replace(match, pairing=None, error=error)


def _matched(rnd: Round, players: dict[str, Entrant], text: str | bytes) -> list[BoardMatch]:
    """The pushed games of ``text`` matched to the boards of ``rnd`` (blocking: a thread)."""
    if isinstance(text, bytes):
        try:
            decoded = text.decode("utf-8")
        except UnicodeDecodeError:
            decoded = text.decode("latin-1")
    else:
        decoded = text
    return match_boards(rnd, players, split_games(decoded))


@dataclass(slots=True)
class _Source:
    """The polling state of one tournament's ``relay_url``."""

    url: str
    # The tournament id, or the round id of a broadcast round's own source.
    key: str = ""
    etag: str | None = None
    last_modified: str | None = None
    next_at: float = 0.0
    failures: int = 0
    fetches: int = 0
    last_fetch_at: str | None = None
    last_status: int | None = None
    last_error: str | None = None
    last_games: int = 0
    task: asyncio.Task[None] | None = field(default=None, repr=False)
    # Used when ``url`` is a LiveChess Cloud round index (app/livechess.py).
    livechess: LiveChessCache = field(default_factory=LiveChessCache, repr=False)
    # A broadcast round's own source names its round: its URL is used as it is (a
    # tournament's LiveChess URL follows the round being relayed).
    fixed_round: bool = False
    # An account's broadcast (its owner named the source, checked to be on a public
    # address when set) is fetched without following redirects: a redirect, or a later
    # one, could lead the server to its own network past that check.
    follow_redirects: bool = True


class RelayService:
    """Applies pushed PGN to a round's games and polls relay URLs."""

    def __init__(
        self, tournaments: TournamentService, games: GameService, settings: Settings
    ) -> None:
        self._tournaments = tournaments
        self._games = games
        self._settings = settings
        # The digest of the pushed text last applied to each game.
        self._digests: dict[str, str] = {}
        self._sources: dict[str, _Source] = {}
        self._client: httpx.AsyncClient | None = None
        # For sources whose redirects are not followed (accounts').
        self._strict_client: httpx.AsyncClient | None = None
        self._loop_task: asyncio.Task[None] | None = None
        # Broadcast rounds seat pushed games that have no board yet.
        self.rounds: BroadcastRounds | None = None

    # --- pushes ---

    async def push(
        self, live: LiveTournament, round_no: int, text: str | bytes
    ) -> list[RelayGameJSON]:
        """:meth:`push_games`, its reports only."""
        return [line for _, line in await self.push_games(live, round_no, text)]

    async def push_games(
        self, live: LiveTournament, round_no: int, text: str | bytes
    ) -> list[tuple[PushedGame, RelayGameJSON]]:
        """Apply a pushed PGN of round ``round_no``; one report per pushed game, in order.

        ``text`` may be the raw body (UTF-8, else Latin-1).

        Raises ApiError 404 for a round that is not paired. Per-game problems (no board
        matches, an illegal move, a corrupt game) are reported, never raised.
        """
        try:
            rnd = live.state.round(round_no)
        except KeyError:
            raise not_found("round") from None
        players = {p.id: p for p in live.state.players}
        # Decoding, cutting, digesting and matching a round of hundreds of boards costs
        # tens of milliseconds: a thread does it (the inputs are immutable values).
        matches = await asyncio.to_thread(_matched, rnd, players, text)
        if rnd.is_broadcast and self.rounds is not None:
            matches = await self._seat(live, round_no, matches)
        changed = [
            m.game
            for m in matches
            if m.pairing is not None
            and m.pairing.game is not None
            and self._digests.get(m.pairing.game) != m.game.digest
        ]
        moves = dict(
            zip(
                (p.index for p in changed),
                await asyncio.to_thread(lambda: [read_moves(p) for p in changed]),
                strict=True,
            )
        )
        reports: list[tuple[PushedGame, RelayGameJSON]] = []
        for match in matches:
            game_id = None if match.pairing is None else match.pairing.game
            read = moves.get(match.game.index)
            if game_id is None or read is None:
                reports.append((match.game, report(match, None)))
                continue
            outcomes: list[RelayOutcome] = []

            def command(
                state: GameState,
                now: int,
                read: PushedMoves = read,
                out: list[RelayOutcome] = outcomes,
            ) -> list[GameEvent]:
                out.append(relay_events(state, read, now))
                return out[-1].events

            try:
                await self._games.run(await self._games.fetch(game_id), command)
            except GameRefusal as exc:
                # A refusal the relay did not foresee: this game only. (A store that cannot
                # write is not a game's error: StoreUnavailable answers the push 503.)
                failed = report(match, None)
                failed["error"] = f"could not apply: {exc.message}"
                reports.append((match.game, failed))
                continue
            outcome = outcomes[-1]
            reports.append((match.game, report(match, outcome)))
            if outcome.error is None:
                self._digests[game_id] = match.game.digest
        if len(self._digests) > 2 * self._games.loaded:
            # Games that left memory are finished: a push that still carries one pays a
            # comparison, never a wrong answer. The map stays the size of what is live.
            self._digests = {g: d for g, d in self._digests.items() if g in self._games}
        return reports

    async def _seat(
        self, live: LiveTournament, round_no: int, matches: list[BoardMatch]
    ) -> list[BoardMatch]:
        """A broadcast round: pushed games without a board get one (at most
        ``MAX_PUSHED_GAMES`` per push), then the push is matched again."""
        assert self.rounds is not None
        matches = await self._by_position(live, round_no, matches)
        wanted = seats_of([m.game for m in matches])
        seats = [
            (match.game.index, seat)
            for match, seat in zip(matches, wanted, strict=True)
            if match.pairing is None and seat is not None and match.game.index < MAX_PUSHED_GAMES
        ]
        refused: dict[int, str] = {}
        if seats:
            rnd, refused = await self.rounds.seat(live, round_no, seats)
            players = {p.id: p for p in live.state.players}
            by_position = {m.game.index: m for m in matches if m.matched_by == "position"}
            matches = [
                by_position.get(m.game.index, m)
                for m in match_boards(rnd, players, [m.game for m in matches])
            ]
        return [
            _broadcast_error(m, seat, refused.get(m.game.index))
            for m, seat in zip(matches, wanted, strict=True)
        ]

    async def _by_position(
        self, live: LiveTournament, round_no: int, matches: list[BoardMatch]
    ) -> list[BoardMatch]:
        """Games no tag matched, matched to the round's free boards by position."""
        taken = {m.pairing.board for m in matches if m.pairing is not None}
        free = [p for p in live.state.round(round_no).pairings if p.board not in taken and p.game]
        loose = [m.game for m in matches if m.pairing is None and m.game.index < MAX_PUSHED_GAMES]
        if not free or not loose:
            return matches
        loaded = {
            g.id: g.state for g in await self._games.fetch_many(p.game for p in free if p.game)
        }
        boards = [
            (p, loaded[p.game].setup.initial_fen, [m.uci for m in loaded[p.game].moves])
            for p in free
            if p.game in loaded
        ]
        found = await asyncio.to_thread(match_by_position, loose, boards)
        return [
            replace(m, pairing=found[m.game.index], matched_by="position", error=None)
            if m.game.index in found
            else m
            for m in matches
        ]

    # --- polling ---

    def start(self) -> None:
        """Begin polling the relay URLs of tournaments (call on the running loop)."""
        self._loop_task = asyncio.get_running_loop().create_task(
            self._run(), name="gm-relay-poller"
        )

    async def close(self) -> None:
        """Stop polling and close the HTTP client."""
        tasks = [t for t in [self._loop_task] + [s.task for s in self._sources.values()] if t]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for client in (self._client, self._strict_client):
            if client is not None:
                await client.aclose()

    def status(self, tournament_id: str) -> dict[str, Any] | None:
        """The relay source's state for the operator (None without a ``relay_url``)."""
        source = self._sources.get(tournament_id)
        if source is None:
            live = self._tournaments.get(tournament_id)
            if live.state.setup.relay_url is None:
                return None
            return {"url": live.state.setup.relay_url, "fetches": 0, "polling": False}
        return _status_json(source)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(min(1.0, self._settings.relay_poll_s))
            try:
                self._schedule()
            except Exception:
                log.exception("relay scheduling failed")

    def _schedule(self) -> None:
        now = time.monotonic()
        for live in self._tournaments.all():
            wanted: list[tuple[str, str, int]] = []
            url = live.state.setup.relay_url
            rnd = live.state.current_round
            if url is not None and rnd is not None and rnd.status != "finished":
                wanted.append((live.id, url, rnd.number))
            # Each open broadcast round may have a source of its own (lichess's syncUrl).
            for each in live.state.rounds:
                if each.sync_url is not None and each.id is not None and each.status != "finished":
                    wanted.append((each.id, each.sync_url, each.number))
            for key, source_url, round_no in wanted:
                source = self._sources.get(key)
                if source is None or source.url != source_url:
                    source = self._sources[key] = _Source(
                        source_url,
                        key,
                        fixed_round=key != live.id,
                        follow_redirects=live.state.setup.owner is None,
                    )
                if source.task is not None and not source.task.done():
                    continue
                if now >= source.next_at:
                    source.task = asyncio.get_running_loop().create_task(
                        self._poll(live, source, round_no)
                    )

    def round_status(self, round_id: str) -> dict[str, Any] | None:
        """The polling state of a broadcast round's own source (None if it has none yet)."""
        source = self._sources.get(round_id)
        return None if source is None else _status_json(source)

    def _http(self, source: _Source) -> httpx.AsyncClient:
        """The HTTP client for ``source``: one that follows redirects, or one that does not."""
        if source.follow_redirects:
            if self._client is None:
                self._client = self._new_client(follow_redirects=True)
            return self._client
        if self._strict_client is None:
            self._strict_client = self._new_client(follow_redirects=False)
        return self._strict_client

    def _new_client(self, *, follow_redirects: bool) -> httpx.AsyncClient:
        timeout = self._settings.relay_timeout_s
        # No cap on connections: polls of one source never overlap, so a source that
        # hangs holds at most its own few connections and never makes another wait
        # for one (httpx's default pool of 100 is shared by every source).
        # Accounts' sources go only to public addresses, checked at every request.
        hooks = {} if follow_redirects else {"request": [pin_public_address]}
        return httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=20),
            follow_redirects=follow_redirects,
            event_hooks=hooks,
        )

    async def _poll(self, live: LiveTournament, source: _Source, round_no: int) -> None:
        settings = self._settings
        source.fetches += 1
        source.last_fetch_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        deadline = asyncio.get_running_loop().time() + settings.relay_deadline_s
        try:
            if is_livechess_url(source.url):
                text = await self._fetch_livechess(source, round_no, deadline)
            else:
                text = await self._fetch(source, deadline)
            if text is not None:
                reports = await self.push(live, round_no, text) if text else []
                source.last_games = len(reports)
                errors = [f"board {b}: {e}" for b, e in source.livechess.errors.items()]
                errors += [f"board {r['board']}: {r['error']}" for r in reports if r["error"]]
                source.last_error = "; ".join(errors)[:2000] or None
        except Exception as exc:
            self._failed(live, source, exc)
            return
        if source.failures:
            log.info(
                "relay source %s of %s works again after %d failed fetches",
                source.url,
                _owner(live, source),
                source.failures,
            )
        source.failures = 0
        source.next_at = time.monotonic() + settings.relay_poll_s

    def _failed(self, live: LiveTournament, source: _Source, exc: Exception) -> None:
        """Record a failed poll, back off, and log it when a streak of failures begins."""
        settings = self._settings
        source.failures += 1
        expected = isinstance(exc, SourceError | LiveChessFetchError | LiveChessError)
        source.last_error = (str(exc) if expected else f"{type(exc).__name__}: {exc}")[:2000]
        backoff = min(settings.relay_max_backoff_s, settings.relay_poll_s * 2**source.failures)
        source.next_at = time.monotonic() + backoff
        # One line per streak, not one per poll: a source down for an hour would otherwise
        # write a line every relay_max_backoff_s for nothing new. The status shows the rest.
        if source.failures == 1:
            log.warning(
                "relay source %s of %s fails: %s (retrying, backing off up to %.0f s)",
                source.url,
                _owner(live, source),
                source.last_error,
                settings.relay_max_backoff_s,
                exc_info=None if expected else exc,
            )

    async def _fetch_livechess(self, source: _Source, round_no: int, deadline: float) -> str | None:
        """The round ``round_no`` of a LiveChess Cloud source as PGN, or None when unchanged;
        boards left out or cut short are in ``source.livechess.errors``. Raises
        LiveChessFetchError or LiveChessError when the round's index cannot be used."""
        url = source.url if source.fixed_round else round_index_url(source.url, round_no)
        try:
            return await fetch_round_pgn(
                self._http(source),
                url,
                source.livechess,
                round_no,
                max_bytes=self._settings.relay_max_bytes,
                deadline=deadline,
            )
        finally:
            source.last_status = source.livechess.last_status

    async def _fetch(self, source: _Source, deadline: float) -> str | None:
        """The source's text, or None when unchanged (304). Raises SourceError."""
        headers = {}
        if source.etag:
            headers["If-None-Match"] = source.etag
        if source.last_modified:
            headers["If-Modified-Since"] = source.last_modified
        try:
            fetched = await fetch_bounded(
                self._http(source),
                source.url,
                headers=headers,
                max_bytes=self._settings.relay_max_bytes,
                deadline=deadline,
            )
        except SourceError as exc:
            source.last_status = exc.status
            raise
        source.last_status = fetched.status
        if fetched.body is None:
            return None
        text = await read_pgn(fetched)
        # Validators only once the body is known to be usable: garbage is fetched again.
        source.etag, source.last_modified = fetched.etag, fetched.last_modified
        return text


def _owner(live: LiveTournament, source: _Source) -> str:
    """What a source feeds, for the log: the tournament or one of its rounds."""
    if not source.fixed_round:
        return f"tournament {live.id}"
    return f"round {source.key} of tournament {live.id}"


def _status_json(source: _Source) -> dict[str, Any]:
    return {
        "url": source.url,
        "polling": source.task is not None and not source.task.done(),
        "fetches": source.fetches,
        "last_fetch_at": source.last_fetch_at,
        "last_status": source.last_status,
        "last_error": source.last_error,
        "failures": source.failures,
        "games": source.last_games,
    }
