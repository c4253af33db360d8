"""The zoo architectures in scikit-learn (see :mod:`backends.zoo.architectures`)."""

from __future__ import annotations

from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

from xaibench.backend import ImageSpec
from xaibench.errors import ConfigError


def random_forest(spec: ImageSpec, n_estimators: int = 100,
                  max_depth: int | None = None) -> RandomForestClassifier | RandomForestRegressor:
    """An unfitted forest for ``spec``'s task: a classifier (its scores are the class
    probabilities) or a regressor (one output); the backend sets its ``random_state``."""
    if n_estimators < 1 or (max_depth is not None and max_depth < 1):
        raise ConfigError(f"random_forest needs n_estimators >= 1 and max_depth >= 1 (or no "
                          f"max_depth); got n_estimators = {n_estimators}, "
                          f"max_depth = {max_depth}")
    forest = RandomForestRegressor if spec.task == "regression" else RandomForestClassifier
    return forest(n_estimators=n_estimators, max_depth=max_depth)


BUILDERS = {"random_forest": random_forest}
