"""The Swiss pairing engine seam: a TRF in, the next round's pairs out, in a subprocess.

An engine is anything with a ``name`` (the API's ``pairing_system``) and an async
``pair(trf_text)``. Both engines here run as a child process fed through temporary files,
so the event loop never waits on the (CPU-bound, possibly slow) pairing itself:

* :class:`Py4SwissEngine`, the default: ``python -m workers.pairing_py4swiss``;
* :class:`BbpPairingsEngine`: an external bbpPairings executable, ``--dutch in -p out``.

Both answer with bbpPairings' exit codes: 1 is :class:`NoPairing`, anything else that is
not 0, a timeout, or malformed output is :class:`PairingFailed`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path
from typing import Protocol

from engine.tournament.errors import NoPairing
from engine.tournament.trf import parse_pairings

DEFAULT_TIMEOUT_S = 60.0
# bbpPairings' exit codes (other than 0 and 1, see main.cpp), and what they mean.
EXIT_MEANINGS = {
    2: "unexpected error",
    3: "invalid request or input file",
    4: "size limit exceeded",
    5: "file access error",
}
_STDERR_TAIL = 2000


class PairingFailed(Exception):
    """The engine could not give an answer (crash, invalid input, timeout, bad output).

    ``exit_code`` is the engine's (None for a timeout or malformed output).
    """

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class PairingEngine(Protocol):
    """Pairs the next round of a tournament given as a TRF(x) text."""

    name: str

    async def pair(self, trf_text: str) -> list[tuple[int, int]]:
        """(white, black) pairing numbers in board order, black 0 for the
        pairing-allocated bye. Raises NoPairing when none exists, PairingFailed when the
        engine fails."""
        ...


def _prepare(trf_text: str) -> Path:
    """A private temporary directory holding ``in.trf`` (runs in a thread)."""
    directory = Path(tempfile.mkdtemp(prefix="gm-pairing-"))
    (directory / "in.trf").write_text(trf_text, encoding="utf-8")
    return directory


def _read_output(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return None


async def run_engine(
    label: str, argv: list[str], trf_text: str, timeout_s: float
) -> list[tuple[int, int]]:
    """Run one engine process: ``argv`` with ``{in}``/``{out}`` replaced by the files.

    Raises NoPairing (exit 1), PairingFailed (other exits, a timeout: the process is
    killed, or malformed output). The temporary files are removed in every case.
    """
    directory = await asyncio.to_thread(_prepare, trf_text)
    in_path, out_path = directory / "in.trf", directory / "out.txt"
    args = [str(in_path) if a == "{in}" else str(out_path) if a == "{out}" else a for a in argv]
    try:
        process = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            _, stderr_bytes = await asyncio.wait_for(process.communicate(), timeout_s)
        except TimeoutError:
            raise PairingFailed(f"{label} did not answer within {timeout_s:g} s") from None
        finally:
            # A timeout or a cancelled caller must not leave the engine running.
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        code = process.returncode
        assert code is not None  # the process was waited for above
        stderr = stderr_bytes.decode("utf-8", "replace").strip()[-_STDERR_TAIL:]
        if code == 1:
            raise NoPairing(f"no valid pairing exists for this round ({label}: {stderr})")
        if code != 0:
            meaning = (
                f"killed by signal {-code}" if code < 0 else EXIT_MEANINGS.get(code, "unknown")
            )
            raise PairingFailed(f"{label} failed with exit code {code} ({meaning}): {stderr}", code)
        output = await asyncio.to_thread(_read_output, out_path)
        if output is None:
            raise PairingFailed(f"{label} exited 0 but wrote no pairings file", code)
        try:
            return parse_pairings(output)
        except ValueError as exc:
            raise PairingFailed(f"{label} gave malformed pairings: {exc}", code) from None
    finally:
        await asyncio.to_thread(shutil.rmtree, directory, True)


class Py4SwissEngine:
    """py4swiss's Dutch engine in a child Python (``workers.pairing_py4swiss``)."""

    def __init__(self, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.timeout_s = timeout_s
        self.name = f"FIDE Dutch (C.04.3, rules until 31 Jan 2026), py4swiss {version('py4swiss')}"

    async def pair(self, trf_text: str) -> list[tuple[int, int]]:
        """See :class:`PairingEngine`."""
        argv = [sys.executable, "-m", "workers.pairing_py4swiss", "{in}", "{out}"]
        return await run_engine("py4swiss", argv, trf_text, self.timeout_s)


class BbpPairingsEngine:
    """An external bbpPairings executable, run as ``<path> --dutch in.trf -p out.txt``."""

    def __init__(self, path: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.path = path
        self.timeout_s = timeout_s
        self.name = f"FIDE Dutch (C.04.3), bbpPairings ({Path(path).name})"

    async def pair(self, trf_text: str) -> list[tuple[int, int]]:
        """See :class:`PairingEngine`."""
        argv = [self.path, "--dutch", "{in}", "-p", "{out}"]
        return await run_engine(Path(self.path).name, argv, trf_text, self.timeout_s)


def engine_from_setting(value: str | None, timeout_s: float = DEFAULT_TIMEOUT_S) -> PairingEngine:
    """The engine a setting names: empty or None is py4swiss, else the path of a
    bbpPairings executable. Raises ValueError when that path is no executable file."""
    if not value:
        return Py4SwissEngine(timeout_s)
    path = Path(value).expanduser()
    if not path.is_file() or not os.access(path, os.X_OK):
        raise ValueError(f"the pairing engine {value!r} is not an executable file")
    return BbpPairingsEngine(str(path.resolve()), timeout_s)
