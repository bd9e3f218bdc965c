"""The spectator web site: HTML pages and their static files, served by the app itself.

The pages (``app/static/pages``) are templates whose ``{{name}}`` slots are filled with the
content-hashed file names of ``app/static/manifest.json``, both written by the dev-time
build in ``site/`` (``npm run build``); nothing is built at run time. The hashed files
under ``/static/`` never change, so browsers may keep them for a year; the pages
themselves are revalidated on every visit. Every page runs under a strict
Content-Security-Policy: scripts, styles, fonts and images from this origin only (plus
``data:`` images, which the board's piece set and squares are made of), and connections
to this origin over HTTP and WebSocket.
"""

from __future__ import annotations

import functools
import html
import json
import re
from pathlib import Path
from typing import Final

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, PlainTextResponse, Response

from app.broadcast import Broadcast
from app.games import GameService

router = APIRouter(tags=["site"], include_in_schema=False)

_STATIC: Final = Path(__file__).resolve().parent / "static"
_ASSET_CACHE: Final = "public, max-age=31536000, immutable"
_PAGE_CACHE: Final = "no-cache"
# A Host header that may be echoed into the policy: a name or address and a port, no more.
_HOST: Final = re.compile(r"^[A-Za-z0-9.\-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$")
_SLOT: Final = re.compile(r"\{\{([A-Za-z0-9_.]+)\}\}")
# Named here rather than guessed: the platform's MIME table may lack fonts.
_TYPES: Final = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".woff2": "font/woff2",
    ".txt": "text/plain; charset=utf-8",
}


@functools.cache
def _manifest() -> tuple[dict[str, str], frozenset[str]]:
    """The build's entry names (``game.js`` -> ``game-HASH.js``) and every file it wrote.

    Read once per process (the files ship with the package and do not change).
    """
    data = json.loads((_STATIC / "manifest.json").read_text(encoding="utf-8"))
    return dict(data["entries"]), frozenset(data["files"])


@functools.cache
def _page(name: str) -> str:
    """The page template ``name`` with its asset slots filled (read once per process).

    Raises ``KeyError`` when a slot names no built file: the build and the pages disagree.
    """
    entries, _ = _manifest()
    text = (_STATIC / "pages" / name).read_text(encoding="utf-8")
    return _SLOT.sub(lambda m: entries[m.group(1)] if m.group(1) in entries else m.group(0), text)


def _policy(request: Request) -> str:
    """The pages' Content-Security-Policy (connections: this origin, its WebSockets too)."""
    connect = "'self'"
    host = request.headers.get("host", "")
    if _HOST.match(host):
        # CSP 3 lets 'self' cover ws: and wss: on the same host; older browsers need them named.
        connect += f" ws://{host} wss://{host}"
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; font-src 'self'; "
        f"img-src 'self' data:; connect-src {connect}; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'self'"
    )


def _headers(request: Request) -> dict[str, str]:
    return {
        "Content-Security-Policy": _policy(request),
        "Cache-Control": _PAGE_CACHE,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
    }


def _html(request: Request, name: str, status_code: int = 200) -> HTMLResponse:
    return HTMLResponse(_page(name), status_code=status_code, headers=_headers(request))


def _not_found(request: Request, message: str) -> HTMLResponse:
    """The site's 404 page saying what was not found."""
    text = _page("not_found.html").replace("{{message}}", html.escape(message))
    return HTMLResponse(text, status_code=404, headers=_headers(request))


@router.get("/", response_class=HTMLResponse)
async def home_page(request: Request) -> HTMLResponse:
    """The home page: live and recent tournaments and games."""
    return _html(request, "home.html")


@router.get("/games/{game_id}", response_class=HTMLResponse, responses={404: {}})
async def game_page(game_id: str, request: Request) -> HTMLResponse:
    """One game, live: board, clocks, moves, evaluation; 404 for an unknown id."""
    service: GameService = request.app.state.games
    if not await service.fetch_many([game_id]):
        return _not_found(request, "There is no game with this id.")
    return _html(request, "game.html")


@router.get("/watch/{game_id}", response_class=HTMLResponse, responses={404: {}})
async def watch_page(game_id: str, request: Request) -> HTMLResponse:
    """The game page under its first address (kept so that shared links still work)."""
    return await game_page(game_id, request)


@router.get("/tournaments/{tournament_id}", response_class=HTMLResponse, responses={404: {}})
async def tournament_page(tournament_id: str, request: Request) -> HTMLResponse:
    """Every board of a round, standings and crosstable, live; 404 for an unknown id."""
    broadcast: Broadcast = request.app.state.broadcast
    if broadcast.tournament(tournament_id) is None:
        return _not_found(request, "There is no tournament with this id.")
    return _html(request, "tournament.html")


@router.get("/static/{name}", responses={404: {}})
async def static_file(name: str) -> Response:
    """A file of the built site; only names the build wrote are served (no paths)."""
    _, files = _manifest()
    if name not in files:
        return PlainTextResponse("not found", status_code=404)
    # Hashed names never change; the licence notice keeps its name, so it is revalidated.
    cache = _PAGE_CACHE if name == "licenses.txt" else _ASSET_CACHE
    headers = {"Cache-Control": cache, "X-Content-Type-Options": "nosniff"}
    path = _STATIC / "assets" / name
    return FileResponse(path, headers=headers, media_type=_TYPES.get(path.suffix))
