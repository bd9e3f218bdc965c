"""Routes of accounts and tokens: ``/api/tokens`` (operator), ``/api/account``, and the
OAuth 2 PKCE flow as lichess serves it (``/oauth``, ``/oauth/approve``, ``/api/token``).

The OAuth routes answer as lichess does, since its clients parse them: ``POST /api/token``
refuses with 400 ``{"error", "error_description"}``; the approval page is HTML, and a bad
request is shown there, never redirected to an address that was not validated.
"""

from __future__ import annotations

import base64
import html
import json
from typing import Annotated, Any
from urllib.parse import unquote_plus, urlsplit

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import AfterValidator, Field

from app.accounts import (
    DAY_MS,
    DEFAULT_SCOPES,
    MAX_DESCRIPTION,
    SCOPES,
    TOKEN_DAYS,
    AccountService,
    ApprovalRefused,
    AuthorizationRequest,
    OAuthError,
    iso_time,
    parse_authorization_request,
    parse_form,
)
from app.auth import Account, Operator, Seat, Tokens, authenticated
from app.errors import ApiError, not_found
from app.openapi import BEARER, body, errors
from app.responses import AccountOut, OAuthToken, TokenCreated, TokenList
from app.responses import OAuthError as OAuthRefusal
from app.schemas import INTEGRAL, TEXT_FORMAT, Body
from app.settings import ACCOUNT_NAME

router = APIRouter(tags=["accounts"])


# No script, no external resource, no framing; the form posts to this server.
_PAGE_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'"
)
_PAGE_HEADERS = {
    "Content-Security-Policy": _PAGE_POLICY,
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
_SCOPE_TEXT = {
    "study:read": "read broadcasts, including private ones",
    "study:write": "create and update broadcasts and push their games",
}


def _known_scope(scope: str) -> str:
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope[:50]!r}; known: {', '.join(sorted(SCOPES))}")
    return scope


def _printable(text: str) -> str:
    if not text.isprintable():
        raise ValueError("the description must be printable")
    return text


class CreateTokenIn(Body):
    """``POST /api/tokens``: a personal token of ``account`` (created with its first token)."""

    account: Annotated[str, Field(pattern=ACCOUNT_NAME)]
    description: Annotated[
        str,
        Field(max_length=MAX_DESCRIPTION, json_schema_extra={"format": TEXT_FORMAT}),
        AfterValidator(_printable),
    ] = ""
    scopes: Annotated[
        list[
            Annotated[
                str,
                Field(json_schema_extra={"enum": sorted(SCOPES)}),
                AfterValidator(_known_scope),
            ]
        ],
        Field(max_length=len(SCOPES)),
    ] = list(DEFAULT_SCOPES)  # noqa: RUF012 (pydantic copies defaults)
    expires_days: Annotated[int, Field(ge=1, le=36_500), INTEGRAL] = TOKEN_DAYS


def _service(request: Request) -> AccountService:
    service: AccountService = request.app.state.accounts
    return service


def _tokens(request: Request) -> Tokens:
    tokens: Tokens = request.app.state.tokens
    return tokens


# --- personal tokens (operator) ---


@router.post(
    "/api/tokens",
    status_code=201,
    responses={201: body(TokenCreated), **errors(400, 401, 403, 413, 422, 429, 503)},
    openapi_extra=BEARER,
    dependencies=[Depends(authenticated)],
)
async def create_token(body: CreateTokenIn, request: Request) -> JSONResponse:
    """Create a personal token (operator). Answers the secret ``token`` once; only its
    digest is kept."""
    _tokens(request).require_operator(request)
    service = _service(request)
    expires_ms = service.now_ms() + body.expires_days * DAY_MS
    secret, info = await service.create_token(
        body.account, tuple(body.scopes), body.description, expires_ms=expires_ms
    )
    return JSONResponse(
        {
            "id": info.id,
            "token": secret,
            "account": info.account,
            "scopes": list(info.scopes),
            "description": info.description,
            "expires_at": iso_time(info.expires_ms),
        },
        status_code=201,
    )


@router.get(
    "/api/tokens",
    responses={200: body(TokenList), **errors(401, 403, 429)},
    openapi_extra=BEARER,
    dependencies=[Depends(authenticated)],
)
async def list_tokens(request: Request) -> JSONResponse:
    """Every token not revoked, oldest first, without secrets (operator)."""
    _tokens(request).require_operator(request)
    service = _service(request)
    now = service.now_ms()
    return JSONResponse({"tokens": [info.to_json(now) for info in service.list_tokens()]})


@router.delete(
    "/api/tokens/{token_id}",
    status_code=204,
    responses={
        204: {"description": "revoked"},
        **errors(401, 403, 404, 429, 503, notes={404: "no such token"}),
    },
    openapi_extra=BEARER,
    dependencies=[Depends(authenticated)],
)
async def revoke_token(token_id: str, request: Request) -> Response:
    """Revoke a token (operator): it is refused (401) from now on."""
    _tokens(request).require_operator(request)
    if not await _service(request).revoke(token_id):
        raise not_found("token")
    return Response(status_code=204)


# --- the bearer's account, as lichess's ``/api/account`` ---


@router.get(
    "/api/account",
    responses={200: body(AccountOut), **errors(401, 403, 429)},
    openapi_extra=BEARER,
    dependencies=[Depends(authenticated)],
)
async def get_account(request: Request) -> JSONResponse:
    """The bearer's account as lichess shows it (``id``, ``username``, ...); the operator
    token is the account named by ``GM_OPERATOR_NAME``."""
    identity = _tokens(request).identify(request)
    if identity is None:
        raise ApiError(401, "unauthorized", "this route needs an account or operator token")
    if isinstance(identity, Seat):
        raise ApiError(403, "forbidden", "a player's token has no account")
    service = _service(request)
    name = identity.name if isinstance(identity, Account) else service.operator_name
    known = service.account(name)
    body: dict[str, Any] = {"id": name.lower(), "username": known.name if known else name}
    if known is not None:
        body["createdAt"] = known.created_ms
    body["seenAt"] = service.now_ms()
    body["perfs"] = {}
    return JSONResponse(body)


# --- OAuth 2 with PKCE ---


@router.post(
    "/api/token",
    responses={
        200: body(OAuthToken),
        **errors(400, shape=OAuthRefusal, notes={400: "an OAuth refusal (RFC 6749, 5.2)"}),
        **errors(413, 429),
    },
    openapi_extra={
        "requestBody": {
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "grant_type": {"type": "string", "enum": ["authorization_code"]},
                            "code": {"type": "string"},
                            "code_verifier": {"type": "string"},
                            "redirect_uri": {"type": "string"},
                            "client_id": {"type": "string"},
                        },
                    }
                }
            },
        }
    },
)
async def token_exchange(request: Request) -> JSONResponse:
    """Exchange an authorization code and its PKCE verifier for a token (form-encoded:
    ``grant_type=authorization_code``, ``code``, ``code_verifier``, ``redirect_uri``,
    ``client_id``). Answers ``{"token_type": "Bearer", "access_token", "expires_in"}``."""
    body = await request.body()
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            return _oauth_error(OAuthError("invalid_request", "the body must be a form"))
        form = {k: v for k, v in data.items() if isinstance(v, str)}
    else:
        form = parse_form(body)
    if not form.get("client_id"):
        # OAuth clients may name themselves in HTTP Basic auth instead (RFC 6749, 2.3.1).
        client_id = _basic_user(request.headers.get("authorization", ""))
        if client_id:
            form["client_id"] = client_id
    try:
        secret, expires_in = await _service(request).exchange(form)
    except OAuthError as exc:
        return _oauth_error(exc)
    return JSONResponse(
        {"token_type": "Bearer", "access_token": secret, "expires_in": expires_in},
        headers={"Cache-Control": "no-store"},
    )


@router.delete(
    "/api/token",
    status_code=204,
    responses={204: {"description": "revoked"}, **errors(401, 403, 429, 503)},
    openapi_extra=BEARER,
    dependencies=[Depends(authenticated)],
)
async def revoke_own_token(request: Request) -> Response:
    """Revoke the token this request presents (an account's): 204, then it is refused."""
    identity = _tokens(request).identify(request)
    if identity is None:
        raise ApiError(401, "unauthorized", "no token to revoke")
    if isinstance(identity, Operator):
        raise ApiError(403, "forbidden", "the operator token is configured, not revoked here")
    if isinstance(identity, Seat):
        raise ApiError(403, "forbidden", "a player's token ends with its game")
    await _service(request).revoke(identity.token_id)
    return Response(status_code=204)


@router.get("/oauth", response_class=HTMLResponse, include_in_schema=False)
async def authorize(request: Request) -> HTMLResponse:
    """The approval page of an app's authorization request (lichess's parameters)."""
    params = {key: request.query_params[key] for key in request.query_params}
    try:
        parsed = parse_authorization_request(params)
    except OAuthError as exc:
        return _error_page(400, "Bad authorization request", exc.description)
    pending_id = _service(request).begin(parsed)
    return _approval_page(200, request, parsed, pending_id)


@router.post("/oauth/approve", include_in_schema=False)
async def approve(request: Request) -> Response:
    """The approval form: ``request`` (the pending id), ``token`` (the operator token or a
    personal token of the account), ``action`` (``approve`` or ``deny``). Redirects (302)
    to the app with ``code`` and ``state``, or ``error=access_denied``."""
    form = parse_form(await request.body())
    service = _service(request)
    pending_id = form.get("request", "")
    parsed = service.pending(pending_id)
    if parsed is None:
        return _error_page(
            400,
            "Authorization request expired",
            "This request expired or was answered already. Start the login again from the app.",
        )
    if form.get("action") == "deny":
        location = service.deny(pending_id)
        assert location is not None
        return RedirectResponse(location, status_code=302, headers=_PAGE_HEADERS)
    approver = _tokens(request).resolve(form.get("token", "").strip())
    if approver is None:
        return _approval_page(401, request, parsed, pending_id, "Unknown or expired token.")
    if isinstance(approver, Seat):
        return _approval_page(
            403, request, parsed, pending_id, "A player's token cannot approve apps."
        )
    try:
        location = service.approve(pending_id, approver)
    except ApprovalRefused as exc:
        return _approval_page(403, request, parsed, pending_id, str(exc).capitalize() + ".")
    return RedirectResponse(location, status_code=302, headers=_PAGE_HEADERS)


def _basic_user(header: str) -> str:
    """The user name of an HTTP Basic ``Authorization`` header, or ""."""
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() != "basic":
        return ""
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode()
    except ValueError:
        return ""
    return unquote_plus(decoded.partition(":")[0])


def _oauth_error(exc: OAuthError) -> JSONResponse:
    return JSONResponse({"error": exc.error, "error_description": exc.description}, 400)


def _page(status: int, title: str, content: str) -> HTMLResponse:
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)} - Grandmaster</title>
<style>
body {{ font: 16px/1.5 system-ui, sans-serif; max-width: 32rem; margin: 3rem auto;
  padding: 0 1rem; color: #222; }}
h1 {{ font-size: 1.4rem; }} code {{ background: #eee; padding: 0 .2rem; }}
.error {{ color: #a00; font-weight: bold; }}
input[type=password] {{ width: 100%; padding: .4rem; margin: .3rem 0 1rem;
  box-sizing: border-box; }}
button {{ padding: .5rem 1.2rem; margin-right: .5rem; }}
</style></head>
<body><h1>{html.escape(title)}</h1>
{content}
</body></html>
"""
    return HTMLResponse(page, status_code=status, headers=_PAGE_HEADERS)


def _error_page(status: int, title: str, message: str) -> HTMLResponse:
    return _page(status, title, f'<p class="error">{html.escape(message)}</p>')


def _approval_page(
    status: int,
    request: Request,
    parsed: AuthorizationRequest,
    pending_id: str,
    error: str | None = None,
) -> HTMLResponse:
    e = html.escape
    target = urlsplit(parsed.redirect_uri)
    scopes = "".join(
        f"<li><code>{e(s)}</code>: {e(_SCOPE_TEXT.get(s, s))}</li>" for s in parsed.scopes
    )
    scope_text = f"<ul>{scopes}</ul>" if scopes else "<p>No scopes: only who you are.</p>"
    problem = f'<p class="error">{e(error)}</p>' if error else ""
    site = e(request.app.state.settings.site)
    content = f"""<p><strong>{e(parsed.client_id)}</strong> asks to act on {site} as an account,
with these permissions:</p>
{scope_text}
<p>The answer goes back to <code>{e(target.scheme)}://{e(target.netloc)}</code>.</p>
<p>Approve with the operator token (the app then acts as the operator's account) or with a
personal token of the account the app is to act as.</p>
{problem}
<form method="post" action="/oauth/approve">
<input type="hidden" name="request" value="{e(pending_id)}">
<label for="token">Token</label>
<input type="password" id="token" name="token" autocomplete="off" required autofocus>
<button type="submit" name="action" value="approve">Approve</button>
<button type="submit" name="action" value="deny" formnovalidate>Deny</button>
</form>
"""
    return _page(status, f"Authorize {parsed.client_id}", content)
