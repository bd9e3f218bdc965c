"""Compile the built-in engine's search (engine/search) to C extension modules with mypyc.

`make run` and `make test` run this (through `make native`) when the sources changed; it needs
a C compiler and mypy (a test dependency). The compiled modules sit beside their sources, with
a stamp of the sources they were compiled from: `engine/search/__init__.py` loads them only
when the stamp matches, and the sources otherwise (as on a machine without a compiler).
The modules are the same code, so the search's trees are identical; only its speed differs
(see "Engine" under Benchmarks in the README).

    python tools/build_native.py [--package-dir engine/search] [--if-changed | --clean]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.search import (  # noqa: E402
    NATIVE_STAMP,
    compiled_modules,
    sources_digest,
    stamp_matches,
)

_NOT_COMPILED = {"__init__.py"}


def clean(package_dir: Path) -> None:
    """Remove the compiled modules and their stamp (the sources are used again)."""
    for path in compiled_modules(package_dir):
        path.unlink()
    (package_dir / NATIVE_STAMP).unlink(missing_ok=True)


def build(package_dir: Path) -> None:
    """Compile every module of the package but its `__init__` in place, then write the stamp."""
    from mypyc.build import mypycify
    from setuptools import Distribution

    package_dir = package_dir.resolve()
    root = package_dir.parent.parent
    sources = sorted(p for p in package_dir.glob("*.py") if p.name not in _NOT_COMPILED)
    digest = sources_digest(package_dir)
    clean(package_dir)
    cwd = Path.cwd()
    build_dir = tempfile.mkdtemp(prefix="gm-native-")
    try:
        # Module names come from the paths relative to the working directory.
        os.chdir(root)
        extensions = mypycify(
            [str(p.relative_to(root)) for p in sources],
            opt_level="3",
            # The shared runtime goes beside the modules, not into the checkout's root.
            group_name="engine.search.native",
            target_dir=os.path.join(build_dir, "c"),
        )
        # A bare Distribution: setuptools reads no pyproject.toml or setup.cfg for it.
        dist = Distribution({"name": "grandmaster-native", "ext_modules": extensions})
        command = dist.get_command_obj("build_ext")
        command.inplace = True  # type: ignore[attr-defined]
        command.build_temp = os.path.join(build_dir, "temp")  # type: ignore[attr-defined]
        command.build_lib = os.path.join(build_dir, "lib")  # type: ignore[attr-defined]
        dist.run_command("build_ext")
    finally:
        os.chdir(cwd)
        shutil.rmtree(build_dir, ignore_errors=True)
    (package_dir / NATIVE_STAMP).write_text(digest + "\n")


def up_to_date(package_dir: Path) -> bool:
    """Whether the compiled modules are there with the stamp of the sources (what
    `engine/search/__init__.py` checks before it loads them)."""
    return bool(compiled_modules(package_dir)) and stamp_matches(package_dir)


def main() -> None:
    """Build (or with `--clean`, remove) the compiled modules."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--package-dir", type=Path, default=ROOT / "engine" / "search")
    parser.add_argument("--clean", action="store_true", help="remove the compiled modules")
    parser.add_argument(
        "--if-changed", action="store_true", help="build only when the stamp is not the sources'"
    )
    args = parser.parse_args()
    if args.clean:
        clean(args.package_dir)
    elif args.if_changed and up_to_date(args.package_dir):
        print("engine/search: compiled modules up to date")
    else:
        build(args.package_dir)


if __name__ == "__main__":
    main()
