"""A bare ``websockets`` server using ``broadcast()``: the cost floor of one write per client.

Run from the repository's virtualenv:
``python bench/reference_broadcast.py --port P [--host 127.0.0.1]``
(``bench/fanout.py`` starts it by itself, as the reference next to Grandmaster).

Spectators connect to ``/spectate``: each gets a snapshot-like first message,
``{"type": "snapshot", "game": {"id", "seq"}}``, then every broadcast, and nothing is ever
read from them (the library answers their pongs). The driver connects to ``/control`` and
sends JSON commands, one at a time:

- ``{"cmd": "move", "uci", "san", "fen", "ply"}``: the server takes ``pre_ns``
  (``time.monotonic_ns()``, which is system-wide on Linux), serialises one move event shaped
  like Grandmaster's (about 250 bytes, ``seq`` increasing by one per move, ``t_ns`` =
  ``pre_ns``), hands it to ``websockets.broadcast()`` for every open spectator, takes
  ``post_ns`` as soon as ``broadcast()`` returns, and answers
  ``{"seq", "pre_ns", "post_ns", "spectators", "bytes"}``.
- ``{"cmd": "count"}``: answers ``{"spectators": n}``.

Compression is off and keepalive pings go out every 10 s, as on Grandmaster. The server
stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import resource
import signal
import time
from collections.abc import Mapping
from typing import Any

from websockets.asyncio.server import ServerConnection, broadcast, serve

SPECTATE_PATH = "/spectate"
CONTROL_PATH = "/control"
GAME_ID = "RefBench"
PING_INTERVAL_S = 10.0


def move_event(seq: int, ply: int, uci: str, san: str, fen: str, stamp_ns: int) -> str:
    """The JSON text of one move event, shaped like Grandmaster's, stamped with ``stamp_ns``."""
    body = {
        "type": "move",
        "game": GAME_ID,
        "seq": seq,
        "ply": ply,
        "uci": uci,
        "san": san,
        "fen": fen,
        "clock": {"white_ms": 5_400_000, "black_ms": 5_400_000, "running": "white"},
        "t_ns": stamp_ns,
    }
    return json.dumps(body, separators=(",", ":"))


class Reference:
    """The spectators and the event counter of the one game this server broadcasts."""

    def __init__(self) -> None:
        self.spectators: set[ServerConnection] = set()
        self.seq = 0

    async def handle(self, websocket: ServerConnection) -> None:
        """Route a connection by path: spectators wait for broadcasts, the driver commands."""
        path = websocket.request.path if websocket.request is not None else ""
        if path == SPECTATE_PATH:
            await self._spectate(websocket)
        elif path == CONTROL_PATH:
            await self._control(websocket)
        else:
            await websocket.close(1008, "unknown path")

    async def _spectate(self, websocket: ServerConnection) -> None:
        self.spectators.add(websocket)
        try:
            snapshot = {"type": "snapshot", "game": {"id": GAME_ID, "seq": self.seq}}
            await websocket.send(json.dumps(snapshot, separators=(",", ":")))
            await websocket.wait_closed()
        finally:
            self.spectators.discard(websocket)

    async def _control(self, websocket: ServerConnection) -> None:
        async for raw in websocket:
            command: dict[str, Any] = json.loads(raw)
            reply: Mapping[str, int | str]
            if command.get("cmd") == "move":
                reply = self.move(command)
            elif command.get("cmd") == "count":
                reply = {"spectators": len(self.spectators)}
            else:
                reply = {"error": "unknown command"}
            await websocket.send(json.dumps(reply))

    def move(self, command: dict[str, Any]) -> dict[str, int]:
        """Broadcast the next move event to every spectator; the stamps around the write."""
        self.seq += 1
        pre_ns = time.monotonic_ns()
        text = move_event(
            self.seq,
            int(command["ply"]),
            str(command["uci"]),
            str(command["san"]),
            str(command["fen"]),
            pre_ns,
        )
        broadcast(self.spectators, text)
        post_ns = time.monotonic_ns()
        return {
            "seq": self.seq,
            "pre_ns": pre_ns,
            "post_ns": post_ns,
            "spectators": len(self.spectators),
            "bytes": len(text),
        }


async def main(host: str, port: int) -> None:
    """Serve until SIGTERM or SIGINT."""
    stop = asyncio.get_running_loop().create_future()
    for signum in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set_result, None)
    reference = Reference()
    async with serve(
        reference.handle,
        host,
        port,
        compression=None,
        ping_interval=PING_INTERVAL_S,
        ping_timeout=PING_INTERVAL_S,
        max_size=1024,
        backlog=4096,
    ):
        await stop


def raise_file_limit() -> None:
    """Lift the soft limit on open files to the hard limit: each spectator is a socket."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1_048_576)
    if soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            logging.getLogger(__name__).warning("could not raise the open-file limit")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    raise_file_limit()
    asyncio.run(main(args.host, args.port))
