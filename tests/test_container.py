"""The Docker image's process tree: PID 1 must reap the orphans that killed workers leave.

In a container the image's ENTRYPOINT (else its CMD, the server) is PID 1, and every
process whose parent dies is re-parented to it: the engine process of an analysis worker
that was killed is one. Only an init waits for such orphans; Python as PID 1 never does, so
they stay zombies. Without Docker at hand, the test runs the Dockerfile's ENTRYPOINT with the
server as its command as PID 1 of a new PID namespace (``unshare``), as Docker does.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, free_port
from tests.workers.test_analysis_pool import stockfish_or_skip


def dockerfile_instruction(name: str) -> list[str]:
    """The exec form (a JSON array) of the Dockerfile's last ``name`` instruction, or []."""
    found: list[str] = []
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.startswith(name + " "):
            found = json.loads(line[len(name) :].strip())
    return found


def children() -> dict[int, list[int]]:
    """Every process's children, from /proc."""
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def descendants(pid: int) -> list[int]:
    """``pid``'s descendants, now."""
    tree = children()
    found: list[int] = []
    stack = [pid]
    while stack:
        for child in tree.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def comm(pid: int) -> str:
    """The process's command name ("" when it is gone)."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except (FileNotFoundError, ProcessLookupError):
        return ""


def state(pid: int) -> str:
    """The process's state letter (``Z`` for a zombie), "" when it is gone (reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return ""
    return stat.rsplit(")", 1)[1].split()[0]


def parent(pid: int) -> int:
    """The process's parent id (0 when it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return 0
    return int(stat.rsplit(")", 1)[1].split()[1])


def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll ``predicate`` every 50 ms; fail the test with ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(what)
        time.sleep(0.05)


def unshare_or_skip() -> list[str]:
    """The command prefix for a new PID namespace; skip where namespaces are not allowed."""
    command = ["unshare", "--pid", "--fork", "--mount-proc"]
    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) is missing")
    if subprocess.run([*command, "true"], capture_output=True).returncode != 0:
        pytest.skip("this machine does not allow new PID namespaces")
    return command


@pytest.fixture
def pid_one(tmp_path: Path) -> Iterator[Callable[[list[str], dict[str, str]], int]]:
    """Runs a command as PID 1 of a new PID namespace; gives the host pid of that PID 1."""
    started: list[subprocess.Popen[bytes]] = []
    prefix = unshare_or_skip()

    def run(command: list[str], env: dict[str, str]) -> int:
        log = (tmp_path / "pid1.log").open("ab")
        proc = subprocess.Popen(
            [*prefix, *command],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        log.close()
        started.append(proc)
        wait_until(lambda: bool(children().get(proc.pid)), 10, "the namespace did not start")
        return children()[proc.pid][0]

    yield run
    for proc in started:
        # SIGTERM to the namespace's PID 1 (an init passes it on to the server); when it
        # exits the kernel kills everything else in the namespace.
        for pid in children().get(proc.pid, []):
            os.kill(pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def test_the_image_reaps_a_killed_workers_engine(
    tmp_path: Path, pid_one: Callable[[list[str], dict[str, str]], int]
) -> None:
    """As the image runs it, a SIGKILLed worker's orphaned Stockfish is reaped, not a zombie."""
    entrypoint = dockerfile_instruction("ENTRYPOINT")
    if entrypoint and shutil.which(entrypoint[0]) is None:
        reason = f"the image's init {entrypoint[0]} is not installed here (make system-deps)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    assert dockerfile_instruction("CMD") == ["python", "-m", "app"]
    port = free_port()
    init = pid_one(
        [*entrypoint, sys.executable, "-m", "app"],
        {
            "GM_PORT": str(port),
            "GM_DATA_DIR": str(tmp_path / "data"),
            "GM_OPERATOR_TOKEN": "operator-secret-token",
            "GM_ANALYSIS": "1",
            "GM_ANALYSIS_PROCESSES": "1",
            "GM_ENGINE": f"uci:{stockfish_or_skip()}",
        },
    )

    def healthy() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    wait_until(healthy, 60, "the server did not become healthy")
    engines = [pid for pid in descendants(init) if comm(pid) == "stockfish"]
    assert len(engines) == 1
    [engine] = engines
    worker = parent(engine)
    os.kill(worker, signal.SIGKILL)
    # The engine reads end of input, exits, and is re-parented to PID 1: an init reaps it.
    wait_until(lambda: state(engine) in {"", "Z"}, 20, "the engine did not exit after its worker")
    wait_until(lambda: state(engine) == "", 20, f"the engine is a zombie of {comm(init)!r}")
    # The server replaced the worker (and its engine) meanwhile.
    wait_until(
        lambda: any(comm(p) == "stockfish" for p in descendants(init)),
        60,
        "the worker was not replaced",
    )
    assert healthy()
