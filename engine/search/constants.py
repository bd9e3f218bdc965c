"""python-chess's constants under this package's own final names.

Compiled by mypyc, a name read from another module (`chess.PAWN`, `chess.BB_SQUARES`) is
looked up in that module's dictionary at every use; a name declared `Final` here is a C
constant (a literal) or a C static (a table) in the compiled code. Piece types and colours
are python-chess's values, written out; the bitboards and attack tables are python-chess's
own objects.
"""

from __future__ import annotations

from typing import Final

import chess

PAWN: Final = 1
KNIGHT: Final = 2
BISHOP: Final = 3
ROOK: Final = 4
QUEEN: Final = 5
KING: Final = 6
WHITE: Final = True
BLACK: Final = False

BB_ALL: Final = 0xFFFF_FFFF_FFFF_FFFF
BB_LIGHT_SQUARES: Final = chess.BB_LIGHT_SQUARES
BB_DARK_SQUARES: Final = chess.BB_DARK_SQUARES
BB_CORNERS: Final = chess.BB_CORNERS
BB_FILE_A: Final = chess.BB_FILE_A
BB_FILE_H: Final = chess.BB_FILE_H
BB_RANK_1: Final = chess.BB_RANK_1
BB_RANK_2: Final = chess.BB_RANK_2
BB_RANK_3: Final = chess.BB_RANK_3
BB_RANK_4: Final = chess.BB_RANK_4
BB_RANK_5: Final = chess.BB_RANK_5
BB_RANK_6: Final = chess.BB_RANK_6
BB_RANK_7: Final = chess.BB_RANK_7
BB_RANK_8: Final = chess.BB_RANK_8
BB_FILES: Final = chess.BB_FILES
BB_SQUARES: Final = chess.BB_SQUARES
BB_KING_ATTACKS: Final = chess.BB_KING_ATTACKS
BB_KNIGHT_ATTACKS: Final = chess.BB_KNIGHT_ATTACKS
BB_PAWN_ATTACKS: Final = chess.BB_PAWN_ATTACKS
BB_RANK_ATTACKS: Final = chess.BB_RANK_ATTACKS
BB_FILE_ATTACKS: Final = chess.BB_FILE_ATTACKS
BB_DIAG_ATTACKS: Final = chess.BB_DIAG_ATTACKS
BB_RANK_MASKS: Final = chess.BB_RANK_MASKS
BB_FILE_MASKS: Final = chess.BB_FILE_MASKS
BB_DIAG_MASKS: Final = chess.BB_DIAG_MASKS
BB_RAYS: Final = chess.BB_RAYS
