"""Accounts, their personal tokens, and OAuth 2 authorization codes with PKCE, as lichess has them.

An account is a name with bearer tokens; each token has scopes and an expiry and can be
revoked. Tokens are created by the operator (``POST /api/tokens``, ``python -m app token
create``) or through the OAuth flow lichess clients use (``GET /oauth``, ``POST /api/token``):
an app sends the operator to ``/oauth``, the operator approves with the operator token or a
personal token of the account, the app gets a one-time code bound to its ``client_id``,
``redirect_uri``, PKCE challenge and scopes, and exchanges it with the code's verifier for a
token of that account. Everything is kept as SHA-256 digests; the clear token is returned
once, to its creator, and never logged.

Pending authorization requests and codes live in memory only (minutes, single use): a
restart forgets them and the app starts its login again.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import re
import secrets
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypedDict
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from app.auth import Account, Operator, Tokens, new_id, token_digest
from app.settings import ACCOUNT_NAME
from workers.store import AccessTokenRow, Store

log = logging.getLogger(__name__)

# The scopes Grandmaster knows: lichess's broadcast scopes (a broadcast is a study there).
SCOPES: frozenset[str] = frozenset({"study:read", "study:write"})
DEFAULT_SCOPES: tuple[str, ...] = ("study:read", "study:write")
# Personal tokens by default, and every OAuth token, live a year: the Broadcaster app takes a
# token that expires within eleven months for an expired one.
TOKEN_DAYS = 365
DAY_MS = 86_400_000
CODE_TTL_MS = 60_000
# How long the approval page may stay open, and how many may be open at once (the oldest
# is forgotten first): anyone may open one, so memory is bounded.
PENDING_TTL_MS = 10 * 60_000
MAX_PENDING = 1_000
MAX_CODES = 1_000
MAX_DESCRIPTION = 200

_NAME = re.compile(ACCOUNT_NAME)
# RFC 7636: a verifier is 43 to 128 unreserved characters; an S256 challenge is the
# base64url (unpadded) SHA-256 of one, 43 characters.
_VERIFIER = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")
_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}$")
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def is_account_name(name: str) -> bool:
    """Whether ``name`` may name an account (lichess's username rule)."""
    return _NAME.fullmatch(name) is not None


def check_token_request(account: str, scopes: tuple[str, ...]) -> None:
    """ValueError unless ``account`` may name an account and every scope is known."""
    if not is_account_name(account):
        raise ValueError(f"invalid account name {account[:40]!r}")
    unknown = set(scopes) - SCOPES
    if unknown:
        raise ValueError(f"unknown scopes: {', '.join(sorted(unknown))}")


def iso_time(ms: int) -> str:
    """Unix ms as ISO-8601 UTC (``2026-01-31T12:00:00Z``)."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def s256_challenge(verifier: str) -> str:
    """The PKCE S256 challenge of ``verifier``: base64url(SHA-256), unpadded."""
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def is_allowed_redirect_uri(uri: str) -> bool:
    """An ``https`` URI, or ``http`` to this machine (localhost, 127.0.0.1, [::1]), no fragment."""
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 (raises ValueError on a bad port)
    except ValueError:
        return False
    if parts.fragment or not parts.hostname or any(c in uri for c in "\r\n\t \\"):
        return False
    if parts.scheme == "https":
        return True
    return parts.scheme == "http" and parts.hostname in _LOCAL_HOSTS


def with_query(uri: str, pairs: list[tuple[str, str]]) -> str:
    """``uri`` with ``pairs`` appended to its query string."""
    parts = urlsplit(uri)
    query = "&".join(q for q in (parts.query, urlencode(pairs)) if q)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


class OAuthError(Exception):
    """An OAuth refusal, as lichess words them: ``error`` (``invalid_request``,
    ``invalid_grant``, ...) and ``description``."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description


class ApprovalRefused(Exception):
    """The credential given on the approval page may not approve this request."""


class TokenJSON(TypedDict):
    """A token as listed: never its secret."""

    id: str
    account: str
    scopes: list[str]
    description: str
    created_at: str
    expires_at: str
    expired: bool


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What is public about a token: its id, account name, scopes, description and times
    (Unix ms)."""

    id: str
    account: str
    scopes: tuple[str, ...]
    description: str
    created_ms: int
    expires_ms: int

    def to_json(self, now_ms: int) -> TokenJSON:
        """The token as ``GET /api/tokens`` lists it."""
        return {
            "id": self.id,
            "account": self.account,
            "scopes": list(self.scopes),
            "description": self.description,
            "created_at": iso_time(self.created_ms),
            "expires_at": iso_time(self.expires_ms),
            "expired": self.expires_ms <= now_ms,
        }


@dataclass(frozen=True, slots=True)
class AccountInfo:
    """An account: its name as first written and when it was created (Unix ms)."""

    name: str
    created_ms: int


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    """A validated ``GET /oauth``: who asks (``client_id``), where the answer goes, the
    PKCE challenge (S256), the scopes asked for and the client's opaque ``state``."""

    client_id: str
    redirect_uri: str
    code_challenge: str
    scopes: tuple[str, ...]
    state: str | None


def parse_redirect_uri(params: Mapping[str, str]) -> str:
    """The request's ``redirect_uri`` once it is safe to send a browser to; else OAuthError."""
    uri = params.get("redirect_uri", "")
    if not uri:
        raise OAuthError("invalid_request", "redirect_uri required")
    if len(uri) > 2000 or not is_allowed_redirect_uri(uri):
        raise OAuthError(
            "invalid_request",
            "redirect_uri invalid: use https://..., or http://localhost or http://127.0.0.1",
        )
    return uri


def parse_authorization_request(params: Mapping[str, str]) -> AuthorizationRequest:
    """Validate the query of ``GET /oauth`` (lichess's parameters); raises OAuthError."""
    redirect_uri = parse_redirect_uri(params)
    client_id = params.get("client_id", "")
    if not client_id:
        raise OAuthError("invalid_request", "client_id required (choose any)")
    if len(client_id) > 200 or not client_id.isprintable():
        raise OAuthError("invalid_request", "client_id invalid")
    response_type = params.get("response_type", "")
    if not response_type:
        raise OAuthError("invalid_request", "response_type required")
    if response_type != "code":
        raise OAuthError("unsupported_response_type", "supports only response_type 'code'")
    method = params.get("code_challenge_method", "")
    if not method:
        raise OAuthError("invalid_request", "code_challenge_method required")
    if method != "S256":
        raise OAuthError("unauthorized_client", "supports only code_challenge_method 'S256'")
    challenge = params.get("code_challenge", "")
    if not challenge:
        raise OAuthError("invalid_request", "code_challenge required")
    if _CHALLENGE.fullmatch(challenge) is None:
        raise OAuthError("invalid_request", "code_challenge must be 43 base64url characters")
    scopes = tuple(dict.fromkeys(params.get("scope", "").split()))
    for scope in scopes:
        if scope not in SCOPES:
            raise OAuthError("invalid_scope", f"invalid scope: {scope[:50]}")
    state = params.get("state") or None
    if state is not None and len(state) > 1000:
        raise OAuthError("invalid_request", "state too long")
    return AuthorizationRequest(client_id, redirect_uri, challenge, scopes, state)


@dataclass(frozen=True, slots=True)
class _Pending:
    request: AuthorizationRequest
    expires_ms: int


@dataclass(frozen=True, slots=True)
class _Grant:
    request: AuthorizationRequest
    account: str
    expires_ms: int


class AccountService:
    """Accounts and tokens (durable, through the store) and OAuth codes (in memory).

    Call :meth:`restore` with the store's rows before serving. Every change is written
    to the store before it takes effect in ``tokens`` (so a token works once, and only
    once, its creation is durable; a revocation is refused with StoreUnavailable rather
    than forgotten at the next start).
    """

    def __init__(
        self, store: Store, tokens: Tokens, *, operator_name: str, wall_ms: Callable[[], int]
    ) -> None:
        self._store = store
        self._tokens = tokens
        self.operator_name = operator_name
        self._wall_ms = wall_ms
        self._accounts: dict[str, AccountInfo] = {}
        # Token id -> (digest, info), in creation order.
        self._by_id: dict[str, tuple[str, TokenInfo]] = {}
        self._pending: OrderedDict[str, _Pending] = OrderedDict()
        # Code digest -> grant.
        self._codes: OrderedDict[str, _Grant] = OrderedDict()

    def restore(self, rows: list[AccessTokenRow]) -> None:
        """Register the stored tokens (not revoked) and their accounts."""
        for row in rows:
            self._accounts.setdefault(row.account, AccountInfo(row.name, row.account_ms))
            self._register(
                row.digest,
                TokenInfo(
                    row.id, row.name, row.scopes, row.description, row.created_ms, row.expires_ms
                ),
            )

    def _register(self, digest: str, info: TokenInfo) -> None:
        self._by_id[info.id] = (digest, info)
        account = Account(info.account, frozenset(info.scopes), info.id)
        self._tokens.add_account(digest, account, info.expires_ms)

    # --- accounts and personal tokens ---

    def account(self, name: str) -> AccountInfo | None:
        """The account named ``name`` (any case), if known: it has a token that is not
        revoked, or had one since the server started."""
        return self._accounts.get(name.lower())

    async def create_token(
        self,
        account: str,
        scopes: tuple[str, ...],
        description: str,
        *,
        expires_ms: int | None = None,
    ) -> tuple[str, TokenInfo]:
        """A new token of ``account`` (created with it if new): the secret, shown once, and
        its public part. ``expires_ms`` (Unix ms) defaults to a year from now.

        Raises ValueError for a bad name or an unknown scope, StoreUnavailable.
        """
        check_token_request(account, scopes)
        now = self._wall_ms()
        known = self._accounts.get(account.lower())
        name = known.name if known is not None else account
        secret, row = new_token_row(
            name,
            scopes,
            description,
            now_ms=now,
            expires_ms=now + TOKEN_DAYS * DAY_MS if expires_ms is None else expires_ms,
            account_ms=known.created_ms if known is not None else now,
        )
        await self._store.create_access_token(row)
        self._accounts.setdefault(row.account, AccountInfo(row.name, row.account_ms))
        info = TokenInfo(row.id, row.name, row.scopes, row.description, now, row.expires_ms)
        self._register(row.digest, info)
        log.info("token %s created for account %s (%s)", info.id, name, " ".join(info.scopes))
        return secret, info

    def list_tokens(self) -> list[TokenInfo]:
        """Every token not revoked, oldest first (expired ones too)."""
        return [info for _, info in self._by_id.values()]

    def token(self, token_id: str) -> TokenInfo | None:
        """The token with this id, unless revoked."""
        found = self._by_id.get(token_id)
        return None if found is None else found[1]

    async def revoke(self, token_id: str) -> bool:
        """Revoke a token: unknown from now on. False if there is none (or it was revoked).

        Raises StoreUnavailable (the token then still works).
        """
        found = self._by_id.get(token_id)
        if found is None:
            return False
        await self._store.revoke_access_token(token_id)
        digest, info = found
        self._by_id.pop(token_id, None)
        self._tokens.remove_account(digest)
        log.info("token %s of account %s revoked", token_id, info.account)
        return True

    def now_ms(self) -> int:
        """The wall clock tokens expire by (Unix ms)."""
        return self._wall_ms()

    # --- OAuth: authorization requests, codes, the token exchange ---

    def begin(self, request: AuthorizationRequest) -> str:
        """Keep a validated request until it is approved or denied; its id goes in the
        approval form (an unguessable handle: the form carries nothing else but the
        credential)."""
        now = self._wall_ms()
        _drop_expired(self._pending, now)
        while len(self._pending) >= MAX_PENDING:
            self._pending.popitem(last=False)
        pending_id = secrets.token_urlsafe(24)
        self._pending[pending_id] = _Pending(request, now + PENDING_TTL_MS)
        return pending_id

    def pending(self, pending_id: str) -> AuthorizationRequest | None:
        """The request behind an approval form, unless it expired or was answered."""
        found = self._pending.get(pending_id)
        if found is None or found.expires_ms <= self._wall_ms():
            return None
        return found.request

    def deny(self, pending_id: str) -> str | None:
        """Forget the request; where to send the browser (``error=access_denied``)."""
        found = self._pending.pop(pending_id, None)
        if found is None:
            return None
        pairs = [("error", "access_denied"), ("error_description", "user cancelled authorization")]
        return with_query(found.request.redirect_uri, _with_state(pairs, found.request.state))

    def approve(self, pending_id: str, approver: Operator | Account) -> str:
        """Approve a pending request for the approver's account: a one-time code bound to
        the request, valid for a minute. Returns where to send the browser.

        The operator token approves for ``operator_name`` with any scopes; an account token
        for its own account, only scopes it has itself. Raises ApprovalRefused, or KeyError
        when the request expired or was answered.
        """
        request = self.pending(pending_id)
        if request is None:
            raise KeyError(pending_id)
        if isinstance(approver, Account):
            missing = [s for s in request.scopes if s not in approver.scopes]
            if missing:
                raise ApprovalRefused(f"this token lacks the scope {missing[0]!r}")
            account = approver.name
        else:
            account = self.operator_name
        del self._pending[pending_id]
        now = self._wall_ms()
        _drop_expired(self._codes, now)
        while len(self._codes) >= MAX_CODES:
            self._codes.popitem(last=False)
        code = "gmc_" + secrets.token_urlsafe(32)
        self._codes[token_digest(code)] = _Grant(request, account, now + CODE_TTL_MS)
        return with_query(request.redirect_uri, _with_state([("code", code)], request.state))

    async def exchange(self, form: Mapping[str, str]) -> tuple[str, int]:
        """``POST /api/token``: a code and its verifier for a new token of the approver's
        account, with the scopes approved. Returns the token and its lifetime in seconds.

        The code is used up by the first attempt, right or wrong. Raises OAuthError as
        lichess answers (``invalid_request``, ``unsupported_grant_type``,
        ``invalid_grant``), StoreUnavailable.
        """
        grant_type = form.get("grant_type", "")
        if not grant_type:
            raise OAuthError("invalid_request", "grant_type required")
        if grant_type != "authorization_code":
            raise OAuthError(
                "unsupported_grant_type", "supports only grant_type 'authorization_code'"
            )
        code = form.get("code", "")
        if not code:
            raise OAuthError("invalid_request", "code required")
        verifier = form.get("code_verifier", "")
        if not verifier:
            raise OAuthError("invalid_request", "code_verifier required")
        if _VERIFIER.fullmatch(verifier) is None:
            raise OAuthError(
                "invalid_request", "code_verifier must be 43 to 128 unreserved characters"
            )
        redirect_uri = form.get("redirect_uri", "")
        if not redirect_uri:
            raise OAuthError("invalid_request", "redirect_uri required")
        client_id = form.get("client_id", "")
        if not client_id:
            raise OAuthError("invalid_request", "client_id required (choose any)")
        grant = self._codes.pop(token_digest(code), None)
        if grant is None:
            raise OAuthError("invalid_grant", "authorization code invalid, expired or consumed")
        if grant.expires_ms <= self._wall_ms():
            raise OAuthError("invalid_grant", "authorization code expired")
        request = grant.request
        if redirect_uri != request.redirect_uri:
            raise OAuthError(
                "invalid_grant", "authorization code was issued for a different redirect_uri"
            )
        if client_id != request.client_id:
            raise OAuthError(
                "invalid_grant", "authorization code was issued for a different client_id"
            )
        if not hmac.compare_digest(s256_challenge(verifier), request.code_challenge):
            raise OAuthError("invalid_grant", "hash of code_verifier does not match code_challenge")
        secret, info = await self.create_token(
            grant.account, request.scopes, f"OAuth: {request.client_id}"[:MAX_DESCRIPTION]
        )
        return secret, (info.expires_ms - self._wall_ms()) // 1000


def new_token_row(
    account: str,
    scopes: tuple[str, ...],
    description: str,
    *,
    now_ms: int,
    expires_ms: int,
    account_ms: int,
) -> tuple[str, AccessTokenRow]:
    """A fresh secret token of ``account`` and the row that stores it (its digest only)."""
    secret = "gmp_" + secrets.token_urlsafe(24)
    row = AccessTokenRow(
        digest=token_digest(secret),
        id=new_id(12),
        account=account.lower(),
        name=account,
        scopes=tuple(sorted(set(scopes))),
        description=description,
        created_ms=now_ms,
        expires_ms=expires_ms,
        account_ms=account_ms,
    )
    return secret, row


def _with_state(pairs: list[tuple[str, str]], state: str | None) -> list[tuple[str, str]]:
    return pairs if state is None else [*pairs, ("state", state)]


def _drop_expired(entries: OrderedDict[str, _Pending] | OrderedDict[str, _Grant], now: int) -> None:
    """Forget expired entries from the oldest on (they were added in expiry order)."""
    while entries:
        key = next(iter(entries))
        if entries[key].expires_ms > now:
            return
        del entries[key]


def parse_form(body: bytes) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body; the first value of each name wins."""
    form: dict[str, str] = {}
    for name, value in parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True):
        form.setdefault(name, value)
    return form


def create_token_offline(
    store: Store,
    account: str,
    scopes: tuple[str, ...],
    description: str,
    *,
    now_ms: int,
    expires_ms: int,
) -> tuple[str, TokenInfo]:
    """Create a token in the store's database directly, without a server (blocking: opens
    and closes ``store``, running the write on a loop of its own). A running server sees
    the token when it next starts.

    Raises ValueError for a bad name or scope, StoreUnavailable.
    """
    check_token_request(account, scopes)
    store.open()
    try:
        known = {row.account: row for row in store.load_access_tokens()}.get(account.lower())
        secret, row = new_token_row(
            known.name if known is not None else account,
            scopes,
            description,
            now_ms=now_ms,
            expires_ms=expires_ms,
            account_ms=known.account_ms if known is not None else now_ms,
        )
        asyncio.run(store.create_access_token(row))
    finally:
        store.close()
    info = TokenInfo(row.id, row.name, row.scopes, row.description, now_ms, row.expires_ms)
    return secret, info
