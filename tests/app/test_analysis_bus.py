"""A core with GM_BUS: its spectators' evaluations come from a remote worker process."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import websockets

from app.analysis import AnalysisService
from app.settings import Settings, SettingsError
from tests.app.test_analysis import Watcher, move, ws_url
from tests.conftest import ROOT, RedisServer, serve
from tests.workers.test_analysis_bus import WorkerProcess
from workers.analysis_bus import BusAnalysisPool


async def test_spectators_get_evals_computed_by_a_remote_worker(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """With a bus, the core runs no engine: a ``python -m workers.analysis`` subprocess
    analyses each new position and the spectators get its evaluations as eval events."""
    worker = WorkerProcess(redis_server.url, tmp_path / "worker.log", "--processes", "1")
    try:
        settings = {"analysis": True, "bus": redis_server.url, "analysis_max_time_s": 2.0}
        async with serve(tmp_path / "data", **settings) as live:
            service: AnalysisService = live.app.state.analysis  # type: ignore[attr-defined]
            pool = service.pool
            assert isinstance(pool, BusAnalysisPool)
            game_id, _ = await live.started_game()
            async with websockets.connect(ws_url(live, f"/ws/games/{game_id}")) as ws:
                watcher = Watcher(ws)
                await watcher.wait_for(lambda w: any(e["ply"] == 0 for e in w.events("eval")))
                [consumer] = pool.workers()
                assert worker.is_consumer(consumer)
                for ply, text in enumerate(["e4", "e5"], start=1):
                    await move(live, game_id, text)
                    await watcher.wait_for(
                        lambda w, p=ply: any(e["ply"] == p for e in w.events("eval"))
                    )
                evals = watcher.events("eval")
                assert {e["engine"] for e in evals} == {"grandmaster-pvs"}
                board_ply = 0
                for event in watcher.events():
                    if event["type"] == "move":
                        board_ply = event["ply"]
                    elif event["type"] == "eval":
                        assert event["ply"] == board_ply
                watcher.task.cancel()
            game = (await live.client.get(f"/api/games/{game_id}")).json()
            assert game["eval"]["ply"] == 2
    finally:
        assert worker.stop() == 0


def test_without_a_bus_nothing_imports_redis(tmp_path: Path) -> None:
    """The embedded default (local analysis processes) runs a whole lifespan without redis."""
    script = textwrap.dedent(
        f"""
        import asyncio, sys
        from app import Settings, create_app
        import app.__main__, workers.analysis

        async def main():
            settings = Settings(data_dir={str(tmp_path / "data")!r}, analysis=True,
                                analysis_processes=1, operator_token="x" * 20)
            app = create_app(settings)
            async with app.router.lifespan_context(app):
                assert type(app.state.analysis.pool).__name__ == "AnalysisPool"

        asyncio.run(main())
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("redis", "hiredis"))
        assert not loaded, loaded
        assert "workers.analysis_bus" not in sys.modules
        """
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()


def test_bus_must_be_a_redis_url() -> None:
    """GM_BUS takes redis://, rediss:// or unix:// URLs (or nothing); anything else is refused."""
    assert Settings.from_env({"GM_BUS": "redis://10.0.0.5:6379/0"}).bus == "redis://10.0.0.5:6379/0"
    assert Settings.from_env({}).bus == ""
    with pytest.raises(SettingsError, match="GM_BUS"):
        Settings.from_env({"GM_BUS": "10.0.0.5:6379"})
