"""The tournament page in a real browser: every board of a round, standings, crosstable."""

from __future__ import annotations

import random
import re
from typing import Any

import chess
from playwright.async_api import expect

from tests.conftest import LiveServer
from tests.site.conftest import Browsing, screenshot

DASH = "\u2013"  # results are shown with an en dash, "1\u20130"
DRAW = f"\u00bd{DASH}\u00bd"
NAMES = [
    "Carlsen",
    "Nakamura",
    "Caruana",
    "Gukesh",
    "Praggnanandhaa",
    "Abdusattorov",
    "Firouzja",
    "Erigaisi",
    "So",
    "Giri",
    "Nepomniachtchi",
    "Wei Yi",
    "Keymer",
    "Mamedyarov",
    "Vachier-Lagrave",
    "Rapport",
]


def players(count: int) -> list[dict[str, Any]]:
    """``count`` players, strongest first (pairing number order)."""
    return [
        {
            "name": f"{NAMES[i % len(NAMES)]}{'' if i < len(NAMES) else ' II'}",
            "rating": 2830 - 9 * i,
            "title": "GM",
        }
        for i in range(count)
    ]


async def create_round_robin(live: LiveServer, count: int) -> tuple[str, dict[str, Any]]:
    """A round robin of ``count`` players with round 1 paired (its games started)."""
    r = await live.client.post(
        "/api/tournaments",
        json={
            "name": "Grandmaster Invitational",
            "format": "round_robin",
            "clock": {"initial": 5400, "increment": 30},
            "players": players(count),
        },
        headers=live.auth(),
    )
    assert r.status_code == 201, r.text
    tid = r.json()["id"]
    r = await live.client.post(f"/api/tournaments/{tid}/rounds", json={}, headers=live.auth())
    assert r.status_code == 201, r.text
    return tid, r.json()


async def play_random(live: LiveServer, game_id: str, plies: int, seed: int) -> str:
    """Play ``plies`` random legal moves as the operator; the FEN after them."""
    rng = random.Random(seed)
    board = chess.Board()
    for ply in range(plies):
        moves = list(board.legal_moves)
        if not moves or board.is_game_over():
            break
        move = rng.choice(sorted(moves, key=lambda m: m.uci()))
        r = await live.client.post(
            f"/api/games/{game_id}/moves",
            json={"move": move.uci(), "ply": ply},
            headers=live.auth(),
        )
        assert r.status_code == 200, r.text
        board.push(move)
        if board.is_game_over():
            break
    return board.fen()


async def test_every_board_of_the_round_live_and_the_standings_after_a_result(
    live: LiveServer, browsing: Browsing
) -> None:
    """Sixteen boards show their games' positions and follow new moves; a result moves the standings and the crosstable; the round selector switches rounds."""
    tid, paired = await create_round_robin(live, 32)
    pairings = paired["pairings"]
    assert len(pairings) == 16
    fens = {}
    for board, pairing in enumerate(pairings):
        fens[pairing["game"]] = await play_random(live, pairing["game"], 6 + board % 7, board)
    page = await browsing.open(live, f"/tournaments/{tid}")
    await expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    await expect(page.locator("#title")).to_have_text("Grandmaster Invitational")
    cards = page.locator("#boards .mini")
    await expect(cards).to_have_count(16)
    for pairing in pairings:
        card = page.locator(f'#boards .mini[data-game="{pairing["game"]}"]')
        await expect(card).to_have_attribute("data-fen", fens[pairing["game"]])
        assert await card.get_attribute("href") == f"/games/{pairing['game']}"
    # Every mini-board is drawn by chessground with its pieces.
    counts = await page.evaluate(
        "() => [...document.querySelectorAll('#boards .mini')].map(c => c.querySelectorAll('cg-board piece').length)"
    )
    assert len(counts) == 16 and all(n >= 28 for n in counts), counts
    first = page.locator("#boards .mini").first
    await expect(first.locator(".row.white .name")).to_contain_text("Carlsen")
    await expect(first.locator(".row.white .name")).to_contain_text("2830")
    await expect(first.locator(".row.black .name")).to_contain_text("Rapport II")
    await expect(page.locator("#boards .mini .clk.running")).to_have_count(16)

    # A new move on board 3 reaches its mini-board.
    game3 = pairings[2]["game"]
    ply = len(await live_moves(live, game3))
    board = chess.Board(fens[game3])
    move = sorted(board.legal_moves, key=lambda m: m.uci())[0]
    r = await live.client.post(
        f"/api/games/{game3}/moves", json={"move": move.uci(), "ply": ply}, headers=live.auth()
    )
    assert r.status_code == 200, r.text
    board.push(move)
    await expect(page.locator(f'#boards .mini[data-game="{game3}"]')).to_have_attribute(
        "data-fen", board.fen()
    )

    # Standings before: everybody on 0, in pairing order. Then Black wins on board 2.
    rows = page.locator("#standings tbody tr")
    await expect(rows).to_have_count(32)
    await expect(rows.first.locator(".points")).to_have_text("0")
    r = await live.client.post(
        f"/api/tournaments/{tid}/rounds/1/results",
        json={"board": 2, "result": "0-1"},
        headers=live.auth(),
    )
    assert r.status_code == 200, r.text
    winner = pairings[1]["black"]
    loser = pairings[1]["white"]
    await expect(rows.first).to_have_attribute("data-player", winner)
    await expect(rows.first.locator(".points")).to_have_text("1")
    await expect(
        page.locator(f'#boards .mini[data-game="{pairings[1]["game"]}"] .res')
    ).to_have_text(f"0{DASH}1")
    await expect(page.locator("#boards .mini .clk.running")).to_have_count(15)
    await screenshot(page, "tournament.png")
    # The crosstable: the winner's row has a 1 against the loser, whose row has a 0.
    winner_row = page.locator(f'#crosstable tbody tr[data-player="{winner}"]')
    await expect(winner_row.locator("td").nth(await rank_of(page, loser))).to_have_text("1")
    loser_row = page.locator(f'#crosstable tbody tr[data-player="{loser}"]')
    await expect(loser_row.locator("td").nth(await rank_of(page, winner))).to_have_text("0")

    # Finish round 1 and pair round 2: the page follows the new round, round 1 stays a click away.
    for pairing in pairings[2:] + pairings[:1]:
        r = await live.client.post(
            f"/api/tournaments/{tid}/rounds/1/results",
            json={"board": pairing["board"], "result": "1/2-1/2"},
            headers=live.auth(),
        )
        assert r.status_code == 200, r.text
    r = await live.client.post(f"/api/tournaments/{tid}/rounds", json={}, headers=live.auth())
    assert r.status_code == 201, r.text
    round2 = {p["game"] for p in r.json()["pairings"]}
    await expect(page.locator('#rounds button[data-round="2"]')).to_have_attribute(
        "aria-pressed", "true"
    )
    await expect(cards).to_have_count(16)
    shown = await page.eval_on_selector_all("#boards .mini", "cs => cs.map(c => c.dataset.game)")
    assert set(shown) == round2
    await page.locator('#rounds button[data-round="1"]').click()
    await expect(page.locator('#rounds button[data-round="1"]')).to_have_attribute(
        "aria-pressed", "true"
    )
    await expect(page.locator("#boards .mini .res")).to_have_text([DRAW, f"0{DASH}1", *[DRAW] * 14])
    await expect(page).to_have_url(re.compile(r"#round-1$"))


async def live_moves(live: LiveServer, game_id: str) -> list[Any]:
    moves: list[Any] = (await live.client.get(f"/api/games/{game_id}")).json()["moves"]
    return moves


async def rank_of(page: Any, player_id: str) -> int:
    """The 1-based row of a player in the crosstable."""
    ids: list[str] = await page.eval_on_selector_all(
        "#crosstable tbody tr", "rows => rows.map(r => r.dataset.player)"
    )
    return ids.index(player_id) + 1


async def test_a_broadcast_delay_is_shown_on_the_tournament_and_its_games(
    live: LiveServer, browsing: Browsing
) -> None:
    """With a delay, the tournament page and its game pages say by how much the broadcast lags."""
    r = await live.client.post(
        "/api/tournaments",
        json={
            "name": "Delayed Open",
            "format": "round_robin",
            "clock": {"initial": 600, "increment": 5},
            "delay": 900,
            "players": players(4),
        },
        headers=live.auth(),
    )
    assert r.status_code == 201, r.text
    tid = r.json()["id"]
    r = await live.client.post(f"/api/tournaments/{tid}/rounds", json={}, headers=live.auth())
    game_id = r.json()["pairings"][0]["game"]
    page = await browsing.open(live, f"/tournaments/{tid}")
    await expect(page.locator("#delay")).to_be_visible()
    await expect(page.locator("#delay")).to_contain_text("delayed by 15 min")
    # The public sees the tournament as it was 15 minutes ago: round 1 is not out yet.
    await expect(page.locator("#rounds")).to_contain_text("No round has been paired yet.")
    page = await browsing.open(live, f"/games/{game_id}")
    await expect(page.locator("#delay")).to_be_visible()
    await expect(page.locator("#delay")).to_contain_text("delayed by 15 min")
    await expect(page.locator("#crumbs a")).to_have_text("Delayed Open")
