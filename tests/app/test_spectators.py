"""A direct spectator that fell behind catches up with the state, not the missed stream."""

from __future__ import annotations

import asyncio
import json

from app.spectators import DirectSpectator, Message


class Transport:
    """A connection whose unsent buffer the test sets."""

    def __init__(self) -> None:
        self.buffered = 0
        self.frames: list[bytes] = []
        self.is_open = True

    def write_frame(self, frame: bytes) -> None:
        self.frames.append(frame)

    def buffered_bytes(self) -> int:
        return self.buffered

    def limit_kernel_buffer(self, size: int) -> None:
        """Not needed here."""

    def close_with(self, code: int, reason: str) -> None:
        self.is_open = False


def texts(transport: Transport) -> list[dict[str, object]]:
    """The JSON payloads of the frames written (server frames: 2-byte header up to 125 bytes, else 4)."""
    out = []
    for frame in transport.frames:
        length = frame[1] & 0x7F
        out.append(json.loads(frame[2:] if length < 126 else frame[4:]))
    return out


async def test_a_tournament_spectator_gets_the_tournament_then_snapshots_on_catch_up() -> None:
    """Messages skipped while behind are replaced by the current tournament message, then each game's snapshot."""
    transport = Transport()
    state = {"round": 1}

    def snapshot(game: str) -> Message:
        return Message(json.dumps({"type": "snapshot", "game": game}), game=game, seq=None)

    spectator = DirectSpectator(transport, snapshot, max_buffer=100)  # type: ignore[arg-type]
    spectator.tournament = lambda: Message(
        json.dumps({"type": "tournament", "round": state["round"]}), game="", seq=None
    )
    spectator.games |= {"g2", "g1"}
    transport.buffered = 1000
    spectator.deliver(Message('{"type":"round","round":2}', game="", seq=None))
    assert spectator.is_behind and transport.frames == []
    state["round"] = 2
    now = asyncio.get_running_loop().time()
    assert spectator.catch_up(now)  # still stuck: nothing written, not yet hopeless
    assert transport.frames == []
    transport.buffered = 0
    assert spectator.catch_up(now)
    assert texts(transport) == [
        {"type": "tournament", "round": 2},
        {"type": "snapshot", "game": "g1"},
        {"type": "snapshot", "game": "g2"},
    ]
