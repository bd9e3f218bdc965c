"""Requests without a token take turns; players, health checks and streams never wait."""

from __future__ import annotations

import asyncio
import json
import socket
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from app.auth import Tokens
from app.limits import AnonymousTurns
from app.stream_connection import CONNECTION_EXTENSION
from tests.conftest import LiveServer, serve

Scope = dict[str, Any]
Sent = list[dict[str, Any]]


class Blocking:
    """An ASGI app whose requests each wait for their own release before answering;
    ``stream`` ones start their response first."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.release: dict[str, asyncio.Event] = {}

    async def __call__(self, scope: Scope, receive: Callable[..., Any], send: Any) -> None:
        name = scope["path"] + "#" + scope["query_string"].decode()
        self.started.append(name)
        release = self.release.setdefault(name, asyncio.Event())
        headers = [(b"content-type", b"text/plain")]
        if scope["query_string"] == b"stream":
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await release.wait()
            await send({"type": "http.response.body", "body": b"end"})
            return
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"ok"})


# What the middleware asks whether a token is known: the app's token registry.
APP = SimpleNamespace(state=SimpleNamespace(tokens=Tokens("t")))


def request(path: str, query: str = "", token: bool = False) -> Scope:
    """An HTTP scope for ``path`` (with a known token when ``token``)."""
    headers = [(b"host", b"test")]
    if token:
        headers.append((b"authorization", b"Bearer t"))
    return {
        "app": APP,
        "type": "http",
        "method": "GET",
        "path": path,
        "query_string": query.encode(),
        "headers": headers,
        "client": ("127.0.0.1", 5000),
    }


async def call(turns: AnonymousTurns, scope: Scope) -> Sent:
    """Run one request through the middleware; what it sent."""
    sent: Sent = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await turns(scope, receive, send)
    return sent


async def settle() -> None:
    """Let every ready task run (no time passes)."""
    for _ in range(20):
        await asyncio.sleep(0)


async def test_anonymous_requests_run_a_few_at_a_time_in_arrival_order() -> None:
    """Two turns: the third and fourth wait in order, the fifth is 503 at once; tokens and other paths pass."""
    inner = Blocking()
    turns = AnonymousTurns(inner, concurrency=2, max_waiting=2)
    tasks = [asyncio.create_task(call(turns, request(f"/api/games/{i}"))) for i in range(4)]
    await settle()
    assert inner.started == ["/api/games/0#", "/api/games/1#"]
    assert turns.waiting == 2

    refused = await call(turns, request("/api/games/4"))
    assert refused[0]["status"] == 503
    assert (b"retry-after", b"1") in refused[0]["headers"]
    assert json.loads(refused[1]["body"])["error"]["code"] == "unavailable"

    # A player, a health check and a site page do not wait.
    for scope in (request("/api/games/p", token=True), request("/healthz"), request("/")):
        waiting = asyncio.create_task(call(turns, scope))
        await settle()
        inner.release[inner.started[-1]].set()
        assert (await waiting)[0]["status"] == 200

    inner.release["/api/games/1#"].set()
    await settle()
    assert inner.started[-1] == "/api/games/2#"
    inner.release["/api/games/0#"].set()
    await settle()
    assert inner.started[-1] == "/api/games/3#"
    for name in ("/api/games/2#", "/api/games/3#"):
        inner.release[name].set()
    answers = await asyncio.gather(*tasks)
    assert [a[0]["status"] for a in answers] == [200] * 4
    assert (turns.running, turns.waiting) == (0, 0)


async def test_a_request_gone_while_waiting_gives_no_turn_away() -> None:
    """A waiting request cancelled (its client left) is skipped; the turns are all free afterwards."""
    inner = Blocking()
    turns = AnonymousTurns(inner, concurrency=1, max_waiting=10)
    first = asyncio.create_task(call(turns, request("/api/games/a")))
    gone = asyncio.create_task(call(turns, request("/api/games/b")))
    last = asyncio.create_task(call(turns, request("/api/games/c")))
    await settle()
    gone.cancel()
    await settle()
    inner.release["/api/games/a#"].set()
    await settle()
    assert inner.started == ["/api/games/a#", "/api/games/c#"]
    inner.release["/api/games/c#"].set()
    await asyncio.gather(first, last)
    assert gone.cancelled()
    assert (turns.running, turns.waiting) == (0, 0)


async def test_a_turn_ends_when_the_response_starts() -> None:
    """A stream that has started its response holds no turn while it goes on."""
    inner = Blocking()
    turns = AnonymousTurns(inner, concurrency=1, max_waiting=10)
    stream = asyncio.create_task(call(turns, request("/api/stream/games/x", "stream")))
    read = asyncio.create_task(call(turns, request("/api/games/x")))
    await settle()
    assert inner.started == ["/api/stream/games/x#stream", "/api/games/x#"]
    inner.release["/api/games/x#"].set()
    assert (await read)[0]["status"] == 200
    inner.release["/api/stream/games/x#stream"].set()
    await stream
    assert (turns.running, turns.waiting) == (0, 0)


async def test_a_server_with_one_turn_serves_streams_reads_and_players_together(
    tmp_path: Path,
) -> None:
    """With one turn, open NDJSON streams do not stop reads; a player moves and the reads see it."""
    async with serve(tmp_path / "data", anon_concurrency=1) as live:
        game_id, tokens = await live.started_game()
        async with httpx.AsyncClient(base_url=live.url, timeout=10) as anonymous:
            streams = [
                await anonymous.send(
                    anonymous.build_request("GET", f"/api/stream/games/{game_id}"), stream=True
                )
                for _ in range(3)
            ]
            try:
                reads = await asyncio.gather(
                    *(anonymous.get(f"/api/games/{game_id}") for _ in range(20))
                )
                assert {r.status_code for r in reads} == {200}
                r = await live.client.post(
                    f"/api/games/{game_id}/moves",
                    json={"move": "e4", "ply": 0},
                    headers=live.auth(tokens["white"]),
                )
                assert r.status_code == 200, r.text
                assert (await anonymous.get(f"/api/games/{game_id}")).json()["ply"] == 1
            finally:
                for stream in streams:
                    await stream.aclose()


async def test_a_made_up_token_waits_its_turn_and_counts_against_the_address_limit(
    tmp_path: Path,
) -> None:
    """Only a token the server knows skips the limits: any other Authorization header is anonymous."""
    async with serve(
        tmp_path / "data", anon_requests_per_s=1, anon_requests_burst=1, anon_concurrency=1
    ) as live:
        game_id, _ = await live.started_game()
        for header in ("Bearer bogus", "x", "Basic YTpi"):
            statuses = [
                (
                    await live.client.get(
                        f"/api/games/{game_id}", headers={"Authorization": header}
                    )
                ).status_code
                for _ in range(3)
            ]
            assert 429 in statuses, (header, statuses)
        statuses = [
            (await live.client.get(f"/api/games/{game_id}", headers=live.auth())).status_code
            for _ in range(5)
        ]
        assert statuses == [200] * 5


async def test_a_made_up_token_waits_for_a_turn() -> None:
    """A request whose token the server does not know waits like any anonymous one."""
    inner = Blocking()
    turns = AnonymousTurns(inner, concurrency=1, max_waiting=10)
    first = asyncio.create_task(call(turns, request("/api/games/a")))
    bogus = request("/api/games/b", token=True)
    bogus["headers"] = [(b"host", b"test"), (b"authorization", b"Bearer made-up")]
    second = asyncio.create_task(call(turns, bogus))
    await settle()
    assert inner.started == ["/api/games/a#"]
    assert turns.waiting == 1
    inner.release["/api/games/a#"].set()
    await settle()
    inner.release["/api/games/b#"].set()
    await asyncio.gather(first, second)
    assert (turns.running, turns.waiting) == (0, 0)


async def test_a_body_that_trickles_in_holds_no_turn(tmp_path: Path) -> None:
    """Requests whose bodies are half sent do not stop an anonymous read; they are answered once sent."""
    body = b'{"white": {"name": "a"}, "black": {"name": "b"}}'
    async with serve(tmp_path / "data", anon_concurrency=2, body_timeout_s=30) as live:
        host, port = live.url.removeprefix("http://").split(":")
        slow = []
        before = len(asyncio.all_tasks())
        for _ in range(2):
            reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(
                b"POST /api/games HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                b"content-length: %d\r\n\r\n" % len(body) + body[:1]
            )
            await writer.drain()
            slow.append((reader, writer))
        try:
            # The server (on this loop) has started both requests (a task each), and they have
            # run up to their first wait: a turn each if bodies are read in turns.
            for _ in range(1000):
                if len(asyncio.all_tasks()) >= before + 2:
                    break
                await asyncio.sleep(0.01)
            await settle()
            assert (await live.client.get("/api/tournaments")).status_code == 200
            for reader, writer in slow:
                writer.write(body[1:])
                await writer.drain()
                status_line = await reader.readline()
                # 401 (no token), not 408: the body still had time when the read was served.
                assert status_line.split()[1] == b"401", status_line
        finally:
            for _, writer in slow:
                writer.close()


async def test_the_body_read_before_the_turn_reaches_the_app_whole() -> None:
    """The app receives the body read before the turn, then whatever is left past the buffer cap."""
    received: list[bytes] = []

    async def echo(scope: Scope, receive: Callable[..., Any], send: Any) -> None:
        while True:
            message = await receive()
            received.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    chunks = [b"a" * 10, b"b" * 10, b"c" * 10, b""]
    for cap in (100, 15):
        received.clear()
        turns = AnonymousTurns(echo, concurrency=1, max_waiting=1, max_buffered_bytes=cap)
        sent = await call_with_body(turns, list(chunks))
        assert received == chunks
        assert sent[0]["status"] == 200


async def call_with_body(turns: AnonymousTurns, chunks: list[bytes]) -> Sent:
    """Run one POST through the middleware, its body in ``chunks``; what it sent."""
    sent: Sent = []

    async def receive() -> dict[str, Any]:
        body = chunks.pop(0)
        return {"type": "http.request", "body": body, "more_body": bool(chunks)}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    post = request("/api/token")
    post["method"] = "POST"
    await turns(post, receive, send)
    return sent


async def test_a_request_whose_connection_closed_while_waiting_is_skipped() -> None:
    """When its turn comes, a request whose client has hung up is not run; the next one is."""
    inner = Blocking()
    turns = AnonymousTurns(inner, concurrency=1, max_waiting=10)
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        _, gone = await asyncio.open_connection("127.0.0.1", port)
        first = asyncio.create_task(call(turns, request("/api/games/a")))
        dead = request("/api/games/dead")
        dead["extensions"] = {CONNECTION_EXTENSION: {"transport": gone.transport}}
        hung_up = asyncio.create_task(call(turns, dead))
        last = asyncio.create_task(call(turns, request("/api/games/c")))
        await settle()
        gone.close()
        inner.release["/api/games/a#"].set()
        await settle()
        assert inner.started == ["/api/games/a#", "/api/games/c#"]
        assert await hung_up == []
        inner.release["/api/games/c#"].set()
        await asyncio.gather(first, last)
        assert (turns.running, turns.waiting) == (0, 0)
    finally:
        server.close()


async def test_one_address_cannot_fill_the_queue() -> None:
    """Past its share of the queue an address gets 429; another address still waits its turn."""
    inner = Blocking()
    turns = AnonymousTurns(inner, concurrency=1, max_waiting=10, max_waiting_per_address=2)
    first = asyncio.create_task(call(turns, request("/api/games/a")))
    waiting = [asyncio.create_task(call(turns, request(f"/api/games/w{i}"))) for i in range(2)]
    await settle()
    refused = await call(turns, request("/api/games/over"))
    assert refused[0]["status"] == 429
    assert json.loads(refused[1]["body"])["error"]["code"] == "rate_limited"
    other = request("/api/games/other")
    other["client"] = ("192.0.2.7", 5000)
    elsewhere = asyncio.create_task(call(turns, other))
    await settle()
    assert turns.waiting == 3
    for name in ("/api/games/a#", "/api/games/w0#", "/api/games/w1#", "/api/games/other#"):
        await settle()
        inner.release[name].set()
    answers = await asyncio.gather(first, *waiting, elsewhere)
    assert [a[0]["status"] for a in answers] == [200] * 4
    assert (turns.running, turns.waiting) == (0, 0)


def turns_of(live: LiveServer) -> AnonymousTurns:
    """The server's AnonymousTurns middleware (in-process server, after its first request)."""
    node: Any = live.app.middleware_stack  # type: ignore[attr-defined]
    while not isinstance(node, AnonymousTurns):
        node = node.app
    return node


async def test_requests_whose_clients_hung_up_are_not_run(tmp_path: Path) -> None:
    """Clients that send a read and close at once, while the one turn is busy, leave
    nothing to run: their requests are skipped, and a real reader behind them is served."""
    async with serve(tmp_path / "data", anon_concurrency=1) as live:
        game_id, tokens = await live.started_game()
        await play_e4(live, game_id, tokens)
        host, port = live.url.removeprefix("http://").split(":")
        # Blocking sockets: all requests and closes reach the server before its loop (this
        # one) runs again. The first read renders its PGN off the loop, holding the turn.
        for _ in range(20):
            with socket.create_connection((host, int(port))) as sock:
                sock.sendall(f"GET /api/games/{game_id}/pgn HTTP/1.1\r\nhost: x\r\n\r\n".encode())
        r = await live.client.get(f"/api/games/{game_id}/pgn")
        assert r.status_code == 200
        turns = turns_of(live)
        assert turns.skipped_gone >= 15, turns.skipped_gone
        assert (turns.running, turns.waiting) == (0, 0)


async def play_e4(live: LiveServer, game_id: str, tokens: dict[str, str]) -> None:
    """White plays e4 (a new ``seq``, so the next PGN read renders)."""
    r = await live.client.post(
        f"/api/games/{game_id}/moves",
        json={"move": "e4", "ply": 0},
        headers=live.auth(tokens["white"]),
    )
    assert r.status_code == 200, r.text


async def test_at_most_a_few_reads_start_in_one_iteration_of_the_loop() -> None:
    """Reads that answer without waiting end their turn in the step that took it: without a
    bound per iteration every read the loop took in at once would run in that iteration,
    ahead of a health check or a move read with them."""
    iteration = 0
    ticking = True

    def tick() -> None:
        nonlocal iteration
        iteration += 1
        if ticking:
            asyncio.get_running_loop().call_soon(tick)

    started: list[int] = []

    async def answer_at_once(scope: Scope, receive: Callable[..., Any], send: Any) -> None:
        started.append(iteration)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    turns = AnonymousTurns(answer_at_once, concurrency=16, max_waiting=100, per_iteration=3)
    asyncio.get_running_loop().call_soon(tick)
    await asyncio.sleep(0)
    answers = await asyncio.gather(*(call(turns, request(f"/api/games/{i}")) for i in range(10)))
    ticking = False
    assert [a[0]["status"] for a in answers] == [200] * 10
    per_iteration = Counter(started)
    assert max(per_iteration.values()) <= 3, per_iteration
    assert len(per_iteration) >= 4
    assert (turns.running, turns.waiting) == (0, 0)

    # A player's request (a known token) never waits for the next iteration.
    player = await call(turns, request("/api/games/p", token=True))
    assert player[0]["status"] == 200


async def read_answer(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One HTTP/1.1 answer with a Content-Length: its status and body."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = next(
        int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length")
    )
    return int(lines[0].split()[1]), await reader.readexactly(length)


@pytest.mark.parametrize(
    ("proxied", "per_ip", "player"),
    [(False, 0, False), (True, 1000, False), (True, 0, False), (False, 0, True)],
    ids=["direct", "proxy", "uncapped", "player"],
)
async def test_answered_readers_park_until_their_turn_and_idle_ones_still_close(
    tmp_path: Path, proxied: bool, per_ip: int, player: bool
) -> None:
    """More kept-alive readers than the turns start in an iteration: answered connections
    stop reading while others wait, then read again; every request is answered (the same
    game each time), also a request whose first bytes came with the one before it (a
    connection never parks in the middle of a request), and a connection that then sends
    nothing is still closed by the header deadline, parked or not. A trusted proxy's
    connections (whose next request may be a player's) never park, capped per client or not;
    nor does a connection whose first request carried a player's token, when its next ones
    carry none (a player's client reading without its token, then moving)."""
    async with serve(
        tmp_path / "data",
        anon_concurrency=2,
        anon_per_iteration=1,
        anon_queue_per_address=0,
        header_timeout_s=1.0,
        keep_alive_s=1.0,
        forwarded_allow_ips=("127.0.0.1",) if proxied else (),
        max_connections_per_ip=per_ip,
    ) as live:
        game_id, tokens = await live.started_game()
        host, port = live.url.removeprefix("http://").split(":")
        forwarded = "x-forwarded-for: 203.0.113.9\r\n" if proxied else ""
        request = f"GET /api/games/{game_id} HTTP/1.1\r\nhost: x\r\n{forwarded}\r\n".encode()
        bearer = f"authorization: Bearer {tokens['white']}\r\n"
        with_token = request.replace(b"\r\n\r\n", f"\r\n{bearer}\r\n".encode())

        async def reader(pipelined: bool) -> list[str]:
            stream, writer = await asyncio.open_connection(host, int(port))
            ids = []
            first = with_token if player else request
            for turn in range(5):
                if not pipelined and player and turn == 0:
                    # The token's request with a whole anonymous one pipelined behind it.
                    writer.write(with_token + request)
                    status, body = await read_answer(stream)
                    assert status == 200, body
                    ids.append(json.loads(body)["id"])
                elif not pipelined:
                    writer.write(request)
                else:
                    # The rest of the request begun, and the first bytes of the next one.
                    writer.write((first if turn == 0 else request[20:]) + request[:20])
                status, body = await read_answer(stream)
                assert status == 200, body
                ids.append(json.loads(body)["id"])
            if pipelined:
                writer.write(request[20:])
                status, body = await read_answer(stream)
                assert status == 200, body
                ids.append(json.loads(body)["id"])
            # Silent from now on: the server closes the connection.
            assert await stream.read() == b""
            writer.close()
            return ids

        readers = (reader(pipelined=i % 4 == 0) for i in range(40))
        answers = await asyncio.wait_for(asyncio.gather(*readers), 60)
        assert answers == [[game_id] * (6 if i % 4 == 0 or player else 5) for i in range(40)]
        turns = turns_of(live)
        assert (turns.parked_total == 0) == (proxied or player), turns.parked_total
        assert (turns.running, turns.waiting, turns.parked) == (0, 0, 0)
