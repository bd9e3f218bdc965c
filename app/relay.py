"""Over-the-board relays: a round's PGN pushed by the operator or polled from a URL.

A push is read in three steps of rising cost (see :mod:`engine.rules.relay`): the text is
cut into games and digested off the loop; a game whose digest is the one last applied
to its board is skipped; only changed games are read move by move, each applied under
its game's lock as one command, so a push is as durable as any move. Results of a push
come back in the pushed order, one per game, errors included.

A tournament with a ``relay_url`` has that URL fetched every ``relay_poll_s`` while a
round is live, with conditional requests (``ETag``/``Last-Modified``), backing off
exponentially on errors; the last status and error are shown to the operator.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from app.errors import not_found
from app.games import GameService
from app.settings import Settings
from app.tournaments import LiveTournament, TournamentService
from engine.rules.errors import GameRefusal
from engine.rules.game import GameState
from engine.rules.relay import PushedMoves, RelayOutcome, read_moves, relay_events, split_games
from engine.rules.wire import GameEvent
from engine.tournament.relay import BoardMatch, RelayGameJSON, match_boards, report
from engine.tournament.state import Entrant, Round

log = logging.getLogger(__name__)


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


# Bodies larger than this are refused by the poller (a round of 500 long games is ~2 MB).
MAX_RELAY_BYTES = 16 * 1024 * 1024


@dataclass(slots=True)
class _Source:
    """The polling state of one tournament's ``relay_url``."""

    url: str
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
        self._loop_task: asyncio.Task[None] | None = None

    # --- pushes ---

    async def push(
        self, live: LiveTournament, round_no: int, text: str | bytes
    ) -> list[RelayGameJSON]:
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
        reports: list[RelayGameJSON] = []
        for match in matches:
            game_id = None if match.pairing is None else match.pairing.game
            read = moves.get(match.game.index)
            if game_id is None or read is None:
                reports.append(report(match, None))
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
                reports.append(failed)
                continue
            outcome = outcomes[-1]
            reports.append(report(match, outcome))
            if outcome.error is None:
                self._digests[game_id] = match.game.digest
        if len(self._digests) > 2 * self._games.loaded:
            # Games that left memory are finished: a push that still carries one pays a
            # comparison, never a wrong answer. The map stays the size of what is live.
            self._digests = {g: d for g, d in self._digests.items() if g in self._games}
        return reports

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
        if self._client is not None:
            await self._client.aclose()

    def status(self, tournament_id: str) -> dict[str, Any] | None:
        """The relay source's state for the operator (None without a ``relay_url``)."""
        source = self._sources.get(tournament_id)
        if source is None:
            live = self._tournaments.get(tournament_id)
            if live.state.setup.relay_url is None:
                return None
            return {"url": live.state.setup.relay_url, "fetches": 0, "polling": False}
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
            url = live.state.setup.relay_url
            rnd = live.state.current_round
            if url is None or rnd is None or rnd.status == "finished":
                continue
            source = self._sources.setdefault(live.id, _Source(url))
            if source.task is not None and not source.task.done():
                continue
            if now >= source.next_at:
                source.task = asyncio.get_running_loop().create_task(
                    self._poll(live, source, rnd.number)
                )

    async def _poll(self, live: LiveTournament, source: _Source, round_no: int) -> None:
        settings = self._settings
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=settings.relay_timeout_s, follow_redirects=True
            )
        headers = {}
        if source.etag:
            headers["If-None-Match"] = source.etag
        if source.last_modified:
            headers["If-Modified-Since"] = source.last_modified
        source.fetches += 1
        source.last_fetch_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        try:
            text = await self._fetch(source, headers)
            if text is not None:
                reports = await self.push(live, round_no, text)
                source.last_games = len(reports)
                errors = [f"board {r['board']}: {r['error']}" for r in reports if r["error"]]
                source.last_error = "; ".join(errors)[:2000] or None
            source.failures = 0
            source.next_at = time.monotonic() + settings.relay_poll_s
        except Exception as exc:
            source.failures += 1
            source.last_error = f"{type(exc).__name__}: {exc}"[:2000]
            backoff = min(settings.relay_max_backoff_s, settings.relay_poll_s * 2**source.failures)
            source.next_at = time.monotonic() + backoff
            log.warning(
                "relay %s of %s failed (%s); next try in %.0f s", source.url, live.id, exc, backoff
            )

    async def _fetch(self, source: _Source, headers: dict[str, str]) -> str | None:
        """The body of the source, or None when unchanged (304). Raises on HTTP errors."""
        assert self._client is not None
        async with self._client.stream("GET", source.url, headers=headers) as response:
            source.last_status = response.status_code
            if response.status_code == 304:
                return None
            response.raise_for_status()
            chunks = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > MAX_RELAY_BYTES:
                    raise ValueError(f"the relay source is larger than {MAX_RELAY_BYTES} bytes")
                chunks.append(chunk)
            source.etag = response.headers.get("etag")
            source.last_modified = response.headers.get("last-modified")
            return b"".join(chunks).decode(response.encoding or "utf-8", errors="replace")
