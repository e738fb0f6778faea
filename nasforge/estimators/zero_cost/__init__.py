"""Zero-cost proxies: scores of an untrained network from one mini-batch that rank architectures by
their trained accuracy, at a fraction of a second each (Abdelfattah et al., 2021, "Zero-Cost Proxies
for Lightweight NAS"; Mellor et al., 2021; Lin et al., 2021).

`compute_proxies(model, x, y)` scores any `nn.Module`; `ZeroCostEstimator` scores architectures of any
space; `CombinedScore` aggregates several proxies into one ranking (optionally weighted from a few
labelled architectures).
"""

from nasforge.estimators.zero_cost.combined import CombinedScore
from nasforge.estimators.zero_cost.compute import PROXIES, ProxyScores, compute_proxies
from nasforge.estimators.zero_cost.estimator import ZeroCostEstimator

__all__ = ["PROXIES", "CombinedScore", "ProxyScores", "ZeroCostEstimator", "compute_proxies"]
