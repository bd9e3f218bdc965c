"""The search engine: evaluation and search, used only by the analysis workers.

Its modules may also be compiled to C extension modules by mypyc (`tools/build_native.py`,
run by `make native`): the same code, many times faster (see "Engine" under Benchmarks in
the README). A compiled module is loaded only while the sources it was compiled from are
unchanged (the build writes their digest beside them); otherwise, or with
`GM_ENGINE_PURE=1`, every module of the package is loaded from its source. Only this
import-time check reads files.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import chess

__all__ = [
    "NATIVE",
    "NATIVE_STAMP",
    "TRAINING_DIGEST",
    "compiled_modules",
    "sources_digest",
    "stamp_matches",
]

NATIVE_STAMP = "native.sha256"
"""The file beside the modules that holds the digest of the sources they were compiled from."""

TRAINING_DIGEST = "GM_NATIVE_TRAINING_DIGEST"
"""The environment variable through which the build's training run, given the digest of the
sources, loads the instrumented modules it profiles: they never get a stamp, so nothing else
loads them, even when the build is killed before it cleans up."""

_HERE = Path(__file__).resolve().parent


def compiled_modules(package_dir: Path) -> list[Path]:
    """The extension modules in `package_dir` (compiled modules and mypyc's shared runtime)
    built for this interpreter (another one's, say `cpython-311` under 3.12, do not count)."""
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    return sorted(p for p in package_dir.iterdir() if p.name.endswith(suffix))


def sources_digest(package_dir: Path) -> str:
    """SHA-256 over this interpreter's extension suffix, python-chess's version (compiled
    code checks the types of its fields) and the names and contents of the package's
    modules but `__init__`."""
    digest = hashlib.sha256()
    digest.update(f"{importlib.machinery.EXTENSION_SUFFIXES[0]}\0{chess.__version__}\0".encode())
    for path in sorted(package_dir.glob("*.py")):
        if path.name != "__init__.py":
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


class _SourcesFirst(importlib.abc.MetaPathFinder):
    """Finds this package's modules as their `.py` sources, ahead of any compiled module."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        package, _, name = fullname.rpartition(".")
        source = _HERE / f"{name}.py"
        if package != __name__ or not source.is_file():
            return None
        return importlib.util.spec_from_file_location(fullname, source)


def stamp_matches(package_dir: Path) -> bool:
    """Whether the stamp beside the compiled modules is the digest of the sources now."""
    try:
        compiled_from = (package_dir / NATIVE_STAMP).read_text().strip()
    except OSError:
        return False
    return compiled_from == sources_digest(package_dir)


def _load_compiled() -> bool:
    """Whether to load the compiled modules; when not, the sources are found first (with
    a warning if compiled modules are there but stale)."""
    if not compiled_modules(_HERE):
        return False
    pure = os.environ.get("GM_ENGINE_PURE", "") not in ("", "0")
    if not pure and stamp_matches(_HERE):
        return True
    training = os.environ.get(TRAINING_DIGEST)
    if not pure and training is not None and training == sources_digest(_HERE):
        return True
    sys.meta_path.insert(0, _SourcesFirst())
    if not pure:
        warnings.warn(
            "engine.search runs from its sources: the sources changed since they were "
            "compiled (run `make native`)",
            stacklevel=2,
        )
    return False


NATIVE: bool = _load_compiled()
"""Whether the package's modules are the compiled ones."""
