"""Grandmaster's broadcasts in the JSON shapes of lichess's broadcast API.

A lichess "broadcast tournament" (tour) is a Grandmaster tournament of format
``broadcast``; a "broadcast round" is one of its rounds, named by its own 8-character id.
Shapes follow lila (what the lichess Broadcaster app and berserk were tested against):
optional fields are left out rather than null, ``ongoing`` and ``finished`` appear only
when true, times are Unix ms, and ``url`` fields are absolute.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from typing import Any

import chess

from engine.rules.game import GameState
from engine.tournament.state import Round, TournamentState

# What a broadcast round's "study" offers in lichess; Grandmaster's answer.
STUDY_FEATURES = {"chat": False, "computer": True, "explorer": False}


def slug(name: str) -> str:
    """lichess's slug of a name: lower-case ASCII words joined by ``-`` (``-`` if none)."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    words = re.findall(r"[a-z0-9]+", folded.lower())
    return "-".join(words) or "-"


def iso_to_ms(value: str | None) -> int | None:
    """An ISO-8601 UTC time as Unix ms (None stays None)."""
    if value is None:
        return None
    return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)


def tour_url(base: str, state: TournamentState) -> str:
    """The tour's page, lichess-style (it redirects to the tournament page)."""
    return f"{base}/broadcast/{slug(state.setup.name)}/{state.id}"


def round_url(base: str, state: TournamentState, rnd: Round) -> str:
    """The round's page, lichess-style (it redirects to the tournament page)."""
    tour_slug = slug(state.setup.name)
    round_slug = slug(rnd.name or "")
    if round_slug == tour_slug:
        round_slug = "-"
    return f"{base}/broadcast/{tour_slug}/{round_slug}/{rnd.id}"


def tour_json(base: str, state: TournamentState) -> dict[str, Any]:
    """The ``tour`` object."""
    setup = state.setup
    created = iso_to_ms(setup.created_at) or 0
    data: dict[str, Any] = {
        "id": setup.id,
        "name": setup.name,
        "slug": slug(setup.name),
        "info": dict(setup.info),
        "createdAt": created,
        "url": tour_url(base, state),
    }
    if setup.description:
        data["description"] = setup.description
    dates = sorted(
        t for t in (iso_to_ms(r.start_at) for r in state.rounds if r.is_broadcast) if t is not None
    )
    if dates:
        # A one-day event has no end date (lila leaves it out within 18 hours).
        data["dates"] = (
            dates[:1] if dates[-1] - dates[0] < 18 * 3_600_000 else [dates[0], dates[-1]]
        )
    return data


def round_json(
    base: str, state: TournamentState, rnd: Round, *, with_delay: bool = False
) -> dict[str, Any]:
    """The ``round`` object (``with_delay`` for the "my round" shapes)."""
    data: dict[str, Any] = {
        "id": rnd.id,
        "name": rnd.name or f"Round {rnd.number}",
        "slug": slug(rnd.name or f"Round {rnd.number}"),
        "createdAt": rnd.created_ms,
        "rated": False,
        "url": round_url(base, state, rnd),
    }
    status = rnd.status
    if status == "finished":
        data["finished"] = True
    elif status == "running":
        data["ongoing"] = True
    starts = iso_to_ms(rnd.start_at)
    if starts is not None:
        data["startsAt"] = starts
    if with_delay:
        data["delay"] = rnd.delay_s
    return data


def my_round_json(
    base: str, state: TournamentState, rnd: Round, *, writeable: bool
) -> dict[str, Any]:
    """``{round, tour, study}``: what round creation answers, and each my-rounds line."""
    return {
        "round": round_json(base, state, rnd, with_delay=True),
        "tour": tour_json(base, state),
        "study": {"writeable": writeable, "features": STUDY_FEATURES},
    }


def game_preview(game: GameState, now_ms: int) -> dict[str, Any]:
    """One game of a round as lichess's round JSON lists it (clocks in centiseconds)."""
    setup = game.setup
    clock = game.clock.to_json(now_ms)
    players = []
    for player, remaining in ((setup.white, clock["white_ms"]), (setup.black, clock["black_ms"])):
        entry: dict[str, Any] = {"name": player.name}
        if player.title:
            entry["title"] = player.title
        if player.rating is not None:
            entry["rating"] = player.rating
        if player.fide_id is not None:
            entry["fideId"] = player.fide_id
        if game.moves:
            entry["clock"] = remaining // 10
        players.append(entry)
    data: dict[str, Any] = {
        "id": setup.id,
        "name": f"{setup.white.name} - {setup.black.name}",
        "players": players,
    }
    fen = game.board.fen()
    if fen != chess.STARTING_FEN:
        data["fen"] = fen
    if game.moves:
        data["lastMove"] = game.moves[-1].uci
        if game.board.is_checkmate():
            data["check"] = "#"
        elif game.board.is_check():
            data["check"] = "+"
    data["status"] = "½-½" if game.result == "1/2-1/2" else game.result
    return data
