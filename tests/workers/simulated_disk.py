"""A disk that can lose power or fill up, under a real SQLite (apsw's copy).

:class:`RecordingDisk` is an apsw VFS over the operating system's: reads and writes go to
real files, and every write, truncate, delete and sync is also appended to ``ops``. A
power loss at any point of that recording is rebuilt afterwards by :meth:`crash_image`,
so one run of a workload yields as many crashes as there are points in it (the process
before the crash behaves the same whatever comes after it).

The crash model, per file: what was written before its last sync is on the platter; the
writes, truncates and deletes issued since are in the drive's cache. At the crash a
seeded choice keeps none of them, a prefix of them, or any subset in any order; a kept
write may be torn, its data cut at a 512-byte sector boundary of the file. A delete is
metadata: a sync of any file commits it (the file system's journal), as a directory sync
does. What is not simulated: a disk that acknowledges a sync it did not do (lying
firmware), damage outside the sectors being written (SQLite assumes "powersafe
overwrite"), bit rot, and the loss of a synced file's directory entry.

Real syncs are skipped: the crash images come from the recording, not from what the
test machine's disk happens to hold, and skipping them keeps thousands of commits fast.

``fill_after(n)`` lets ``n`` more writes through, then fails every write with
SQLITE_FULL, as a full disk does (``fail_syncs`` fails syncs instead, as ENOSPC can
surface at fsync); ``free()`` gives the space back.
"""

from __future__ import annotations

import itertools
import random
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import apsw

SECTOR_BYTES = 512
_names = itertools.count()


@dataclass(frozen=True, slots=True)
class Write:
    """Bytes written at an offset of a file."""

    path: str
    offset: int
    data: bytes


@dataclass(frozen=True, slots=True)
class Truncate:
    """A file cut (or extended) to a size."""

    path: str
    size: int


@dataclass(frozen=True, slots=True)
class Delete:
    """A file removed; ``sync_dir`` when the caller asked for its directory to be synced."""

    path: str
    sync_dir: bool


@dataclass(frozen=True, slots=True)
class Sync:
    """A file's fsync: what was issued to it before is durable once this returns."""

    path: str


Op = Write | Truncate | Delete | Sync


class RecordingDisk(apsw.VFS):
    """An apsw VFS recording every change to the files under it (see the module)."""

    def __init__(self) -> None:
        self.name = f"recording-disk-{next(_names)}"
        super().__init__(self.name, "")
        self.ops: list[Op] = []
        # Writes still allowed before the disk is full (None: never full).
        self.writes_left: int | None = None
        self.syncs_fail = False

    def fill_after(self, writes: int) -> None:
        """Let ``writes`` more writes through, then fail each with SQLITE_FULL."""
        self.writes_left = writes

    def fail_syncs(self) -> None:
        """Fail every later sync with an I/O error (what SQLite gets of ENOSPC at fsync)."""
        self.syncs_fail = True

    def free(self) -> None:
        """Give the space back: writes and syncs succeed again."""
        self.writes_left = None
        self.syncs_fail = False

    @property
    def count(self) -> int:
        """How many operations were issued so far: a crash point."""
        return len(self.ops)

    def xOpen(self, name: str | apsw.URIFilename | None, flags: list[int]) -> apsw.VFSFile:
        """A file recording into this disk (temporary files, with no name, are not kept)."""
        path = (
            None
            if name is None
            else name.filename()
            if isinstance(name, apsw.URIFilename)
            else name
        )
        return _RecordingFile(self, path, name, flags)

    def xDelete(self, filename: str, syncdir: bool) -> None:
        """Remove a file, recorded."""
        self.ops.append(Delete(filename, syncdir))
        super().xDelete(filename, syncdir)

    def connect(self, path: Path) -> ApswConnection:
        """A connection to ``path`` on this disk, with the calls the store makes."""
        return ApswConnection(apsw.Connection(str(path), vfs=self.name))

    def crash_image(self, point: int, rng: random.Random) -> dict[str, bytes]:
        """The files' contents after a power loss just before ``ops[point]``.

        By path; a file absent from the result does not exist. ``rng`` picks what of the
        unsynced operations survived (see the module).
        """
        return next(self.crash_images([point], rng))[1]

    def crash_images(
        self, points: Iterable[int], rng: random.Random
    ) -> Iterator[tuple[int, dict[str, bytes]]]:
        """(point, image) for each crash point, in increasing order, as :meth:`crash_image`
        makes them but replaying the recording once."""
        replay = _Replay()
        done = 0
        for point in sorted(points):
            for op in self.ops[done:point]:
                replay.advance(op)
            done = max(done, point)
            yield point, _lose_power(replay.durable, replay.pending, rng)


class _RecordingFile(apsw.VFSFile):
    def __init__(
        self,
        disk: RecordingDisk,
        path: str | None,
        name: str | apsw.URIFilename | None,
        flags: list[int],
    ) -> None:
        self._disk = disk
        self._path = path
        super().__init__("", name, flags)  # type: ignore[arg-type]

    def xWrite(self, data: Any, offset: int) -> None:
        if self._disk.writes_left is not None:
            if self._disk.writes_left <= 0:
                raise apsw.FullError("the simulated disk is full")
            self._disk.writes_left -= 1
        if self._path is not None:
            self._disk.ops.append(Write(self._path, offset, bytes(data)))
        super().xWrite(data, offset)

    def xTruncate(self, newsize: int) -> None:
        if self._path is not None:
            self._disk.ops.append(Truncate(self._path, newsize))
        super().xTruncate(newsize)

    def xSync(self, flags: int) -> None:
        if self._disk.syncs_fail:
            raise apsw.IOError("the simulated disk could not sync")
        # Recorded, not done: crash images are rebuilt from the recording (see the module).
        if self._path is not None:
            self._disk.ops.append(Sync(self._path))


class _Replay:
    """The durable contents by path (None: deleted) and the operations issued since each
    path's last sync, after the operations fed to :meth:`advance`."""

    def __init__(self) -> None:
        self.durable: dict[str, bytearray | None] = {}
        self.pending: dict[str, list[Op]] = {}

    def advance(self, op: Op) -> None:
        if isinstance(op, Sync):
            self._commit_deletes()
            content = self.durable.get(op.path)
            for queued in self.pending.pop(op.path, []):
                content = _apply(content, queued)
            self.durable[op.path] = content
        else:
            self.pending.setdefault(op.path, []).append(op)
            if isinstance(op, Delete) and op.sync_dir:
                self._commit_deletes()

    def _commit_deletes(self) -> None:
        """A sync commits the file system's journal: every delete issued so far."""
        for path, queue in self.pending.items():
            deletes = [i for i, o in enumerate(queue) if isinstance(o, Delete)]
            if deletes:
                self.durable[path] = None
                del queue[: deletes[-1] + 1]


def _apply(content: bytearray | None, op: Op) -> bytearray | None:
    if isinstance(op, Delete):
        return None
    if content is None:
        content = bytearray()
    if isinstance(op, Truncate):
        if op.size <= len(content):
            del content[op.size :]
        else:
            content.extend(bytes(op.size - len(content)))
    elif isinstance(op, Write):
        end = op.offset + len(op.data)
        if len(content) < op.offset:
            content.extend(bytes(op.offset - len(content)))
        content[op.offset : end] = op.data
    return content


def _torn(op: Write, rng: random.Random) -> Write:
    """The write with its data cut at a sector boundary of the file (maybe all of it)."""
    end = op.offset + len(op.data)
    first = (op.offset // SECTOR_BYTES + 1) * SECTOR_BYTES
    cuts = [*range(first, end, SECTOR_BYTES), end]
    cut = rng.choice(cuts)
    return Write(op.path, op.offset, op.data[: cut - op.offset])


def _lose_power(
    durable: dict[str, bytearray | None], pending: dict[str, list[Op]], rng: random.Random
) -> dict[str, bytes]:
    image: dict[str, bytearray | None] = {
        p: None if c is None else bytearray(c) for p, c in durable.items()
    }
    for path, queue in pending.items():
        mode = rng.choice(("none", "prefix", "subset"))
        if mode == "none" or not queue:
            kept: list[Op] = []
        elif mode == "prefix":
            kept = queue[: rng.randint(0, len(queue))]
            if kept and isinstance(kept[-1], Write) and rng.random() < 0.5:
                kept[-1] = _torn(kept[-1], rng)
        else:
            kept = [op for op in queue if rng.random() < 0.5]
            rng.shuffle(kept)
            kept = [
                _torn(op, rng) if isinstance(op, Write) and rng.random() < 0.25 else op
                for op in kept
            ]
        content = image.get(path)
        for op in kept:
            content = _apply(content, op)
        image[path] = content
    return {p: bytes(c) for p, c in image.items() if c is not None}


def write_image(image: dict[str, bytes], database: Path, into: Path) -> Path:
    """Write a crash image of the database at ``database`` (and its journal and WAL)
    under the directory ``into``, by the same names; the database's new path."""
    into.mkdir(parents=True, exist_ok=True)
    for path, content in image.items():
        name = Path(path).name
        if not name.startswith(database.name):
            raise ValueError(f"a file outside the database's set was written: {path}")
        (into / name).write_bytes(content)
    return into / database.name


class ApswConnection:
    """An apsw connection behind the calls :class:`workers.store.Store` makes of a stdlib
    ``sqlite3`` connection, raising ``sqlite3``'s exceptions (IntegrityError for a
    constraint, OperationalError for any other SQLite error). apsw runs in autocommit
    mode like ``isolation_level=None``; rows are read out at once, so that no statement
    stays open (and holds a read lock) after the call."""

    def __init__(self, conn: apsw.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> _Rows:
        """Run one statement and return its rows."""
        return _Rows(self._run(sql, parameters))

    def executescript(self, sql: str, /) -> None:
        """Run statements separated by semicolons."""
        self._run(sql, None)

    def close(self) -> None:
        """Close the connection, as stdlib ``sqlite3`` does: SQLite ignores a checkpoint
        that fails on close (the WAL stays for the next open), but apsw would raise the
        disk's exception from it (after closing), so it is not raised here."""
        try:
            self._conn.close()
        except apsw.Error:
            # Closed all the same; a second close would raise if it were still open.
            self._conn.close()

    def _run(self, sql: str, parameters: Sequence[Any] | None) -> list[tuple[Any, ...]]:
        try:
            return list(self._conn.execute(sql, parameters))
        except apsw.ConstraintError as exc:
            raise sqlite3.IntegrityError(str(exc)) from exc
        except apsw.Error as exc:
            raise sqlite3.OperationalError(str(exc)) from exc


class _Rows:
    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self._rows = iter(rows)

    def fetchone(self) -> tuple[Any, ...] | None:
        return next(self._rows, None)

    def fetchall(self) -> list[tuple[Any, ...]]:
        return list(self._rows)

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return self._rows
