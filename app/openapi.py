"""How ``/openapi.json`` documents the routes: error bodies per status, bearer auth.

Routes declare their answers with :func:`errors` (the statuses they can give, each with
its body: the contract's :class:`~app.responses.Error`, or lichess's shape on the
lichess-compatible routes) and their auth with :data:`BEARER` (a token is required) or
:data:`OPTIONAL_BEARER` (a token changes what is shown: the operator sees a delayed
tournament live). :func:`install_openapi` adds the HTTP bearer scheme they name.
"""

from __future__ import annotations

from typing import Any, Final

from fastapi import FastAPI
from pydantic import BaseModel

from app.errors import is_lichess_path
from app.responses import Error

SCHEME: Final = "bearer"
# ``openapi_extra`` of a route that needs a token, and of one where a token is optional.
BEARER: Final[dict[str, Any]] = {"security": [{SCHEME: []}]}
OPTIONAL_BEARER: Final[dict[str, Any]] = {"security": [{}, {SCHEME: []}]}

Responses = dict[int | str, dict[str, Any]]
_DEFAULT_422: Final = "#/components/schemas/HTTPValidationError"
# The paths whose requests without a token take turns (app/limits.py).
_QUEUED: Final = ("/api/", "/broadcast/")

_MEANING: Final = {
    400: "the body is not JSON (or is empty), or is of another media type",
    401: "no token, a malformed Authorization header, or an unknown, expired or revoked token",
    403: "a valid token that may never do this",
    404: "no such object",
    409: "well-formed, but refused by the current state",
    413: "the body is over the server's limit",
    422: "the request breaks the schema",
    429: "too many requests (anonymous per address, or per player); see Retry-After",
    503: "the server cannot do it now (the history cannot be written: nothing was "
    "acknowledged; or too many spectators); see Retry-After",
}
_RETRY_AFTER: Final = {
    "description": "seconds to wait before retrying",
    "schema": {"type": "string", "pattern": "^[0-9]+$"},
}
_HEADERS: Final[dict[int, dict[str, Any]]] = {
    401: {
        "WWW-Authenticate": {
            "description": 'how to authenticate: Bearer realm="grandmaster"',
            "required": True,
            "schema": {"type": "string"},
        }
    },
    429: {"Retry-After": {**_RETRY_AFTER, "required": True}},
    503: {"Retry-After": _RETRY_AFTER},
}


def errors(
    *statuses: int, shape: type[BaseModel] = Error, notes: dict[int, str] | None = None
) -> Responses:
    """The ``responses`` entries of these error statuses, each with the body ``shape`` and
    the contract's meaning of the status (or the route's own note for it)."""
    documented: Responses = {}
    for status in statuses:
        entry: dict[str, Any] = {
            "model": shape,
            "description": (notes or {}).get(status, _MEANING[status]),
        }
        if status in _HEADERS:
            entry["headers"] = _HEADERS[status]
        documented[status] = entry
    return documented


def body(model: type[BaseModel], description: str = "") -> dict[str, Any]:
    """A 2xx ``responses`` entry with a JSON body of ``model``."""
    return {"model": model, "description": description or model.__doc__ or ""}


def text(media_type: str, description: str) -> dict[str, Any]:
    """A 2xx ``responses`` entry whose body is text of ``media_type`` (PGN, NDJSON...)."""
    return {
        "description": description,
        "content": {media_type: {"schema": {"type": "string"}}},
    }


# A PGN request body: text with at least one game in it (an empty body is 400).
PGN_TEXT: Final[dict[str, Any]] = {"type": "string", "minLength": 1, "pattern": "\\S"}


def install_openapi(app: FastAPI) -> None:
    """Make ``app.openapi()`` name the HTTP bearer scheme that routes' security refers to,
    and leave out FastAPI's default 422 answer (``HTTPValidationError``).

    FastAPI adds that answer to every route with a parameter or a body unless the route
    declares its own 422; this app never sends it (``app/errors.py`` answers every
    validation error in the contract's format), so where a route declares no 422 it
    cannot give one: its parameters are plain strings.
    """
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            # FastAPI keeps the schema it made; ours is that one, amended once.
            return app.openapi_schema
        schema = generate()
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                answer = operation.get("responses", {}).get("422", {})
                if _DEFAULT_422 in str(answer.get("content", "")):
                    del operation["responses"]["422"]
        for path, operations in schema.get("paths", {}).items():
            if not path.startswith(_QUEUED):
                continue
            # Requests without a token take turns (app/limits.py): too many waiting is 503.
            shape = "LichessError" if is_lichess_path(path) else "Error"
            for operation in operations.values():
                operation["responses"].setdefault(
                    "503",
                    {
                        "description": "too many requests without a token are waiting",
                        "headers": _HEADERS[503],
                        "content": {
                            "application/json": {
                                "schema": {"$ref": f"#/components/schemas/{shape}"}
                            }
                        },
                    },
                )
        components = schema.setdefault("components", {})
        for name in ("HTTPValidationError", "ValidationError"):
            components.get("schemas", {}).pop(name, None)
        schemes = components.setdefault("securitySchemes", {})
        schemes[SCHEME] = {
            "type": "http",
            "scheme": "bearer",
            "description": "The operator token (GM_OPERATOR_TOKEN), a player's token (from "
            "game creation or round pairing), or an account's personal or OAuth token.",
        }
        # How an app gets an account's token (lichess's flow, with PKCE); the token is then
        # sent as a bearer token like any other.
        schemes["oauth"] = {
            "type": "oauth2",
            "flows": {
                "authorizationCode": {
                    "authorizationUrl": "/oauth",
                    "tokenUrl": "/api/token",
                    "scopes": {
                        "study:read": "read broadcasts, including private ones",
                        "study:write": "create and update broadcasts and push their games",
                    },
                }
            },
        }
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
