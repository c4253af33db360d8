"""Result tables read from the store: models, leaderboard, seed spread, runtime, failures,
home advantage.

A metric scored under a ruler (``[evaluation] rulers``: the replacement that removed pixels) is
shown as ``<metric>@<ruler>`` (:func:`ruled`), one column per ruler, so every row of a table is
measured alike; :func:`home_advantage_table` compares each masker's rows under their own ruler
with the other rulers.

The numeric tables are plain DataFrames (``report.csv`` is ``summary_table`` as is, the others go
to ``tables/<name>.csv``); ``show_*`` turn one dataset's rows into strings for a document format.
Tables that compare attribution arrays (parity, agreement) are in :mod:`.pairwise`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from xaibench.backend import Attribution
from xaibench.errors import DataError
from xaibench.experiment.store import Store
from xaibench.metrics.additivity import AdditivityGap
from xaibench.report._formats import Notation, Shown
from xaibench.report.statistics import beats, bootstrap_ci, median_rank, seed_std

if TYPE_CHECKING:
    import pandas as pd

#: what identifies one row of the summary (cells differing only in seed are pooled)
IDENTITY = ["dataset", "backend", "architecture", "explainer", "masker", "params"]
#: row order: explainers side by side across backends
ORDER = ["dataset", "explainer", "masker", "backend", "architecture", "params"]
#: metric category of cost metrics: in the runtime table, not in the leaderboard
COST = "cost"
#: metric categories shown in the leaderboard but not ranked: correctness checks (additivity,
#: which every SHAP estimator passes by construction) and costs
UNRANKED = ("correctness", COST)
#: baseline explainers (of the same model) that a leaderboard row must beat to go unflagged;
#: those absent from a run are skipped
BASELINES = ("random", "edge")
#: order of the leaderboard's metric columns by category (others after them, by name)
CATEGORIES = ("faithfulness", "randomisation", "localisation", "robustness", "complexity",
              "correctness")


@dataclass(frozen=True)
class Results:
    """What a report shows, read once from a results directory's store."""

    store: Store
    meta: dict[str, Any]
    models: "pd.DataFrame"
    #: the cells table; ``masker`` "" when none, ``params`` as "k=v, ..." text without seed
    cells: "pd.DataFrame"
    #: one score per cell, metric and image (mean over the explained outputs), with the metric's
    #: ``higher_is_better`` and ``category``; ``metric`` is :func:`ruled` (its registry name in
    #: ``measure``, its ruler in ``ruler``, "" for metrics without one)
    scores: "pd.DataFrame"

    @classmethod
    def load(cls, root: str | Path) -> "Results":
        """Read the store in ``root``; additivity is recomputed from arrays where not stored."""
        if not (Path(root) / "store.sqlite").is_file():
            raise DataError(f"no results store in {root} (expected {Path(root) / 'store.sqlite'})")
        store = Store(root)
        cells = store.frame("cells")
        cells["masker"] = cells["masker"].fillna("")
        cells["params"] = cells["params"].map(_params_text)
        metrics = _with_additivity(store, cells, store.frame("metrics"))
        metrics = metrics.assign(ruler=metrics["ruler"].fillna(""), measure=metrics["metric"])
        metrics["metric"] = [ruled(m, r) for m, r in zip(metrics["measure"], metrics["ruler"])]
        scores = (metrics.groupby(["cell_key", "metric", "image"], as_index=False)
                  .agg(value=("value", "mean"), higher_is_better=("higher_is_better", "first"),
                       category=("category", "first"), measure=("measure", "first"),
                       ruler=("ruler", "first")))
        # stores written before additivity was declared a correctness check say "fidelity"
        scores.loc[scores["metric"] == AdditivityGap.name, "category"] = AdditivityGap.category
        return cls(store, store.meta(), _with_r2(store.frame("models")), cells, scores)

    @property
    def datasets(self) -> list[str]:
        """Every dataset with a model or a cell, sorted."""
        return sorted(set(self.models["dataset"]) | set(self.cells["dataset"]))

    @property
    def higher_is_better(self) -> dict[str, bool]:
        """Direction of each metric in the store, by name."""
        return self.scores.groupby("metric")["higher_is_better"].first().to_dict()

    @property
    def quality_metrics(self) -> list[str]:
        """The metrics that are not costs, by category (:data:`CATEGORIES` first), then name:
        the leaderboard's columns."""
        categories = self.scores.groupby("metric")["category"].first()
        rank = {category: i for i, category in enumerate(CATEGORIES)}
        return sorted(categories[categories != COST].index,
                      key=lambda m: (rank.get(categories[m], len(rank)), categories[m], m))

    @property
    def ranked_metrics(self) -> list[str]:
        """The quality metrics whose category is not :data:`UNRANKED`: those the rank
        aggregates."""
        categories = self.scores.groupby("metric")["category"].first()
        return [m for m in self.quality_metrics if categories[m] not in UNRANKED]

    def configurations(self, dataset: str | None = None) -> "pd.DataFrame":
        """One done cell per configuration (its lowest seed), in :data:`ORDER`; all datasets
        when ``dataset`` is None."""
        done = self.cells[self.cells["status"] == "done"]
        if dataset is not None:
            done = done[done["dataset"] == dataset]
        return (done.sort_values([*ORDER, "seed"]).drop_duplicates(IDENTITY)
                .reset_index(drop=True))

    def class_name(self, dataset: str, index: int) -> str:
        """Class ``index`` of ``dataset`` by name (meta "class_names"), else the index itself."""
        names = (self.meta.get("class_names") or {}).get(dataset) or []
        return str(names[index]) if 0 <= index < len(names) else str(index)


def _with_r2(models: "pd.DataFrame") -> "pd.DataFrame":
    """``models`` with an ``r2`` column (the test R² of regression models, read from their
    evaluation; NaN for classifiers) when any model is a regression model."""
    r2 = models["evaluation"].map(lambda evaluation: evaluation.get("r2", np.nan))
    return models.assign(r2=r2.astype(float)) if r2.notna().any() else models


def _test_scores(models: "pd.DataFrame") -> list[str]:
    """The headline test-score columns of ``models``: accuracy, and r2 where present."""
    return ["accuracy", *(["r2"] if "r2" in models else [])]


def ruled(metric: str, ruler: str) -> str:
    """The shown name of ``metric`` scored under ``ruler``: "abpc@blur(8,8)"; the metric's own
    name without a ruler."""
    return f"{metric}@{ruler}" if ruler else metric


def _params_text(params: dict[str, Any]) -> str:
    """``params`` as "k=v, ..." without the seed (cells differing only in seed are pooled)."""
    return ", ".join(f"{key}={value}" for key, value in sorted(params.items()) if key != "seed")


def _with_additivity(store: Store, cells: "pd.DataFrame",
                     metrics: "pd.DataFrame") -> "pd.DataFrame":
    """``metrics`` plus the additivity gap recomputed from arrays for done cells without it."""
    import pandas as pd

    have = set(metrics.loc[metrics["metric"] == AdditivityGap.name, "cell_key"])
    missing = cells[(cells["status"] == "done") & ~cells["cell_key"].isin(have)]
    frames = [metrics] if len(metrics) else []
    for cell in missing.itertuples():
        arrays = store.load_arrays(cell.cell_key)
        gap = AdditivityGap()(None, None, Attribution(  # type: ignore[arg-type]
            cell.explainer, arrays["values"], arrays["output_indices"], arrays["base_values"],
            arrays["model_outputs"], cell.wall_seconds, cell.model_evals))
        image, output = np.indices(gap.shape).reshape(2, -1)
        frames.append(pd.DataFrame({
            "cell_key": cell.cell_key, "metric": AdditivityGap.name, "image": image,
            "output": output, "value": gap.ravel(),
            "higher_is_better": AdditivityGap.higher_is_better,
            "category": AdditivityGap.category, "ruler": ""}))
    return pd.concat(frames, ignore_index=True) if frames else metrics


def ci95(values: np.ndarray, axis: int = 0) -> np.ndarray:
    """Half-width of the 95 % Student-t confidence interval of the mean along ``axis``, NaNs
    skipped (NaN where fewer than 2 values)."""
    from scipy import stats

    values = np.asarray(values, dtype=np.float64)
    n = np.sum(~np.isnan(values), axis=axis, keepdims=True)
    mean = np.nansum(values, axis=axis, keepdims=True) / np.maximum(n, 1)
    variance = np.nansum((values - mean) ** 2, axis=axis, keepdims=True) / np.maximum(n - 1, 1)
    half = stats.t.ppf(0.975, np.maximum(n - 1, 1)) * np.sqrt(variance / np.maximum(n, 1))
    return np.squeeze(np.where(n >= 2, half, np.nan), axis=axis)


# --- numeric tables ---------------------------------------------------------------------------
def model_table(results: Results) -> "pd.DataFrame":
    """One row per trained model: dataset, backend, architecture, seed, accuracy (and r2, the
    test R², when a regression model is present; NaN in the other task's column), train_seconds,
    weights_from (the backend whose weights were copied in, from the training params'
    ``weights_from``: a backend name or a model key; None for a model trained itself) and
    params (the architecture's parameters as "k=v, ...", e.g. VGG16's ``weights=none``)."""
    models = results.models
    backend_of = dict(zip(models["model_key"], models["backend"]))
    source = models["train_params"].map(lambda params: params.get("weights_from"))
    params = models["evaluation"].map(lambda evaluation: _params_text(evaluation.get("params")
                                                                      or {}))
    columns = ["dataset", "backend", "architecture", "seed", *_test_scores(models),
               "train_seconds"]
    return (models[columns].assign(weights_from=source.map(lambda s: backend_of.get(s, s)),
                                   params=params)
            .sort_values(columns[:4], ignore_index=True))


def summary_table(results: Results) -> "pd.DataFrame":
    """One row per finished dataset x backend x architecture x explainer x masker x params.

    Columns: the identity, ``cells`` (seeds pooled), ``images``, model ``accuracy`` (and
    ``r2`` when a regression model is present; means over the rows' models),
    ``seconds_per_image``, ``evals_per_image`` and, per metric, ``<metric>_mean`` and
    ``<metric>_ci95`` over the images where it is defined (each image's score is its mean
    over explained outputs) and ``<metric>_undefined``, the number of images where it is not
    (NaN, stored as NULL).
    """
    test_scores = _test_scores(results.models)
    done = results.cells[results.cells["status"] == "done"].merge(
        results.models[["model_key", *test_scores]], on="model_key", how="left")
    table = done.groupby(IDENTITY, as_index=False).agg(
        cells=("cell_key", "size"), images=("n_images", "sum"),
        **{score: (score, "mean") for score in test_scores},
        wall_seconds=("wall_seconds", "sum"), model_evals=("model_evals", "sum"))
    table["seconds_per_image"] = table.pop("wall_seconds") / table["images"]
    table["evals_per_image"] = table.pop("model_evals") / table["images"]
    scores = results.scores.merge(done[["cell_key", *IDENTITY]], on="cell_key")
    for metric, rows in scores.groupby("metric"):
        stats = rows.groupby(IDENTITY)["value"].agg(["mean", lambda v: float(ci95(v)),
                                                      lambda v: int(v.isna().sum())])
        stats.columns = [f"{metric}_{stat}" for stat in STATS]
        table = table.merge(stats, left_on=IDENTITY, right_index=True, how="left")
    return table.sort_values(ORDER, ignore_index=True)


#: per-metric columns of the summary and leaderboard, ``<metric>_<stat>``
STATS = ("mean", "ci95", "undefined")
#: means closer than this share of a metric's spread (within a dataset) rank as ties
RANK_TIE_SHARE = 1e-3


def _snap_to_spread(means: "pd.Series") -> "pd.Series":
    """Means rounded to ``RANK_TIE_SHARE`` of their spread, so negligible differences (1e-7
    additivity gaps, float round-off between frameworks) do not decide a rank."""
    step = RANK_TIE_SHARE * (means.max() - means.min())
    return (means / step).round() if step > 0 else means


#: per-metric columns of the leaderboard: mean and bootstrap 95 % interval over images
LEADERBOARD_STATS = ("mean", "low", "high", "undefined")


def leaderboard(results: Results) -> "pd.DataFrame":
    """The summary ranked per dataset: identity, cells, images, per quality metric (costs are
    in :func:`runtime_table`) ``<metric>_mean``, ``<metric>_low`` and ``<metric>_high`` (the
    percentile bootstrap 95 % interval over images) and ``<metric>_undefined``; ``rank``, the
    median over the ranked metrics (:attr:`Results.ranked_metrics`) of the row's rank within its
    dataset (1 = best; ties share their average rank; means closer than
    :data:`RANK_TIE_SHARE` of the spread tie); ``below_baselines``, the :data:`BASELINES` of the
    same model that the row does not beat (:func:`flags`). Sorted by dataset, then rank."""
    import pandas as pd

    summary = summary_table(results)
    metrics, ranked = results.quality_metrics, results.ranked_metrics
    table = summary[[*IDENTITY, "cells", "images"]].merge(
        _intervals(results, metrics), on=IDENTITY, how="left")
    for metric in metrics:
        table[f"{metric}_mean"] = summary[f"{metric}_mean"].to_numpy()
        table[f"{metric}_undefined"] = summary[f"{metric}_undefined"].to_numpy()
    table = table[[*IDENTITY, "cells", "images",
                   *(f"{m}_{stat}" for m in metrics for stat in LEADERBOARD_STATS)]]
    snapped = pd.DataFrame({m: table.groupby("dataset")[f"{m}_mean"].transform(_snap_to_spread)
                            for m in ranked}, index=table.index, dtype=float)
    rank = pd.Series(np.nan, index=table.index)
    measure = results.scores.groupby("metric")["measure"].first().to_dict()
    for rows in table.groupby("dataset").groups.values():
        rank[rows] = median_rank(snapped.loc[rows], results.higher_is_better, measure)
    table = table.assign(rank=rank)
    table["below_baselines"] = flags(table, ranked, results.higher_is_better)
    return table.sort_values(["dataset", "rank", *ORDER[1:]], ignore_index=True)


def _intervals(results: Results, metrics: list[str]) -> "pd.DataFrame":
    """Identity and ``<metric>_low``, ``<metric>_high``: the percentile bootstrap 95 % interval
    of each configuration's mean over images (seeds pooled)."""
    import pandas as pd

    done = results.cells[results.cells["status"] == "done"]
    scores = results.scores[results.scores["metric"].isin(metrics)].merge(
        done[["cell_key", *IDENTITY]], on="cell_key")
    intervals = {(*key[:-1], f"{key[-1]}_{stat}"): bound
                 for key, values in scores.groupby([*IDENTITY, "metric"])["value"]
                 for stat, bound in zip(("low", "high"), bootstrap_ci(values.to_numpy()))}
    columns = [f"{m}_{stat}" for m in metrics for stat in ("low", "high")]
    if not intervals:
        return pd.DataFrame(columns=[*IDENTITY, *columns])
    wide = pd.Series(intervals).unstack(-1).reindex(columns=columns)
    return wide.rename_axis(IDENTITY).reset_index()


def flags(table: "pd.DataFrame", metrics: list[str],
          higher_is_better: dict[str, bool]) -> "pd.Series":
    """Per row of a leaderboard-shaped ``table`` (identity and ``<metric>_mean``): the
    :data:`BASELINES` it does not beat, comma-separated ("" when it beats every one present).
    A row beats a baseline when its means are better than the best of that baseline's rows for
    the same dataset, backend and architecture on most of ``metrics`` (:func:`beats`); baseline
    rows are not flagged."""
    import pandas as pd

    model = ["dataset", "backend", "architecture"]
    means = table[[f"{m}_mean" for m in metrics]].set_axis(metrics, axis=1).astype(float)
    best = {}
    for (baseline, *key), rows in means.groupby([table["explainer"], *(table[c] for c in model)]):
        if baseline in BASELINES:
            best[baseline, *key] = pd.Series(
                {m: rows[m].max() if higher_is_better[m] else rows[m].min() for m in metrics})
    below = []
    for index, row in table.iterrows():
        key = tuple(row[c] for c in model)
        below.append("" if row["explainer"] in BASELINES else ", ".join(
            baseline for baseline in BASELINES if (baseline, *key) in best
            and not beats(means.loc[index], best[(baseline, *key)], higher_is_better)))
    return pd.Series(below, index=table.index, dtype=object)


def seed_table(results: Results) -> "pd.DataFrame":
    """Across-seed spread of each configuration run with several seeds: identity, ``seeds``
    (its cells) and per quality metric ``<metric>_seed_std``, the standard deviation over its
    cells of their mean over images."""
    done = results.cells[results.cells["status"] == "done"]
    metrics = results.quality_metrics
    scores = results.scores[results.scores["metric"].isin(metrics)].merge(
        done[["cell_key", *IDENTITY]], on="cell_key")
    per_seed = (scores.groupby([*IDENTITY, "cell_key", "metric"])["value"].mean()
                .unstack("metric").reindex(columns=metrics).rename_axis(columns=None)
                .reset_index())
    return seed_std(per_seed, IDENTITY, "cell_key", metrics).sort_values(ORDER,
                                                                          ignore_index=True)


def home_advantage_table(results: Results) -> "pd.DataFrame":
    """Per configuration whose masker is also a ruler, and per metric scored under rulers: its
    mean score under its own ruler (``own``, the masker it explained with), the mean and the
    median over the other rulers of its mean score under each (``others_mean``,
    ``others_median``), and ``advantage`` = own − others_mean, signed so that > 0 means the
    row scores *better* under its own perturbation. Identity, ``metric``, those columns."""
    import pandas as pd

    done = results.cells[results.cells["status"] == "done"]
    scores = results.scores[results.scores["ruler"] != ""].merge(
        done[["cell_key", *IDENTITY]], on="cell_key")
    means = (scores.groupby([*IDENTITY, "measure", "ruler"], as_index=False)
             .agg(value=("value", "mean"), higher_is_better=("higher_is_better", "first")))
    rows = []
    for (*identity, measure), group in means.groupby([*IDENTITY, "measure"], sort=False):
        masker = identity[IDENTITY.index("masker")]
        own, others = group[group["ruler"] == masker], group[group["ruler"] != masker]
        if own.empty or others.empty:
            continue
        own_mean = float(own["value"].iloc[0])
        sign = 1.0 if bool(own["higher_is_better"].iloc[0]) else -1.0
        rows.append({**dict(zip(IDENTITY, identity)), "metric": measure, "own": own_mean,
                     "others_mean": others["value"].mean(),
                     "others_median": others["value"].median(),
                     "advantage": sign * (own_mean - others["value"].mean())})
    columns = [*IDENTITY, "metric", "own", "others_mean", "others_median", "advantage"]
    return (pd.DataFrame(rows, columns=columns)
            .sort_values([*ORDER, "metric"], ignore_index=True))


def runtime_table(results: Results) -> "pd.DataFrame":
    """Cost of each configuration: identity, cells, images, seconds_per_image, evals_per_image
    and evals_per_second (model evaluations per second of explaining). Fastest first."""
    summary = summary_table(results)
    table = summary[[*IDENTITY, "cells", "images", "seconds_per_image", "evals_per_image"]]
    rate = table["evals_per_image"].astype(float) / table["seconds_per_image"].astype(float)
    return (table.assign(evals_per_second=rate.where(np.isfinite(rate)))
            .sort_values(["dataset", "seconds_per_image", *ORDER[1:]], ignore_index=True))


def failure_table(results: Results) -> "pd.DataFrame":
    """The failed cells: identity, seed and error message."""
    failed = results.cells[results.cells["status"] == "failed"]
    return failed[[*IDENTITY, "seed", "error"]].sort_values(ORDER, ignore_index=True)


# --- shown tables -----------------------------------------------------------------------------
def shown_identity(rows: "pd.DataFrame") -> list[str]:
    """Identity columns worth showing: backend, explainer, masker, the architecture where it
    varies and the params where they vary for one backend x architecture x explainer x masker."""
    shown = ["backend", "architecture", "explainer", "masker", "params"]
    if rows["architecture"].nunique() < 2:
        shown.remove("architecture")
    if rows.empty or rows.groupby(shown[:-1])["params"].nunique().max() < 2:
        shown.remove("params")
    return shown


def config_labels(rows: "pd.DataFrame") -> list[str]:
    """A short unique label per row: its shown identity joined by " / " (no empty parts)."""
    identity = shown_identity(rows)
    return [" / ".join(str(row[c]) for c in identity if row[c] != "") for _, row in rows.iterrows()]


def _number(values: "pd.Series", spec: str) -> "pd.Series":
    """Numbers formatted by ``spec``, missing ones as a dash."""
    import pandas as pd

    return values.map(lambda value: "—" if pd.isna(value) else format(value, spec))


def _texts(rows: "pd.DataFrame", columns: list[str], notation: Notation) -> "pd.DataFrame":
    """Text columns escaped for the format, empty ones as a dash."""
    return (rows[columns].map(lambda text: notation.escape(str(text)) if text != "" else "—")
            .reset_index(drop=True))


def show_plain(rows: "pd.DataFrame", texts: list[str], numbers: dict[str, tuple[str, str]],
               notation: Notation, best: dict[str, bool] | None = None) -> Shown:
    """``rows`` as strings: the ``texts`` columns escaped, then each shown column of ``numbers``
    (shown name -> (column, format spec)); ``best`` (shown name -> higher is better) marks
    each such column's best value."""
    import pandas as pd

    cells = _texts(rows, texts, notation)
    for shown, (column, spec) in numbers.items():
        cells[shown] = _number(rows[column], spec).to_numpy()
    bold = pd.DataFrame(False, index=cells.index, columns=cells.columns)
    for shown, higher in (best or {}).items():
        values = rows[numbers[shown][0]].reset_index(drop=True)
        bold[shown] = values == (values.max() if higher else values.min())
    return Shown(cells, bold, tuple(numbers))


def header(metric: str, higher: bool, notation: Notation) -> str:
    """A metric's column header: its name and the direction of better, e.g. "deletion auc ↓"
    (a ruler kept as written: "deletion auc@inpaint_telea ↓")."""
    name, at, ruler = metric.partition("@")
    return (f"{notation.escape(name.replace('_', ' ') + at + ruler)} "
            f"{notation.up if higher else notation.down}")


def show_leaderboard(rows: "pd.DataFrame", higher_is_better: dict[str, bool],
                     notation: Notation) -> Shown:
    """One dataset's leaderboard rows as strings: each metric as "mean [low, high]" (with the
    number of images where it is undefined), the best median rank and metric means in bold,
    rows below a baseline marked with the notation's flag after the explainer."""
    flagged = (rows["below_baselines"] != "").to_numpy()
    shown = show_plain(rows, shown_identity(rows), {"images": ("images", "d"),
                                                    "median rank": ("rank", ".1f")},
                       notation, best={"median rank": False})
    shown.cells.loc[flagged, "explainer"] += f" {notation.flag}"
    numeric = list(shown.numeric)
    for metric in [c.removesuffix("_mean") for c in rows.columns if c.endswith("_mean")]:
        higher, mean = higher_is_better[metric], rows[f"{metric}_mean"].reset_index(drop=True)
        name = header(metric, higher, notation)
        shown.cells[name] = [_mean_interval(m, low, high, u) for m, low, high, u in
                             zip(mean, rows[f"{metric}_low"], rows[f"{metric}_high"],
                                 rows[f"{metric}_undefined"])]
        shown.best[name] = mean == (mean.max() if higher else mean.min())
        numeric.append(name)
    return Shown(shown.cells, shown.best, tuple(numeric))


def _mean_interval(mean: float, low: float, high: float, undefined: float) -> str:
    """"mean [low, high]", with the number of images where the metric is undefined when there
    are (``undefined`` is NaN for a configuration without the metric)."""
    shown = "—" if np.isnan(mean) else \
        f"{mean:.3g}" if np.isnan(low) else f"{mean:.3g} [{low:.3g}, {high:.3g}]"
    return f"{shown} ({undefined:.0f} undefined)" if undefined > 0 else shown


def show_seeds(rows: "pd.DataFrame", notation: Notation) -> Shown:
    """One dataset's seed-spread rows as strings: seeds and each metric's across-seed std."""
    metrics = [c.removesuffix("_seed_std") for c in rows.columns if c.endswith("_seed_std")]
    return show_plain(rows, shown_identity(rows), {
        "seeds": ("seeds", "d"),
        **{f"{notation.escape(m.replace('_', ' '))} std": (f"{m}_seed_std", ".3g")
           for m in metrics}}, notation)


def show_home_advantage(rows: "pd.DataFrame", notation: Notation) -> Shown:
    """One dataset's home-advantage rows as strings; the largest advantage in bold."""
    return show_plain(rows, [*shown_identity(rows), "metric"], {
        "own ruler": ("own", ".3g"), "other rulers: mean": ("others_mean", ".3g"),
        "median": ("others_median", ".3g"), "advantage": ("advantage", "+.3g")},
        notation, best={"advantage": True})


def show_runtime(rows: "pd.DataFrame", notation: Notation) -> Shown:
    """One dataset's runtime rows as strings; the cheapest and fastest in bold."""
    return show_plain(rows, shown_identity(rows), {
        "images": ("images", "d"), "s / image": ("seconds_per_image", ".3g"),
        "evals / image": ("evals_per_image", ",.0f"), "evals / s": ("evals_per_second", ",.0f")},
        notation, best={"s / image": False, "evals / image": False, "evals / s": True})


def show_models(rows: "pd.DataFrame", notation: Notation) -> Shown:
    """One dataset's models as strings (with "weights from" where a model's were copied,
    "params" where a model has architecture parameters, and the test accuracy or R² as the
    models' task has)."""
    texts = ["backend", "architecture"]
    if (rows["params"] != "").any():
        texts.append("params")
    if rows["weights_from"].notna().any():
        rows = rows.assign(**{"weights from": rows["weights_from"].fillna("")})
        texts.append("weights from")
    scores = {"accuracy": ("accuracy", ".3f")}
    if "r2" in rows and rows["r2"].notna().any():  # regression models: R² (accuracy if mixed)
        scores = {**({} if rows["accuracy"].isna().all() else scores), "R2": ("r2", ".3f")}
    return show_plain(rows, texts, {"seed": ("seed", "d"), **scores,
                                    "training s": ("train_seconds", ".1f")}, notation)


def show_failures(rows: "pd.DataFrame", notation: Notation) -> Shown:
    """One dataset's failed cells: configuration, seed and the last line of the error."""
    return show_plain(rows.assign(seed=rows["seed"].astype(str),
                                  error=rows["error"].map(_last_line)),
                      [*shown_identity(rows), "seed", "error"], {}, notation)


def _last_line(error: str | None) -> str:
    """The last non-empty line of an error message (the exception line of a traceback)."""
    lines = [line.strip() for line in (error or "").splitlines() if line.strip()]
    return lines[-1] if lines else "no error message"
