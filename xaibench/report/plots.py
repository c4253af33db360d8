"""Chart figures from the store: perturbation curves, cost vs faithfulness, agreement, MPRT.

Curves are of the top-1 explained output, pooled over a configuration's seeds, one panel per
backend (a colour per method, alike in every panel): perturbation curves in the space they
were stored in (scores normalised by their stored spreads, raw in stores without them) as median
and interquartile band over images, MPRT curves as mean and 95 % confidence band. A
figure whose data the store lacks is not drawn (None). Each is written as PNG and SVG.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from xaibench.metrics.faithfulness import (KINDS, SCORE_SPREAD_ARRAY, curve_array,
                                           curve_space_array, normalised_curves)
from xaibench.metrics.randomisation import MPRT_ARRAY, MPRT_LAYERS
from xaibench.report.figures import save
from xaibench.report.tables import IDENTITY, Results, ci95, config_labels, summary_table

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes

    from xaibench.report.rankings import MetricTest

#: faithfulness metrics for the cost scatter, in order of preference
FAITHFULNESS = ("abpc", "deletion_auc", "insertion_auc")
_MARKERS = ("o", "s", "^", "D")
#: y axis of the perturbation curves per space (score curves are drawn normalised where the
#: store holds their spreads, raw in older stores)
_CURVE_AXES = {"probability": "p(explained class)",
               "score": "(f − f(∅)) / (max − min of the scores of x)",
               "raw score": "f (score units)"}


def _styles(results: Results, dataset: str) -> dict[str, dict[str, object]]:
    """Per configuration label of ``dataset``: a colour per method (explainer, masker, params,
    architecture) and a marker per backend, so one method looks alike across frameworks; the
    same in every chart of the dataset."""
    from matplotlib import colormaps

    cells = results.configurations(dataset)
    methods = list(zip(cells["architecture"], cells["explainer"], cells["masker"],
                       cells["params"]))
    distinct, backends = list(dict.fromkeys(methods)), sorted(set(cells["backend"]))
    cmap = colormaps["tab10" if len(distinct) <= 10 else "tab20"]
    return {label: {"color": cmap(distinct.index(method) % cmap.N),
                    "marker": _MARKERS[backends.index(backend) % len(_MARKERS)]}
            for label, method, backend in zip(config_labels(cells), methods, cells["backend"])}


def _pooled(results: Results, dataset: str, name: str) -> dict[str, tuple[np.ndarray, dict]]:
    """Configuration label -> (array ``name`` of the top-1 output — per-image (N,) arrays as
    they are — concatenated over the configuration's cells (seeds), the lowest-seed cell's
    arrays), where stored."""
    done = results.cells[results.cells["status"] == "done"]
    configurations = results.configurations(dataset)
    pooled = {}
    for label, (_, cell) in zip(config_labels(configurations), configurations.iterrows()):
        same = done[(done[IDENTITY] == cell[IDENTITY]).all(axis=1)].sort_values("seed")
        loaded = [arrays for arrays in map(results.store.load_arrays, same["cell_key"])
                  if name in arrays]
        if loaded:
            pooled[label] = (np.concatenate([arrays[name][:, 0] if arrays[name].ndim > 1
                                             else arrays[name] for arrays in loaded]), loaded[0])
    return pooled


def _lines(results: Results, dataset: str) -> "pd.DataFrame":
    """The configurations of ``dataset`` with ``label`` (as in the tables), ``method`` (the
    label without the backend: the legend of per-backend panels) and ``colour`` (per method)."""
    cells = results.configurations(dataset)
    labels = config_labels(cells)
    styles = _styles(results, dataset)
    return cells.assign(label=labels, method=config_labels(cells.assign(backend="")),
                        colour=[styles[label]["color"] for label in labels])


def _median_iqr(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Median and quartiles over the rows of ``values``, NaNs skipped."""
    low, median, high = np.nanpercentile(values, [25, 50, 75], axis=0)
    return median, low, high


def _mean_ci(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over the rows of ``values`` and its 95 % confidence interval, NaNs skipped."""
    mean, half = np.nanmean(values, axis=0), ci95(values, axis=0)
    return mean, mean - half, mean + half


def _band(ax: "Axes", x: np.ndarray, centre_low_high: tuple[np.ndarray, ...], colour: object,
          label: str) -> None:
    """A centre line and a (low, high) band around it."""
    centre, low, high = centre_low_high
    ax.plot(x, centre, color=colour, label=label, lw=1.6)
    ax.fill_between(x, low, high, color=colour, alpha=0.12, lw=0)


def _new_figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained", dpi=150)


def curves_figure(results: Results, dataset: str, path: Path) -> Path | None:
    """Write the deletion (top row) and insertion curves (bottom row) of ``dataset``'s
    configurations under the first ruler that has them (:func:`curve_ruler`), a column per
    backend, probabilities as they are and scores normalised by :data:`SCORE_SPREAD_ARRAY`
    (without spaces stored they are scores; without spreads they are drawn raw); None when no
    cell stored them. The title names the ruler."""
    ruler = curve_ruler(results, dataset)
    pooled = {kind: _pooled(results, dataset, curve_array(kind, ruler)) for kind in KINDS}
    spreads = _pooled(results, dataset, SCORE_SPREAD_ARRAY)
    lines = _lines(results, dataset)
    lines = lines[lines["label"].isin({label for curves in pooled.values() for label in curves})]
    if lines.empty:
        return None
    backends = sorted(set(lines["backend"]))
    figure = _new_figure(1.5 + 3.6 * len(backends), 7.5)
    axes = figure.subplots(2, len(backends), sharex=True, sharey="row", squeeze=False)
    for row, (kind, curves) in zip(axes, pooled.items()):
        spaces = {label: _curve_space(raw, arrays.get(curve_space_array(kind, ruler)),
                                      spreads.get(label))
                  for label, (raw, arrays) in curves.items()}
        for ax, backend in zip(row, backends):
            for line in lines[lines["backend"] == backend].itertuples():
                if line.label in curves:
                    raw = curves[line.label][0]
                    shown = normalised_curves(raw, kind, spreads[line.label][0]) \
                        if spaces[line.label] == "score" else raw
                    _band(ax, np.linspace(0, 1, raw.shape[-1]), _median_iqr(shown), line.colour,
                          line.method)
            ax.axhline(0, color="0.5", lw=0.8)
            ax.set(xlim=(0, 1))
            ax.grid(alpha=0.3)
        better = "lower" if kind == "deletion" else "higher"
        axis = " or ".join(_CURVE_AXES[space] for space in sorted(set(spaces.values())))
        row[0].set_ylabel(f"{kind}\n{axis}\n({better} area is better)")
    for ax, backend in zip(axes[0], backends):
        ax.set_title(backend)
    for ax in axes[-1]:
        ax.set_xlabel("fraction of pixels removed / restored\n(most relevant first)")
    _legend(figure, axes, columns=4)
    filled = "each cell's own masker" if ruler == "masker" else f"ruler {ruler}"
    figure.suptitle(f"{dataset}: perturbation curves of the top-1 output, pixels removed by "
                    f"{filled}\n(median and interquartile range over images)", fontsize=11)
    return save(figure, path)


def curve_ruler(results: Results, dataset: str) -> str:
    """The ruler whose curves :func:`curves_figure` draws: the first of ``dataset``'s rulers
    (in the order of ``[evaluation]``), "masker" when its metrics have none."""
    rulers = ((results.meta.get("resolved_config") or {}).get("evaluation") or {}).get("rulers")
    cells = results.cells.loc[results.cells["dataset"] == dataset, "cell_key"]
    present = set(results.scores.loc[results.scores["cell_key"].isin(cells), "ruler"]) - {""}
    return next((ruler for ruler in rulers or sorted(present) if ruler in present), "masker")


def _curve_space(curves: np.ndarray, space: np.ndarray | None,
                 spread: tuple[np.ndarray, dict] | None) -> str:
    """The key in :data:`_CURVE_AXES` of pooled ``curves`` stored in ``space`` (None: an older
    store, scores): score curves are drawn normalised only with a spread for every image."""
    space = "score" if space is None else str(space)
    if space == "score" and (spread is None or len(spread[0]) != len(curves)):
        return "raw score"
    return space


def _legend(figure, axes, columns: int) -> None:
    """One figure legend below ``axes`` for every labelled line in them."""
    handles = {label: handle for ax in np.ravel(axes)
               for handle, label in zip(*ax.get_legend_handles_labels())}
    figure.legend(handles.values(), handles.keys(), loc="outside lower center",
                  ncols=min(len(handles), columns),
                  fontsize=8, frameon=False)


def faithfulness_metric(results: Results) -> str | None:
    """The metric of the cost scatter: the first of :data:`FAITHFULNESS` stored (under the
    first ruler by name), else any faithfulness metric, else None."""
    metrics = results.quality_metrics
    categories = results.scores.groupby("metric")["category"].first()
    measures = results.scores.groupby("metric")["measure"].first()
    return next((m for f in FAITHFULNESS for m in metrics if measures[m] == f),
                next((m for m in metrics if categories[m] == "faithfulness"), None))


def pareto_front(seconds: np.ndarray, quality: np.ndarray, higher: bool) -> np.ndarray:
    """Mask of the points no other point beats in both cost (fewer seconds) and quality."""
    sign = 1 if higher else -1
    order = np.lexsort((-sign * quality, seconds))  # cheapest first, best quality first on ties
    front = np.zeros(len(seconds), dtype=bool)
    best = -np.inf
    for i in order:
        if sign * quality[i] > best:
            front[i], best = True, sign * quality[i]
    return front


def runtime_figure(results: Results, dataset: str, path: Path,
                   metric: str | None = None) -> Path | None:
    """Write seconds per image (log scale) against a faithfulness ``metric`` (default
    :func:`faithfulness_metric`) per configuration, the Pareto front marked; None without one."""
    metric = metric or faithfulness_metric(results)
    if metric is None:
        return None
    rows = summary_table(results).query("dataset == @dataset")
    rows = rows.assign(label=config_labels(rows))
    rows = rows[(rows["seconds_per_image"] > 0) & rows[f"{metric}_mean"].notna()]
    if rows.empty:
        return None
    higher = results.higher_is_better[metric]
    x, y = rows["seconds_per_image"].to_numpy(), rows[f"{metric}_mean"].to_numpy()
    front = pareto_front(x, y, higher)
    styles = _styles(results, dataset)

    figure = _new_figure(8, max(4.0, 0.3 * len(rows) + 1.5))
    ax = figure.subplots()
    on = np.flatnonzero(front)[np.argsort(x[front])]
    ax.step(x[on], y[on], where="post", color="0.5", ls="--", lw=1, label="Pareto front")
    for (_, row), on_front in zip(rows.iterrows(), front):
        style = styles[row["label"]]
        ax.errorbar(row["seconds_per_image"], row[f"{metric}_mean"],
                    yerr=np.nan_to_num(row[f"{metric}_ci95"]), fmt=style["marker"], ms=7,
                    capsize=2, color=style["color"],
                    mfc=style["color"] if on_front else "white", mew=1.5)
    _log_seconds(ax, x)
    arrow = "↑" if higher else "↓"
    ax.set(xlabel="seconds per image (log scale)",
           ylabel=f"{metric.replace('_', ' ')} {arrow} (mean ± 95 % CI)",
           title=f"{dataset}: cost against faithfulness (filled: on the Pareto front)")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    _callouts(ax, x, y, list(rows["label"]))
    return save(figure, path)


def _log_seconds(ax: "Axes", seconds: np.ndarray) -> None:
    """A log x axis with plain-number tick labels; the minor ticks labelled within a decade."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    within_decade = seconds.max() < 10 * seconds.min()
    ax.xaxis.set_minor_formatter(FuncFormatter(lambda value, _: f"{value:g}")
                                 if within_decade else NullFormatter())


def _callouts(ax: "Axes", x: np.ndarray, y: np.ndarray, labels: list[str]) -> None:
    """Label each point right of the axes, at its height where there is room, else pushed
    apart just enough not to overlap, with a thin line to its point."""
    low, high = ax.get_ylim()
    wanted = (y - low) / (high - low)
    gap = 13 / (ax.figure.get_figheight() * 72 * 0.75)  # a line of 8 pt text, in axes units
    order = np.argsort(-wanted, kind="stable")
    slots = np.empty(len(y))
    ceiling = 1.0 + gap
    for i in order:  # top down: no higher than wanted, one gap below the previous
        slots[i] = ceiling = min(wanted[i], ceiling - gap)
    floor = -gap
    for i in order[::-1]:  # bottom up: back inside the axes where pushed below
        slots[i] = floor = max(slots[i], floor + gap)
    for slot, xi, yi, label in zip(slots, x, y, labels):
        ax.annotate(label, xy=(xi, yi), xytext=(1.03, slot), textcoords="axes fraction",
                    va="center", fontsize=8, annotation_clip=False,
                    arrowprops={"arrowstyle": "-", "color": "0.6", "lw": 0.6,
                                "relpos": (0, 0.5), "shrinkA": 2, "shrinkB": 5})


def agreement_figure(matrix: "pd.DataFrame", dataset: str, path: Path,
                     title: str = "agreement between explanations\n(Spearman ρ of the pixel "
                                  "relevance, mean over images)",
                     measure: str = "Spearman ρ") -> Path | None:
    """Write an agreement matrix (:func:`.pairwise.agreement_table`, or any square matrix of
    correlations in [−1, 1] named by ``measure``) as a heatmap; None below two rows."""
    if len(matrix) < 2:
        return None
    size = len(matrix)
    figure = _new_figure(3.5 + 0.55 * size, 2.5 + 0.5 * size)
    ax = figure.subplots()
    image = ax.imshow(matrix.to_numpy(dtype=float), cmap="RdBu_r", vmin=-1, vmax=1)
    for (i, j), value in np.ndenumerate(matrix.to_numpy(dtype=float)):
        ax.text(j, i, "—" if np.isnan(value) else f"{value:.2f}", ha="center", va="center",
                fontsize=8, color="white" if abs(value) > 0.6 else "black")
    ax.set_xticks(range(size), matrix.columns, rotation=40, ha="right", fontsize=8)
    ax.set_yticks(range(size), matrix.index, fontsize=8)
    figure.suptitle(f"{dataset}: {title}", fontsize=10)
    figure.colorbar(image, ax=ax, label=measure, shrink=0.8)
    return save(figure, path)


def cd_figure(tests: "list[MetricTest]", dataset: str, path: Path) -> Path | None:
    """Write a critical-difference diagram (Demšar 2006) per Friedman test, one under the
    other: average ranks on an axis (1 = best, at the left), each configuration's label joined
    to its rank, configurations not significantly different (Nemenyi, α of the test) joined by
    a thick bar, the critical difference drawn above the axis. None without a test."""
    if not tests:
        return None
    longest = max(len(label) for test in tests for label in test.labels)
    rows = max(len(test.labels) for test in tests)
    height = 1.2 + 0.22 * ((rows + 1) // 2) + 0.2 * max(len(t.result.groups()) for t in tests)
    figure = _new_figure(6 + 0.12 * longest, 0.6 + height * len(tests))
    for ax, test in zip(np.ravel(figure.subplots(len(tests), 1, squeeze=False)), tests):
        _cd_panel(ax, test)
    figure.suptitle(f"{dataset}: critical-difference diagrams (Friedman + Nemenyi over images; "
                    "lower rank is better, bars join configurations not significantly "
                    "different)", fontsize=10)
    return save(figure, path)


def _cd_panel(ax: "Axes", test: "MetricTest") -> None:
    """One critical-difference diagram in data coordinates: x = average rank, y down."""
    result, k = test.result, len(test.labels)
    order = np.argsort(result.average_ranks, kind="stable")
    half = (k + 1) // 2
    step, groups = 1.0, result.groups()
    label_top = 1.0 + 0.6 * len(groups)
    ax.hlines(0, 1, k, color="black", lw=1)
    for tick in range(1, k + 1):
        ax.vlines(tick, 0, 0.25, color="black", lw=1)
        ax.text(tick, 0.4, str(tick), ha="center", va="bottom", fontsize=8)
    for line, index in enumerate(order):
        rank = result.average_ranks[index]
        left = line < half
        y = -(label_top + step * (line if left else k - 1 - line))
        edge = 1 - 0.2 if left else k + 0.2
        ax.plot([rank, rank, edge], [0, y, y], color="0.3", lw=0.8)
        ax.text(edge - 0.05 if left else edge + 0.05, y,
                f"{test.labels[index]} ({rank:.2f})", ha="right" if left else "left",
                va="center", fontsize=8)
    for level, group in enumerate(groups):
        ranks = result.average_ranks[list(group)]
        y = -(0.5 + 0.6 * level)
        ax.plot([ranks.min() - 0.03, ranks.max() + 0.03], [y, y], color="black", lw=3,
                solid_capstyle="butt")
    cd = result.critical_difference
    ax.plot([1, 1 + cd], [1.3, 1.3], color="black", lw=1)
    ax.vlines([1, 1 + cd], 1.2, 1.4, color="black", lw=1)
    ax.text(1 + cd / 2, 1.45, f"CD = {cd:.2f}", ha="center", va="bottom", fontsize=8)
    ax.set_xlim(0, k + 1)
    ax.set_ylim(-(label_top + step * (half - 1)) - 0.6, 2.0)
    ax.set_axis_off()
    ax.set_title(f"{test.metric.replace('_', ' ')}: Friedman p = {result.p_value:.2g}, "
                 f"N = {result.blocks} images", fontsize=9, loc="left")


def budget_figure(sweeps: "pd.DataFrame", metric: str, higher: bool, dataset: str,
                  path: Path) -> Path | None:
    """Write ``metric`` against model evaluations per image (log scale) along each budget sweep
    (:func:`.rankings.budget_table`), a panel per explainer and a line per sweep, the mean and
    its bootstrap 95 % band over images; None without a sweep."""
    from matplotlib import colormaps
    from matplotlib.ticker import NullFormatter

    if sweeps.empty or f"{metric}_mean" not in sweeps:
        return None
    explainers = sorted(set(sweeps["explainer"]))
    names = sorted(set(sweeps["sweep"]))
    cmap = colormaps["tab10" if len(names) <= 10 else "tab20"]
    figure = _new_figure(1.5 + 4.2 * len(explainers), 4.8)
    axes = np.ravel(figure.subplots(1, len(explainers), sharey=True, squeeze=False))
    for ax, explainer in zip(axes, explainers):
        for sweep, rows in sweeps[sweeps["explainer"] == explainer].groupby("sweep"):
            rows = rows.sort_values("evals_per_image")
            x = rows["evals_per_image"].to_numpy(dtype=float)
            colour = cmap(names.index(sweep) % cmap.N)
            _band(ax, x, tuple(rows[f"{metric}_{stat}"].to_numpy(dtype=float)
                               for stat in ("mean", "low", "high")), colour, sweep)
            ax.plot(x, rows[f"{metric}_mean"], "o", ms=4, color=colour)
        ticks = np.unique(sweeps.loc[sweeps["explainer"] == explainer, "evals_per_image"])
        ax.set_xscale("log")
        ax.set_xticks(ticks, [f"{tick:,.0f}" for tick in ticks])
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set(title=explainer, xlabel="model evaluations per image (log scale)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"{metric.replace('_', ' ')} {'↑' if higher else '↓'} "
                       "(mean, bootstrap 95 % band)")
    _legend(figure, axes, columns=3)
    figure.suptitle(f"{dataset}: quality against cost along budget sweeps", fontsize=11)
    return save(figure, path)


def mprt_figure(results: Results, dataset: str, path: Path) -> Path | None:
    """Write the cascading-randomisation curves (stored arrays :data:`MPRT_ARRAY`,
    :data:`MPRT_LAYERS`), a row per architecture and a column per backend; None when no cell
    stored them."""
    pooled = _pooled(results, dataset, MPRT_ARRAY)
    lines = _lines(results, dataset)
    lines = lines[lines["label"].isin(set(pooled))]
    if lines.empty:
        return None
    architectures, backends = sorted(set(lines["architecture"])), sorted(set(lines["backend"]))
    figure = _new_figure(1.5 + 3.6 * len(backends), 2.5 + 3.2 * len(architectures))
    axes = figure.subplots(len(architectures), len(backends), sharey=True, squeeze=False)
    for row, architecture in zip(axes, architectures):
        for ax, backend in zip(row, backends):
            shown = lines[(lines["architecture"] == architecture) & (lines["backend"] == backend)]
            if shown.empty:
                ax.set_axis_off()
                continue
            for line in shown.itertuples():
                curves = pooled[line.label][0]
                _band(ax, np.arange(curves.shape[-1]), _mean_ci(curves), line.colour,
                      line.method)
            layers = pooled[shown["label"].iloc[0]][1][MPRT_LAYERS]  # alike in one panel
            ax.set_xticks(range(len(layers)), layers, rotation=40, ha="right", fontsize=8)
            ax.set(title=backend if len(architectures) == 1 else f"{backend}: {architecture}",
                   ylim=(-0.1, 1.05))
            ax.grid(alpha=0.3)
        row[0].set_ylabel("Spearman ρ with the original explanation")
    for ax in axes[-1]:
        ax.set_xlabel("randomised down to layer (output first)")
    _legend(figure, axes, columns=4)
    figure.suptitle(f"{dataset}: model-parameter randomisation (lower = more model-sensitive)"
                    "\n(mean and 95 % CI over images)", fontsize=11)
    return save(figure, path)
