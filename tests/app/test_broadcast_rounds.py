"""Broadcast tournaments: rounds created by hand, boards made by the games pushed."""

from __future__ import annotations

from typing import Any

from tests.app.test_relay_api import board_pgn, random_line
from tests.conftest import LiveServer

BROADCAST = {
    "name": "Open Broadcast",
    "format": "broadcast",
    "mode": "relay",
    "clock": {"initial": 5400, "increment": 30},
}


async def broadcast_round(live: LiveServer, **round_body: Any) -> tuple[str, dict[str, Any]]:
    """A broadcast with one empty round; the tournament id and the round."""
    r = await live.client.post("/api/tournaments", json=BROADCAST, headers=live.auth())
    assert r.status_code == 201, r.text
    tid = r.json()["id"]
    r = await live.client.post(
        f"/api/tournaments/{tid}/rounds", json=round_body, headers=live.auth()
    )
    assert r.status_code == 201, r.text
    return tid, r.json()


async def push(live: LiveServer, tid: str, pgn: str, round_no: int = 1) -> list[dict[str, Any]]:
    """Push a round's PGN as the operator; the per-game reports."""
    r = await live.client.post(
        f"/api/tournaments/{tid}/rounds/{round_no}/pgn",
        content=pgn,
        headers={**live.auth(), "Content-Type": "application/x-chess-pgn"},
    )
    assert r.status_code == 200, r.text
    games: list[dict[str, Any]] = r.json()["games"]
    return games


async def test_pushed_games_become_boards_and_players(live: LiveServer) -> None:
    """The first push seats each game on a board (its [Board] number), enters its players once, and later pushes add moves to those games."""
    tid, rnd = await broadcast_round(live, name="Round 1", delay=0)
    assert rnd["pairings"] == [] and rnd["name"] == "Round 1" and len(rnd["id"]) == 8
    line_a, line_b = random_line(20, 1), random_line(20, 2)
    first = board_pgn("Carlsen, Magnus", "Nakamura, Hikaru", 3, line_a[:6]) + board_pgn(
        "Caruana, Fabiano", "Firouzja, Alireza", 7, line_b[:4]
    )
    reports = await push(live, tid, first)
    assert [(g["board"], g["moves_added"], g["error"]) for g in reports] == [
        (3, 6, None),
        (7, 4, None),
    ]
    tournament = (await live.client.get(f"/api/tournaments/{tid}")).json()
    assert sorted(p["name"] for p in tournament["players"]) == [
        "Carlsen, Magnus",
        "Caruana, Fabiano",
        "Firouzja, Alireza",
        "Nakamura, Hikaru",
    ]
    boards = tournament["rounds"][0]["pairings"]
    assert [b["board"] for b in boards] == [3, 7]
    assert tournament["rounds"][0]["status"] == "running"
    game = (await live.client.get(f"/api/games/{boards[0]['game']}")).json()
    assert (game["board"], game["round"], game["mode"]) == (3, 1, "relay")
    assert [m["san"] for m in game["moves"]] == line_a[:6]

    # The same games again, further on, and a third board without a [Board] tag.
    second = (
        board_pgn("Carlsen, Magnus", "Nakamura, Hikaru", 3, line_a[:10], "1-0")
        + board_pgn("Caruana, Fabiano", "Firouzja, Alireza", 7, line_b[:4])
        + board_pgn("So, Wesley", "CARLSEN Magnus", 0, line_b[:2]).replace('[Round "1.0"]\n', "")
    )
    reports = await push(live, tid, second)
    assert [(g["board"], g["moves_added"], g["error"]) for g in reports[:2]] == [
        (3, 4, None),
        (7, 0, None),
    ]
    # "CARLSEN Magnus" is the player already seated: not seated twice in a round, and the
    # whole push's new boards are refused with it (one transaction).
    assert reports[2]["board"] is None and "already" in reports[2]["error"]
    tournament = (await live.client.get(f"/api/tournaments/{tid}")).json()
    assert len(tournament["players"]) == 4
    assert tournament["rounds"][0]["pairings"][0]["result"] == "1-0"
    assert tournament["standings"][0]["points"] == 1


async def test_games_without_players_and_past_the_limit_are_refused(live: LiveServer) -> None:
    """A game without both players is reported and skipped; games past 100 in one push get an error each."""
    tid, _ = await broadcast_round(live)
    nameless = board_pgn("?", "Black Player", 1, ["e4"])
    many = "".join(board_pgn(f"White {i}", f"Black {i}", i + 2, ["d4"]) for i in range(101))
    reports = await push(live, tid, nameless + many)
    assert reports[0]["board"] is None and "players" in reports[0]["error"]
    assert all(r["error"] is None for r in reports[1:100])
    assert [r["error"] for r in reports[100:]] == ["too many games: at most 100 per push"] * 2
    tournament = (await live.client.get(f"/api/tournaments/{tid}")).json()
    assert len(tournament["rounds"][0]["pairings"]) == 99


async def test_a_round_robin_refuses_broadcast_round_fields(live: LiveServer) -> None:
    """Naming a round or giving it a source is for broadcasts: a paired tournament refuses it
    (409: well-formed, refused by what the tournament is); a broadcast not relayed is 422."""
    body = {**BROADCAST, "format": "round_robin", "players": [{"name": "A"}, {"name": "B"}]}
    tid = (await live.client.post("/api/tournaments", json=body, headers=live.auth())).json()["id"]
    r = await live.client.post(
        f"/api/tournaments/{tid}/rounds", json={"name": "R1"}, headers=live.auth()
    )
    assert r.status_code == 409
    r = await live.client.post(
        "/api/tournaments", json={**BROADCAST, "mode": "server"}, headers=live.auth()
    )
    assert r.status_code == 422


async def test_a_board_number_is_matched_with_its_players(live: LiveServer) -> None:
    """In a broadcast round a pushed [Board] number finds its board only with the board's players: other players get a board of their own, found again by name later."""
    tid, _ = await broadcast_round(live)
    line = random_line(8, 3)
    first = board_pgn("Anand, V", "Gukesh, D", 1, line[:2])
    assert [(g["board"], g["error"]) for g in await push(live, tid, first)] == [(1, None)]
    other = board_pgn("Giri, Anish", "Ding, Liren", 1, line[:3])
    reports = await push(live, tid, first + other)
    assert [(g["board"], g["moves_added"], g["error"]) for g in reports] == [
        (1, 0, None),
        (2, 3, None),
    ]
    again = board_pgn("Giri, Anish", "Ding, Liren", 1, line[:5])
    reports = await push(live, tid, first + again)
    assert [(g["board"], g["moves_added"]) for g in reports] == [(1, 0), (2, 2)]
    tournament = (await live.client.get(f"/api/tournaments/{tid}")).json()
    games = {b["board"]: b["game"] for b in tournament["rounds"][0]["pairings"]}
    moves = (await live.client.get(f"/api/games/{games[2]}")).json()["moves"]
    assert [m["san"] for m in moves] == line[:5]


async def test_a_game_whose_tags_changed_is_found_by_its_position(live: LiveServer) -> None:
    """A pushed game whose players were renamed on the board keeps its board: it matches the board whose game reaches the same position at their last shared move."""
    tid, _ = await broadcast_round(live)
    line = random_line(12, 31)
    await push(live, tid, board_pgn("Anand, V", "Gukesh, D", 1, line[:6]))
    renamed = board_pgn("Anand, Viswanathan", "Gukesh, Dommaraju", 1, line[:9])
    reports = await push(live, tid, renamed)
    assert [(r["board"], r["moves_added"], r["error"]) for r in reports] == [(1, 3, None)]
    tournament = (await live.client.get(f"/api/tournaments/{tid}")).json()
    assert len(tournament["rounds"][0]["pairings"]) == 1 and len(tournament["players"]) == 2
    # A renamed game in another position is a board of its own.
    other = board_pgn("Giri, Anish", "Ding, Liren", 1, random_line(4, 77))
    reports = await push(live, tid, renamed + other)
    assert [(r["board"], r["error"]) for r in reports] == [(1, None), (2, None)]
