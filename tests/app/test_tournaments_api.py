"""Whole tournaments through the REST API of a real server, checked independently.

A 10-player round robin and a 64-player Swiss are played to the end with random legal
games; their standings are recomputed here from the games alone (a deliberately plain
computation, not the server's code) and compared.
"""

from __future__ import annotations

import asyncio
import io
import random
from collections import defaultdict
from pathlib import Path
from typing import Any

import chess
import chess.pgn

from tests.conftest import LiveServer

CLOCK = {"initial": 600, "increment": 0}


def players(n: int) -> list[dict[str, Any]]:
    """``n`` entries, strongest first."""
    return [{"name": f"Player {i + 1:03d}", "rating": 2700 - 7 * i} for i in range(n)]


async def create(live: LiveServer, **body: Any) -> dict[str, Any]:
    """Create a tournament as operator."""
    r = await live.client.post("/api/tournaments", json=body, headers=live.auth())
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()
    return data


async def pair(live: LiveServer, tid: str) -> dict[str, Any]:
    """Pair the next round."""
    r = await live.client.post(f"/api/tournaments/{tid}/rounds", json={}, headers=live.auth())
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()
    return data


async def play_random(
    live: LiveServer,
    game_id: str,
    tokens: dict[str, str],
    rng: random.Random,
    tid: str,
    rnd: int,
    board: int,
) -> str:
    """A few random legal moves by the players, then a random way to end; the result."""
    b = chess.Board()
    for ply in range(rng.randrange(0, 9)):
        moves = list(b.legal_moves)
        if not moves:
            break
        move = rng.choice(moves)
        side = "white" if b.turn == chess.WHITE else "black"
        r = await live.client.post(
            f"/api/games/{game_id}/moves",
            json={"move": move.uci(), "ply": ply},
            headers=live.auth(tokens[side]),
        )
        assert r.status_code == 200, r.text
        b.push(move)
        if b.is_game_over():
            return b.result()
    ending = rng.random()
    if ending < 0.35:
        side = rng.choice(["white", "black"])
        r = await live.client.post(f"/api/games/{game_id}/resign", headers=live.auth(tokens[side]))
        assert r.status_code == 200, r.text
        return "0-1" if side == "white" else "1-0"
    if ending < 0.6:
        for side, action in (("white", "offer"), ("black", "accept")):
            r = await live.client.post(
                f"/api/games/{game_id}/draw",
                json={"action": action},
                headers=live.auth(tokens[side]),
            )
            assert r.status_code == 200, r.text
        return "1/2-1/2"
    result = rng.choice(["1-0", "0-1", "1/2-1/2"])
    r = await live.client.post(
        f"/api/tournaments/{tid}/rounds/{rnd}/results",
        json={"board": board, "result": result},
        headers=live.auth(),
    )
    assert r.status_code == 200, r.text
    return result


def reference_standings(rounds: list[list[tuple[str, str, str]]], ids: list[str]) -> dict[str, Any]:
    """Points, SB, BH, BH-C1, wins and progressive score from (white, black, result) boards
    of rounds without byes or unplayed games."""
    score = {1: (1.0, 0.0), 0: (0.5, 0.5), -1: (0.0, 1.0)}
    points: dict[str, float] = defaultdict(float)
    wins: dict[str, int] = defaultdict(int)
    progressive: dict[str, float] = defaultdict(float)
    met: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for boards in rounds:
        for white, black, result in boards:
            w, b = score[{"1-0": 1, "1/2-1/2": 0, "0-1": -1}[result]]
            points[white] += w
            points[black] += b
            wins[white] += w == 1.0
            wins[black] += b == 1.0
            met[white].append((black, w))
            met[black].append((white, b))
        for pid in ids:
            progressive[pid] += points[pid]
    out: dict[str, Any] = {}
    for pid in ids:
        opp = [points[o] for o, _ in met[pid]]
        out[pid] = {
            "points": points[pid],
            "SB": sum(points[o] * s for o, s in met[pid]),
            "BH": sum(opp),
            "BH-C1": sum(opp) - min(opp) if opp else 0.0,
            "WIN": wins[pid],
            "PS": progressive[pid],
        }
    return out


async def run_tournament(
    live: LiveServer, tid: str, rng: random.Random
) -> list[list[tuple[str, str, str]]]:
    """Pair and play every round; returns (white, black, result) per board per round."""
    played: list[list[tuple[str, str, str]]] = []
    info = (await live.client.get(f"/api/tournaments/{tid}")).json()
    for rnd in range(1, info["rounds_total"] + 1):
        paired = await pair(live, tid)
        assert paired["round"] == rnd
        r = await live.client.post(f"/api/tournaments/{tid}/rounds", json={}, headers=live.auth())
        assert (r.status_code, r.json()["error"]["code"]) == (409, "round_unfinished")
        boards = []
        for p in paired["pairings"]:
            result = await play_random(
                live, p["game"], paired["tokens"][p["game"]], rng, tid, rnd, p["board"]
            )
            boards.append((p["white"], p["black"], result))
        played.append(boards)
    r = await live.client.post(f"/api/tournaments/{tid}/rounds", json={}, headers=live.auth())
    assert (r.status_code, r.json()["error"]["code"]) == (409, "tournament_finished")
    return played


async def test_ten_player_round_robin_to_the_end(live: LiveServer) -> None:
    """A 10-player round robin follows the Berger tables, and its final standings match an independent computation."""
    rng = random.Random(10)
    t = await create(live, name="RR 10", format="round_robin", clock=CLOCK, players=players(10))
    assert t["rounds_total"] == 9
    assert t["tiebreaks"] == ["SB", "DE", "WIN"]
    ids = [p["id"] for p in t["players"]]
    played = await run_tournament(live, t["id"], rng)
    # Berger round 1 for 10 players: 1-10, 2-9, 3-8, 4-7, 5-6.
    number = {pid: i + 1 for i, pid in enumerate(ids)}
    assert [(number[w], number[b]) for w, b, _ in played[0]] == [
        (1, 10),
        (2, 9),
        (3, 8),
        (4, 7),
        (5, 6),
    ]
    pairs = {frozenset((w, b)) for boards in played for w, b, _ in boards}
    assert len(pairs) == 45
    final = (await live.client.get(f"/api/tournaments/{t['id']}")).json()
    assert final["status"] == "finished"
    expected = reference_standings(played, ids)
    rows = final["standings"]
    assert [row["rank"] for row in rows] == list(range(1, 11))
    for row in rows:
        ref = expected[row["player"]]
        assert row["points"] == ref["points"]
        assert row["tiebreaks"]["SB"] == ref["SB"]
        assert row["tiebreaks"]["WIN"] == ref["WIN"]
        assert row["played"] == 9
    keys = [(row["points"], row["tiebreaks"]["SB"]) for row in rows]
    assert keys == sorted(keys, reverse=True)


async def test_sixty_four_player_swiss_to_the_end(live: LiveServer) -> None:
    """A 64-player, 7-round Dutch Swiss: no rematch, every player every round, standings match an independent computation, and the PGN and TRF export every game."""
    rng = random.Random(64)
    t = await create(
        live, name="Open 64", format="swiss", rounds=7, clock=CLOCK, players=players(64)
    )
    assert "Dutch" in t["pairing_system"] and "py4swiss" in t["pairing_system"]
    ids = [p["id"] for p in t["players"]]
    played = await run_tournament(live, t["id"], rng)
    seen: set[frozenset[str]] = set()
    for boards in played:
        assert sorted(p for w, b, _ in boards for p in (w, b)) == sorted(ids)
        for w, b, _ in boards:
            assert frozenset((w, b)) not in seen
            seen.add(frozenset((w, b)))
    final = (await live.client.get(f"/api/tournaments/{t['id']}")).json()
    expected = reference_standings(played, ids)
    for row in final["standings"]:
        ref = expected[row["player"]]
        assert row["points"] == ref["points"]
        for tb in ("BH-C1", "BH", "SB", "PS", "WIN"):
            assert row["tiebreaks"][tb] == ref[tb], (tb, row, ref)
    keys = [
        (row["points"], *(row["tiebreaks"][tb] for tb in ("BH-C1", "BH", "SB", "PS", "WIN")))
        for row in final["standings"]
    ]
    assert keys == sorted(keys, reverse=True)
    pgn = (await live.client.get(f"/api/tournaments/{t['id']}/pgn")).text
    handle = io.StringIO(pgn)
    rounds_boards = []
    while (game := chess.pgn.read_game(handle)) is not None:
        rounds_boards.append(game.headers["Round"])
        assert game.headers["Event"] == "Open 64"
    assert rounds_boards == [f"{r}.{b}" for r in range(1, 8) for b in range(1, 33)]
    trf = (await live.client.get(f"/api/tournaments/{t['id']}/trf")).text
    lines = [line for line in trf.splitlines() if line.startswith("001")]
    assert len(lines) == 64
    points = {row["player"]: row["points"] for row in final["standings"]}
    name_points = {p["name"]: points[p["id"]] for p in final["players"]}
    for line in lines:
        assert float(line[80:84]) == name_points[line[14:47].strip()]


async def test_swiss_numbers_players_by_rating_and_round_robin_keeps_the_drawn_order(
    live: LiveServer,
) -> None:
    """A Swiss numbers its entries in the FIDE initial order (rating, title, name); a round robin keeps the order given."""
    entries = [
        {"name": "Zed", "rating": 2500},
        {"name": "Unrated"},
        {"name": "Bee", "rating": 2600, "title": "IM"},
        {"name": "Ann", "rating": 2600, "title": "GM"},
        {"name": "Cid", "rating": 2600, "title": "IM"},
    ]
    swiss = await create(live, name="S", format="swiss", rounds=3, clock=CLOCK, players=entries)
    assert [p["name"] for p in swiss["players"]] == ["Ann", "Bee", "Cid", "Zed", "Unrated"]
    assert [p["number"] for p in swiss["players"]] == [1, 2, 3, 4, 5]
    rr = await create(live, name="R", format="round_robin", clock=CLOCK, players=entries)
    assert [p["name"] for p in rr["players"]] == [e["name"] for e in entries]


class SlowEngine:
    """The real pairing engine behind a gate, to land a result while a round is paired."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.name = engine.name
        self.entered = asyncio.Event()
        self.gate = asyncio.Event()

    async def pair(self, trf: str) -> list[tuple[int, int]]:
        self.entered.set()
        await self.gate.wait()
        pairs: list[tuple[int, int]] = await self.engine.pair(trf)
        return pairs


async def test_a_result_corrected_while_the_next_round_is_paired_is_kept(live: LiveServer) -> None:
    """A correction that lands while the engine pairs the next round stays in the operator's view, which agrees with the game."""
    t = await create(live, name="Race", format="swiss", rounds=3, clock=CLOCK, players=players(4))
    tid = t["id"]
    paired = await pair(live, tid)
    for board in (1, 2):
        r = await live.client.post(
            f"/api/tournaments/{tid}/rounds/1/results",
            json={"board": board, "result": "1-0"},
            headers=live.auth(),
        )
        assert r.status_code == 200
    service = live.app.state.tournaments  # type: ignore[attr-defined]
    slow = SlowEngine(service._pairing)
    service._pairing = slow
    pairing = asyncio.create_task(pair(live, tid))
    await asyncio.wait_for(slow.entered.wait(), 10)
    r = await live.client.post(
        f"/api/tournaments/{tid}/rounds/1/results",
        json={"board": 1, "result": "0-1"},
        headers=live.auth(),
    )
    assert r.status_code == 200
    slow.gate.set()
    assert (await pairing)["round"] == 2
    view = (await live.client.get(f"/api/tournaments/{tid}", headers=live.auth())).json()
    assert view["rounds"][0]["pairings"][0]["result"] == "0-1"
    game = (await live.client.get(f"/api/games/{paired['pairings'][0]['game']}")).json()
    assert game["result"] == "0-1"


async def test_start_at_out_of_range_is_refused(live: LiveServer) -> None:
    """A scheduled start far outside the calendar is 422, never a server error."""
    t = await create(live, name="When", format="swiss", rounds=3, clock=CLOCK, players=players(4))
    for when in (
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-14:00",
        "soon",
        "2030-01-01T10:00",
    ):
        r = await live.client.post(
            f"/api/tournaments/{t['id']}/rounds", json={"start_at": when}, headers=live.auth()
        )
        assert (r.status_code, r.json()["error"]["code"]) == (422, "invalid"), when


async def test_shutdown_does_not_wait_for_a_pairing_engine(tmp_path: Path) -> None:
    """A server stopping while the engine pairs a round stops promptly; nothing of that round was stored."""
    from tests.conftest import serve

    async def run() -> str:
        async with serve(tmp_path / "data") as live:
            t = await create(
                live, name="Stop", format="swiss", rounds=3, clock=CLOCK, players=players(4)
            )
            service = live.app.state.tournaments  # type: ignore[attr-defined]
            slow = SlowEngine(service._pairing)  # never let through
            service._pairing = slow
            asyncio.create_task(  # noqa: RUF006 - the server's stop ends it
                live.client.post(f"/api/tournaments/{t['id']}/rounds", json={}, headers=live.auth())
            )
            await asyncio.wait_for(slow.entered.wait(), 10)
            return str(t["id"])

    tid = await asyncio.wait_for(run(), 30)
    async with serve(tmp_path / "data") as live:
        t = (await live.client.get(f"/api/tournaments/{tid}")).json()
        assert t["rounds"] == []
        assert (await live.client.get("/api/games")).json()["games"] == []
