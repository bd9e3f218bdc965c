"""Scale-out: a core and edge processes over a real ``redis-server``, as separate processes.

Spectators on edges get every event of the core's games, in order and without gaps; an edge
killed with SIGKILL loses nothing for spectators who reconnect to another edge with
``since=``; Redis stopped and started again during play loses no move, and edges resync.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from tests.conftest import RedisServer, ServerProcess, redis_server_or_skip

AUTH = {"Authorization": "Bearer operator-secret-token"}
MOVES = ["e4", "e5", "Nf3", "Nc6", "Bb5", "a6", "Ba4", "Nf6", "O-O", "Be7", "Re1", "b5"]


@contextlib.contextmanager
def started_cluster(directory: Path, redis_url: str) -> Iterator[list[ServerProcess]]:
    """A core and two edges on the bus at ``redis_url``: ``[core, edge1, edge2]``, started,
    and stopped at the end."""
    core = ServerProcess(directory / "core" / "data", env={"GM_ROLE": "core", "GM_BUS": redis_url})
    edges = [
        ServerProcess(
            directory / f"edge{i}" / "data",
            env={"GM_ROLE": "edge", "GM_BUS": redis_url, "GM_CORE_URL": core.url},
        )
        for i in (1, 2)
    ]
    try:
        core.start()
        for edge in edges:
            edge.start()
        yield [core, *edges]
    finally:
        for proc in (*edges, core):
            proc.stop()


@pytest.fixture
def cluster(tmp_path: Path, redis_server: RedisServer) -> Iterator[list[ServerProcess]]:
    """A cluster of its own, for a test that kills or restarts a part of it."""
    with started_cluster(tmp_path, redis_server.url) as servers:
        yield servers


@pytest.fixture(scope="module")
def calm_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[ServerProcess]]:
    """One cluster and Redis for the tests that stop nothing (three starts cost seconds), each
    with games or tournaments of its own."""
    directory = tmp_path_factory.mktemp("calm")
    redis = RedisServer(redis_server_or_skip(), directory / "redis")
    redis.start()
    try:
        with started_cluster(directory, redis.url) as servers:
            yield servers
    finally:
        redis.stop()


def ws_url(server: ServerProcess, path: str) -> str:
    return server.url.replace("http://", "ws://") + path


def start_game(core: ServerProcess) -> tuple[str, dict[str, str]]:
    r = httpx.post(
        core.url + "/api/games",
        json={
            "white": {"name": "W"},
            "black": {"name": "B"},
            "clock": {"initial": 600, "increment": 0},
        },
        headers=AUTH,
    )
    assert r.status_code == 201, r.text
    game_id = r.json()["game"]["id"]
    assert httpx.post(f"{core.url}/api/games/{game_id}/start", headers=AUTH).status_code == 200
    return game_id, r.json()["tokens"]


def game_seq(core: ServerProcess, game_id: str) -> int:
    """The game's ``seq`` on the core now."""
    seq: int = httpx.get(f"{core.url}/api/games/{game_id}").json()["seq"]
    return seq


def play(server: ServerProcess, game_id: str, moves: list[str], first_ply: int) -> None:
    for ply, move in enumerate(moves, start=first_ply):
        r = httpx.post(
            f"{server.url}/api/games/{game_id}/moves", json={"move": move, "ply": ply}, headers=AUTH
        )
        assert r.status_code == 200, r.text


class Watcher:
    """A spectator socket recording messages by type and events by ``seq``."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.messages: list[dict[str, Any]] = []
        self.events: dict[int, dict[str, Any]] = {}
        self.task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()

    async def run(self) -> None:
        async with websockets.connect(self.url) as ws:
            async for raw in ws:
                message = json.loads(raw)
                self.messages.append(message)
                if message["type"] == "snapshot":
                    self.ready.set()
                    seq = message["game"]["seq"]
                    self.events = {s: e for s, e in self.events.items() if s <= seq}
                    self.events.setdefault(seq, {"type": "snapshot"})
                elif "seq" in message:
                    self.events[message["seq"]] = message

    def start(self) -> Watcher:
        self.task = asyncio.get_running_loop().create_task(self.run())
        return self

    async def until(self, predicate: Any, timeout_s: float = 15.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not predicate(self):
            if self.task is not None and self.task.done():
                self.task.result()
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; last messages: {self.messages[-3:]}")
            await asyncio.sleep(0.02)

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()

    def moves(self) -> list[str]:
        return [e["san"] for s, e in sorted(self.events.items()) if e.get("type") == "move"]

    def gap_free(self) -> bool:
        seqs = sorted(self.events)
        return seqs == list(range(seqs[0], seqs[-1] + 1))


def test_spectators_on_every_edge_get_every_event_in_order(
    calm_cluster: list[ServerProcess],
) -> None:
    """Spectators of one game on two edges get the core's events, in order and without a gap; moves sent through an edge reach the core; the audience is summed over the edges."""
    core, edge1, edge2 = calm_cluster
    game_id, _ = start_game(core)

    async def scenario() -> None:
        watchers = [Watcher(ws_url(e, f"/ws/games/{game_id}")).start() for e in (edge1, edge2)]
        for w in watchers:
            await asyncio.wait_for(w.ready.wait(), 10)
        await asyncio.to_thread(play, core, game_id, MOVES[:6], 0)
        # A write sent to an edge is the core's: passed on.
        await asyncio.to_thread(play, edge2, game_id, MOVES[6:], 6)
        final = await asyncio.to_thread(game_seq, core, game_id)
        for w in watchers:
            await w.until(lambda w: max(w.events) >= final)
            assert w.moves() == MOVES and w.gap_free()
        # A public read of a game an edge follows is answered from the edge's own state,
        # the same as the core's.
        from_edge = await asyncio.to_thread(httpx.get, f"{edge1.url}/api/games/{game_id}")
        from_core = await asyncio.to_thread(httpx.get, f"{core.url}/api/games/{game_id}")
        assert from_edge.headers.get("x-served-by") == "edge"
        assert {k: v for k, v in from_edge.json().items() if k not in ("clock", "spectators")} == {
            k: v for k, v in from_core.json().items() if k not in ("clock", "spectators")
        }
        # The audience is summed over the edges: each edge's spectator sees two, and so
        # does the core's REST.
        for w in watchers:
            await w.until(
                lambda w: any(m["type"] == "spectators" and m["count"] == 2 for m in w.messages)
            )

        def audience() -> int:
            count: int = httpx.get(f"{core.url}/api/games/{game_id}").json()["spectators"]
            return count

        for _ in range(100):
            if await asyncio.to_thread(audience) == 2:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the core never counted the edges' spectators")
        for w in watchers:
            w.stop()

    asyncio.run(scenario())


def test_an_edge_killed_mid_game_loses_nothing_for_spectators_who_move(
    cluster: list[ServerProcess],
) -> None:
    """After SIGKILL of an edge, its spectators reconnect to another edge with since= and get exactly the events they missed."""
    core, edge1, edge2 = cluster
    game_id, _ = start_game(core)

    async def scenario() -> None:
        first = Watcher(ws_url(edge1, f"/ws/games/{game_id}")).start()
        await asyncio.wait_for(first.ready.wait(), 10)
        await asyncio.to_thread(play, core, game_id, MOVES[:4], 0)
        seq_after_four = await asyncio.to_thread(game_seq, core, game_id)
        await first.until(lambda w: max(w.events) >= seq_after_four)
        edge1.kill()
        first.stop()
        await asyncio.to_thread(play, core, game_id, MOVES[4:8], 4)
        last = max(first.events)
        resumed = Watcher(ws_url(edge2, f"/ws/games/{game_id}?since={last}")).start()
        final = await asyncio.to_thread(game_seq, core, game_id)
        await resumed.until(lambda w: w.events and max(w.events) >= final)
        assert not any(m["type"] == "snapshot" for m in resumed.messages)
        # Every event after `since`, without a gap (a clock checkpoint may have come after
        # `final` was read: the range runs to the last event seen).
        assert sorted(resumed.events) == list(range(last + 1, max(resumed.events) + 1))
        assert [
            e["san"] for _, e in sorted(resumed.events.items()) if e["type"] == "move"
        ] == MOVES[4:8]
        resumed.stop()

    asyncio.run(scenario())


def test_redis_down_during_play_loses_no_move_and_edges_resync(
    cluster: list[ServerProcess], redis_server: RedisServer
) -> None:
    """With Redis stopped, moves are still accepted and stored; spectators are told the feed is interrupted, and once Redis is back they get a fresh snapshot and every later event."""
    core, edge1, _ = cluster
    game_id, _ = start_game(core)

    async def scenario() -> None:
        watcher = Watcher(ws_url(edge1, f"/ws/games/{game_id}")).start()
        await asyncio.wait_for(watcher.ready.wait(), 10)
        await asyncio.to_thread(play, core, game_id, MOVES[:2], 0)
        redis_server.stop()
        await watcher.until(lambda w: any(m["type"] == "interrupted" for m in w.messages))
        await asyncio.to_thread(play, core, game_id, MOVES[2:6], 2)
        redis_server.start()
        await watcher.until(
            lambda w: any(m["type"] == "snapshot" and m["game"]["ply"] >= 6 for m in w.messages[1:])
        )
        await asyncio.to_thread(play, core, game_id, MOVES[6:8], 6)
        final = await asyncio.to_thread(game_seq, core, game_id)
        await watcher.until(lambda w: max(w.events) >= final)
        # What the spectator shows: its last snapshot, then every move after it. A resync
        # may come more than once (the bus can drop again as it returns, or lose an event
        # on its way back), and a later snapshot may hold moves sent since.
        last = [m for m in watcher.messages if m["type"] == "snapshot"][-1]["game"]
        later = [
            e["san"]
            for s, e in sorted(watcher.events.items())
            if s > last["seq"] and e.get("type") == "move"
        ]
        assert [m["san"] for m in last["moves"]] + later == MOVES[:8]
        assert [s for s in sorted(watcher.events) if s > last["seq"]] == list(
            range(last["seq"] + 1, max(watcher.events) + 1)
        )
        watcher.stop()

    asyncio.run(scenario())


def children(pid: int) -> list[tuple[int, str]]:
    """The child processes of ``pid``: (pid, command line)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append((int(entry.name), cmdline))
    return found


def running(pids: list[int]) -> list[int]:
    """Those of ``pids`` that still run (a zombie waiting to be reaped does not)."""
    alive = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        if "State:\tZ" not in state:
            alive.append(pid)
    return alive


def test_edges_on_one_port_serve_spectators_and_come_back(tmp_path: Path) -> None:
    """``--edges 2`` runs a core, two edges sharing its port and its own redis-server; spectators on that port get every move; an edge killed is started again; stopping the core stops them all."""
    redis_server_or_skip()
    server = ServerProcess(tmp_path / "data", env={"GM_EDGES": "2"})
    server.start()
    assert server.proc is not None
    try:

        def edge_pids() -> list[int]:
            assert server.proc is not None
            return [pid for pid, cmd in children(server.proc.pid) if "-m app" in cmd]

        assert len(edge_pids()) == 2
        assert any("redis-server" in cmd for _, cmd in children(server.proc.pid))
        roles = {httpx.get(server.url + "/healthz").json().get("role") for _ in range(40)}
        # The kernel spreads connections over the processes on the port.
        assert "edge" in roles
        game_id, _ = start_game(server)

        async def scenario() -> None:
            watchers = [Watcher(ws_url(server, f"/ws/games/{game_id}")).start() for _ in range(8)]
            for w in watchers:
                await asyncio.wait_for(w.ready.wait(), 10)
            await asyncio.to_thread(play, server, game_id, MOVES[:6], 0)
            final = await asyncio.to_thread(game_seq, server, game_id)
            for w in watchers:
                await w.until(lambda w: max(w.events) >= final)
                assert w.moves() == MOVES[:6] and w.gap_free()
                w.stop()

        asyncio.run(scenario())
        victim = edge_pids()[0]
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            pids = edge_pids()
            if len(pids) == 2 and victim not in pids:
                break
            time.sleep(0.1)
        else:
            raise AssertionError(f"the killed edge was not started again: {edge_pids()}")
    finally:
        left = [pid for pid, _ in children(server.proc.pid)]
        server.stop()
    # Every child (edges, redis-server) is gone with the core, not left behind.
    time.sleep(0.5)
    assert running(left) == []


def test_a_core_killed_takes_its_edges_and_redis_with_it(tmp_path: Path) -> None:
    """After SIGKILL of a core started with ``--edges``, no edge or redis-server of it is left running."""
    redis_server_or_skip()
    server = ServerProcess(tmp_path / "data", env={"GM_EDGES": "2"})
    server.start()
    assert server.proc is not None
    left = [pid for pid, _ in children(server.proc.pid)]
    assert len(left) == 3
    server.kill()
    deadline = time.monotonic() + 10
    while running(left) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert running(left) == [], "still running after the core died: " + str(
        [Path(f"/proc/{pid}/cmdline").read_bytes()[:200] for pid in running(left)]
    )


def test_a_tournament_socket_on_an_edge(calm_cluster: list[ServerProcess]) -> None:
    """A tournament's socket on an edge gets the tournament, every game, their moves, standings after results, and the games of a round paired later."""
    core, edge1, _ = calm_cluster
    body = {
        "name": "Edge Open",
        "format": "round_robin",
        "clock": {"initial": 600, "increment": 0},
        "players": [{"name": n} for n in "ABCD"],
    }
    tid = httpx.post(core.url + "/api/tournaments", json=body, headers=AUTH).json()["id"]
    paired = httpx.post(f"{core.url}/api/tournaments/{tid}/rounds", json={}, headers=AUTH).json()
    first = [p["game"] for p in paired["pairings"]]

    async def scenario() -> None:
        watcher = Watcher(ws_url(edge1, f"/ws/tournaments/{tid}")).start()
        await watcher.until(lambda w: sum(m["type"] == "snapshot" for m in w.messages) == 2)
        assert watcher.messages[0]["type"] == "tournament"
        assert {m["game"]["id"] for m in watcher.messages if m["type"] == "snapshot"} == set(first)
        await asyncio.to_thread(play, core, first[0], ["d4"], 0)
        await watcher.until(
            lambda w: any(m["type"] == "move" and m["game"] == first[0] for m in w.messages)
        )
        for board in (1, 2):
            r = await asyncio.to_thread(
                httpx.post,
                f"{core.url}/api/tournaments/{tid}/rounds/1/results",
                json={"board": board, "result": "1-0"},
                headers=AUTH,
            )
            assert r.status_code == 200, r.text
        await watcher.until(lambda w: any(m["type"] == "standings" for m in w.messages))
        r = await asyncio.to_thread(
            httpx.post, f"{core.url}/api/tournaments/{tid}/rounds", json={}, headers=AUTH
        )
        second = {p["game"] for p in r.json()["pairings"]}
        await watcher.until(
            lambda w: second <= {m["game"]["id"] for m in w.messages if m["type"] == "snapshot"}
        )
        watcher.stop()

    asyncio.run(scenario())


def test_a_core_restart_keeps_edge_spectators_connected(cluster: list[ServerProcess]) -> None:
    """When the core is killed and started again, spectators on an edge stay connected and get the moves played after the restart, with no gap."""
    core, edge1, _ = cluster
    game_id, _ = start_game(core)

    async def scenario() -> None:
        watcher = Watcher(ws_url(edge1, f"/ws/games/{game_id}")).start()
        await asyncio.wait_for(watcher.ready.wait(), 10)
        await asyncio.to_thread(play, core, game_id, MOVES[:4], 0)
        await asyncio.to_thread(core.kill)
        await asyncio.to_thread(core.start)
        await asyncio.to_thread(play, core, game_id, MOVES[4:8], 4)
        final = await asyncio.to_thread(game_seq, core, game_id)
        await watcher.until(lambda w: max(w.events) >= final)
        assert watcher.moves() == MOVES[:8] and watcher.gap_free()
        assert sum(m["type"] == "snapshot" for m in watcher.messages) == 1
        watcher.stop()

    asyncio.run(scenario())


def test_an_edge_passes_the_host_on_so_links_are_its_own(calm_cluster: list[ServerProcess]) -> None:
    """A lichess route answered through an edge builds its links on the address the client used, not the core's."""
    _, edge1, _ = calm_cluster
    r = httpx.post(edge1.url + "/broadcast/new", json={"name": "Linked Open"}, headers=AUTH)
    assert r.status_code == 200, r.text
    assert r.json()["tour"]["url"].startswith(edge1.url + "/broadcast/")
    assert r.headers.get_list("date") == [r.headers["date"]]


def test_a_hole_in_the_replay_window_means_a_snapshot() -> None:
    """Events kept for since= serve a resume only as a gap-free run: after a hole, only the run after it, and a resume from before it gets a snapshot."""
    from app.edge import _run_ending_at
    from app.hub import Hub
    from app.metrics import Metrics
    from app.spectators import QueuedSpectator

    events = [(1, "a"), (2, "b"), (4, "d"), (5, "e")]
    assert _run_ending_at(events, 5) == [(4, "d"), (5, "e")]
    hub = Hub(lambda game: {"id": game}, Metrics(), now_ms=lambda: 0)
    hub.restore("g", ['{"seq":1}', '{"seq":2}', '{"seq":4}'], [1, 2, 4])
    spectator = QueuedSpectator()
    hub.subscribe(spectator, ["g"], 1)
    first = spectator.queue.get_nowait()
    assert first is not None and first.text.startswith('{"type":"snapshot"')
