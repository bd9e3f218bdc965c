"""Standings and tie-breaks per FIDE C.07 (Play-off and Tie-Break Regulations, approved by the
FIDE Council on 1 August 2023, in force for FIDE-rated events from 1 April 2024).

Only decided results count: a board still ``*`` gives nothing to anyone (byes count as soon
as the round is paired). Every player is listed, withdrawn ones included; players are ordered
by points, then each tie-break in the configured order (higher is better for every value
here), then pairing number, and no rank is shared (C.07 Art. 4.2 ends with lots; we use the
pairing number, as ``shared/API.md`` asks).

Each player's round is one of: a game played over the board, a forfeit win or loss (``-/-``
is a forfeit loss for both), a pairing-allocated bye (PAB), a requested half- or zero-point
bye, a round-robin free round, or absence (before a late entry or after a withdrawal: Art.
16.1.1 counts every round after a withdrawal as a zero-point bye; we count the rounds before
a late entry the same way, as FIDE's TieBreakServer does for missing rounds).

Unplayed rounds (Art. 15 and 16; the facts were checked against FIDE's TieBreakServer,
``tiebreak.py`` and ``chessjson.py`` of OttoMilvang/TieBreakServer, TEC-FIDE/TieBreakServer):

- Art. 16.1.2: a voluntary unplayed round (VUR) is a requested bye (half, zero, absence) or a
  forfeit loss. PABs, forfeit wins and round-robin free rounds are not VURs.
- Art. 16.2/16.3: for the opponents' tie-breaks a player's score is *adjusted*: requested
  byes followed only by VURs, or in the last round counted (category 16.2.5: in effect a
  withdrawal), count as draws (0.5); every other unplayed round (16.2.1-16.2.4, forfeit
  losses included) counts the points awarded. A board still being played counts as a
  non-VUR round here: its player is present.
- Art. 16.4: for the player's own tie-break, each of its unplayed rounds is a game against a
  dummy whose score is the player's own (unadjusted) score, with the result the points
  awarded (Buchholz adds that score; Sonneborn-Berger adds score x points).
- Art. 16.5: when a Cut modifier removes the least significant value of a player with VURs,
  the lowest VUR contribution is cut instead, unless it is lower than the least significant
  value (possible for SB only); the rule is applied again for each further cut. Median's
  highest cut has no exception.
- Art. 15.2: in a round robin (pre-determined pairings) Art. 16 does not apply: forfeits count
  as games against the scheduled opponent in BH, SB and DE, scores are not adjusted, a free
  round gives no opponent; rating-based ARO still ignores forfeits.

The tie-breaks (``TIEBREAKS``): BH (Art. 8.1) with Cut-1/Cut-2/Median-1/Median-2 (Art.
14.1-14.4); SB (Art. 9.1) and SB-C1; DE (Art. 6, below); WIN (Art. 7.1: rounds scoring as
many points as a win, forfeit wins and full-point PABs included); WON (Art. 7.2: games won
over the board); BPG and BWG (Art. 7.3, 7.4: games played and won with Black over the
board); PS (Art. 7.5: the sum of the running scores after each round); REP (Art. 7.6: rounds
one elected to play, i.e. not VURs); ARO (Art. 10.1: mean rating of the rated opponents met
over the board, rounded half up); AOB (Art. 8.2: mean Buchholz of the opponents met over the
board, zeros left out as TieBreakServer does, rounded to 0.01).

DE (Art. 6) is applied to each group tied on points and every tie-break before it: if every
two of them met (over the board in a Swiss; forfeits count in a round robin, Art. 15.2), each
scores the points of those games (averaged per opponent when they met more than once); the
players still level among a group that did separate are compared again among themselves, as
TieBreakServer does. The value reported is how many players of the tied group direct
encounter ranks below this one (0 where it does not apply), so that higher is better.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

from engine.rules.errors import InvalidInput
from engine.tournament.state import FORFEITS, RESULT_POINTS, TournamentState
from engine.tournament.wire import DEFAULT_TIEBREAKS, StandingJSON

TIEBREAKS: frozenset[str] = frozenset(
    {
        "BH",
        "BH-C1",
        "BH-C2",
        "BH-M1",
        "BH-M2",
        "SB",
        "SB-C1",
        "DE",
        "WIN",
        "WON",
        "PS",
        "BPG",
        "BWG",
        "REP",
        "ARO",
        "AOB",
    }
)

# (cut lowest, cut highest) of each Buchholz / Sonneborn-Berger variant (Art. 14).
_CUTS: dict[str, tuple[int, int]] = {
    "BH": (0, 0),
    "BH-C1": (1, 0),
    "BH-C2": (2, 0),
    "BH-M1": (1, 1),
    "BH-M2": (2, 2),
    "SB": (0, 0),
    "SB-C1": (1, 0),
}
_WIN = 1.0
_DRAW = 0.5

Kind = Literal["game", "pending", "forfeit_win", "forfeit_loss", "pab", "half", "zero", "free"]
# Requested byes (Art. 16.1.1; absence counts as a zero-point bye).
_REQUESTED: frozenset[Kind] = frozenset({"half", "zero"})


def validate_tiebreaks(names: Iterable[str]) -> tuple[str, ...]:
    """The tie-break acronyms, upper-cased, in order.

    Raises InvalidInput on an acronym not in :data:`TIEBREAKS` or one listed twice.
    """
    result: list[str] = []
    for name in names:
        acronym = name.strip().upper()
        if acronym not in TIEBREAKS:
            raise InvalidInput(f"unknown tie-break {name!r}; known: {', '.join(sorted(TIEBREAKS))}")
        if acronym in result:
            raise InvalidInput(f"tie-break {acronym} is listed twice")
        result.append(acronym)
    return tuple(result)


def standings(
    state: TournamentState,
    tiebreaks: Sequence[str] | None = None,
    *,
    through_round: int | None = None,
) -> list[StandingJSON]:
    """The standings after the decided results of rounds 1..``through_round`` (default: all).

    ``tiebreaks`` defaults to the tournament's, else ``DEFAULT_TIEBREAKS`` of its format.
    Raises InvalidInput on an unknown tie-break or a negative ``through_round``; a round
    beyond the last paired one counts as the last paired one.
    """
    if tiebreaks is None:
        tiebreaks = state.setup.tiebreaks or DEFAULT_TIEBREAKS[state.setup.format]
    names = validate_tiebreaks(tiebreaks)
    if through_round is not None and through_round < 0:
        raise InvalidInput("through_round must not be negative")
    last = len(state.rounds) if through_round is None else min(through_round, len(state.rounds))
    table = Crosstable.from_state(state, last)

    values: dict[str, dict[str, float]] = {p.id: {} for p in state.players}
    for i, name in enumerate(names):
        if name == "DE":
            groups: dict[tuple[float, ...], list[str]] = {}
            for pid in values:
                key = (table.score[pid], *(values[pid][n] for n in names[:i]))
                groups.setdefault(key, []).append(pid)
            for group in groups.values():
                for pid, below in _direct_encounter(table, group).items():
                    values[pid]["DE"] = below
        else:
            compute = _COMPUTE[name]
            for pid in values:
                values[pid][name] = compute(table, pid)

    ordered = sorted(
        state.players,
        key=lambda p: (-table.score[p.id], *(-values[p.id][n] for n in names), p.number),
    )
    return [
        {
            "rank": rank,
            "player": p.id,
            "points": table.score[p.id],
            "tiebreaks": {n: values[p.id][n] for n in names},
            "played": sum(1 for r in table.records[p.id] if r.kind == "game"),
        }
        for rank, p in enumerate(ordered, start=1)
    ]


@dataclass(frozen=True, slots=True)
class Record:
    """One player's round: what happened, the points it gave, the opponent and colour."""

    kind: Kind
    points: float = 0.0
    opponent: str | None = None
    black: bool = False

    @property
    def is_vur(self) -> bool:
        """A voluntary unplayed round (Art. 16.1.2): a requested bye or a forfeit loss."""
        return self.kind in _REQUESTED or self.kind == "forfeit_loss"

    @property
    def is_unplayed(self) -> bool:
        """Decided without a game over the board (a dummy opponent in Art. 16.4)."""
        return self.kind not in ("game", "pending")


@dataclass(frozen=True, slots=True)
class Crosstable:
    """Each player's rounds 1..n as :class:`Record` values, with scores (Art. 16.3 adjusted)."""

    records: dict[str, tuple[Record, ...]]
    score: dict[str, float]
    adjusted: dict[str, float]
    rating: dict[str, int | None]
    is_swiss: bool

    @classmethod
    def from_state(cls, state: TournamentState, last: int) -> Crosstable:
        """The records of rounds 1..``last`` of ``state``."""
        is_swiss = not state.setup.is_round_robin
        records: dict[str, list[Record]] = {p.id: [] for p in state.players}
        for rnd in state.rounds[:last]:
            seen: set[str] = set()
            for pairing in rnd.pairings:
                white_pts, black_pts = RESULT_POINTS[pairing.result]
                if pairing.result == "*":
                    kinds: tuple[Kind, Kind] = ("pending", "pending")
                elif pairing.result in FORFEITS:
                    kinds = (
                        "forfeit_win" if white_pts else "forfeit_loss",
                        "forfeit_win" if black_pts else "forfeit_loss",
                    )
                else:
                    kinds = ("game", "game")
                white, black = pairing.white, pairing.black
                records[white].append(Record(kinds[0], white_pts, black))
                records[black].append(Record(kinds[1], black_pts, white, black=True))
                seen |= {white, black}
            for bye in rnd.byes:
                kind: Kind = "pab" if bye.kind == "pairing" else bye.kind
                if is_swiss and kind == "free":
                    kind = "zero"
                records[bye.player].append(Record(kind, bye.points))
                seen.add(bye.player)
            for pid in records.keys() - seen:
                records[pid].append(Record("zero"))
        frozen = {pid: tuple(recs) for pid, recs in records.items()}
        return cls(
            records=frozen,
            score={pid: sum(r.points for r in recs) for pid, recs in frozen.items()},
            adjusted={pid: _adjusted_score(recs, is_swiss) for pid, recs in frozen.items()},
            rating={p.id: p.rating for p in state.players},
            is_swiss=is_swiss,
        )


def _adjusted_score(records: Sequence[Record], is_swiss: bool) -> float:
    """The score a player's opponents use (Art. 16.3; unadjusted in round robins, Art. 15.2)."""
    if not is_swiss:
        return sum(r.points for r in records)
    total = 0.0
    for i, record in enumerate(records):
        followed_only_by_vurs = all(later.is_vur for later in records[i + 1 :])
        if record.kind in _REQUESTED and followed_only_by_vurs:
            total += _DRAW  # category 16.2.5, Art. 16.3.2
        else:
            total += record.points  # categories 16.2.1-16.2.4, Art. 16.3.1
    return total


@dataclass(frozen=True, slots=True)
class _Contribution:
    """What one round adds to BH or SB: the (dummy) opponent's score and the value added."""

    score: float
    value: float
    is_vur: bool


def _contributions(table: Crosstable, pid: str, *, sonneborn: bool) -> list[_Contribution]:
    own = table.score[pid]
    result = []
    for record in table.records[pid]:
        if record.kind == "pending":
            continue
        if table.is_swiss and record.is_unplayed:
            score, is_vur = own, record.is_vur  # Art. 16.4: the dummy has our own score
        elif record.opponent is not None:
            score, is_vur = table.adjusted[record.opponent], False
        else:
            continue  # a round robin's free round meets no one
        value = score * record.points if sonneborn else score
        result.append(_Contribution(score, value, is_vur))
    return result


def _cut_sum(contributions: list[_Contribution], lowest: int, highest: int) -> float:
    """The sum after the Cut/Median modifier (Art. 14) with the VUR exception (Art. 16.5)."""
    remaining = list(contributions)
    for _ in range(min(lowest, len(remaining))):
        cut = min(remaining, key=lambda c: (c.score, c.value))
        vurs = [c for c in remaining if c.is_vur]
        if vurs:
            lowest_vur = min(vurs, key=lambda c: (c.score, c.value))
            if lowest_vur.value >= cut.value:
                cut = lowest_vur
        remaining.remove(cut)
    for _ in range(min(highest, len(remaining))):
        remaining.remove(max(remaining, key=lambda c: (c.score, c.value)))
    return sum(c.value for c in remaining)


def _buchholz_like(name: str) -> Callable[[Crosstable, str], float]:
    lowest, highest = _CUTS[name]
    sonneborn = name.startswith("SB")

    def compute(table: Crosstable, pid: str) -> float:
        return _cut_sum(_contributions(table, pid, sonneborn=sonneborn), lowest, highest)

    return compute


def _count(predicate: Callable[[Record], bool]) -> Callable[[Crosstable, str], float]:
    def compute(table: Crosstable, pid: str) -> float:
        return sum(1 for r in table.records[pid] if predicate(r))

    return compute


def _progressive(table: Crosstable, pid: str) -> float:
    running = total = 0.0
    for record in table.records[pid]:
        running += record.points
        total += running
    return total


def _average_rating(table: Crosstable, pid: str) -> float:
    ratings = [
        rating
        for r in table.records[pid]
        if r.kind == "game" and r.opponent is not None
        if (rating := table.rating[r.opponent])
    ]
    if not ratings:
        return 0
    mean = Decimal(sum(ratings)) / len(ratings)
    return int(mean.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _average_buchholz(table: Crosstable, pid: str) -> float:
    buchholz = _COMPUTE["BH"]
    values = [
        bh
        for r in table.records[pid]
        if r.kind == "game" and r.opponent is not None
        if (bh := buchholz(table, r.opponent))
    ]
    if not values:
        return 0.0
    mean = Decimal(str(sum(values))) / len(values)
    return float(mean.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


_COMPUTE: dict[str, Callable[[Crosstable, str], float]] = {
    **{name: _buchholz_like(name) for name in _CUTS},
    "WIN": _count(lambda r: r.kind != "pending" and r.points == _WIN),
    "WON": _count(lambda r: r.kind == "game" and r.points == _WIN),
    "BPG": _count(lambda r: r.kind == "game" and r.black),
    "BWG": _count(lambda r: r.kind == "game" and r.black and r.points == _WIN),
    "REP": _count(lambda r: r.kind != "pending" and not r.is_vur),
    "PS": _progressive,
    "ARO": _average_rating,
    "AOB": _average_buchholz,
}


def _mutual_scores(table: Crosstable, group: Sequence[str]) -> dict[str, float] | None:
    """Each player's points against the rest of ``group``, or None unless all of them met."""
    members = set(group)
    counted = ("game", "forfeit_win", "forfeit_loss") if not table.is_swiss else ("game",)
    scores: dict[str, float] = {}
    for pid in group:
        by_opponent: dict[str, list[float]] = {}
        for r in table.records[pid]:
            if r.kind in counted and r.opponent in members:
                by_opponent.setdefault(r.opponent, []).append(r.points)
        if len(by_opponent) < len(group) - 1:
            return None
        scores[pid] = sum(sum(pts) / len(pts) for pts in by_opponent.values())
    return scores


def _direct_encounter(table: Crosstable, group: Sequence[str]) -> dict[str, float]:
    """How many of ``group`` each member outranks by direct encounter (Art. 6)."""
    scores = _mutual_scores(table, group) if len(group) > 1 else None
    if scores is None or len(set(scores.values())) == 1:
        return {pid: 0 for pid in group}
    result: dict[str, float] = {}
    for level in set(scores.values()):
        tied = [pid for pid in group if scores[pid] == level]
        below = sum(1 for pid in group if scores[pid] < level)
        for pid, inner in _direct_encounter(table, tied).items():
            result[pid] = below + inner
    return result
