"""The home page in a real browser: live and recent games and tournaments, without reloading."""

from __future__ import annotations

from playwright.async_api import expect

from tests.conftest import LiveServer
from tests.site.conftest import Browsing, screenshot
from tests.site.test_game_page import play
from tests.site.test_tournament_page import create_round_robin, play_random


async def test_home_lists_new_games_and_tournaments_without_reload(
    live: LiveServer, browsing: Browsing
) -> None:
    """Games and tournaments created after the page was opened appear on it, live ones with a board, finished ones with their result."""
    finished, _ = await live.started_game(
        white={"name": "Anand", "rating": 2750}, black={"name": "Kramnik", "rating": 2740}
    )
    await play(live, finished, ["f3", "e5", "g4", "Qh4#"])
    page = await browsing.open(live, "/")
    recent = page.locator(f'#recent-games a[data-game="{finished}"]')
    await expect(recent).to_contain_text("Anand")
    await expect(recent).to_contain_text("0-1 · checkmate")
    await expect(page.locator("#live-games .card")).to_have_count(0)
    navigations = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))

    game_id, _ = await live.started_game(
        white={"name": "Firouzja", "rating": 2760}, black={"name": "Gukesh", "rating": 2780}
    )
    fen = (await play(live, game_id, ["e4", "c5"]))["fen"]
    tid, paired = await create_round_robin(live, 8)
    for board, pairing in enumerate(paired["pairings"]):
        await play_random(live, pairing["game"], 8 + 2 * board, board)

    card = page.locator(f'#live-games a[data-game="{game_id}"]')
    await expect(card).to_contain_text("Firouzja")
    await expect(card).to_have_attribute("href", f"/games/{game_id}")
    # A live game gets a board with its position.
    await expect(card).to_have_attribute("data-fen", fen)
    await expect(card.locator("cg-board piece")).to_have_count(32)
    tournament = page.locator(f'#tournaments a[data-tournament="{tid}"]')
    await expect(tournament).to_contain_text("Grandmaster Invitational")
    await expect(tournament).to_contain_text("live")
    await expect(page.locator("#live-games .card")).to_have_count(5)
    assert navigations == [], "the page reloaded"
    await screenshot(page, "home.png")
