"""Bearer tokens: the operator's, each game's two players', and accounts' (personal and OAuth).

Only SHA-256 digests of player and account tokens are kept (in memory and on disk); a
presented token is hashed and looked up, and the operator token is compared with
``hmac.compare_digest``. Tokens are never logged nor returned by read endpoints.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import secrets
import string
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import chess
from fastapi import Request

from app.errors import ApiError
from app.ratelimit import RateLimiter

log = logging.getLogger(__name__)

_ALPHABET = string.ascii_letters + string.digits


def new_id(length: int = 8) -> str:
    """A random URL-safe id, ``[A-Za-z0-9]{length}``."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def new_token() -> str:
    """A fresh secret bearer token."""
    return secrets.token_urlsafe(24)


def token_digest(token: str) -> str:
    """The hex SHA-256 of a token, the only form in which player tokens are stored."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Operator:
    """The bearer of the operator token."""


@dataclass(frozen=True, slots=True)
class Seat:
    """The bearer of one side's token in one game."""

    game: str
    color: chess.Color


@dataclass(frozen=True, slots=True)
class Account:
    """The bearer of one of an account's tokens (personal, or issued through OAuth).

    ``scopes`` are what this token may do (``study:read``, ``study:write``); ``token_id``
    is the token's public id (what ``DELETE /api/tokens/{id}`` takes).
    """

    name: str
    scopes: frozenset[str]
    token_id: str


Identity = Operator | Seat | Account


def unix_ms() -> int:
    """Unix time in ms: the default clock of token expiry."""
    return time.time_ns() // 1_000_000


class Tokens:
    """Resolves bearer tokens to identities."""

    def __init__(
        self,
        operator_token: str,
        limiter: RateLimiter | None = None,
        *,
        wall_ms: Callable[[], int] = unix_ms,
    ) -> None:
        self._operator_digest = token_digest(operator_token).encode()
        self._seats: dict[str, Seat] = {}
        # Account tokens by digest, with their expiry (Unix ms, compared with ``wall_ms``).
        self._accounts: dict[str, tuple[Account, int]] = {}
        self._wall_ms = wall_ms
        # Players' requests are rate-limited per seat; the operator (relays) and accounts
        # (broadcast pushers, whose tokens the operator handed out) are trusted.
        self._limiter = limiter

    def add_seat(self, digest: str, seat: Seat) -> None:
        """Register a player token's digest."""
        self._seats[digest] = seat

    def remove_seat(self, digest: str) -> None:
        """Forget a player token's digest (its game left memory; loading it adds it again)."""
        self._seats.pop(digest, None)

    def add_account(self, digest: str, account: Account, expires_ms: int) -> None:
        """Register an account token's digest, valid until ``expires_ms`` (Unix ms)."""
        self._accounts[digest] = (account, expires_ms)

    def remove_account(self, digest: str) -> None:
        """Forget an account token's digest (revoked): it is unknown from now on."""
        self._accounts.pop(digest, None)

    def resolve(self, token: str) -> Identity | None:
        """The identity of ``token``, or None when it is unknown (or an expired account token)."""
        digest = token_digest(token)
        if hmac.compare_digest(digest.encode(), self._operator_digest):
            return Operator()
        seat = self._seats.get(digest)
        if seat is not None:
            return seat
        found = self._accounts.get(digest)
        if found is None:
            return None
        account, expires_ms = found
        return account if self._wall_ms() < expires_ms else None

    async def identify_stored(
        self, request: Request, seat_of: Callable[[str], tuple[str, bool] | None]
    ) -> Identity | None:
        """:meth:`identify`, for public reads: a token unknown in memory may be a player's
        of a game that left memory, so it is looked up (``seat_of(digest)`` gives the
        game and whether it is White's, blocking: run in a thread) before it is refused."""
        try:
            return self.identify(request)
        except ApiError as exc:
            header = request.headers.get("authorization", "")
            token = header.partition(" ")[2].strip()
            if exc.status != 401 or not token:
                raise
            found = await asyncio.to_thread(seat_of, token_digest(token))
            if found is None:
                raise
            return Seat(found[0], chess.WHITE if found[1] else chess.BLACK)

    def identify(self, request: Request) -> Identity | None:
        """The identity of the request's bearer token; no header is None.

        Raises ApiError 401 for a malformed header or an unknown token.
        """
        header = request.headers.get("authorization")
        if header is None:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "unauthorized", "expected 'Authorization: Bearer <token>'")
        identity = self.resolve(token.strip())
        if identity is None:
            raise ApiError(401, "unauthorized", "unknown token")
        limiter = self._limiter
        if (
            isinstance(identity, Seat)
            and limiter is not None
            and not limiter.allow(identity, time.monotonic())
        ):
            raise ApiError(
                429,
                "rate_limited",
                "too many requests for this player",
                {"Retry-After": str(limiter.retry_after_s)},
            )
        return identity

    def require_operator(self, request: Request) -> Operator:
        """The operator, or 401 (no or unknown token) / 403 (a player's token)."""
        identity = self.identify(request)
        if identity is None:
            raise ApiError(401, "unauthorized", "this route needs the operator token")
        if not isinstance(identity, Operator):
            raise ApiError(403, "forbidden", "this route is for the operator")
        return identity

    def require_scope(self, request: Request, scope: str) -> Operator | Account:
        """The operator (every scope), or an account whose token has ``scope``.

        401 without a token or for an unknown, expired or revoked one; 403 ``forbidden``
        for a player's token or an account token lacking ``scope`` (the message names it).
        """
        identity = self.identify(request)
        if identity is None:
            raise ApiError(401, "unauthorized", f"this route needs a token with scope {scope!r}")
        if isinstance(identity, Operator):
            return identity
        if isinstance(identity, Account) and scope in identity.scopes:
            return identity
        raise ApiError(403, "forbidden", f"this token lacks the scope {scope!r}")

    def require_seat_or_operator(self, request: Request, game: str) -> Operator | Seat:
        """The operator or a player of ``game``; 401 / 403 for anyone else."""
        identity = self.identify(request)
        if identity is None:
            raise ApiError(401, "unauthorized", "a player or operator token is required")
        if isinstance(identity, Account):
            raise ApiError(403, "forbidden", "only a player of this game or the operator may")
        if isinstance(identity, Seat) and identity.game != game:
            raise ApiError(403, "forbidden", "this token belongs to another game")
        return identity

    def require_seat(self, request: Request, game: str) -> Seat:
        """A player of ``game``; the operator acts through the arbiter route instead."""
        identity = self.require_seat_or_operator(request, game)
        if not isinstance(identity, Seat):
            raise ApiError(403, "forbidden", "only a player of this game may do this")
        return identity


def load_operator_token(configured: str | None, path: Path) -> str:
    """The configured token, else the one kept at ``path``, else a new one written there.

    Blocking file I/O: call at start-up, before serving.
    """
    if configured:
        log.info("operator token: from GM_OPERATOR_TOKEN")
        return configured
    if path.exists():
        token = path.read_text().strip()
        if token:
            log.info("operator token: in %s", path.resolve())
            return token
    path.parent.mkdir(parents=True, exist_ok=True)
    token = new_token()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    log.info("operator token: created in %s", path.resolve())
    return token


async def authenticated(request: Request) -> None:
    """FastAPI dependency of the routes that need a token: 401 without one, or for an
    unknown one, before the request's body is validated (so that a request without
    credentials learns nothing of the schema). What the bearer may do is the route's to
    decide; this counts against no rate limit.

    A player's token of a game no longer in memory is looked up in the store.
    """
    tokens: Tokens = request.app.state.tokens
    header = request.headers.get("authorization")
    if header is None:
        raise ApiError(401, "unauthorized", "this route needs a token")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "unauthorized", "expected 'Authorization: Bearer <token>'")
    if tokens.resolve(token.strip()) is not None:
        return
    seat_of: Callable[[str], tuple[str, bool] | None] = request.app.state.store.seat_of
    if await asyncio.to_thread(seat_of, token_digest(token.strip())) is None:
        raise ApiError(401, "unauthorized", "unknown token")
