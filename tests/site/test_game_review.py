"""The game page's computer review in a real browser: real server, real analysis workers."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import chess
from playwright.async_api import Page, expect

from tests.app.test_analysis import move
from tests.app.test_review import HUNG_QUEEN, REVIEWING, relayed_hung_queen, review_of
from tests.conftest import LiveServer, serve
from tests.site.conftest import Browsing, screenshot
from tests.site.test_game_page import move_texts, position_after, wait_for_pieces

# Depth 5: a position on the board for the few milliseconds between two moves sent back to
# back is not searched that deep, so its review needs the worker (see the live test).
REVIEW_DEPTH = 5
# 3...Qh4 is the blunder (the sixth half-move).
BLUNDER_PLY = 6


async def end(live: LiveServer, game_id: str, result: str = "1-0") -> None:
    """The arbiter ends ``game_id`` with ``result`` (a resignation)."""
    r = await live.client.post(
        f"/api/games/{game_id}/result",
        json={"result": result, "reason": "resignation"},
        headers=live.auth(),
    )
    assert r.status_code == 200, r.text


def better_san(review: dict[str, Any]) -> str:
    """The SAN of the engine's better move in place of the blunder, by python-chess."""
    board = chess.Board()
    for san in HUNG_QUEEN[: BLUNDER_PLY - 1]:
        board.push_san(san)
    blunder = review["moves"][BLUNDER_PLY - 1]
    first = (blunder["variation"] or [blunder["best"]])[0]
    return board.san(chess.Move.from_uci(first))


def shown_percent(accuracy: float) -> str:
    """An accuracy as the page rounds it (half up, as JavaScript's toFixed does here)."""
    return f"{math.floor(accuracy + 0.5)}%"


async def expect_review_shown(page: Page, review: dict[str, Any]) -> None:
    """The summary has both sides' figures; 3...Qh4 carries ?? with the better move in SAN."""
    panel = page.locator("#review")
    await expect(panel).to_be_visible()
    for side in ("white", "black"):
        row = panel.locator(f'tr[data-side="{side}"]')
        figures = review[side]
        await expect(row.locator("td.accuracy")).to_have_text(shown_percent(figures["accuracy"]))
        await expect(row.locator("td.acpl")).to_have_text(str(figures["acpl"]))
        for kind in ("inaccuracy", "mistake", "blunder"):
            await expect(row.locator(f"td.{kind}")).to_have_text(str(figures[kind]))
    await expect(panel.locator('tr[data-side="black"] td.blunder')).not_to_have_text("0")
    await expect(page.locator("#review-budget")).to_have_text(
        f"{review['engine']}, depth {REVIEW_DEPTH}"
    )

    blunder = page.locator(f'#moves button[data-ply="{BLUNDER_PLY}"]')
    await expect(blunder).to_have_class(re.compile(r"\bblunder\b"))
    await expect(blunder.locator(".nag")).to_have_text("??")
    comment = review["moves"][BLUNDER_PLY - 1]["judgment"]["comment"]
    await expect(blunder).to_have_attribute("title", comment)
    better = better_san(review)
    assert better != "Qh4"
    advice = page.locator(f'#moves .advice[data-ply="{BLUNDER_PLY}"]')
    await expect(advice.locator(".comment")).to_have_text(comment)
    # The engine's line in SAN with move numbers, from Black's third move: never UCI.
    line = await advice.locator(".line").inner_text()
    assert line.startswith(f"3… {better}"), line
    assert not re.search(r"\b[a-h][1-8][a-h][1-8]\b", line), line
    # Every other move is as it was: the SAN list is unchanged, the white moves unmarked.
    assert await move_texts(page) == HUNG_QUEEN
    judged = {m["ply"] for m in review["moves"] if m["judgment"]}
    await expect(page.locator("#moves .nag")).to_have_count(len(judged))
    await expect(page.locator("#review-status")).to_be_hidden()


async def test_a_reviewed_game_shows_accuracy_acpl_counts_and_the_blunder_with_the_better_move(
    tmp_path: Path, browsing: Browsing
) -> None:
    """Opening a finished game whose review is done shows both players' accuracy, ACPL and
    counts, and ?? on 3...Qh4 with lichess's comment and the better line in SAN."""
    async with serve(tmp_path / "data", **REVIEWING, review_depth=REVIEW_DEPTH) as live:
        game_id, _ = await live.started_game()
        for text in HUNG_QUEEN:
            await move(live, game_id, text)
        await end(live, game_id)
        review = await review_of(live.client, game_id)
        page = await browsing.open(live, f"/games/{game_id}")
        await expect_review_shown(page, review)
        # The review's evaluations fill the graph: every position has one.
        await page.wait_for_function(
            f"() => +document.querySelector('#graph').dataset.points === {len(HUNG_QUEEN) + 1}"
        )
        await page.locator(f'#moves button[data-ply="{BLUNDER_PLY}"]').click()
        await wait_for_pieces(page, position_after(HUNG_QUEEN[:BLUNDER_PLY]))
        await page.wait_for_function(
            "() => !document.querySelector('#board piece.anim, #board piece.fading')"
        )
        await screenshot(page, "game-review.png")
        # The summary and the lines under the moves fit a phone's screen.
        await page.set_viewport_size({"width": 390, "height": 844})
        await page.wait_for_function("() => document.documentElement.scrollWidth <= 390")


async def test_a_review_that_arrives_over_the_socket_is_shown_without_a_reload(
    tmp_path: Path, browsing: Browsing
) -> None:
    """A page open when the game ends says the review is coming; the socket's ``review``
    event then shows it in place, even with the review endpoint unreachable."""
    # A search of the start position outlasts the test: while another game is live, the only
    # worker is that game's, and a finished game's review waits for it to end.
    settings = {**REVIEWING, "analysis_max_time_s": 600.0, "review_depth": REVIEW_DEPTH}
    async with serve(tmp_path / "data", **settings) as live:
        blocker, _ = await live.started_game()
        game_id, _ = await live.started_game()
        page = await browsing.open(live, f"/games/{game_id}")
        await expect(page.locator("#conn")).to_have_attribute("data-state", "live")
        await page.evaluate("() => { window.__sameDocument = true; }")
        # Back to back, then the end at once: no position is searched to the review's depth
        # live, so the review needs the worker.
        for text in HUNG_QUEEN:
            await move(live, game_id, text)
        await end(live, game_id)
        await expect(page.locator("#moves button")).to_have_count(len(HUNG_QUEEN))
        status = page.locator("#review-status")
        await expect(status).to_have_text(re.compile(r"^Computer review (queued|running)"))
        await expect(page.locator("#review")).to_be_hidden()
        assert (await live.client.get(f"/api/games/{game_id}/review")).json()["status"] != "done"
        # From now on only the socket can bring the review.
        await page.route("**/review", lambda route: route.abort())

        await end(live, blocker, "1/2-1/2")
        review = await review_of(live.client, game_id)
        await expect_review_shown(page, review)
        assert await page.evaluate("() => window.__sameDocument === true")


async def test_a_correction_that_reopens_the_game_removes_the_review(
    tmp_path: Path, browsing: Browsing
) -> None:
    """When a relayed game's board takes the blunder back, the page drops the review's panel,
    glyphs and lines at once; when the corrected game ends, its own review is shown."""
    async with serve(tmp_path / "data", **REVIEWING, review_depth=REVIEW_DEPTH) as live:
        board = await relayed_hung_queen(live)
        game_id = board.game_id
        review = await review_of(live.client, game_id)
        page = await browsing.open(live, f"/games/{game_id}")
        await expect(page.locator("#moves .nag").first).to_be_visible()
        await expect(page.locator("#review")).to_be_visible()
        assert review["black"]["blunder"] >= 1

        corrected = [*HUNG_QUEEN[: BLUNDER_PLY - 1], "Nf6"]
        await board.send(corrected)
        await expect(page.locator("#moves button")).to_have_count(len(corrected))
        await expect(page.locator("#review")).to_be_hidden()
        await expect(page.locator("#moves .nag")).to_have_count(0)
        await expect(page.locator("#moves .advice")).to_have_count(0)
        await expect(page.locator("#moves button.blunder")).to_have_count(0)

        await board.send([*corrected, "d3"], "1/2-1/2")
        second = await review_of(live.client, game_id)
        await expect(page.locator('#review tr[data-side="black"] td.blunder')).to_have_text(
            str(second["black"]["blunder"])
        )
        await expect(page.locator("#review")).to_be_visible()


async def test_a_game_ended_by_mate_shows_the_mate_won_in_its_last_position(
    tmp_path: Path, browsing: Browsing
) -> None:
    """The review scores a mated final position as ``{"mate": 0}``: the page says checkmate
    and gives the winner the whole bar, not an even one."""
    async with serve(tmp_path / "data", **REVIEWING, review_depth=REVIEW_DEPTH) as live:
        game_id, _ = await live.started_game()
        for text in ("f3", "e5", "g4", "Qh4#"):
            await move(live, game_id, text)
        review = await review_of(live.client, game_id)
        assert review["moves"][-1]["score"] == {"mate": 0}
        page = await browsing.open(live, f"/games/{game_id}")
        await expect(page.locator("#review")).to_be_visible()
        await expect(page.locator("#score")).to_have_text("checkmate")
        await expect(page.locator("#evalbar .white")).to_have_attribute(
            "style", re.compile(r"scaleY\(0\)")
        )
