"""Report sections of tabular datasets (rows of F named features stored as (1, F, 1) images):
the global feature importance of each configuration (mean |SHAP|), a beeswarm summary, and the
agreement of the configurations' feature rankings (Kendall τ).

A dataset is tabular when the store's meta ``feature_names`` names its features (the runner
writes it for datasets whose spec has feature names). Every configuration is summarised over the
images it explained (its lowest-seed cell) and the outputs it explained.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from xaibench.report.figures import save
from xaibench.report.statistics import rank_agreement
from xaibench.report.tables import Results, config_labels

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes

    from xaibench.report._formats import Notation, Shown

#: features shown per configuration in the figures (the most important ones)
TOP_FEATURES = 10
#: dots of one feature row of the beeswarm stack up to this height (in row units)
_SWARM_HEIGHT = 0.4
#: x bins of one feature row within which the beeswarm stacks its dots
_SWARM_BINS = 60


def feature_names(results: Results, dataset: str) -> list[str] | None:
    """The feature names of ``dataset`` (store meta ``feature_names``), None for images."""
    names = (results.meta.get("feature_names") or {}).get(dataset)
    return list(names) if names else None


def mean_abs_shap(values: np.ndarray) -> np.ndarray:
    """Mean |φ| per feature of attributions (N, 1, F, 1, K), over images and explained
    outputs: shape (F,)."""
    values = np.asarray(values, np.float64)
    return np.abs(values).reshape(len(values), -1, values.shape[-1]).mean(axis=(0, 2))


def feature_importance(results: Results, dataset: str) -> "pd.DataFrame":
    """Mean |SHAP| of every feature (columns, by name) for each configuration of ``dataset``
    (rows, labelled as in the tables); empty for a dataset without feature names."""
    import pandas as pd

    names = feature_names(results, dataset)
    cells = results.configurations(dataset)
    if names is None or cells.empty:
        return pd.DataFrame()
    rows = [mean_abs_shap(results.store.load_arrays(key)["values"]) for key in cells["cell_key"]]
    return pd.DataFrame(rows, index=config_labels(cells), columns=names)


def ranking_agreement(importance: "pd.DataFrame") -> "pd.DataFrame":
    """Kendall τ-b between every two configurations' rankings of the features by mean |SHAP|
    (rows of ``importance``): 1 the same order, −1 reversed; index and columns the
    configurations."""
    by_configuration = importance.T
    return rank_agreement(by_configuration, dict.fromkeys(by_configuration.columns, True))


def _top(row: "pd.Series", top: int) -> "pd.Series":
    """The ``top`` largest entries of ``row``, largest first (ties in column order)."""
    return row.iloc[np.argsort(-row.to_numpy(), kind="stable")[:top]]


def _panels(n: int, width: float, height: float):
    from matplotlib.figure import Figure

    columns = min(n, 3)
    rows = -(-n // columns)
    figure = Figure(figsize=(width * columns, height * rows), layout="constrained", dpi=110)
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    return figure, axes[:n]


def importance_figure(importance: "pd.DataFrame", dataset: str, path: Path,
                      top: int = TOP_FEATURES) -> Path | None:
    """Write one bar chart of mean |SHAP| per configuration (row of ``importance``): its
    ``top`` features, the most important at the top. None when there is no row."""
    if importance.empty:
        return None
    figure, axes = _panels(len(importance), 3.2, 0.45 + 0.2 * min(top, importance.shape[1]))
    for ax, (label, row) in zip(axes, importance.iterrows()):
        shown = _top(row, top)[::-1]
        ax.barh(range(len(shown)), shown.to_numpy(), color="#1e88e5")
        ax.set_yticks(range(len(shown)), shown.index, fontsize=7)
        ax.set_title(label, fontsize=8)
        ax.tick_params(axis="x", labelsize=7)
        ax.set_xlabel("mean |SHAP value|", fontsize=7)
        ax.spines[["top", "right"]].set_visible(False)
    figure.suptitle(f"{dataset}: feature importance (mean |SHAP| over the explained rows)",
                    fontsize=9)
    return save(figure, path)


def swarm_offsets(x: np.ndarray, bins: int = _SWARM_BINS,
                  height: float = _SWARM_HEIGHT) -> np.ndarray:
    """Vertical offsets that stack the dots of one beeswarm row: the dots of one x bin sit at
    0, +s, −s, +2s, −2s ..., the fullest bin reaching ±``height``."""
    x = np.asarray(x, np.float64)
    if len(x) == 0:
        return np.zeros(0)
    span = np.ptp(x)
    which = (np.zeros(len(x), int) if span == 0
             else np.minimum(((x - x.min()) / span * bins).astype(int), bins - 1))
    offsets = np.zeros(len(x))
    counts = np.bincount(which, minlength=bins)
    step = height / max(1, counts.max() // 2)  # the fullest bin reaches ±height
    for b in np.flatnonzero(counts > 1):
        members = np.flatnonzero(which == b)
        rank = np.arange(1, len(members) + 1)
        offsets[members] = np.where(rank % 2 == 0, 1, -1) * (rank // 2) * step
    return offsets


def _beeswarm_panel(ax: "Axes", values: np.ndarray, data: np.ndarray, names: list[str],
                    order: np.ndarray) -> object:
    """Dots of (N, F) SHAP ``values`` for the features ``order`` (top row first), coloured
    by the features' values ``data`` (N, F) scaled to [0, 1] per feature over the rows
    (min-max; a constant feature at 0.5), whatever their units; returns the last scatter."""
    low, high = data.min(axis=0), data.max(axis=0)
    span = np.where(high > low, high - low, 1.0)
    colours = np.where(high > low, (data - low) / span, 0.5)
    dots = None
    for row, feature in enumerate(order[::-1]):
        x = values[:, feature]
        dots = ax.scatter(x, row + swarm_offsets(x), c=colours[:, feature], cmap="coolwarm",
                          vmin=0, vmax=1, s=6, linewidths=0, rasterized=True)
    ax.axvline(0, color="#999999", lw=0.6, zorder=0)
    ax.set_yticks(range(len(order)), [names[f] for f in order[::-1]], fontsize=7)
    ax.tick_params(axis="x", labelsize=7)
    ax.set_xlabel("SHAP value (first explained output)", fontsize=7)
    ax.spines[["top", "right", "left"]].set_visible(False)
    return dots


def beeswarm_figure(results: Results, dataset: str, path: Path,
                    top: int = TOP_FEATURES) -> Path | None:
    """Write a beeswarm summary per configuration of ``dataset``: one dot per explained row and
    feature at its SHAP value for the row's first explained output, coloured by the feature's
    value (blue low, red high), its ``top`` features by mean |SHAP|. None for image data."""
    importance = feature_importance(results, dataset)
    if importance.empty:
        return None
    names = list(importance.columns)
    cells = results.configurations(dataset)
    shown = min(top, len(names))
    figure, axes = _panels(len(cells), 3.4, 0.55 + 0.22 * shown)
    dots = None
    for ax, key, (label, row) in zip(axes, cells["cell_key"], importance.iterrows()):
        arrays = results.store.load_arrays(key)
        values = np.asarray(arrays["values"], np.float64)[..., 0].reshape(len(arrays["values"]),
                                                                          -1)
        data = np.asarray(arrays["images"], np.float64).reshape(len(values), -1)
        order = np.argsort(-row.to_numpy(), kind="stable")[:shown]
        dots = _beeswarm_panel(ax, values, data, names, order)
        ax.set_title(label, fontsize=8)
    colorbar = figure.colorbar(dots, ax=list(axes), shrink=0.6, aspect=30, ticks=[0, 1])
    colorbar.ax.set_yticklabels(["low", "high"], fontsize=7)
    colorbar.set_label("feature value", fontsize=7)
    colorbar.outline.set_visible(False)
    figure.suptitle(f"{dataset}: SHAP values of each explained row", fontsize=9)
    return save(figure, path)


def show_top_features(importance: "pd.DataFrame", notation: "Notation",
                      top: int = 5) -> "Shown":
    """Each configuration's ``top`` features by mean |SHAP| as "name (value)" strings."""
    import pandas as pd

    from xaibench.report.tables import show_plain

    ranks = [str(rank) for rank in range(1, min(top, importance.shape[1]) + 1)]
    rows = pd.DataFrame(
        [[label, *(f"{name} ({value:.3g})" for name, value in _top(row, len(ranks)).items())]
         for label, row in importance.iterrows()], columns=["configuration", *ranks])
    return show_plain(rows, ["configuration", *ranks], {}, notation)
