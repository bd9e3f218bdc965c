"""The site over plain HTTP: pages, their policy and caching, the 404 pages, static files."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.conftest import LiveServer

STATIC = Path(__file__).resolve().parents[2] / "app" / "static"


def asset_urls(page: str) -> list[str]:
    """The /static/ files a page links to."""
    return re.findall(r'(?:href|src)="(/static/[^"]+)"', page)


async def test_pages_are_served_with_a_strict_policy(live: LiveServer) -> None:
    """Home, game (and its /watch alias) and tournament pages are HTML under a self-only CSP."""
    game_id, _ = await live.create_game()
    r = await live.client.post(
        "/api/tournaments",
        json={
            "name": "Test",
            "format": "round_robin",
            "clock": {"initial": 60, "increment": 0},
            "players": [{"name": "A"}, {"name": "B"}],
        },
        headers=live.auth(),
    )
    tid = r.json()["id"]
    for path in ("/", f"/games/{game_id}", f"/watch/{game_id}", f"/tournaments/{tid}"):
        r = await live.client.get(path)
        assert r.status_code == 200, path
        assert r.headers["content-type"].startswith("text/html")
        policy = r.headers["content-security-policy"]
        assert "script-src 'self';" in policy
        assert "unsafe-inline" not in policy
        assert "connect-src 'self' ws://127.0.0.1:" in policy
        assert "default-src 'none'" in policy
        assert r.headers["cache-control"] == "no-cache"
        assert "{{" not in r.text, "an asset slot was left unfilled"
        assert asset_urls(r.text), path
    assert (await live.client.get(f"/games/{game_id}")).text == (
        await live.client.get(f"/watch/{game_id}")
    ).text


async def test_unknown_games_and_tournaments_get_an_html_404(live: LiveServer) -> None:
    """An unknown id answers the site's 404 page, which says what was not found."""
    for path, what in (
        ("/games/AAAAAAAA", "no game"),
        ("/watch/AAAAAAAA", "no game"),
        ("/tournaments/AAAAAAAA", "no tournament"),
    ):
        r = await live.client.get(path)
        assert r.status_code == 404
        assert r.headers["content-type"].startswith("text/html")
        assert what in r.text


async def test_static_files_are_cached_for_good_and_only_built_files_are_served(
    live: LiveServer,
) -> None:
    """Every file a page links to is served with a one-year immutable cache; other names are 404."""
    page = (await live.client.get("/")).text
    game = (await live.client.get("/games/x")).text  # the 404 page links the stylesheet too
    urls = set(asset_urls(page) + asset_urls(game))
    assert "/static/licenses.txt" in urls
    urls.remove("/static/licenses.txt")
    css_url = next(u for u in urls if u.endswith(".css"))
    css = (await live.client.get(css_url)).text
    urls.update(
        "/static/" + f.strip("\"'./") for f in re.findall(r"url\([\"']?([^)\"']+\.woff2)", css)
    )
    types = {".js": "text/javascript", ".css": "text/css", ".woff2": "font/woff2"}
    assert {Path(u).suffix for u in urls} == set(types)
    for url in urls:
        r = await live.client.get(url)
        assert r.status_code == 200, url
        assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert r.headers["content-type"].startswith(types[Path(url).suffix])
    # The licence notice keeps its name, so it is revalidated instead.
    r = await live.client.get("/static/licenses.txt")
    assert r.status_code == 200
    assert "GNU GENERAL PUBLIC LICENSE" in r.text
    assert r.headers["cache-control"] == "no-cache"
    for bad in ("/static/manifest.json", "/static/..%2Fmanifest.json", "/static/nope.js"):
        assert (await live.client.get(bad)).status_code == 404, bad


def test_the_manifest_names_every_built_file_and_the_pages_only_built_files() -> None:
    """The committed build is whole: each manifest file exists, each page slot names an entry."""
    manifest = json.loads((STATIC / "manifest.json").read_text())
    for name in manifest["files"]:
        assert (STATIC / "assets" / name).is_file(), name
    on_disk = {p.name for p in (STATIC / "assets").iterdir()}
    assert on_disk == set(manifest["files"])
    for page in (STATIC / "pages").glob("*.html"):
        for slot in re.findall(r"\{\{([A-Za-z0-9_.]+)\}\}", page.read_text()):
            assert slot == "message" or slot in manifest["entries"], (page.name, slot)
    css = (STATIC / "assets" / manifest["entries"]["site.css"]).read_text()
    for font in re.findall(r"url\([\"']?([^)\"']+\.woff2)", css):
        assert font.strip("\"'").lstrip("./") in manifest["files"], font
