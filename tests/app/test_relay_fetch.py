"""Broken relay sources against a real server subprocess: a real local TCP server that never
answers, stalls after its headers, trickles a byte a second, sends random bytes, answers
something that is not HTTP, or sends an endless body (plain or gzip). Each is bounded and reported, while
a good source, a played game and ``/healthz`` carry on."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import socket
import socketserver
import threading
import time
import tracemalloc
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.relay_fetch import SourceError, fetch_bounded, pin_public_address
from tests.app.test_lichess_api import personal_token
from tests.app.test_livechess_relay import ROUND_DIR, game, index
from tests.app.test_relay_api import board_pgn, random_line
from tests.app.test_relay_api import until as until_async
from tests.conftest import ServerProcess, serve

OPERATOR = {"Authorization": "Bearer operator-secret-token"}
MAX_BYTES = 1024 * 1024
# What reaches the server beyond the cap sits in loopback socket buffers (a few MB);
# a fetch that read on would go on for the whole deadline, at gigabytes a second.
SENT_BOUND = MAX_BYTES + 48 * 1024 * 1024
ENV = {
    "GM_RELAY_POLL_S": "0.2",
    "GM_RELAY_MAX_BACKOFF_S": "1",
    "GM_RELAY_TIMEOUT_S": "2",
    "GM_RELAY_DEADLINE_S": "4",
    "GM_RELAY_MAX_BYTES": str(MAX_BYTES),
    "GM_PLAYER_REQUESTS_PER_S": "1000",
}
BROADCAST = {
    "name": "Hostile sources",
    "format": "broadcast",
    "mode": "relay",
    "clock": {"initial": 5400, "increment": 30},
}
# Path -> what its failure says in the round's source status.
BROKEN = {
    "/silent.pgn": r"timed out \(waiting for data",
    "/stalled.pgn": r"timed out \(waiting for data",
    "/trickle.pgn": r"before the deadline",
    "/random.pgn": r"not PGN: binary content",
    "/html.pgn": r"not PGN: no tag pair",
    "/not-http.pgn": r"RemoteProtocolError",
    "/endless.pgn": rf"larger than {MAX_BYTES} bytes .*cut there",
    "/huge.pgn": r"Content-Length: 1000000000000",
    "/bomb.pgn": rf"larger than {MAX_BYTES} bytes .*cut there",
    "/redirect.pgn": r"(could not connect|ConnectError)",
    # Not on the hostile server: host names that cannot be looked up as written.
    "http://xn--/round.pgn": r"not a usable URL",
    "http://\u2603\u2603.example/round.pgn": r"not a usable URL",
    "/endless/round-1/index.json": rf"larger than {MAX_BYTES} bytes .*cut there",
}


class Hostile(socketserver.ThreadingTCPServer):
    """A real HTTP-ish server on 127.0.0.1 that misbehaves by path; ``/good.pgn`` and the
    LiveChess round under ``/lc`` serve what the test puts there."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.files: dict[str, bytes] = {}
        self.requests: Counter[str] = Counter()
        # Endless bodies: bytes sent on each connection the client cut.
        self.cut: dict[str, list[int]] = {}

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def put(self, path: str, body: bytes | str) -> None:
        with self.lock:
            self.files[path] = body.encode() if isinstance(body, str) else body


class _Handler(socketserver.BaseRequestHandler):
    server: Hostile

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.settimeout(5)
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 65536:
            chunk = sock.recv(4096)
            if not chunk:
                return
            head += chunk
        path = head.split(b" ", 2)[1].decode()
        hostile = self.server
        with hostile.lock:
            hostile.requests[path] += 1
            body = hostile.files.get(path)
        with contextlib.suppress(OSError):
            self._answer(sock, path, body)

    def _answer(self, sock: socket.socket, path: str, body: bytes | None) -> None:
        stopping = self.server.stopping
        if body is not None:
            sock.sendall(_head(200, len(body)) + body)
        elif path == "/silent.pgn":
            stopping.wait()
        elif path == "/stalled.pgn":
            sock.sendall(_head(200, 100_000))
            stopping.wait()
        elif path == "/trickle.pgn" or path.endswith("/game-2.json"):
            sock.sendall(_head(200, None))
            for byte in (b'[Event "x"]\n' * 1000)[:1000]:
                sock.sendall(bytes([byte]))
                if stopping.wait(1.0):
                    return
        elif path == "/random.pgn":
            sock.sendall(_head(200, 65536) + os.urandom(65536))
        elif path == "/html.pgn":
            page = b"<html><body>502 Bad Gateway</body></html>"
            sock.sendall(_head(200, len(page)) + page)
        elif path.startswith("/not-http"):
            sock.sendall(os.urandom(4096))
        elif path in ("/endless.pgn", "/huge.pgn", "/endless/round-1/index.json"):
            self._endless(sock, path, None if path != "/huge.pgn" else 10**12)
        elif path == "/bomb.pgn":
            self._bomb(sock, path)
        elif path == "/redirect.pgn":
            sock.sendall(_head(302, 0, b"Location: http://127.0.0.1:99999/round.pgn"))
        else:
            sock.sendall(_head(404, 0))

    def _endless(self, sock: socket.socket, path: str, declared: int | None) -> None:
        block = b'[Event "endless"]\n' * 4096
        sent = 0
        sock.sendall(_head(200, declared))
        while not self.server.stopping.is_set():
            try:
                sock.sendall(block)
            except TimeoutError:
                continue
            except OSError:
                with self.server.lock:
                    self.server.cut.setdefault(path, []).append(sent)
                return
            sent += len(block)

    def _bomb(self, sock: socket.socket, path: str) -> None:
        """An endless gzip stream of tags: each 2 KB sent inflates to about 1 MB."""
        packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        block = b'[Event "bomb"]\n' * 65536
        sent = 0
        sock.sendall(_head(200, None, b"Content-Encoding: gzip"))
        while not self.server.stopping.is_set():
            packed = packer.compress(block) + packer.flush(zlib.Z_SYNC_FLUSH)
            try:
                sock.sendall(packed)
            except TimeoutError:
                continue
            except OSError:
                with self.server.lock:
                    self.server.cut.setdefault(path, []).append(sent)
                return
            sent += len(packed)


def _head(status: int, length: int | None, *extra: bytes) -> bytes:
    lines = [f"HTTP/1.1 {status} X", "Content-Type: application/x-chess-pgn", "Connection: close"]
    lines += [line.decode() for line in extra]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@pytest.fixture
def hostile() -> Iterator[Hostile]:
    """The misbehaving source, served from a thread until the test ends."""
    server = Hostile()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stopping.set()
        server.shutdown()
        server.server_close()
        thread.join(10)


def url_of(hostile: Hostile, path: str) -> str:
    """A broken source's URL: on the hostile server, unless it is a whole URL."""
    return path if path.startswith("http") else hostile.base + path


def until(
    check: Callable[[], bool], what: str, still: object = None, timeout_s: float = 90.0
) -> None:
    """Poll ``check`` (which also drives the other activity) until it holds; the failure
    shows ``still`` (what the check found missing)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"never happened: {what}: {still}")


def test_broken_sources_are_bounded_and_reported_while_the_rest_carries_on(
    tmp_path: Path, hostile: Hostile
) -> None:
    """Each broken source fails with its own error in its round's status, is logged once,
    and changes nothing, an endless body is cut near the cap; meanwhile a good source's
    round follows its moves, a LiveChess round with one trickling game file keeps its other
    board up to date, another game's moves are answered and /healthz stays 200."""
    proc = ServerProcess(tmp_path / "data", env=ENV)
    proc.start()
    try:
        with httpx.Client(base_url=proc.url, timeout=30) as client:
            _scenario(client, hostile)
        log = proc.log_since(0)
    finally:
        proc.stop()
    assert "Traceback" not in log, log
    for path in BROKEN:
        url = json.dumps(url_of(hostile, path))[1:-1]
        lines = [line for line in log.splitlines() if f"relay source {url} " in line]
        assert len(lines) == 1, (path, lines)


def _scenario(client: httpx.Client, hostile: Hostile) -> None:
    tid = client.post("/api/tournaments", json=BROADCAST, headers=OPERATOR).json()["id"]
    rounds: dict[str, str] = {}
    urls = {path: url_of(hostile, path) for path in BROKEN}
    urls["/good.pgn"] = hostile.base + "/good.pgn"
    urls["/lc"] = f"{hostile.base}/lc{ROUND_DIR}/index.json"
    # The good ones first: they are polled from the start.
    line = random_line(40, 7)
    hostile.put("/good.pgn", board_pgn("Good, One", "Good, Two", 1, line[:2]))
    lc_line = random_line(40, 8)
    hostile.put(
        f"/lc{ROUND_DIR}/index.json",
        json.dumps(index([("Lc, One", "Lc, Two"), ("Lc, Three", "Lc, Four")])),
    )
    hostile.put(f"/lc{ROUND_DIR}/game-1.json", json.dumps(game(lc_line[:2])))
    # game-2.json is not put: it trickles (below, by path).
    for name, url in urls.items():
        body = {"name": name, "sync_url": url}
        r = client.post(f"/api/tournaments/{tid}/rounds", json=body, headers=OPERATOR)
        assert r.status_code == 201, r.text
        rounds[name] = r.json()["id"]
    # A relay round robin whose own relay_url is not HTTP at all.
    relay_body = {
        "name": "Relay",
        "format": "round_robin",
        "mode": "relay",
        "clock": {"initial": 600},
        "players": [{"name": "A"}, {"name": "B"}],
        "relay_url": hostile.base + "/not-http-either.pgn",
    }
    relay_tid = client.post("/api/tournaments", json=relay_body, headers=OPERATOR).json()["id"]
    assert client.post(f"/api/tournaments/{relay_tid}/rounds", json={}, headers=OPERATOR).is_success
    # Server games, played one after another while the sources misbehave.
    moves = _server_moves(client)
    state = {"good": 2, "lc": 2}

    def tournament() -> dict[str, Any]:
        r = client.get(f"/api/tournaments/{tid}", headers=OPERATOR)
        assert r.status_code == 200, r.text
        data: dict[str, Any] = r.json()
        return data

    def round_of(data: dict[str, Any], name: str) -> dict[str, Any]:
        found: dict[str, Any] = next(r for r in data["rounds"] if r["id"] == rounds[name])
        return found

    def ply_of(data: dict[str, Any], name: str, board: int) -> int:
        pairings = round_of(data, name)["pairings"]
        ids = [p["game"] for p in pairings if p["board"] == board]
        if not ids:
            return -1
        ply: int = client.get(f"/api/games/{ids[0]}").json()["ply"]
        return ply

    def carry_on() -> dict[str, Any]:
        """One step of everything that must keep working; the tournament as it is now."""
        assert client.get("/healthz").status_code == 200
        game_id, token, san = next(moves)
        r = client.post(
            f"/api/games/{game_id}/moves",
            json={"move": san},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert r.status_code == 200, r.text
        data = tournament()
        # The good sources move on as soon as the server has what they served.
        if ply_of(data, "/good.pgn", 1) == state["good"] and state["good"] < 30:
            state["good"] += 2
            hostile.put("/good.pgn", board_pgn("Good, One", "Good, Two", 1, line[: state["good"]]))
        if ply_of(data, "/lc", 1) == state["lc"] and state["lc"] < 30:
            state["lc"] += 2
            hostile.put(f"/lc{ROUND_DIR}/game-1.json", json.dumps(game(lc_line[: state["lc"]])))
        return data

    waiting: dict[str, Any] = {}

    def all_reported() -> bool:
        data = carry_on()
        waiting.clear()
        for path, pattern in BROKEN.items():
            source = round_of(data, path).get("source") or {}
            if source.get("failures", 0) < 2 or not re.search(pattern, source["last_error"]):
                waiting[path] = source
        relay = client.get(f"/api/tournaments/{relay_tid}", headers=OPERATOR).json()["relay"]
        if relay.get("failures", 0) < 2:
            waiting["relay_url"] = relay
        return not waiting

    until(all_reported, "every broken source failing twice with its error", waiting)
    # The good rounds kept up meanwhile (each step waited for the server to catch up).
    until(lambda: carry_on() and state["good"] >= 8 and state["lc"] >= 8, "good rounds moving")
    data = tournament()
    good = round_of(data, "/good.pgn")
    assert good["source"]["failures"] == 0 and good["source"]["last_error"] is None
    lc = round_of(data, "/lc")
    assert lc["source"]["failures"] == 0
    assert "board 2: game-2.json: no complete answer before the deadline" in (
        lc["source"]["last_error"] or ""
    )
    # A broken source changed nothing: its round has no boards.
    for path in BROKEN:
        assert round_of(data, path)["pairings"] == [], path
    # Endless bodies were cut near the cap, not read on.
    for path in ("/endless.pgn", "/endless/round-1/index.json", "/bomb.pgn"):
        with hostile.lock:
            cut = list(hostile.cut.get(path, []))
        assert cut and max(cut) < SENT_BOUND, (path, cut)
        # For the README's figures (pytest -s shows it).
        print(f"\n{path}: cut {len(cut)} times, at most {max(cut)} bytes sent")
    # The declared gigantic body was refused from its header: it never counted as cut late.
    with hostile.lock:
        assert all(sent < SENT_BOUND for sent in hostile.cut.get("/huge.pgn", []))


def _server_moves(client: httpx.Client) -> Iterator[tuple[str, str, str]]:
    """Moves to play, (game id, mover's token, SAN), a new game every 30 half-moves."""
    for seed in range(1000):
        created = client.post(
            "/api/games",
            json={"white": {"name": "W"}, "black": {"name": "B"}, "clock": {"initial": 600}},
            headers=OPERATOR,
        ).json()
        game_id, tokens = created["game"]["id"], created["tokens"]
        assert client.post(f"/api/games/{game_id}/start", headers=OPERATOR).status_code == 200
        for ply, san in enumerate(random_line(30, seed)):
            yield game_id, tokens["white" if ply % 2 == 0 else "black"], san
    raise AssertionError("ran out of games")


class _Dense(socketserver.ThreadingTCPServer):
    """A source whose body is one gzip member of zeros: each 64 KiB sent inflates to 64 MB."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, encoding: bytes, megabytes: int = 256) -> None:
        super().__init__(("127.0.0.1", 0), _DenseHandler)
        wbits = {b"deflate": zlib.MAX_WBITS, b"raw deflate": -zlib.MAX_WBITS}.get(
            encoding, 16 + zlib.MAX_WBITS
        )
        packer = zlib.compressobj(9, zlib.DEFLATED, wbits)
        zeros = bytes(1024 * 1024)
        self.body = b"".join(packer.compress(zeros) for _ in range(megabytes)) + packer.flush()
        self.encoding = encoding.split()[-1]


class _DenseHandler(socketserver.BaseRequestHandler):
    server: _Dense

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.settimeout(5)
        with contextlib.suppress(OSError):
            sock.recv(65536)
            body = self.server.body
            sock.sendall(_head(200, len(body), b"Content-Encoding: " + self.server.encoding) + body)


@pytest.mark.parametrize("encoding", [b"gzip", b"deflate"])
async def test_a_dense_compressed_body_is_inflated_no_further_than_the_cap(encoding: bytes) -> None:
    """A gzip or deflate body of 256 MB of zeros (256 KB sent) is cut at the cap, and no more
    than about the cap is ever inflated in memory (not a whole 64 KiB read's 64 MB)."""
    server = _Dense(encoding)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        async with httpx.AsyncClient() as client:
            tracemalloc.start()
            try:
                with pytest.raises(SourceError, match="larger than 1048576 bytes"):
                    await fetch_bounded(
                        client,
                        f"http://127.0.0.1:{server.server_address[1]}/round.pgn",
                        headers={},
                        max_bytes=MAX_BYTES,
                        deadline=asyncio.get_running_loop().time() + 30,
                    )
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
        assert peak < 8 * MAX_BYTES, peak
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.mark.parametrize("encoding", [b"gzip", b"deflate", b"raw deflate"])
async def test_a_compressed_body_under_the_cap_is_inflated_whole(encoding: bytes) -> None:
    """A gzip, zlib-wrapped or raw deflate body under the cap comes back inflated, byte for byte."""
    server = _Dense(encoding, megabytes=0)
    wbits = {b"deflate": zlib.MAX_WBITS, b"raw deflate": -zlib.MAX_WBITS}.get(
        encoding, 16 + zlib.MAX_WBITS
    )
    packer = zlib.compressobj(9, zlib.DEFLATED, wbits)
    text = b'[Event "x"]\n' * 50_000
    server.body = packer.compress(text) + packer.flush()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        async with httpx.AsyncClient() as client:
            fetched = await fetch_bounded(
                client,
                f"http://127.0.0.1:{server.server_address[1]}/round.pgn",
                headers={},
                max_bytes=MAX_BYTES,
                deadline=asyncio.get_running_loop().time() + 30,
            )
        assert fetched.body == text
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


class _Redirector(socketserver.ThreadingTCPServer):
    """Answers every request with a 302 to ``target``; counts requests by path."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _RedirectHandler)
        self.target = ""
        self.lock = threading.Lock()
        self.requests: Counter[str] = Counter()


class _RedirectHandler(socketserver.BaseRequestHandler):
    server: _Redirector

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.settimeout(5)
        with contextlib.suppress(OSError):
            head = sock.recv(65536)
            path = head.split(b" ", 2)[1].decode()
            with self.server.lock:
                self.server.requests[path] += 1
            if path == "/internal":
                sock.sendall(_head(200, 0))
                return
            sock.sendall(_head(302, 0, f"Location: {self.server.target}".encode()))


async def test_an_accounts_round_source_is_never_followed_through_a_redirect(
    tmp_path: Path,
) -> None:
    """A round of an account's broadcast whose source redirects is polled, but the redirect
    is never followed (it would bypass the check that the source is on a public address)."""
    redirector = _Redirector()
    redirector.target = f"http://127.0.0.1:{redirector.server_address[1]}/internal"
    thread = threading.Thread(target=redirector.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{redirector.server_address[1]}"
    try:
        async with serve(tmp_path / "data", relay_poll_s=0.2, relay_max_backoff_s=0.5) as live:
            alice = await personal_token(live, "Alice")
            r = await live.client.post(
                "/broadcast/new",
                json={"name": "Mine"},
                headers={"Authorization": f"Bearer {alice}"},
            )
            assert r.status_code == 200, r.text
            tour_id = r.json()["tour"]["id"]
            # Only the operator may name a loopback source, even on an account's broadcast.
            r = await live.client.post(
                f"/broadcast/{tour_id}/new",
                json={"name": "Round 1", "syncUrl": base + "/round.pgn"},
                headers=live.auth(),
            )
            assert r.status_code == 200, r.text

            async def polled_twice() -> bool:
                with redirector.lock:
                    return redirector.requests["/round.pgn"] >= 2

            await until_async(polled_twice)
            with redirector.lock:
                assert redirector.requests["/internal"] == 0
    finally:
        redirector.shutdown()
        redirector.server_close()
        thread.join(10)


async def test_an_accounts_source_rebound_to_the_servers_network_is_never_fetched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: a host name of an account's source that resolved to a public address
    when it was named and resolves to loopback later is refused at the fetch, and nothing
    reaches the server behind it."""
    redirector = _Redirector()
    port = redirector.server_address[1]
    redirector.target = f"http://127.0.0.1:{port}/internal"
    thread = threading.Thread(target=redirector.serve_forever, daemon=True)
    thread.start()
    loop = asyncio.get_running_loop()
    resolve = loop.getaddrinfo

    async def public_when_named(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "localhost":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", 0))]
        return await resolve(host, *args, **kwargs)

    try:
        async with serve(tmp_path / "data", relay_poll_s=0.2, relay_max_backoff_s=0.5) as live:
            alice = await personal_token(live, "Alice")
            bearer = {"Authorization": f"Bearer {alice}"}
            r = await live.client.post("/broadcast/new", json={"name": "Mine"}, headers=bearer)
            assert r.status_code == 200, r.text
            tour_id = r.json()["tour"]["id"]
            # Named by the account: refused while the name resolves to loopback ...
            source = {"name": "Round 1", "syncUrl": f"http://localhost:{port}/round.pgn"}
            r = await live.client.post(f"/broadcast/{tour_id}/new", json=source, headers=bearer)
            assert r.status_code == 400, r.text
            # ... accepted while it resolves to a public address, then rebound.
            monkeypatch.setattr(loop, "getaddrinfo", public_when_named)
            r = await live.client.post(f"/broadcast/{tour_id}/new", json=source, headers=bearer)
            assert r.status_code == 200, r.text
            round_id = r.json()["round"]["id"]
            monkeypatch.setattr(loop, "getaddrinfo", resolve)

            async def refused_twice() -> bool:
                r = await live.client.get(f"/api/tournaments/{tour_id}", headers=live.auth())
                rnd = next(x for x in r.json()["rounds"] if x["id"] == round_id)
                found = rnd.get("source") or {}
                error = found.get("last_error") or ""
                return found.get("failures", 0) >= 2 and "not a public address" in error

            await until_async(refused_twice)
            with redirector.lock:
                assert sum(redirector.requests.values()) == 0
    finally:
        redirector.shutdown()
        redirector.server_close()
        thread.join(10)


async def test_a_pinned_request_goes_to_the_address_checked_under_its_own_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The pin sends the request to the public address it checked, keeping the host name in
    the Host header and as the TLS server name; a URL naming an address is left alone, and
    one private address among public ones refuses the whole name."""
    loop = asyncio.get_running_loop()
    answers = {"feed.example": ["8.8.4.4"], "mixed.example": ["8.8.8.8", "10.0.0.3"]}

    async def fake(host: Any, port: Any, **kwargs: Any) -> Any:
        assert kwargs.get("type") == socket.SOCK_STREAM
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in answers[host]]

    monkeypatch.setattr(loop, "getaddrinfo", fake)
    request = httpx.Request("GET", "https://feed.example:8443/games.pgn?round=2")
    await pin_public_address(request)
    assert str(request.url) == "https://8.8.4.4:8443/games.pgn?round=2"
    assert request.headers["Host"] == "feed.example:8443"
    assert request.extensions["sni_hostname"] == "feed.example"
    literal = httpx.Request("GET", "http://[2606:4700::1111]/x.pgn")
    await pin_public_address(literal)
    assert str(literal.url) == "http://[2606:4700::1111]/x.pgn"
    assert "sni_hostname" not in literal.extensions
    with pytest.raises(SourceError, match=re.escape("mixed.example resolves to 10.0.0.3")):
        await pin_public_address(httpx.Request("GET", "http://mixed.example/x.pgn"))
