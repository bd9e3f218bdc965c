"""Admission over real sockets against a real server process: slow and silent clients are
closed, connections over a cap are answered at once, proxies are trusted only when
configured, and spectators outlive the request deadlines. Also the guard on the uvicorn
internals app/http_protocol.py relies on."""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from uvicorn.middleware.proxy_headers import _TrustedHosts
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
from websockets.sync.client import connect as ws_connect

from app import Settings, http_protocol
from app.server import uvicorn_config
from tests.conftest import ROOT, ServerProcess, redis_server_or_skip

AUTH = {"Authorization": "Bearer operator-secret-token"}
# Generous bounds for a loaded CI machine: correctness, not speed.
WAIT_S = 30.0


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[list[ServerProcess]]:
    """Start servers with given settings; all are stopped after the test."""
    started: list[ServerProcess] = []
    yield started
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def deadlines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server with short header and body deadlines (0.5 s) and a long keep-alive (60 s),
    shared by the tests that count on nothing else (each server start costs seconds)."""
    server = ServerProcess(
        tmp_path_factory.mktemp("deadlines") / "data",
        env={"GM_HEADER_TIMEOUT_S": "0.5", "GM_BODY_TIMEOUT_S": "0.5", "GM_KEEP_ALIVE_S": "60"},
    )
    try:
        server.start()
        yield server
    finally:
        server.stop()


def start(started: list[ServerProcess], tmp_path: Path, **env: str) -> ServerProcess:
    server = ServerProcess(tmp_path / f"s{len(started)}" / "data", env=env)
    started.append(server)
    server.start()
    return server


def connect(server: ServerProcess, source: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket()
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", server.port))
    sock.settimeout(WAIT_S)
    return sock


def read_to_end(sock: socket.socket) -> bytes:
    """Everything until the server closes (a reset after its answer counts as closed)."""
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk


def parse(answer: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


def request(sock: socket.socket, path: str = "/healthz", extra: str = "") -> bytes:
    """One GET that closes the connection; the whole answer."""
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\n{extra}Connection: close\r\n\r\n".encode())
    return read_to_end(sock)


def error_code(answer: bytes) -> tuple[int, str, str]:
    status, _, body = parse(answer)
    error = json.loads(body)["error"]
    return status, error["code"], error["message"]


def is_closed(sock: socket.socket) -> bool:
    """Whether the server has closed ``sock`` (waits at most WAIT_S)."""
    try:
        return sock.recv(65536) == b""
    except ConnectionResetError:
        return True


def metric(server: ServerProcess, name: str) -> float:
    """One sample of the server's /metrics (asked from 127.0.0.9, outside any test's caps)."""
    with httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.9")) as client:
        text = client.get(server.url + "/metrics").text
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def metric_or_none(server: ServerProcess, name: str) -> float | None:
    """The sample, or None while the server refuses the scrape itself (a cap is full)."""
    try:
        return metric(server, name)
    except (AssertionError, httpx.TransportError):
        return None


def started_game(server: ServerProcess) -> str:
    r = httpx.post(
        server.url + "/api/games",
        json={"white": {"name": "W"}, "black": {"name": "B"}, "clock": {"initial": 600}},
        headers=AUTH,
    )
    assert r.status_code == 201, r.text
    game = r.json()["game"]["id"]
    assert httpx.post(f"{server.url}/api/games/{game}/start", headers=AUTH).status_code == 200
    return str(game)


def open_stream(server: ServerProcess, game: str, source: str, extra: str = "") -> socket.socket:
    """An NDJSON stream of ``game`` from ``source``, read up to its snapshot line."""
    sock = connect(server, source)
    sock.sendall(f"GET /api/stream/games/{game} HTTP/1.1\r\nHost: t\r\n{extra}\r\n".encode())
    data = b""
    while b'"snapshot"' not in data:
        chunk = sock.recv(65536)
        assert chunk, f"the stream closed: {data!r}"
        data += chunk
    assert data.startswith(b"HTTP/1.1 200"), data
    return sock


def upgrade(
    server: ServerProcess, game: str, source: str, extra: str = ""
) -> tuple[socket.socket, bytes]:
    """A WebSocket handshake for ``game`` from ``source``: the socket and the answer's head."""
    sock = connect(server, source)
    sock.sendall(
        (
            f"GET /ws/games/{game} HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            f"Sec-WebSocket-Version: 13\r\n{extra}\r\n"
        ).encode()
    )
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = sock.recv(65536)
        if not chunk:
            break
        answer += chunk
    return sock, answer


# --- deadlines ---


def test_a_connection_that_sends_nothing_is_closed(deadlines: ServerProcess) -> None:
    """A client that connects and never sends a request is closed without an answer."""
    server = deadlines
    idle = 'gm_connections_timed_out_total{phase="idle"}'
    before = metric_or_none(server, idle) or 0
    sock = connect(server)
    assert read_to_end(sock) == b""
    assert metric(server, idle) >= before + 1


def test_a_header_that_trickles_in_gets_408_and_the_connection_closes(
    make_server: list[ServerProcess], tmp_path: Path
) -> None:
    """A header sent a few bytes at a time, never finished, is cut: 408 in the contract's format."""
    server = start(make_server, tmp_path, GM_HEADER_TIMEOUT_S="1")
    sock = connect(server)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n")
    sock.settimeout(0.2)
    answer = b""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        try:
            sock.sendall(b"X-Slow: a\r\n")
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except (BrokenPipeError, ConnectionResetError):
            break
        if not chunk:
            break
        answer += chunk
    assert answer, "the server never answered the slow header"
    assert error_code(answer)[:2] == (408, "request_timeout")


def test_a_body_that_never_completes_gets_408_and_the_connection_closes(
    make_server: list[ServerProcess], tmp_path: Path
) -> None:
    """A request whose body stops short is answered 408 and closed."""
    server = start(make_server, tmp_path, GM_BODY_TIMEOUT_S="1")
    sock = connect(server)
    sock.sendall(
        b"POST /api/games HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer operator-secret-token\r\n"
        b"Content-Type: application/json\r\nContent-Length: 200\r\n\r\n"
        b'{"white": {"name": "Slow"'
    )
    answer = read_to_end(sock)
    assert error_code(answer)[:2] == (408, "request_timeout")
    assert parse(answer)[1]["date"].endswith(" gmt")
    assert metric(server, 'gm_connections_timed_out_total{phase="body"}') == 1
    # Nothing was created.
    assert httpx.get(server.url + "/api/games", headers=AUTH).json()["games"] == []


def test_a_kept_alive_connection_that_starts_no_second_request_is_closed(
    deadlines: ServerProcess,
) -> None:
    """After a response, bytes that begin no request still leave the connection on a deadline."""
    server = deadlines
    sock = connect(server)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
    answer = b""
    while not answer.endswith(b'"ok"}'):
        answer += sock.recv(65536)
    sock.sendall(b"\r\n")
    assert is_closed(sock)


def test_spectators_outlive_the_deadlines_and_count_toward_the_cap(
    make_server: list[ServerProcess], tmp_path: Path
) -> None:
    """A WebSocket and an NDJSON stream live past the header and body timeouts, get the next
    move, and hold their address's places while they last."""
    server = start(
        make_server,
        tmp_path,
        GM_HEADER_TIMEOUT_S="0.5",
        GM_BODY_TIMEOUT_S="0.5",
        GM_MAX_CONNECTIONS_PER_IP="2",
    )
    game = started_game(server)
    with ws_connect(server.url.replace("http", "ws") + f"/ws/games/{game}") as ws:
        assert json.loads(ws.recv(WAIT_S))["type"] == "snapshot"
        stream = open_stream(server, game, "127.0.0.1")
        # Both places of 127.0.0.1 are taken.
        status, code, _ = error_code(read_to_end(connect(server)))
        assert (status, code) == (429, "rate_limited")
        time.sleep(2.0)  # four header timeouts
        # The operator moves from another address.
        with httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.3")) as operator:
            r = operator.post(
                f"{server.url}/api/games/{game}/moves", json={"move": "e4"}, headers=AUTH
            )
        assert r.status_code == 200, r.text
        while True:
            message = json.loads(ws.recv(WAIT_S))
            if message["type"] == "move":
                break
        assert message["san"] == "e4"
        data = b""
        while b'"move"' not in data:
            chunk = stream.recv(65536)
            assert chunk, "the stream was closed"
            data += chunk
        stream.close()
    # Both places are given back once the spectators are gone.
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        answer = request(connect(server))
        if answer.startswith(b"HTTP/1.1 200"):
            break
        time.sleep(0.1)
    assert answer.startswith(b"HTTP/1.1 200"), answer


@pytest.mark.parametrize(
    "behind",
    [
        b"POST /api/games HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b"Content-Length: 10\r\n\r\n",
        b"\x00 not HTTP at all\r\n\r\n",
    ],
    ids=["a body that never comes", "garbage"],
)
def test_a_request_pipelined_behind_a_stream_never_cuts_into_it(
    deadlines: ServerProcess, behind: bytes
) -> None:
    """A request sent behind an open NDJSON stream on its connection (its body late, or not
    HTTP) gets no 408 or 400 spliced into the stream: the stream goes on, and nothing fails."""
    server = deadlines
    game = started_game(server)
    offset = server.log_path.stat().st_size
    stream = open_stream(server, game, "127.0.0.1")
    stream.sendall(behind)
    time.sleep(2.0)  # four body timeouts
    r = httpx.post(f"{server.url}/api/games/{game}/moves", json={"move": "e4"}, headers=AUTH)
    assert r.status_code == 200, r.text
    data = b""
    while b'"move"' not in data:
        chunk = stream.recv(65536)
        assert chunk, f"the stream was closed: {data!r}"
        data += chunk
    assert b"HTTP/1.1" not in data
    stream.close()
    assert httpx.get(server.url + "/healthz", timeout=WAIT_S).status_code == 200
    assert "Traceback" not in server.log_since(offset)


def test_a_pipelined_request_gets_its_body_deadline_when_its_turn_comes(
    deadlines: ServerProcess,
) -> None:
    """A request queued behind another on its connection, its body never finished, gets
    408 once the one before it is answered."""
    server = deadlines
    sock = connect(server)
    sock.sendall(
        b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"
        b"POST /api/games HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b"Content-Length: 200\r\n\r\n{"
    )
    answer = read_to_end(sock)
    first, _, second = answer.partition(b"HTTP/1.1 408")
    assert first.startswith(b"HTTP/1.1 200"), answer
    assert error_code(b"HTTP/1.1 408" + second)[:2] == (408, "request_timeout")


# --- caps ---


def test_connections_over_the_per_address_cap_are_answered_at_once(
    make_server: list[ServerProcess], tmp_path: Path
) -> None:
    """The (N+1)th connection from one address gets 429 with Retry-After before it sends
    anything; another address is unaffected; a closed connection frees its place."""
    server = start(make_server, tmp_path, GM_MAX_CONNECTIONS_PER_IP="3")
    held = [connect(server) for _ in range(3)]
    answer = read_to_end(connect(server))
    _, headers, _ = parse(answer)
    assert error_code(answer)[:2] == (429, "rate_limited")
    assert int(headers["retry-after"]) >= 1
    assert headers["connection"] == "close"
    assert headers["date"].endswith(" gmt") and headers["server"] == "uvicorn"
    assert request(connect(server, "127.0.0.2")).startswith(b"HTTP/1.1 200")
    assert metric(server, 'gm_connections_refused_total{cap="address"}') == 1
    assert metric(server, "gm_connections") >= 3
    held.pop().close()
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        answer = request(connect(server))
        if answer.startswith(b"HTTP/1.1 200"):
            break
        time.sleep(0.1)
    assert answer.startswith(b"HTTP/1.1 200"), answer


def test_ipv4_clients_of_a_dual_stack_listener_count_each_on_its_own(
    make_server: list[ServerProcess], tmp_path: Path
) -> None:
    """Listening on ``::`` dual-stack (as with ``GM_REUSE_PORT`` or ``--edges``), IPv4 clients (seen as ``::ffff:a.b.c.d``) each have their own
    per-address cap rather than all sharing one."""
    server = start(
        make_server, tmp_path, GM_HOST="::", GM_REUSE_PORT="1", GM_MAX_CONNECTIONS_PER_IP="2"
    )
    held = [connect(server) for _ in range(2)]
    assert request(connect(server, "127.0.0.2")).startswith(b"HTTP/1.1 200")
    assert error_code(read_to_end(connect(server)))[:2] == (429, "rate_limited")
    for sock in held:
        sock.close()


def test_connections_over_the_total_cap_get_503(
    make_server: list[ServerProcess], tmp_path: Path
) -> None:
    """Over GM_MAX_CONNECTIONS, any address is answered 503 unavailable with Retry-After."""
    server = start(make_server, tmp_path, GM_MAX_CONNECTIONS="4")
    # Wait until the start-up health checks' connections are gone.
    deadline = time.monotonic() + WAIT_S
    held: list[socket.socket] = []
    while len(held) < 4 and time.monotonic() < deadline:
        sock = connect(server, f"127.0.0.{2 + len(held) % 2}")
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        if sock.recv(65536).startswith(b"HTTP/1.1 200"):
            held.append(sock)
        else:
            time.sleep(0.1)
    answer = read_to_end(connect(server, "127.0.0.3"))
    _, headers, _ = parse(answer)
    assert error_code(answer)[:2] == (503, "unavailable")
    assert int(headers["retry-after"]) >= 1
    held.pop().close()
    deadline = time.monotonic() + WAIT_S
    while (refused := metric_or_none(server, 'gm_connections_refused_total{cap="total"}')) is None:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert refused >= 1


def test_caps_set_to_0_are_off(make_server: list[ServerProcess], tmp_path: Path) -> None:
    """GM_MAX_CONNECTIONS_PER_IP=0 and GM_MAX_CONNECTIONS=0 let one address hold many."""
    server = start(make_server, tmp_path, GM_MAX_CONNECTIONS_PER_IP="0", GM_MAX_CONNECTIONS="0")
    held = [connect(server) for _ in range(60)]
    assert request(connect(server)).startswith(b"HTTP/1.1 200")
    assert request(held[-1]).startswith(b"HTTP/1.1 200")


# --- proxies ---


def test_a_forwarded_address_counts_only_from_the_configured_proxy(
    make_server: list[ServerProcess], tmp_path: Path
) -> None:
    """Behind the proxy 127.0.0.2 the caps and the anonymous rate limit count the client it
    names in X-Forwarded-For; the same header from another peer is ignored."""
    server = start(
        make_server,
        tmp_path,
        GM_FORWARDED_ALLOW_IPS="127.0.0.2",
        GM_MAX_CONNECTIONS_PER_IP="2",
        GM_ANON_REQUESTS_PER_S="0.001",
        GM_ANON_REQUESTS_BURST="3",
    )
    game = started_game(server)
    alice = "X-Forwarded-For: 203.0.113.7\r\n"
    bob = "X-Forwarded-For: 203.0.113.8\r\n"
    # Two streams of Alice through the proxy take her two places (and two of her 3 tokens);
    # the proxy itself holds more than two connections.
    streams = [open_stream(server, game, "127.0.0.2", alice) for _ in range(2)]
    status, code, message = error_code(request(connect(server, "127.0.0.2"), "/api/games", alice))
    assert (status, code) == (429, "rate_limited")
    assert "connections" in message
    assert request(connect(server, "127.0.0.2"), "/api/games", bob).startswith(b"HTTP/1.1 200")
    # The same header from a peer that is not a configured proxy names nobody.
    for _ in range(3):
        answer = request(connect(server, "127.0.0.1"), "/api/games", alice)
        assert answer.startswith(b"HTTP/1.1 200"), answer
    streams.pop().close()
    # Alice's place is back; her last token goes, then the rate limiter refuses her too.
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        answer = request(connect(server, "127.0.0.2"), "/api/games", alice)
        if answer.startswith(b"HTTP/1.1 200"):
            break
        time.sleep(0.1)
    assert answer.startswith(b"HTTP/1.1 200"), answer
    status, code, message = error_code(request(connect(server, "127.0.0.2"), "/api/games", alice))
    assert (status, code) == (429, "rate_limited")
    assert "without a token" in message
    assert request(connect(server, "127.0.0.2"), "/api/games", bob).startswith(b"HTTP/1.1 200")
    # A WebSocket through the proxy holds its client's place until it closes; over the
    # cap, the upgrade itself is refused.
    carol = "X-Forwarded-For: 203.0.113.9\r\n"
    sockets = [upgrade(server, game, "127.0.0.2", carol) for _ in range(3)]
    assert [answer.split(b"\r\n", 1)[0] for _, answer in sockets] == [
        b"HTTP/1.1 101 Switching Protocols",
        b"HTTP/1.1 101 Switching Protocols",
        b"HTTP/1.1 429 Too Many Requests",
    ]
    status, code, _ = error_code(request(connect(server, "127.0.0.2"), "/api/games", carol))
    assert (status, code) == (429, "rate_limited")
    # Without configured proxies nobody's forwarding is believed.
    plain = start(make_server, tmp_path, GM_MAX_CONNECTIONS_PER_IP="2")
    held = [connect(plain, "127.0.0.2") for _ in range(2)]
    status, code, _ = error_code(request(connect(plain, "127.0.0.2"), "/healthz", bob))
    assert (status, code) == (429, "rate_limited")
    assert held


def test_trusting_every_peer_as_a_proxy_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """``GM_FORWARDED_ALLOW_IPS=*`` lets any client name its own address: the server says so
    when it starts (as it builds uvicorn's configuration, which the real servers of this file
    are started with)."""
    from fastapi import FastAPI

    every = Settings.from_env({"GM_FORWARDED_ALLOW_IPS": "*", "GM_DATA_DIR": str(tmp_path)})
    assert every.forwarded_allow_ips == ("*",)
    with caplog.at_level(logging.WARNING, logger="app.server"):
        uvicorn_config(FastAPI(), every)
    warned = [r.getMessage() for r in caplog.records if "GM_FORWARDED_ALLOW_IPS" in r.getMessage()]
    assert len(warned) == 1 and "never" in warned[0], caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="app.server"):
        uvicorn_config(FastAPI(), Settings(data_dir=tmp_path, forwarded_allow_ips=("10.0.0.0/8",)))
    assert "GM_FORWARDED_ALLOW_IPS" not in caplog.text


def test_behind_its_own_edges_the_core_limits_each_client_not_the_edges(
    make_server: list[ServerProcess], tmp_path: Path
) -> None:
    """With --edges the core trusts what its edges forward: its anonymous rate limit counts
    each client's address, not the edge's loopback one. The edge caps connections too."""
    redis_server_or_skip()
    server = start(
        make_server,
        tmp_path,
        GM_EDGES="1",
        GM_ANON_REQUESTS_PER_S="0.001",
        GM_ANON_REQUESTS_BURST="2",
        GM_MAX_CONNECTIONS_PER_IP="3",
    )

    def games_from(source: str) -> int:
        transport = httpx.HTTPTransport(local_address=source)
        with httpx.Client(transport=transport, timeout=WAIT_S) as client:
            return client.get(server.url + "/api/games").status_code

    assert [games_from("127.0.0.2") for _ in range(3)] == [200, 200, 429]
    assert games_from("127.0.0.3") == 200
    # The public port is the edge's: it holds three connections of an address, no more.
    held = [connect(server, "127.0.0.4") for _ in range(3)]
    assert error_code(read_to_end(connect(server, "127.0.0.4")))[:2] == (429, "rate_limited")
    assert request(held[0]).startswith(b"HTTP/1.1 200")


def test_a_bad_proxy_setting_stops_the_server_with_its_name(tmp_path: Path) -> None:
    """GM_FORWARDED_ALLOW_IPS with something that is not an address or network is refused."""
    with pytest.raises(ValueError, match="GM_FORWARDED_ALLOW_IPS"):
        Settings.from_env({"GM_FORWARDED_ALLOW_IPS": "127.0.0.1,proxy.local"})
    settings = Settings.from_env({"GM_FORWARDED_ALLOW_IPS": "10.0.0.0/8, 127.0.0.1,::1"})
    assert settings.forwarded_allow_ips == ("10.0.0.0/8", "127.0.0.1", "::1")


# --- the guard on uvicorn's internals ---


def test_the_installed_uvicorn_has_everything_the_module_needs() -> None:
    """The import-time check finds nothing missing in the installed uvicorn."""
    assert http_protocol.UNSUPPORTED_REASON is None, http_protocol.UNSUPPORTED_REASON


def test_the_import_time_check_names_what_is_missing() -> None:
    """A protocol without a method, hook or attribute the module uses is reported by name."""

    class Stripped(HttpToolsProtocol):
        on_response_complete = None  # type: ignore[assignment]

        def data_received(self, data: bytes) -> None:
            """Never upgrades."""

    class Cycle:
        def __init__(self) -> None:
            self.disconnected = False

    class Hosts:
        def __contains__(self, host: str) -> bool:
            return False

    missing = http_protocol.missing_http_internals(Stripped, Cycle, Hosts)
    text = "; ".join(missing)
    assert "method on_response_complete()" in text
    assert "data_received() using handle_websocket_upgrade" in text
    assert "RequestResponseCycle attribute 'message_event'" in text
    assert "_TrustedHosts.get_trusted_client_address" in text
    assert not http_protocol.missing_http_internals(
        HttpToolsProtocol, RequestResponseCycle, _TrustedHosts
    )


def test_without_the_internals_uvicorn_config_falls_back_with_one_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    """When something is missing the server still starts, on uvicorn's stock HTTP protocol."""
    monkeypatch.setattr(http_protocol, "UNSUPPORTED_REASON", "test: something is gone")
    from fastapi import FastAPI

    with caplog.at_level(logging.WARNING, logger="app.server"):
        config = uvicorn_config(FastAPI(), Settings(data_dir=tmp_path))
    assert config.http == "auto"
    warnings = [r for r in caplog.records if "something is gone" in r.getMessage()]
    assert len(warnings) == 1
    assert "no connection caps" in warnings[0].getMessage()


def test_the_module_imports_without_uvicorns_httptools_protocol(tmp_path: Path) -> None:
    """With uvicorn's httptools module unimportable, app.server still imports and falls back."""
    script = (
        "import sys\n"
        "sys.modules['uvicorn.protocols.http.httptools_impl'] = None\n"
        "from app import http_protocol\n"
        "from app.server import uvicorn_config\n"
        "from app.settings import Settings\n"
        "assert 'httptools' in http_protocol.UNSUPPORTED_REASON, http_protocol.UNSUPPORTED_REASON\n"
        "assert uvicorn_config(object(), Settings(data_dir=sys.argv[1])).http == 'auto'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("serving HTTP with uvicorn's stock protocol") == 1, result.stderr


def test_uvicorn_is_given_the_admitted_protocol(tmp_path: Path) -> None:
    """The configuration serves HTTP with the subclass and keeps the proxy list uvicorn's."""
    from fastapi import FastAPI

    config = uvicorn_config(
        FastAPI(), Settings(data_dir=tmp_path, forwarded_allow_ips=("10.0.0.0/8",))
    )
    assert isinstance(config.http, type)
    assert issubclass(config.http, http_protocol.AdmittedHttpToolsProtocol)
    assert config.proxy_headers is True
    assert config.forwarded_allow_ips == ["10.0.0.0/8"]
    plain = uvicorn_config(FastAPI(), Settings(data_dir=tmp_path))
    assert plain.proxy_headers is False
    assert uvicorn.__version__


MALFORMED = [
    pytest.param(b"GARBAGE\r\n\r\n", id="no request line"),
    pytest.param(b"GET /api/games HTTP/9.9\r\nHost: x\r\n\r\n", id="unknown version"),
    pytest.param(b"GET /api/games HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", id="bad header"),
    pytest.param(b"GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n", id="control byte in target"),
    pytest.param(
        b"POST /api/games HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        id="bad content-length",
    ),
    pytest.param(
        b"POST /api/games HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n",
        id="bad chunk",
    ),
]


@pytest.mark.parametrize("raw", MALFORMED)
def test_a_malformed_request_is_400_bad_request_in_json(
    deadlines: ServerProcess, raw: bytes
) -> None:
    """A request whose HTTP framing is broken gets 400 with the contract's error body (uvicorn's own is text/plain), and the connection is closed."""
    server = deadlines
    with socket.create_connection(("127.0.0.1", server.port), timeout=WAIT_S) as sock:
        sock.sendall(raw)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "HTTP/1.1 400 Bad Request"
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    assert headers["content-type"] == "application/json"
    assert headers["connection"] == "close"
    assert int(headers["content-length"]) == len(body)
    error = json.loads(body)["error"]
    assert error["code"] == "bad_request" and error["message"].startswith("malformed HTTP")
    assert httpx.get(server.url + "/healthz", timeout=WAIT_S).status_code == 200
