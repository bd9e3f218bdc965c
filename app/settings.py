"""Server settings: defaults, ``GM_*`` environment variables and command-line flags."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the composition root needs; immutable once the app is built.

    Every field can be set as ``GM_<FIELD>`` in the environment (``GM_DATA_DIR=./data``);
    ``host``, ``port`` and ``data_dir`` also as flags of ``python -m app``.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("data")
    # None: read ``<data_dir>/operator_token``, creating it at first start.
    operator_token: str | None = None
    # Shown in PGN ``[Site]`` and used for links.
    site: str = "Grandmaster"
    max_body_bytes: int = 64 * 1024
    # A round's relayed PGN (500 boards of long games are a few MB).
    max_pgn_bytes: int = 16 * 1024 * 1024
    # Requests per player token (moves, draws, resignations): more get 429.
    player_requests_per_s: float = 20.0
    player_requests_burst: float = 60.0
    log_level: str = "info"
    # One log line per HTTP request; off by default (a busy event logs thousands a second).
    access_log: bool = False
    # How often running clocks are written down: a crash gives back at most this much
    # thinking time to the side to move (time while the server is down is never charged).
    clock_checkpoint_s: float = 10.0
    # Analysis: "builtin" (the pure-Python engine) or "uci:/path/to/engine" (one engine
    # process per worker); processes 0 means one per core. Each position is searched for
    # at most max_time_s, and may be cut after min_time_s when other positions wait.
    analysis: bool = True
    engine: str = "builtin"
    analysis_processes: int = 0
    analysis_max_time_s: float = 5.0
    analysis_min_time_s: float = 0.1
    analysis_max_depth: int = 24
    analysis_cache_size: int = 50_000
    # Swiss pairings: "" is the built-in py4swiss (FIDE Dutch); a path is a bbpPairings
    # executable, run as ``<path> --dutch in.trf -p out.txt``.
    pairing_engine: str = ""
    # py4swiss needs minutes for the first rounds of a very large open (see the README).
    pairing_timeout_s: float = 900.0
    # Relay sources (``relay_url``) are fetched this often while a round is live; errors
    # back off exponentially up to relay_max_backoff_s.
    relay_poll_s: float = 2.0
    relay_max_backoff_s: float = 60.0
    relay_timeout_s: float = 10.0
    # Spectators: a cap on connections (WebSockets and streams), the largest message a
    # spectator may send (bigger closes with 1009), how many it may send (more closes
    # with 1008), keepalive pings, and browser origins allowed (empty: any).
    max_spectators: int = 20_000
    ws_max_message_bytes: int = 1024
    ws_messages_per_s: float = 2.0
    ws_messages_burst: float = 10.0
    ws_ping_interval_s: float = 10.0
    origins: tuple[str, ...] = ()
    # A spectator holding more than this unsent is skipped to the latest state once it
    # drains, and closed with 1013 if it stays behind longer than ``spectator_behind_s``.
    spectator_buffer_bytes: int = 16 * 1024
    spectator_behind_s: float = 15.0
    # The kernel send buffer of each spectator socket (SO_SNDBUF; Linux doubles it).
    spectator_sndbuf_bytes: int = 64 * 1024

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

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Defaults overridden by ``GM_*`` variables. Raises ValueError on a bad value."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = env.get(f"GM_{f.name.upper()}")
            if raw is None or raw == "":
                continue
            values[f.name] = _convert(f.name, raw, cls)
        return cls(**values)  # type: ignore[arg-type]

    def with_args(self, argv: Sequence[str] | None = None) -> Settings:
        """These settings overridden by the command line of ``python -m app``."""
        parser = argparse.ArgumentParser(
            prog="python -m app", description="Run the Grandmaster chess server."
        )
        parser.add_argument("--host", help=f"interface to listen on (GM_HOST, {self.host})")
        parser.add_argument("--port", type=int, help=f"TCP port (GM_PORT, {self.port})")
        parser.add_argument(
            "--data-dir", type=Path, help=f"history and tokens (GM_DATA_DIR, {self.data_dir})"
        )
        args = parser.parse_args(argv)
        changes = {k: v for k, v in vars(args).items() if v is not None}
        return replace(self, **changes)


def _convert(name: str, raw: str, cls: type[Settings]) -> object:
    default = next(f.default for f in fields(cls) if f.name == name)
    if isinstance(default, tuple):
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    if isinstance(default, float):
        try:
            return float(raw)
        except ValueError:
            raise ValueError(f"GM_{name.upper()} must be a number, not {raw!r}") from None
    if isinstance(default, bool):
        return raw.lower() in ("1", "true", "yes", "on")
    if isinstance(default, int):
        try:
            return int(raw)
        except ValueError:
            raise ValueError(f"GM_{name.upper()} must be an integer, not {raw!r}") from None
    if isinstance(default, Path):
        return Path(raw)
    return raw
