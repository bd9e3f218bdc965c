"""What admission adds to each connection: uvicorn's stock httptools protocol against
app/http_protocol.py's subclass, in one process, without sockets.

Each round makes a connection on an in-memory transport, feeds it one whole GET request
(as a spectator's handshake or a REST read arrives), lets a minimal ASGI app answer it and
loses the connection: the protocol's own work per connection, uvicorn's included, with
admission counting it, arming the header deadline at connect and cancelling it when the
header is in. Runs alternate between the two classes, on uvloop as the server runs; the median of
``--runs`` runs of ``--connections`` connections each is reported per class, in
microseconds of this process's CPU time per connection (CPU time rather than wall time, so
that other work on a shared machine weighs less).

    python bench/admission_cost.py [--connections 20000] [--runs 7]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from typing import Any

import harness

sys.path.insert(0, str(harness.ROOT))

import uvicorn
import uvloop
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from app.admission import Admission
from app.http_protocol import protocol_class

REQUEST = b"GET /healthz HTTP/1.1\r\nHost: bench\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n"


class MemoryTransport(asyncio.Transport):
    """A transport that keeps nothing: enough of one for uvicorn's HTTP protocol."""

    def __init__(self) -> None:
        super().__init__()
        self._closing = False
        self._protocol: Any = None

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.5", 40000), "sockname": ("127.0.0.1", 8000)}.get(
            name, default
        )

    def write(self, data: Any) -> None:
        pass

    def close(self) -> None:
        self._closing = True

    def is_closing(self) -> bool:
        return self._closing

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        pass

    def abort(self) -> None:
        self._closing = True

    def set_protocol(self, protocol: Any) -> None:
        self._protocol = protocol

    def get_protocol(self) -> Any:
        return self._protocol


async def app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def run(cls: type[asyncio.Protocol], connections: int) -> float:
    """Microseconds per connection for ``cls``."""
    config = uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False)
    config.load()
    state = ServerState()
    started = time.process_time()
    for _ in range(connections):
        protocol: Any = cls(config=config, server_state=state, app_state={})  # type: ignore[call-arg]
        transport = MemoryTransport()
        protocol.connection_made(transport)
        protocol.data_received(REQUEST)
        await asyncio.sleep(0)  # the response task runs
        protocol.connection_lost(None)
    return (time.process_time() - started) / connections * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    admission = Admission(
        max_total=30_000, max_per_address=200, header_timeout_s=10, body_timeout_s=60
    )
    classes = {"stock": HttpToolsProtocol, "admitted": protocol_class(admission)}
    results: dict[str, list[float]] = {name: [] for name in classes}
    for _ in range(args.runs):
        for name, cls in classes.items():
            # uvloop, as the server runs (uvicorn's loop="auto").
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                results[name].append(runner.run(run(cls, args.connections)))
    assert admission.open == 0, "a connection was not given back"
    stock = statistics.median(results["stock"])
    admitted = statistics.median(results["admitted"])
    print("| protocol | us per connection (median of runs) |")
    print("|---|---:|")
    print(f"| uvicorn's HttpToolsProtocol | {stock:.1f} |")
    print(f"| AdmittedHttpToolsProtocol | {admitted:.1f} (+{admitted - stock:.1f}) |")
    print(harness.machine())


if __name__ == "__main__":
    main()
