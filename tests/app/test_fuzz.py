"""Random bodies and headers against a real server: never a 500, always the error format."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import ServerProcess, examples

OPERATOR = {"Authorization": "Bearer operator-secret-token"}
# pyproject's 120 s per test, scaled with the examples of a full run.
pytestmark = pytest.mark.timeout(examples(120))

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
field_values = st.sampled_from(
    [
        "e4",
        "e2e4",
        "O-O",
        "0000",
        "--",
        "Nf3",
        "x",
        "",
        "1-0",
        "offer",
        "claim",
        "server",
        "relay",
        -1,
        0,
        5400,
        10**12,
        None,
        True,
        [],
        {},
    ]
)
shaped = st.fixed_dictionaries(
    {},
    optional={
        "move": field_values,
        "ply": field_values,
        "clock_ms": field_values,
        "action": field_values,
        "result": field_values,
        "reason": field_values,
        "white": st.one_of(
            field_values,
            st.fixed_dictionaries({"name": field_values}, optional={"rating": field_values}),
        ),
        "black": st.one_of(field_values, st.fixed_dictionaries({"name": field_values})),
        "clock": st.one_of(
            field_values,
            st.fixed_dictionaries({"initial": field_values}, optional={"increment": field_values}),
        ),
        "fen": st.one_of(field_values, st.text(max_size=90)),
        "mode": field_values,
    },
)
ROUTES = ["", "/{id}/start", "/{id}/moves", "/{id}/resign", "/{id}/draw", "/{id}/result"]


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ServerProcess, str, dict[str, str]]]:
    """One real server with one started game."""
    proc = ServerProcess(
        Path(tmp_path_factory.mktemp("fuzz")) / "data",
        env={"GM_PLAYER_REQUESTS_PER_S": "100000", "GM_PLAYER_REQUESTS_BURST": "100000"},
    )
    proc.start()
    try:
        body = {"white": {"name": "W"}, "black": {"name": "B"}, "clock": {"initial": 600}}
        r = httpx.post(proc.url + "/api/games", json=body, headers=OPERATOR)
        game = r.json()
        httpx.post(proc.url + f"/api/games/{game['game']['id']}/start", headers=OPERATOR)
        with httpx.Client(base_url=proc.url, timeout=10) as client:
            yield client, game["game"]["id"], game["tokens"]
        log = proc.log_since(0)
        assert "Traceback" not in log, log
    finally:
        proc.stop()


@settings(
    max_examples=examples(300),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    route=st.sampled_from(ROUTES),
    body=st.one_of(shaped, json_values.map(lambda v: v), st.binary(max_size=64)),
    who=st.sampled_from(["operator", "white", "black", "nobody", "garbage"]),
    content_type=st.sampled_from(["application/json", "text/plain", None]),
)
def test_no_input_produces_a_server_error(
    server: tuple[httpx.Client, str, dict[str, str]],
    route: str,
    body: object,
    who: str,
    content_type: str | None,
) -> None:
    """Whatever is posted, the answer is a contract status with the error format on failure."""
    client, game_id, tokens = server
    headers: dict[str, str] = {}
    if who == "operator":
        headers.update(OPERATOR)
    elif who in tokens:
        headers["Authorization"] = f"Bearer {tokens[who]}"
    elif who == "garbage":
        headers["Authorization"] = "Bearer \\u0000??"
    if content_type:
        headers["Content-Type"] = content_type
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    r = client.post("/api/games" + route.format(id=game_id), content=content, headers=headers)
    assert_contract_answer(client, r)


def assert_contract_answer(client: httpx.Client, r: httpx.Response) -> None:
    """A contract status, the error format on failure, and a server still healthy."""
    assert r.status_code in {200, 201, 400, 401, 403, 404, 409, 413, 422, 429}, (
        r.status_code,
        r.text,
    )
    if r.status_code >= 400:
        error = r.json()["error"]
        assert isinstance(error["code"], str)
        assert isinstance(error["message"], str)
    assert client.get("/healthz").status_code == 200


TOURNAMENT_ROUTES = [
    "",
    "/{id}/players",
    "/{id}/players/{player}/withdraw",
    "/{id}/players/{player}/bye",
    "/{id}/rounds",
    "/{id}/rounds/1/results",
    "/{id}/rounds/1/pgn",
    "/{id}/rounds/7/pgn",
]
tournament_shaped = st.fixed_dictionaries(
    {},
    optional={
        "name": field_values,
        "format": st.one_of(field_values, st.sampled_from(["swiss", "round_robin"])),
        "rounds": field_values,
        "clock": field_values,
        "players": st.one_of(field_values, st.lists(st.fixed_dictionaries({"name": field_values}))),
        "tiebreaks": st.one_of(field_values, st.lists(st.sampled_from(["BH", "XX", "SB", ""]))),
        "delay": field_values,
        "board": field_values,
        "result": st.one_of(field_values, st.sampled_from(["1-0", "+/-", "-/-", "*"])),
        "round": field_values,
        "points": field_values,
        "start_at": st.one_of(field_values, st.sampled_from(["2030-01-01T10:00:00Z", "soon"])),
    },
)


@pytest.fixture(scope="module")
def tournament_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[httpx.Client, str, str]]:
    """One real server with a relay Swiss whose first round is paired."""
    proc = ServerProcess(Path(tmp_path_factory.mktemp("fuzz-t")) / "data")
    proc.start()
    try:
        body = {
            "name": "Fuzz",
            "format": "swiss",
            "rounds": 2,
            "mode": "relay",
            "clock": {"initial": 600},
            "players": [{"name": f"P{i}"} for i in range(4)],
        }
        t = httpx.post(proc.url + "/api/tournaments", json=body, headers=OPERATOR).json()
        httpx.post(proc.url + f"/api/tournaments/{t['id']}/rounds", json={}, headers=OPERATOR)
        with httpx.Client(base_url=proc.url, timeout=60) as client:
            yield client, t["id"], t["players"][0]["id"]
        log = proc.log_since(0)
        assert "Traceback" not in log, log
    finally:
        proc.stop()


@settings(
    max_examples=examples(200),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    route=st.sampled_from(TOURNAMENT_ROUTES),
    body=st.one_of(tournament_shaped, json_values, st.binary(max_size=64)),
    who=st.sampled_from(["operator", "nobody", "garbage"]),
    content_type=st.sampled_from(["application/json", "text/plain", None]),
)
def test_no_tournament_input_produces_a_server_error(
    tournament_server: tuple[httpx.Client, str, str],
    route: str,
    body: object,
    who: str,
    content_type: str | None,
) -> None:
    """Whatever is posted to a tournament route, the answer is a contract status, errors in the contract's format."""
    client, tid, player = tournament_server
    headers: dict[str, str] = {}
    if who == "operator":
        headers.update(OPERATOR)
    elif who == "garbage":
        headers["Authorization"] = "Bearer \\u0000??"
    if content_type:
        headers["Content-Type"] = content_type
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    path = "/api/tournaments" + route.format(id=tid, player=player)
    assert_contract_answer(client, client.post(path, content=content, headers=headers))
