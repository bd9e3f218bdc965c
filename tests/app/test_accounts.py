"""Accounts, personal tokens and lichess-compatible OAuth 2 PKCE, through real HTTP."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import re
import secrets
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from starlette.requests import Request

from app import Settings, create_app
from app.auth import Account, Operator, Seat, Tokens, token_digest
from app.errors import ApiError
from app.factory import end_streams
from app.server import Server, uvicorn_config
from tests.conftest import ROOT, LiveServer, free_port, free_socket, serve

OPERATOR = "operator-secret-token"
# The Broadcaster app's client id (its bundle identifier) and scopes.
CLIENT_ID = "org.lichess.broadcaster"
SCOPES = "study:read study:write"
YEAR_S = 365 * 86_400


def error_code(r: httpx.Response) -> str:
    """The contract's error code of a response."""
    body = r.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message"}
    code: str = body["error"]["code"]
    return code


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def create_token(
    client: httpx.AsyncClient, account: str = "Alice", **body: object
) -> dict[str, str]:
    """A personal token made with the operator token."""
    r = await client.post(
        "/api/tokens", json={"account": account, **body}, headers=bearer(OPERATOR)
    )
    assert r.status_code == 201, r.text
    data: dict[str, str] = r.json()
    return data


class WallClock:
    """A Unix-ms wall clock that tests move by hand; it starts at the real time."""

    def __init__(self) -> None:
        self.ms = time.time_ns() // 1_000_000

    def __call__(self) -> int:
        return self.ms

    def advance(self, ms: int) -> None:
        self.ms += ms


@contextlib.asynccontextmanager
async def serve_at(data_dir: Path, clock: WallClock) -> AsyncIterator[httpx.AsyncClient]:
    """Like ``serve`` (the real app under uvicorn), with the wall clock injected."""
    settings = Settings(data_dir=data_dir, operator_token=OPERATOR, analysis=False)
    app = create_app(settings, wall_ms=clock)
    sock = free_socket()
    server = Server(
        uvicorn_config(app, settings, log_level="warning"), on_stop=lambda: end_streams(app)
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        try:
            yield client
        finally:
            server.should_exit = True
            await task
            sock.close()


# --- personal tokens ---


async def test_operator_creates_lists_and_revokes_tokens(
    live: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A token made by the operator works at once, is listed without its secret, and is
    refused (401) once revoked; the secret is never logged."""
    caplog.set_level(logging.DEBUG)
    client = live.client
    made = await create_token(client, "Alice", description="venue laptop", scopes=["study:write"])
    assert set(made) == {"id", "token", "account", "scopes", "description", "expires_at"}
    assert made["account"] == "Alice"
    assert made["scopes"] == ["study:write"]
    assert made["description"] == "venue laptop"
    assert made["id"].isalnum() and len(made["id"]) >= 8
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", made["expires_at"])
    year = time.strftime("%Y", time.gmtime(time.time() + YEAR_S - 86_400))
    assert made["expires_at"] >= year

    r = await client.get("/api/account", headers=bearer(made["token"]))
    assert r.status_code == 200
    assert r.json()["id"] == "alice"
    assert r.json()["username"] == "Alice"

    listed = await client.get("/api/tokens", headers=live.auth())
    assert listed.status_code == 200
    assert made["token"] not in listed.text
    [entry] = listed.json()["tokens"]
    assert entry["id"] == made["id"]
    assert entry["account"] == "Alice"
    assert entry["scopes"] == ["study:write"]
    assert entry["expired"] is False
    assert "token" not in entry

    r = await client.delete(f"/api/tokens/{made['id']}", headers=live.auth())
    assert r.status_code == 204
    r = await client.get("/api/account", headers=bearer(made["token"]))
    assert r.status_code == 401
    assert error_code(r) == "unauthorized"
    assert (await client.get("/api/tokens", headers=live.auth())).json() == {"tokens": []}
    r = await client.delete(f"/api/tokens/{made['id']}", headers=live.auth())
    assert r.status_code == 404
    assert error_code(r) == "not_found"
    assert all(made["token"] not in record.getMessage() for record in caplog.records)


async def test_token_routes_are_for_the_operator_only(live: LiveServer) -> None:
    """No token is 401; an account's or a player's token is 403 on ``/api/tokens``."""
    made = await create_token(live.client)
    _, seats = await live.create_game()
    for headers, status in (
        (None, 401),
        (bearer(made["token"]), 403),
        (bearer(seats["white"]), 403),
    ):
        r = await live.client.post(
            "/api/tokens", json={"account": "Mallory"}, headers=headers or {}
        )
        assert r.status_code == status
        r = await live.client.get("/api/tokens", headers=headers or {})
        assert r.status_code == status
        r = await live.client.delete(f"/api/tokens/{made['id']}", headers=headers or {})
        assert r.status_code == status
    r = await live.client.get("/api/account", headers=bearer(made["token"]))
    assert r.status_code == 200


async def test_account_tokens_are_neither_operator_nor_player(live: LiveServer) -> None:
    """An account's token may not create games nor move in one (403), even with every scope."""
    made = await create_token(live.client)
    game_id, _ = await live.started_game()
    r = await live.client.post(
        "/api/games",
        json={"white": {"name": "A"}, "black": {"name": "B"}, "clock": {"initial": 60}},
        headers=bearer(made["token"]),
    )
    assert r.status_code == 403
    r = await live.client.post(
        f"/api/games/{game_id}/moves", json={"move": "e4", "ply": 0}, headers=bearer(made["token"])
    )
    assert r.status_code == 403
    assert error_code(r) == "forbidden"
    game = (await live.client.get(f"/api/games/{game_id}")).json()
    assert game["ply"] == 0


@pytest.mark.parametrize(
    "body",
    [
        {"account": "Alice", "scopes": ["board:play"]},
        {"account": "x"},
        {"account": "bad name"},
        {"account": "Alice", "expires_days": 0},
        {"account": "Alice", "colour": "white"},
        {"account": "Alice", "scopes": "study:read"},
    ],
)
async def test_create_token_refuses_bad_bodies(live: LiveServer, body: dict[str, object]) -> None:
    """Unknown scopes, bad names, a lifetime under a day, unknown fields: 422 ``invalid``."""
    r = await live.client.post("/api/tokens", json=body, headers=live.auth())
    assert r.status_code == 422
    assert error_code(r) == "invalid"


async def test_tokens_and_revocations_survive_a_restart(tmp_path: Path) -> None:
    """Tokens are stored (as digests only) and loaded at start; revoked ones stay revoked."""
    data = tmp_path / "data"
    async with serve(data) as server:
        kept = await create_token(server.client, "Alice")
        dropped = await create_token(server.client, "alice", description="second")
        r = await server.client.delete(f"/api/tokens/{dropped['id']}", headers=server.auth())
        assert r.status_code == 204
    raw = (data / "grandmaster.sqlite3").read_bytes()
    wal = data / "grandmaster.sqlite3-wal"
    raw += wal.read_bytes() if wal.exists() else b""
    assert kept["token"].encode() not in raw
    with sqlite3.connect(data / "grandmaster.sqlite3") as conn:
        digests = {row[0] for row in conn.execute("SELECT digest FROM access_tokens")}
    assert token_digest(kept["token"]) in digests
    async with serve(data) as server:
        r = await server.client.get("/api/account", headers=bearer(kept["token"]))
        assert r.status_code == 200
        assert r.json()["username"] == "Alice"
        r = await server.client.get("/api/account", headers=bearer(dropped["token"]))
        assert r.status_code == 401
        [entry] = (await server.client.get("/api/tokens", headers=server.auth())).json()["tokens"]
        assert entry["id"] == kept["id"]


async def test_expired_token_is_unauthorized(tmp_path: Path) -> None:
    """A token is refused (401) from its expiry on, and listed as expired."""
    clock = WallClock()
    async with serve_at(tmp_path / "data", clock) as client:
        made = await create_token(client, "Alice", expires_days=1)
        assert (await client.get("/api/account", headers=bearer(made["token"]))).status_code == 200
        clock.advance(86_400_000 - 1)
        assert (await client.get("/api/account", headers=bearer(made["token"]))).status_code == 200
        clock.advance(1)
        r = await client.get("/api/account", headers=bearer(made["token"]))
        assert r.status_code == 401
        [entry] = (await client.get("/api/tokens", headers=bearer(OPERATOR))).json()["tokens"]
        assert entry["expired"] is True


async def test_account_of_the_operator_token_is_named_by_the_setting(tmp_path: Path) -> None:
    """``GET /api/account`` with the operator token is the account ``GM_OPERATOR_NAME``."""
    async with serve(tmp_path / "a") as server:
        r = await server.client.get("/api/account", headers=server.auth())
        assert r.status_code == 200
        assert r.json()["id"] == "operator"
        assert r.json()["username"] == "operator"
    async with serve(tmp_path / "b", operator_name="Chief-Arbiter") as server:
        r = await server.client.get("/api/account", headers=server.auth())
        assert (r.json()["id"], r.json()["username"]) == ("chief-arbiter", "Chief-Arbiter")
        assert (await server.client.get("/api/account")).status_code == 401
        _, seats = await server.create_game()
        r = await server.client.get("/api/account", headers=bearer(seats["black"]))
        assert r.status_code == 403


# --- Tokens.require_scope and the identities ---


def request_with(token: str | None) -> Request:
    headers = [] if token is None else [(b"authorization", f"Bearer {token}".encode())]
    return Request({"type": "http", "method": "GET", "path": "/", "headers": headers})


def refusal(call: object) -> tuple[int, str]:
    assert callable(call)
    with pytest.raises(ApiError) as caught:
        call()
    return caught.value.status, caught.value.message


def test_require_scope_checks_the_token_scopes() -> None:
    """The operator passes every scope; an account only those its token has (403 naming the
    missing one); players are 403; no, unknown or expired tokens are 401."""
    now = [1_000]
    tokens = Tokens(OPERATOR, wall_ms=lambda: now[0])
    reader = Account("Alice", frozenset({"study:read"}), "tok1")
    tokens.add_account(token_digest("alice-token"), reader, expires_ms=2_000)
    tokens.add_seat(token_digest("seat-token"), Seat("game1", True))

    assert tokens.require_scope(request_with(OPERATOR), "study:write") == Operator()
    assert tokens.require_scope(request_with("alice-token"), "study:read") == reader
    status, message = refusal(
        lambda: tokens.require_scope(request_with("alice-token"), "study:write")
    )
    assert status == 403
    assert "study:write" in message
    assert refusal(lambda: tokens.require_scope(request_with("seat-token"), "study:read"))[0] == 403
    assert refusal(lambda: tokens.require_scope(request_with(None), "study:read"))[0] == 401
    assert refusal(lambda: tokens.require_scope(request_with("nope"), "study:read"))[0] == 401
    assert refusal(lambda: tokens.require_operator(request_with("alice-token")))[0] == 403
    assert tokens.require_operator(request_with(OPERATOR)) == Operator()
    assert (
        refusal(lambda: tokens.require_seat_or_operator(request_with("alice-token"), "game1"))[0]
        == 403
    )
    now[0] = 2_000
    assert (
        refusal(lambda: tokens.require_scope(request_with("alice-token"), "study:read"))[0] == 401
    )
    now[0] = 1_000
    tokens.remove_account(token_digest("alice-token"))
    assert (
        refusal(lambda: tokens.require_scope(request_with("alice-token"), "study:read"))[0] == 401
    )


# --- OAuth 2 PKCE, as the Broadcaster app performs it ---


def pkce_pair() -> tuple[str, str]:
    """A code verifier and its S256 challenge, as oauth2-rs makes them."""
    verifier = secrets.token_urlsafe(32)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


def authorize_params(
    challenge: str, redirect_uri: str, overrides: dict[str, str] | None = None
) -> dict[str, str]:
    """The query of ``GET /oauth`` as oauth2-rs builds it; ``"<omit>"`` leaves one out."""
    params = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": redirect_uri,
        "code_challenge_method": "S256",
        "code_challenge": challenge,
        "scope": SCOPES,
        "state": secrets.token_urlsafe(16),
    }
    params.update(overrides or {})
    return {k: v for k, v in params.items() if v != "<omit>"}


def pending_id(page: httpx.Response) -> str:
    found = re.search(r'name="request" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


async def approve(
    client: httpx.AsyncClient, params: dict[str, str], credential: str = OPERATOR
) -> httpx.Response:
    """Open the approval page and submit it with ``credential``; the unfollowed answer."""
    page = await client.get("/oauth", params=params)
    assert page.status_code == 200, page.text
    return await client.post(
        "/oauth/approve",
        data={"request": pending_id(page), "token": credential, "action": "approve"},
        follow_redirects=False,
    )


async def code_for(
    client: httpx.AsyncClient, challenge: str, redirect_uri: str, credential: str = OPERATOR
) -> str:
    r = await approve(client, authorize_params(challenge, redirect_uri), credential)
    assert r.status_code == 302, r.text
    return parse_qs(urlsplit(r.headers["location"]).query)["code"][0]


def exchange_form(code: str, verifier: str, redirect_uri: str) -> dict[str, str]:
    """The form of ``POST /api/token`` as oauth2-rs sends it."""
    form = {
        "grant_type": "authorization_code",
        "client_id": CLIENT_ID,
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": verifier,
    }
    return form


def oauth_error(r: httpx.Response) -> str:
    """The lichess-shaped refusal of ``POST /api/token``: 400 ``{"error", "error_description"}``."""
    assert r.status_code == 400, r.text
    body = r.json()
    assert set(body) == {"error", "error_description"}
    error: str = body["error"]
    return error


async def test_pkce_flow_end_to_end(live: LiveServer) -> None:
    """The Broadcaster app's login: approval page, 302 to its localhost listener with code
    and state, code and verifier for a year-long token, the account, then logout."""
    client = live.client
    verifier, challenge = pkce_pair()
    redirect_uri = f"http://localhost:{free_port()}/"
    params = authorize_params(challenge, redirect_uri)

    page = await client.get("/oauth", params=params)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "frame-ancestors 'none'" in policy
    assert CLIENT_ID in page.text
    assert "study:read" in page.text and "study:write" in page.text
    assert challenge not in page.text

    r = await client.post(
        "/oauth/approve",
        data={"request": pending_id(page), "token": OPERATOR, "action": "approve"},
        follow_redirects=False,
    )
    assert r.status_code == 302
    location = urlsplit(r.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == redirect_uri
    query = parse_qs(location.query)
    assert query["state"] == [params["state"]]
    [code] = query["code"]

    r = await client.post("/api/token", data=exchange_form(code, verifier, redirect_uri))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    grant = r.json()
    assert set(grant) == {"token_type", "access_token", "expires_in"}
    assert grant["token_type"] == "Bearer"
    # The app takes a token expiring within eleven months for an expired one.
    assert YEAR_S - 60 <= grant["expires_in"] <= YEAR_S
    token = grant["access_token"]

    r = await client.get("/api/account", headers=bearer(token))
    assert r.status_code == 200
    assert r.json()["id"] == "operator"
    assert r.json()["username"] == "operator"
    [listed] = (await client.get("/api/tokens", headers=live.auth())).json()["tokens"]
    assert listed["scopes"] == ["study:read", "study:write"]
    assert CLIENT_ID in listed["description"]

    r = await client.delete("/api/token", headers=bearer(token))
    assert r.status_code == 204
    r = await client.get("/api/account", headers=bearer(token))
    assert r.status_code == 401
    assert (await client.delete("/api/token", headers=bearer(token))).status_code == 401


async def test_personal_token_approves_for_its_account_within_its_scopes(
    live: LiveServer,
) -> None:
    """Approving with an account's token gives that account a token; a token lacking a
    requested scope, a player's token or an unknown one cannot approve, and the request
    stays open for another try."""
    client = live.client
    reader = await create_token(client, "Bob", scopes=["study:read"])
    writer = await create_token(client, "Carol", scopes=["study:read", "study:write"])
    _, seats = await live.create_game()
    verifier, challenge = pkce_pair()
    redirect_uri = f"http://127.0.0.1:{free_port()}/callback"

    page = await client.get("/oauth", params=authorize_params(challenge, redirect_uri))
    request_id = pending_id(page)
    for credential, status in (
        (reader["token"], 403),
        (seats["white"], 403),
        ("not-a-token", 401),
        ("", 401),
    ):
        r = await client.post(
            "/oauth/approve",
            data={"request": request_id, "token": credential, "action": "approve"},
            follow_redirects=False,
        )
        assert r.status_code == status
        assert "location" not in r.headers
        assert pending_id(r) == request_id
    r = await client.post(
        "/oauth/approve",
        data={"request": request_id, "token": reader["token"], "action": "approve"},
        follow_redirects=False,
    )
    assert "study:write" in r.text

    r = await client.post(
        "/oauth/approve",
        data={"request": request_id, "token": writer["token"], "action": "approve"},
        follow_redirects=False,
    )
    assert r.status_code == 302
    code = parse_qs(urlsplit(r.headers["location"]).query)["code"][0]
    r = await client.post("/api/token", data=exchange_form(code, verifier, redirect_uri))
    assert r.status_code == 200
    r = await client.get("/api/account", headers=bearer(r.json()["access_token"]))
    assert r.json()["username"] == "Carol"

    # Answered: the same approval form is refused now.
    r = await client.post(
        "/oauth/approve",
        data={"request": request_id, "token": OPERATOR, "action": "approve"},
        follow_redirects=False,
    )
    assert r.status_code == 400
    assert "location" not in r.headers


async def test_deny_redirects_with_access_denied(live: LiveServer) -> None:
    """Denying sends the browser back with ``error=access_denied`` and the state; no code."""
    _, challenge = pkce_pair()
    redirect_uri = f"http://localhost:{free_port()}/"
    params = authorize_params(challenge, redirect_uri)
    page = await live.client.get("/oauth", params=params)
    r = await live.client.post(
        "/oauth/approve",
        data={"request": pending_id(page), "token": "", "action": "deny"},
        follow_redirects=False,
    )
    assert r.status_code == 302
    query = parse_qs(urlsplit(r.headers["location"]).query)
    assert query["error"] == ["access_denied"]
    assert query["state"] == [params["state"]]
    assert "code" not in query


async def test_state_is_optional(live: LiveServer) -> None:
    """A request without ``state`` is approved, and the redirect carries no state."""
    verifier, challenge = pkce_pair()
    redirect_uri = f"http://localhost:{free_port()}/"
    r = await approve(live.client, authorize_params(challenge, redirect_uri, {"state": "<omit>"}))
    assert r.status_code == 302
    query = parse_qs(urlsplit(r.headers["location"]).query, keep_blank_values=True)
    assert set(query) == {"code"}
    r = await live.client.post(
        "/api/token", data=exchange_form(query["code"][0], verifier, redirect_uri)
    )
    assert r.status_code == 200


async def test_wrong_verifier_is_refused_and_uses_up_the_code(live: LiveServer) -> None:
    """A verifier that does not hash to the challenge is ``invalid_grant``; the code is gone."""
    verifier, challenge = pkce_pair()
    other, _ = pkce_pair()
    redirect_uri = f"http://localhost:{free_port()}/"
    code = await code_for(live.client, challenge, redirect_uri)
    r = await live.client.post("/api/token", data=exchange_form(code, other, redirect_uri))
    assert oauth_error(r) == "invalid_grant"
    assert "code_verifier" in r.json()["error_description"]
    r = await live.client.post("/api/token", data=exchange_form(code, verifier, redirect_uri))
    assert oauth_error(r) == "invalid_grant"
    assert (await live.client.get("/api/tokens", headers=live.auth())).json() == {"tokens": []}


async def test_client_id_may_come_in_basic_auth(live: LiveServer) -> None:
    """A client naming itself with HTTP Basic auth instead of a ``client_id`` field is heard."""
    verifier, challenge = pkce_pair()
    redirect_uri = f"http://localhost:{free_port()}/"
    code = await code_for(live.client, challenge, redirect_uri)
    form = exchange_form(code, verifier, redirect_uri)
    del form["client_id"]
    basic = base64.b64encode(f"{CLIENT_ID}:".encode()).decode()
    r = await live.client.post("/api/token", data=form, headers={"Authorization": f"Basic {basic}"})
    assert r.status_code == 200, r.text


async def test_code_is_single_use(live: LiveServer) -> None:
    """A code already exchanged is ``invalid_grant``."""
    verifier, challenge = pkce_pair()
    redirect_uri = f"http://localhost:{free_port()}/"
    code = await code_for(live.client, challenge, redirect_uri)
    form = exchange_form(code, verifier, redirect_uri)
    assert (await live.client.post("/api/token", data=form)).status_code == 200
    r = await live.client.post("/api/token", data=form)
    assert oauth_error(r) == "invalid_grant"


async def test_code_expires_after_a_minute(tmp_path: Path) -> None:
    """A code is refused (``invalid_grant``) sixty seconds after the approval."""
    clock = WallClock()
    async with serve_at(tmp_path / "data", clock) as client:
        verifier, challenge = pkce_pair()
        redirect_uri = f"http://localhost:{free_port()}/"
        fresh = await code_for(client, challenge, redirect_uri)
        stale = await code_for(client, challenge, redirect_uri)
        clock.advance(59_999)
        r = await client.post("/api/token", data=exchange_form(fresh, verifier, redirect_uri))
        assert r.status_code == 200
        clock.advance(1)
        r = await client.post("/api/token", data=exchange_form(stale, verifier, redirect_uri))
        assert oauth_error(r) == "invalid_grant"
        assert "expired" in r.json()["error_description"]


@pytest.mark.parametrize(
    ("override", "description"),
    [
        ({"redirect_uri": "http://localhost:1/other"}, "redirect_uri"),
        ({"client_id": "someone.else"}, "client_id"),
    ],
)
async def test_code_is_bound_to_its_request(
    live: LiveServer, override: dict[str, str], description: str
) -> None:
    """A code presented with another redirect_uri or client_id is ``invalid_grant``."""
    verifier, challenge = pkce_pair()
    redirect_uri = f"http://localhost:{free_port()}/"
    code = await code_for(live.client, challenge, redirect_uri)
    r = await live.client.post(
        "/api/token", data={**exchange_form(code, verifier, redirect_uri), **override}
    )
    assert oauth_error(r) == "invalid_grant"
    assert description in r.json()["error_description"]


@pytest.mark.parametrize(
    ("override", "error"),
    [
        ({"grant_type": "<omit>"}, "invalid_request"),
        ({"grant_type": "refresh_token"}, "unsupported_grant_type"),
        ({"code": "<omit>"}, "invalid_request"),
        ({"code_verifier": "<omit>"}, "invalid_request"),
        ({"code_verifier": "short"}, "invalid_request"),
        ({"redirect_uri": "<omit>"}, "invalid_request"),
        ({"client_id": "<omit>"}, "invalid_request"),
        ({"code": "gmc_unknown"}, "invalid_grant"),
    ],
)
async def test_token_exchange_refusals(
    live: LiveServer, override: dict[str, str], error: str
) -> None:
    """A malformed exchange is refused as lichess refuses it."""
    verifier, _ = pkce_pair()
    form = {**exchange_form("gmc_whatever", verifier, "http://localhost:1/"), **override}
    form = {k: v for k, v in form.items() if v != "<omit>"}
    assert oauth_error(await live.client.post("/api/token", data=form)) == error


@pytest.mark.parametrize(
    ("override", "shown"),
    [
        ({"code_challenge_method": "plain"}, "S256"),
        ({"code_challenge_method": "<omit>"}, "code_challenge_method required"),
        ({"code_challenge": "<omit>"}, "code_challenge required"),
        ({"code_challenge": "too-short"}, "code_challenge"),
        ({"response_type": "token"}, "response_type"),
        ({"client_id": "<omit>"}, "client_id required"),
        ({"scope": "study:read board:play"}, "invalid scope: board:play"),
        ({"redirect_uri": "<omit>"}, "redirect_uri required"),
        ({"redirect_uri": "http://evil.example/"}, "redirect_uri invalid"),
        ({"redirect_uri": "http://localhost.evil.example/"}, "redirect_uri invalid"),
        ({"redirect_uri": "http://localhost@evil.example/"}, "redirect_uri invalid"),
        ({"redirect_uri": "javascript:alert(1)"}, "redirect_uri invalid"),
        ({"redirect_uri": "http://localhost:99999/"}, "redirect_uri invalid"),
        ({"redirect_uri": "http://localhost:8/#frag"}, "redirect_uri invalid"),
    ],
)
async def test_bad_authorization_requests_get_a_page_not_a_redirect(
    live: LiveServer, override: dict[str, str], shown: str
) -> None:
    """Every invalid authorization request is a 400 HTML page saying why, never a redirect."""
    _, challenge = pkce_pair()
    params = authorize_params(challenge, f"http://localhost:{free_port()}/", override)
    r = await live.client.get("/oauth", params=params, follow_redirects=False)
    assert r.status_code == 400
    assert "location" not in r.headers
    assert r.headers["content-type"].startswith("text/html")
    assert shown in r.text
    assert 'name="request"' not in r.text


async def test_https_redirect_uri_is_allowed(live: LiveServer) -> None:
    """Any https redirect_uri is accepted; its query is kept and the code appended."""
    verifier, challenge = pkce_pair()
    redirect_uri = "https://broadcaster.example/callback?from=gm"
    r = await approve(live.client, authorize_params(challenge, redirect_uri))
    assert r.status_code == 302
    location = urlsplit(r.headers["location"])
    query = parse_qs(location.query)
    assert query["from"] == ["gm"]
    r = await live.client.post(
        "/api/token", data=exchange_form(query["code"][0], verifier, redirect_uri)
    )
    assert r.status_code == 200


# --- the command line ---


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", "token", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_cli_creates_a_token_the_server_accepts(tmp_path: Path) -> None:
    """``python -m app token create`` prints a token once; the server started on that data
    directory accepts it with the scopes given."""
    data = tmp_path / "data"
    result = run_cli(
        "create", "--account", "Dana", "--scopes", "study:read", "--description", "pusher",
        "--data-dir", str(data),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert token and "\n" not in token
    assert token not in result.stderr
    bad = run_cli("create", "--account", "Dana", "--scopes", "board:play", "--data-dir", str(data))
    assert bad.returncode == 2
    assert "board:play" in bad.stderr
    async with serve(data) as server:
        r = await server.client.get("/api/account", headers=bearer(token))
        assert r.status_code == 200
        assert r.json()["username"] == "Dana"
        [listed] = (await server.client.get("/api/tokens", headers=server.auth())).json()["tokens"]
        assert (listed["scopes"], listed["description"]) == (["study:read"], "pusher")
        tokens: Tokens = server.app.state.tokens  # type: ignore[attr-defined]
        identity = tokens.resolve(token)
        assert isinstance(identity, Account)
        assert identity.scopes == frozenset({"study:read"})
