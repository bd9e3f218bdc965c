"""``python -m workers.pairing_py4swiss in.trf out.txt``: py4swiss's Dutch engine as a CLI.

It speaks bbpPairings' file formats and exit codes, so :mod:`workers.pairing` runs either
the same way: 0 the pairings are written, 1 no valid pairing exists, 2 an unexpected
error, 3 the input is invalid, 5 a file could not be read or written. py4swiss is used
through its public API (``TrfParser.parse``, ``DutchEngine.generate_pairings``); its own
CLI exits 1 on every error, which does not tell "no pairing" from "bad input". Run in a
subprocess: the engine is pure CPU and may run for seconds.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

# py4swiss ships no type information (no py.typed).
from py4swiss.engines import DutchEngine  # type: ignore[import-untyped]
from py4swiss.engines.common import PairingError  # type: ignore[import-untyped]
from py4swiss.trf import TrfParser  # type: ignore[import-untyped]
from py4swiss.trf.exceptions import (  # type: ignore[import-untyped]
    ConsistencyError,
    LineError,
    ParsingError,
)

OK = 0
NO_VALID_PAIRING = 1
UNEXPECTED_ERROR = 2
INVALID_REQUEST = 3
FILE_ERROR = 5

# What py4swiss raises for a malformed or inconsistent TRF (pydantic's ValidationError
# is a ValueError; a result naming a missing player surfaces as a KeyError).
_INPUT_ERRORS = (ParsingError, LineError, ConsistencyError, ValueError, KeyError, IndexError)


def run(input_path: Path, output_path: Path) -> int:
    """Pair the next round of ``input_path`` into ``output_path``; the exit code."""
    try:
        trf = TrfParser.parse(input_path, strict=False)
    except OSError as exc:
        print(f"cannot read {input_path}: {exc}", file=sys.stderr)
        return FILE_ERROR
    except _INPUT_ERRORS as exc:
        print(f"invalid TRF {input_path}: {exc!r}", file=sys.stderr)
        return INVALID_REQUEST
    try:
        pairings = DutchEngine.generate_pairings(trf)
    except PairingError as exc:
        print(f"no valid pairing exists: {exc}", file=sys.stderr)
        return NO_VALID_PAIRING
    lines = [f"{len(pairings)}", *(f"{p.white} {p.black}" for p in pairings)]
    try:
        output_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    except OSError as exc:
        print(f"cannot write {output_path}: {exc}", file=sys.stderr)
        return FILE_ERROR
    return OK


def main(argv: Sequence[str] | None = None) -> int:
    """The CLI: two paths, input TRF then output pairings; returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        print("usage: python -m workers.pairing_py4swiss <in.trf> <out.txt>", file=sys.stderr)
        return INVALID_REQUEST
    try:
        return run(Path(args[0]), Path(args[1]))
    except Exception:
        traceback.print_exc()
        return UNEXPECTED_ERROR


if __name__ == "__main__":
    sys.exit(main())
