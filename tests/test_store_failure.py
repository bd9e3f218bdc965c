"""A real server whose disk fills up answers 503, exits non-zero for its supervisor, and
comes back from disk with everything it acknowledged."""

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
from tests.conftest import ROOT, ServerProcess, free_port

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
