"""Result tables read from the store: models, one row per explained configuration, failures.

The numeric tables (``model_table``, ``summary_table``, ``failure_table``) are plain DataFrames
(``report.csv`` is ``summary_table`` as is); ``show_*`` turn one dataset's rows into strings for a
document format.
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


@dataclass(frozen=True)
class Results:
    """What a report shows, read once from a results directory's store."""

    store: Store
    meta: dict[str, Any]
    models: "pd.DataFrame"
    #: the cells table; ``masker`` "" when none, ``params`` as "k=v, ..." text without seed
    cells: "pd.DataFrame"
    #: one score per cell, metric and image (mean over the explained outputs)
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
                  .agg(value=("value", "mean"), higher_is_better=("higher_is_better", "first")))
        return cls(store, store.meta(), store.frame("models"), cells, scores)

    @property
    def datasets(self) -> list[str]:
        """Every dataset with a model or a cell, sorted."""
        return sorted(set(self.models["dataset"]) | set(self.cells["dataset"]))

    @property
    def higher_is_better(self) -> dict[str, bool]:
        """Direction of each metric in the store, by name."""
        return self.scores.groupby("metric")["higher_is_better"].first().to_dict()

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
        gap = Attribution(cell.explainer, arrays["values"], arrays["output_indices"],
                          arrays["base_values"], arrays["model_outputs"], cell.wall_seconds,
                          cell.model_evals).additivity_gap()
        image, output = np.indices(gap.shape).reshape(2, -1)
        frames.append(pd.DataFrame({
            "cell_key": cell.cell_key, "metric": AdditivityGap.name, "image": image,
            "output": output, "value": gap.ravel(),
            "higher_is_better": AdditivityGap.higher_is_better,
            "category": AdditivityGap.category}))
    return pd.concat(frames, ignore_index=True) if frames else metrics


def _ci95(values: "pd.Series") -> float:
    """Half-width of the 95 % Student-t confidence interval of the mean (NaN below 2 values)."""
    from scipy import stats

    values = values.dropna()
    if len(values) < 2:
        return float("nan")
    return float(stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values)))


# --- numeric tables ---------------------------------------------------------------------------
def model_table(results: Results) -> "pd.DataFrame":
    """One row per trained model: dataset, backend, architecture, seed, accuracy, train_seconds."""
    columns = ["dataset", "backend", "architecture", "seed", "accuracy", "train_seconds"]
    return results.models[columns].sort_values(columns[:4], ignore_index=True)


def summary_table(results: Results) -> "pd.DataFrame":
    """One row per finished dataset x backend x architecture x explainer x masker x params.

    Columns: the identity, ``cells`` (seeds pooled), ``images``, model ``accuracy`` (mean over
    the rows' models), ``seconds_per_image``, ``evals_per_image`` and, per metric, ``<metric>_mean``
    and ``<metric>_ci95`` (over images; each image's score is its mean over explained outputs).
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
        stats = rows.groupby(IDENTITY)["value"].agg(["mean", _ci95])
        stats.columns = [f"{metric}_mean", f"{metric}_ci95"]
        table = table.merge(stats, left_on=IDENTITY, right_index=True, how="left")
    return table.sort_values(ORDER, ignore_index=True)


def failure_table(results: Results) -> "pd.DataFrame":
    """The failed cells: identity, seed and error message."""
    failed = results.cells[results.cells["status"] == "failed"]
    return failed[[*IDENTITY, "seed", "error"]].sort_values(ORDER, ignore_index=True)


# --- shown tables -----------------------------------------------------------------------------
def shown_identity(rows: "pd.DataFrame") -> list[str]:
    """Identity columns worth showing: backend, explainer, masker, and architecture and params
    where they vary."""
    varying = {column for column in ("architecture", "params") if rows[column].nunique() > 1}
    return [c for c in ("backend", "architecture", "explainer", "masker", "params")
            if c in varying or c in ("backend", "explainer", "masker")]


def _number(values: "pd.Series", spec: str) -> "pd.Series":
    """Numbers formatted by ``spec``, missing ones as a dash."""
    import pandas as pd

    return values.map(lambda value: "—" if pd.isna(value) else format(value, spec))


def _mean_ci(mean: float, ci: float, notation: Notation) -> str:
    if np.isnan(mean):
        return "—"
    return f"{mean:.3g}" if np.isnan(ci) else f"{mean:.3g} {notation.pm} {ci:.2g}"


def _texts(rows: "pd.DataFrame", columns: list[str], notation: Notation) -> "pd.DataFrame":
    """Text columns escaped for the format, empty ones as a dash."""
    return rows[columns].map(lambda text: notation.escape(str(text)) if text != "" else "—")


def _no_bold(cells: "pd.DataFrame") -> "pd.DataFrame":
    import pandas as pd

    return pd.DataFrame(False, index=cells.index, columns=cells.columns)


def show_summary(rows: "pd.DataFrame", higher_is_better: dict[str, bool],
                 notation: Notation) -> Shown:
    """One dataset's summary rows as strings; the best mean of each metric is marked."""
    cells = _texts(rows, shown_identity(rows), notation)
    cells["images"] = rows["images"].astype(str)
    cells["accuracy"] = _number(rows["accuracy"], ".3f")
    cells["s / image"] = _number(rows["seconds_per_image"], ".3g")
    cells["evals / image"] = _number(rows["evals_per_image"], ",.0f")
    numeric = list(cells.columns[-4:])
    best = _no_bold(cells)
    for metric, higher in sorted(higher_is_better.items()):
        mean, ci = rows[f"{metric}_mean"], rows[f"{metric}_ci95"]
        header = (f"{notation.escape(metric.replace('_', ' '))} "
                  f"{notation.up if higher else notation.down}")
        cells[header] = [_mean_ci(m, c, notation) for m, c in zip(mean, ci)]
        best[header] = mean == (mean.max() if higher else mean.min())
        numeric.append(header)
    return Shown(cells, best, tuple(numeric))


def show_models(rows: "pd.DataFrame", notation: Notation) -> Shown:
    """One dataset's models as strings."""
    cells = _texts(rows, ["backend", "architecture"], notation)
    cells["seed"] = rows["seed"].astype(str)
    cells["accuracy"] = _number(rows["accuracy"], ".3f")
    cells["training s"] = _number(rows["train_seconds"], ".1f")
    return Shown(cells, _no_bold(cells), ("seed", "accuracy", "training s"))


def failure_lines(rows: "pd.DataFrame") -> list[str]:
    """One line per failed cell: its configuration and the last line of its error."""
    identity = shown_identity(rows)
    return [" / ".join(str(row[c]) or "no masker" for c in identity)
            + f" (seed {row['seed']}): {_last_line(row['error'])}" for _, row in rows.iterrows()]


def _last_line(error: str | None) -> str:
    """The last non-empty line of an error message (the exception line of a traceback)."""
    lines = [line.strip() for line in (error or "").splitlines() if line.strip()]
    return lines[-1] if lines else "no error message"
