"""JSON shapes of tournaments: the persisted events and the public views (``shared/API.md``)."""

from __future__ import annotations

from typing import Literal, TypedDict

# A ``broadcast`` is an open relay event (lichess's broadcast tournament): no fixed field
# or pairing system; rounds are created by the operator and boards by the games pushed.
Format = Literal["round_robin", "double_round_robin", "swiss", "broadcast"]
PairingResult = Literal["1-0", "0-1", "1/2-1/2", "+/-", "-/+", "-/-", "*"]
ByeKind = Literal["pairing", "half", "zero", "free"]
RoundStatus = Literal["paired", "running", "finished"]
TournamentStatus = Literal["created", "running", "finished"]

# The C.07 acronyms this server computes (``standings.TIEBREAKS`` is the authority).
DEFAULT_TIEBREAKS: dict[Format, tuple[str, ...]] = {
    "round_robin": ("SB", "DE", "WIN"),
    "double_round_robin": ("SB", "DE", "WIN"),
    "swiss": ("BH-C1", "BH", "SB", "PS", "WIN"),
    "broadcast": ("BH", "SB", "WIN"),
}


class EntrantJSON(TypedDict):
    """A tournament player; ``number`` is the pairing number (1 first)."""

    id: str
    number: int
    name: str
    rating: int | None
    title: str | None
    fide_id: int | None
    federation: str | None


class PlayerViewJSON(EntrantJSON):
    """A player as ``<Tournament>.players`` shows it."""

    withdrawn: bool


class PairingJSON(TypedDict):
    """One board of a round; ``game`` is the game played on it."""

    board: int
    white: str
    black: str | None
    game: str | None
    result: PairingResult


class ByeJSON(TypedDict):
    """A player who plays no game in a round, and the points it scores."""

    player: str
    points: float
    kind: ByeKind


class RoundJSON(TypedDict, total=False):
    """One round as ``<Tournament>.rounds`` shows it (``start_at`` only when scheduled)."""

    round: int
    status: RoundStatus
    start_at: str
    pairings: list[PairingJSON]
    byes: list[ByeJSON]
    # Broadcast rounds only.
    id: str
    name: str
    delay: int


class StandingJSON(TypedDict):
    """One line of the standings."""

    rank: int
    player: str
    points: float
    tiebreaks: dict[str, float]
    played: int


# --- persisted events (a ``seq`` per tournament, gap-free) ---


class PlayerAddedEvent(TypedDict):
    """A player entered (at creation, or late, before a round is paired)."""

    type: Literal["player_added"]
    tournament: str
    seq: int
    player: EntrantJSON


class WithdrawnEvent(TypedDict):
    """A player withdrew: not paired from ``from_round`` on; past results stay."""

    type: Literal["withdrawn"]
    tournament: str
    seq: int
    player: str
    from_round: int


class ByeRequestedEvent(TypedDict):
    """A player asked not to be paired in ``round``, scoring ``points`` (0.5 or 0)."""

    type: Literal["bye_requested"]
    tournament: str
    seq: int
    player: str
    round: int
    points: float


class PairedBoardJSON(TypedDict):
    """A board as paired (results are not events: they come from the games)."""

    board: int
    white: str
    black: str
    game: str | None


class RoundPairedEvent(TypedDict):
    """A round was paired and its games created; ``start_at`` when scheduled."""

    type: Literal["round_paired"]
    tournament: str
    seq: int
    round: int
    start_at: str | None
    pairings: list[PairedBoardJSON]
    byes: list[ByeJSON]


class RoundStartedEvent(TypedDict):
    """A round's games were started (at once, or at the scheduled time)."""

    type: Literal["round_started"]
    tournament: str
    seq: int
    round: int


class RoundCreatedEvent(TypedDict):
    """A broadcast round was created, empty: its boards come with the games pushed.

    ``id`` is the round's own id (lichess's broadcast round id); ``sync_url`` a source
    polled while the round is live; ``delay_s`` its broadcast delay.
    """

    type: Literal["round_created"]
    tournament: str
    seq: int
    round: int
    id: str
    name: str
    start_at: str | None
    sync_url: str | None
    delay_s: int
    created_ms: int


class RoundUpdatedEvent(TypedDict):
    """A broadcast round's settings changed; ``finished`` closes (or reopens) it."""

    type: Literal["round_updated"]
    tournament: str
    seq: int
    round: int
    name: str
    start_at: str | None
    sync_url: str | None
    delay_s: int
    finished: bool


class BoardsAddedEvent(TypedDict):
    """Boards of a broadcast round, created with their games for pushed games."""

    type: Literal["boards_added"]
    tournament: str
    seq: int
    round: int
    pairings: list[PairedBoardJSON]


class RoundResetEvent(TypedDict):
    """A broadcast round was emptied: its boards are gone (their games stay stored)."""

    type: Literal["round_reset"]
    tournament: str
    seq: int
    round: int


TournamentEvent = (
    PlayerAddedEvent
    | WithdrawnEvent
    | ByeRequestedEvent
    | RoundPairedEvent
    | RoundStartedEvent
    | RoundCreatedEvent
    | RoundUpdatedEvent
    | BoardsAddedEvent
    | RoundResetEvent
)
