"""Tests for engine.uci.options: the declared options and `setoption`."""

from __future__ import annotations

import pytest

from engine.uci.commands import UciError
from engine.uci.options import Options, apply_option, option_lines


def test_declared_options() -> None:
    """`uci` declares Hash, Threads (only 1), Move Overhead and MultiPV as spins with their
    bounds."""
    assert option_lines() == [
        "option name Hash type spin default 64 min 1 max 4096",
        "option name Threads type spin default 1 min 1 max 1",
        "option name Move Overhead type spin default 30 min 0 max 5000",
        "option name MultiPV type spin default 1 min 1 max 256",
    ]


def test_set_options_case_insensitively() -> None:
    """Option names match whatever their case; the value is an integer."""
    options = apply_option(Options(), "hash", "128")
    options = apply_option(options, "MOVE OVERHEAD", "10")
    assert options == Options(hash_mb=128, threads=1, move_overhead_ms=10)
    assert options.table_entries == 8_388_608  # 128 MB at 16 bytes a slot


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("Ponder", "true", "unknown option"),
        ("Hash", None, "integer"),
        ("Hash", "big", "integer"),
        ("Hash", "0", r"1\.\.4096"),
        ("Threads", "2", r"1\.\.1"),
        ("Move Overhead", "-1", r"0\.\.5000"),
    ],
)
def test_bad_options_are_refused(name: str, value: str | None, message: str) -> None:
    """An unknown option or a value that is not an integer in range raises UciError."""
    with pytest.raises(UciError, match=message):
        apply_option(Options(), name, value)
