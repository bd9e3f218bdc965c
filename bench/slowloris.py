"""Slow and idle clients against a real server: which it closes and when, and what a client
from another address sees meanwhile.

The server (``python -m app``, analysis off) is held by three kinds of connection, from
addresses other than the measuring client's, ``--held`` of each spread over several
127.x addresses (100 per address, under the per-address cap): *slow header* (a request
line, then one header line a second, never the blank line), *slow body* (a complete header
announcing 60,000 bytes, then one byte a second) and *idle* (connects, sends nothing). One
more address first fills its per-address cap with idle connections, then makes
``--over-cap`` more attempts, one after another: each should be answered at once. Meanwhile
a client on 127.0.0.2, in a process of its own, asks ``GET /healthz`` on a fresh connection
every 50 ms; its latency is reported for 5 s before the attack and while it lasts.

Two configurations: ``on`` (the server's defaults: header 10 s, body 60 s, 200 per
address) and ``off`` (deadlines of 10^6 s, no caps: the server as it was before
admission). Each kind's row says how many of its connections the server closed within the
run and after how long (median and the slowest).

    python bench/slowloris.py [--held 500] [--over-cap 300] [--configs on,off]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import resource
import socket
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import harness

HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"
SLOW_HEADER_START = b"GET /healthz HTTP/1.1\r\nHost: bench\r\n"
SLOW_BODY_HEADER = (
    b"POST /api/games HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
    b"Content-Length: 60000\r\n\r\n{"
)
PER_ADDRESS = 100
UNANSWERED = "no answer in 3 s"
# The defaults of app/settings.py (tests/app/test_settings.py checks the README states them).
DEFAULTS = {
    "GM_HEADER_TIMEOUT_S": "10",
    "GM_BODY_TIMEOUT_S": "60",
    "GM_MAX_CONNECTIONS_PER_IP": "200",
    "GM_MAX_CONNECTIONS": "30000",
}
OFF = {
    "GM_HEADER_TIMEOUT_S": "1000000",
    "GM_BODY_TIMEOUT_S": "1000000",
    "GM_MAX_CONNECTIONS_PER_IP": "0",
    "GM_MAX_CONNECTIONS": "0",
}


@dataclass
class Held:
    """What happened to one held connection: when the server closed it, what it answered."""

    kind: str
    closed_after_s: float | None = None
    answer: bytes = b""


@dataclass
class Run:
    """One configuration's observations."""

    held: list[Held] = field(default_factory=list)
    over_cap_ms: list[float] = field(default_factory=list)
    over_cap_statuses: dict[str, int] = field(default_factory=dict)
    baseline_ms: list[float] = field(default_factory=list)
    attack_ms: list[float] = field(default_factory=list)
    failures: int = 0


async def watch(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes (a reset counts as a close)."""
    data = b""
    try:
        while chunk := await reader.read(65536):
            data += chunk
    except ConnectionError:
        pass
    return data


async def hold(kind: str, source: str, port: int, until: float, out: Held) -> None:
    """Hold one connection of ``kind`` until the server closes it or ``until`` (loop time)."""
    loop = asyncio.get_running_loop()
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    opened = loop.time()
    if kind == "slow header":
        writer.write(SLOW_HEADER_START)
    elif kind == "slow body":
        writer.write(SLOW_BODY_HEADER)
    closed = asyncio.ensure_future(watch(reader))
    try:
        while loop.time() < until:
            done, _ = await asyncio.wait({closed}, timeout=min(1.0, until - loop.time()))
            if done:
                out.closed_after_s = loop.time() - opened
                out.answer = closed.result()
                return
            try:
                if kind == "slow header":
                    writer.write(b"X-Slow: 1\r\n")
                elif kind == "slow body":
                    writer.write(b" ")
            except ConnectionError:
                pass
    finally:
        closed.cancel()
        writer.close()


async def attempt(source: str, port: int, run: Run) -> None:
    """One connection over the per-address cap: how soon and how it is answered."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    try:
        answer = await asyncio.wait_for(watch(reader), 3.0)
    except TimeoutError:
        run.over_cap_statuses[UNANSWERED] = run.over_cap_statuses.get(UNANSWERED, 0) + 1
        return
    finally:
        writer.close()
    run.over_cap_ms.append((loop.time() - started) * 1000)
    status = answer.split(b" ", 2)[1].decode() if answer.startswith(b"HTTP/") else "closed"
    run.over_cap_statuses[status] = run.over_cap_statuses.get(status, 0) + 1


def sample(port: int, attacking: Any, stop: Any, out: Any) -> None:
    """In its own process (so that the attackers' loop does not delay it): ``GET /healthz``
    on a fresh connection from 127.0.0.2 every 50 ms until ``stop``; puts
    ``(baseline_ms, attack_ms, failures)`` on ``out``."""
    baseline: list[float] = []
    during: list[float] = []
    failures = 0
    while not stop.is_set():
        started = time.perf_counter()
        try:
            with socket.create_connection(
                ("127.0.0.1", port), timeout=10, source_address=("127.0.0.2", 0)
            ) as sock:
                sock.sendall(HEALTHZ)
                answer = b""
                while chunk := sock.recv(65536):
                    answer += chunk
        except OSError:
            failures += 1
            continue
        if not answer.startswith(b"HTTP/1.1 200"):
            failures += 1
        (during if attacking.is_set() else baseline).append((time.perf_counter() - started) * 1000)
        time.sleep(0.05)
    out.put((baseline, during, failures))


async def attack(port: int, held: int, over_cap: int, seconds: float, cap: int) -> Run:
    """The whole scenario against a server on ``port``."""
    loop = asyncio.get_running_loop()
    run = Run()
    attacking, stop, out = multiprocessing.Event(), multiprocessing.Event(), multiprocessing.Queue()
    sampler = multiprocessing.Process(target=sample, args=(port, attacking, stop, out))
    sampler.start()
    await asyncio.sleep(5.0)
    attacking.set()
    until = loop.time() + seconds
    tasks = []
    for group, kind in enumerate(("slow header", "slow body", "idle"), start=1):
        for i in range(held):
            source = f"127.0.{group}.{1 + i // PER_ADDRESS}"
            run.held.append(Held(kind))
            tasks.append(asyncio.create_task(hold(kind, source, port, until, run.held[-1])))
    # One address fills its cap (with idle connections), then tries more.
    filler = cap or PER_ADDRESS
    for _ in range(filler):
        run.held.append(Held("cap filler"))
        tasks.append(asyncio.create_task(hold("idle", "127.0.4.1", port, until, run.held[-1])))
    await asyncio.sleep(1.0)
    # One at a time: the time to the answer is the server's, not this loop's backlog. Once
    # one goes unanswered (no cap), the rest go together: their timing says nothing more.
    for left in range(over_cap, 0, -1):
        if run.over_cap_statuses.get(UNANSWERED):
            await asyncio.gather(*(attempt("127.0.4.1", port, run) for _ in range(left)))
            break
        await attempt("127.0.4.1", port, run)
    await asyncio.gather(*tasks)
    stop.set()
    run.baseline_ms, run.attack_ms, run.failures = await loop.run_in_executor(None, out.get)
    sampler.join()
    return run


def row(name: str, run: Run, kind: str) -> str:
    items = [h for h in run.held if h.kind == kind]
    closed = sorted(h.closed_after_s for h in items if h.closed_after_s is not None)
    answers = {h.answer.split(b" ", 2)[1].decode() for h in items if h.answer.startswith(b"HTTP/")}
    when = f"{statistics.median(closed):.1f} / {closed[-1]:.1f}" if closed else "-"
    return (
        f"| {name} | {kind} | {len(items)} | {len(closed)} | {when} | "
        f"{', '.join(sorted(answers)) or 'none'} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--held", type=int, default=500, help="connections of each kind")
    parser.add_argument("--over-cap", type=int, default=300)
    parser.add_argument("--configs", default="on,off")
    parser.add_argument("--header-timeout-s", default=DEFAULTS["GM_HEADER_TIMEOUT_S"])
    parser.add_argument("--body-timeout-s", default=DEFAULTS["GM_BODY_TIMEOUT_S"])
    parser.add_argument(
        "--seconds", type=float, default=0, help="attack length (default: body timeout + 10 s)"
    )
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    on = {
        **DEFAULTS,
        "GM_HEADER_TIMEOUT_S": args.header_timeout_s,
        "GM_BODY_TIMEOUT_S": args.body_timeout_s,
    }
    results: list[tuple[str, Run]] = []
    for name in args.configs.split(","):
        env = {"GM_ANALYSIS": "0", "GM_LOG_LEVEL": "warning", **(on if name == "on" else OFF)}
        seconds = args.seconds or (float(args.body_timeout_s) + 10 if name == "on" else 20)
        cap = int(env["GM_MAX_CONNECTIONS_PER_IP"])
        with tempfile.TemporaryDirectory() as tmp:
            server = harness.AppServer(Path(tmp) / "data", Path(tmp) / "server.log", env)
            with server:
                run = asyncio.run(attack(server.port, args.held, args.over_cap, seconds, cap))
                server.check_running()
        results.append((name, run))
        print(f"{name}: done ({seconds:.0f} s)", flush=True)
    print()
    print("| config | held | opened | closed by the server | after s (median / last) | answer |")
    print("|---|---|---:|---:|---|---|")
    for name, run in results:
        for kind in ("slow header", "slow body", "idle", "cap filler"):
            print(row(name, run, kind))
    print()
    print("| config | over-cap attempts | answers | answered after ms (median / p99) |")
    print("|---|---:|---|---|")
    for name, run in results:
        ms = sorted(run.over_cap_ms)
        when = f"{statistics.median(ms):.1f} / {harness.percentile(ms, 99):.1f}" if ms else "-"
        answers = ", ".join(f"{k}: {v}" for k, v in sorted(run.over_cap_statuses.items()))
        print(f"| {name} | {args.over_cap} | {answers} | {when} |")
    print()
    print("| config | /healthz before: n, p50 / p99 ms | during: n, p50 / p99 ms | failed |")
    print("|---|---|---|---:|")
    for name, run in results:
        cells = []
        for values in (sorted(run.baseline_ms), sorted(run.attack_ms)):
            cells.append(
                f"{len(values)}, {harness.percentile(values, 50):.1f} / "
                f"{harness.percentile(values, 99):.1f}"
                if values
                else "-"
            )
        print(f"| {name} | {cells[0]} | {cells[1]} | {run.failures} |")
    print()
    print(harness.machine())


if __name__ == "__main__":
    main()
