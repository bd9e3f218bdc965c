"""Why the core refused a command.

Every refusal is an exception carrying a stable wire ``code``; the HTTP edge maps
:class:`InvalidInput` to 422 and every :class:`RuleError` to 409. A refused command
never changes state: the core raises before it builds any event.
"""

from __future__ import annotations

from typing import ClassVar


class GameRefusal(Exception):
    """Base of every refusal; ``code`` is what clients match on, the message is for humans."""

    code: ClassVar[str] = "invalid"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(GameRefusal):
    """The command is malformed whatever the position (bad FEN, unparsable move, bad field)."""

    code = "invalid"


class RuleError(GameRefusal):
    """A well-formed command that the current state of the game refuses."""

    code = "conflict"


class IllegalMove(RuleError):
    """The move is not legal in this position (null and pseudo-legal moves included)."""

    code = "illegal_move"


class NotYourTurn(RuleError):
    """A player tried to move, or retry a move, for the side that is not theirs to play."""

    code = "not_your_turn"


class StalePly(RuleError):
    """The sender's ``ply`` is not the game's, and this is no retry of the move played there."""

    code = "stale_ply"


class GameOver(RuleError):
    """The game has finished; nothing more is accepted."""

    code = "game_over"


class NotStarted(RuleError):
    """The game has been created but not started yet."""

    code = "not_started"


class AlreadyStarted(RuleError):
    """``start`` was asked of a game that is already running."""

    code = "already_started"


class NoDrawOffer(RuleError):
    """Accept or decline without a pending draw offer from the opponent."""

    code = "no_draw_offer"


class CannotClaim(RuleError):
    """A draw claim when neither threefold repetition nor the fifty-move rule applies."""

    code = "cannot_claim"
