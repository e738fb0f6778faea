"""Multi-fidelity search: successive halving, Hyperband and BOHB.

Successive halving (Jamieson & Talwalkar, 2016) evaluates n architectures at a low fidelity (e.g.
epochs) and promotes the best 1/eta of each rung to eta times the fidelity, until one reaches the
full fidelity. Hyperband (Li et al., 2018, "Hyperband: A Novel Bandit-Based Approach to
Hyperparameter Optimization") loops over brackets that trade many cheap trials against few full
ones: with R = max_fidelity / min_fidelity and s_max = floor(log_eta R), bracket s = s_max..0 starts
n = ceil((s_max + 1) / (s + 1) * eta^s) architectures at max_fidelity * eta^-s. BOHB (Falkner et al.,
2018, "BOHB: Robust and Efficient Hyperparameter Optimization at Scale") keeps Hyperband's brackets
but draws their architectures from a model instead of uniformly.

Here any single-fidelity strategy, the `proposer`, draws the architectures of each bracket's first
rung; promotions come from the rungs' results. The proposer learns as BOHB's model does: only from
the results at the highest fidelity with at least `min_points` of them. Until some fidelity has that
many it is told nothing (its own warm-up, random for most strategies); each time a higher fidelity
gets there, a fresh proposer (seeded from this strategy's RNG) is told that fidelity's results so far
and then every later one at it, so scores of different fidelities are never mixed in one model. (A
fresh proposer runs its own warm-up again, e.g. BANANAS' random initial asks: once per rung fidelity
at most.)

Asynchronous: rungs are synchronous (promotion waits for every result of the rung, so the best
1/eta are chosen from the whole rung), and an ask that no open bracket can serve — every one waiting
for results — opens the next bracket, as BOHB's parallel scheme does (Falkner et al., 2018, sec. 4.3).
Asks go to the oldest open bracket that has a trial to give, so an ask never waits and never fails.
A failed trial ranks below every result and is never promoted; a rung with no result ends its bracket.
Ties go to the architecture asked first, and a rung promotes distinct architectures. A result is
matched to the oldest open trial of its architecture at its fidelity; one without a fidelity (a
table's) to the oldest at any.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from nasforge.errors import NasforgeError
from nasforge.estimators.base import Result
from nasforge.objective import Objective
from nasforge.spaces.base import Arch, SearchSpace
from nasforge.strategies.base import Strategy

#: one rung of a bracket's plan: (fidelity, number of architectures evaluated at it)
Rung = tuple[float, int]


def hyperband_brackets(min_fidelity: float, max_fidelity: float, eta: int) -> list[list[Rung]]:
    """Hyperband's brackets s = s_max..0, each a list of rungs (Li et al., 2018, Algorithm 1).

    Bracket s has rungs i = 0..s with n_i = floor(n * eta^-i) architectures at max_fidelity * eta^(i-s);
    fidelities are rounded to whole numbers when both bounds are whole (epochs).

    >>> hyperband_brackets(1, 9, 3)
    [[(1, 9), (3, 3), (9, 1)], [(3, 5), (9, 1)], [(9, 3)]]
    """
    s_max = 0
    while min_fidelity * eta ** (s_max + 1) <= max_fidelity:  # floor(log_eta R) without float log error
        s_max += 1
    whole = all(isinstance(f, int) for f in (min_fidelity, max_fidelity))
    brackets = []
    for s in range(s_max, -1, -1):
        n = -(-(s_max + 1) * eta**s // (s + 1))  # the ceiling, in whole numbers
        fidelities = [max_fidelity / eta ** (s - i) for i in range(s + 1)]
        brackets.append([(math.floor(f + 0.5) if whole else f, n // eta**i) for i, f in enumerate(fidelities)])
    return brackets


@dataclass
class _Rung:
    """A rung being evaluated: its archs in asking order (a promoted rung knows them all up front)."""

    fidelity: float
    size: int
    archs: list[Arch] = field(default_factory=list)
    asked: int = 0
    scores: dict[int, float | None] = field(default_factory=dict)  # index in `archs` -> score, once told

    def done(self) -> bool:
        return len(self.scores) == self.size


@dataclass
class _Bracket:
    plan: list[Rung]
    rungs: list[_Rung]  # opened so far; the last is the one being evaluated


class SuccessiveHalving(Strategy):
    """Successive halving, bracket after bracket: eta^s_max archs at the lowest fidelity, one at the full one.

    `min_fidelity`/`max_fidelity` bound the fidelity (epochs for the training estimator); `proposer` names
    the strategy that draws new architectures (default: the class's `default_proposer`); `min_points`
    is how many results a fidelity needs before the proposer learns from it.
    """

    #: the proposer when none is named
    default_proposer = "random"
    _config_attrs = (*Strategy._config_attrs, "proposer")  # its state is nested by `state_dict`

    def __init__(self, space: SearchSpace, *, objective: Objective | None = None, seed: int = 0,
                 min_fidelity: float = 1, max_fidelity: float = 9, eta: int = 3, proposer: str | None = None,
                 min_points: int = 10) -> None:
        if not _number(min_fidelity) or min_fidelity <= 0:
            raise NasforgeError(f"min_fidelity: must be a number > 0, got {min_fidelity!r}")
        if not _number(max_fidelity) or max_fidelity < min_fidelity:
            raise NasforgeError(f"max_fidelity: must be a number >= min_fidelity ({min_fidelity}), got {max_fidelity!r}")
        if not _whole(eta) or eta < 2:
            raise NasforgeError(f"eta: must be a whole number >= 2, got {eta!r}")
        if not _whole(min_points) or min_points < 1:
            raise NasforgeError(f"min_points: must be a whole number >= 1, got {min_points!r}")
        super().__init__(space, objective=objective, seed=seed)
        self.min_fidelity, self.max_fidelity, self.eta, self.min_points = min_fidelity, max_fidelity, eta, min_points
        self.proposer_name = proposer or self.default_proposer
        self.proposer = self._new_proposer()
        self.brackets: list[_Bracket] = []  # open brackets, oldest first
        self.opened = 0  # brackets opened so far
        self.model_fidelity: float | None = None  # the fidelity the proposer learns from (None: none yet)
        self.unlearned: dict[float, list[tuple[Arch, Result]]] = {}  # results above model_fidelity, by fidelity

    def plans(self) -> list[list[Rung]]:
        """The brackets this strategy cycles through: successive halving's most exploratory one only."""
        return hyperband_brackets(self.min_fidelity, self.max_fidelity, self.eta)[:1]

    def ask(self) -> Arch:
        return self.ask_trial()[0]

    def ask_trial(self) -> tuple[Arch, float]:
        """The next trial of the oldest open bracket that has one; a new bracket when all are waiting."""
        for bracket in self.brackets:
            rung = bracket.rungs[-1]
            if rung.asked < rung.size:
                return self._next(rung)
        plans = self.plans()
        plan = plans[self.opened % len(plans)]
        self.opened += 1
        bracket = _Bracket(plan, [_Rung(*plan[0])])
        self.brackets.append(bracket)
        return self._next(bracket.rungs[0])

    def tell(self, arch: Arch, result: Result) -> None:
        """Record the result in its rung (promoting a finished rung) and let the proposer learn from it."""
        fidelity = self.max_fidelity if result.fidelity is None else result.fidelity  # None is the full one
        found = self._pending(arch, result.fidelity)
        if found is not None:
            bracket, index = found
            rung = bracket.rungs[-1]
            fidelity = rung.fidelity
            rung.scores[index] = self.objective.score(result)
            if rung.done():
                self._promote(bracket)
        self._learn(arch, result, fidelity)

    def state_dict(self) -> dict[str, Any]:
        """The plain state with the proposer's own state nested (never the space it holds)."""
        return super().state_dict() | {"proposer": self.proposer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        state = dict(state)
        self.proposer.load_state_dict(state.pop("proposer"))
        super().load_state_dict(state)

    def _new_proposer(self) -> Strategy:
        # imported here: the registry imports this module
        from nasforge.strategies import create_strategy

        seed = int(self.rng.integers(2**63))
        try:
            proposer = create_strategy(self.proposer_name, self.space, objective=self.objective, seed=seed)
        except NasforgeError as error:
            raise NasforgeError(f"proposer: {error}") from None
        if isinstance(proposer, SuccessiveHalving):
            raise NasforgeError(f"proposer: '{self.proposer_name}' is multi-fidelity itself (allowed: a single-fidelity strategy)")
        return proposer

    def _next(self, rung: _Rung) -> tuple[Arch, float]:
        if rung.asked == len(rung.archs):  # a first rung: the proposer's choice
            rung.archs.append(self.proposer.ask())
        rung.asked += 1
        return rung.archs[rung.asked - 1], rung.fidelity

    def _pending(self, arch: Arch, fidelity: float | None) -> tuple[_Bracket, int] | None:
        """The oldest asked, untold trial of `arch` (at `fidelity` unless None): its bracket and index."""
        for bracket in self.brackets:
            rung = bracket.rungs[-1]
            if fidelity is not None and rung.fidelity != fidelity:
                continue
            for index in range(rung.asked):
                if index not in rung.scores and rung.archs[index].key == arch.key:
                    return bracket, index
        return None

    def _promote(self, bracket: _Bracket) -> None:
        """Open the bracket's next rung with the best 1/eta of the finished one, or close the bracket."""
        rung = bracket.rungs[-1]
        ranked = sorted((i for i, s in rung.scores.items() if s is not None), key=lambda i: (-rung.scores[i], i))
        best = list({rung.archs[i].key: rung.archs[i] for i in ranked}.values())  # distinct, best first
        if len(bracket.rungs) == len(bracket.plan) or not best:
            self.brackets.remove(bracket)
            return
        fidelity, size = bracket.plan[len(bracket.rungs)]
        promoted = best[:size]
        bracket.rungs.append(_Rung(fidelity, len(promoted), promoted))

    def _learn(self, arch: Arch, result: Result, fidelity: float) -> None:
        """Tell the proposer results at the highest fidelity with `min_points` results (BOHB's model budget)."""
        if self.model_fidelity is not None and fidelity <= self.model_fidelity:
            if fidelity == self.model_fidelity:
                self.proposer.tell(arch, result)
            return
        waiting = self.unlearned.setdefault(fidelity, [])
        waiting.append((arch, result))
        if len(waiting) < self.min_points:
            return
        self.proposer = self._new_proposer()
        for told in waiting:
            self.proposer.tell(*told)
        self.model_fidelity = fidelity
        self.unlearned = {f: results for f, results in self.unlearned.items() if f > fidelity}


class Hyperband(SuccessiveHalving):
    """Hyperband: successive-halving brackets s = s_max..0 in a loop (Li et al., 2018); random proposals.

    >>> from nasforge.spaces import create_space
    >>> strategy = Hyperband(create_space("nb201"), min_fidelity=1, max_fidelity=27)
    >>> [[n for _, n in plan] for plan in strategy.plans()]
    [[27, 9, 3, 1], [12, 4, 1], [6, 2], [4]]
    """

    def plans(self) -> list[list[Rung]]:
        return hyperband_brackets(self.min_fidelity, self.max_fidelity, self.eta)


class BOHB(Hyperband):
    """Hyperband whose brackets start from a model-based proposer's architectures (Falkner et al., 2018)."""

    default_proposer = "bananas"


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
