"""The search engine: evaluation and search, used only by the analysis workers.

Its modules may also be compiled to C extension modules by mypyc (`tools/build_native.py`,
run by `make native`): the same code, about 1.9 times faster. A compiled module is loaded
only while the sources it was compiled from are unchanged (the build writes their digest
beside them); otherwise, or with `GM_ENGINE_PURE=1`, every module of the package is loaded
from its source. Only this import-time check reads files.
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

__all__ = ["NATIVE", "NATIVE_STAMP", "compiled_modules", "sources_digest"]

NATIVE_STAMP = "native.sha256"
"""The file beside the modules that holds the digest of the sources they were compiled from."""

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


def _sources_instead() -> str | None:
    """Why the compiled modules must not be used, or None when they may (or there are none)."""
    if not compiled_modules(_HERE):
        return None
    if os.environ.get("GM_ENGINE_PURE", "") not in ("", "0"):
        return "GM_ENGINE_PURE is set"
    try:
        compiled_from = (_HERE / NATIVE_STAMP).read_text().strip()
    except OSError:
        compiled_from = ""
    if compiled_from != sources_digest(_HERE):
        return "the sources changed since they were compiled (run `make native`)"
    return None


_reason = _sources_instead()
if _reason is not None:
    sys.meta_path.insert(0, _SourcesFirst())
    if not _reason.startswith("GM_ENGINE_PURE"):
        warnings.warn(f"engine.search runs from its sources: {_reason}", stacklevel=1)
NATIVE: bool = _reason is None and bool(compiled_modules(_HERE))
"""Whether the package's modules are the compiled ones."""
