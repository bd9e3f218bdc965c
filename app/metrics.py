"""Prometheus metrics of one app instance (``GET /metrics``) and the event-loop lag probe.

Instruments live in a registry owned by the app, never in the library's global one, so
several apps (tests) can coexist in one process.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0)


class Metrics:
    """The server's instruments. ``render()`` produces the text exposition format."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.moves_accepted = Counter("gm_moves_accepted", "Moves durably accepted.", registry=r)
        self.store_commit_seconds = Histogram(
            "gm_store_commit_seconds",
            "Duration of one group commit of the history log.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.store_pending = Gauge(
            "gm_store_pending_writes", "Writes waiting for the history writer.", registry=r
        )
        self.loop_lag_seconds = Histogram(
            "gm_event_loop_lag_seconds",
            "How late the event loop ran a timer set 100 ms ahead.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.gc_pause_seconds = Histogram(
            "gm_gc_pause_seconds",
            "How long one pass of Python's cyclic garbage collector stopped the process.",
            ["generation"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.spectators = Gauge("gm_spectators", "Connected spectators.", registry=r)
        self.games_in_memory = Gauge(
            "gm_games_in_memory",
            "Games held in memory (every unfinished one, and recently used finished ones).",
            registry=r,
        )
        self.messages_sent = Counter(
            "gm_messages_sent", "Messages written to spectators.", registry=r
        )
        self.messages_dropped = Counter(
            "gm_messages_dropped",
            "Messages skipped for spectators that fell behind.",
            registry=r,
        )
        self.analysis_queue = Gauge(
            "gm_analysis_queue_depth",
            "Live positions waiting for their first evaluation.",
            registry=r,
        )
        self.positions_analysed = Counter(
            "gm_positions_analysed", "Positions whose analysis completed.", registry=r
        )
        self.connections = Gauge(
            "gm_connections", "Connections held (HTTP, streams and WebSockets).", registry=r
        )
        self.connections_refused = Counter(
            "gm_connections_refused",
            "Connections answered at once over a cap: total (503) or address (429).",
            ["cap"],
            registry=r,
        )
        self.connections_timed_out = Counter(
            "gm_connections_timed_out",
            "Connections closed for a late request: idle (nothing sent), header or body (408).",
            ["phase"],
            registry=r,
        )
        self._collectors: list[Callable[[], None]] = []

    def on_scrape(self, collect: Callable[[], None]) -> None:
        """Run ``collect`` before each rendering (to copy counters kept elsewhere)."""
        self._collectors.append(collect)

    def render(self) -> bytes:
        """The exposition text."""
        for collect in self._collectors:
            collect()
        return generate_latest(self.registry)


def collect_admission(metrics: Metrics, app_state: Any) -> None:
    """Copy the server's admission counts (``app_state.admission``, left there by
    app/server.py; absent under other servers) into ``metrics`` at each scrape."""
    copied: dict[str, int] = {}

    def collect() -> None:
        admission = getattr(app_state, "admission", None)
        if admission is None:
            return
        metrics.connections.set(admission.open)
        for counter, label, value, name in (
            (metrics.connections_refused, "total", admission.refused_full, "full"),
            (metrics.connections_refused, "address", admission.refused_address, "address"),
            (metrics.connections_timed_out, "idle", admission.closed_idle, "idle"),
            (metrics.connections_timed_out, "header", admission.timed_out_header, "header"),
            (metrics.connections_timed_out, "body", admission.timed_out_body, "body"),
        ):
            counter.labels(label).inc(value - copied.get(name, 0))
            copied[name] = value

    metrics.on_scrape(collect)


async def watch_loop_lag(metrics: Metrics, interval_s: float = 0.1) -> None:
    """Forever: sleep ``interval_s`` and record how late the loop woke up."""
    while True:
        started = time.perf_counter()
        await asyncio.sleep(interval_s)
        lag = time.perf_counter() - started - interval_s
        metrics.loop_lag_seconds.observe(max(0.0, lag))


def watch_gc(metrics: Metrics) -> Callable[[], None]:
    """Record each pass of the cyclic collector in ``metrics.gc_pause_seconds`` (every
    thread's: a pass stops them all); returns the call that stops recording."""
    started = 0.0
    pauses = {
        generation: metrics.gc_pause_seconds.labels(str(generation)) for generation in (0, 1, 2)
    }

    def observe(phase: str, info: dict[str, int]) -> None:
        nonlocal started
        if phase == "start":
            started = time.perf_counter()
        else:
            pauses[info["generation"]].observe(time.perf_counter() - started)

    gc.callbacks.append(observe)
    return lambda: gc.callbacks.remove(observe)


async def cancel_and_wait(task: asyncio.Task[None]) -> None:
    """Cancel a background task and wait until it has finished."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
