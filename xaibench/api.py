"""The Python API for notebooks: run an experiment and read its results as pandas DataFrames.

::

    import xaibench
    results = xaibench.run("experiments/quickstart.toml")   # or a dict shaped like the file
    results.leaderboard                                      # the report's leaderboard
    results.scores                                           # every metric value, long format
    shap.image_plot(results.explanation(results.cells.cell_key[0]))

Importing this module imports neither pandas nor a deep-learning framework: they are imported
when a run starts or a table is first read.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from xaibench.backend import Attribution
from xaibench.errors import ConfigError, DataError

if TYPE_CHECKING:
    import pandas as pd
    import shap

    from xaibench.experiment.config import ExperimentConfig
    from xaibench.experiment.runner import RunSummary

#: the columns of :attr:`ExperimentResults.cells`, in order (the store's ``wall_seconds`` and
#: ``model_evals`` renamed)
CELL_COLUMNS = ["cell_key", "dataset", "backend", "architecture", "model_key", "explainer",
                "masker", "params", "seed", "status", "error", "n_images", "seconds", "evals"]
#: the cell columns each row of :attr:`ExperimentResults.scores` carries
_SCORE_CELL_COLUMNS = ["cell_key", "dataset", "backend", "architecture", "explainer", "masker",
                       "params", "seed"]


def run(config: "ExperimentConfig | str | Path | Mapping[str, Any]",
        output: str | Path | None = None, *, progress: bool = True, replace: bool = False,
        cache_dir: str | Path | None = None) -> "ExperimentResults":
    """Run an experiment and return its results.

    ``config``: an :class:`ExperimentConfig`, the path of an experiment TOML file, or a dict
    shaped like one (validated exactly like the file). ``output`` overrides the config's
    results directory, ``replace`` discards the results it holds, ``cache_dir`` overrides the
    checkpoint cache root; cells already done there are not run again (see
    :func:`xaibench.experiment.runner.run`). The run's summary is ``results.summary``.
    """
    from xaibench.experiment.runner import run as run_experiment

    summary = run_experiment(experiment_config(config), output, progress=progress,
                             replace=replace,
                             cache_dir=None if cache_dir is None else Path(cache_dir))
    return ExperimentResults(summary.output, summary=summary)


def load(results_dir: str | Path) -> "ExperimentResults":
    """The results in ``results_dir`` (the output of a run); ConfigError naming the fix when
    it does not exist or holds no results store."""
    return ExperimentResults(results_dir)


def experiment_config(config: "ExperimentConfig | str | Path | Mapping[str, Any]"
                      ) -> "ExperimentConfig":
    """``config`` as a validated :class:`ExperimentConfig` (a path is read as a TOML file, a
    dict validated like one)."""
    from xaibench.experiment.config import ExperimentConfig, config_from_dict, load_config

    if isinstance(config, ExperimentConfig):
        return config
    if isinstance(config, (str, Path)):
        return load_config(config)
    if isinstance(config, Mapping):
        return config_from_dict(config)
    raise ConfigError(f"an experiment is an ExperimentConfig, the path of a TOML file or a dict "
                      f"shaped like one; got {type(config).__name__}")


class ExperimentResults:
    """The results of one results directory (its store read once) as DataFrames, each built
    on first use.

    ``cells``: one row per cell (:data:`CELL_COLUMNS`; ``masker`` "" when none, ``params``
    "k=v, ..." text without the seed, as in the report). ``scores``: one row per cell,
    metric, image and explained output (``output`` is the rank k of the targets), with the
    cell's identity. ``leaderboard``: the report's leaderboard. ``models``: the stored models
    (accuracy, training time and params, evaluation).
    """

    def __init__(self, root: str | Path, *, summary: "RunSummary | None" = None) -> None:
        from xaibench.experiment.store import require_store
        from xaibench.report.tables import Results

        self.root = Path(root)
        #: what the run that returned these results did (None when loaded)
        self.summary = summary
        require_store(self.root)
        self._results = Results.load(self.root)

    def __repr__(self) -> str:
        counts = self._results.cells["status"].value_counts()
        return (f"ExperimentResults({str(self.root)!r}: {len(self._results.cells)} cells, "
                f"{counts.get('done', 0)} done, {counts.get('failed', 0)} failed)")

    @functools.cached_property
    def cells(self) -> "pd.DataFrame":
        from xaibench.report.tables import ORDER

        cells = self._results.cells.rename(columns={"wall_seconds": "seconds",
                                                    "model_evals": "evals"})
        return cells[CELL_COLUMNS].sort_values([*ORDER, "seed"], ignore_index=True)

    @functools.cached_property
    def scores(self) -> "pd.DataFrame":
        from xaibench.report.tables import _with_additivity

        store = self._results.store
        metrics = _with_additivity(store, self._results.cells, store.frame("metrics"))
        return (self.cells[_SCORE_CELL_COLUMNS]
                .merge(metrics, on="cell_key", validate="one_to_many")
                .sort_values(["cell_key", "metric", "image", "output"], ignore_index=True))

    @functools.cached_property
    def leaderboard(self) -> "pd.DataFrame":
        from xaibench.report.tables import leaderboard

        return leaderboard(self._results)

    @functools.cached_property
    def models(self) -> "pd.DataFrame":
        return self._results.models.sort_values(["dataset", "backend", "architecture", "seed"],
                                                ignore_index=True)

    def attribution(self, cell_key: str) -> Attribution:
        """The attribution a done cell computed, from its stored arrays (values float32 as
        stored)."""
        cell = self._done_cell(cell_key)
        arrays = self._results.store.load_arrays(cell_key)
        return Attribution(cell["explainer"], arrays["values"], arrays["output_indices"],
                           arrays["base_values"], arrays["model_outputs"],
                           float(cell["seconds"]), int(cell["evals"]),
                           layer_values=arrays.get("layer_values"))

    def explanation(self, cell_key: str) -> "shap.Explanation":
        """A done cell's attribution as a ``shap.Explanation`` with its images and class
        names, ready for ``shap.image_plot``."""
        cell = self._done_cell(cell_key)
        images = self._results.store.load_arrays(cell_key)["images"]
        class_names = (self._results.meta.get("class_names") or {}).get(cell["dataset"])
        return self.attribution(cell_key).to_shap(images, class_names)

    def _done_cell(self, cell_key: str) -> "pd.Series":
        """The row of ``cell_key`` in :attr:`cells`; DataError naming the fix when there is
        none or the cell failed."""
        rows = self.cells[self.cells["cell_key"] == cell_key]
        if rows.empty:
            raise DataError(f"no cell {cell_key!r} in {self.root}; take a key from the "
                            f"cell_key column of results.cells")
        cell = rows.iloc[0]
        if cell["status"] != "done":
            raise DataError(f"cell {cell_key} ({cell['explainer']} on {cell['backend']}:"
                            f"{cell['architecture']}) {cell['status']}: {cell['error']}; run "
                            f"the experiment again to retry it")
        return cell
