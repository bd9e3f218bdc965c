#!/usr/bin/env python3
"""A stand-in for a bbpPairings executable: ``fake_bbp.py --dutch in.trf -p out.txt``.

It checks the command line the way bbpPairings accepts it, then pairs with py4swiss
(``workers.pairing_py4swiss``), or, as ``FAKE_BBP_MODE`` says, fails like bbpPairings:
``exit1`` (no valid pairing), ``exit3`` (invalid input), ``exit5`` (file error),
``garbage`` (exit 0 with malformed pairings), ``hang`` (never answers; writes its pid to
``FAKE_BBP_PIDFILE`` first). Tests copy it and point its shebang at their Python.
"""

import os
import sys
import time
from pathlib import Path

from workers.pairing_py4swiss import run

args = sys.argv[1:]
if len(args) != 4 or args[0] != "--dutch" or args[2] != "-p":
    print(
        f"Command line argument syntax: {sys.argv[0]} --dutch [input-file] -p [output-file]",
        file=sys.stderr,
    )
    sys.exit(3)
mode = os.environ.get("FAKE_BBP_MODE", "ok")
if mode == "exit1":
    print(f"Error while pairing {args[1]}: No valid pairing exists: fake", file=sys.stderr)
    sys.exit(1)
if mode == "exit3":
    print(f'Error parsing file {args[1]}: Invalid line "001 fake"', file=sys.stderr)
    sys.exit(3)
if mode == "exit5":
    print(f"The output file ({args[3]}) could not be opened.", file=sys.stderr)
    sys.exit(5)
if mode == "garbage":
    Path(args[3]).write_text("2\n1 2\n", encoding="utf-8")
    sys.exit(0)
if mode == "hang":
    Path(os.environ["FAKE_BBP_PIDFILE"]).write_text(str(os.getpid()), encoding="utf-8")
    time.sleep(600)
sys.exit(run(Path(args[1]), Path(args[3])))
