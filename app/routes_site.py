"""The spectator web site: HTML pages served by the app itself, built on the public API."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from app.games import GameService

router = APIRouter(tags=["site"], include_in_schema=False)

_PAGE_POLICY = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "connect-src 'self'; base-uri 'none'; frame-ancestors 'self'"
)


def _read_page(name: str) -> str:
    """A page shipped in ``app/static`` (blocking: small, read once per request)."""
    return resources.files("app").joinpath(f"static/{name}").read_text(encoding="utf-8")


@router.get("/watch/{game_id}", response_class=HTMLResponse, responses={404: {}})
async def watch_page(game_id: str, request: Request) -> HTMLResponse:
    """The spectator web page of a game: board, clocks, moves and evaluation, live."""
    service: GameService = request.app.state.games
    await service.fetch(game_id)
    page = _read_page("watch.html")
    headers = {"Content-Security-Policy": _PAGE_POLICY, "Cache-Control": "no-cache"}
    return HTMLResponse(page, headers=headers)
