"""Swiss pairings through the real engine subprocesses, checked against FIDE's absolute
criteria round after round, and the mapping of engine failures to errors."""

from __future__ import annotations

import os
import random
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from engine.rules.clock import TimeControl
from engine.tournament.errors import NoPairing
from engine.tournament.state import (
    FORFEITS,
    RESULT_POINTS,
    Bye,
    TournamentSetup,
    TournamentState,
    active_players,
    add_player,
    evolve_all,
    next_round,
    pair_round,
    request_bye,
    requested_byes,
    start_round,
    withdraw,
)
from engine.tournament.trf import trf_for_pairing
from engine.tournament.wire import EntrantJSON, PairingResult
from workers.pairing import (
    BbpPairingsEngine,
    PairingEngine,
    PairingFailed,
    Py4SwissEngine,
    engine_from_setting,
)

FAKE_BBP = Path(__file__).resolve().parent.parent / "data" / "fake_bbp.py"
RESULTS: list[PairingResult] = ["1-0", "0-1", "1/2-1/2", "+/-", "-/+", "-/-"]
RESULT_WEIGHTS = [38, 30, 26, 3, 2, 1]


def _entrant(index: int) -> EntrantJSON:
    return {
        "id": f"p{index}",
        "number": 0,
        "name": f"Player {index}",
        "rating": 2700 - 7 * index,
        "title": None,
        "fide_id": None,
        "federation": None,
    }


@dataclass
class History:
    """What the checks need: per player the colours of played games, opponents met over
    the board, pairing-allocated byes received."""

    colours: dict[str, str] = field(default_factory=dict)
    met: set[frozenset[str]] = field(default_factory=set)
    byes: dict[str, int] = field(default_factory=dict)


def _check_round(
    state: TournamentState, round_no: int, pairs: list[tuple[int, int]], history: History
) -> tuple[list[tuple[str, str, str | None]], list[Bye]]:
    """The FIDE absolute criteria for the engine's answer; the boards and byes to record."""
    numbers = state.by_number()
    active = {p.id for p in active_players(state, round_no)}
    boards = [(numbers[w].id, numbers[b].id, None) for w, b in pairs if b]
    allocated = [numbers[w].id for w, b in pairs if not b]
    seated = [p for white, black, _ in boards for p in (white, black)] + allocated
    # Every active player exactly once; nobody absent is paired.
    assert sorted(seated) == sorted(active)
    # The pairing-allocated bye exactly when the count is odd, and once per player.
    assert len(allocated) == len(active) % 2
    for player in allocated:
        assert history.byes.get(player, 0) == 0, f"{player} gets a second bye"
    # Topscorers (over 50% of the maximum before the last round) are exempt from the
    # colour criteria in the last round (C.04.3 A.7).
    points = _points(state)
    last = round_no == state.rounds_total
    topscorer = {p for p in active if last and points[p] > (round_no - 1) / 2}
    for white, black, _ in boards:
        assert frozenset((white, black)) not in history.met, f"rematch {white}-{black}"
        for player, colour in ((white, "W"), (black, "B")):
            sequence = history.colours.get(player, "") + colour
            if player in topscorer:
                continue
            assert abs(sequence.count("W") - sequence.count("B")) <= 2, (player, sequence)
            assert not sequence.endswith(colour * 3), (player, sequence)
    byes = [Bye(p, state.setup.bye_points, "pairing") for p in allocated]
    return boards, byes + requested_byes(state, round_no)


def _points(state: TournamentState) -> dict[str, float]:
    points = {p.id: 0.0 for p in state.players}
    for rnd in state.rounds:
        for pairing in rnd.pairings:
            white, black = RESULT_POINTS[pairing.result]
            points[pairing.white] += white
            points[pairing.black] += black
        for bye in rnd.byes:
            points[bye.player] += bye.points
    return points


async def _play(
    engine: PairingEngine,
    players: int,
    rounds: int,
    seed: int,
    *,
    late_entry: int | None = None,
    withdrawal: int | None = None,
    bye_rate: float = 0.03,
    bye_points: float = 1.0,
) -> TournamentState:
    """A whole seeded tournament: random results, requested byes, a late entry before
    round ``late_entry`` and a withdrawal before round ``withdrawal``."""
    rng = random.Random(seed)
    setup = TournamentSetup(
        id="t",
        name="Simulated Open",
        format="swiss",
        control=TimeControl.from_seconds(5400, 30),
        swiss_rounds=rounds,
        bye_points=bye_points,
    )
    state = TournamentState(setup)
    for index in range(players):
        state = evolve_all(state, add_player(state, _entrant(index)))
    history = History()
    for round_no in range(1, rounds + 1):
        if round_no == late_entry:
            state = evolve_all(state, add_player(state, _entrant(players)))
        if round_no == withdrawal:
            leaver = rng.choice([p.id for p in state.players if p.plays_in(round_no)])
            state = evolve_all(state, withdraw(state, leaver))
        for player in state.players:
            if player.plays_in(round_no) and rng.random() < bye_rate:
                points = rng.choice([0.5, 0.0])
                state = evolve_all(state, request_bye(state, player.id, round_no, points))
        assert next_round(state) == round_no
        pairs = await engine.pair(trf_for_pairing(state, round_no))
        boards, byes = _check_round(state, round_no, pairs, history)
        state = evolve_all(state, pair_round(state, round_no, boards, byes))
        state = evolve_all(state, start_round(state, round_no))
        for board, (white, black, _) in enumerate(boards, start=1):
            result = rng.choices(RESULTS, RESULT_WEIGHTS)[0]
            state = state.with_result(round_no, board, result)
            if result not in FORFEITS:
                # Forfeited games are not played: no colour, and they may be repeated.
                history.met.add(frozenset((white, black)))
                history.colours[white] = history.colours.get(white, "") + "W"
                history.colours[black] = history.colours.get(black, "") + "B"
        for bye in byes:
            if bye.kind == "pairing":
                history.byes[bye.player] = history.byes.get(bye.player, 0) + 1
    return state


# 200 players take most of this test's time (about 18 s): `make test-full` only.
_SIZES = [(8, 5, 1), (9, 6, 2), (31, 9, 3), (64, 9, 4)]
if os.environ.get("GM_TEST_FULL") == "1":
    _SIZES.append((200, 9, 5))


@pytest.mark.parametrize(("players", "rounds", "seed"), _SIZES)
async def test_dutch_pairings_keep_the_absolute_criteria(
    players: int, rounds: int, seed: int
) -> None:
    """Through py4swiss: no rematch, everyone active paired once or the one bye, no second
    bye, colour difference within 2 and no three same colours in a row, every round,
    with requested byes, a late entry and a withdrawal along the way."""
    state = await _play(
        Py4SwissEngine(),
        players,
        rounds,
        seed,
        late_entry=3,
        withdrawal=rounds // 2 + 1,
    )
    assert len(state.rounds) == rounds
    late = state.players[-1]
    assert all(late.id not in (p.white, p.black) for p in state.round(2).pairings)
    leaver = next(p for p in state.players if p.withdrawn_from is not None)
    for rnd in state.rounds[leaver.withdrawn_from - 1 :]:  # type: ignore[operator]
        assert rnd.pairing_of(leaver.id) is None and rnd.bye_of(leaver.id) is None


async def test_half_point_pairing_bye_is_declared_to_the_engine() -> None:
    """With the bye worth 0.5 (XXS PAB=0.5) py4swiss accepts the points and pairs on."""
    state = await _play(Py4SwissEngine(), 11, 4, 7, bye_points=0.5, bye_rate=0.0)
    byes = [b for rnd in state.rounds for b in rnd.byes]
    assert len(byes) == 4 and all(b.points == 0.5 for b in byes)


async def test_no_valid_pairing_is_no_pairing() -> None:
    """Two players who have met cannot meet again: py4swiss exits 1, NoPairing."""
    setup = TournamentSetup(
        id="t", name="Duel", format="swiss", control=TimeControl(60_000, 0), swiss_rounds=2
    )
    state = TournamentState(setup)
    for index in range(2):
        state = evolve_all(state, add_player(state, _entrant(index)))
    state = evolve_all(state, pair_round(state, 1, [("p0", "p1", None)], []))
    state = state.with_result(1, 1, "1-0")
    with pytest.raises(NoPairing, match="no valid pairing exists"):
        await Py4SwissEngine().pair(trf_for_pairing(state, 2))


async def test_invalid_trf_is_pairing_failed_with_exit_3() -> None:
    """A TRF py4swiss cannot read is exit 3, reported with the engine's own words."""
    with pytest.raises(PairingFailed, match=r"exit code 3 \(invalid request") as caught:
        await Py4SwissEngine().pair("001 nonsense\n")
    assert caught.value.exit_code == 3
    assert "invalid TRF" in str(caught.value)


class _NaiveEngine:
    """Pairs the players still to be paired in number order: rematches, repeated byes."""

    name = "naive"

    async def pair(self, trf_text: str) -> list[tuple[int, int]]:
        lines = [line for line in trf_text.splitlines() if line.startswith("001")]
        played = min((len(line) - 89) // 10 for line in lines)
        active = [int(line[4:8]) for line in lines if (len(line) - 89) // 10 == played]
        pairs = [(active[i], active[i + 1]) for i in range(0, len(active) - 1, 2)]
        return pairs + ([(active[-1], 0)] if len(active) % 2 else [])


@pytest.mark.parametrize(("players", "message"), [(9, "second bye"), (10, "rematch")])
async def test_the_checks_catch_a_bad_engine(players: int, message: str) -> None:
    """The criteria above do fail: a naive engine repeats the bye and the pairings."""
    with pytest.raises(AssertionError, match=message):
        await _play(_NaiveEngine(), players, 3, 1, bye_rate=0.0)


# --- an external bbpPairings-compatible executable ---


@pytest.fixture
def fake_bbp(tmp_path: Path) -> str:
    """An executable copy of tests/data/fake_bbp.py run by this test's Python."""
    script = tmp_path / "bbpPairings"
    body = FAKE_BBP.read_text(encoding="utf-8").split("\n", 1)[1]
    script.write_text(f"#!{sys.executable}\n{body}", encoding="utf-8")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


async def test_external_engine_pairs_through_its_cli(fake_bbp: str) -> None:
    """A bbpPairings path from the setting pairs whole tournaments like py4swiss does."""
    engine = engine_from_setting(fake_bbp)
    assert isinstance(engine, BbpPairingsEngine)
    assert "bbpPairings" in engine.name
    state = await _play(engine, 10, 4, 11, withdrawal=3)
    assert len(state.rounds) == 4


@pytest.mark.parametrize(
    ("mode", "error", "message"),
    [
        ("exit1", NoPairing, r"no valid pairing exists for this round .*No valid pairing"),
        ("exit3", PairingFailed, r"exit code 3 \(invalid request or input file\): .*Invalid line"),
        ("exit5", PairingFailed, r"exit code 5 \(file access error\): .*could not be opened"),
        ("garbage", PairingFailed, r"malformed pairings: the engine announced 2 pairs and gave 1"),
    ],
)
async def test_external_engine_failures_map_to_errors(
    fake_bbp: str,
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
    error: type[Exception],
    message: str,
) -> None:
    """Exit 1 is NoPairing; other exits and bad output are PairingFailed saying why."""
    monkeypatch.setenv("FAKE_BBP_MODE", mode)
    state = TournamentState(
        TournamentSetup(
            id="t", name="T", format="swiss", control=TimeControl(60_000, 0), swiss_rounds=3
        )
    )
    for index in range(4):
        state = evolve_all(state, add_player(state, _entrant(index)))
    with pytest.raises(error, match=message):
        await engine_from_setting(fake_bbp).pair(trf_for_pairing(state, 1))


async def test_a_hanging_engine_is_killed_at_the_timeout(
    fake_bbp: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """An engine that never answers is PairingFailed after the timeout, and killed."""
    pidfile = tmp_path / "pid"
    monkeypatch.setenv("FAKE_BBP_MODE", "hang")
    monkeypatch.setenv("FAKE_BBP_PIDFILE", str(pidfile))
    engine = BbpPairingsEngine(fake_bbp, timeout_s=1.0)
    with pytest.raises(PairingFailed, match="did not answer within 1 s") as caught:
        await engine.pair("XXR 1\n")
    assert caught.value.exit_code is None
    pid = int(pidfile.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_engine_from_setting(tmp_path: Path) -> None:
    """Empty or None is py4swiss; a path must be an executable file."""
    for value in (None, ""):
        engine = engine_from_setting(value)
        assert isinstance(engine, Py4SwissEngine)
        assert engine.name == ("FIDE Dutch (C.04.3, rules until 31 Jan 2026), py4swiss 0.3.1")
    with pytest.raises(ValueError, match="not an executable file"):
        engine_from_setting(str(tmp_path / "missing"))
    plain = tmp_path / "plain"
    plain.write_text("not a program")
    with pytest.raises(ValueError, match="not an executable file"):
        engine_from_setting(str(plain))
