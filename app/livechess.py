"""Polling a DGT LiveChess Cloud round: its ``index.json`` and the game files next to it.

A LiveChess round lives at ``https://1.pool.livechesscloud.com/get/<tournament id>/
round-<n>/index.json``, its boards at ``.../round-<n>/game-<board>.json`` (the format is
in :mod:`engine.rules.livechess`). :func:`fetch_round_pgn` reads the index, then every
board's game file, at most :data:`CONCURRENCY` requests at a time, each a conditional
request (``If-None-Match``/``If-Modified-Since``) with the validators and the parsed
content kept in a :class:`LiveChessCache`, so a round where nothing moved costs one 304
per file and no parsing. It returns the round as PGN for the relay pipeline, or None when
it is the text returned last time. Every file is fetched within the poll's deadline and
size cap (:mod:`app.relay_fetch`): a game file that hangs, trickles or runs on costs its
board an error, and the other boards still come through.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeAlias
from urllib.parse import urljoin, urlsplit

import httpx

from app.relay_fetch import INLINE_BYTES, SourceError, fetch_bounded
from engine.rules.livechess import (
    MAX_FILE_BYTES,
    LiveChessError,
    LiveGame,
    LiveRound,
    parse_game,
    parse_index,
    round_pgn,
)

# Game files fetched at once for one round.
CONCURRENCY = 8
_ROUND_DIR = re.compile(r"/round-\d+/index\.json$")
_Parsed: TypeAlias = "LiveRound | LiveGame | str"


class LiveChessFetchError(Exception):
    """A file of the round could not be fetched (HTTP error, too large, too slow, not
    HTTP, a bare 304).

    ``status`` is the HTTP status of the answer.
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(slots=True)
class _Cached:
    """A file's validators and what it was parsed into (or why it could not be)."""

    etag: str | None
    last_modified: str | None
    value: LiveRound | LiveGame | str


class LiveChessCache:
    """What polling a LiveChess round remembers between polls (one per relay source).

    ``errors`` are the boards left out of or cut short in the last round PGN built, with
    the reason (board number to message); ``last_status`` is the index's last HTTP status.
    """

    def __init__(self) -> None:
        self.files: dict[str, _Cached] = {}
        self.text: str | None = None
        self.errors: dict[int, str] = {}
        self.last_status: int | None = None


def is_livechess_url(url: str) -> bool:
    """Whether ``url`` is an http(s) URL of a round index: its path ends in ``/index.json``.

    That is LiveChess Cloud's ``.../get/<id>/round-<n>/index.json``, or any server that
    serves the same files (a local mirror, a test).
    """
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and parts.path.endswith("/index.json")


def round_index_url(url: str, round_no: int) -> str:
    """``url`` with its ``round-<n>`` directory set to ``round_no`` (unchanged without one).

    A tournament's ``relay_url`` names one LiveChess round; as lichess does, the round
    being relayed is the one read, so one URL serves the whole event.
    """
    parts = urlsplit(url)
    if _ROUND_DIR.search(parts.path) is None:
        return url
    path = _ROUND_DIR.sub(f"/round-{round_no}/index.json", parts.path)
    return parts._replace(path=path).geturl()


async def fetch_round_pgn(
    client: httpx.AsyncClient,
    index_url: str,
    cache: LiveChessCache,
    round_no: int = 1,
    *,
    max_bytes: int = MAX_FILE_BYTES,
    deadline: float | None = None,
) -> str | None:
    """The round at ``index_url`` as PGN (``[Round "<round_no>.<board>"]``), or None when
    it is the same text as the last call with this ``cache`` returned.

    Every file must be fetched whole by ``deadline`` (loop time; None: a minute from now)
    and be at most ``max_bytes`` (and :data:`MAX_FILE_BYTES`) long. Raises
    LiveChessFetchError or LiveChessError when the index cannot be fetched or read. A game
    file that cannot be fetched in time or read leaves its board out of the text (its
    stored game stays as it is) and is listed in ``cache.errors``.
    """
    if deadline is None:
        deadline = asyncio.get_running_loop().time() + 60.0
    limits = _Limits(min(max_bytes, MAX_FILE_BYTES), deadline)
    try:
        index, cache.last_status = await _fetch(client, index_url, cache, parse_index, limits)
    except LiveChessFetchError as exc:
        cache.last_status = exc.status
        raise
    assert isinstance(index, LiveRound)
    urls = {p.board: urljoin(index_url, f"game-{p.board}.json") for p in index.pairings}
    games: dict[int, LiveGame | str] = {}
    changed = [cache.last_status != 304]

    async def work(boards: Iterator[int]) -> None:
        for board in boards:
            try:
                value, status = await _fetch(client, urls[board], cache, _read_game, limits)
            except LiveChessFetchError as exc:
                value, status = f"game-{board}.json: {exc}", None
            assert not isinstance(value, LiveRound)
            games[board] = value
            changed[0] = changed[0] or status != 304

    # A few workers share one iterator: at most CONCURRENCY requests are in flight.
    boards = iter(urls)
    async with asyncio.TaskGroup() as group:
        for _ in range(min(CONCURRENCY, len(urls))):
            group.create_task(work(boards))
    keep = {index_url, *urls.values()}
    cache.files = {url: cached for url, cached in cache.files.items() if url in keep}
    if not changed[0] and cache.text is not None:
        return None
    built = await asyncio.to_thread(round_pgn, round_no, index, games)
    cache.errors = built.errors
    if built.text == cache.text:
        return None
    cache.text = built.text
    return built.text


@dataclass(frozen=True, slots=True)
class _Limits:
    max_bytes: int
    deadline: float


def _read_game(body: bytes) -> LiveGame | str:
    try:
        return parse_game(body)
    except LiveChessError as exc:
        return str(exc)


async def _fetch(
    client: httpx.AsyncClient,
    url: str,
    cache: LiveChessCache,
    read: Callable[[bytes], _Parsed],
    limits: _Limits,
) -> tuple[_Parsed, int]:
    """The parsed content of ``url`` and the HTTP status (304: the cached content reused).

    Raises LiveChessFetchError (what went wrong, in words), and what ``read`` raises; a
    file is cached (validators and content) only once it is read. A large file is read
    in a thread.
    """
    cached = cache.files.get(url)
    headers = {}
    if cached is not None and cached.etag:
        headers["If-None-Match"] = cached.etag
    if cached is not None and cached.last_modified:
        headers["If-Modified-Since"] = cached.last_modified
    try:
        fetched = await fetch_bounded(
            client, url, headers=headers, max_bytes=limits.max_bytes, deadline=limits.deadline
        )
    except SourceError as exc:
        raise LiveChessFetchError(str(exc), exc.status) from None
    if fetched.body is None:
        if cached is None:
            raise LiveChessFetchError("304 Not Modified to an unconditional request", 304)
        return cached.value, fetched.status
    if len(fetched.body) <= INLINE_BYTES:
        value = read(fetched.body)
    else:
        value = await asyncio.to_thread(read, fetched.body)
    cache.files[url] = _Cached(fetched.etag, fetched.last_modified, value)
    return value, fetched.status
