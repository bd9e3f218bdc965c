"""SIGTERM with spectators connected: 1012 to each, a prompt clean exit, nothing lost on resume."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import websockets
from websockets.exceptions import ConnectionClosed

from tests.app.test_live import long_game
from tests.conftest import ServerProcess
from tests.test_durability import create_started_game, move_ucis

SPECTATORS = 5


async def watch(url: str, seen: dict[int, str | None], ready: asyncio.Event) -> int | None:
    """Record each event by ``seq`` (a move's UCI, else None) until the server closes;
    ``ready`` is set once the snapshot arrived (subscribed). Returns the close code."""
    async with websockets.connect(url) as ws:
        try:
            async for raw in ws:
                message: dict[str, Any] = json.loads(raw)
                if message["type"] == "snapshot":
                    ready.set()
                if "seq" in message:
                    seen[message["seq"]] = message.get("uci")
        except ConnectionClosed:
            pass
        return ws.close_code


async def resume(url: str, seen: dict[int, str | None], last_seq: int) -> None:
    """Reconnect with ``since=`` and record events until ``last_seq`` has been seen."""
    since = max(seen, default=1)
    async with websockets.connect(f"{url}?since={since}") as ws:
        while max(seen, default=0) < last_seq:
            message = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert message["type"] != "snapshot", "the missed events should have been replayed"
            if "seq" in message:
                seen[message["seq"]] = message.get("uci")


async def stream(url: str, seen: dict[int, str | None], ready: asyncio.Event) -> str:
    """Read an NDJSON stream like :func:`watch`; returns "ended" when the server ended it
    cleanly, else the error that broke it."""
    async with httpx.AsyncClient(timeout=None) as client:
        try:
            async with client.stream("GET", url) as response:
                async for line in response.aiter_lines():
                    if not line.strip():
                        continue
                    message = json.loads(line)
                    if message["type"] == "snapshot":
                        ready.set()
                    if "seq" in message:
                        seen[message["seq"]] = message.get("uci")
        except httpx.HTTPError as exc:
            return repr(exc)
    return "ended"


def test_sigterm_closes_spectators_with_1012_and_they_resume_without_loss(
    server_process: ServerProcess,
) -> None:
    """On SIGTERM each spectator gets 1012 (a stream ends cleanly) and the process exits 0
    promptly; after a restart ``since=`` gives every spectator each acknowledged move it missed."""
    server_process.start()
    moves = long_game(40)
    acknowledged: list[str] = []
    with httpx.Client(base_url=server_process.url, timeout=5, headers=_auth()) as client:
        game_id = create_started_game(client)
        url = server_process.url.replace("http://", "ws://") + f"/ws/games/{game_id}"
        seen: list[dict[int, str | None]] = [{} for _ in range(SPECTATORS)]

        stream_url = f"{server_process.url}/api/stream/games/{game_id}"
        streamed: dict[int, str | None] = {}

        async def watch_then_stop() -> tuple[list[int | None], float, str]:
            ready = [asyncio.Event() for _ in seen]
            watchers = [
                asyncio.create_task(watch(url, s, r)) for s, r in zip(seen, ready, strict=True)
            ]
            stream_ready = asyncio.Event()
            reader = asyncio.create_task(stream(stream_url, streamed, stream_ready))
            await asyncio.wait_for(asyncio.gather(*(r.wait() for r in ready)), 10)
            await asyncio.wait_for(stream_ready.wait(), 10)
            for move in moves[:20]:
                await asyncio.to_thread(_move, client, game_id, move, len(acknowledged))
                acknowledged.append(move)
            assert server_process.proc is not None
            started = time.monotonic()
            server_process.proc.terminate()
            codes = await asyncio.wait_for(asyncio.gather(*watchers), 10)
            ending = await asyncio.wait_for(reader, 10)
            await asyncio.to_thread(server_process.proc.wait, 10)
            return codes, time.monotonic() - started, ending

        codes, exit_s, ending = asyncio.run(watch_then_stop())
        assert codes == [1012] * SPECTATORS
        # Not reset after uvicorn's grace period: ended by the server as it stopped.
        assert ending == "ended"
        assert [streamed[k] for k in sorted(streamed) if streamed[k]] == acknowledged
        assert server_process.proc is not None
        assert server_process.proc.returncode == 0
        # Not a timing goal: a shutdown waiting on its 5 s grace or a stuck client shows here.
        assert exit_s < 10.0, f"took {exit_s:.1f} s to exit"

        server_process.start()
        for move in moves[20:]:
            _move(client, game_id, move, len(acknowledged))
            acknowledged.append(move)
        game = client.get(f"/api/games/{game_id}").json()
        assert move_ucis(game) == acknowledged
        last_seq = game["seq"]

        async def resume_all() -> None:
            await asyncio.gather(*(resume(url, s, last_seq) for s in seen))

        asyncio.run(resume_all())
        for s in seen:
            # Every event after the start (seq 1), without a gap, its moves the acknowledged ones.
            assert sorted(s) == list(range(2, last_seq + 1))
            assert [s[k] for k in sorted(s) if s[k] is not None] == acknowledged


def _auth() -> dict[str, str]:
    return {"Authorization": "Bearer operator-secret-token"}


def _move(client: httpx.Client, game_id: str, uci: str, ply: int) -> None:
    r = client.post(f"/api/games/{game_id}/moves", json={"move": uci, "ply": ply})
    assert r.status_code == 200, r.text


def test_sigterm_ends_the_analysis_workers_and_exits_in_the_grace_period(
    server_process: ServerProcess,
) -> None:
    """With analysis searching, SIGTERM still exits 0 well within compose's 15 s grace
    period, and leaves none of its children (workers, their engines) behind."""
    server_process.env.update({"GM_ANALYSIS": "1", "GM_ANALYSIS_PROCESSES": "2"})
    server_process.start()
    assert server_process.proc is not None
    with httpx.Client(base_url=server_process.url, timeout=5, headers=_auth()) as client:
        game_id = create_started_game(client)
        for ply, move in enumerate(long_game(6)):
            _move(client, game_id, move, ply)
        # Wait until a worker is searching the position: an evaluation has been published.
        for _ in range(200):
            if client.get(f"/api/games/{game_id}").json().get("eval"):
                break
            time.sleep(0.05)
        else:
            raise AssertionError("no evaluation was published")
        children = _descendants(server_process.proc.pid)
        assert len(children) >= 2, children
        started = time.monotonic()
        server_process.proc.terminate()
        assert server_process.proc.wait(15) == 0
        exit_s = time.monotonic() - started
    # Not a timing goal: a stop that waits on a search or a worker shows here.
    assert exit_s < 10.0, f"took {exit_s:.1f} s to exit"
    for _ in range(40):
        left = {pid: _command(pid) for pid in children if _alive(pid)}
        if not left:
            break
        time.sleep(0.05)
    assert not left, f"outlived the server: {left}"


def _descendants(pid: int) -> list[int]:
    """The process ids below ``pid`` (Linux /proc), children first."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            found += [int(child), *_descendants(int(child))]
    return found


def _alive(pid: int) -> bool:
    """Whether ``pid`` still exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _command(pid: int) -> str:
    """The command line of ``pid`` (empty once it is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except FileNotFoundError:
        return ""


def catches(pid: int, signum: int) -> bool:
    """Whether process ``pid`` has a handler installed for ``signum`` (its SigCgt mask)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (signum - 1) & 1)
    return False


def test_sigterm_while_starting_stops_the_server(tmp_path: Path) -> None:
    """A SIGTERM that arrives while the server is still starting (an edge whose core dies as
    it starts gets one) stops it cleanly, like one that arrives while it serves."""
    server = ServerProcess(tmp_path / "data")
    server.spawn()
    assert server.proc is not None
    try:
        # The first handler is the server's own; uvicorn's takes over when it starts to
        # serve, after a full garbage collection of the whole app: tens of milliseconds in
        # which this signal lands (with a handler that ignored it, the test hung 3 of 3 runs).
        deadline = time.monotonic() + 60
        while not catches(server.proc.pid, signal.SIGTERM):
            assert server.proc.poll() is None, server.log_since(0)
            assert time.monotonic() < deadline, "no SIGTERM handler was ever installed"
            time.sleep(0.001)
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(30) == 0
    finally:
        server.kill()
