"""Result tables read from the store: models, leaderboard, runtime, failures.

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

if TYPE_CHECKING:
    import pandas as pd

#: what identifies one row of the summary (cells differing only in seed are pooled)
IDENTITY = ["dataset", "backend", "architecture", "explainer", "masker", "params"]
#: row order: explainers side by side across backends
ORDER = ["dataset", "explainer", "masker", "backend", "architecture", "params"]
#: metric category of cost metrics: in the runtime table, not in the leaderboard
COST = "cost"
#: order of the leaderboard's metric columns by category (others after them, by name)
CATEGORIES = ("faithfulness", "fidelity", "randomisation", "localisation", "robustness",
              "complexity")


@dataclass(frozen=True)
class Results:
    """What a report shows, read once from a results directory's store."""

    store: Store
    meta: dict[str, Any]
    models: "pd.DataFrame"
    #: the cells table; ``masker`` "" when none, ``params`` as "k=v, ..." text without seed
    cells: "pd.DataFrame"
    #: one score per cell, metric and image (mean over the explained outputs), with the metric's
    #: ``higher_is_better`` and ``category``
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
        scores = (metrics.groupby(["cell_key", "metric", "image"], as_index=False)
                  .agg(value=("value", "mean"), higher_is_better=("higher_is_better", "first"),
                       category=("category", "first")))
        return cls(store, store.meta(), store.frame("models"), cells, scores)

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
            "category": AdditivityGap.category}))
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
    """One row per trained model: dataset, backend, architecture, seed, accuracy, train_seconds,
    weights_from (the backend whose weights were copied in, from the training params'
    ``weights_from``: a backend name or a model key; None for a model trained itself)."""
    models = results.models
    backend_of = dict(zip(models["model_key"], models["backend"]))
    source = models["train_params"].map(lambda params: params.get("weights_from"))
    columns = ["dataset", "backend", "architecture", "seed", "accuracy", "train_seconds"]
    return (models[columns].assign(weights_from=source.map(lambda s: backend_of.get(s, s)))
            .sort_values(columns[:4], ignore_index=True))


def summary_table(results: Results) -> "pd.DataFrame":
    """One row per finished dataset x backend x architecture x explainer x masker x params.

    Columns: the identity, ``cells`` (seeds pooled), ``images``, model ``accuracy`` (mean over
    the rows' models), ``seconds_per_image``, ``evals_per_image`` and, per metric, ``<metric>_mean``
    and ``<metric>_ci95`` over the images where it is defined (each image's score is its mean
    over explained outputs) and ``<metric>_undefined``, the number of images where it is not
    (NaN, stored as NULL).
    """
    done = results.cells[results.cells["status"] == "done"].merge(
        results.models[["model_key", "accuracy"]], on="model_key", how="left")
    table = done.groupby(IDENTITY, as_index=False).agg(
        cells=("cell_key", "size"), images=("n_images", "sum"), accuracy=("accuracy", "mean"),
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


def leaderboard(results: Results) -> "pd.DataFrame":
    """The summary ranked per dataset: identity, cells, images, ``<metric>_mean``,
    ``<metric>_ci95`` and ``<metric>_undefined`` of the quality metrics (costs are in
    :func:`runtime_table`) and ``rank``, the mean over metrics of the row's rank within its
    dataset (1 = best; NaN means skipped; ties share the best rank).
    Sorted by dataset, then rank."""
    import pandas as pd

    summary = summary_table(results)
    metrics, higher = results.quality_metrics, results.higher_is_better
    stats = [f"{metric}_{stat}" for metric in metrics for stat in STATS]
    table = summary[[*IDENTITY, "cells", "images", *stats]]
    ranks = pd.DataFrame({metric: table.groupby("dataset")[f"{metric}_mean"]
                         .transform(_snap_to_spread).groupby(table["dataset"])
                         .rank(ascending=not higher[metric], method="min") for metric in metrics},
                         index=table.index, dtype=float)
    return (table.assign(rank=ranks.mean(axis=1))
            .sort_values(["dataset", "rank", *ORDER[1:]], ignore_index=True))


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


def _mean_ci(mean: float, ci: float, undefined: float, notation: Notation) -> str:
    """"mean ± ci", with the number of images where the metric is undefined when there are
    (``undefined`` is NaN for a configuration without the metric)."""
    shown = "—" if np.isnan(mean) else \
        f"{mean:.3g}" if np.isnan(ci) else f"{mean:.3g} {notation.pm} {ci:.2g}"
    return f"{shown} ({undefined:.0f} undefined)" if undefined > 0 else shown


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
    """A metric's column header: its name and the direction of better, e.g. "deletion auc ↓"."""
    return f"{notation.escape(metric.replace('_', ' '))} {notation.up if higher else notation.down}"


def show_leaderboard(rows: "pd.DataFrame", higher_is_better: dict[str, bool],
                     notation: Notation) -> Shown:
    """One dataset's leaderboard rows as strings; the best rank and metric means in bold, the
    number of images where a metric is undefined after its mean."""
    shown = show_plain(rows, shown_identity(rows), {"images": ("images", "d"),
                                                    "rank": ("rank", ".2f")},
                       notation, best={"rank": False})
    numeric = list(shown.numeric)
    for metric in [c.removesuffix("_mean") for c in rows.columns if c.endswith("_mean")]:
        higher, mean = higher_is_better[metric], rows[f"{metric}_mean"].reset_index(drop=True)
        name = header(metric, higher, notation)
        shown.cells[name] = [_mean_ci(m, c, u, notation) for m, c, u in
                             zip(mean, rows[f"{metric}_ci95"], rows[f"{metric}_undefined"])]
        shown.best[name] = mean == (mean.max() if higher else mean.min())
        numeric.append(name)
    return Shown(shown.cells, shown.best, tuple(numeric))


def show_runtime(rows: "pd.DataFrame", notation: Notation) -> Shown:
    """One dataset's runtime rows as strings; the cheapest and fastest in bold."""
    return show_plain(rows, shown_identity(rows), {
        "images": ("images", "d"), "s / image": ("seconds_per_image", ".3g"),
        "evals / image": ("evals_per_image", ",.0f"), "evals / s": ("evals_per_second", ",.0f")},
        notation, best={"s / image": False, "evals / image": False, "evals / s": True})


def show_models(rows: "pd.DataFrame", notation: Notation) -> Shown:
    """One dataset's models as strings (with "weights from" where a model's were copied)."""
    texts = ["backend", "architecture"]
    if rows["weights_from"].notna().any():
        rows = rows.assign(**{"weights from": rows["weights_from"].fillna("")})
        texts.append("weights from")
    return show_plain(rows, texts, {"seed": ("seed", "d"), "accuracy": ("accuracy", ".3f"),
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
