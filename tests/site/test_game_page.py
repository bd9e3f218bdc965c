"""The game page in a real browser: what a spectator sees as moves are played over the API."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import chess
from playwright.async_api import Page, expect

from tests.conftest import LiveServer, serve
from tests.site.conftest import Browsing, screenshot

# The squares chessground drew, read from its own DOM: {"e4": "white pawn", ...}.
PIECES_JS = """() => Object.fromEntries([...document.querySelectorAll('#board cg-board piece')]
  .filter(p => !p.classList.contains('fading')).map(p => [p.cgKey, p.className.replace(' anim', '')])
  .sort((a, b) => (a[0] < b[0] ? -1 : 1)))"""
SQUARES_JS = """(cls) => [...document.querySelectorAll('#board cg-board square.' + cls)].map(s => s.cgKey).sort()"""


async def play(live: LiveServer, game_id: str, moves: list[str]) -> dict[str, Any]:
    """Play ``moves`` (SAN) from the game's current ply as the operator; the last Game JSON."""
    game = (await live.client.get(f"/api/games/{game_id}")).json()
    for move in moves:
        r = await live.client.post(
            f"/api/games/{game_id}/moves",
            json={"move": move, "ply": game["ply"]},
            headers=live.auth(),
        )
        assert r.status_code == 200, r.text
        game = r.json()
    return game


def expected_pieces(board: chess.Board) -> dict[str, str]:
    """The position as chessground names it."""
    return {
        chess.square_name(square): f"{'white' if piece.color else 'black'} "
        f"{chess.piece_name(piece.piece_type)}"
        for square, piece in board.piece_map().items()
    }


def position_after(sans: list[str]) -> chess.Board:
    board = chess.Board()
    for san in sans:
        board.push_san(san)
    return board


async def wait_for_pieces(page: Page, board: chess.Board) -> None:
    """Wait until the drawn board is ``board``'s position."""
    await page.wait_for_function(
        f"() => JSON.stringify(({PIECES_JS})()) === JSON.stringify({expected_json(board)})"
    )


def expected_json(board: chess.Board) -> str:
    import json

    return json.dumps(dict(sorted(expected_pieces(board).items())))


async def drawn_pieces(page: Page) -> dict[str, str]:
    pieces: dict[str, str] = await page.evaluate(PIECES_JS)
    return dict(sorted(pieces.items()))


async def move_texts(page: Page) -> list[str]:
    return await page.locator("#moves button .san").all_inner_texts()


async def test_game_page_shows_moves_board_clocks_check_and_result(
    live: LiveServer, browsing: Browsing
) -> None:
    """Moves played over the API appear on the board and in the numbered list, clocks tick on the side to move, check is marked and the result shown."""
    game_id, _ = await live.started_game()
    page = await browsing.open(live, f"/games/{game_id}")
    await expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    await expect(page.locator("#player-white .name")).to_contain_text("White")
    await expect(page.locator("#player-white .name")).to_contain_text("2700")
    await wait_for_pieces(page, chess.Board())

    sans = ["e4", "e5", "Qh5", "Nc6", "Bc4"]
    game = await play(live, game_id, sans)
    await expect(page.locator("#moves button")).to_have_count(5)
    assert await move_texts(page) == sans
    assert await page.locator("#moves .num").all_inner_texts() == ["1.", "2.", "3."]
    await wait_for_pieces(page, position_after(sans))
    assert await page.evaluate(SQUARES_JS, "last-move") == ["c4", "f1"]
    # Each move shows the mover's clock after it; the side to move (Black) is ticking.
    clock_text = await page.locator('#moves button[data-ply="5"] .clk').inner_text()
    assert clock_text == fmt(game["moves"][4]["clock_ms"])
    black_clock = page.locator("#player-black .clock")
    await expect(black_clock).to_have_class(re.compile(r"\brunning\b"))
    await expect(page.locator("#player-white .clock")).not_to_have_class(re.compile("running"))
    first = await black_clock.inner_text()
    await expect(black_clock).not_to_have_text(first, timeout=3000)  # counts down locally
    assert to_ms(await black_clock.inner_text()) < to_ms(first)
    assert to_ms(await page.locator("#player-white .clock").inner_text()) == (
        game["clock"]["white_ms"] // 1000 * 1000
    )
    await expect(page.locator("#result")).to_be_hidden()

    await play(live, game_id, ["Nf6", "Qxf7#"])
    await expect(page.locator("#result")).to_have_text("1-0 · checkmate")
    await wait_for_pieces(page, position_after([*sans, "Nf6", "Qxf7#"]))
    assert await page.evaluate(SQUARES_JS, "check") == ["e8"]
    await expect(page.locator(".clock.running")).to_have_count(0)
    await expect(page.locator("#audience")).to_have_text("1 watching")
    # The PGN download link points at the game's PGN, which the server serves.
    href = await page.locator("#pgn").get_attribute("href")
    assert href == f"/api/games/{game_id}/pgn"
    assert (await live.client.get(href)).status_code == 200


def fmt(ms: int) -> str:
    seconds = ms // 1000
    return f"{seconds // 60}:{seconds % 60:02d}"


def to_ms(text: str) -> int:
    """ "4:58" or "0:09.5" -> milliseconds."""
    minutes, _, rest = text.partition(":")
    return int((int(minutes) * 60 + float(rest)) * 1000)


async def test_stepping_through_the_moves_and_back_to_live(
    live: LiveServer, browsing: Browsing
) -> None:
    """Clicking a move or pressing the arrow keys shows earlier positions; new moves do not move the board until "live" is pressed."""
    game_id, _ = await live.started_game()
    sans = ["d4", "d5", "c4", "e6"]
    await play(live, game_id, sans)
    page = await browsing.open(live, f"/games/{game_id}")
    await expect(page.locator("#moves button")).to_have_count(4)
    board = page.locator("#board")
    await expect(board).to_have_attribute("data-ply", "4")

    await page.locator('#moves button[data-ply="1"]').click()
    await expect(board).to_have_attribute("data-ply", "1")
    await wait_for_pieces(page, position_after(sans[:1]))
    await expect(page.locator('#moves button[data-ply="1"]')).to_have_attribute(
        "aria-current", "true"
    )
    await expect(page.locator("#live")).to_have_attribute("aria-pressed", "false")
    await page.keyboard.press("ArrowLeft")
    await expect(board).to_have_attribute("data-ply", "0")
    await wait_for_pieces(page, chess.Board())
    await page.keyboard.press("ArrowRight")
    await page.keyboard.press("ArrowRight")
    await expect(board).to_have_attribute("data-ply", "2")
    await wait_for_pieces(page, position_after(sans[:2]))

    # A move arrives while looking at the past: the list grows, the board stays.
    await play(live, game_id, ["Nc3"])
    await expect(page.locator("#moves button")).to_have_count(5)
    await expect(board).to_have_attribute("data-ply", "2")
    await page.locator("#live").click()
    await expect(board).to_have_attribute("data-ply", "5")
    await wait_for_pieces(page, position_after([*sans, "Nc3"]))
    await expect(page.locator("#live")).to_have_attribute("aria-pressed", "true")
    # Following live again: the next move shows at once.
    await play(live, game_id, ["Nf6"])
    await expect(board).to_have_attribute("data-ply", "6")
    await page.keyboard.press("Home")
    await expect(board).to_have_attribute("data-ply", "0")
    await page.keyboard.press("End")
    await expect(board).to_have_attribute("data-ply", "6")
    # The board turns round, and the players' boxes with it.
    await page.keyboard.press("f")
    await expect(page.locator("#board")).to_have_class(re.compile("orientation-black"))
    await expect(page.locator("#flip")).to_have_attribute("aria-pressed", "true")


async def test_a_cut_connection_reconnects_with_since_and_catches_up(
    live: LiveServer, browsing: Browsing
) -> None:
    """When the socket drops, the page says so, and once back it resumes with ``since=`` and shows the moves it missed."""
    game_id, _ = await live.started_game()
    await play(live, game_id, ["e4"])
    page = await browsing.open(live, f"/games/{game_id}")
    conn = page.locator("#conn")
    await expect(conn).to_have_attribute("data-state", "live")
    await expect(page.locator("#moves button")).to_have_count(1)

    await browsing.context.set_offline(True)
    await page.evaluate("() => window.__sockets.at(-1).close()")
    await expect(conn).not_to_have_attribute("data-state", "live")
    await play(live, game_id, ["c5", "Nf3"])
    await expect(conn).not_to_have_attribute("data-state", "live")
    assert await page.locator("#moves button").count() == 1

    await browsing.context.set_offline(False)
    await expect(conn).to_have_attribute("data-state", "live")
    await expect(page.locator("#moves button")).to_have_count(3)
    assert await move_texts(page) == ["e4", "c5", "Nf3"]
    await wait_for_pieces(page, position_after(["e4", "c5", "Nf3"]))
    urls: list[str] = await page.evaluate("() => window.__sockets.map(s => s.url)")
    # The first socket had no since=; the one that caught up resumed after the seen events.
    assert "since=" not in urls[0]
    assert re.search(r"since=\d+$", urls[-1]), urls

    # A drop while the network is up (a server restart, a proxy): the page retries by itself.
    await page.evaluate("() => window.__sockets.at(-1).close()")
    await play(live, game_id, ["d6"])
    await expect(page.locator("#moves button")).to_have_count(4)
    await expect(conn).to_have_attribute("data-state", "live")
    assert await page.evaluate("() => window.__sockets.length") == len(urls) + 1


async def test_the_evaluation_bar_engine_line_and_best_move_arrow(
    tmp_path: Path, browsing: Browsing
) -> None:
    """With analysis on, the bar, the score, the engine's line in SAN with depth and engine name, the graph and the best-move arrow appear."""
    async with serve(tmp_path / "data", analysis=True, analysis_processes=1) as live:
        game_id, _ = await live.started_game(
            white={"name": "Carlsen, Magnus", "rating": 2830, "title": "GM"},
            black={"name": "Nepomniachtchi, Ian", "rating": 2795, "title": "GM"},
            clock={"initial": 5400, "increment": 30},
        )
        page = await browsing.open(live, f"/games/{game_id}")
        graph = page.locator("#graph")
        # Each position's evaluation reaches the page before the next move: the graph grows.
        for ply, san in enumerate(["e4", "e5", "Nf3", "Nc6", "Bb5", "a6", "Ba4", "Nf6"], 1):
            await play(live, game_id, [san])
            await page.wait_for_function(
                f"() => +document.querySelector('#graph').dataset.points >= {ply}"
            )
        bar = page.locator("#evalbar")
        await expect(bar).to_have_attribute("data-score", re.compile(r"^([+-]\d+\.\d\d|#-?\d+)$"))
        score = await bar.get_attribute("data-score")
        await expect(page.locator("#score")).to_have_text(score or "")
        await expect(page.locator("#engine-meta")).to_contain_text(re.compile(r"depth \d+ · \w+"))
        pv = page.locator("#pv")
        # SAN with move numbers from White's fifth move, never UCI squares pairs.
        await expect(pv).to_have_text(re.compile(r"^5\. [KQRBNO]?[a-h1-8x=+#O-]+"))
        assert not re.search(r"\b[a-h][1-8][a-h][1-8]\b", await pv.inner_text())
        # The best move is drawn as an arrow, the white share of the bar follows the score.
        await expect(page.locator("#board svg.cg-shapes line")).to_have_count(1)
        transform = await page.locator("#evalbar .white").evaluate("e => e.style.transform")
        assert transform.startswith("scaleY(")
        area = await graph.locator("path.area").get_attribute("d")
        assert area is not None and area.count("L") >= 9, area
        # The search deepens: the page follows (and the screenshot shows a settled board).
        await expect(page.locator("#engine-meta")).to_contain_text(
            re.compile(r"depth ([4-9]|\d\d)"), timeout=15_000
        )
        await screenshot(page, "game.png")


async def test_a_phone_sized_screen_shows_the_whole_board_without_sideways_scrolling(
    live: LiveServer, browsing: Browsing
) -> None:
    """At 390 px wide the game page fits the screen: nothing sticks out, the board takes most of the width."""
    game_id, _ = await live.started_game()
    await play(live, game_id, ["e4", "e5", "Nf3"])
    page = await browsing.open(live, f"/games/{game_id}")
    await page.set_viewport_size({"width": 390, "height": 844})
    await expect(page.locator("#moves button")).to_have_count(3)
    await page.wait_for_function("() => document.documentElement.scrollWidth <= 390")
    width = await page.locator("#board").evaluate("e => e.getBoundingClientRect().width")
    assert width >= 330, width
