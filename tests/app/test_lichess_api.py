"""lichess's broadcast API, driven by the real clients: berserk (PyPI) against a live server,
and the lichess Broadcaster app's calls replayed over HTTP as its source makes them."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import queue
import re
import secrets
import threading
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import berserk
import chess
import chess.pgn
import httpx

from app.games import RECENT_MS
from tests.app.test_relay_api import PgnSource, board_pgn, pgn_source, random_line, until
from tests.conftest import FakeTime, LiveServer, serve

__all__ = ["pgn_source"]  # a fixture, used by name


def client_for(live: LiveServer, token: str | None = None) -> berserk.Client:
    """A berserk client whose base URL is the live server."""
    session = berserk.TokenSession(token or live.operator_token)
    return berserk.Client(session, base_url=live.url)


def read_games(pgn: str) -> list[chess.pgn.Game]:
    """Every game of a PGN text."""
    stream = io.StringIO(pgn)
    games = []
    while (game := chess.pgn.read_game(stream)) is not None:
        games.append(game)
    return games


def sans(game: chess.pgn.Game) -> list[str]:
    """The mainline of ``game`` in SAN."""
    board = game.board()
    out = []
    for move in game.mainline_moves():
        out.append(board.san(move))
        board.push(move)
    return out


async def test_berserk_runs_a_broadcast(live: LiveServer) -> None:
    """berserk creates a broadcast and a round, pushes the round as a DGT board would (moves, a correction, a result, garbage), and reads the round, its PGN, the tournament PGN and the live stream."""
    bb = client_for(live).broadcasts
    tour = await asyncio.to_thread(
        bb.create, name="Berserk Open", description="A test", auto_leaderboard=False
    )
    tour_id = tour["tour"]["id"]
    assert tour["rounds"] == [] and tour["tour"]["name"] == "Berserk Open"
    created = await asyncio.to_thread(bb.create_round, tour_id, "Round 1", delay=None)
    round_id = created["round"]["id"]
    assert created["study"]["writeable"] is True and created["round"]["delay"] == 0

    line_a, line_b = random_line(30, 11), random_line(30, 12)
    a = ("Carlsen, Magnus", "Nakamura, Hikaru", 1)
    b = ("Caruana, Fabiano", "Firouzja, Alireza", 2)
    await asyncio.to_thread(
        bb.push_pgn_update, round_id, [board_pgn(*a, line_a[:6]), board_pgn(*b, line_b[:4])]
    )
    shown = await asyncio.to_thread(bb.get_round, round_id)
    assert [g["name"] for g in shown["games"]] == [f"{a[0]} - {a[1]}", f"{b[0]} - {b[1]}"]
    board = chess.Board()
    for san in line_a[:6]:
        board.push_san(san)
    assert shown["games"][0]["lastMove"] == board.peek().uci()
    assert shown["round"]["ongoing"] is True

    # Further on; board 2 corrected (its last move differs) and garbage for a third game.
    corrected = [*line_b[:3], next(m for m in random_line(40, 99) if m != line_b[3])]
    fixed = chess.Board()
    try:
        for san in corrected:
            fixed.push_san(san)
    except ValueError:
        corrected = line_b[:3]
    garbage = '[White "X Y"]\n[Black "Z W"]\n\n1. e4 e5 2. Qxf7 *\n'
    await asyncio.to_thread(
        bb.push_pgn_update,
        round_id,
        [board_pgn(*a, line_a[:12], "1-0"), board_pgn(*b, corrected), garbage],
    )
    # berserk yields one game per item (it cuts the stream at two empty lines).
    pgn = "\n\n".join(await asyncio.to_thread(lambda: list(bb.get_round_pgns(round_id))))
    games = read_games(pgn)
    assert [g.headers["White"] for g in games[:2]] == [a[0], b[0]]
    assert sans(games[0]) == line_a[:12] and games[0].headers["Result"] == "1-0"
    assert sans(games[1]) == corrected
    assert all(g.headers["GameURL"].endswith(f"/broadcast/-/-/{round_id}") for g in games)
    tour_pgn = "\n\n".join(await asyncio.to_thread(lambda: list(bb.get_pgns(tour_id))))
    assert [sans(g) for g in read_games(tour_pgn)] == [sans(g) for g in games]

    # The live stream: every game first, then a game again, whole, when it changes.
    items: queue.Queue[str] = queue.Queue()

    def follow() -> None:
        try:
            for item in bb.stream_round(round_id):
                items.put(item)
        except Exception as exc:  # the server closing the stream at shutdown
            items.put(f"closed: {exc!r}")

    threading.Thread(target=follow, daemon=True).start()
    seen = ""
    while len(read_games(seen)) < len(games):
        seen += await asyncio.to_thread(items.get, True, 10) + "\n\n"
    await asyncio.to_thread(
        bb.push_pgn_update, round_id, [board_pgn(*a, line_a[:12], "1-0"), board_pgn(*b, line_b[:8])]
    )
    later = ""
    while not any(sans(g) == line_b[:8] for g in read_games(later)):
        later += await asyncio.to_thread(items.get, True, 10) + "\n\n"

    await asyncio.to_thread(bb.update_round, round_id, "Round 1", status="finished")
    shown = await asyncio.to_thread(bb.get, tour_id)
    assert shown["rounds"][0]["finished"] is True


async def broadcaster_login(live: LiveServer, personal_token: str) -> str:
    """The Broadcaster app's login (OAuth 2 PKCE, as its source makes it), approved with a
    personal token of the account; the access token it ends with."""
    verifier = secrets.token_urlsafe(96)[:128]
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    redirect_uri = "http://localhost:47123"
    params = {
        "response_type": "code",
        "client_id": "Lichess Broadcaster",
        "redirect_uri": redirect_uri,
        "code_challenge_method": "S256",
        "code_challenge": challenge.rstrip(b"=").decode(),
        "scope": "study:read study:write",
    }
    page = await live.client.get("/oauth", params=params)
    assert page.status_code == 200, page.text
    pending = re.search(r'name="request" value="([^"]+)"', page.text)
    assert pending is not None
    r = await live.client.post(
        "/oauth/approve",
        data={"request": pending.group(1), "token": personal_token, "action": "approve"},
        follow_redirects=False,
    )
    assert r.status_code == 302, r.text
    [code] = parse_qs(urlsplit(r.headers["location"]).query)["code"]
    r = await live.client.post(
        "/api/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "code_verifier": verifier,
            "redirect_uri": redirect_uri,
            "client_id": "Lichess Broadcaster",
        },
    )
    assert r.status_code == 200, r.text
    assert r.json()["expires_in"] >= 335 * 86400
    token: str = r.json()["access_token"]
    return token


async def personal_token(live: LiveServer, account: str) -> str:
    """A personal token of ``account`` with the broadcast scopes, made by the operator."""
    r = await live.client.post("/api/tokens", json={"account": account}, headers=live.auth())
    assert r.status_code == 201, r.text
    token: str = r.json()["token"]
    return token


async def test_the_broadcaster_apps_session(live: LiveServer) -> None:
    """The Broadcaster app's session as its source makes it: log in with PKCE, list the account's broadcasts, open one and a round (writeable), push the round every second, reset, log out."""
    alice = await personal_token(live, "Alice")
    bb = client_for(live, alice).broadcasts
    tour = (await asyncio.to_thread(bb.create, "Folder Open", "", False))["tour"]
    round_id = (await asyncio.to_thread(bb.create_round, tour["id"], "Round 1"))["round"]["id"]

    token = await broadcaster_login(live, alice)
    app = httpx.AsyncClient(
        base_url=live.url,
        headers={"User-Agent": "Lichess Broadcaster/2.0 os:linux as:anon"},
    )
    app.headers["Authorization"] = f"Bearer {token}"
    username = (await app.get("/api/account")).json()["username"]
    assert username == "Alice"
    app.headers["User-Agent"] = f"Lichess Broadcaster/2.0 os:linux as:{username}"
    listed = (await app.get(f"/api/broadcast/by/{username}")).json()
    assert listed["nbResults"] == 1 and listed["currentPageResults"][0]["tour"]["id"] == tour["id"]
    opened = (await app.get(f"/api/broadcast/{tour['id']}")).json()
    assert [r["id"] for r in opened["rounds"]] == [round_id]
    shown = (await app.get(f"/api/broadcast/-/-/{round_id}")).json()
    assert shown["study"]["writeable"] is True
    async with httpx.AsyncClient(base_url=live.url) as anonymous:
        other = await anonymous.get(f"/api/broadcast/-/-/{round_id}")
        assert other.json()["study"]["writeable"] is False

    folder = board_pgn("Anand, V", "Gukesh, D", 1, random_line(10, 5)) + board_pgn(
        "?", "Nobody", 2, ["e4"]
    )
    answers = []
    for _ in range(3):
        r = await app.post(
            f"/api/broadcast/round/{round_id}/push",
            content=folder,
            headers={"Content-Type": "text/plain"},
        )
        assert r.status_code == 200
        answers.append(r.json()["games"])
    for games in answers:
        assert games[0]["moves"] == 10 and games[0]["tags"]["White"] == "Anand, V"
        assert "error" in games[1] and "moves" not in games[1]
    r = await app.post(f"/api/broadcast/round/{round_id}/reset")
    assert r.json() == {"ok": True}
    shown = (await app.get(f"/api/broadcast/-/-/{round_id}")).json()
    assert shown["games"] == [] and "ongoing" not in shown["round"]
    assert (await app.delete("/api/token")).status_code == 204
    assert (await app.get("/api/account")).status_code == 401
    await app.aclose()


async def test_a_broadcast_belongs_to_its_account(live: LiveServer) -> None:
    """Another account may read a broadcast but not push to it or change it (403, lichess's error); the operator may; my-rounds lists an account's own rounds only."""
    alice, bob = await personal_token(live, "Alice"), await personal_token(live, "Bob")
    tour = await asyncio.to_thread(client_for(live, alice).broadcasts.create, "Mine", "", False)
    created = await asyncio.to_thread(
        client_for(live, alice).broadcasts.create_round, tour["tour"]["id"], "Round 1"
    )
    round_id = created["round"]["id"]
    push = f"/api/broadcast/round/{round_id}/push"
    pgn = board_pgn("Anand, V", "Gukesh, D", 1, ["e4"])
    r = await live.client.post(push, content=pgn, headers={"Authorization": f"Bearer {bob}"})
    assert (r.status_code, r.json()) == (403, {"error": "You can't do that"})
    r = await live.client.post(
        f"/broadcast/{tour['tour']['id']}/new",
        json={"name": "Round 2"},
        headers={"Authorization": f"Bearer {bob}"},
    )
    assert r.status_code == 403
    r = await live.client.post(push, content=pgn, headers=live.auth())
    assert r.status_code == 200 and r.json()["games"][0]["moves"] == 1
    mine = await asyncio.to_thread(
        lambda: list(client_for(live, alice).broadcasts.stream_my_rounds())
    )
    theirs = await asyncio.to_thread(
        lambda: list(client_for(live, bob).broadcasts.stream_my_rounds())
    )
    assert [m["round"]["id"] for m in mine] == [round_id] and theirs == []
    assert mine[0]["study"]["writeable"] is True


async def test_writes_need_the_right_token(live: LiveServer) -> None:
    """Without a token a push is 401, with a player's token 403, both in lichess's error format; unknown rounds are 404."""
    bb = client_for(live).broadcasts
    tour = (await asyncio.to_thread(bb.create, "Guarded Open", "", False))["tour"]
    round_id = (await asyncio.to_thread(bb.create_round, tour["id"], "Round 1"))["round"]["id"]
    r = await live.client.post(f"/api/broadcast/round/{round_id}/push", content="1. e4 *")
    assert r.status_code == 401 and isinstance(r.json()["error"], str)
    _, tokens = await live.create_game()
    r = await live.client.post(
        f"/api/broadcast/round/{round_id}/push",
        content="1. e4 *",
        headers=live.auth(tokens["white"]),
    )
    assert r.status_code == 403 and isinstance(r.json()["error"], str)
    r = await live.client.get("/api/broadcast/-/-/AAAAAAAA")
    assert (r.status_code, r.json()) == (404, {"error": "Not found"})
    r = await live.client.post(
        f"/broadcast/{tour['id']}/new", json={"name": "R"}, headers=live.auth()
    )
    assert r.status_code == 400


async def test_a_pushed_rounds_delay_holds_the_public_view(live: LiveServer) -> None:
    """A round created with a delay shows its pushed moves to the public only after it; the games' own routes hold them back too."""
    bb = client_for(live).broadcasts
    tour = (await asyncio.to_thread(bb.create, "Delayed Open", "", False))["tour"]
    created = await asyncio.to_thread(bb.create_round, tour["id"], "Round 1", delay=2)
    round_id = created["round"]["id"]
    assert created["round"]["delay"] == 2
    line = random_line(6, 8)
    await asyncio.to_thread(
        bb.push_pgn_update, round_id, [board_pgn("Anand, V", "Gukesh, D", 1, line)]
    )
    public = httpx.AsyncClient(base_url=live.url)
    shown = (await public.get(f"/api/broadcast/-/-/{round_id}")).json()
    assert "lastMove" not in shown["games"][0]
    game_id = shown["games"][0]["id"]
    assert (await public.get(f"/api/games/{game_id}")).json()["ply"] == 0
    assert (await live.client.get(f"/api/games/{game_id}", headers=live.auth())).json()["ply"] == 6
    for _ in range(1000):
        shown = (await public.get(f"/api/broadcast/-/-/{round_id}")).json()
        if "lastMove" in shown["games"][0]:
            break
        await asyncio.sleep(0.02)
    else:
        raise AssertionError("the delayed moves were never released")
    assert (await public.get(f"/api/games/{game_id}")).json()["ply"] == 6
    await public.aclose()


async def test_a_round_with_a_sync_url_is_polled(
    tmp_path: Path, pgn_source: tuple[PgnSource, str]
) -> None:
    """A broadcast round created with lichess's ``syncUrl`` polls it: its games become boards and follow the source; pushing to it is refused inside a 200."""
    source, url = pgn_source
    async with serve(tmp_path / "data", relay_poll_s=0.2) as live:
        bb = client_for(live).broadcasts
        tour = (await asyncio.to_thread(bb.create, "Polled Open", "", False))["tour"]
        created = await asyncio.to_thread(bb.create_round, tour["id"], "Round 1", syncUrl=url)
        round_id = created["round"]["id"]
        line = random_line(10, 21)
        source.text = board_pgn("Anand, V", "Gukesh, D", 1, line[:4])

        await until(lambda: _has_games(live, round_id, 1))
        source.text = board_pgn("Anand, V", "Gukesh, D", 1, line[:9])

        async def at_nine() -> bool:
            pgn = (await live.client.get(f"/api/broadcast/round/{round_id}.pgn")).text
            return [sans(g) for g in read_games(pgn)] == [line[:9]]

        await until(at_nine)
        r = await live.client.post(
            f"/api/broadcast/round/{round_id}/push",
            content=board_pgn("X, Y", "Z, W", 2, ["e4"]),
            headers=live.auth(),
        )
        assert r.status_code == 200 and "upstream" in r.json()["games"][0]["error"]
        # No body at all is refused whole there too, as on any round.
        r = await live.client.post(f"/api/broadcast/round/{round_id}/push", headers=live.auth())
        assert r.status_code == 400 and isinstance(r.json()["error"], str), r.text


async def _has_games(live: LiveServer, round_id: str, count: int) -> bool:
    shown = (await live.client.get(f"/api/broadcast/-/-/{round_id}")).json()
    return len(shown["games"]) == count


async def test_an_account_may_not_point_a_round_at_a_private_address(live: LiveServer) -> None:
    """An account's syncUrl on a loopback or private address is refused (the server would fetch it); the operator's is taken."""
    alice = await personal_token(live, "Alice")
    tour = await asyncio.to_thread(client_for(live, alice).broadcasts.create, "Mine", "", False)
    url = f"/broadcast/{tour['tour']['id']}/new"
    for address in ("http://127.0.0.1:9/round.pgn", "http://10.1.2.3/x.pgn", "http://[::1]/a"):
        r = await live.client.post(
            url,
            json={"name": "Round 1", "syncUrl": address},
            headers={"Authorization": f"Bearer {alice}"},
        )
        assert r.status_code == 400, (address, r.text)
    r = await live.client.post(
        url,
        json={"name": "Round 1", "syncUrl": "http://127.0.0.1:9/round.pgn"},
        headers=live.auth(),
    )
    assert r.status_code == 200


async def test_a_push_reports_the_moves_of_games_no_longer_in_memory(
    tmp_path: Path, fake_time: FakeTime
) -> None:
    """A finished game that left memory is still reported with its half-moves by the next push (the Broadcaster counts moves > 0 as a success)."""
    async with serve(tmp_path / "data", now_ms=fake_time, game_cache=0) as live:
        bb = client_for(live).broadcasts
        tour = (await asyncio.to_thread(bb.create, "Evicted Open", "", False))["tour"]
        round_id = (await asyncio.to_thread(bb.create_round, tour["id"], "Round 1"))["round"]["id"]
        pgn = board_pgn("Anand, V", "Gukesh, D", 1, random_line(7, 4), "1-0")
        push = f"/api/broadcast/round/{round_id}/push"
        first = (await live.client.post(push, content=pgn, headers=live.auth())).json()
        fake_time.advance(RECENT_MS + 1)
        live.app.state.games.evict()  # type: ignore[attr-defined]
        again = (await live.client.post(push, content=pgn, headers=live.auth())).json()
        assert first["games"][0]["moves"] == again["games"][0]["moves"] == 7
