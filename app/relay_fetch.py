"""One bounded fetch of a relay source's file: a deadline, a size cap, and no garbage.

A relay source is a server someone else runs, and it may be broken in every way: it may
accept and never answer, send headers and then nothing, trickle a byte a second (which no
per-read timeout ever trips), send a gigabyte, or send bytes that are not HTTP or not PGN.
:func:`fetch_bounded` gives each fetch a deadline on the event loop's clock for the whole
exchange (the client's own timeouts bound each connect and read), refuses a declared
``Content-Length`` over the cap before reading anything, and counts the body while it
streams, dropping the connection as soon as the count passes the cap, so that at most the
cap (plus one read) is ever held: a gzip or deflate body is inflated here, never past the
cap, and other encodings are refused. Every failure is a :class:`SourceError` whose
message says what happened in words the operator can act on; :func:`read_pgn` turns the
body into text, or into a ``SourceError`` when it is not PGN at all.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import zlib
from dataclasses import dataclass

import httpx

from engine.rules.relay import pgn_problem

# Bodies up to this size are decoded and checked on the loop (well under a millisecond);
# larger ones in a thread.
INLINE_BYTES = 64 * 1024


class SourceError(Exception):
    """The source answered something unusable; ``status`` is the HTTP status, if any."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Fetched:
    """A source's answer: ``body`` is None for a 304 (the caller's copy is current)."""

    status: int
    body: bytes | None
    etag: str | None
    last_modified: str | None
    charset: str | None


class NotPublicError(SourceError):
    """A host name that resolves to an address off the public internet."""


async def public_address(host: str, port: int) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The first address of ``host`` (a name or an address), checked with every other one
    to be public. Raises NotPublicError when one is not, SourceError when it has none."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise SourceError(f"cannot resolve {host}: {exc}") from None
    addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    if not addresses:
        raise SourceError(f"cannot resolve {host}")
    private = next((address for address in addresses if not address.is_global), None)
    if private is not None:
        raise NotPublicError(f"{host} resolves to {private}, not a public address")
    return addresses[0]


async def pin_public_address(request: httpx.Request) -> None:
    """An httpx request hook for the sources an account named: resolve the host name now,
    refuse the fetch (SourceError) unless every address it has is public, and send the
    request to the address checked, so that the connection cannot go elsewhere.

    The address was checked when the account named the source, but a host name can resolve
    to a public address then and to the server's own network later (DNS rebinding), and
    httpx would resolve it again at each connect. The URL keeps its host in the ``Host``
    header and, for HTTPS, in the TLS server name, so virtual hosts and certificates work as
    before. A URL naming an address is left as it is: it cannot change (the account's was
    checked; an operator may name one on the server's own network).
    """
    url = request.url
    host = url.raw_host.decode("ascii")
    try:
        ipaddress.ip_address(host)
        return
    except ValueError:
        pass
    address = await public_address(host, url.port or (443 if url.scheme == "https" else 80))
    request.extensions["sni_hostname"] = host
    request.url = url.copy_with(host=str(address))


async def fetch_bounded(
    client: httpx.AsyncClient,
    url: str,
    *,
    headers: dict[str, str],
    max_bytes: int,
    deadline: float,
) -> Fetched:
    """GET ``url``: a 200 with its whole body, or a 304, by ``deadline`` (loop time, s).

    Raises SourceError for any other status, a body over ``max_bytes`` (declared or
    counted), the deadline passing, a URL (or redirect) that cannot be fetched, and every
    transport failure (refused, reset, timed out, not HTTP), with a message for the
    operator.
    """
    try:
        async with asyncio.timeout_at(deadline):
            return await _fetch(client, url, headers, max_bytes)
    except TimeoutError:
        raise SourceError("no complete answer before the deadline (GM_RELAY_DEADLINE_S)") from None
    except httpx.TimeoutException as exc:
        raise SourceError(f"timed out ({_what_timed_out(exc)}, GM_RELAY_TIMEOUT_S)") from None
    except httpx.HTTPError as exc:
        raise SourceError(f"{type(exc).__name__}: {exc}"[:500]) from None
    except (httpx.InvalidURL, ValueError, OverflowError) as exc:
        # The URL, or where a redirect led: a bad port or host name (IDNA) is found only
        # when the request is built or the socket connects.
        raise SourceError(f"not a usable URL: {exc}"[:500]) from None
    except ExceptionGroup as group:
        # anyio's connect gathers what each attempt raised (a port past 65535 is one).
        causes = "; ".join(str(exc) for exc in group.exceptions)
        raise SourceError(f"could not connect: {causes}"[:500]) from None


async def _fetch(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], max_bytes: int
) -> Fetched:
    # Only what _Inflater decodes is asked for (httpx would offer br and zstd too when
    # their packages are installed).
    headers = {**headers, "Accept-Encoding": "gzip, deflate"}
    async with client.stream("GET", url, headers=headers) as response:
        status = response.status_code
        if status == 304:
            return Fetched(status, None, None, None, None)
        if status != 200:
            if 300 <= status < 400 and "location" in response.headers:
                raise SourceError(
                    f"HTTP {status}: a redirect, not followed (an account's source must "
                    "be the file's own URL)",
                    status,
                )
            raise SourceError(f"HTTP {status}", status)
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            raise SourceError(
                f"larger than {max_bytes} bytes (Content-Length: {declared}; "
                "GM_RELAY_MAX_BYTES): not read",
                status,
            )
        inflater = _Inflater.from_header(response.headers.get("content-encoding", ""))
        body = bytearray()
        # Raw bytes, inflated here: httpx inflates each read whole, and one 64 KiB read
        # of deflate can be 64 MB; here no more than the cap (plus one byte) ever is.
        async for chunk in response.aiter_raw():
            if inflater is None:
                body += chunk
            else:
                inflater.feed(chunk, body, max_bytes + 1 - len(body))
            if len(body) > max_bytes:
                # Leaving the block closes the connection: the rest is never read.
                raise SourceError(
                    f"larger than {max_bytes} bytes (GM_RELAY_MAX_BYTES): cut there", status
                )
        if inflater is not None:
            inflater.finish(body)
            if len(body) > max_bytes:
                raise SourceError(
                    f"larger than {max_bytes} bytes (GM_RELAY_MAX_BYTES): cut there", status
                )
        return Fetched(
            status,
            bytes(body),
            response.headers.get("etag"),
            response.headers.get("last-modified"),
            response.charset_encoding,
        )


class _Inflater:
    """Inflates a gzip or deflate body a bounded amount at a time."""

    __slots__ = ("_decompressor", "_raw_fallback")

    def __init__(self, wbits: int, *, raw_fallback: bool) -> None:
        self._decompressor = zlib.decompressobj(wbits)
        # "deflate" should be zlib-wrapped, but some servers send raw deflate.
        self._raw_fallback = raw_fallback

    @classmethod
    def from_header(cls, content_encoding: str) -> _Inflater | None:
        """The inflater for a ``Content-Encoding`` value; None for none (identity).

        Raises SourceError for an encoding not asked for, or more than one.
        """
        codings = [c.strip().lower() for c in content_encoding.split(",") if c.strip()]
        codings = [c for c in codings if c != "identity"]
        if not codings:
            return None
        if codings in (["gzip"], ["x-gzip"]):
            return cls(16 + zlib.MAX_WBITS, raw_fallback=False)
        if codings == ["deflate"]:
            return cls(zlib.MAX_WBITS, raw_fallback=True)
        raise SourceError(f"Content-Encoding {content_encoding!r} not supported (gzip, deflate)")

    def feed(self, data: bytes, body: bytearray, room: int) -> None:
        """Append what ``data`` inflates to onto ``body``, stopping once ``room`` bytes were
        added (the caller then finds the body over its cap). Raises SourceError on bad data."""
        while data and room > 0:
            try:
                piece = self._decompressor.decompress(data, room)
            except zlib.error as exc:
                if not self._raw_fallback:
                    raise SourceError(f"bad compressed data: {exc}") from None
                self._raw_fallback = False
                self._decompressor = zlib.decompressobj(-zlib.MAX_WBITS)
                continue
            self._raw_fallback = False
            body += piece
            room -= len(piece)
            data = self._decompressor.unconsumed_tail

    def finish(self, body: bytearray) -> None:
        """Append what the inflater still holds (all input was fed)."""
        try:
            body += self._decompressor.flush()
        except zlib.error as exc:
            raise SourceError(f"bad compressed data: {exc}") from None


def _what_timed_out(exc: httpx.TimeoutException) -> str:
    if isinstance(exc, httpx.ConnectTimeout):
        return "connecting"
    if isinstance(exc, httpx.ReadTimeout):
        return "waiting for data"
    if isinstance(exc, httpx.PoolTimeout):
        return "waiting for a connection"
    return "sending the request"


def decode_pgn(body: bytes, charset: str | None) -> str:
    """``body`` as text, or SourceError when it is not PGN (blocking for large bodies).

    The declared charset is used when Python knows it; otherwise UTF-8, else Latin-1
    (what DGT software writes), so decoding itself never fails.
    """
    text: str | None = None
    if charset is not None:
        try:
            text = body.decode(charset)
        except (LookupError, UnicodeDecodeError):
            text = None
    if text is None:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            text = body.decode("latin-1")
    if text.strip():
        problem = pgn_problem(text)
        if problem is not None:
            raise SourceError(problem)
    return text


async def read_pgn(fetched: Fetched) -> str:
    """:func:`decode_pgn` of a 200's body, in a thread when it is large."""
    assert fetched.body is not None
    if len(fetched.body) <= INLINE_BYTES:
        return decode_pgn(fetched.body, fetched.charset)
    return await asyncio.to_thread(decode_pgn, fetched.body, fetched.charset)
