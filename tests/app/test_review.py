"""Game review end to end: real servers, real analysis workers, real sockets."""

from __future__ import annotations

import asyncio
import io
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import chess
import chess.pgn
import httpx
import websockets
from websockets.sync.client import connect

from app.review import ReviewService
from tests.app.test_analysis import Watcher, move, ws_url
from tests.app.test_relay_api import board_pgn, names, push, relay_tournament
from tests.conftest import LiveServer, ServerProcess, serve
from tests.workers.test_analysis_pool import stockfish_or_skip
from workers.store import StoreUnavailable

# 1. e4 e5 2. Nf3 Nc6 3. Bc4 Qh4?? 4. Nxh4: Black hangs the queen, then resigns.
HUNG_QUEEN = ["e4", "e5", "Nf3", "Nc6", "Bc4", "Qh4", "Nxh4"]
# Ruy Lopez, Breyer variation: 16 moves of main-line theory, then a draw.
BREYER = [
    "e4",
    "e5",
    "Nf3",
    "Nc6",
    "Bb5",
    "a6",
    "Ba4",
    "Nf6",
    "O-O",
    "Be7",
    "Re1",
    "b5",
    "Bb3",
    "d6",
    "c3",
    "O-O",
    "h3",
    "Nb8",
    "d4",
    "Nbd7",
    "Nbd2",
    "Bb7",
    "Bc2",
    "Re8",
    "Nf1",
    "Bf8",
    "Ng3",
    "g6",
    "a4",
    "c5",
    "d5",
    "c4",
]
REVIEWING = {"analysis": True, "analysis_processes": 1, "analysis_max_time_s": 1.0}


async def play(live: LiveServer, moves: list[str], result: str = "0-1") -> str:
    """A started game with ``moves`` played, then ended by the arbiter with ``result``."""
    game_id, _ = await live.started_game()
    for text in moves:
        await move(live, game_id, text)
    r = await live.client.post(
        f"/api/games/{game_id}/result",
        json={"result": result, "reason": "resignation"},
        headers=live.auth(),
    )
    assert r.status_code == 200, r.text
    return game_id


async def review_of(client: httpx.AsyncClient, game_id: str, timeout_s: float = 120) -> Any:
    """Poll ``GET .../review`` (bounded) until the review is done; return it."""
    async with asyncio.timeout(timeout_s):
        while True:
            r = await client.get(f"/api/games/{game_id}/review")
            assert r.status_code == 200, r.text
            if r.json()["status"] == "done":
                return r.json()
            await asyncio.sleep(0.1)


@dataclass(frozen=True)
class RelayedBoard:
    """Board 1 of a relayed tournament, whose operator sends the board's PGN again."""

    live: LiveServer
    tid: str
    white: str
    black: str
    game_id: str

    async def send(self, sans: list[str], result: str = "*") -> list[dict[str, Any]]:
        """The board's moves (and result) as the relay sends them; the per-game reports."""
        return await push(self.live, self.tid, board_pgn(self.white, self.black, 1, sans, result))


async def relayed_hung_queen(live: LiveServer) -> RelayedBoard:
    """A relayed game that ended 1-0 after ``HUNG_QUEEN`` (so it is to be reviewed)."""
    tid, pairings = await relay_tournament(live)
    t = (await live.client.get(f"/api/tournaments/{tid}", headers=live.auth())).json()
    who = {p["id"]: p["name"] for p in t["players"]}
    (white, black), _ = names(pairings, who)
    board = RelayedBoard(live, tid, white, black, pairings[0]["game"])
    await board.send(HUNG_QUEEN, "1-0")
    return board


def read_pgn(text: str) -> chess.pgn.Game:
    """One game read back by python-chess, without errors."""
    game = chess.pgn.read_game(io.StringIO(text))
    assert game is not None and not game.errors
    return game


async def test_a_hung_queen_is_a_blunder_with_the_better_move(tmp_path: Path) -> None:
    """When the game ends every position is analysed: the socket gets one ``review`` event,
    the same as REST; 3...Qh4 is a blunder with the engine's better line, in the PGN too
    ($4, the line as a variation, [%eval] on every move); the blunderer's accuracy is the
    lower. An operator's second review replaces the first."""
    async with serve(tmp_path / "data", **REVIEWING, review_depth=4) as live:
        game_id, _ = await live.started_game()
        async with websockets.connect(ws_url(live, f"/ws/games/{game_id}")) as ws:
            watcher = Watcher(ws)
            for text in HUNG_QUEEN:
                await move(live, game_id, text)
            before = await live.client.get(f"/api/games/{game_id}/review")
            assert before.json() == {"status": "none"}
            r = await live.client.post(
                f"/api/games/{game_id}/result",
                json={"result": "1-0", "reason": "resignation"},
                headers=live.auth(),
            )
            assert r.status_code == 200
            await watcher.wait_for(lambda w: w.events("review"), timeout_s=120)
            [event] = watcher.events("review")
            [end] = watcher.events("end")
            assert event["seq"] > end["seq"]
            review = await review_of(live.client, game_id)
            assert {k: v for k, v in event.items() if k not in ("type", "game", "seq")} == review
            assert review["budget"] == {"depth": 4} and review["engine"] == "grandmaster-pvs"
            assert [m["san"] for m in review["moves"]] == HUNG_QUEEN
            qh4 = review["moves"][5]
            assert qh4["judgment"]["name"] == "Blunder" and qh4["judgment"]["nag"] == 4
            board = chess.Board()
            for san in HUNG_QUEEN[:5]:
                board.push_san(san)
            better = [chess.Move.from_uci(u) for u in qh4["variation"]]
            assert better and better[0] != board.parse_san("Qh4")
            for step in better:
                assert step in board.legal_moves
                board.push(step)
            assert review["black"]["blunder"] >= 1 and review["white"]["blunder"] == 0
            assert review["white"]["accuracy"] > review["black"]["accuracy"]
            assert all(m["depth"] >= 4 for m in review["moves"])

            pgn = await live.client.get(f"/api/games/{game_id}/pgn")
            game = read_pgn(pgn.text)
            nodes = list(game.mainline())
            assert [n.san() for n in nodes] == HUNG_QUEEN
            assert all(n.eval() is not None for n in nodes)
            assert nodes[5].nags == {4} and "Blunder." in nodes[5].comment
            assert [v.move for v in nodes[4].variations][1] == better[0]

            r = await live.client.post(f"/api/games/{game_id}/review", headers=live.auth())
            assert r.status_code == 202 and r.json()["status"] in ("queued", "running")
            await watcher.wait_for(lambda w: len(w.events("review")) == 2, timeout_s=120)
            second = watcher.events("review")[1]
            assert second["seq"] == event["seq"] + 1
            assert second["moves"][5]["judgment"]["name"] == "Blunder"
            watcher.task.cancel()


async def test_a_well_played_game_gets_high_accuracy_for_both(tmp_path: Path) -> None:
    """Sixteen moves of main-line theory reviewed by Stockfish: both sides above 90%, no
    mistake, no blunder."""
    engine = f"uci:{stockfish_or_skip()}"
    async with serve(tmp_path / "data", **REVIEWING, engine=engine, review_depth=12) as live:
        game_id = await play(live, BREYER, "1/2-1/2")
        review = await review_of(live.client, game_id)
        for side in ("white", "black"):
            figures = review[side]
            assert figures["accuracy"] >= 90, review[side]
            assert figures["mistake"] == figures["blunder"] == 0, review[side]
            assert figures["acpl"] < 20
        assert review["engine"].startswith("Stockfish")


async def test_who_may_ask_for_a_review(tmp_path: Path) -> None:
    """Only the operator asks (401, 403 otherwise), only for a finished game with moves
    (409 ``not_finished``, ``no_moves``), only for a game that exists (404)."""
    async with serve(tmp_path / "data", **REVIEWING, review_depth=2) as live:
        game_id, tokens = await live.started_game()
        url = f"/api/games/{game_id}/review"
        assert (await live.client.post(url)).status_code == 401
        r = await live.client.post(url, headers=live.auth(tokens["white"]))
        assert r.status_code == 403
        r = await live.client.post(url, headers=live.auth())
        assert r.status_code == 409 and r.json()["error"]["code"] == "not_finished"
        empty = await play(live, [], "1-0")
        r = await live.client.post(f"/api/games/{empty}/review", headers=live.auth())
        assert r.status_code == 409 and r.json()["error"]["code"] == "no_moves"
        r = await live.client.post("/api/games/NoSuchGame1/review", headers=live.auth())
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
        assert (await live.client.get("/api/games/NoSuchGame1/review")).status_code == 404
        assert (await live.client.get(f"/api/games/{empty}/review")).json() == {"status": "none"}


async def test_live_analysis_does_not_wait_for_reviews(tmp_path: Path) -> None:
    """With the only worker busy on a review whose every position would take a minute, a
    live game's new position is evaluated at once: the review job gives the worker up and
    the review, still running, is not done when the live evaluation arrives."""
    settings = {**REVIEWING, "review_depth": 60, "review_max_time_s": 60.0}
    async with serve(tmp_path / "data", **settings) as live:
        reviews: ReviewService = live.app.state.reviews  # type: ignore[attr-defined]
        finished = await play(live, ["d4", "d5", "c4"])
        async with asyncio.timeout(60):
            while True:
                if reviews.status(finished)["status"] == "running":
                    break
                await asyncio.sleep(0.05)
        game_id, _ = await live.started_game()
        async with websockets.connect(ws_url(live, f"/ws/games/{game_id}")) as ws:
            watcher = Watcher(ws)
            await watcher.wait_for(lambda w: any(e["ply"] == 0 for e in w.events("eval")))
            for ply, text in enumerate(["e4", "c5"], start=1):
                sent = time.monotonic()
                await move(live, game_id, text)
                await watcher.wait_for(
                    lambda w, p=ply: any(e["ply"] == p for e in w.events("eval")), timeout_s=20
                )
                print(f"first evaluation of ply {ply}: {time.monotonic() - sent:.3f} s")
            watcher.task.cancel()
        status = await live.client.get(f"/api/games/{finished}/review")
        assert status.json()["status"] == "running"
        assert status.json()["progress"]["done"] < status.json()["progress"]["total"]
        metrics = (await live.client.get("/metrics")).text
        assert "gm_reviews_queued 1.0" in metrics.splitlines()


def test_reviews_resume_and_survive_restarts(tmp_path: Path) -> None:
    """A review cut short by a SIGKILL resumes when the server starts again (here with a
    smaller budget), and the finished review, event and PGN, survive the next restart."""
    data = tmp_path / "data"
    slow = {
        "GM_ANALYSIS": "1",
        "GM_ANALYSIS_PROCESSES": "1",
        "GM_REVIEW_DEPTH": "60",
        "GM_REVIEW_MAX_TIME_S": "60",
    }
    server = ServerProcess(data, env=slow)
    auth = {"Authorization": "Bearer operator-secret-token"}
    try:
        server.start()
        with httpx.Client(base_url=server.url, timeout=10) as client:
            body = {"white": {"name": "W"}, "black": {"name": "B"}}
            body["clock"] = {"initial": 300, "increment": 0}  # type: ignore[assignment]
            game_id = client.post("/api/games", json=body, headers=auth).json()["game"]["id"]
            assert client.post(f"/api/games/{game_id}/start", headers=auth).status_code == 200
            for text in HUNG_QUEEN:
                r = client.post(f"/api/games/{game_id}/moves", json={"move": text}, headers=auth)
                assert r.status_code == 200, r.text
            result = {"result": "1-0", "reason": "resignation"}
            r = client.post(f"/api/games/{game_id}/result", json=result, headers=auth)
            assert r.status_code == 200
            deadline = time.monotonic() + 60
            while client.get(f"/api/games/{game_id}/review").json()["status"] != "running":
                assert time.monotonic() < deadline
                time.sleep(0.05)
        server.kill()

        server.env = {**slow, "GM_REVIEW_DEPTH": "3"}
        server.start()
        with httpx.Client(base_url=server.url, timeout=10) as client:
            deadline = time.monotonic() + 120
            while (review := client.get(f"/api/games/{game_id}/review").json())["status"] != (
                "done"
            ):
                assert time.monotonic() < deadline, review
                time.sleep(0.1)
            assert review["budget"] == {"depth": 3}
            assert review["moves"][5]["judgment"]["name"] == "Blunder"
        server.stop()

        server.start()
        with httpx.Client(base_url=server.url, timeout=10) as client:
            assert client.get(f"/api/games/{game_id}/review").json() == review
            nodes = list(read_pgn(client.get(f"/api/games/{game_id}/pgn").text).mainline())
            assert nodes[5].nags == {4} and all(n.eval() is not None for n in nodes)
            game = client.get(f"/api/games/{game_id}").json()
        since = game["seq"] - 1
        with connect(
            server.url.replace("http://", "ws://") + f"/ws/games/{game_id}?since={since}"
        ) as ws:
            replayed = json.loads(ws.recv(timeout=10))
            assert replayed["type"] == "review" and replayed["seq"] == game["seq"]
    finally:
        server.stop()


async def test_a_broadcast_delay_holds_the_review_back_from_the_public(tmp_path: Path) -> None:
    """In a tournament with a broadcast delay the operator sees the review when it is done;
    the public sees nothing of it (not even that one runs) until the game's end is public,
    then the same review, also in the tournament's PGN."""
    async with serve(tmp_path / "data", **REVIEWING, review_depth=2) as live:
        body = {
            "name": "Delayed review",
            "format": "round_robin",
            "clock": {"initial": 600, "increment": 0},
            "delay": 8,
            "players": [{"name": "A"}, {"name": "B"}],
        }
        r = await live.client.post("/api/tournaments", json=body, headers=live.auth())
        tid = r.json()["id"]
        r = await live.client.post(f"/api/tournaments/{tid}/rounds", json={}, headers=live.auth())
        game_id = r.json()["pairings"][0]["game"]
        for text in HUNG_QUEEN:
            await move(live, game_id, text)
        r = await live.client.post(
            f"/api/games/{game_id}/result",
            json={"result": "1-0", "reason": "resignation"},
            headers=live.auth(),
        )
        assert r.status_code == 200, r.text
        url = f"/api/games/{game_id}/review"
        async with asyncio.timeout(60):
            while True:
                seen = (await live.client.get(url, headers=live.auth())).json()
                assert (await live.client.get(url)).json() == {"status": "none"}
                if seen["status"] == "done":
                    break
                await asyncio.sleep(0.05)
        public_game = (await live.client.get(f"/api/games/{game_id}")).json()
        assert public_game["status"] != "finished"
        assert (await live.client.get(url)).json() == {"status": "none"}
        async with asyncio.timeout(60):
            while True:
                public = (await live.client.get(url)).json()
                if public["status"] == "done":
                    break
                assert public["status"] in ("none", "running")
                await asyncio.sleep(0.1)
        assert public == seen
        assert (await live.client.get(f"/api/games/{game_id}")).json()["status"] == "finished"
        exported = await live.client.get(f"/api/tournaments/{tid}/pgn")
        nodes = list(read_pgn(exported.text).mainline())
        assert nodes[5].nags == {4} and len(nodes[4].variations) == 2
        assert all(node.eval() is not None for node in nodes)


async def test_a_relay_correction_drops_the_review_and_the_new_end_brings_a_new_one(
    tmp_path: Path,
) -> None:
    """A relayed game that ended is reviewed; when the board takes back the blunder and
    withdraws the result, the review is gone (REST, PGN); when the corrected game ends, its
    own review comes, without the blunder."""
    async with serve(tmp_path / "data", **REVIEWING, review_depth=3) as live:
        board = await relayed_hung_queen(live)
        game_id = board.game_id
        first = await review_of(live.client, game_id)
        assert first["moves"][5]["judgment"]["name"] == "Blunder"
        corrected = [*HUNG_QUEEN[:5], "Nf6"]
        [report] = await board.send(corrected)
        assert report["corrected"] is True
        assert (await live.client.get(f"/api/games/{game_id}/review")).json() == {"status": "none"}
        pgn = (await live.client.get(f"/api/games/{game_id}/pgn")).text
        assert all(not node.nags for node in read_pgn(pgn).mainline())
        await board.send([*corrected, "d3"], "1/2-1/2")
        second = await review_of(live.client, game_id)
        assert [m["san"] for m in second["moves"]] == [*corrected, "d3"]
        assert second["black"]["blunder"] == 0


async def test_a_game_ending_as_the_server_stops_or_crashes_is_still_reviewed(
    tmp_path: Path,
) -> None:
    """The review request is stored with the game's end: one game ends while the review
    service is already closed (shutdown), another with the separate request write lost (a
    crash right after the end); after a restart both are reviewed."""
    data = tmp_path / "data"
    async with serve(data, **REVIEWING, review_depth=2) as live:
        reviews: ReviewService = live.app.state.reviews  # type: ignore[attr-defined]
        store = live.app.state.store  # type: ignore[attr-defined]

        async def lost(game: str, requested_ms: int) -> None:
            raise StoreUnavailable("the server crashed before this write")

        # Nothing gets reviewed before the "crash".
        reviews._pump = lambda: None  # type: ignore[method-assign]
        real_queue_review = store.queue_review
        store.queue_review = lost
        crashed = await play(live, HUNG_QUEEN[:4])
        await asyncio.sleep(0.2)
        store.queue_review = real_queue_review
        await reviews.close()
        stopping = await play(live, HUNG_QUEEN[:4])
    async with serve(data, **REVIEWING, review_depth=2) as live:
        for game_id in (crashed, stopping):
            status = (await live.client.get(f"/api/games/{game_id}/review")).json()
            assert status["status"] != "none"
            review = await review_of(live.client, game_id)
            assert [m["san"] for m in review["moves"]] == HUNG_QUEEN[:4]
