"""Statistics of a comparison: bootstrap intervals, rank aggregation, metric agreement, the
Friedman test and the Nemenyi critical difference (pure functions on numpy / pandas).

The shapes are generic: *configurations* (the rows being compared) × *blocks* (images, or
models: the repeated measurements) × *metrics* (any metric key, e.g. a metric under a ruler).
Every ranking puts the best first (rank 1) and respects each metric's direction
(``higher_is_better``); ties get their average rank, as the Friedman test assumes.

References: Efron & Tibshirani 1993 (percentile bootstrap); Demšar, "Statistical comparisons of
classifiers over multiple data sets", JMLR 7 (2006): Friedman test with tie correction,
Nemenyi critical difference ``CD = q_α · sqrt(k(k+1) / (6N))`` with ``q_α`` the studentized
range quantile (infinite degrees of freedom) divided by √2, and the critical-difference diagram;
Klein et al., "Navigating the maze of explainable AI" (LATEC), NeurIPS 2024: median ranks over
metrics, and metrics that disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping

import numpy as np

from xaibench.errors import XaibenchError

if TYPE_CHECKING:
    import pandas as pd

#: resamples of the bootstrap intervals
BOOTSTRAP_RESAMPLES = 1000


def bootstrap_ci(sample: np.ndarray, *, resamples: int = BOOTSTRAP_RESAMPLES,
                 level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``sample`` (NaNs dropped): the
    ``(1 ± level) / 2`` quantiles of the means of ``resamples`` resamples with replacement,
    drawn at once with a generator seeded by ``seed``. (NaN, NaN) below two values."""
    if not 0 < level < 1:
        raise XaibenchError(f"level must be in (0, 1), got {level!r}; e.g. 0.95")
    sample = np.asarray(sample, dtype=np.float64).ravel()
    sample = sample[~np.isnan(sample)]
    if len(sample) < 2:
        return np.nan, np.nan
    draws = np.random.default_rng(seed).integers(0, len(sample), (resamples, len(sample)))
    means = sample[draws].mean(axis=1)
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def ranks(means: "pd.DataFrame", higher_is_better: Mapping[str, bool]) -> "pd.DataFrame":
    """Rank of each configuration (row) per metric (column), 1 = best, average ranks for ties;
    NaN where the metric is missing."""
    return means.apply(lambda column: column.rank(ascending=not higher_is_better[column.name],
                                                  method="average"))


def median_rank(means: "pd.DataFrame", higher_is_better: Mapping[str, bool],
                groups: Mapping[str, str] | None = None) -> "pd.Series":
    """The median over metrics (columns) of each configuration's rank (LATEC's aggregation);
    NaN ranks skipped. With ``groups`` (column -> metric) the columns of one metric (scored
    under several rulers) first give the median of their ranks, so each metric counts once."""
    per_column = ranks(means, higher_is_better)
    if groups:
        per_column = per_column.T.groupby([groups[c] for c in per_column.columns]).median().T
    return per_column.median(axis=1, skipna=True)


def rank_agreement(means: "pd.DataFrame", higher_is_better: Mapping[str, bool]) -> "pd.DataFrame":
    """Kendall τ-b between every two metrics' rankings of the configurations (rows), on the
    configurations both score; +1: the metrics order the configurations alike (direction
    taken into account), −1: reversed. NaN where fewer than two are shared or one is constant."""
    import pandas as pd
    from scipy.stats import kendalltau

    oriented = means.apply(lambda column: column if higher_is_better[column.name] else -column)
    names = list(means.columns)
    matrix = np.eye(len(names))
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            both = oriented[[names[i], names[j]]].dropna()
            tau = np.nan
            if len(both) >= 2 and both.nunique().min() > 1:
                tau = kendalltau(both.iloc[:, 0], both.iloc[:, 1]).statistic
            matrix[i, j] = matrix[j, i] = tau
    return pd.DataFrame(matrix, index=names, columns=names)


@dataclass(frozen=True)
class Friedman:
    """A Friedman test of k configurations over N blocks, and the Nemenyi critical difference."""

    #: average rank of each configuration over the blocks (1 = best)
    average_ranks: np.ndarray
    #: the blocks used (those where every configuration has a value)
    blocks: int
    #: χ²_F with the correction for ties (as scipy.stats.friedmanchisquare)
    statistic: float
    p_value: float
    #: Nemenyi critical difference of average ranks at ``alpha``
    critical_difference: float
    alpha: float

    def groups(self) -> list[tuple[int, ...]]:
        """The maximal runs of configurations (indices, by average rank) whose average ranks
        differ by less than the critical difference: not significantly different."""
        order = np.argsort(self.average_ranks, kind="stable")
        sorted_ranks = self.average_ranks[order]
        runs = []
        for start in range(len(order)):
            end = start
            while end + 1 < len(order) and \
                    sorted_ranks[end + 1] - sorted_ranks[start] < self.critical_difference:
                end += 1
            if end > start and not (runs and runs[-1][1] >= end):
                runs.append((start, end))
        return [tuple(int(i) for i in order[a:b + 1]) for a, b in runs]


def nemenyi_q(k: int, alpha: float = 0.05) -> float:
    """Nemenyi's q_α for k configurations: the studentized range quantile with infinite degrees
    of freedom over √2 (Demšar 2006, table 5a: 2.343 for k = 3 at α = 0.05)."""
    from scipy.stats import studentized_range

    if k < 2:
        raise XaibenchError(f"the Nemenyi test compares at least 2 configurations, got {k}")
    return float(studentized_range.ppf(1 - alpha, k, np.inf) / np.sqrt(2))


def critical_difference(k: int, blocks: int, alpha: float = 0.05) -> float:
    """Nemenyi critical difference of average ranks: q_α · sqrt(k(k+1) / (6N))."""
    return nemenyi_q(k, alpha) * np.sqrt(k * (k + 1) / (6 * blocks))


def friedman(scores: np.ndarray, higher_is_better: bool, alpha: float = 0.05) -> Friedman | None:
    """The Friedman test of ``scores`` (N blocks × k configurations; blocks with a NaN are
    dropped) and the Nemenyi critical difference; None below 3 configurations or 2 blocks, or
    when every block ties every configuration."""
    from scipy.stats import chi2, rankdata

    scores = np.asarray(scores, dtype=np.float64)
    scores = scores[~np.isnan(scores).any(axis=1)]
    n, k = scores.shape
    if k < 3 or n < 2:
        return None
    block_ranks = rankdata(-scores if higher_is_better else scores, axis=1)
    average = block_ranks.mean(axis=0)
    ties = sum(float((counts ** 3 - counts).sum())
               for counts in (np.unique(row, return_counts=True)[1] for row in block_ranks))
    correction = 1 - ties / (n * k * (k * k - 1))
    if correction <= 0:
        return None
    statistic = 12 * n / (k * (k + 1)) * float(((average - (k + 1) / 2) ** 2).sum()) / correction
    return Friedman(average, n, statistic, float(chi2.sf(statistic, k - 1)),
                    critical_difference(k, n, alpha), alpha)


def seed_std(per_seed: "pd.DataFrame", configuration: list[str], seed: str,
             metrics: list[str]) -> "pd.DataFrame":
    """Across-seed standard deviation (ddof 1) of each metric per configuration, from one row
    per configuration and seed holding that seed's metric means; configurations with fewer than
    two seeds are left out. Columns: ``configuration``, ``seeds``, ``<metric>_seed_std``."""
    grouped = per_seed.groupby(configuration)
    table = grouped[metrics].std(ddof=1).add_suffix("_seed_std")
    table.insert(0, "seeds", grouped[seed].nunique())
    return table[table["seeds"] >= 2].reset_index()


def beats(row: "pd.Series", baseline: "pd.Series", higher_is_better: Mapping[str, bool]) -> bool:
    """Whether ``row``'s metric means are strictly better than ``baseline``'s on more than half
    of the metrics both have (indexed by metric)."""
    shared = [m for m in row.index if not (np.isnan(row[m]) or np.isnan(baseline[m]))]
    better = sum(row[m] > baseline[m] if higher_is_better[m] else row[m] < baseline[m]
                 for m in shared)
    return bool(shared) and better > len(shared) / 2
