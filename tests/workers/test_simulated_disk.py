"""The crash model of the simulated disk the power-loss tests use: what a sync made
durable always survives, what came after it may be lost, kept, reordered or torn at a
sector, and a delete is undone unless a sync followed it."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest

from tests.workers.simulated_disk import SECTOR_BYTES, Delete, Op, RecordingDisk, Sync, Write

SEEDS = 300


@pytest.fixture
def disk() -> Iterator[RecordingDisk]:
    """A recording disk whose operations the test sets itself."""
    d = RecordingDisk()
    try:
        yield d
    finally:
        d.unregister()


def _images(disk: RecordingDisk, ops: list[Op]) -> list[dict[str, bytes]]:
    disk.ops = ops
    return [disk.crash_image(len(ops), random.Random(seed)) for seed in range(SEEDS)]


def test_synced_writes_survive_and_later_ones_may_be_lost_kept_or_torn(disk: RecordingDisk) -> None:
    """A synced write is in every image; an unsynced one over it is in some, missing from others, and torn only at sector boundaries of the file."""
    old = b"o" * 4096
    new = b"n" * 3000
    images = _images(disk, [Write("f", 0, old), Sync("f"), Write("f", 100, new)])
    seen = set()
    for image in images:
        content = image["f"]
        assert len(content) == 4096
        changed = [i for i, (a, b) in enumerate(zip(content, old, strict=True)) if a != b]
        if not changed:
            seen.add("lost")
            continue
        assert changed[0] == 100
        end = changed[-1] + 1
        assert content[100:end] == new[: end - 100]
        if end == 3100:
            seen.add("kept")
        else:
            assert end % SECTOR_BYTES == 0
            seen.add("torn")
    assert seen == {"lost", "kept", "torn"}


def test_unsynced_writes_survive_in_any_order_and_subset(disk: RecordingDisk) -> None:
    """Of two overlapping unsynced writes, none, either or both survive, both in either order."""
    images = _images(disk, [Write("f", 0, b"a" * 1024), Write("f", 512, b"b" * 1024)])
    outcomes = set()
    for image in images:
        content = image.get("f", b"")
        if len(content) == 1536 and content[0:1] == b"a":
            # Both: the overlap [512, 1024) tells their order.
            outcomes.add("both in order" if content[512:513] == b"b" else "both reordered")
        elif len(content) == 1536 and content[0:1] == b"\0":
            outcomes.add("only the later")
        elif content == b"a" * 1024:
            outcomes.add("only the earlier")
        elif not content:
            outcomes.add("none")
    assert outcomes == {
        "none",
        "only the earlier",
        "only the later",
        "both in order",
        "both reordered",
    }


def test_a_delete_is_undone_unless_a_sync_followed(disk: RecordingDisk) -> None:
    """A deleted file may come back after a crash until any file's sync commits the delete."""
    base: list[Op] = [Write("j", 0, b"journal"), Sync("j"), Delete("j", False)]
    assert {"j" in image for image in _images(disk, base)} == {True, False}
    committed = [*base, Write("d", 0, b"x"), Sync("d")]
    assert all("j" not in image for image in _images(disk, committed))
