"""schemathesis hooks of tests/app/test_openapi_conformance.py: path parameters that name
real objects.

The test creates a game, a tournament, a broadcast and its round, and a token, and passes
their ids in ``GM_OPENAPI_IDS`` (JSON, by path parameter name). Each path parameter of
that name gets the real id as its example, and generated cases name it half of the time,
so that requests reach past the 404 into the routes.

The OpenAPI names a few string formats JSON Schema cannot express (a legal FEN, a
printable name); each gets its generator here, as the formats' descriptions say.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from typing import Any

import chess
import schemathesis
from hypothesis import strategies as st

from app.schemas import FEN_FORMAT, NAME_FORMAT, TEXT_FORMAT, ZONED_TIME_FORMAT

# Printable, no double quote: letters of several scripts, digits, punctuation, spaces.
_PRINTABLE = st.characters(
    codec="utf-8",
    categories=("L", "N", "P", "S", "Zs"),
    exclude_characters='"\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006'
    "\u2007\u2008\u2009\u200a\u202f\u205f\u3000",
)
_FENS = [
    chess.STARTING_FEN,
    "r1bqkbnr/pppp1ppp/2n5/4p3/4P3/5N2/PPPP1PPP/RNBQKB1R w KQkq - 2 3",
    "8/8/8/4k3/8/8/4P3/4K3 w - - 0 1",
    "4k3/8/8/8/8/8/8/R3K2R w KQ - 0 1",
    "rnbqkbnr/pppppppp/8/8/4P3/8/PPPP1PPP/RNBQKBNR b KQkq e3 0 1",
]
schemathesis.openapi.format(
    NAME_FORMAT,
    st.text(_PRINTABLE, min_size=3, max_size=60).map(str.strip).filter(lambda s: len(s) >= 3),
)
schemathesis.openapi.format(TEXT_FORMAT, st.text(_PRINTABLE, max_size=100))
schemathesis.openapi.format(FEN_FORMAT, st.sampled_from(_FENS))
schemathesis.openapi.format(
    ZONED_TIME_FORMAT,
    st.datetimes(min_value=datetime(2000, 1, 2), max_value=datetime(2999, 12, 30)).map(
        lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ")
    ),
)


def _ids() -> dict[str, Any]:
    ids: dict[str, Any] = json.loads(os.environ.get("GM_OPENAPI_IDS", "{}"))
    return ids


@schemathesis.hook
def before_load_schema(context: Any, raw_schema: dict[str, Any]) -> None:
    """Each known path parameter's example is the real object's id."""
    ids = _ids()
    for operations in raw_schema.get("paths", {}).values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "path" and parameter["name"] in ids:
                    parameter["example"] = ids[parameter["name"]]


@schemathesis.hook
def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any]) -> Any:
    """The generated path parameters, or the same with the real ids."""
    ids = _ids()
    known = {name: ids[name] for name in path_parameters or {} if name in ids}
    if not known:
        return st.just(path_parameters)
    return st.sampled_from([path_parameters, {**path_parameters, **known}])
