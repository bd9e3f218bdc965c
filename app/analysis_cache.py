"""Evaluations by position, shared by every game and the background lane."""

from __future__ import annotations

from collections import OrderedDict

from engine.rules.wire import EvalJSON


def position_key(fen: str) -> str:
    """The FEN without move counters: equal positions share evaluations."""
    return " ".join(fen.split()[:4])


class EvalCache:
    """Deepest known evaluation per position, least recently used evicted first."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._entries: OrderedDict[str, EvalJSON] = OrderedDict()

    def get(self, key: str) -> EvalJSON | None:
        """The cached evaluation (refreshing its recency) or None."""
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def put(self, key: str, evaluation: EvalJSON) -> None:
        """Keep ``evaluation`` unless a deeper one is already cached."""
        current = self._entries.get(key)
        if current is not None and current["depth"] > evaluation["depth"]:
            self._entries.move_to_end(key)
            return
        self._entries[key] = evaluation
        self._entries.move_to_end(key)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
