"""Every error leaves as ``{"error": {"code", "message"}}`` with the contract's status."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

import fastapi.routing
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from engine.rules.errors import GameRefusal, InvalidInput
from workers.archive import RenderBusy
from workers.store import StoreConflict, StoreUnavailable

log = logging.getLogger(__name__)

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    422: "invalid",
    429: "rate_limited",
    503: "unavailable",
}


class ApiError(Exception):
    """An error response decided at the edge (auth, lookup, limits)."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """The contract's error body."""
    body = {"error": {"code": code, "message": message}}
    return JSONResponse(body, status_code=status, headers=headers)


# The lichess-compatible routes (app/routes_lichess.py), which answer as lichess does.
_LICHESS_PATHS = re.compile(r"/(?:api/(?:stream/)?)?broadcast/")


def is_lichess_path(path: str) -> bool:
    """Whether ``path`` (or a route template) is one of the lichess-compatible routes'."""
    return _LICHESS_PATHS.match(path) is not None


def error_response_at(
    path: str, status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """The error body a request to ``path`` gets where no route answered it yet (request
    limits): lichess's ``{"error": message}`` on its routes, else the contract's."""
    if is_lichess_path(path):
        return JSONResponse({"error": message}, status_code=status, headers=headers)
    return error_response(status, code, message, headers)


def with_challenge(exc: ApiError) -> dict[str, str] | None:
    """The error's headers, with ``WWW-Authenticate: Bearer`` on a 401 (RFC 6750)."""
    if exc.status != 401:
        return exc.headers
    return {"WWW-Authenticate": 'Bearer realm="grandmaster"', **(exc.headers or {})}


def not_found(what: str) -> ApiError:
    """404 for an unknown id."""
    return ApiError(404, "not_found", f"no such {what}")


def install_error_handlers(app: FastAPI) -> None:
    """Route every exception type the app can raise to the contract's format."""

    async def on_api_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return error_response(exc.status, exc.code, exc.message, with_challenge(exc))

    async def on_refusal(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, GameRefusal)
        status = 422 if isinstance(exc, InvalidInput) else 409
        return error_response(status, exc.code, exc.message)

    async def on_unavailable(_: Request, exc: Exception) -> JSONResponse:
        return error_response(503, "unavailable", str(exc), {"Retry-After": "5"})

    async def on_busy(_: Request, exc: Exception) -> JSONResponse:
        return error_response(503, "unavailable", str(exc), {"Retry-After": "1"})

    async def on_conflict(_: Request, exc: Exception) -> JSONResponse:
        log.error("store conflict: %s", exc)
        return error_response(409, "conflict", "the change collides with stored history")

    async def on_validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = exc.errors()
        if any(e.get("type") == "missing" and tuple(e.get("loc", ())) == ("body",) for e in errors):
            return error_response(400, "bad_request", "the body is empty: send a JSON object")
        if any(_is_not_json(e) for e in errors):
            return error_response(
                400, "bad_request", "the body must be JSON (Content-Type: application/json)"
            )
        return error_response(422, "invalid", _describe(errors))

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = _HTTP_CODES.get(exc.status_code, "error")
        headers = dict(exc.headers) if exc.headers else None
        if exc.status_code == 405:
            # Starlette names the methods of the first route whose path matched; a path
            # served by several routes (GET and DELETE apart) allows all of theirs.
            headers = {**(headers or {}), "Allow": ", ".join(allowed_methods(app, request))}
        return error_response(exc.status_code, code, str(exc.detail), headers)

    async def on_crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal", "internal error")

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(GameRefusal, on_refusal)
    app.add_exception_handler(StoreUnavailable, on_unavailable)
    app.add_exception_handler(StoreConflict, on_conflict)
    app.add_exception_handler(RenderBusy, on_busy)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_crash)


def allowed_methods(app: FastAPI, request: Request) -> list[str]:
    """The methods of the routes that serve the request's path, sorted.

    Of the route templates whose pattern matches the path, the most specific (the most
    literal characters) name it: ``/broadcast/round/{round_id}/push`` rather than
    ``/broadcast/{tour_slug}/{round_slug}/{round_id}``, whose id could never be ``push``
    (ids are 8 characters or more). Templates alike (``GET`` and ``DELETE /api/token``)
    add up.
    """
    routes: Iterable[Any] = app.routes
    # FastAPI 0.13x+ nests included routers; older releases list every route flat.
    flatten = getattr(fastapi.routing, "iter_route_contexts", None)
    if flatten is not None:
        routes = flatten(app.routes)
    path = request.url.path
    by_literal: dict[int, set[str]] = {}
    for route in routes:
        pattern = getattr(route, "path_regex", None)
        if route.methods and pattern is not None and pattern.match(path):
            literal = len(_PARAMETER.sub("", route.path))
            by_literal.setdefault(literal, set()).update(route.methods)
    return sorted(by_literal[max(by_literal)]) if by_literal else []


_PARAMETER = re.compile(r"\{[^}]*\}")


def _is_not_json(error: Any) -> bool:
    """Whether FastAPI could not read the body as JSON (bad syntax, or another media type)."""
    if error.get("type") == "json_invalid":
        return True
    return tuple(error.get("loc", ())) == ("body",) and isinstance(error.get("input"), bytes)


def _describe(errors: Any) -> str:
    """One line per schema violation: ``body.move: Value error, ...``."""
    parts = []
    for error in list(errors)[:10]:
        where = ".".join(str(p) for p in error.get("loc", ()))
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"
