"""The OpenAPI is complete and true: schemathesis runs every documented operation against a
real server with every check on (server errors, status codes, content types, headers and
bodies against their schemas, positive and negative data, auth enforced).

The server is a subprocess (``python -m app``) with analysis off, anonymous rate limiting
off and a high player rate limit, so that a refusal is the route's own. It holds a started
game, a paired Swiss tournament, a broadcast with a round and a personal token, whose ids
the hooks (``tests/app/openapi_hooks.py``) give as path parameters. Every request carries
the operator token, or the game's White token on the players' routes (``ignored_auth``
removes it and expects 401 or 403).

``GM_TEST_FULL=1`` runs more examples per operation (``make test-full``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ROOT, ServerProcess

FULL = os.environ.get("GM_TEST_FULL") == "1"
MAX_EXAMPLES = 200 if FULL else 3
# The streams never end while their game or round lives: a request to one would wait for
# the timeout. They are tested in test_live.py and test_lichess_api.py.
STREAMS = r"^/api/stream/"


def populate(url: str, operator: str) -> dict[str, Any]:
    """Create the objects the path parameters name; their ids by parameter name."""
    auth = {"Authorization": f"Bearer {operator}"}
    with httpx.Client(base_url=url, headers=auth, timeout=30) as client:

        def post(path: str, **kwargs: Any) -> Any:
            r = client.post(path, **kwargs)
            assert r.status_code in (200, 201), r.text
            return r.json()

        created = post(
            "/api/games",
            json={
                "white": {"name": "W"},
                "black": {"name": "B"},
                "clock": {"initial": 3600, "increment": 0},
            },
        )
        game = created["game"]["id"]
        post(f"/api/games/{game}/start")
        tournament = post(
            "/api/tournaments",
            json={
                "name": "Conformance Open",
                "format": "swiss",
                "rounds": 3,
                "clock": {"initial": 3600, "increment": 0},
                "players": [{"name": f"P{i}"} for i in range(4)],
            },
        )
        post(f"/api/tournaments/{tournament['id']}/rounds", json={})
        tour = post("/broadcast/new", json={"name": "Conformance Broadcast"})["tour"]["id"]
        rnd = post(f"/broadcast/{tour}/new", json={"name": "Round 1"})["round"]["id"]
        token = post("/api/tokens", json={"account": "Alice"})
        revoked = post("/api/tokens", json={"account": "Bob"})["token"]
    return {
        "game_id": game,
        "tournament_id": tournament["id"],
        "player_id": tournament["players"][0]["id"],
        "round_no": 1,
        "tour_id": tour,
        "round_id": rnd,
        "tour_slug": "-",
        "round_slug": "-",
        "user": "operator",
        "token_id": token["id"],
        "player_token": created["tokens"]["white"],
        "account_token": revoked,
    }


# The checks' own lists of refusals, and 413: a body over the server's byte limit is
# refused whatever its schema says (the limit is in bytes, which JSON Schema cannot state).
CONFIG = """
[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422",
                     "428", "429", "5xx"]
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "413", "429", "5xx"]
"""


def run_schemathesis(url: str, operator: str, ids: dict[str, Any], tmp: Path) -> tuple[int, str]:
    """``schemathesis run`` over the served OpenAPI; its exit code and output."""
    config = tmp / "schemathesis.toml"
    # The players' own routes (resign, draw) with the game's White token, and an account's
    # revocation of its own token with Bob's: the operator's is refused there, whatever
    # the request.
    config.write_text(
        CONFIG
        + '[[operations]]\ninclude-path-regex = "/(resign|draw)$"\n'
        + f'headers = {{ Authorization = "Bearer {ids["player_token"]}" }}\n'
        + '[[operations]]\ninclude-path-regex = "^/api/token$"\n'
        + f'headers = {{ Authorization = "Bearer {ids["account_token"]}" }}\n'
    )
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "tests.app.openapi_hooks",
        "GM_OPENAPI_IDS": json.dumps(ids),
        "PYTHONPATH": str(ROOT),
        "NO_COLOR": "1",
    }
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(config),
        "run",
        f"{url}/openapi.json",
        "--checks",
        "all",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        "20261130",
        "--workers",
        "1",
        "--header",
        f"Authorization: Bearer {operator}",
        "--exclude-path-regex",
        STREAMS,
        "--request-timeout",
        "30",
        "--generation-database",
        "none",
        "--no-color",
        "--report",
        "junit",
        "--report-dir",
        str(tmp),
    ]
    done = subprocess.run(
        command, cwd=tmp, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    return done.returncode, done.stdout + done.stderr


@pytest.mark.timeout(700)
def test_every_operation_conforms_to_the_openapi(tmp_path: Path) -> None:
    """schemathesis finds no failure of any check on any operation: no server error, no answer off its schema, no ignored auth."""
    server = ServerProcess(
        tmp_path / "data",
        env={
            "GM_ANON_REQUESTS_PER_S": "0",
            "GM_PLAYER_REQUESTS_PER_S": "10000",
            "GM_PLAYER_REQUESTS_BURST": "10000",
        },
    )
    server.start()
    try:
        ids = populate(server.url, "operator-secret-token")
        code, output = run_schemathesis(server.url, "operator-secret-token", ids, tmp_path)
    finally:
        server.stop()
    print(output)
    generated = re.search(r"(\d+) generated", output)
    assert generated is not None and int(generated.group(1)) > 0, output[-5000:]
    assert "Runtime Error" not in output, output[-20000:]
    # Each failure is listed as "- <code> <title>" at the start of a line.
    failures = [line for line in output.splitlines() if line.startswith("- ")]
    assert not failures, output[-20000:]
    assert code == 0, output[-20000:]
    log = server.log_since(server.log_offset)
    assert "Traceback" not in log, log[-5000:]
