"""Each game's serialised forms, made once per ``seq`` and shared by every reader.

A game's JSON changes with its events and, between two events, in two places only: the
running clock (read at the instant of the request) and the spectator count. Everything
else (the moves above all: tens of kilobytes in a long game) is encoded once per ``seq``
into pieces, and each reader gets those bytes with its clock and count written between
them: the same bytes as encoding the whole view afresh. A PGN does not depend on the time
at all: it is rendered once per ``seq`` (off the loop), and readers who ask while it is
being rendered wait for that render instead of starting their own.

A game's ``seq`` grows by one with every event and is never reused, so ``(game, seq)``
names one state for good: a reader handed the state after an acknowledged move gets that
move, never a stale body. One entry is kept per game and the owner of the games drops it
when the game leaves memory (:meth:`GameViews.forget`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from engine.rules.game import GameState
from engine.rules.view import game_json

# The fields of a game's JSON read at the instant of the request.
_LIVE = ("clock", "spectators")


def _dumps(value: Any) -> str:
    """JSON as Starlette's JSONResponse writes it (so that the bytes are the same)."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class _Json:
    """A game's JSON at one ``seq``, cut where the live fields go."""

    seq: int
    # len(pieces) == len(_LIVE) + 1: piece, clock, piece, spectators, piece.
    pieces: tuple[bytes, ...]

    @classmethod
    def of(cls, state: GameState) -> _Json:
        view: dict[str, Any] = dict(game_json(state, 0))
        pieces: list[bytes] = []
        text = "{"
        for i, (key, value) in enumerate(view.items()):
            text += ("," if i else "") + _dumps(key) + ":"
            if key in _LIVE:
                pieces.append(text.encode())
                text = ""
            else:
                text += _dumps(value)
        pieces.append((text + "}").encode())
        return cls(state.seq, tuple(pieces))

    def render(self, clock: bytes, spectators: int) -> bytes:
        first, middle, last = self.pieces
        return b"".join((first, clock, middle, b"%d" % spectators, last))


@dataclass(frozen=True, slots=True)
class _Pgn:
    """A game's PGN at one ``seq``, rendered or being rendered."""

    seq: int
    text: asyncio.Future[str]


class GameViews:
    """The JSON body and PGN of each game, by game id, for the two ``seq``s last asked for.

    ``built_json`` and ``built_pgn`` count the renders (each is one cache miss).
    """

    def __init__(self) -> None:
        # Per game, the two ``seq``s last built, newest first: a delayed game is read at
        # two (the public's, held back, and the live one its owner sees), and with one
        # slot each reader would evict the other's.
        self._json: dict[str, tuple[_Json, ...]] = {}
        self._pgn: dict[str, tuple[_Pgn, ...]] = {}
        # Renders under way, held until they end (and awaited by :meth:`close`).
        self._renders: set[asyncio.Future[str]] = set()
        self.built_json = 0
        self.built_pgn = 0

    def __contains__(self, game_id: object) -> bool:
        """Whether anything of the game is kept."""
        return game_id in self._json or game_id in self._pgn

    def __len__(self) -> int:
        """How many games have something kept."""
        return len(self._json.keys() | self._pgn.keys())

    def json_body(
        self, state: GameState, now_ms: int, spectators: int, *, keep: bool = True
    ) -> bytes:
        """``game_json(state, now_ms, spectators=spectators)`` encoded as UTF-8 JSON.

        ``keep`` False: the game is not (or no longer) held by its owner, so nothing is
        kept for it (a reader that got the state before the game left memory).
        """
        game_id = state.setup.id
        kept = self._json.get(game_id, ())
        cached = next((each for each in kept if each.seq == state.seq), None)
        if cached is None:
            cached = _Json.of(state)
            self.built_json += 1
            if keep:
                self._json[game_id] = (cached, *kept[:1])
        return cached.render(_dumps(state.clock.to_json(now_ms)).encode(), spectators)

    async def pgn(
        self, state: GameState, render: Callable[[], Awaitable[str]], *, keep: bool = True
    ) -> str:
        """The PGN of ``state``: the one kept for its ``seq``, or ``render()`` awaited.

        Concurrent callers for the same ``seq`` share one render. A render that fails
        (its exception is raised to every caller waiting for it) is not kept. A caller that
        is cancelled does not cancel the render others wait for.
        """
        game_id = state.setup.id
        kept = self._pgn.get(game_id, ())
        cached = next((each for each in kept if each.seq == state.seq), None)
        if cached is not None:
            return await asyncio.shield(cached.text)
        task = asyncio.ensure_future(render())
        self._renders.add(task)
        self.built_pgn += 1
        entry = _Pgn(state.seq, task)
        if keep:
            self._pgn[game_id] = (entry, *kept[:1])

        def settled(done: asyncio.Future[str]) -> None:
            self._renders.discard(done)
            failed = done.cancelled() or done.exception() is not None
            slots = self._pgn.get(game_id, ())
            if failed and entry in slots:
                rest = tuple(each for each in slots if each is not entry)
                if rest:
                    self._pgn[game_id] = rest
                else:
                    del self._pgn[game_id]

        task.add_done_callback(settled)
        return await asyncio.shield(task)

    def forget(self, game_id: str) -> None:
        """Drop what is kept of the game (it left memory). A render under way finishes
        for those waiting for it."""
        self._json.pop(game_id, None)
        self._pgn.pop(game_id, None)

    async def close(self) -> None:
        """Wait for the renders under way (their callers may be gone)."""
        if self._renders:
            await asyncio.gather(*self._renders, return_exceptions=True)
