"""In-process fan-out of game events to spectators, with per-game replay history.

The hub only consumes already-serialised events (``EventRecord.body``) and hands each
one, encoded once, to every subscriber of its game. This is the seam a pub/sub bus would
take over when the server outgrows one process: a bus subscriber would call
:meth:`Hub.publish_records` with what it receives.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from app.metrics import Metrics
from app.spectators import Message, QueuedSpectator, Spectator
from workers.store import EventRecord

log = logging.getLogger(__name__)

SnapshotJSON = Callable[[str], Any]
# Events kept per game for ``since=`` resumes.
REPLAY_HISTORY = 64
# The close code of spectators when the server stops (WebSocket "service restart").
SERVER_STOPPING = 1012


class Tap(Protocol):
    """Receives what the hub publishes, as it publishes it (a bus publisher)."""

    def game_events(self, game: str, records: list[EventRecord]) -> None:
        """Events of ``game`` in ``seq`` order."""

    def tournament_message(self, tournament: str, text: str) -> None:
        """A tournament message."""


@dataclass(eq=False, slots=True)
class Channel:
    """One game's subscribers and the last events, for ``since=`` resumes."""

    game: str
    history: deque[Message]
    spectators: set[Spectator] = field(default_factory=set)
    counted: int = -1
    seq: int = 0
    snapshot_key: tuple[int, int] = (-1, -1)
    snapshot: Message | None = None


class Hub:
    """Subscriptions by game and by tournament; publishing never awaits a spectator.

    ``snapshot_json(game_id)`` returns the game's public state now (the ``game`` of a
    snapshot message); ``now_ms`` is the clock used to cache snapshots briefly.
    """

    def __init__(
        self,
        snapshot_json: SnapshotJSON,
        metrics: Metrics,
        *,
        now_ms: Callable[[], int],
        history_size: int = REPLAY_HISTORY,
        max_spectators: int = 20_000,
    ) -> None:
        self._snapshot_json = snapshot_json
        self._metrics = metrics
        self._now_ms = now_ms
        self._history_size = history_size
        self.max_spectators = max_spectators
        self._channels: dict[str, Channel] = {}
        self._tournaments: dict[str, set[Spectator]] = {}
        self._connected: set[Spectator] = set()
        # Closed spectators whose connection is not gone yet: they get nothing more but
        # still hold a socket and its buffers, so they count against the cap until the
        # connection's owner calls unsubscribe().
        self._closing: set[Spectator] = set()
        self._sent_gone = 0
        self._skipped_gone = 0
        self._stopping = False
        # Where a core also sends every public event: the bus to its edges.
        self.tap: Tap | None = None
        # Spectators of a game on every process of a bus, by game (kept by app.bus.Audience).
        self.audience: dict[str, int] = {}
        self._sent_reported = 0
        self._skipped_reported = 0
        metrics.on_scrape(self.update_metrics)

    # --- publishing (from the Broadcast, or a bus subscriber) ---

    def publish_records(self, game: str, records: Iterable[EventRecord]) -> None:
        """Fan out events (in ``seq`` order) to the game's subscribers and remember them."""
        if self.tap is not None:
            records = list(records)
            self.tap.game_events(game, records)
        channel = self._channel(game)
        for record in records:
            message = Message(record.body, game=game, seq=record.seq)
            channel.history.append(message)
            channel.seq = record.seq
            for spectator in channel.spectators:
                spectator.deliver(message)

    def game_added(self, game: str, tournament: str | None) -> None:
        """A new game exists: tournament subscribers start following it with a snapshot."""
        if tournament is None:
            return
        if self.tap is not None:
            # Edges' tournament followers follow it too (a message for edges only).
            text = json.dumps({"type": "game_added", "tournament": tournament, "game": game})
            self.tap.tournament_message(tournament, text)
        followers = self._tournaments.get(tournament)
        if not followers:
            return
        channel = self._channel(game)
        snapshot = self.snapshot(game)
        for spectator in followers:
            spectator.games.add(game)
            channel.spectators.add(spectator)
            spectator.deliver(snapshot)

    def restore(self, game: str, bodies: Iterable[str], seqs: Iterable[int]) -> None:
        """Prefill a game's history after a restart (or a reload) so ``since=`` resumes
        survive it; events older than what the channel holds are skipped."""
        channel = self._channel(game)
        for body, seq in zip(bodies, seqs, strict=True):
            if seq <= channel.seq:
                continue
            channel.history.append(Message(body, game=game, seq=seq))
            channel.seq = seq

    def resync(self, game: str) -> None:
        """The game's state was read again (a feed that lost events): its spectators get a
        fresh snapshot, and ``since=`` resumes start over from it."""
        channel = self._channel(game)
        channel.history.clear()
        channel.snapshot = None
        channel.seq = -1
        snapshot = self.snapshot(game)
        for spectator in channel.spectators:
            spectator.deliver(snapshot)

    def notify(self, game: str, text: str) -> None:
        """Send a message that is no game event (no ``seq``) to the game's spectators."""
        channel = self._channels.get(game)
        if channel is None:
            return
        message = Message(text, game=game, seq=None)
        for spectator in channel.spectators:
            spectator.deliver(message)

    def forget(self, game: str) -> None:
        """Drop a game's channel and replay window unless someone still follows it."""
        channel = self._channels.get(game)
        if channel is not None and not channel.spectators:
            del self._channels[game]

    # --- subscribing ---

    @property
    def is_full(self) -> bool:
        """Whether the spectator cap is reached, counting connections still closing."""
        return self.connected >= self.max_spectators

    def subscribe(
        self, spectator: Spectator, games: Iterable[str], since: int | Mapping[str, int] | None
    ) -> None:
        """Start ``spectator`` on ``games``: missed events or a snapshot first, then live.

        Runs without awaiting, so no event can be published between the catch-up and
        the subscription. ``since`` is one game's last ``seq`` seen, or a ``seq`` per game
        (games missing from it get a snapshot).
        """
        self._connected.add(spectator)
        if self._stopping and isinstance(spectator, QueuedSpectator):
            spectator.close(SERVER_STOPPING, "server restarting")
        for game in games:
            channel = self._channel(game)
            game_since = since.get(game) if isinstance(since, Mapping) else since
            for message in self._catch_up(channel, game_since):
                spectator.deliver(message)
            channel.spectators.add(spectator)
            spectator.games.add(game)

    def subscribe_tournament(
        self,
        spectator: Spectator,
        tournament: str,
        first: str,
        games: Iterable[str],
        since: Mapping[str, int] | None,
    ) -> None:
        """Follow every game of a tournament, including games created later.

        ``first`` (the tournament message) goes out before the games' snapshots.
        """
        self._tournaments.setdefault(tournament, set()).add(spectator)
        spectator.deliver(Message(first, game="", seq=None))
        self.subscribe(spectator, games, since)

    def has_followers(self, tournament: str) -> bool:
        """Whether anyone follows the tournament (messages are built only for them): here,
        or possibly on an edge when there is a bus."""
        return self.tap is not None or bool(self._tournaments.get(tournament))

    def publish_tournament(self, tournament: str, text: str) -> None:
        """Send a tournament message (round, standings; no game ``seq``) to its followers."""
        if self.tap is not None:
            self.tap.tournament_message(tournament, text)
        followers = self._tournaments.get(tournament)
        if not followers:
            return
        message = Message(text, game="", seq=None)
        for spectator in followers:
            spectator.deliver(message)

    def unsubscribe(self, spectator: Spectator) -> None:
        """Forget ``spectator`` everywhere (idempotent); call once its connection is gone."""
        if spectator in self._closing:
            self._closing.discard(spectator)
            self._sent_gone += spectator.sent
            self._skipped_gone += spectator.skipped
            return
        if spectator not in self._connected:
            return
        self._leave(spectator)
        self._sent_gone += spectator.sent
        self._skipped_gone += spectator.skipped

    def _leave(self, spectator: Spectator) -> None:
        """Stop delivering to ``spectator``; the caller decides whether it still counts."""
        self._connected.discard(spectator)
        for game in spectator.games:
            channel = self._channels.get(game)
            if channel is not None:
                channel.spectators.discard(spectator)
        for tournament, followers in list(self._tournaments.items()):
            followers.discard(spectator)
            if not followers:
                # No empty per-tournament structure outlives its last follower.
                del self._tournaments[tournament]

    def spectators(self, game: str) -> int:
        """How many spectators follow ``game``: here, or on every process of a bus."""
        channel = self._channels.get(game)
        local = 0 if channel is None else len(channel.spectators)
        return self.audience.get(game, local)

    def local_counts(self) -> dict[str, int]:
        """Spectators of each game on this process (games that have a channel)."""
        return {game: len(channel.spectators) for game, channel in self._channels.items()}

    @property
    def connected(self) -> int:
        """Spectator connections in all, those closed but not yet gone included."""
        return len(self._connected) + len(self._closing)

    def snapshot(self, game: str) -> Message:
        """``{"type": "snapshot", "game": ...}`` for ``game``, cached for a quarter second."""
        channel = self._channel(game)
        key = (channel.seq, self._now_ms() // 250)
        if channel.snapshot is None or channel.snapshot_key != key:
            body = {"type": "snapshot", "game": self._snapshot_json(game)}
            text = json.dumps(body, separators=(",", ":"))
            channel.snapshot = Message(text, game=game, seq=None)
            channel.snapshot_key = key
        return channel.snapshot

    def end_streams(self) -> None:
        """The server stops: close every queued spectator (NDJSON streams, and WebSockets
        under other ASGI servers) with :data:`SERVER_STOPPING`, so their responses end;
        one that subscribes later is closed at once."""
        self._stopping = True
        for spectator in list(self._connected):
            if isinstance(spectator, QueuedSpectator):
                spectator.close(SERVER_STOPPING, "server restarting")

    # --- housekeeping ---

    def tick(self) -> None:
        """Once a second: spectator counts, catching up or closing those behind."""
        now_s = asyncio.get_running_loop().time()
        for spectator in list(self._connected):
            if spectator.is_closed:
                self._leave(spectator)
                self._closing.add(spectator)
            elif spectator.is_behind and not spectator.catch_up(now_s):
                spectator.close(1013, "too slow: reconnect with since=")
        for channel in self._channels.values():
            count = self.audience.get(channel.game, len(channel.spectators))
            if count == channel.counted:
                continue
            channel.counted = count
            text = json.dumps(
                {"type": "spectators", "game": channel.game, "count": count},
                separators=(",", ":"),
            )
            message = Message(text, game=channel.game, seq=None)
            for spectator in channel.spectators:
                spectator.deliver(message)

    async def run(self, interval_s: float = 1.0) -> None:
        """Call :meth:`tick` forever."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                self.tick()
            except Exception:
                log.exception("hub housekeeping failed")

    # --- internals ---

    def _channel(self, game: str) -> Channel:
        channel = self._channels.get(game)
        if channel is None:
            channel = Channel(game, deque(maxlen=self._history_size))
            self._channels[game] = channel
        return channel

    def _catch_up(self, channel: Channel, since: int | None) -> list[Message]:
        history = channel.history
        if since is not None and since <= channel.seq:
            if since == channel.seq:
                return []
            if history and history[0].seq is not None and history[0].seq <= since + 1:
                missed = [m for m in history if m.seq is not None and m.seq > since]
                # Only a gap-free run from ``since`` replays; else a snapshot says it all.
                if all(m.seq == since + 1 + i for i, m in enumerate(missed)):
                    return missed
        return [self.snapshot(channel.game)]

    def update_metrics(self) -> None:
        """Copy spectator and message counts into the metrics.

        Runs at scrape time only, because it walks every spectator.
        """
        held = (*self._connected, *self._closing)
        sent = self._sent_gone + sum(s.sent for s in held)
        skipped = self._skipped_gone + sum(s.skipped for s in held)
        m = self._metrics
        m.spectators.set(len(held))
        m.messages_sent.inc(max(0, sent - self._sent_reported))
        m.messages_dropped.inc(max(0, skipped - self._skipped_reported))
        self._sent_reported = max(sent, self._sent_reported)
        self._skipped_reported = max(skipped, self._skipped_reported)
