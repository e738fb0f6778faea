"""Conformance checks every space and strategy must pass (Optuna's sampler tests, scikit-learn's check_estimator).

Call them from your own tests for a space or strategy you add:

>>> from nasforge.testing import check_space
>>> check_space(my_space, input_shape=(1, 8, 8))  # doctest: +SKIP
"""

from nasforge.testing.conformance import check_space, check_strategy, drive

__all__ = ["check_space", "check_strategy", "drive"]
