"""The static evaluation written as weights times features, for fitting the weights.

Every term of `engine.search.evaluation` and `engine.search.pawns` is a weight (a middlegame
or an endgame number) times how often the position shows the feature it rewards, counted for
White minus for Black. `WEIGHTS` names them all, in order, with the values the code uses;
`feature_counts` gives a position's counts and phase, and `evaluate_counts` blends
weights and counts exactly as the evaluation does, so that the two agree to the centipawn
before the evaluation's scaling of drawish endings (`engine.search.endings`, not a weighted
sum; tests hold them to it). `bench/tune.py` fits new weights through these and
`format_weights` writes them back in the modules' own layout.

Each piece-square weight holds the piece's material and its placement together (the search
only ever adds the two up); `format_weights` splits them again: what a piece's table moved by
on average goes to its material, the rest to its placement.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import chess

from engine.search import evaluation, pawns
from engine.search.evaluation import MAX_PHASE, PHASE_WEIGHTS, blend

__all__ = [
    "WEIGHTS",
    "Weight",
    "evaluate_counts",
    "feature_counts",
    "format_weights",
    "phase_fraction",
]

_PIECE_NAMES = ("", "pawn", "knight", "bishop", "rook", "queen", "king")


@dataclass(frozen=True, slots=True)
class Weight:
    """One number of the evaluation: its name, whether it is a middlegame one, its value."""

    name: str
    middlegame: bool
    value: int


def _current_weights() -> tuple[Weight, ...]:
    weights: list[Weight] = []
    for middlegame, material, diagrams in (
        (True, evaluation._MG_MATERIAL, evaluation._MG_PST_DIAGRAM),
        (False, evaluation._EG_MATERIAL, evaluation._EG_PST_DIAGRAM),
    ):
        stage = "mg" if middlegame else "eg"
        for piece_type in chess.PIECE_TYPES:
            for index, placement in enumerate(diagrams[piece_type]):
                # Diagram index: the first row is rank 8; `index ^ 56` is White's square.
                square_name = chess.SQUARE_NAMES[index ^ 56]
                name = f"{stage} {_PIECE_NAMES[piece_type]} {square_name}"
                weights.append(Weight(name, middlegame, material[piece_type] + placement))
    pairs = (
        ("bishop pair", evaluation._BISHOP_PAIR),
        ("rook open file", evaluation._ROOK_OPEN_FILE),
        ("rook half-open file", evaluation._ROOK_HALF_OPEN_FILE),
        ("tempo", evaluation._TEMPO),
        ("piece attacked by a pawn", evaluation._PAWN_THREAT),
        ("doubled pawn", pawns._DOUBLED),
        ("isolated pawn", pawns._ISOLATED),
    )
    for name, (mg, eg) in pairs:
        weights.append(Weight(f"mg {name}", True, mg))
        weights.append(Weight(f"eg {name}", False, eg))
    for rank in range(1, 7):
        weights.append(Weight(f"mg passed pawn rank {rank + 1}", True, pawns._PASSED_MG[rank]))
    for rank in range(1, 7):
        weights.append(Weight(f"eg passed pawn rank {rank + 1}", False, pawns._PASSED_EG[rank]))
    weights += [
        Weight("eg passed pawn, their king's distance", False, pawns._PASSED_THEIR_KING_EG),
        Weight("eg passed pawn, own king's distance", False, pawns._PASSED_OWN_KING_EG),
        Weight("mg king shield pawn missing", True, pawns._SHIELD_MISSING_MG),
        Weight("mg king shield file open", True, pawns._SHIELD_OPEN_MG),
        Weight("mg king shield pawn advanced", True, pawns._SHIELD_ADVANCED_MG),
    ]
    return tuple(weights)


WEIGHTS: tuple[Weight, ...] = _current_weights()
"""Every weight of the evaluation, with the value the code uses."""

_INDEX = {weight.name: index for index, weight in enumerate(WEIGHTS)}
_PST_EG = 6 * 64  # the endgame piece-square weights follow the middlegame ones
_BISHOP_PAIR = _INDEX["mg bishop pair"]
_ROOK_OPEN = _INDEX["mg rook open file"]
_ROOK_HALF_OPEN = _INDEX["mg rook half-open file"]
_TEMPO = _INDEX["mg tempo"]
_PAWN_THREAT = _INDEX["mg piece attacked by a pawn"]
_DOUBLED = _INDEX["mg doubled pawn"]
_ISOLATED = _INDEX["mg isolated pawn"]
_PASSED_MG = _INDEX["mg passed pawn rank 2"] - 1  # + the pawn's rank counted from 0
_PASSED_EG = _INDEX["eg passed pawn rank 2"] - 1
_THEIR_KING = _INDEX["eg passed pawn, their king's distance"]
_OWN_KING = _INDEX["eg passed pawn, own king's distance"]
_SHIELD_MISSING = _INDEX["mg king shield pawn missing"]
_SHIELD_OPEN = _INDEX["mg king shield file open"]
_SHIELD_ADVANCED = _INDEX["mg king shield pawn advanced"]


def _add(counts: dict[int, int], index: int, count: int) -> None:
    if count:
        counts[index] = counts.get(index, 0) + count


def _pawn_counts(
    counts: dict[int, int], own: int, their: int, own_king: int, their_king: int, sign: int
) -> None:
    """Add the pawn and king-shelter features of the side moving up the board, times `sign`."""
    files = {square & 7 for square in chess.scan_forward(own)}
    extra = chess.popcount(own) - len(files)
    alone = sum(
        1
        for square in chess.scan_forward(own)
        if (square & 7) - 1 not in files and (square & 7) + 1 not in files
    )
    for stage in (0, 1):
        _add(counts, _DOUBLED + stage, sign * extra)
        _add(counts, _ISOLATED + stage, sign * alone)
    for square in chess.scan_forward(own):
        file, rank = square & 7, square >> 3
        ahead = [s for s in chess.SQUARES if s >> 3 > rank]
        if any(s & 7 == file and own & chess.BB_SQUARES[s] for s in ahead):
            continue  # a pawn behind another of its own side is never passed
        if any(abs((s & 7) - file) <= 1 and their & chess.BB_SQUARES[s] for s in ahead):
            continue
        if 1 <= rank <= 6:
            _add(counts, _PASSED_MG + rank, sign)
            _add(counts, _PASSED_EG + rank, sign)
        if rank >= 3:
            stop = square + 8
            cap = pawns._KING_DISTANCE_CAP
            their_distance = min(chess.square_distance(their_king, stop), cap)
            own_distance = min(chess.square_distance(own_king, stop), cap)
            _add(counts, _THEIR_KING, sign * (rank - 2) * their_distance)
            _add(counts, _OWN_KING, sign * (rank - 2) * own_distance)
    king_file, king_rank = own_king & 7, own_king >> 3
    if king_rank > 1:
        return
    for file in range(max(king_file - 1, 0), min(king_file + 1, 7) + 1):
        shield = [
            s >> 3 for s in chess.scan_forward(own & chess.BB_FILES[file]) if s >> 3 > king_rank
        ]
        if not shield:
            _add(counts, _SHIELD_MISSING, sign)
            if not their & chess.BB_FILES[file]:
                _add(counts, _SHIELD_OPEN, sign)
        elif min(shield) > king_rank + 2:
            _add(counts, _SHIELD_ADVANCED, sign)


def feature_counts(board: chess.Board) -> tuple[dict[int, int], int]:
    """Return the position's feature counts (White's minus Black's, by index into `WEIGHTS`,
    zeros left out) and its phase, uncapped as `evaluate_terms` gives it.

    The board must have one king of each colour.
    """
    counts: dict[int, int] = {}
    phase = 0
    for color, sign in ((chess.WHITE, 1), (chess.BLACK, -1)):
        for piece_type in chess.PIECE_TYPES:
            for square in board.pieces(piece_type, color):
                # White's squares read off the diagram with the rank flipped, Black's as they are.
                index = (piece_type - 1) * 64 + (square ^ 56 if color else square)
                _add(counts, index, sign)
                _add(counts, _PST_EG + index, sign)
                phase += PHASE_WEIGHTS[piece_type]
        bishops = board.pieces_mask(chess.BISHOP, color)
        if chess.popcount(bishops) >= 2:
            _add(counts, _BISHOP_PAIR, sign)
            _add(counts, _BISHOP_PAIR + 1, sign)
        own_pawns = board.pieces_mask(chess.PAWN, color)
        for square in board.pieces(chess.ROOK, color):
            file_mask = chess.BB_FILES[square & 7]
            if not board.pawns & file_mask:
                _add(counts, _ROOK_OPEN, sign)
                _add(counts, _ROOK_OPEN + 1, sign)
            elif not own_pawns & file_mask:
                _add(counts, _ROOK_HALF_OPEN, sign)
                _add(counts, _ROOK_HALF_OPEN + 1, sign)
        if board.turn == color:
            _add(counts, _TEMPO, sign)
            _add(counts, _TEMPO + 1, sign)
            threatened = sum(
                1
                for square in chess.scan_forward(board.occupied_co[color])
                if board.piece_type_at(square) not in (chess.PAWN, chess.KING)
                and board.attackers_mask(not color, square) & board.pawns
            )
            _add(counts, _PAWN_THREAT, sign * threatened)
            _add(counts, _PAWN_THREAT + 1, sign * threatened)
    white_king = board.king(chess.WHITE)
    black_king = board.king(chess.BLACK)
    assert white_king is not None, "the board needs a White king"
    assert black_king is not None, "the board needs a Black king"
    white_pawns = board.pieces_mask(chess.PAWN, chess.WHITE)
    black_pawns = board.pieces_mask(chess.PAWN, chess.BLACK)
    _pawn_counts(counts, white_pawns, black_pawns, white_king, black_king, 1)
    _pawn_counts(
        counts,
        chess.flip_vertical(black_pawns),
        chess.flip_vertical(white_pawns),
        chess.square_mirror(black_king),
        chess.square_mirror(white_king),
        -1,
    )
    return {index: count for index, count in counts.items() if count}, phase


def evaluate_counts(values: Sequence[int], counts: Mapping[int, int], phase: int) -> int:
    """Blend the weights `values` (one per `WEIGHTS`) over `counts` as the evaluation does."""
    mg = eg = 0
    for index, count in counts.items():
        if WEIGHTS[index].middlegame:
            mg += values[index] * count
        else:
            eg += values[index] * count
    return blend(mg, eg, phase)


def phase_fraction(phase: int) -> float:
    """The middlegame share of a position's blend (the endgame gets the rest)."""
    return min(phase, MAX_PHASE) / MAX_PHASE


def format_weights(values: Sequence[int]) -> str:
    """Write `values` (one per `WEIGHTS`) as the constants of the evaluation modules: the
    material and piece-square tables as Python, the other weights as comments naming them."""
    lines: list[str] = []
    for stage, offset, code_material in (
        ("MG", 0, evaluation._MG_MATERIAL),
        ("EG", _PST_EG, evaluation._EG_MATERIAL),
    ):
        material = [0]
        diagrams: list[list[int]] = [[]]
        for piece_type in chess.PIECE_TYPES:
            first = offset + (piece_type - 1) * 64
            table = list(values[first : first + 64])
            # How far the table moved on average (over the squares a piece can stand on: a
            # pawn never stands on the first or last rank) goes to the material, the rest to
            # the placement. The king's material stays zero: both sides always have one.
            moved = [value - WEIGHTS[first + index].value for index, value in enumerate(table)]
            used = moved[8:56] if piece_type == chess.PAWN else moved
            shift = 0 if piece_type == chess.KING else round(sum(used) / len(used))
            value = code_material[piece_type] + shift
            diagram = [entry - value for entry in table]
            if piece_type == chess.PAWN:
                diagram[:8] = diagram[56:] = [0] * 8
            material.append(value)
            diagrams.append(diagram)
        lines.append(f"_{stage}_MATERIAL = {tuple(material)}")
        lines.append(f"_{stage}_PST_DIAGRAM = (")
        lines.append("    (),")
        for piece_type in chess.PIECE_TYPES:
            lines.append(f"    (  # {_PIECE_NAMES[piece_type]}")
            diagram = diagrams[piece_type]
            for row in range(8):
                cells = ",".join(f"{entry:4d}" for entry in diagram[row * 8 : row * 8 + 8])
                lines.append(f"       {cells},")
            lines.append("    ),")
        lines.append(")")
    for weight, value in zip(WEIGHTS[2 * _PST_EG :], values[2 * _PST_EG :], strict=True):
        lines.append(f"# {weight.name}: {value}")
    return "\n".join(lines)
