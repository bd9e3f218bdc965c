"""Server settings: defaults, ``GM_*`` environment variables and command-line flags.

pydantic-settings validates every value when the settings are built, so a bad one (``GM_PORT=abc``,
``GM_ANALYSIS=ture``, a negative interval) stops ``python -m app`` before anything starts, with a
one-line :class:`SettingsError` naming the variable, instead of being read as some default.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

ENV_PREFIX = "GM_"

# uvicorn's names (``uvicorn.config.LOG_LEVELS``); tests/app/test_settings.py keeps them in step.
LogLevel = Literal["critical", "error", "warning", "info", "debug", "trace"]


def _check_engine(spec: str) -> str:
    # The workers parse it only when the pool starts; a typo should not wait until then.
    if spec != "builtin" and not (spec.startswith("uci:") and len(spec) > 4):
        raise ValueError("use 'builtin' or 'uci:/path/to/engine'")
    return spec


def _check_bus(url: str) -> str:
    # redis-py reads these schemes; anything else would fail only when the bus is first used.
    if url and not url.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError("use redis://host:port/db (or rediss://, unix://), or leave it empty")
    return url


def _check_origin(origin: str) -> str:
    # A browser's Origin header is compared as a string: a path or a missing scheme never matches.
    scheme, sep, rest = origin.partition("://")
    if not scheme or not sep or not rest or "/" in rest:
        raise ValueError(f"{origin!r} is not an origin like https://example.org[:port]")
    return origin


def _check_proxy(address: str) -> str:
    # uvicorn would take a typo as a literal host name that no peer ever matches.
    if address == "*":
        return address
    try:
        if "/" in address:
            ipaddress.ip_network(address)
        else:
            ipaddress.ip_address(address)
    except ValueError:
        raise ValueError(
            f"{address!r} is not an IP address, a network like 10.0.0.0/8, or *"
        ) from None
    return address


# An account's name, as lichess spells usernames: 2 to 30 letters, digits, ``_`` or ``-``,
# beginning and ending with a letter or digit. Its id is the name lowercased.
ACCOUNT_NAME = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,28}[A-Za-z0-9]$"

Port = Annotated[int, Field(ge=0, le=65535)]
# A bucket holding less than one token never lets anything through.
Burst = Annotated[float, Field(ge=1)]
Origin = Annotated[str, AfterValidator(_check_origin)]
ProxyAddress = Annotated[str, AfterValidator(_check_proxy)]


class SettingsError(ValueError):
    """Invalid settings; the message is one line naming each bad variable (or flag) and why."""


def variable_name(field_name: str) -> str:
    """The environment variable of a settings field: ``port`` is ``GM_PORT``."""
    return f"{ENV_PREFIX}{field_name.upper()}"


class EnvironSource(PydanticBaseSettingsSource):
    """The ``GM_<FIELD>`` variables of one environment mapping, as strings; empty means unset.

    pydantic-settings' own ``EnvSettingsSource`` reads only ``os.environ`` and decodes tuple
    fields as JSON; this one takes any mapping (so tests pass a dict instead of patching the
    process environment) and leaves ``GM_ORIGINS`` and ``GM_FORWARDED_ALLOW_IPS``
    comma-separated for the fields' validator.
    Validation and conversion are pydantic's, as for any other source.
    """

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self._environ = environ

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        """The raw string of ``field_name``'s variable (None if unset or empty)."""
        return self._environ.get(variable_name(field_name)) or None, field_name, False

    def __call__(self) -> dict[str, Any]:
        """Every set variable's raw string, by field name."""
        values: dict[str, Any] = {}
        for name, field in self.settings_cls.model_fields.items():
            raw, key, _ = self.get_field_value(field, name)
            if raw is not None:
                values[key] = raw
        return values


class Settings(BaseSettings):
    """Everything the composition root needs; immutable (frozen) and validated when built.

    ``Settings(**fields)`` takes exactly its arguments (tests build it so) and never reads the
    environment; :meth:`from_env` reads ``GM_<FIELD>`` variables (``GM_DATA_DIR=./data``,
    ``GM_ORIGINS=https://a.org,https://b.org``) and :meth:`with_args` the flags of
    ``python -m app`` (``--host``, ``--port``, ``--data-dir``). A bad value raises
    :class:`SettingsError` (a ValueError) from either, and pydantic's ValidationError (also a
    ValueError) from the constructor.
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, frozen=True, extra="forbid", allow_inf_nan=False
    )

    host: Annotated[str, Field(min_length=1)] = "127.0.0.1"
    port: Port = 8000
    data_dir: Path = Path("data")
    # None: read ``<data_dir>/operator_token``, creating it at first start. A secret: repr,
    # str and logs show ``**********``; :meth:`operator_token_value` gives the value.
    operator_token: SecretStr | None = None
    # Shown in PGN ``[Site]`` and used for links.
    site: str = "Grandmaster"
    # The account the operator token acts as where an account is shown (``GET /api/account``)
    # and which OAuth tokens approved with the operator token belong to.
    operator_name: Annotated[str, Field(pattern=ACCOUNT_NAME)] = "operator"
    max_body_bytes: PositiveInt = 64 * 1024
    # A round's relayed PGN (500 boards of long games are a few MB).
    max_pgn_bytes: PositiveInt = 16 * 1024 * 1024
    # Requests per player token (moves, draws, resignations): more get 429.
    player_requests_per_s: PositiveFloat = 20.0
    player_requests_burst: Burst = 60.0
    # Requests without a token, per client address (0: no limit; load benchmarks that run
    # thousands of clients from one address set it so). More get 429 with Retry-After.
    anon_requests_per_s: NonNegativeFloat = 20.0
    anon_requests_burst: Burst = 60.0
    # Requests without a token (API and lichess routes) served at once, in arrival order
    # (0: no limit); at most anon_queue wait, more get 503. Players and health checks
    # never wait behind them.
    anon_concurrency: NonNegativeInt = 16
    anon_queue: PositiveInt = 10_000
    # Of those, at most this many from one client address (0: no such cap); more get 429.
    anon_queue_per_address: NonNegativeInt = 100
    # Of those, at most this many start in one iteration of the event loop (0: no bound).
    anon_per_iteration: NonNegativeInt = 8
    # Admission (app/admission.py, app/http_protocol.py): a request's header must be in
    # within header_timeout_s of the connection (or of its first byte, on a kept-alive
    # one), its body within body_timeout_s of the header; a kept-alive connection idle for
    # keep_alive_s is closed. Connections per process in all and per client address (0: no
    # cap; load benchmarks running thousands of clients from one address set it so): over
    # a cap, an answer at once (503 or 429 with Retry-After) and the connection is closed.
    header_timeout_s: PositiveFloat = 10.0
    body_timeout_s: PositiveFloat = 60.0
    keep_alive_s: PositiveFloat = 5.0
    max_connections: NonNegativeInt = 30_000
    max_connections_per_ip: NonNegativeInt = 200
    # Reverse proxies whose X-Forwarded-For names the client (addresses, networks like
    # 10.0.0.0/8, or * for any peer), comma-separated; empty: no proxy is trusted.
    forwarded_allow_ips: tuple[ProxyAddress, ...] = ()
    log_level: LogLevel = "info"
    # One JSON object per line (for log collectors), or plain text lines.
    log_format: Literal["json", "text"] = "json"
    # One log line per HTTP request; off by default (a busy event logs thousands a second).
    access_log: bool = False
    # How often running clocks are written down: a crash gives back at most this much
    # thinking time to the side to move (time while the server is down is never charged).
    clock_checkpoint_s: PositiveFloat = 10.0
    # Analysis: "builtin" (the pure-Python engine) or "uci:/path/to/engine" (one engine
    # process per worker); processes 0 means one per core. Each position is searched for
    # at most max_time_s, and may be cut after min_time_s when other positions wait.
    analysis: bool = True
    # The Redis bus between processes (``redis://host:port/db``); empty: one process, nothing
    # else needed. With a bus, analysis jobs go to ``python -m workers.analysis`` workers
    # anywhere instead of local processes (engine and processes are then theirs to choose).
    bus: Annotated[str, AfterValidator(_check_bus)] = ""
    engine: Annotated[str, AfterValidator(_check_engine)] = "builtin"
    analysis_processes: NonNegativeInt = 0
    analysis_max_time_s: PositiveFloat = 5.0
    analysis_min_time_s: NonNegativeFloat = 0.1
    analysis_max_depth: PositiveInt = 24
    # 0 keeps no evaluations.
    analysis_cache_size: NonNegativeInt = 50_000
    # Game review (app/review.py): every position of a finished game searched to
    # review_depth, or, when review_nodes is above 0, until a completed depth has spent that
    # many nodes; a search still short of it after review_max_time_s counts as it stands.
    # Needs analysis on; review jobs use only the analysis workers no live game wants.
    review: bool = True
    review_depth: PositiveInt = 6
    review_nodes: NonNegativeInt = 0
    review_max_time_s: PositiveFloat = 30.0
    # Swiss pairings: "" is the built-in py4swiss (FIDE Dutch); a path is a bbpPairings
    # executable, run as ``<path> --dutch in.trf -p out.txt``.
    pairing_engine: str = ""
    # py4swiss needs minutes for the first rounds of a very large open (see the README).
    pairing_timeout_s: PositiveFloat = 900.0
    # Relay sources (``relay_url``, a round's ``sync_url``) are fetched this often while a
    # round is live; errors back off exponentially up to relay_max_backoff_s. A fetch waits
    # at most relay_timeout_s to connect and for each read, and gives up on the whole
    # fetch (a source trickling bytes) after relay_deadline_s; a body larger than
    # relay_max_bytes is cut there, never read whole.
    relay_poll_s: PositiveFloat = 2.0
    relay_max_backoff_s: PositiveFloat = 60.0
    relay_timeout_s: PositiveFloat = 10.0
    relay_deadline_s: PositiveFloat = 30.0
    relay_max_bytes: PositiveInt = 16 * 1024 * 1024
    # Spectators: a cap on connections (WebSockets and streams; 0 refuses all), the largest
    # message a spectator may send (bigger closes with 1009), how many it may send (more
    # closes with 1008), keepalive pings, and browser origins allowed (empty: any).
    # Scale-out: ``all`` is the single process; a ``core`` owns the games and publishes
    # every public event on the bus (``redis://host:port/db``); an ``edge`` holds
    # spectators for the core at ``core_url``, fed by the bus. No bus: nothing changes.
    role: Literal["all", "core", "edge"] = "all"
    core_url: str = "http://127.0.0.1:8000"
    # ``edges`` > 0: this process is the core of N edge processes on the same port (one
    # machine, every core; app/cluster.py); ``reuse_port`` binds with SO_REUSEPORT.
    edges: Annotated[int, Field(ge=0, le=256)] = 0
    reuse_port: bool = False
    max_spectators: NonNegativeInt = 20_000
    # Finished games kept in memory (least recently used first out); the others are read
    # from the store when asked for. Unfinished games are always in memory.
    game_cache: NonNegativeInt = 256
    ws_max_message_bytes: PositiveInt = 1024
    ws_messages_per_s: PositiveFloat = 2.0
    ws_messages_burst: Burst = 10.0
    ws_ping_interval_s: NonNegativeFloat = 10.0
    origins: tuple[Origin, ...] = ()
    # A spectator holding more than this unsent is skipped to the latest state once it
    # drains, and closed with 1013 if it stays behind longer than ``spectator_behind_s``.
    spectator_buffer_bytes: PositiveInt = 16 * 1024
    spectator_behind_s: PositiveFloat = 15.0
    # The kernel send buffer of each spectator socket (SO_SNDBUF; Linux doubles it).
    spectator_sndbuf_bytes: PositiveInt = 64 * 1024

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """The constructor's arguments only: the environment is read by :meth:`from_env`."""
        return (init_settings,)

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_log_level(cls, value: object) -> object:
        # uvicorn looks levels up in lower case; GM_LOG_LEVEL=INFO is meant as info.
        return value.lower() if isinstance(value, str) else value

    @field_validator("origins", "forwarded_allow_ips", mode="before")
    @classmethod
    def _split_lists(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @model_validator(mode="after")
    def _check_analysis_times(self) -> Settings:
        if self.analysis_min_time_s > self.analysis_max_time_s:
            raise ValueError(
                f"{variable_name('analysis_min_time_s')} ({self.analysis_min_time_s}) must not "
                f"exceed {variable_name('analysis_max_time_s')} ({self.analysis_max_time_s})"
            )
        return self

    @model_validator(mode="after")
    def _check_roles(self) -> Settings:
        if self.edges and self.role == "edge":
            raise ValueError(f"an edge runs no edges: unset {variable_name('edges')}")
        if self.role != "all" and not self.bus and not self.edges:
            raise ValueError(
                f"{variable_name('role')}={self.role} needs a bus: set {variable_name('bus')}"
            )
        if not self.core_url.startswith(("http://", "https://")):
            raise ValueError(f"{variable_name('core_url')} must be an http(s) URL")
        return self

    @property
    def db_path(self) -> Path:
        """The SQLite history file."""
        return self.data_dir / "grandmaster.sqlite3"

    @property
    def pgn_dir(self) -> Path:
        """Where finished games are archived as PGN files."""
        return self.data_dir / "pgn"

    @property
    def operator_token_path(self) -> Path:
        """Where a generated operator token is kept."""
        return self.data_dir / "operator_token"

    def operator_token_value(self) -> str | None:
        """The configured operator token in clear, or None; never log or display it."""
        return None if self.operator_token is None else self.operator_token.get_secret_value()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Defaults overridden by the ``GM_*`` variables of ``environ`` (``os.environ``).

        Empty variables count as unset. Raises :class:`SettingsError` on a bad value.
        """
        values = EnvironSource(cls, os.environ if environ is None else environ)()
        return cls._validated(values, variable_name)

    def with_args(self, argv: Sequence[str] | None = None) -> Settings:
        """These settings overridden by the command line of ``python -m app``.

        Raises :class:`SettingsError` on a bad value; argparse exits (status 2) on a bad flag.
        """
        parser = argparse.ArgumentParser(
            prog="python -m app", description="Run the Grandmaster chess server."
        )
        parser.add_argument("--host", help=f"interface to listen on (GM_HOST, {self.host})")
        parser.add_argument("--port", type=int, help=f"TCP port (GM_PORT, {self.port})")
        parser.add_argument(
            "--data-dir", type=Path, help=f"history and tokens (GM_DATA_DIR, {self.data_dir})"
        )
        parser.add_argument(
            "--edges", type=int, help=f"edge processes on the same port (GM_EDGES, {self.edges})"
        )
        parser.add_argument(
            "--role",
            choices=("all", "core", "edge"),
            help=f"all, core or edge (GM_ROLE, {self.role})",
        )
        args = parser.parse_args(argv)
        changes = {k: v for k, v in vars(args).items() if v is not None}

        def name(field_name: str) -> str:
            if field_name in changes:
                return "--" + field_name.replace("_", "-")
            return variable_name(field_name)

        return self._validated({**dict(self), **changes}, name)

    @classmethod
    def _validated(cls, values: dict[str, Any], name: Callable[[str], str]) -> Settings:
        try:
            return cls(**values)
        except ValidationError as exc:
            raise SettingsError(_describe(exc, name)) from None


def _describe(exc: ValidationError, name: Callable[[str], str]) -> str:
    """One line for all of ``exc``'s errors, each naming its setting (by ``name``)."""
    problems = []
    for error in exc.errors(include_url=False):
        ctx = error.get("ctx", {})
        if error["type"] == "value_error":
            # Raised by one of our validators: its own words, without pydantic's prefix.
            message = str(ctx["error"])
        else:
            message = error["msg"][:1].lower() + error["msg"][1:]
        if not error["loc"]:
            problems.append(message)
            continue
        field = str(error["loc"][0])
        shown = "" if field == "operator_token" else f"={error['input']!r}"
        problems.append(f"{name(field)}{shown}: {message}")
    return "; ".join(problems)
