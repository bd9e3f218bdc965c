"""What app/ws_protocol.py relies on in uvicorn and websockets, and the fallback when it is gone.

The module subclasses uvicorn's private ``WebSocketsSansIOProtocol``. Every private import,
attribute, method and hook it uses is listed here and checked one by one, so that an upgrade
that removes or renames one fails with its name rather than with a stuck spectator.
"""

from __future__ import annotations

import asyncio
import base64
import dis
import importlib
import inspect
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import CodeType
from typing import Any

import pytest
import uvicorn
import websockets
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.server import ServerProtocol

from app import Settings, ws_protocol
from app.server import uvicorn_config
from app.ws_protocol import DIRECT_EXTENSION, DirectConnection, FanoutWebSocketProtocol
from tests.app.test_live import play, recv_json, ws_url
from tests.conftest import ROOT, serve

# (module, name, what it must be) for every import of uvicorn's or websockets' the module uses.
IMPORTS = [
    ("uvicorn.protocols.websockets.websockets_sansio_impl", "WebSocketsSansIOProtocol", "protocol"),
    ("uvicorn.protocols.utils", "ClientDisconnected", "exception"),
    ("uvicorn._types", "ASGISendEvent", "type"),
    ("websockets.http11", "Request", "class"),
]
# Attributes uvicorn sets on its protocol (in __init__ or the handshake) that the module
# reads or resets, with the type each must have once a connection is accepted.
ATTRIBUTES: dict[str, type | tuple[type, ...]] = {
    "app": object,
    "close_sent": bool,
    "close_timer": (asyncio.TimerHandle, type(None)),
    "conn": ServerProtocol,
    "curr_msg_data_type": str,
    "disconnected": bool,
    "frames": list,
    "handshake_complete": bool,
    "logger": logging.Logger,
    "loop": asyncio.AbstractEventLoop,
    "queue": asyncio.Queue,
    "read_paused": bool,
    "request": Request,
    "response": Response,
    "scope": dict,
    "transport": asyncio.Transport,
}
# Methods the module overrides or calls: parameters, and whether it is a coroutine.
METHODS = {
    "connection_lost": (("self", "exc"), False),
    "connection_made": (("self", "transport"), False),
    "handle_connect": (("self", "event"), False),
    "receive": (("self",), True),
    "run_asgi": (("self",), True),
    "send": (("self", "message"), True),
    "send_500_response": (("self",), False),
    "send_receive_event_to_app": (("self",), False),
}
# Hooks: uvicorn's methods that must still call (or use) what the module overrides or reads.
HOOKS = {
    "connection_lost": ("close_timer", "disconnected"),
    "handle_bytes": ("send_receive_event_to_app",),
    "handle_connect": ("run_asgi", "scope"),
    "handle_cont": ("send_receive_event_to_app",),
    "handle_text": ("send_receive_event_to_app",),
}
# websockets' ServerProtocol (uvicorn's ``conn``), called directly by the module.
SERVER_PROTOCOL_METHODS = {
    "send_close": ("self", "code", "reason"),
    "data_to_send": ("self",),
}


def test_the_installed_uvicorn_has_everything_the_module_needs() -> None:
    """The import-time check finds nothing missing in the installed uvicorn."""
    assert ws_protocol.UNSUPPORTED_REASON is None, ws_protocol.UNSUPPORTED_REASON


@pytest.mark.parametrize(
    ("module", "name", "kind"), IMPORTS, ids=[f"{m}.{n}" for m, n, _ in IMPORTS]
)
def test_import_exists(module: str, name: str, kind: str) -> None:
    """Each of uvicorn's and websockets' names the module imports is still there, as the same kind of thing."""
    try:
        value = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        pytest.fail(f"app/ws_protocol.py imports {module}.{name}, which is gone: {exc}")
    if kind == "protocol":
        assert inspect.isclass(value), f"{module}.{name} is no longer a class"
        assert issubclass(value, asyncio.Protocol), (
            f"{module}.{name} is no longer an asyncio.Protocol"
        )
    elif kind == "exception":
        assert inspect.isclass(value), f"{module}.{name} is no longer a class"
        assert issubclass(value, BaseException), f"{module}.{name} is no longer an exception"
    elif kind == "class":
        assert inspect.isclass(value), f"{module}.{name} is no longer a class"


@pytest.mark.parametrize("name", sorted(METHODS))
def test_method_exists_with_its_signature(name: str) -> None:
    """Each of uvicorn's methods the module overrides or calls keeps its name, parameters and sync/async kind."""
    params, is_coroutine = METHODS[name]
    method = getattr(WebSocketsSansIOProtocol, name, None)
    assert inspect.isfunction(method), f"WebSocketsSansIOProtocol.{name}() is gone"
    assert tuple(inspect.signature(method).parameters) == params, (
        f"WebSocketsSansIOProtocol.{name}{inspect.signature(method)} changed; "
        f"the module expects ({', '.join(params)})"
    )
    assert inspect.iscoroutinefunction(method) == is_coroutine, (
        f"WebSocketsSansIOProtocol.{name}() is no longer {'async' if is_coroutine else 'sync'}"
    )


@pytest.mark.parametrize("caller", sorted(HOOKS))
def test_hook_is_still_called(caller: str) -> None:
    """uvicorn's own methods still call (or use) what the module overrides or relies on."""
    method = getattr(WebSocketsSansIOProtocol, caller, None)
    assert inspect.isfunction(method), f"WebSocketsSansIOProtocol.{caller}() is gone"
    for name in HOOKS[caller]:
        assert name in method.__code__.co_names, (
            f"WebSocketsSansIOProtocol.{caller}() no longer uses {name}: the override or "
            "attribute app/ws_protocol.py relies on would be ignored"
        )


@pytest.mark.parametrize("name", sorted(SERVER_PROTOCOL_METHODS))
def test_websockets_server_protocol_method(name: str) -> None:
    """The sans-I/O ServerProtocol methods the module calls on uvicorn's ``conn`` keep their parameters."""
    method = getattr(ServerProtocol, name, None)
    assert callable(method), f"websockets.server.ServerProtocol.{name}() is gone"
    params = tuple(inspect.signature(method).parameters)
    assert params[: len(SERVER_PROTOCOL_METHODS[name])] == SERVER_PROTOCOL_METHODS[name], (
        f"ServerProtocol.{name}{inspect.signature(method)} changed"
    )


class FakeTransport(asyncio.Transport):
    """A transport that keeps what is written; no socket."""

    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default

    def get_write_buffer_size(self) -> int:
        return len(self.written)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


HANDSHAKE = (
    "GET /ws HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\n"
    "Sec-WebSocket-Version: 13\r\n\r\n"
).encode()


async def handshake(protocol_class: type[WebSocketsSansIOProtocol], app: Any) -> Any:
    """A protocol of ``protocol_class`` on a fake transport, after ``app`` ran for the handshake."""
    config = uvicorn.Config(app, ws=protocol_class, lifespan="off", log_config=None)
    state = ServerState()
    proto = protocol_class(config, state, {}, _loop=asyncio.get_running_loop())
    proto.connection_made(FakeTransport())
    proto.data_received(HANDSHAKE)
    await asyncio.gather(*list(state.tasks))
    return proto


async def test_uvicorn_sets_every_attribute_the_module_uses() -> None:
    """After an accepted handshake, uvicorn's protocol carries every attribute the module reads or resets, with its type."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})

    proto = await handshake(WebSocketsSansIOProtocol, app)
    present = vars(proto)
    missing = sorted(set(ATTRIBUTES) - set(present))
    assert not missing, f"uvicorn's WebSocketsSansIOProtocol no longer sets {missing}"
    wrong = {
        name: type(present[name]).__name__
        for name, kind in ATTRIBUTES.items()
        if not isinstance(present[name], kind)
    }
    assert not wrong, f"uvicorn's WebSocketsSansIOProtocol attributes changed type: {wrong}"
    assert "extensions" in proto.scope


async def test_the_subclass_runs_a_detached_connection_through_uvicorns_hooks() -> None:
    """Through uvicorn's own handshake, frame and loss handling, the subclass exposes the direct path, delivers a text message to the listener, and reports the loss once."""
    got: list[str] = []

    class Listener:
        def on_text(self, text: str) -> None:
            got.append(text)

        def on_binary(self, data: bytes) -> None:
            got.append(f"binary {data!r}")

        def on_closed(self) -> None:
            got.append("closed")

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        connection = scope["extensions"][DIRECT_EXTENSION]["connection"]
        assert isinstance(connection, DirectConnection)
        assert connection.is_open
        connection.write_frame(b"frame")
        connection.detach(Listener())

    proto = await handshake(FanoutWebSocketProtocol, app)
    transport = proto.transport
    assert transport.written.startswith(b"HTTP/1.1 101")
    assert transport.written.endswith(b"frame")
    assert not transport.closing, "the detached connection was closed when its handler returned"
    proto.data_received(Frame(Opcode.TEXT, b"ping").serialize(mask=True))
    proto.connection_lost(None)
    assert got == ["ping", "closed"]


def code_objects(code: CodeType) -> Iterator[CodeType]:
    """``code`` and every code object nested in it (comprehensions, lambdas)."""
    yield code
    for const in code.co_consts:
        if isinstance(const, CodeType):
            yield from code_objects(const)


def attribute_names(module: Any) -> set[str]:
    """Every attribute name that the functions, methods and properties defined in ``module`` load or store."""
    members: list[Any] = []
    for value in vars(module).values():
        if getattr(value, "__module__", None) != module.__name__:
            continue
        members.extend(vars(value).values() if inspect.isclass(value) else [value])
    names: set[str] = set()
    for member in members:
        functions = [member.fget, member.fset] if isinstance(member, property) else [member]
        for function in functions:
            if inspect.isfunction(function) and function.__module__ == module.__name__:
                for code in code_objects(function.__code__):
                    names.update(
                        str(i.argval)
                        for i in dis.get_instructions(code)
                        if i.opname in ("LOAD_ATTR", "STORE_ATTR", "LOAD_METHOD", "DELETE_ATTR")
                    )
    return names


def test_every_uvicorn_internal_the_module_touches_is_listed() -> None:
    """Every name of uvicorn's protocol that the module's code touches is in the lists above and in the module's import-time check."""
    base = WebSocketsSansIOProtocol
    uvicorns = {name for name, value in vars(base).items() if inspect.isfunction(value)}
    for function in list(vars(base).values()):
        if inspect.isfunction(function):
            uvicorns.update(
                str(i.argval) for i in dis.get_instructions(function) if i.opname == "STORE_ATTR"
            )
    ours = {"detached_to"}
    used = attribute_names(ws_protocol) & uvicorns - ours
    unlisted = sorted(used - set(ATTRIBUTES) - set(METHODS))
    assert not unlisted, f"app/ws_protocol.py uses uvicorn internals not checked here: {unlisted}"
    assert set(ATTRIBUTES) == ws_protocol._NEEDS_ATTRIBUTES
    assert METHODS == ws_protocol._NEEDS_METHODS
    assert HOOKS == ws_protocol._NEEDS_REFERENCES


def test_the_import_time_check_names_what_is_missing() -> None:
    """``missing_internals`` names a removed method, a changed signature, a hook no longer called and attributes never set."""

    async def send(self: Any, message: Any, extra: Any) -> None:
        pass

    def handle_text(self: Any, event: Any) -> None:
        pass

    assert ws_protocol.missing_internals(WebSocketsSansIOProtocol) == []
    changed = type(
        "Changed", (WebSocketsSansIOProtocol,), {"send": send, "handle_text": handle_text}
    )
    assert ws_protocol.missing_internals(changed) == [
        "method send(self, message) (now (self, message, extra))",
        "handle_text() using send_receive_event_to_app",
    ]
    renamed = {k: v for k, v in vars(WebSocketsSansIOProtocol).items() if k != "run_asgi"}
    renamed.pop("__dict__", None)
    renamed.pop("__weakref__", None)
    missing = ws_protocol.missing_internals(type("Renamed", (asyncio.Protocol,), renamed))
    assert missing == ["method run_asgi()"]
    nothing = ws_protocol.missing_internals(object)
    assert "attribute 'disconnected' (never set)" in nothing
    assert "handle_connect() using run_asgi" in nothing


def test_without_the_internals_uvicorn_config_falls_back_with_one_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    """When the check fails, the server config uses uvicorn's stock protocol and logs one warning naming what is missing."""
    monkeypatch.setattr(ws_protocol, "UNSUPPORTED_REASON", "uvicorn lacks attribute 'x'")
    settings = Settings(data_dir=tmp_path, operator_token="operator-secret-token")
    with caplog.at_level(logging.WARNING):
        config = uvicorn_config(object(), settings)  # type: ignore[arg-type]
    assert config.ws == "auto"
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert "uvicorn lacks attribute 'x'" in warnings[0].getMessage()
    monkeypatch.setattr(ws_protocol, "UNSUPPORTED_REASON", None)
    assert uvicorn_config(object(), settings).ws is FanoutWebSocketProtocol  # type: ignore[arg-type]


async def test_without_the_internals_spectators_get_the_queued_fallback(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """With the check failed, a real server still serves spectators every event, through the queued fallback."""
    monkeypatch.setattr(ws_protocol, "UNSUPPORTED_REASON", "uvicorn lacks attribute 'x'")
    async with serve(tmp_path / "data") as live:
        game_id, _ = await live.started_game()
        async with websockets.connect(ws_url(live, f"/ws/games/{game_id}")) as ws:
            assert (await recv_json(ws))["type"] == "snapshot"
            writers = [t for t in asyncio.all_tasks() if t.get_coro().__qualname__ == "_drain"]  # type: ignore[union-attr]
            assert len(writers) == 1, "the spectator did not get the queued fallback"
            await play(live, game_id, ["e4", "e5"])
            assert [(await recv_json(ws))["seq"] for _ in range(2)] == [2, 3]


def test_the_module_imports_without_uvicorns_internals(tmp_path: Path) -> None:
    """With uvicorn's sansio module unimportable, app.ws_protocol and app.server still import and the config falls back."""
    script = (
        "import sys\n"
        "sys.modules['uvicorn.protocols.websockets.websockets_sansio_impl'] = None\n"
        "from app import ws_protocol\n"
        "from app.server import uvicorn_config\n"
        "from app.settings import Settings\n"
        "assert 'websockets_sansio_impl' in ws_protocol.UNSUPPORTED_REASON, ws_protocol.UNSUPPORTED_REASON\n"
        "settings = Settings(data_dir=sys.argv[1], operator_token='operator-secret-token')\n"
        "assert uvicorn_config(object(), settings).ws == 'auto'\n"
        "import app.routes_live\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("serving WebSockets with uvicorn's stock protocol") == 1, (
        result.stderr
    )
