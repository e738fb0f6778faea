"""An autoregressive LSTM controller over a `ChoiceSpace`, and the policy-gradient strategy built on it
(Zoph & Le, 2017, "Neural Architecture Search with Reinforcement Learning"; Pham et al., 2018, ENAS).

The controller emits one decision per step: an LSTM cell reads the embedding of the previous
decision (a learned start vector at step 0) and a softmax head sized to the choice's options picks
the next one. `PolicyGradientStrategy` samples architectures from it, collects rewards and calls its
subclass's `update` every `batch_size` told results; REINFORCE and PPO differ only in that update.
"""

from __future__ import annotations

import copy
from abc import abstractmethod
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn as nn
from torch.distributions import Categorical

from nasforge.errors import NasforgeError
from nasforge.estimators.base import Result
from nasforge.objective import Objective
from nasforge.spaces.base import Arch, SearchSpace
from nasforge.spaces.choices import ChoiceSpace
from nasforge.strategies.base import Strategy, require
from nasforge.threads import torch_threads


_TORCH_STATE = ("controller", "optimizer", "generator")  # saved through their own state, as numpy arrays


class Controller(nn.Module):
    """A policy over decision sequences: `sample` draws one, `forward` scores given ones."""

    def __init__(self, sizes: Sequence[int], hidden_size: int = 64) -> None:
        super().__init__()
        self.start = nn.Parameter(torch.empty(1, hidden_size))
        # one embedding table per choice: the options of different choices mean different things
        self.embeddings = nn.ModuleList(nn.Embedding(n, hidden_size) for n in sizes[:-1])
        self.cell = nn.LSTMCell(hidden_size, hidden_size)
        self.heads = nn.ModuleList(nn.Linear(hidden_size, n) for n in sizes)
        for p in self.parameters():  # ENAS's init: small weights, so the first policy is near uniform
            nn.init.uniform_(p, -0.1, 0.1)

    def forward(self, decisions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probability and entropy (nats, summed over steps) of each row of a (batch, steps) tensor."""
        _, log_prob, entropy = self._unroll(len(decisions), lambda step, dist: decisions[:, step])
        return log_prob, entropy

    @torch.no_grad()
    def sample(self, generator: torch.Generator) -> tuple[tuple[int, ...], float]:
        """One decision sequence drawn with `generator` only, and its log-probability."""
        def draw(step: int, dist: Categorical) -> torch.Tensor:
            return torch.multinomial(dist.probs, 1, generator=generator).squeeze(1)

        decisions, log_prob, _ = self._unroll(1, draw)
        return tuple(decisions[0].tolist()), float(log_prob[0])

    def _unroll(self, batch: int, pick: Callable[[int, Categorical], torch.Tensor]) -> tuple[torch.Tensor, ...]:
        x, state = self.start.expand(batch, -1), None
        picked, log_prob, entropy = [], 0.0, 0.0
        for step, head in enumerate(self.heads):
            state = self.cell(x, state)
            dist = Categorical(logits=head(state[0]))
            decision = pick(step, dist)
            picked.append(decision)
            log_prob = log_prob + dist.log_prob(decision)
            entropy = entropy + dist.entropy()
            if step < len(self.embeddings):
                x = self.embeddings[step](decision)
        return torch.stack(picked, dim=1), log_prob, entropy


class PolicyGradientStrategy(Strategy):
    """Samples architectures from a `Controller` and trains it on their rewards, `batch_size` at a time.

    The reward is the objective's score; a failed result gets the worst reward seen so far (it must
    not look better than any real architecture), and is skipped while no reward has been seen.
    Asynchronous: each ask's decisions and log-probability are kept by arch key until its result is
    told. `baseline` is an exponential moving average of past rewards (decay `baseline_decay`); the
    advantages handed to `update` are A = R - b with b the baseline as it was before the batch (so it
    does not depend on the batch's own actions), scaled to unit root-mean-square over the batch: the
    step size and `entropy_weight` then mean the same whatever the reward's units, and the sign of A
    still says better or worse than the baseline.
    """

    def __init__(self, space: SearchSpace, *, objective: Objective | None = None, seed: int = 0,
                 hidden_size: int = 64, learning_rate: float = 0.02, batch_size: int = 10,
                 entropy_weight: float = 0.03, baseline_decay: float = 0.9) -> None:
        require(space, ChoiceSpace, type(self).__name__.lower())
        for field, value, ok, rule in [
            ("hidden_size", hidden_size, hidden_size >= 1, ">= 1"),
            ("learning_rate", learning_rate, learning_rate > 0, "> 0"),
            ("batch_size", batch_size, batch_size >= 1, ">= 1"),
            ("entropy_weight", entropy_weight, entropy_weight >= 0, ">= 0"),
            ("baseline_decay", baseline_decay, 0 <= baseline_decay < 1, "in [0, 1)"),
        ]:
            if not ok:
                raise NasforgeError(f"{field}: must be {rule}, got {value}")
        super().__init__(space, objective=objective, seed=seed)
        self.batch_size, self.entropy_weight, self.baseline_decay = batch_size, entropy_weight, baseline_decay
        init_seed, sample_seed = (int(s) for s in self.rng.integers(2**62, size=2))
        with torch.random.fork_rng(devices=[]):  # seeded init that leaves the global RNG as it was
            torch.manual_seed(init_seed)
            self.controller = Controller([len(c.options) for c in space.choices], hidden_size)
        self.generator = torch.Generator().manual_seed(sample_seed)
        self.optimizer = torch.optim.Adam(self.controller.parameters(), lr=learning_rate)
        self.asked: dict[str, list[tuple[tuple[int, ...], float]]] = {}  # key -> (decisions, log-prob) per ask
        self.batch: list[tuple[tuple[int, ...], float, float]] = []  # (decisions, log-prob at ask, reward)
        self.baseline: float | None = None
        self.worst: float | None = None

    def ask(self) -> Arch:
        with torch_threads(1):  # a few hundred weights: one thread is fastest, and on shared cores by far
            decisions, log_prob = self.controller.sample(self.generator)
        arch = self.space.decode(decisions)
        self.asked.setdefault(arch.key, []).append((decisions, log_prob))
        return arch

    def tell(self, arch: Arch, result: Result) -> None:
        if self.asked.get(arch.key):
            decisions, log_prob = self.asked[arch.key].pop(0)
            if not self.asked[arch.key]:
                del self.asked[arch.key]
        else:  # told without being asked (a warm start): learnt from as if the controller had sampled it now
            decisions = tuple(self.space.decisions(arch))
            with torch.no_grad():
                log_prob = float(self.controller(torch.tensor([decisions]))[0][0])
        score = self.objective.score(result)
        if score is not None:
            self.worst = score if self.worst is None else min(self.worst, score)
        reward = self.worst if score is None else score
        if reward is None:
            return
        self.batch.append((decisions, log_prob, reward))
        if len(self.batch) == self.batch_size:
            self._learn()

    def _learn(self) -> None:
        decisions, log_probs, rewards = zip(*self.batch)
        self.batch = []
        rewards = np.asarray(rewards, dtype=np.float64)
        if self.baseline is None:  # no history yet: the batch's own mean
            self.baseline = float(rewards.mean())
        advantages = rewards - self.baseline
        scale = np.sqrt(np.mean(advantages**2))
        if scale > 0:
            advantages /= scale
        for reward in rewards:
            self.baseline = self.baseline_decay * self.baseline + (1 - self.baseline_decay) * float(reward)
        with torch_threads(1):
            self.update(torch.tensor(decisions), torch.tensor(log_probs, dtype=torch.float32),
                        torch.tensor(advantages, dtype=torch.float32))

    @abstractmethod
    def update(self, decisions: torch.Tensor, old_log_probs: torch.Tensor, advantages: torch.Tensor) -> None:
        """Train the controller on a batch: (batch, steps) decisions, their log-probabilities when asked,
        and their advantages (unit root-mean-square)."""

    def state_dict(self) -> dict[str, Any]:
        # torch state as numpy arrays: pickled after every tell, they are ~20x faster than tensors
        plain = {k: v for k, v in vars(self).items() if k not in (*self._config_attrs, *_TORCH_STATE)}
        return copy.deepcopy(plain) | {
            "controller": _to_numpy(self.controller.state_dict()),
            "optimizer": _to_numpy(self.optimizer.state_dict()),
            "generator": self.generator.get_state().numpy().copy(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        state = dict(state)
        self.controller.load_state_dict(_to_torch(state.pop("controller")))
        self.optimizer.load_state_dict(_to_torch(state.pop("optimizer")))
        self.generator.set_state(torch.from_numpy(state.pop("generator").copy()))
        super().load_state_dict(state)

    def step(self, loss: torch.Tensor) -> None:
        """One Adam step on `loss`."""
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()


def _to_numpy(tree: Any) -> Any:
    """A copy of a (nested dict/list) torch state dict with every tensor as a numpy array."""
    if isinstance(tree, torch.Tensor):
        return tree.detach().numpy().copy()
    if isinstance(tree, dict):
        return {k: _to_numpy(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(_to_numpy(v) for v in tree)
    return copy.deepcopy(tree)


def _to_torch(tree: Any) -> Any:
    """The inverse of `_to_numpy`."""
    if isinstance(tree, np.ndarray):
        return torch.from_numpy(tree.copy())
    if isinstance(tree, dict):
        return {k: _to_torch(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(_to_torch(v) for v in tree)
    return tree
