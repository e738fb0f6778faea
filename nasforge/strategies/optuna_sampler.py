"""Any of Optuna's samplers as a strategy, through Optuna's ask/tell interface (Akiba et al., 2019, "Optuna").

Each choice of the `ChoiceSpace` is one Optuna parameter: a categorical over the option indices, or,
for CMA-ES, an integer index — Optuna's CMA-ES cannot sample categoricals and would hand them to
random sampling, so it searches the indices as ordered integers with margin (Hamano et al., 2022).
Samplers: `tpe` (Optuna's default TPESampler), `cmaes`, `gp`, `nsga2`, `random`, all seeded with the
strategy's seed, so `optuna:tpe` at seed s proposes what `TPESampler(seed=s)` does.

Asynchronous: the trials asked and not told are kept by arch key; an architecture told without being
asked is added to the study as a finished trial. A failed result is a FAIL trial, which the samplers
leave out of their models. The state is the whole study (in-memory storage and sampler, RNG included).
"""

from __future__ import annotations

import importlib.util
import warnings
from typing import Callable

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

from nasforge.errors import NasforgeError
from nasforge.estimators.base import Result
from nasforge.objective import Objective
from nasforge.spaces.base import Arch, SearchSpace
from nasforge.spaces.choices import ChoiceSpace
from nasforge.strategies.base import Strategy, require


def _cmaes(seed: int) -> optuna.samplers.BaseSampler:
    """CMA-ES with margin, the variant for integer variables."""
    if importlib.util.find_spec("cmaes") is None:  # Optuna would fail only at the first CMA-ES step
        raise NasforgeError("sampler: 'cmaes' needs the cmaes package (pip install cmaes)")
    with warnings.catch_warnings():  # Optuna flags `with_margin` experimental: our choice, not the user's
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.CmaEsSampler(seed=seed, with_margin=True)


# name -> the sampler with Optuna's defaults, seeded
SAMPLERS: dict[str, Callable[[int], optuna.samplers.BaseSampler]] = {
    "tpe": lambda seed: optuna.samplers.TPESampler(seed=seed),
    "cmaes": _cmaes,
    "gp": lambda seed: optuna.samplers.GPSampler(seed=seed),
    "nsga2": lambda seed: optuna.samplers.NSGAIISampler(seed=seed),
    "random": lambda seed: optuna.samplers.RandomSampler(seed=seed),
}


class OptunaStrategy(Strategy):
    """An Optuna study over the space's choices: `sampler` is one of `SAMPLERS`."""

    def __init__(self, space: SearchSpace, *, objective: Objective | None = None, seed: int = 0,
                 sampler: str = "tpe") -> None:
        if sampler not in SAMPLERS:
            raise NasforgeError(f"sampler: '{sampler}' is not allowed (allowed: {', '.join(SAMPLERS)})")
        require(space, ChoiceSpace, f"optuna:{sampler}")
        super().__init__(space, objective=objective, seed=seed)
        self.sampler = sampler
        self.study = optuna.create_study(direction="maximize", sampler=SAMPLERS[sampler](seed))
        self.trials: dict[str, list[int]] = {}  # arch key -> numbers of its trials asked and not told

    def ask(self) -> Arch:
        trial = self.study.ask(self._distributions())
        arch = self.space.decode([trial.params[c.name] for c in self.space.choices])
        self.trials.setdefault(arch.key, []).append(trial.number)
        return arch

    def tell(self, arch: Arch, result: Result) -> None:
        score = self.objective.score(result)
        state = TrialState.COMPLETE if score is not None else TrialState.FAIL
        if self.trials.get(arch.key):
            number = self.trials[arch.key].pop(0)
            if not self.trials[arch.key]:
                del self.trials[arch.key]
            self.study.tell(number, score, state=state)
        else:  # told without being asked (a warm start): a finished trial the sampler learns from
            params = {c.name: d for c, d in zip(self.space.choices, self.space.decisions(arch))}
            self.study.add_trial(create_trial(params=params, distributions=self._distributions(),
                                              value=score, state=state))

    def _distributions(self) -> dict[str, BaseDistribution]:
        if self.sampler == "cmaes":
            return {c.name: IntDistribution(0, len(c.options) - 1) for c in self.space.choices}
        return {c.name: CategoricalDistribution(tuple(range(len(c.options)))) for c in self.space.choices}
