"""A real server whose disk fills up answers 503, exits non-zero for its supervisor, and
comes back from disk with everything it acknowledged: a subprocess with a file size limit
(EFBIG), and an in-process server whose store runs on a simulated disk that fills up
(SQLITE_FULL) under a move."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from app.__main__ import EXIT_STORE_FAILED
from tests.conftest import ROOT, ServerProcess, free_port, serve
from tests.workers.simulated_disk import RecordingDisk
from workers.store import Store

AUTH = {"Authorization": "Bearer operator-secret-token"}
GAME = {"white": {"name": "W" * 100}, "black": {"name": "B" * 100}, "clock": {"initial": 60}}
FILE_LIMIT_BYTES = 1_500_000


def _small_disk() -> None:
    """In the child: files may not grow past the limit, and growing one fails (EFBIG)
    instead of killing the process (SIGXFSZ ignored)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_LIMIT_BYTES, FILE_LIMIT_BYTES))


def test_a_full_disk_stops_the_server_and_a_restart_keeps_what_was_acknowledged(
    tmp_path: Path,
) -> None:
    """Writes past the disk's end get 503; the process exits with its store-failure status; restarted, it serves every game it acknowledged."""
    data = tmp_path / "data"
    port = free_port()
    env = {
        **os.environ,
        "GM_OPERATOR_TOKEN": "operator-secret-token",
        "GM_ANALYSIS": "0",
    }
    log = (tmp_path / "server.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "--port", str(port), "--data-dir", str(data)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
        preexec_fn=_small_disk,
    )
    log.close()
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        acknowledged = []
        status = 201
        for _ in range(5000):
            try:
                r = httpx.post(url + "/api/games", json=GAME, headers=AUTH, timeout=10)
            except httpx.TransportError:
                break
            status = r.status_code
            if status != 201:
                break
            acknowledged.append(r.json()["game"]["id"])
        assert status == 503
        assert r.json()["error"]["code"] == "unavailable"
        assert acknowledged
        assert proc.wait(30) == EXIT_STORE_FAILED
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "the history cannot be written" in (tmp_path / "server.log").read_text()
    restarted = ServerProcess(data)
    restarted.start()
    try:
        games = httpx.get(restarted.url + "/api/games?limit=500").json()["games"]
        # Newest first.
        assert [g["id"] for g in reversed(games)] == acknowledged
    finally:
        restarted.stop()


async def test_a_move_on_a_full_disk_is_refused_and_a_restart_keeps_the_acknowledged_ones(
    tmp_path: Path,
) -> None:
    """A move whose commit hits SQLITE_FULL answers 503 unavailable, so do later ones and /healthz; restarted with space back, the game has every acknowledged move and play goes on."""
    data = tmp_path / "data"
    disk = RecordingDisk()
    try:
        store = Store(data / "grandmaster.sqlite3", connect=disk.connect)
        async with serve(data, store=store) as live:
            game_id, tokens = await live.started_game()
            url = f"/api/games/{game_id}/moves"
            for ply, move in enumerate(["e4", "e5", "Nf3"]):
                side = tokens["white" if ply % 2 == 0 else "black"]
                r = await live.client.post(
                    url, json={"move": move, "ply": ply}, headers=live.auth(side)
                )
                assert r.status_code == 200, r.text
            disk.fill_after(0)
            for _ in range(2):
                r = await live.client.post(
                    url, json={"move": "Nc6", "ply": 3}, headers=live.auth(tokens["black"])
                )
                assert r.status_code == 503, r.text
                assert r.json()["error"]["code"] == "unavailable"
            assert not store.is_healthy
            assert (await live.client.get("/healthz")).status_code == 503
    finally:
        disk.unregister()
    async with serve(data) as live:
        game = (await live.client.get(f"/api/games/{game_id}")).json()
        assert [m["san"] for m in game["moves"]] == ["e4", "e5", "Nf3"]
        r = await live.client.post(
            url, json={"move": "Nc6", "ply": 3}, headers=live.auth(tokens["black"])
        )
        assert r.status_code == 200, r.text
