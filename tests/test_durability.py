"""Durability of the history: a real server subprocess killed with SIGKILL mid-stream.

Every trial drives several games at once (so group commit batches writes of different
games), kills the server at a random instant, restarts it on the same data directory and
checks that every acknowledged move survived, in order, with nothing invented. Trials are
seeded by their number, so a failing trial replays the same games and kill delay.

The module shares one server process and data directory: each trial's restarted server
serves the next trial (which uses only its own new games), so a trial costs one server
start rather than two, and every restart also rebuilds the games of earlier trials.
"""

from __future__ import annotations

import io
import json
import os
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import chess
import chess.pgn
import httpx
import pytest

from tests.conftest import ServerProcess

OPERATOR = {"Authorization": "Bearer operator-secret-token"}
# Each trial is a kill at a random moment; `make test-full` (GM_TEST_FULL=1) runs more of them.
TRIALS = 60 if os.environ.get("GM_TEST_FULL") == "1" else 8
GAMES_PER_TRIAL = 4
PLAN_PLIES = 300
# The drivers stop this many plies short of the plan so a next move always exists.
RESERVED_PLIES = 2
KILL_DELAY_S = (0.05, 0.6)
JOIN_TIMEOUT_S = 15.0
# Polls wait for a condition that a loaded machine only delays, never prevents.
POLL_TIMEOUT_S = 30.0
POLL_INTERVAL_S = 0.05


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server subprocess for the module; tests (re)start it with :func:`running`."""
    proc = ServerProcess(
        tmp_path_factory.mktemp("durability") / "data",
        # No clock checkpoints during the trials, so that seq counts start, moves and end only.
        env={"GM_CLOCK_CHECKPOINT_S": "3600"},
    )
    try:
        yield proc
    finally:
        proc.stop()


# Clock checkpoint interval of the clock test's server.
CHECKPOINT_S = 0.5


def running(server: ServerProcess) -> ServerProcess:
    """The shared server, started first when it is not running (first test, or a failure)."""
    if server.proc is None or server.proc.poll() is not None:
        server.start()
    return server


@dataclass(frozen=True, slots=True)
class Plan:
    """A predetermined legal game that does not end: the UCI moves and the text to send."""

    uci: tuple[str, ...]
    texts: tuple[str, ...]


def random_plan(rng: random.Random, plies: int) -> Plan:
    """A random legal game of ``plies`` half-moves none of which ends the game by rule."""
    while True:
        board = chess.Board()
        uci: list[str] = []
        texts: list[str] = []
        while len(uci) < plies:
            moves = list(board.legal_moves)
            rng.shuffle(moves)
            for move in moves:
                san = board.san(move)
                board.push(move)
                if board.outcome(claim_draw=False) is None:
                    break
                board.pop()
            else:
                break  # every legal move ends the game here: draw a new game
            uci.append(move.uci())
            # The contract accepts UCI or SAN; send both kinds, retries included.
            texts.append(san if rng.random() < 0.5 else move.uci())
        if len(uci) == plies:
            return Plan(tuple(uci), tuple(texts))


def create_started_game(client: httpx.Client, initial_s: int = 300, increment_s: int = 0) -> str:
    """Create and start a game as operator; returns its id."""
    body = {
        "white": {"name": "White", "rating": 2700},
        "black": {"name": "Black", "rating": 2650},
        "clock": {"initial": initial_s, "increment": increment_s},
    }
    r = client.post("/api/games", json=body)
    assert r.status_code == 201, r.text
    game_id: str = r.json()["game"]["id"]
    r = client.post(f"/api/games/{game_id}/start")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "started"
    return game_id


def move_ucis(game: dict[str, object]) -> list[str]:
    """The UCI moves of a ``<Game>`` body."""
    moves = game["moves"]
    assert isinstance(moves, list)
    return [m["uci"] for m in moves]


def read_pgn_moves(client: httpx.Client, game_id: str) -> list[str]:
    """The game's PGN export read back with python-chess, as UCI moves."""
    r = client.get(f"/api/games/{game_id}/pgn")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/x-chess-pgn")
    parsed = chess.pgn.read_game(io.StringIO(r.text))
    assert parsed is not None
    assert not parsed.errors, parsed.errors
    assert all(node.clock() is not None for node in parsed.mainline()), "a move lacks [%clk]"
    return [m.uci() for m in parsed.mainline_moves()]


@dataclass
class Driver:
    """One client thread playing one game's plan, ply by ply, until the server dies."""

    url: str
    game_id: str
    plan: Plan
    first_ack: threading.Event
    acked: list[str] = field(default_factory=list)
    in_flight: int | None = None
    errors: list[str] = field(default_factory=list)

    def run(self) -> None:
        """Send each planned move with its ``ply``; stop at the first transport error."""
        try:
            self._play()
        except Exception as exc:  # a dying thread would only warn: fail the test instead
            self.errors.append(f"driver crashed: {exc!r}")

    def _play(self) -> None:
        with httpx.Client(base_url=self.url, headers=OPERATOR, timeout=10) as client:
            for ply in range(len(self.plan.uci) - RESERVED_PLIES):
                self.in_flight = ply
                try:
                    r = client.post(
                        f"/api/games/{self.game_id}/moves",
                        json={"move": self.plan.texts[ply], "ply": ply},
                    )
                except httpx.TransportError:
                    return  # killed: this move may or may not be stored
                self.in_flight = None
                if r.status_code != 200:
                    self.errors.append(f"ply {ply}: {r.status_code} {r.text}")
                    return
                self._check_ack(ply, r.json())
                self.acked.append(self.plan.uci[ply])
                self.first_ack.set()

    def _check_ack(self, ply: int, game: dict[str, object]) -> None:
        expected = list(self.plan.uci[: ply + 1])
        if game["ply"] != ply + 1 or move_ucis(game) != expected:
            self.errors.append(f"ply {ply}: acknowledged {move_ucis(game)}, planned {expected}")


def drain_stderr(server: ServerProcess) -> str:
    """Everything the (dead) server process wrote to stderr."""
    assert server.proc is not None and server.proc.poll() is not None
    return server.log_since(server.log_offset)


def check_recovered(client: httpx.Client, driver: Driver) -> None:
    """After the restart: the acknowledged moves are all there, and the game goes on."""
    game_id, plan, acked = driver.game_id, driver.plan, driver.acked
    r = client.get(f"/api/games/{game_id}")
    assert r.status_code == 200, r.text
    game = r.json()
    stored = move_ucis(game)
    context = (
        f"game {game_id}: acked {len(acked)}, in flight {driver.in_flight}, stored {len(stored)}"
    )
    assert stored[: len(acked)] == acked, f"{context}: an acknowledged move is missing"
    # Beyond the acknowledged moves there can only be the one move that was in flight.
    extra = 1 if driver.in_flight == len(acked) else 0
    assert len(stored) <= len(acked) + extra, context
    assert stored == list(plan.uci[: len(stored)]), context
    n = len(stored)
    assert game["status"] == "started", context
    assert game["result"] == "*", context
    assert game["ply"] == n, context
    assert game["seq"] == 1 + n, context
    assert game["clock"]["running"] == ("white" if n % 2 == 0 else "black"), context
    assert read_pgn_moves(client, game_id) == stored, context

    url = f"/api/games/{game_id}/moves"
    if acked:
        # Re-sending the last acknowledged move at its old ply is a safe retry.
        k = len(acked) - 1
        r = client.post(url, json={"move": plan.texts[k], "ply": k})
        assert r.status_code == 200, f"{context}: retry {r.status_code} {r.text}"
        assert r.json()["ply"] == n, context
        assert r.json()["seq"] == 1 + n, context

    r = client.post(url, json={"move": plan.texts[n], "ply": n})
    assert r.status_code == 200, f"{context}: next move {r.status_code} {r.text}"
    game = r.json()
    assert move_ucis(game) == list(plan.uci[: n + 1]), context
    assert game["ply"] == n + 1, context
    assert game["seq"] == 2 + n, context


@pytest.mark.parametrize("trial", range(TRIALS))
def test_acknowledged_moves_survive_sigkill(server: ServerProcess, trial: int) -> None:
    """Every move acknowledged before a SIGKILL is stored in order after a restart, and play resumes."""
    rng = random.Random(trial)
    plans = [random_plan(rng, PLAN_PLIES) for _ in range(GAMES_PER_TRIAL)]
    kill_delay_s = rng.uniform(*KILL_DELAY_S)

    running(server)
    with httpx.Client(base_url=server.url, headers=OPERATOR, timeout=10) as client:
        game_ids = [create_started_game(client) for _ in plans]
    first_ack = threading.Event()
    drivers = [
        Driver(server.url, game_id, plan, first_ack)
        for game_id, plan in zip(game_ids, plans, strict=True)
    ]
    threads = [threading.Thread(target=d.run, daemon=True) for d in drivers]
    for thread in threads:
        thread.start()
    try:
        assert first_ack.wait(10), "no move was acknowledged"
        time.sleep(kill_delay_s)
    finally:
        server.kill()
    for thread in threads:
        thread.join(JOIN_TIMEOUT_S)
        assert not thread.is_alive(), "a client thread hung after the kill"
    stderr = drain_stderr(server)
    assert "Traceback" not in stderr, stderr
    for driver in drivers:
        assert not driver.errors, driver.errors

    server.start()
    with httpx.Client(base_url=server.url, headers=OPERATOR, timeout=10) as client:
        for driver in drivers:
            check_recovered(client, driver)


def poll_game(client: httpx.Client, game_id: str, *, status: str) -> dict[str, object]:
    """GET the game until it has ``status`` (at most POLL_TIMEOUT_S); returns the last body."""
    deadline = time.monotonic() + POLL_TIMEOUT_S
    while True:
        r = client.get(f"/api/games/{game_id}")
        assert r.status_code == 200, r.text
        game: dict[str, object] = r.json()
        if game["status"] == status or time.monotonic() >= deadline:
            return game
        time.sleep(POLL_INTERVAL_S)


def assert_white_flagged(game: dict[str, object]) -> None:
    """The game is over: White lost on time, with its clock at zero and stopped."""
    assert game["status"] == "finished", game
    assert game["termination"] == "timeout", game
    assert game["result"] == "0-1", game
    assert game["seq"] == 2, game  # start, end
    assert game["clock"] == {"white_ms": 0, "black_ms": 1000, "running": None}, game


def test_flag_falls_on_the_server_timer(server: ServerProcess) -> None:
    """A started game left alone ends on time by the server's own timer, with no request to trigger it."""
    running(server)
    with httpx.Client(base_url=server.url, headers=OPERATOR, timeout=10) as client:
        game_id = create_started_game(client, initial_s=1)
        # GET only reads the state: it never records a flag fall itself.
        assert_white_flagged(poll_game(client, game_id, status="finished"))
        headers = chess.pgn.read_headers(io.StringIO(client.get(f"/api/games/{game_id}/pgn").text))
        assert headers is not None
        assert headers["Result"] == "0-1"
        assert headers["Termination"] == "Time forfeit"


def test_flag_timer_is_rearmed_after_sigkill(server: ServerProcess) -> None:
    """A game whose clock was running at a SIGKILL still flags on its own after the restart."""
    running(server)
    with httpx.Client(base_url=server.url, headers=OPERATOR, timeout=10) as client:
        finished_id = create_started_game(client, initial_s=1)
        assert_white_flagged(poll_game(client, finished_id, status="finished"))
        running_id = create_started_game(client, initial_s=1)
    server.kill()

    server.start()
    with httpx.Client(base_url=server.url, headers=OPERATOR, timeout=10) as client:
        assert_white_flagged(client.get(f"/api/games/{finished_id}").json())
        assert_white_flagged(poll_game(client, running_id, status="finished"))


@pytest.mark.parametrize("shutdown", ["stop", "kill"])
def test_running_clock_does_not_lose_the_downtime(tmp_path: Path, shutdown: str) -> None:
    """The downtime is charged to nobody, and the clock resumes from its last recorded time.

    A clean stop records the running clock as it stops; after a SIGKILL the clock resumes
    from the last periodic checkpoint, so a crash gives back at most the time since then.
    """
    server = ServerProcess(tmp_path / "data", env={"GM_CLOCK_CHECKPOINT_S": str(CHECKPOINT_S)})
    server.start()
    try:
        check_downtime_not_charged(server, shutdown, downtime_s=1.0)
    finally:
        server.stop()


def wait_for_seq(client: httpx.Client, game_id: str, seq: int) -> None:
    """GET the game until its ``seq`` reaches ``seq``; fail after a deadline no load reaches."""
    deadline = time.monotonic() + POLL_TIMEOUT_S
    while client.get(f"/api/games/{game_id}").json()["seq"] < seq:
        assert time.monotonic() < deadline, f"game {game_id} never reached seq {seq}"
        time.sleep(POLL_INTERVAL_S)


def recorded_events(client: httpx.Client, game_id: str, since: int, until: int) -> list[Any]:
    """The game's stored events ``since < seq <= until``, replayed by its NDJSON stream."""
    events: list[Any] = []
    if until <= since:
        return events
    with client.stream("GET", f"/api/stream/games/{game_id}", params={"since": since}) as r:
        assert r.status_code == 200, r.read()
        for line in r.iter_lines():
            if line.strip():
                event = json.loads(line)
                assert event["type"] != "snapshot", "the replay buffer lost the events"
                if "seq" in event:
                    events.append(event)
                    if event["seq"] >= until:
                        return events
    raise AssertionError("the stream ended early")


def check_downtime_not_charged(server: ServerProcess, shutdown: str, downtime_s: float) -> None:
    """Play two moves, let White think, stop or kill, wait, restart, compare White's time."""
    with httpx.Client(base_url=server.url, headers=OPERATOR, timeout=10) as client:
        game_id = create_started_game(client)
        for ply, move in enumerate(["e2e4", "e7e5"]):
            r = client.post(f"/api/games/{game_id}/moves", json={"move": move, "ply": ply})
            assert r.status_code == 200, r.text
        if shutdown == "kill":
            # A SIGKILL keeps only what was recorded: wait until a checkpoint was (seq 4).
            wait_for_seq(client, game_id, 4)
        up_since = time.monotonic()
        before = client.get(f"/api/games/{game_id}").json()["clock"]
    assert before["running"] == "white"
    getattr(server, shutdown)()
    down_since = time.monotonic()
    time.sleep(downtime_s)

    up_again = time.monotonic()
    server.start()
    with httpx.Client(base_url=server.url, headers=OPERATOR, timeout=10) as client:
        after_game = client.get(f"/api/games/{game_id}").json()
        done = time.monotonic()
        # The start and the two moves are seq 1 to 3: what follows was recorded by the clock.
        recorded = recorded_events(client, game_id, 3, after_game["seq"])
    after = after_game["clock"]
    assert after["running"] == "white"
    assert after["black_ms"] == before["black_ms"]
    # White may be charged at most the time a server was up (process start included).
    uptime_ms = int(((down_since - up_since) + (done - up_again)) * 1000)
    assert before["white_ms"] - after["white_ms"] <= uptime_ms + 100, (before, after, uptime_ms)
    # The clock resumed from its last record, charged only since the restart (1 ms rounding).
    assert recorded and recorded[-1]["type"] == "clock", recorded
    last = recorded[-1]["clock"]
    since_restart_ms = int((done - up_again) * 1000) + 1
    assert 0 <= last["white_ms"] - after["white_ms"] <= since_restart_ms, (last, after)
    if shutdown == "stop":
        # A clean stop records the clock as it stops: nothing is given back.
        assert last["white_ms"] <= before["white_ms"], (before, last)
