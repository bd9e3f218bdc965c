"""Whole games replayed through the HTTP API, read back from the PGN export with python-chess.

The games live in ``tests/data/games/*.pgn``; their ``[%clk]`` comments are the board clocks
after each move. Server games run on the fake clock: before each move it is advanced by the
time the mover spent, so every exported ``[%clk]`` is known to the millisecond.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import chess
import chess.pgn
import httpx
import pytest

from tests.conftest import FakeTime, LiveServer

GAMES_DIR = Path(__file__).resolve().parent.parent / "data" / "games"
SEVEN_TAG_ROSTER = ("Event", "Site", "Date", "Round", "White", "Black", "Result")


@dataclass(frozen=True, slots=True)
class Source:
    """A game as written in its source PGN: moves, board clocks and time control."""

    game: chess.pgn.Game
    initial_ms: int
    increment_ms: int

    @classmethod
    def read(cls, name: str) -> Source:
        """Parse ``tests/data/games/<name>``; the file must be one error-free game with clocks."""
        with (GAMES_DIR / name).open(encoding="utf-8") as stream:
            game = chess.pgn.read_game(stream)
        assert game is not None
        assert game.errors == []
        initial_s, increment_s = game.headers["TimeControl"].split("+")
        return cls(game, int(initial_s) * 1000, int(increment_s) * 1000)

    @property
    def nodes(self) -> list[chess.pgn.ChildNode]:
        """The mainline, one node per half-move."""
        return list(self.game.mainline())

    @property
    def moves(self) -> list[chess.Move]:
        """The mainline moves."""
        return list(self.game.mainline_moves())

    @property
    def clocks_ms(self) -> list[int]:
        """The board clock after each move, in milliseconds; every move must have one."""
        clocks = pgn_clocks_ms(self.game)
        assert None not in clocks
        return [ms for ms in clocks if ms is not None]

    def body(self, mode: str) -> dict[str, Any]:
        """``POST /api/games`` for this game."""
        body: dict[str, Any] = {
            "white": {"name": self.game.headers["White"]},
            "black": {"name": self.game.headers["Black"]},
            "clock": {"initial": self.initial_ms // 1000, "increment": self.increment_ms // 1000},
            "mode": mode,
        }
        if "FEN" in self.game.headers:
            body["fen"] = self.game.headers["FEN"]
        return body


def pgn_clocks_ms(game: chess.pgn.Game) -> list[int | None]:
    """Each mainline move's ``[%clk]`` in milliseconds (None where it has none)."""
    clocks = (node.clock() for node in game.mainline())
    return [None if seconds is None else round(seconds * 1000) for seconds in clocks]


def spelling(board: chess.Board, move: chess.Move, index: int) -> str:
    """SAN or UCI, so that each side alternates spellings from one of its moves to the next."""
    return board.san(move) if index % 4 in (0, 3) else move.uci()


async def post_move(
    server: LiveServer, game_id: str, payload: dict[str, Any], token: str | None
) -> httpx.Response:
    """``POST /api/games/{id}/moves`` with ``token`` (the operator's when None)."""
    return await server.client.post(
        f"/api/games/{game_id}/moves", json=payload, headers=server.auth(token)
    )


async def claim(server: LiveServer, game_id: str, token: str) -> httpx.Response:
    """A player's draw claim."""
    return await server.client.post(
        f"/api/games/{game_id}/draw", json={"action": "claim"}, headers=server.auth(token)
    )


async def assert_final_state(
    server: LiveServer,
    game_id: str,
    source: Source,
    *,
    result: str,
    termination: str,
    clocks: list[int],
    white_ms: int,
    black_ms: int,
) -> None:
    """The game as the API shows it matches python-chess's replay of the source."""
    board = source.game.board()
    expected_moves = []
    for move, clock_ms in zip(source.moves, clocks, strict=True):
        expected_moves.append({"uci": move.uci(), "san": board.san(move), "clock_ms": clock_ms})
        board.push(move)
    r = await server.client.get(f"/api/games/{game_id}")
    assert r.status_code == 200, r.text
    game = r.json()
    assert (game["status"], game["result"], game["termination"]) == (
        "finished",
        result,
        termination,
    )
    assert game["ply"] == len(source.moves)
    assert game["moves"] == expected_moves
    assert game["fen"] == board.fen()
    assert game["clock"] == {"white_ms": white_ms, "black_ms": black_ms, "running": None}


async def assert_pgn_reads_back(
    server: LiveServer,
    game_id: str,
    source: Source,
    *,
    result: str,
    termination: str,
    clocks: list[int],
) -> None:
    """The PGN export parses cleanly to the source's moves, with ``result`` and ``clocks``."""
    r = await server.client.get(f"/api/games/{game_id}/pgn")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].split(";")[0] == "application/x-chess-pgn"
    exported = chess.pgn.read_game(io.StringIO(r.text))
    assert exported is not None
    assert exported.errors == []
    headers = exported.headers
    assert all(tag in headers for tag in SEVEN_TAG_ROSTER), dict(headers)
    assert headers["Result"] == result
    assert (headers["White"], headers["Black"]) == (
        source.game.headers["White"],
        source.game.headers["Black"],
    )
    assert headers["TimeControl"] == source.game.headers["TimeControl"]
    assert headers["Termination"] == ("Time forfeit" if termination == "timeout" else "Normal")
    assert exported.board() == source.game.board()
    assert list(exported.mainline_moves()) == source.moves
    assert pgn_clocks_ms(exported) == clocks


SERVER_GAMES = [
    pytest.param("opera_1858.pgn", "checkmate", id="long-castling-checkmate"),
    pytest.param(
        "alekhine_threefold.pgn",
        "threefold_repetition",
        id="en-passant-short-castling-threefold-claim",
    ),
    pytest.param("lasker_trap_flag.pgn", "timeout", id="knight-promotion-long-castling-flag"),
    pytest.param("loyd_stalemate.pgn", "stalemate", id="stalemate"),
    pytest.param("rook_promotion_flag_draw.pgn", "timeout", id="rook-promotion-flag-vs-bare-king"),
]


@pytest.mark.parametrize(("name", "termination"), SERVER_GAMES)
async def test_server_game_replays_to_its_pgn(
    live_fake_time: LiveServer, fake_time: FakeTime, name: str, termination: str
) -> None:
    """Two players' whole game ends as python-chess says and exports with exact clocks."""
    server = live_fake_time
    source = Source.read(name)
    game_id, tokens = await server.started_game(**source.body("server"))
    token = {chess.WHITE: tokens["white"], chess.BLACK: tokens["black"]}
    left = {chess.WHITE: source.initial_ms, chess.BLACK: source.initial_ms}
    board = source.game.board()
    clocks: list[int] = []
    for index, (node, clock_ms) in enumerate(zip(source.nodes, source.clocks_ms, strict=True)):
        mover = board.turn
        if termination == "threefold_repetition" and index == len(source.nodes) - 2:
            assert not board.can_claim_draw()
            r = await claim(server, game_id, token[mover])
            assert r.status_code == 409, r.text
            assert r.json()["error"]["code"] == "cannot_claim"
        spent_ms = left[mover] + source.increment_ms - clock_ms
        assert 0 < spent_ms < left[mover]
        fake_time.advance(spent_ms)
        left[mover] = left[mover] - spent_ms + source.increment_ms
        payload = {"move": spelling(board, node.move, index), "ply": index}
        r = await post_move(server, game_id, payload, token[mover])
        assert r.status_code == 200, r.text
        assert r.json()["moves"][-1]["clock_ms"] == left[mover]
        clocks.append(left[mover])
        board.push(node.move)

    if termination == "threefold_repetition":
        assert board.is_repetition(3)
        result = "1/2-1/2"
        r = await claim(server, game_id, token[board.turn])
        assert r.status_code == 200, r.text
    elif termination == "timeout":
        loser = board.turn
        fake_time.advance(left[loser] - 1)
        r = await server.client.get(f"/api/games/{game_id}")
        assert r.json()["status"] == "started"
        assert r.json()["clock"]["white_ms" if loser == chess.WHITE else "black_ms"] == 1
        fake_time.advance(2)
        left[loser] = 0
        attempt = {"move": next(iter(board.legal_moves)).uci(), "ply": len(source.nodes)}
        r = await post_move(server, game_id, attempt, token[loser])
        assert r.status_code == 409, r.text
        assert r.json()["error"]["code"] == "game_over"
        if board.has_insufficient_material(not loser):
            result = "1/2-1/2"
        else:
            result = "0-1" if loser == chess.WHITE else "1-0"
    else:
        outcome = board.outcome()
        assert outcome is not None
        assert outcome.termination.name.lower() == termination
        result = outcome.result()
    assert result == source.game.headers["Result"]

    await assert_final_state(
        server,
        game_id,
        source,
        result=result,
        termination=termination,
        clocks=clocks,
        white_ms=left[chess.WHITE],
        black_ms=left[chess.BLACK],
    )
    await assert_pgn_reads_back(
        server, game_id, source, result=result, termination=termination, clocks=clocks
    )


async def test_relay_game_exports_the_reported_clocks(live: LiveServer) -> None:
    """A relayed game's exported ``[%clk]`` are exactly the board clocks the operator sent."""
    source = Source.read("lasker_thomas_1912.pgn")
    game_id, _ = await live.started_game(**source.body("relay"))
    board = source.game.board()
    clocks = source.clocks_ms
    for index, (node, clock_ms) in enumerate(zip(source.nodes, clocks, strict=True)):
        payload = {"move": spelling(board, node.move, index), "ply": index, "clock_ms": clock_ms}
        r = await post_move(live, game_id, payload, None)
        assert r.status_code == 200, r.text
        board.push(node.move)
    outcome = board.outcome()
    assert outcome is not None
    assert outcome.result() == source.game.headers["Result"]

    await assert_final_state(
        live,
        game_id,
        source,
        result=outcome.result(),
        termination="checkmate",
        clocks=clocks,
        white_ms=clocks[-1],  # 18.Kd2# is the last move, White's
        black_ms=clocks[-2],
    )
    await assert_pgn_reads_back(
        live, game_id, source, result=outcome.result(), termination="checkmate", clocks=clocks
    )
