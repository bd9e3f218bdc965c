"""Chess clocks with Fischer increment, as immutable values.

Time is always passed in as ``now_ms`` (any monotonic millisecond counter chosen by the
caller); this module never reads a clock. A side's remaining time may become zero or
negative; whether that is a flag fall is the caller's decision (relay games never flag).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import chess

from engine.rules.wire import ClockJSON, color_name


@dataclass(frozen=True, slots=True)
class TimeControl:
    """Initial time and Fischer increment, both in milliseconds."""

    initial_ms: int
    increment_ms: int

    @classmethod
    def from_seconds(cls, initial_s: int, increment_s: int) -> TimeControl:
        """Build from whole seconds, as the API and PGN ``TimeControl`` express it."""
        return cls(initial_ms=initial_s * 1000, increment_ms=increment_s * 1000)

    @property
    def pgn_tag(self) -> str:
        """The PGN ``[TimeControl]`` value, ``"5400+30"``."""
        return f"{self.initial_ms // 1000}+{self.increment_ms // 1000}"


@dataclass(frozen=True, slots=True)
class Clock:
    """Both sides' remaining time; ``running`` counts down from ``since_ms``.

    ``white_ms``/``black_ms`` are the times at ``since_ms``: the running side's live time is
    ``remaining_ms(side, now_ms)``.
    """

    white_ms: int
    black_ms: int
    running: chess.Color | None = None
    since_ms: int = 0

    @classmethod
    def from_control(cls, control: TimeControl) -> Clock:
        """A stopped clock with the initial time on both sides."""
        return cls(white_ms=control.initial_ms, black_ms=control.initial_ms)

    def stored_ms(self, color: chess.Color) -> int:
        """The time recorded for ``color`` at ``since_ms`` (no running time deducted)."""
        return self.white_ms if color == chess.WHITE else self.black_ms

    def remaining_ms(self, color: chess.Color, now_ms: int) -> int:
        """Live remaining time of ``color`` at ``now_ms``; may be zero or negative."""
        stored = self.stored_ms(color)
        if self.running == color:
            return stored - max(0, now_ms - self.since_ms)
        return stored

    def deadline_ms(self) -> int | None:
        """The instant the running side's time reaches zero, or None when stopped."""
        if self.running is None:
            return None
        return self.since_ms + self.stored_ms(self.running)

    def is_flagged(self, now_ms: int) -> bool:
        """Whether the running side has no time left at ``now_ms``."""
        return self.running is not None and self.remaining_ms(self.running, now_ms) <= 0

    def start(self, color: chess.Color, now_ms: int) -> Clock:
        """Start ``color``'s time at ``now_ms``; the other side's time is untouched."""
        return replace(self, running=color, since_ms=now_ms)

    def stop(self, now_ms: int) -> Clock:
        """Charge the running side its elapsed time (never below zero) and stop."""
        if self.running is None:
            return self
        left = max(0, self.remaining_ms(self.running, now_ms))
        return Clock(**self._fields(self.running, left), running=None, since_ms=now_ms)

    def press(self, now_ms: int, increment_ms: int, reported_ms: int | None = None) -> Clock:
        """The running side completes a move at ``now_ms``: charge, add increment, switch.

        ``reported_ms`` (relay games) replaces the computed time of the mover with the
        time the board's clock showed after the move, increment included.
        """
        if self.running is None:
            raise ValueError("press() on a stopped clock")
        mover = self.running
        if reported_ms is None:
            left = max(0, self.remaining_ms(mover, now_ms)) + increment_ms
        else:
            left = reported_ms
        return Clock(**self._fields(mover, left), running=not mover, since_ms=now_ms)

    def to_json(self, now_ms: int) -> ClockJSON:
        """Live view at ``now_ms``: remaining times clamped at zero and who is running."""
        return {
            "white_ms": max(0, self.remaining_ms(chess.WHITE, now_ms)),
            "black_ms": max(0, self.remaining_ms(chess.BLACK, now_ms)),
            "running": None if self.running is None else color_name(self.running),
        }

    def _fields(self, color: chess.Color, ms: int) -> dict[str, int]:
        if color == chess.WHITE:
            return {"white_ms": ms, "black_ms": self.black_ms}
        return {"white_ms": self.white_ms, "black_ms": ms}
