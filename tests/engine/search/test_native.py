"""The search compiled by mypyc (tools/build_native.py), in a copy of the package: it plays
the same trees as its sources, and stale or unwanted compiled modules give way to the
sources."""

from __future__ import annotations

import importlib.machinery
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

# Searches a few positions to a fixed node budget and prints what each gave, with which
# modules ran.
PROBE = """
import json, sys
import engine.search, engine.search.search as search
fens = [
    "r1bq1rk1/pp2bppp/2n1pn2/3p4/2PP4/2N2N2/PP2BPPP/R2QKB1R w KQ - 0 9",
    "2r2rk1/1bqnbppp/p3pn2/1p6/3NP3/P1N1B3/1PP1BPPP/R2Q1RK1 w - - 0 14",
    "8/5pk1/6p1/8/3K4/8/5PPP/8 w - - 0 40",
    "6k1/5ppp/8/8/8/8/5PPP/R5K1 w - - 0 1",
]
lines = []
for fen in fens:
    for info in search.iter_search(fen, max_nodes=3000, partial=True):
        lines.append([info.depth, info.score_cp, info.mate, list(info.pv), info.nodes])
files = {
    name: module.__file__
    for name, module in sys.modules.items()
    if name.startswith("engine.search.") and not name.endswith("__mypyc")
}
print(json.dumps({"native": engine.search.NATIVE, "files": files, "lines": lines}))
"""


def probe(copy: Path, **env: str) -> dict[str, object]:
    """Run the probe on the copy of the package; its JSON and the warnings it printed."""
    done = subprocess.run(
        [sys.executable, "-W", "always", "-c", PROBE],
        cwd=copy,
        env={**os.environ, "PYTHONPATH": str(copy), "GM_ENGINE_PURE": "", **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    result: dict[str, object] = json.loads(done.stdout)
    result["stderr"] = done.stderr
    return result


def build_native(package: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    """Run tools/build_native.py on `package` (a copy's `engine/search`)."""
    return subprocess.run(
        [
            sys.executable,
            str(ROOT / "tools" / "build_native.py"),
            "--package-dir",
            str(package),
            *flags,
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the `engine` package with its search compiled (needs a C compiler).

    Compiling takes about two minutes on two cores, and `make test` has just run `make
    native`: the checkout's compiled modules come along when their stamp is the sources',
    and the copy is compiled only when they are missing or stale. The stamp does not cover
    the build tool or mypyc's version, so `make test-full` (`GM_TEST_FULL=1`) always
    compiles the copy from scratch, and checks that the build was profile-guided where `cc`
    is GCC."""
    copy = tmp_path_factory.mktemp("native")
    full = os.environ.get("GM_TEST_FULL") == "1"
    if full:
        ignore = shutil.ignore_patterns("__pycache__", "*.so", "native.sha256")
    else:
        ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(ROOT / "engine", copy / "engine", ignore=ignore)
    done = build_native(copy / "engine" / "search", "--if-changed")
    if full and _cc_is_gcc():
        assert "compiled, profile-guided" in done.stdout, done.stdout + done.stderr
    return copy


def _cc_is_gcc() -> bool:
    """Whether `cc` is GCC (asked here, not through the build tool's own test)."""
    if os.environ.get("CC") or shutil.which("cc") is None:
        return False
    version = subprocess.run(["cc", "--version"], capture_output=True, text=True, check=False)
    return "Free Software Foundation" in version.stdout


def loaded_from(result: dict[str, object]) -> set[str]:
    """The suffixes of the files the package's modules came from, but its board (a source
    always): {".so"} compiled, {".py"} from the sources, both for a mix."""
    files: dict[str, str] = result["files"]  # type: ignore[assignment]
    assert len(files) >= 8, files
    return {Path(path).suffix for name, path in files.items() if not name.endswith(".board")}


def test_compiled_search_plays_the_same_trees_as_its_sources(compiled: Path) -> None:
    native = probe(compiled)
    sources = probe(compiled, GM_ENGINE_PURE="1")
    assert native["native"] is True, native["stderr"]
    assert loaded_from(native) == {".so"}
    assert sources["native"] is False
    assert loaded_from(sources) == {".py"}
    assert "runs from its sources" not in str(sources["stderr"])
    assert native["lines"] == sources["lines"]
    assert len(native["lines"]) > 12  # type: ignore[arg-type]


def test_changed_sources_are_used_instead_of_stale_compiled_modules(compiled: Path) -> None:
    evaluation = compiled / "engine" / "search" / "evaluation.py"
    text = evaluation.read_text()
    try:
        evaluation.write_text(text + "\n# changed after compiling\n")
        stale = probe(compiled)
        assert stale["native"] is False
        assert loaded_from(stale) == {".py"}
        assert "the sources changed since they were compiled" in str(stale["stderr"])
    finally:
        evaluation.write_text(text)
    assert probe(compiled)["native"] is True


def test_clean_removes_the_compiled_modules(compiled: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(compiled, copy)
    package = copy / "engine" / "search"
    assert any(p.suffix == ".so" for p in package.iterdir())
    build_native(package, "--clean")
    assert not any(p.suffix == ".so" or p.name == "native.sha256" for p in package.iterdir())
    plain = probe(copy)
    assert plain["native"] is False
    assert "runs from its sources" not in str(plain["stderr"])


def test_up_to_date_build_is_kept_and_another_interpreters_is_ignored(
    compiled: Path, tmp_path: Path
) -> None:
    """`--if-changed` leaves an up-to-date build alone; modules compiled for another
    interpreter (its suffix) are not this one's: the sources run, and no warning is given."""
    package = compiled / "engine" / "search"
    before = {p.name: p.stat().st_mtime_ns for p in package.iterdir() if p.suffix == ".so"}
    done = build_native(package, "--if-changed")
    assert "up to date" in done.stdout
    assert before == {p.name: p.stat().st_mtime_ns for p in package.iterdir() if p.suffix == ".so"}

    copy = tmp_path / "copy"
    shutil.copytree(compiled, copy)
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    for path in (copy / "engine" / "search").iterdir():
        if path.name.endswith(suffix):
            path.rename(
                path.with_name(path.name.replace(suffix, ".cpython-399-x86_64-linux-gnu.so"))
            )
    other = probe(copy)
    assert other["native"] is False
    assert loaded_from(other) == {".py"}
    assert "runs from its sources" not in str(other["stderr"])
