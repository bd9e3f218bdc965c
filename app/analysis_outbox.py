"""One game's outgoing evaluations, coalesced (see :class:`Outbox`)."""

from __future__ import annotations

import asyncio

from engine.rules.wire import EvalJSON


class Outbox:
    """One game's outgoing evaluations, at most one per ``interval_s`` for a position.

    Sans-I/O: the caller passes the time in (seconds, any monotonic clock). The first
    evaluation of a new position (``ply``) is due at once; a deeper one of the same
    position is due ``interval_s`` after the previous send; an evaluation offered before
    the pending one went out replaces it.
    """

    __slots__ = ("_interval_s", "_last_sent_ply", "_last_sent_s", "pending", "task")

    def __init__(self, interval_s: float) -> None:
        self._interval_s = interval_s
        self._last_sent_s = 0.0
        self._last_sent_ply = -1
        self.pending: EvalJSON | None = None
        # The task sending this game's evaluations, owned by the service.
        self.task: asyncio.Task[None] | None = None

    def offer(self, evaluation: EvalJSON) -> None:
        """Queue ``evaluation`` in place of any unsent one."""
        self.pending = evaluation

    def new_position(self) -> None:
        """The game moved to another position (perhaps at the same ply, after a
        correction): drop the unsent evaluation, and send the next one at once."""
        self.pending = None
        self._last_sent_ply = -1

    def wait_s(self, now_s: float) -> float:
        """Seconds until the pending evaluation is due (0 when it is due or none is pending)."""
        if self.pending is None or self.pending["ply"] != self._last_sent_ply:
            return 0.0
        return max(0.0, self._last_sent_s + self._interval_s - now_s)

    def take(self, now_s: float) -> EvalJSON | None:
        """The pending evaluation if it is due at ``now_s`` (marking it sent), else None."""
        evaluation = self.pending
        if evaluation is None or self.wait_s(now_s) > 0:
            return None
        self.pending = None
        self._last_sent_s = now_s
        self._last_sent_ply = evaluation["ply"]
        return evaluation
