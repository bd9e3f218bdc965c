"""The engine's UCI options: what `uci` declares and what `setoption` may change.

`Hash` bounds the transposition table a game keeps from move to move, `Threads` is declared
with its only supported value (the search is single-threaded Python), `Move Overhead` is
the time kept back on every move for the GUI's and the operating system's latency, and
`MultiPV` is how many best lines a search reports (each costs about one more search).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Final

from engine.uci.commands import UciError

__all__ = ["BYTES_PER_ENTRY", "Options", "apply_option", "option_lines"]

BYTES_PER_ENTRY: Final = 16
"""Memory of one transposition-table slot: its key and its packed entry, a machine word each
(`engine.search.transposition.TranspositionTable`, which rounds its size down to a power of
two)."""

# name -> (default, min, max); every option is a spin.
_SPINS: Final = {
    "Hash": (64, 1, 4096),
    "Threads": (1, 1, 1),
    "Move Overhead": (30, 0, 5000),
    "MultiPV": (1, 1, 256),
}


@dataclass(frozen=True, slots=True)
class Options:
    """Current option values: `hash_mb` megabytes of table, `move_overhead_ms` per move,
    `multipv` lines to search and report."""

    hash_mb: int = _SPINS["Hash"][0]
    threads: int = _SPINS["Threads"][0]
    move_overhead_ms: int = _SPINS["Move Overhead"][0]
    multipv: int = _SPINS["MultiPV"][0]

    @property
    def table_entries(self) -> int:
        """How many transposition-table entries fit in `hash_mb`."""
        return max(self.hash_mb * (1 << 20) // BYTES_PER_ENTRY, 2)


_FIELDS: Final = {
    "hash": "hash_mb",
    "threads": "threads",
    "move overhead": "move_overhead_ms",
    "multipv": "multipv",
}


def apply_option(options: Options, name: str, value: str | None) -> Options:
    """Return `options` with `name` (case-insensitive, as UCI allows) set to `value`.

    Raises UciError for an unknown option, a missing or non-integer value, or one out of range;
    `options` is then unchanged (it is immutable).
    """
    canonical = next((known for known in _SPINS if known.lower() == name.lower()), None)
    if canonical is None:
        raise UciError(f"unknown option {name!r}")
    _, low, high = _SPINS[canonical]
    try:
        number = int(value or "")
    except ValueError:
        raise UciError(f"option {canonical} needs an integer value, got {value!r}") from None
    if not low <= number <= high:
        raise UciError(f"option {canonical} must be within {low}..{high}, got {number}")
    return replace(options, **{_FIELDS[canonical.lower()]: number})


def option_lines() -> list[str]:
    """The `option ...` lines of the answer to `uci`."""
    return [
        f"option name {name} type spin default {default} min {low} max {high}"
        for name, (default, low, high) in _SPINS.items()
    ]
