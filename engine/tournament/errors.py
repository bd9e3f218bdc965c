"""Why the tournament core refused a command (409 at the HTTP edge, 422 for bad input)."""

from __future__ import annotations

from engine.rules.errors import RuleError


class RoundUnfinished(RuleError):
    """A round is still being played (or scheduled): the next one cannot be paired yet."""

    code = "round_unfinished"


class TournamentFinished(RuleError):
    """Every round has been paired; there is nothing left to pair."""

    code = "tournament_finished"


class NoPairing(RuleError):
    """The pairing engine found no valid pairing (or could not run)."""

    code = "no_pairing"


class TournamentConflict(RuleError):
    """A well-formed request that the tournament's state refuses (a late entry too late...)."""

    code = "conflict"
