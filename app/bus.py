"""The bus between a core and its edges: Redis pub/sub for live events, a capped Redis
Stream per game for the replay window.

The core (the authority: games, clocks, store) hands every public event to
:class:`BusPublisher`, which publishes its stored JSON text once on the game's channel
and appends it to the game's stream (``XADD ... MAXLEN ~``), pipelined, from a task of its
own: the event loop never waits for Redis, and an outage never holds a move (the store is
the authority; edges resync from the core). Edges read with :class:`BusFeed`: one pub/sub
connection per edge process, one subscription per game that has spectators there (as
lila-ws does), and ``XRANGE`` on the stream to fill a gap (pub/sub is at most once).

Redis is imported only when a bus is configured: the embedded default needs nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from workers.store import EventRecord

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.client import PubSub

log = logging.getLogger(__name__)

# Events of a game kept on its stream: the replay window of ``since=`` (as the hub's).
STREAM_LENGTH = 64
# Events waiting for Redis; beyond it new ones are dropped (edges repair gaps from the core).
MAX_BACKLOG = 100_000
# A process's spectator count not renewed for this long (seconds) no longer counts.
STALE_S = 10


def game_channel(game: str) -> str:
    """The pub/sub channel of a game's events."""
    return f"gm:game:{game}"


def game_stream(game: str) -> str:
    """The stream holding a game's last events."""
    return f"gm:log:{game}"


def tournament_channel(tournament: str) -> str:
    """The pub/sub channel of a tournament's messages (rounds, standings, new games)."""
    return f"gm:tour:{tournament}"


def connect(url: str) -> Redis:
    """A Redis client for ``url`` (``redis://host:port/db``), with hiredis if installed."""
    from redis.asyncio import Redis

    client: Redis = Redis.from_url(url, socket_connect_timeout=2, health_check_interval=10)
    return client


class BusPublisher:
    """The core's side: every public event of every game, once, onto the bus."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._redis: Redis | None = None
        self._queue: asyncio.Queue[tuple[str, str, Any]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.published = 0
        self.dropped = 0

    @property
    def redis(self) -> Redis:
        """The client (after :meth:`start`)."""
        assert self._redis is not None
        return self._redis

    async def start(self) -> None:
        """Connect (lazily: a bus that is down at start is retried) and start writing."""
        self._redis = connect(self._url)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="gm-bus-writer")

    async def close(self) -> None:
        """Write what is queued (a second at most), then stop."""
        if self._task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), 1.0)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._redis is not None:
            await self._redis.aclose()

    # --- the hub's tap (called on the loop, never waits) ---

    def game_events(self, game: str, records: Iterable[EventRecord]) -> None:
        """Public events of ``game``, in ``seq`` order."""
        for record in records:
            self._put(("g", game, record))

    def tournament_message(self, tournament: str, text: str) -> None:
        """A tournament message (round, standings) as the hub sends it."""
        self._put(("t", tournament, text))

    def _put(self, item: tuple[str, str, Any]) -> None:
        if self._queue.qsize() >= MAX_BACKLOG:
            self.dropped += 1
            return
        self._queue.put_nowait(item)

    # --- the writer ---

    async def _run(self) -> None:
        assert self._redis is not None
        failures = 0
        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty() and len(batch) < 512:
                batch.append(self._queue.get_nowait())
            try:
                pipe = self._redis.pipeline(transaction=False)
                for kind, key, item in batch:
                    if kind == "g":
                        record: EventRecord = item
                        pipe.xadd(
                            game_stream(key),
                            {"seq": record.seq, "body": record.body},
                            maxlen=STREAM_LENGTH,
                            approximate=True,
                        )
                        pipe.publish(game_channel(key), record.body)
                    else:
                        pipe.publish(tournament_channel(key), item)
                await pipe.execute()
                self.published += len(batch)
                failures = 0
            except Exception as exc:
                # The store holds every event; edges see the gap and resync from the core.
                self.dropped += len(batch)
                failures += 1
                if failures == 1 or failures % 100 == 0:
                    log.warning("the bus is unreachable (%s); %d events dropped", exc, len(batch))
                await asyncio.sleep(min(2.0, 0.05 * failures))
            finally:
                for _ in batch:
                    self._queue.task_done()


class BusFeed:
    """An edge's side: subscriptions to the games its spectators watch.

    ``on_message(channel, text)`` is called on the loop for each message; ``on_down()``
    when the connection to Redis is lost and ``on_up()`` once it is back (subscriptions
    are renewed first).
    """

    def __init__(
        self,
        url: str,
        on_message: Callable[[str, str], None],
        *,
        on_down: Callable[[], None] = lambda: None,
        on_up: Callable[[], None] = lambda: None,
    ) -> None:
        self._url = url
        self._on_message = on_message
        self._on_down = on_down
        self._on_up = on_up
        self._redis: Redis | None = None
        self._pubsub: PubSub | None = None
        self._channels: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def start(self) -> None:
        """Connect and start reading."""
        self._redis = connect(self._url)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="gm-bus-reader")

    async def close(self) -> None:
        """Stop reading and disconnect."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()  # type: ignore[no-untyped-call]
        if self._redis is not None:
            await self._redis.aclose()

    @property
    def redis(self) -> Redis:
        """The client, for stream reads."""
        assert self._redis is not None
        return self._redis

    async def subscribe(self, channel: str) -> None:
        """Receive ``channel`` from now on (idempotent); returns once subscribed."""
        if channel in self._channels:
            return
        self._channels.add(channel)
        # While the bus is down the channel is subscribed when it is back.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), 2.0)
        if self._pubsub is not None and self._ready.is_set():
            with contextlib.suppress(Exception):
                await self._pubsub.subscribe(channel)

    async def unsubscribe(self, channel: str) -> None:
        """Stop receiving ``channel``."""
        self._channels.discard(channel)
        if self._pubsub is not None and self._ready.is_set():
            with contextlib.suppress(Exception):
                await self._pubsub.unsubscribe(channel)

    async def read_stream(self, game: str, after_seq: int) -> list[tuple[int, str]]:
        """The events of ``game`` after ``after_seq`` still on its stream, in order."""
        entries: Any = await self.redis.xrange(game_stream(game), "-", "+")
        events = []
        for _, fields in entries or []:
            seq = int(fields[b"seq"])
            if seq > after_seq:
                body = fields[b"body"]
                events.append((seq, body.decode() if isinstance(body, bytes) else str(body)))
        return events

    async def _run(self) -> None:
        assert self._redis is not None
        failures = 0
        while True:
            try:
                self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
                # A channel to hold the connection open even without spectators.
                await self._pubsub.subscribe("gm:edges", *sorted(self._channels))
                self._ready.set()
                if failures:
                    log.info("the bus is back")
                    self._on_up()
                failures = 0
                async for message in self._pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    channel = message["channel"].decode()
                    data = message["data"]
                    text = data.decode() if isinstance(data, bytes) else str(data)
                    try:
                        self._on_message(channel, text)
                    except Exception:
                        log.exception("a bus message on %s could not be handled", channel)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._ready.clear()
                failures += 1
                if failures == 1:
                    log.warning("lost the bus (%s); retrying", exc)
                    self._on_down()
                with contextlib.suppress(Exception):
                    if self._pubsub is not None:
                        await self._pubsub.aclose()  # type: ignore[no-untyped-call]
                await asyncio.sleep(min(2.0, 0.1 * failures))


def process_id() -> str:
    """This process, among all those of a bus."""
    return f"{socket.gethostname()}:{os.getpid()}"


def audience_key(game: str) -> str:
    """The hash of a game's spectators on each process (field: process id)."""
    return f"gm:audience:{game}"


class Audience:
    """Spectator counts summed over every process of a bus, once a second.

    Each process writes its own count of each game it has spectators for (a field of the
    game's hash, expiring unless renewed) and reads the totals of the games it shows into
    ``hub.audience``. A core (``every_game``) reads every game's total, for REST.
    """

    def __init__(self, redis: Redis, hub: Any, process_id: str, *, every_game: bool) -> None:
        self._redis = redis
        self._hub = hub
        self._id = process_id
        self._every_game = every_game
        self._counted: set[str] = set()

    async def run(self, interval_s: float = 1.0) -> None:
        """Forever: write this process's counts, read the totals."""
        while True:
            try:
                await self.exchange()
            except Exception as exc:
                log.debug("audience exchange failed: %s", exc)
            await asyncio.sleep(interval_s)

    async def exchange(self) -> None:
        """One round: write, then read."""
        counts = {g: n for g, n in self._hub.local_counts().items() if n or g in self._counted}
        now_s = int(time.time())
        pipe = self._redis.pipeline(transaction=False)
        for game, count in counts.items():
            key = audience_key(game)
            if count:
                # "count time": a process that died stops renewing its count, which is
                # ignored after STALE_S (Redis 7.0 cannot expire one field of a hash).
                pipe.hset(key, self._id, f"{count} {now_s}")
                pipe.expire(key, 60)
            else:
                pipe.hdel(key, self._id)
        self._counted = {g for g, n in counts.items() if n}
        await pipe.execute()
        games = set(counts)
        if self._every_game:
            async for key in self._redis.scan_iter(match="gm:audience:*", count=1000):
                name = key.decode() if isinstance(key, bytes) else str(key)
                games.add(name.removeprefix("gm:audience:"))
        games.update(self._hub.audience)
        ordered = sorted(games)
        read = self._redis.pipeline(transaction=False)
        for game in ordered:
            read.hvals(audience_key(game))
        totals = await read.execute()
        fresh = now_s - STALE_S
        audience = {}
        for game, values in zip(ordered, totals, strict=True):
            total = 0
            for value in values:
                text = value.decode() if isinstance(value, bytes) else str(value)
                count, _, at_s = text.partition(" ")
                if at_s.isdigit() and int(at_s) >= fresh and count.isdigit():
                    total += int(count)
            if values:
                audience[game] = total
        self._hub.audience = audience
