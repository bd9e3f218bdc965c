"""Settings: the README's tables, validation of every variable, the secret token, immutability."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import get_args

import pydantic
import pytest
import uvicorn.config

from app.settings import LogLevel, Settings, SettingsError, variable_name

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTED_SECTIONS = ("### Configuration", "### Live analysis")
TOKEN = "operator-secret-token-4242"


def readme_rows() -> list[tuple[list[str], str]]:
    """(variables, default cell) of each row of the README's configuration tables."""
    lines = (ROOT / "README.md").read_text().splitlines()
    rows = []
    for heading in DOCUMENTED_SECTIONS:
        start = lines.index(heading) + 1
        for line in lines[start:]:
            if line.startswith("#"):
                break
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            if not line.startswith("|") or len(cells) < 2:
                continue
            variables = re.findall(r"`(GM_[A-Z0-9_]+)`", cells[0])
            if variables:
                rows.append((variables, cells[1]))
    return rows


def documented_defaults() -> list[tuple[str, str]]:
    """(variable, default as written) wherever a row states plain values, one per variable."""
    pairs = []
    for variables, cell in readme_rows():
        values = re.findall(r"`([^`]*)`", cell)
        if cell.startswith("empty"):
            values = [""] * len(variables)
        if len(values) == len(variables):
            pairs.extend(zip(variables, values, strict=True))
    return pairs


def field_of(variable: str) -> str:
    return variable.removeprefix("GM_").lower()


def test_readme_tables_are_found() -> None:
    """Both README tables parse into rows, so the tests below check something."""
    variables = [v for vs, _ in readme_rows() for v in vs]
    assert len(variables) >= 30
    assert {"GM_HOST", "GM_PORT", "GM_ANALYSIS_CACHE_SIZE"} <= set(variables)
    assert len(documented_defaults()) >= 25


def test_every_documented_variable_is_a_setting() -> None:
    """Each GM_* variable in the README's tables names a settings field."""
    documented = {v for vs, _ in readme_rows() for v in vs}
    unknown = {v for v in documented if field_of(v) not in Settings.model_fields}
    assert not unknown, f"README documents variables that are not settings: {sorted(unknown)}"


def test_every_setting_is_documented() -> None:
    """Each settings field has its GM_* variable in one of the README's tables."""
    documented = {v for vs, _ in readme_rows() for v in vs}
    missing = {variable_name(f) for f in Settings.model_fields} - documented
    assert not missing, f"settings missing from the README's tables: {sorted(missing)}"


@pytest.mark.parametrize(("variable", "written"), documented_defaults())
def test_documented_default_is_the_default(variable: str, written: str) -> None:
    """A default the README states, read as that variable would be, is the field's default."""
    default = Settings.model_fields[field_of(variable)].default
    if written == "":
        assert default in ("", ()), f"README says {variable} is empty by default"
    else:
        assert getattr(Settings.from_env({variable: written}), field_of(variable)) == default


def env_example() -> dict[str, str]:
    """The variables of .env.example, commented or not, with their values."""
    text = (ROOT / ".env.example").read_text()
    return dict(re.findall(r"^#? ?(GM_[A-Z0-9_]+)=(.*)$", text, flags=re.MULTILINE))


def test_env_example_lists_the_settings_with_their_defaults() -> None:
    """.env.example names every setting but the three the image sets, each with its default."""
    example = env_example()
    set_by_image = {"GM_HOST", "GM_PORT", "GM_DATA_DIR"}
    assert set(example) == {variable_name(f) for f in Settings.model_fields} - set_by_image
    assert example["GM_OPERATOR_TOKEN"] == ""
    settings = Settings.from_env(example)
    for variable in set(example) - {"GM_ENGINE"}:  # the image runs Stockfish
        field = field_of(variable)
        assert getattr(settings, field) == Settings.model_fields[field].default, variable


def test_environment_variables_are_read() -> None:
    """GM_<FIELD> sets each kind of field; origins are comma-separated; empty means unset."""
    settings = Settings.from_env(
        {
            "GM_PORT": "9001",
            "GM_DATA_DIR": "/srv/gm",
            "GM_ANALYSIS": "0",
            "GM_ACCESS_LOG": "yes",
            "GM_RELAY_POLL_S": "0.5",
            "GM_LOG_LEVEL": "WARNING",
            "GM_ORIGINS": "https://a.example, https://b.example:8443,",
            "GM_HOST": "",
            "OTHER": "ignored",
        }
    )
    assert settings.port == 9001
    assert settings.data_dir == Path("/srv/gm")
    assert settings.analysis is False
    assert settings.access_log is True
    assert settings.relay_poll_s == 0.5
    assert settings.log_level == "warning"
    assert settings.origins == ("https://a.example", "https://b.example:8443")
    assert settings.host == "127.0.0.1"


def test_from_env_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a mapping, from_env reads os.environ; the constructor never does."""
    monkeypatch.setenv("GM_PORT", "9002")
    assert Settings.from_env().port == 9002
    assert Settings().port == 8000


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({"GM_ANALYSIS": "ture"}, "GM_ANALYSIS"),
        ({"GM_ACCESS_LOG": "maybe"}, "GM_ACCESS_LOG"),
        ({"GM_PORT": "abc"}, "GM_PORT"),
        ({"GM_PORT": "70000"}, "GM_PORT"),
        ({"GM_PORT": "-1"}, "GM_PORT"),
        ({"GM_CLOCK_CHECKPOINT_S": "-1"}, "GM_CLOCK_CHECKPOINT_S"),
        ({"GM_RELAY_POLL_S": "0"}, "GM_RELAY_POLL_S"),
        ({"GM_WS_PING_INTERVAL_S": "nan"}, "GM_WS_PING_INTERVAL_S"),
        ({"GM_PAIRING_TIMEOUT_S": "inf"}, "GM_PAIRING_TIMEOUT_S"),
        ({"GM_MAX_BODY_BYTES": "-5"}, "GM_MAX_BODY_BYTES"),
        ({"GM_SPECTATOR_BUFFER_BYTES": "16k"}, "GM_SPECTATOR_BUFFER_BYTES"),
        ({"GM_PLAYER_REQUESTS_BURST": "0.5"}, "GM_PLAYER_REQUESTS_BURST"),
        ({"GM_ANALYSIS_PROCESSES": "-1"}, "GM_ANALYSIS_PROCESSES"),
        ({"GM_ANALYSIS_MAX_DEPTH": "0"}, "GM_ANALYSIS_MAX_DEPTH"),
        ({"GM_ANALYSIS_MIN_TIME_S": "6"}, "GM_ANALYSIS_MIN_TIME_S"),
        ({"GM_ANALYSIS_MAX_TIME_S": "0.05"}, "GM_ANALYSIS_MAX_TIME_S"),
        ({"GM_LOG_LEVEL": "verbose"}, "GM_LOG_LEVEL"),
        ({"GM_ENGINE": "stockfish"}, "GM_ENGINE"),
        ({"GM_ORIGINS": "https://ok.example,example.org"}, "GM_ORIGINS"),
        ({"GM_ORIGINS": "https://example.org/"}, "GM_ORIGINS"),
    ],
)
def test_bad_value_is_refused_naming_the_variable(environ: dict[str, str], variable: str) -> None:
    """A value that is not of its type or out of range raises one line naming its variable."""
    with pytest.raises(SettingsError) as raised:
        Settings.from_env(environ)
    message = str(raised.value)
    assert variable in message
    assert "\n" not in message
    assert isinstance(raised.value, ValueError)


def test_every_bad_value_is_reported() -> None:
    """Several bad variables are all named in the one line."""
    with pytest.raises(SettingsError, match=r"GM_PORT=.*; GM_ANALYSIS="):
        Settings.from_env({"GM_PORT": "x", "GM_ANALYSIS": "x"})


def test_flags_override_and_are_validated() -> None:
    """--host/--port/--data-dir override the environment, and a bad one names the flag."""
    base = Settings.from_env({"GM_PORT": "9003", "GM_OPERATOR_TOKEN": TOKEN})
    settings = base.with_args(["--port", "9004", "--data-dir", "/tmp/gm"])
    assert (settings.port, settings.data_dir) == (9004, Path("/tmp/gm"))
    assert settings.operator_token_value() == TOKEN
    with pytest.raises(SettingsError, match=r"^--port=70000: "):
        base.with_args(["--port", "70000"])


def test_bad_value_stops_the_server_with_status_2(tmp_path: Path) -> None:
    """``python -m app`` with GM_PORT=70000 exits with status 2 and names GM_PORT on stderr."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("GM_")}
    data_dir = tmp_path / "data"
    environ.update(GM_PORT="70000", GM_DATA_DIR=str(data_dir), GM_ANALYSIS="0")
    result = subprocess.run(
        [sys.executable, "-m", "app"],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: GM_PORT=")
    assert not data_dir.exists()


def test_operator_token_is_never_shown() -> None:
    """repr, str, format and JSON dumps of settings mask the token; the value is asked for."""
    for settings in (
        Settings.from_env({"GM_OPERATOR_TOKEN": TOKEN}),
        Settings(operator_token=TOKEN),
        Settings.from_env({"GM_OPERATOR_TOKEN": TOKEN}).with_args([]),
    ):
        shown = [repr(settings), str(settings), f"{settings}", settings.model_dump_json()]
        assert all(TOKEN not in text for text in shown)
        assert settings.operator_token_value() == TOKEN
    assert Settings().operator_token_value() is None


def test_token_is_not_echoed_in_errors() -> None:
    """An error about the token names GM_OPERATOR_TOKEN without quoting the value."""
    # No string from the environment is a bad token today; a list stands in for a future rule.
    with pytest.raises(SettingsError) as raised:
        Settings._validated({"operator_token": [TOKEN]}, variable_name)
    assert "GM_OPERATOR_TOKEN" in str(raised.value)
    assert TOKEN not in str(raised.value)


def test_settings_are_frozen() -> None:
    """Settings cannot be changed once built."""
    settings = Settings()
    with pytest.raises(pydantic.ValidationError):
        settings.port = 1  # type: ignore[misc]
    assert settings.port == 8000


def test_log_levels_are_uvicorns() -> None:
    """GM_LOG_LEVEL accepts exactly the levels uvicorn knows."""
    assert set(get_args(LogLevel)) == set(uvicorn.config.LOG_LEVELS)
