"""Compile the built-in engine's search (engine/search) to C extension modules with mypyc.

`make run` and `make test` run this (through `make native`) when the sources changed; it needs
a C compiler and mypy (a test dependency). The compiled modules sit beside their sources, with
a stamp of the sources they were compiled from: `engine/search/__init__.py` loads them only
when the stamp matches, and the sources otherwise (as on a machine without a compiler).
The modules are the same code, so the search's trees are identical; only its speed differs
(see "Engine" under Benchmarks in the README).

The build is profile-guided where the compiler is GCC: a first build records which branches
the search takes while it searches a few positions (`_TRAINING`), and the second compiles
with that profile, which lays out the hot paths of the generated C (much of it reference
counting and type checks whose outcome never changes): about 1.24 times the speed (see the
README). Another compiler gets the plain build at once; a profile-guided build that fails
falls back to it, saying so on stderr; `--no-profile` asks for it. The instrumented modules
never get a stamp (the training loads them by the digest, through `TRAINING_DIGEST`): only
the modules that stay are stamped, so a build killed halfway leaves nothing loadable.

    python tools/build_native.py [--package-dir engine/search] [--if-changed | --clean]
        [--no-profile]
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.search import (  # noqa: E402
    NATIVE_STAMP,
    TRAINING_DIGEST,
    compiled_modules,
    sources_digest,
    stamp_matches,
)

_NOT_COMPILED = {"__init__.py"}

# Every function of the compiled group stays inside its shared library: the modules reach
# each other through Python's import (capsules), never through the dynamic linker, and a
# function the linker could replace (any exported one, under -fPIC) is called through the
# PLT and never inlined. Only `PyInit_*` is exported (CPython declares it visible itself).
_HIDDEN: list[str] = ["-fvisibility=hidden"] if os.name == "posix" else []

# The profile's workload: the search of a few positions of each phase (the opening, quiet
# and tactical middlegames, endings), a few seconds with the instrumented build. Printed
# node counts are not checked: the profile only steers the compiler's layout.
_TRAINING = """
from engine.search import NATIVE
from engine.search.search import iter_search

assert NATIVE, "the instrumented modules were not loaded"
FENS = (
    "rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkq - 0 1",
    "r1bq1rk1/pp2bppp/2n1pn2/3p4/2PP4/2N1PN2/PP2BPPP/R2QKB1R w KQ - 0 8",
    "2r2rk1/1bqnbppp/p3pn2/1p6/3NP3/P1N1B3/1PP1BPPP/R2Q1RK1 w - - 0 14",
    "2rr3k/pp3pp1/1nnqbN1p/3pN3/2pP4/2P3Q1/PPB4P/R4RK1 w - - 0 1",
    "r1b1k2r/ppppnppp/2n2q2/2b5/3NP3/2P1B3/PP3PPP/RN1QKB1R w KQkq - 0 1",
    "8/5pk1/6p1/1R5p/3r3P/6P1/5PK1/8 w - - 0 40",
    "8/8/3k4/3p4/3P1K2/8/5P2/8 w - - 0 50",
)
for fen in FENS:
    for _ in iter_search(fen, max_nodes=25_000):
        pass
"""


def clean(package_dir: Path) -> None:
    """Remove the compiled modules and their stamp (the sources are used again)."""
    for path in compiled_modules(package_dir):
        path.unlink()
    (package_dir / NATIVE_STAMP).unlink(missing_ok=True)


def build(package_dir: Path, *, profile: bool = True) -> None:
    """Compile every module of the package but its `__init__` in place, then write the stamp."""
    from mypyc.build import mypycify

    package_dir = package_dir.resolve()
    root = package_dir.parent.parent
    sources = sorted(p for p in package_dir.glob("*.py") if p.name not in _NOT_COMPILED)
    digest = sources_digest(package_dir)
    clean(package_dir)
    cwd = Path.cwd()
    build_dir = tempfile.mkdtemp(prefix="gm-native-")
    profile = profile and compiler_is_gcc()
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
        base_args = [(e.extra_compile_args, e.extra_link_args) for e in extensions]
        guided = False
        if profile:
            try:
                flags = _profile(extensions, base_args, build_dir, root, digest)
                _compile(extensions, base_args, build_dir, flags)
                guided = True
            except (Exception, SystemExit) as error:  # distutils reports failures by exiting
                print(f"no profile-guided build ({error}): a plain one", file=sys.stderr)
                clean(package_dir)
        if not guided:
            _compile(extensions, base_args, build_dir, [])
        (package_dir / NATIVE_STAMP).write_text(digest + "\n")
        print("engine/search: compiled, " + ("profile-guided" if guided else "plain"))
    except BaseException:
        # Half-built or instrumented modules must not stay.
        clean(package_dir)
        raise
    finally:
        os.chdir(cwd)
        shutil.rmtree(build_dir, ignore_errors=True)


def compiler_is_gcc() -> bool:
    """Whether the C compiler setuptools will call (`CC`, or the one Python was built with) is
    GCC, the compiler whose profile-guided build this tool knows."""
    command = shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc")
    try:
        done = subprocess.run(  # noqa: S603
            [*command, "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return "Free Software Foundation" in done.stdout


def _compile(
    extensions: list[Any],
    base_args: list[tuple[list[str], list[str]]],
    build_dir: str,
    flags: list[str],
) -> None:
    """Compile `extensions` in place with the extra compiler and linker `flags` after their
    own (`base_args`: mypyc's compiler and linker arguments of each).

    The objects go to the same directory each time, all rewritten (`force`): GCC names a
    profile after the object it was recorded from, so the build that reads it must write the
    same objects.
    """
    from setuptools import Distribution

    for extension, (compile_args, link_args) in zip(extensions, base_args, strict=True):
        extension.extra_compile_args = [*compile_args, *_HIDDEN, *flags]
        extension.extra_link_args = [*link_args, *flags]
    # A bare Distribution: setuptools reads no pyproject.toml or setup.cfg for it.
    dist = Distribution({"name": "grandmaster-native", "ext_modules": extensions})
    command = dist.get_command_obj("build_ext")
    command.inplace = True  # type: ignore[attr-defined]
    command.force = True  # type: ignore[attr-defined]
    command.build_temp = os.path.join(build_dir, "temp")  # type: ignore[attr-defined]
    command.build_lib = os.path.join(build_dir, "lib")  # type: ignore[attr-defined]
    dist.run_command("build_ext")


def _profile(
    extensions: list[Any],
    base_args: list[tuple[list[str], list[str]]],
    build_dir: str,
    root: Path,
    digest: str,
) -> list[str]:
    """Build instrumented modules, run `_TRAINING` on them and return the flags that compile
    with the profile it recorded; raises when any step fails."""
    profile_dir = os.path.join(build_dir, "profile")
    _compile(extensions, base_args, build_dir, [f"-fprofile-generate={profile_dir}"])
    # The instrumented modules get no stamp: the training alone loads them, by the digest.
    env = {k: v for k, v in os.environ.items() if k != "GM_ENGINE_PURE"}
    env[TRAINING_DIGEST] = digest
    subprocess.run([sys.executable, "-c", _TRAINING], cwd=root, env=env, check=True)  # noqa: S603
    # The group's library holds all the compiled code (each module's own library is a shim
    # that loads it): its profile is the one that matters.
    recorded = [name for _, _, names in os.walk(profile_dir) for name in names]
    if not any(name.startswith("__native") and name.endswith(".gcda") for name in recorded):
        raise RuntimeError(f"the training wrote no profile of the compiled code: {recorded}")
    return [
        # Code the training never ran is compiled for size (`-fprofile-use`'s default, as in
        # CPython's own profile-guided build): the hot paths keep more of the instruction cache.
        f"-fprofile-use={profile_dir}",
        # A module's shim the training never imported has no profile of its own.
        "-Wno-missing-profile",
    ]


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
    parser.add_argument(
        "--no-profile", action="store_true", help="a plain build, not a profile-guided one"
    )
    args = parser.parse_args()
    if args.clean:
        clean(args.package_dir)
    elif args.if_changed and up_to_date(args.package_dir):
        print("engine/search: compiled modules up to date")
    else:
        build(args.package_dir, profile=not args.no_profile)


if __name__ == "__main__":
    main()
