"""Hostile chess input against a real server subprocess: generated FENs, SAN and UCI moves,
pushed PGN and spectators' WebSocket frames. None may cause a 500, a crash or a Traceback
in the server's log, and none may change anything it refuses; what it accepts must be what
the input said (python-chess, read independently, is the oracle)."""

from __future__ import annotations

import base64
import io
import json
import os
import random
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import chess
import chess.pgn
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.app.test_fuzz import json_values
from tests.conftest import ServerProcess, examples

OPERATOR = {"Authorization": "Bearer operator-secret-token"}
# pyproject's 120 s per test, scaled with the examples of a full run.
pytestmark = pytest.mark.timeout(examples(120))
REFUSED = {400, 403, 404, 409, 413, 422}
FUZZ = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@dataclass
class Target:
    """The server under fuzzing, and what the tests count about it."""

    client: httpx.Client
    proc: ServerProcess
    tried: dict[str, int] = field(default_factory=dict)

    @property
    def port(self) -> int:
        return self.proc.port

    def count(self, kind: str) -> None:
        self.tried[kind] = self.tried.get(kind, 0) + 1


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """One real server for the whole module."""
    proc = ServerProcess(
        Path(tmp_path_factory.mktemp("fuzz-chess")) / "data",
        env={
            "GM_PLAYER_REQUESTS_PER_S": "100000",
            "GM_PLAYER_REQUESTS_BURST": "100000",
            # No periodic clock events: a game's seq then changes only by what a test sent.
            "GM_CLOCK_CHECKPOINT_S": "100000",
        },
    )
    proc.start()
    try:
        with httpx.Client(base_url=proc.url, timeout=60) as client:
            found = Target(client, proc)
            yield found
        # What a run tried, for the README's figures (pytest -s shows it).
        print(f"\nfuzzed inputs: {found.tried}")
    finally:
        proc.stop()


@pytest.fixture
def target(server: Target) -> Iterator[Target]:
    """The server; what it logs during the test must hold no Traceback, and it must still
    be healthy after."""
    offset = server.proc.log_path.stat().st_size
    yield server
    log = server.proc.log_since(offset)
    assert "Traceback" not in log, log
    assert server.client.get("/healthz").status_code == 200


def post_json(
    client: httpx.Client, url: str, body: dict[str, Any], headers: dict[str, str]
) -> httpx.Response:
    """POST ``body`` as JSON with every non-ASCII character escaped, as any client may write
    it: a lone surrogate (which no UTF-8 text holds) arrives as an escape such as ``\\ud800``."""
    return client.post(
        url, content=json.dumps(body), headers={**headers, "Content-Type": "application/json"}
    )


def as_bytes(text: str) -> bytes:
    """``text`` in UTF-8, a lone surrogate written as the three bytes UTF-8 forbids."""
    return text.encode("utf-8", "surrogatepass")


def assert_error(r: httpx.Response) -> None:
    """A refusal in the contract's format."""
    assert r.status_code in REFUSED, (r.status_code, r.text)
    error = r.json()["error"]
    assert isinstance(error["code"], str) and isinstance(error["message"], str)


def random_board(seed: int, plies: int) -> chess.Board:
    """The position after ``plies`` random legal moves (fewer if the game ends first)."""
    rng = random.Random(seed)
    board = chess.Board()
    for _ in range(plies):
        moves = list(board.legal_moves)
        if not moves or board.is_game_over():
            break
        board.push(rng.choice(moves))
    return board


# --- FEN ---

FEN_CHARS = "pnbrqkPNBRQK12345678/ -wbKQkqacdefgh09"
FAMOUS = [
    chess.STARTING_FEN,
    "r3k2r/pPppqpb1/bn2pnp1/3PN3/1p2P3/2N2Q1p/PPPBBPPP/R3K2R w KQkq - 0 1",
    "4k3/1P6/8/8/8/8/6p1/4K2R w K - 0 1",
    "rnbqkbnr/ppp1p1pp/8/3pPp2/8/8/PPPP1PPP/RNBQKBNR w KQkq f6 0 3",
    "8/8/8/8/8/8/8/K1k5 w - - 0 1",
    "7k/5Q2/6K1/8/8/8/8/8 b - - 0 1",
]

# Positions with promotions (by either side, with and without capture), castling on both
# wings and en passant to play.
SPECIAL = [
    "1n2k3/P1P5/8/8/8/8/1p4p1/4K2N w - - 0 1",
    "1n2k3/P1P5/8/8/8/8/1p4p1/4K2N b - - 0 1",
    "r3k2r/8/8/8/8/8/8/R3K2R w KQkq - 0 1",
    "r3k2r/8/8/8/8/8/8/R3K2R b KQkq - 0 1",
    "rnbqkbnr/pppp1ppp/8/8/3Pp3/8/PPP1PPPP/RNBQKBNR b KQkq d3 0 3",
]


@st.composite
def valid_fens(draw: st.DrawFn) -> str:
    """A reachable position (a famous one, or after random moves)."""
    if draw(st.booleans()):
        return draw(st.sampled_from(FAMOUS))
    return random_board(draw(st.integers(0, 2**16)), draw(st.integers(0, 80))).fen()


@st.composite
def mutated(draw: st.DrawFn, text: str, alphabet: str) -> str:
    """``text`` with a few characters replaced, inserted or deleted, or fields shuffled.

    A character put in may be any code point, a lone surrogate included: JSON carries one as
    an escape (``post_json``) and a PGN as the bytes UTF-8 forbids (``as_bytes``)."""
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["replace", "insert", "delete", "field", "swap"]))
        fields = text.split(" ")
        if op == "field" and fields:
            i = draw(st.integers(0, len(fields) - 1))
            fields[i] = draw(st.text(alphabet=alphabet, max_size=10) | st.text(max_size=6))
            text = " ".join(fields)
        elif op == "swap" and len(fields) > 1:
            i, j = draw(st.integers(0, len(fields) - 1)), draw(st.integers(0, len(fields) - 1))
            fields[i], fields[j] = fields[j], fields[i]
            text = " ".join(fields)
        else:
            at = draw(st.integers(0, len(text)))
            char = draw(st.sampled_from(alphabet) | st.characters())
            if op == "replace":
                text = text[:at] + char + text[at + 1 :]
            elif op == "insert":
                text = text[:at] + char + text[at:]
            else:
                text = text[:at] + text[at + 1 :]
    return text


fens = st.one_of(
    valid_fens(),
    valid_fens().flatmap(lambda fen: mutated(fen, FEN_CHARS)),
    st.text(alphabet=FEN_CHARS, max_size=90),
    st.text(max_size=120),
)


def fen_verdict(fen: str) -> str | None:
    """The normalised start FEN python-chess makes of ``fen``, or None for an unusable one."""
    if len(fen) > 100:
        return None
    try:
        board = chess.Board(fen)
    except ValueError:
        return None
    if not board.is_valid() or board.outcome() is not None:
        return None
    return board.fen()


def newest_game(client: httpx.Client) -> str | None:
    """The id of the game created last."""
    games = client.get("/api/games", params={"limit": 1}, headers=OPERATOR).json()["games"]
    return games[0]["id"] if games else None


@settings(FUZZ, max_examples=examples(150))
@given(fen=fens)
def test_a_start_fen_is_taken_as_it_reads_or_refused(target: Target, fen: str) -> None:
    """A game from a FEN is created exactly when python-chess reads a legal, undecided
    position from it, and then from that position; otherwise refused, no game made."""
    client = target.client
    target.count("fen")
    before = newest_game(client)
    body = {"white": {"name": "W"}, "black": {"name": "B"}, "clock": {"initial": 600}, "fen": fen}
    r = post_json(client, "/api/games", body, OPERATOR)
    expected = fen_verdict(fen)
    if r.status_code != 201:
        assert_error(r)
        assert expected is None, (fen, r.text)
        assert newest_game(client) == before
        return
    assert expected is not None, fen
    target.count("fen accepted")
    game = r.json()["game"]
    assert game["initial_fen"] == game["fen"] == expected
    assert newest_game(client) == game["id"]
    # The PGN names the position and reads back.
    pgn = client.get(f"/api/games/{game['id']}/pgn")
    assert pgn.status_code == 200
    read = chess.pgn.read_game(io.StringIO(pgn.text))
    assert read is not None and read.headers.get("FEN", chess.STARTING_FEN) == expected


# --- SAN and UCI moves ---


def new_game(client: httpx.Client, board: chess.Board) -> tuple[str, dict[str, str]]:
    """A started game from ``board``'s position: its id and tokens."""
    body = {
        "white": {"name": "W"},
        "black": {"name": "B"},
        "clock": {"initial": 900},
        "fen": board.fen(),
    }
    r = client.post("/api/games", json=body, headers=OPERATOR)
    assert r.status_code == 201, r.text
    created = r.json()
    game_id = created["game"]["id"]
    assert client.post(f"/api/games/{game_id}/start", headers=OPERATOR).is_success
    return game_id, created["tokens"]


@st.composite
def positions(draw: st.DrawFn) -> chess.Board:
    """A position a game may start from: a famous one, or after random moves."""
    if draw(st.sampled_from([True, True, False])):
        board = chess.Board(draw(st.sampled_from(FAMOUS + SPECIAL)))
    else:
        board = random_board(draw(st.integers(0, 2**16)), draw(st.integers(0, 60)))
    if fen_verdict(board.fen()) is None:
        board = chess.Board()
    return board


SAN_CHARS = "NBRQKabcdefgh12345678xO0-=+#!?qrbn "


@st.composite
def move_texts(draw: st.DrawFn, board: chess.Board) -> str:
    """A legal move as SAN or UCI, mutated or not, or random text."""
    legal = sorted(board.legal_moves, key=lambda m: m.uci())
    # Promotions, castling and en passant are rare among random moves: half the time the
    # move is one of them, where the position has any.
    special = [m for m in legal if m.promotion or board.is_castling(m) or board.is_en_passant(m)]
    move = draw(
        st.sampled_from(special) if special and draw(st.booleans()) else st.sampled_from(legal)
    )
    san, uci = board.san(move), move.uci()
    kind = draw(st.sampled_from(["exact", "exact", "mutated", "mutated", "named", "random"]))
    if kind == "exact":
        return draw(st.sampled_from([san, uci]))
    if kind == "mutated":
        return draw(st.one_of(mutated(san, SAN_CHARS), mutated(uci, "abcdefgh12345678qrbnQ ")))
    if kind == "named":
        return draw(
            st.sampled_from(["0-0", "O-O-O", "0-0-0", "--", "0000", "Z0", "null", "e8=Q", "a1a1"])
        )
    return draw(st.text(alphabet=SAN_CHARS, max_size=14) | st.text(max_size=16))


def reads_as(board: chess.Board, text: str) -> chess.Move | None:
    """The legal move python-chess reads ``text`` as (UCI, else SAN with 0-0 castling and
    !? suffixes allowed), or None."""
    for parse in (board.parse_uci, lambda t: board.parse_san(t.replace("0", "O").rstrip("!?"))):
        try:
            move = parse(text)
        except ValueError:
            continue
        if move and move in board.legal_moves:
            return move
    return None


@settings(FUZZ, max_examples=examples(200))
@given(data=st.data())
def test_a_move_is_applied_as_it_reads_or_refused(target: Target, data: st.DataObject) -> None:
    """A move text is either refused with nothing changed, or applied as exactly the legal
    move it reads as; the player to move always gets an exact SAN or UCI accepted."""
    client = target.client
    target.count("move")
    board = data.draw(positions(), label="position")
    game_id, tokens = new_game(client, board)
    game = client.get(f"/api/games/{game_id}").json()
    text = data.draw(move_texts(board), label="move")
    mover = "white" if board.turn == chess.WHITE else "black"
    who = data.draw(st.sampled_from(["mover", "mover", "other", "operator"]), label="who")
    ply = data.draw(st.sampled_from([None, None, None, 0, 1]), label="ply")
    headers = OPERATOR
    if who != "operator":
        colour = mover if who == "mover" else ("black" if mover == "white" else "white")
        headers = {"Authorization": f"Bearer {tokens[colour]}"}
    body: dict[str, Any] = {"move": text}
    if ply is not None:
        body["ply"] = ply
    r = post_json(client, f"/api/games/{game_id}/moves", body, headers)
    after = client.get(f"/api/games/{game_id}").json()
    meant = reads_as(board, text)
    if meant is not None and meant.promotion:
        target.count("promotion")
    if r.status_code != 200:
        assert_error(r)
        assert (after["seq"], after["moves"]) == (game["seq"], game["moves"]), text
        exact = text in (board.san(m) for m in board.legal_moves) or text in (
            m.uci() for m in board.legal_moves
        )
        if who != "other" and ply in (None, game["ply"]) and exact:
            raise AssertionError(f"an exact legal move was refused: {text!r}: {r.text}")
        return
    assert who != "other", (text, r.text)
    assert meant is not None, (text, r.text)
    assert after["ply"] == game["ply"] + 1
    assert after["moves"][-1]["uci"] == meant.uci(), (text, after["moves"][-1])
    target.count("move accepted")


# --- PGN pushed to relay routes ---

NAMES = ["Carlsen, Magnus", "Nakamura, Hikaru", "Caruana, Fabiano", "Firouzja, Alireza"]
PGN_CHARS = '[]"{}()$;%.*-/0123456789abcdefghNBRQKOx+#=!? \n'


@st.composite
def round_pgns(draw: st.DrawFn) -> str:
    """A round's PGN as boards write it: a few games, tags, clocks, results."""
    parts = []
    for board_no in range(1, draw(st.integers(1, 4)) + 1):
        white, black = draw(st.sampled_from(NAMES)), draw(st.sampled_from(NAMES))
        board = random_board(draw(st.integers(0, 2**16)), 0)
        game = chess.pgn.Game()
        game.headers.update(
            {
                "White": white,
                "Black": black,
                "Board": str(board_no),
                "Round": f"1.{board_no}",
                "Result": draw(st.sampled_from(["*", "*", "1-0", "0-1", "1/2-1/2"])),
            }
        )
        rng = random.Random(draw(st.integers(0, 2**16)))
        node: chess.pgn.GameNode = game
        for i in range(draw(st.integers(0, 30))):
            moves = list(board.legal_moves)
            if not moves:
                break
            move = rng.choice(moves)
            node = node.add_variation(move)
            node.set_clock(5400 - 30 * i)
            board.push(move)
        parts.append(str(game) + "\n\n")
    return "".join(parts)


pgns = st.one_of(
    round_pgns(),
    round_pgns().flatmap(lambda text: mutated(text, PGN_CHARS)),
    round_pgns().map(lambda text: text.replace(" *", "")),
    st.text(alphabet=PGN_CHARS, max_size=300),
    st.text(max_size=200),
    st.integers(1, 2000).map(lambda n: "(" * n + "1. e4 *"),
    st.integers(100, 140).map(
        lambda n: "".join(f'[White "W{i}"]\n[Black "B{i}"]\n\n1. e4 *\n\n' for i in range(n))
    ),
)


@dataclass
class Broadcast:
    """The broadcast round and the relay round robin PGN is pushed to."""

    tid: str = ""
    round_id: str = ""
    relay_tid: str = ""


BROADCAST = Broadcast()


def broadcast(client: httpx.Client) -> Broadcast:
    """Made once: a broadcast with one round, and a relay round robin with round 1 paired."""
    if not BROADCAST.tid:
        body = {"name": "Fuzz", "format": "broadcast", "mode": "relay", "clock": {"initial": 5400}}
        BROADCAST.tid = client.post("/api/tournaments", json=body, headers=OPERATOR).json()["id"]
        r = client.post(f"/api/tournaments/{BROADCAST.tid}/rounds", json={}, headers=OPERATOR)
        BROADCAST.round_id = r.json()["id"]
        body = {
            "name": "Fuzz relay",
            "format": "round_robin",
            "mode": "relay",
            "clock": {"initial": 5400},
            "players": [{"name": n} for n in NAMES],
        }
        BROADCAST.relay_tid = client.post("/api/tournaments", json=body, headers=OPERATOR).json()[
            "id"
        ]
        assert client.post(
            f"/api/tournaments/{BROADCAST.relay_tid}/rounds", json={}, headers=OPERATOR
        ).is_success
    return BROADCAST


def games_of(client: httpx.Client, tid: str) -> dict[str, tuple[int, int, str]]:
    """Every game on a board of the tournament: (seq, ply, result) by id."""
    data = client.get(f"/api/tournaments/{tid}", headers=OPERATOR).json()
    ids = [p["game"] for r in data["rounds"] for p in r["pairings"] if p["game"]]
    games = [client.get(f"/api/games/{game_id}", headers=OPERATOR).json() for game_id in ids]
    return {g["id"]: (g["seq"], g["ply"], g["result"]) for g in games}


def boards_of(client: httpx.Client, tid: str) -> int:
    data = client.get(f"/api/tournaments/{tid}", headers=OPERATOR).json()
    return sum(len(r["pairings"]) for r in data["rounds"])


def assert_accounted(
    before: dict[str, tuple[int, int, str]],
    after: dict[str, tuple[int, int, str]],
    reports: list[dict[str, Any]],
) -> None:
    """Every game the push changed or made is one its reports say it changed or made."""
    by_game = {r["game"]: r for r in reports if r["game"] is not None}
    for game_id, now in after.items():
        then = before.get(game_id)
        if then == now:
            continue
        report = by_game.get(game_id)
        assert report is not None, ("a game changed that no report names", game_id, reports)
        if then is None:
            continue
        assert report["moves_added"] > 0 or report["corrected"] or now[2] != then[2], (
            "a game changed that its report says was not",
            report,
            then,
            now,
        )
        if not report["corrected"]:
            assert now[1] == then[1] + report["moves_added"], (report, then, now)


@settings(FUZZ, max_examples=examples(60))
@given(text=pgns, raw=st.booleans(), target_kind=st.sampled_from(["broadcast", "relay"]))
def test_pushed_pgn_changes_only_what_its_reports_say(
    target: Target, text: str, raw: bool, target_kind: str
) -> None:
    """A round's PGN pushed to Grandmaster's route is answered game by game; every game it
    changed or made is in the answer, and pushing the same text again changes nothing."""
    client = target.client
    target.count("pgn")
    where = broadcast(client)
    tid = where.tid if target_kind == "broadcast" else where.relay_tid
    if target_kind == "broadcast":
        # An empty round each time (the relay round robin keeps its games: later pushes
        # correct them), so that a failure replays the same way.
        reset = client.post(f"/api/broadcast/round/{where.round_id}/reset", headers=OPERATOR)
        assert reset.status_code == 200
    content = as_bytes(text) if not raw else text.encode("utf-8", "replace")[::-1]
    headers = {**OPERATOR, "Content-Type": "application/x-chess-pgn"}
    url = f"/api/tournaments/{tid}/rounds/1/pgn"
    before = games_of(client, tid)
    r = client.post(url, content=content, headers=headers)
    if r.status_code != 200:
        assert_error(r)
        assert games_of(client, tid) == before
        return
    after = games_of(client, tid)
    assert_accounted(before, after, r.json()["games"])
    if after != before:
        target.count("pgn that changed games")
    again = client.post(url, content=content, headers=headers)
    assert again.status_code == 200, again.text
    assert games_of(client, tid) == after, "the same push changed the round again"


@settings(FUZZ, max_examples=examples(60))
@given(text=pgns, raw=st.binary(max_size=200), use_raw=st.booleans())
def test_lichess_pushes_are_answered_per_game(
    target: Target, text: str, raw: bytes, use_raw: bool
) -> None:
    """A push to lichess's push route is always a 200 listing the games (or lichess's error
    format), and changes no more games than it reports as read."""
    client = target.client
    target.count("lichess push")
    where = broadcast(client)
    # Each push starts from an empty round, so that a failure replays the same way.
    reset = client.post(f"/api/broadcast/round/{where.round_id}/reset", headers=OPERATOR)
    assert reset.status_code == 200
    before = games_of(client, where.tid)
    body = raw if use_raw else as_bytes(text)
    r = client.post(f"/api/broadcast/round/{where.round_id}/push", content=body, headers=OPERATOR)
    if not body.strip():
        # No PGN at all is the one push refused whole, in lichess's error format.
        assert r.status_code == 400, r.text
        assert isinstance(r.json()["error"], str)
        assert games_of(client, where.tid) == before
        return
    assert r.status_code == 200, r.text
    lines = r.json()["games"]
    assert all(("moves" in line) != ("error" in line) for line in lines), lines
    # A game with an error line may have taken the moves before its error.
    after = games_of(client, where.tid)
    changed = [g for g, now in after.items() if before.get(g) != now]
    assert len(changed) <= len(lines), (changed, lines)
    if changed:
        target.count("lichess push that changed games")
    assert boards_of(client, where.tid) <= len(lines)


# --- spectators' WebSocket frames ---

TEXT, BINARY, CONTINUATION, CLOSE, PING, PONG = 1, 2, 0, 8, 9, 10
ALLOWED_CLOSE = {1000, 1002, 1003, 1007, 1008, 1009}


def ws_frame(
    opcode: int, payload: bytes, *, fin: bool = True, rsv: int = 0, mask: bool = True
) -> bytes:
    """One client frame as RFC 6455 lays it out (masked with a fixed key)."""
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    bit = 0x80 if mask else 0
    n = len(payload)
    if n < 126:
        head += bytes([bit | n])
    elif n < 65536:
        head += bytes([bit | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([bit | 127]) + n.to_bytes(8, "big")
    if mask:
        key = b"\x1f\x2e\x3d\x4c"
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
        head += key
    return head + payload


def read_frames(data: bytes) -> list[tuple[int, bytes]]:
    """The server's frames (never masked) in ``data``; a cut last frame is left out."""
    frames = []
    at = 0
    while at + 2 <= len(data):
        opcode, n = data[at] & 0x0F, data[at + 1] & 0x7F
        assert not data[at + 1] & 0x80, "a server frame is masked"
        at += 2
        if n == 126:
            n, at = int.from_bytes(data[at : at + 2], "big"), at + 2
        elif n == 127:
            n, at = int.from_bytes(data[at : at + 8], "big"), at + 8
        if at + n > len(data):
            break
        frames.append((opcode, data[at : at + n]))
        at += n
    return frames


def close_codes_sent(sent: list[bytes]) -> set[int]:
    """The close codes in the client's well-formed close frames (a server echoes them)."""
    codes = set()
    for data in sent:
        at = 0
        while at + 2 <= len(data) and data[at + 1] & 0x80:
            opcode, n = data[at] & 0x0F, data[at + 1] & 0x7F
            at += 2
            if n == 126:
                n, at = int.from_bytes(data[at : at + 2], "big"), at + 2
            elif n == 127:
                n, at = int.from_bytes(data[at : at + 8], "big"), at + 8
            key, at = data[at : at + 4], at + 4
            payload = bytes(b ^ key[i % 4] for i, b in enumerate(data[at : at + n]))
            at += n
            if opcode == CLOSE and len(payload) >= 2:
                codes.add(int.from_bytes(payload[:2], "big"))
    return codes


invalid_utf8 = (
    st.binary(min_size=1, max_size=40)
    .map(lambda b: b + b"\xff\xc0")
    .filter(lambda b: not _decodes(b))
)


def _decodes(data: bytes) -> bool:
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True


pings = st.sampled_from(["ping", "null", '{"type":"ping"}', '{"type": "ping"}', " ping\n", "PING"])
frames = st.one_of(
    pings.map(lambda t: ws_frame(TEXT, t.encode())),
    json_values.map(lambda v: ws_frame(TEXT, json.dumps(v).encode())),
    st.text(max_size=64).map(lambda t: ws_frame(TEXT, t.encode())),
    st.text(min_size=700, max_size=3000).map(lambda t: ws_frame(TEXT, t.encode())),
    invalid_utf8.map(lambda b: ws_frame(TEXT, b)),
    st.binary(max_size=64).map(lambda b: ws_frame(BINARY, b)),
    st.binary(min_size=1025, max_size=70000).map(lambda b: ws_frame(BINARY, b)),
    st.binary(max_size=125).map(lambda b: ws_frame(PING, b)),
    st.binary(max_size=200).map(lambda b: ws_frame(PING, b)),
    st.binary(max_size=20).map(lambda b: ws_frame(PONG, b)),
    st.binary(max_size=40).map(lambda b: ws_frame(CLOSE, b)),
    pings.map(
        lambda t: ws_frame(TEXT, t.encode()[:2], fin=False) + ws_frame(CONTINUATION, t.encode()[2:])
    ),
    st.binary(max_size=20).map(lambda b: ws_frame(CONTINUATION, b)),
    st.tuples(st.integers(3, 15).filter(lambda o: o not in (8, 9, 10)), st.binary(max_size=20)).map(
        lambda t: ws_frame(t[0], t[1])
    ),
    st.tuples(st.integers(1, 7), st.binary(max_size=20)).map(
        lambda t: ws_frame(TEXT, t[1], rsv=t[0])
    ),
    pings.map(lambda t: ws_frame(TEXT, t.encode(), mask=False)),
    st.binary(min_size=1, max_size=200),
)


def spectate(port: int, path: str, sent: list[bytes]) -> list[tuple[int, bytes]]:
    """Open a spectator socket by hand, send ``sent`` then a close frame and the end of the
    stream, and return every frame the server sent until it closed the connection."""
    key = base64.b64encode(os.urandom(16)).decode()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(
            (
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, data
            data += chunk
        head, _, data = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        try:
            sock.sendall(b"".join(sent) + ws_frame(CLOSE, (1000).to_bytes(2, "big")))
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server closed first: what it sent is still read below
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
    return read_frames(data)


@dataclass
class Watched:
    """The game and tournament spectators are fuzzed on."""

    game_id: str = ""
    tid: str = ""


WATCHED = Watched()


@settings(FUZZ, max_examples=examples(150))
@given(sent=st.lists(frames, min_size=1, max_size=4), tournament=st.booleans())
def test_spectator_frames_never_change_or_break_anything(
    target: Target, sent: list[bytes], tournament: bool
) -> None:
    """Whatever a spectator sends (text, binary, oversized, invalid UTF-8, JSON garbage,
    bad control frames, bytes that are not frames), it gets JSON text and at most a close
    with a client-error code, never 1011, and the game it watches does not change."""
    client = target.client
    target.count("websocket")
    if not WATCHED.game_id:
        body = {"white": {"name": "W"}, "black": {"name": "B"}, "clock": {"initial": 900}}
        WATCHED.game_id = client.post("/api/games", json=body, headers=OPERATOR).json()["game"][
            "id"
        ]
        client.post(f"/api/games/{WATCHED.game_id}/start", headers=OPERATOR)
        WATCHED.tid = broadcast(client).relay_tid
    before = client.get(f"/api/games/{WATCHED.game_id}").json()
    path = f"/ws/tournaments/{WATCHED.tid}" if tournament else f"/ws/games/{WATCHED.game_id}"
    answer = spectate(target.port, path, sent)
    if any(opcode == CLOSE for opcode, _ in answer):
        target.count("websocket closed by the server")
    for opcode, payload in answer:
        if opcode == TEXT:
            assert isinstance(json.loads(payload), dict)
        elif opcode == CLOSE and len(payload) >= 2:
            code = int.from_bytes(payload[:2], "big")
            assert code in ALLOWED_CLOSE | close_codes_sent(sent), (code, payload)
        else:
            assert opcode in (PING, PONG, CLOSE), opcode
    after = client.get(f"/api/games/{WATCHED.game_id}").json()
    assert (after["seq"], after["moves"]) == (before["seq"], before["moves"])
    assert client.get("/healthz").status_code == 200
