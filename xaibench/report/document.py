"""The report of a results directory: ``report.{md,html,tex}``, CSV tables and figures.

Layout of what :func:`render` writes into the results directory::

    report.md / report.html / report.tex   the documents (report.html is self-contained)
    report.csv                             summary_table: every number of every configuration
    tables/<table>.csv                     leaderboard, home_advantage, runtime, models,
                                           parity, failures, seeds, agreement_<dataset>,
                                           metric_agreement_<dataset>, friedman_<dataset>
                                           (with "csv")
    tables/<table>_<dataset>.tex           each document table as a LaTeX fragment (with "tex")
    figures/<figure>_<dataset>.{png,svg}   explanations, topk, curves, runtime, budget,
                                           agreement, metric_agreement, cd, mprt

A tabular dataset (:mod:`.tabular`) shows feature importance, a beeswarm summary and the
agreement of the feature rankings instead of the image explanations; its tables add
``feature_importance_<dataset>`` and ``feature_agreement_<dataset>``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

from xaibench.registry import did_you_mean
from xaibench.errors import ConfigError, DataError
from xaibench.experiment.store import Store
from xaibench.report import plots, tabular
from xaibench.report._formats import WRITERS, Notation, Shown, Writer
from xaibench.report.figures import explanation_figure, topk_figure
from xaibench.report.pairwise import agreement_table, parity_table, show_agreement, show_parity
from xaibench.report.rankings import (MetricTest, budget_table, friedman_table, friedman_tests,
                                      metric_agreement, show_friedman, show_metric_agreement)
from xaibench.report.tables import (BASELINES, Results, failure_table, home_advantage_table,
                                    leaderboard, model_table, runtime_table, seed_table,
                                    show_failures, show_home_advantage, show_leaderboard,
                                    show_models, show_runtime, show_seeds, summary_table)

if TYPE_CHECKING:
    import pandas as pd

FORMATS = ("md", "csv", "tex", "html")
_CONFIG_KEY = "config"
_HIDDEN_KEYS = {"class_names", "feature_names", "resolved_config", "schema_version",
                _CONFIG_KEY}


@dataclass(frozen=True)
class _Table:
    """A table of the document; ``name`` is its file stem in ``tables/``."""

    name: str
    caption: str
    show: Callable[[Notation], Shown]


@dataclass(frozen=True)
class _Figure:
    path: Path
    caption: str


#: one section of a dataset: heading and what it shows
_Section = tuple[str, list["_Table | _Figure"]]


def render(results_dir: str | Path, formats: Iterable[str] = ("md", "csv", "html")) -> list[Path]:
    """Render the report of ``results_dir`` from its store; return the files written.

    ``formats``: any of md, csv, tex, html (see the module notes for what each writes).
    """
    formats = _checked(list(formats))
    root = Path(results_dir)
    results = Results.load(root)
    with _writing(root):
        return _render(results, formats, root)


def parse_formats(text: str) -> list[str]:
    """The formats of a comma-separated ``--format`` value; ConfigError if it names none or
    an unknown one."""
    return _checked([part.strip() for part in text.split(",") if part.strip()])


def _checked(formats: list[str]) -> list[str]:
    if not formats:
        raise ConfigError(f"no report format given; choose one or more of {', '.join(FORMATS)} "
                          f"(comma-separated, e.g. --format md,csv)")
    for name in formats:
        if name not in FORMATS:
            raise ConfigError(f"unknown report format '{name}'{did_you_mean(name, FORMATS)} "
                              f"(known: {', '.join(FORMATS)})")
    return formats


@contextlib.contextmanager
def _writing(root: Path) -> Iterator[None]:
    """Files of the report that cannot be written become one DataError naming the file."""
    try:
        yield
    except OSError as exc:
        raise DataError(f"cannot write the report file {exc.filename or root}: "
                        f"{exc.strerror or exc}; make {root} writable") from None


def _render(results: Results, formats: list[str], root: Path) -> list[Path]:
    tests = {dataset: friedman_tests(results, dataset) for dataset in results.datasets}
    numbers = _numbers(results, tests)
    written: list[Path] = []
    if "csv" in formats:
        written.append(root / "report.csv")
        summary_table(results).to_csv(written[-1], index=False)
        written += _write_csv(numbers, root / "tables")
    writers = [WRITERS[f] for f in formats if f in WRITERS]
    if not writers:
        return written
    sections = {dataset: _dataset_sections(results, numbers, tests[dataset], dataset, root)
                for dataset in results.datasets}
    figures = [block.path for parts in sections.values() for _, blocks in parts
               for block in blocks if isinstance(block, _Figure)]
    written += [path for png in figures for path in (png, png.with_suffix(".svg"))]
    for writer in writers:
        written.append(root / f"report.{writer.suffix}")
        written[-1].write_text(_document(results, writer, sections, root), encoding="utf-8")
        if writer.suffix == "tex":
            written += _write_fragments(writer, sections, root / "tables")
    return written


def _numbers(results: Results, tests: dict[str, list[MetricTest]]) -> dict[str, "pd.DataFrame"]:
    """The numeric tables, computed once: one frame per table; agreement, metric agreement and
    Friedman tests one per dataset."""
    board = leaderboard(results)
    return {"leaderboard": board, "home_advantage": home_advantage_table(results),
            "runtime": runtime_table(results),
            "models": model_table(results), "parity": parity_table(results),
            "failures": failure_table(results), "seeds": seed_table(results),
            **{f"agreement_{dataset}": agreement_table(results, dataset)
               for dataset in results.datasets},
            **{f"metric_agreement_{dataset}": metric_agreement(
                _of(board, dataset), results.ranked_metrics, results.higher_is_better)
               for dataset in results.datasets},
            **{f"friedman_{dataset}": friedman_table(tests[dataset])
               for dataset in results.datasets},
            **_feature_tables(results)}


def _feature_tables(results: Results) -> dict[str, "pd.DataFrame"]:
    """Feature importance and the agreement of its rankings, per tabular dataset."""
    tables = {}
    for dataset in results.datasets:
        importance = tabular.feature_importance(results, dataset)
        if not importance.empty:
            tables[f"feature_importance_{dataset}"] = importance
            tables[f"feature_agreement_{dataset}"] = tabular.ranking_agreement(importance)
    return tables


def _write_csv(numbers: dict[str, "pd.DataFrame"], folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in numbers.items():
        frame.to_csv(folder / f"{name}.csv",
                     index=name.startswith(("agreement_", "metric_agreement_", "feature_")))
    return [folder / f"{name}.csv" for name in numbers]


def _write_fragments(writer: Writer, sections: dict[str, list[_Section]],
                     folder: Path) -> list[Path]:
    """Each table of the documents as its own file, ``<name>.<suffix>``."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for parts in sections.values():
        for _, blocks in parts:
            for table in (block for block in blocks if isinstance(block, _Table)):
                written.append(folder / f"{table.name}.{writer.suffix}")
                written[-1].write_text(writer.table(table.show(writer.notation), table.caption),
                                       encoding="utf-8")
    return written


def _of(frame: "pd.DataFrame", dataset: str) -> "pd.DataFrame":
    return frame[frame["dataset"] == dataset].reset_index(drop=True)


def _dataset_sections(results: Results, numbers: dict[str, "pd.DataFrame"],
                      tests: list[MetricTest], dataset: str, root: Path) -> list[_Section]:
    """The sections of one dataset (empty ones left out); draws its figures."""
    board, runtime = _of(numbers["leaderboard"], dataset), _of(numbers["runtime"], dataset)
    home = _of(numbers["home_advantage"], dataset)
    models, failures = _of(numbers["models"], dataset), _of(numbers["failures"], dataset)
    parity, agreement = _of(numbers["parity"], dataset), numbers[f"agreement_{dataset}"]
    if len(agreement) < 2:  # a configuration agrees with itself: nothing to show
        agreement = agreement.iloc[:0]
    metrics_agreement = numbers[f"metric_agreement_{dataset}"]
    if len(metrics_agreement) < 2 or len(board) < 3:  # too few to rank
        metrics_agreement = metrics_agreement.iloc[:0]
    seeds, friedman = _of(numbers["seeds"], dataset), numbers[f"friedman_{dataset}"]
    sweeps = budget_table(results, board)
    higher = results.higher_is_better
    faithfulness = plots.faithfulness_metric(results)

    def figure(draw: Callable[[Results, str, Path], Path | None], name: str,
               caption: str) -> list[_Figure]:
        path = draw(results, dataset, root / "figures" / f"{name}_{dataset}.png")
        return [] if path is None else [_Figure(path, f"{dataset}: {caption}")]

    def table(rows: "pd.DataFrame", name: str, caption: str,
              show: Callable[["pd.DataFrame", Notation], Shown]) -> list[_Table]:
        return [] if rows.empty else [_Table(f"{name}_{dataset}", f"{dataset}: {caption}",
                                             lambda notation: show(rows, notation))]

    sections: list[_Section] = [
        ("Leaderboard", table(board, "leaderboard", _leaderboard_caption(board, results),
                              lambda rows, n: show_leaderboard(rows, higher, n))
         + table(home, "home_advantage", "home advantage: each masker's score under its own "
                 "ruler against the other rulers (mean of their means, median); advantage > 0: "
                 "better at home", show_home_advantage)),
        ("Seed variance", table(seeds, "seeds", "configurations run with several seeds: "
                                "standard deviation over the seeds of each metric's mean over "
                                "images", show_seeds)),
        ("Metric agreement",
         table(metrics_agreement, "metric_agreement", "Kendall's tau between the rankings "
               "of the configurations by two metrics (1: the same order, -1: reversed); metrics "
               "that disagree rank the configurations differently: no single winner",
               show_metric_agreement)
         + figure(lambda _, name, path: plots.agreement_figure(
             metrics_agreement, name, path, "agreement between metrics\n(Kendall τ of the "
             "rankings of the configurations)", "Kendall τ"), "metric_agreement",
                  "agreement between the metrics' rankings")),
        ("Significance", table(friedman, "friedman", "Friedman test per ranked metric over "
                               "images (blocks: the i-th explained image of each configuration): "
                               "k configurations, N images, the chi-squared statistic with tie "
                               "correction, p-value, Nemenyi critical difference of average "
                               "ranks (alpha = 0.05)",
                               show_friedman)
         + figure(lambda _, name, path: plots.cd_figure(tests, name, path), "cd",
                  "critical-difference diagrams: configurations joined by a bar are not "
                  "significantly different")),
        ("Cost", table(runtime, "runtime", "cost of the explanation alone: seconds and model "
                       "evaluations per image, evaluations per second", show_runtime)
         + figure(plots.runtime_figure, "runtime",
                  "seconds per image against faithfulness; the Pareto front marked")
         + figure(lambda _, name, path: plots.budget_figure(
             sweeps, faithfulness, higher.get(faithfulness, True), name, path)
             if faithfulness else None, "budget",
                  "quality against model evaluations along budget sweeps")),
        ("Features", _feature_blocks(numbers, dataset, figure, table))
        if f"feature_importance_{dataset}" in numbers else
        ("Explanations",
         figure(explanation_figure, "explanations",
                "explanations of the top-1 output (red positive, blue negative)")
         + figure(topk_figure, "topk",
                  "one image, each explained class (name and model score)")),
        ("Faithfulness curves", figure(plots.curves_figure, "curves",
                                       "deletion and insertion curves")),
        ("Agreement between explainers",
         table(agreement, "agreement", "Spearman correlation of the pixel relevance between "
               "configurations, mean over the images and classes both explained", show_agreement)
         + figure(lambda _, name, path: plots.agreement_figure(agreement, name, path),
                  "agreement", "agreement between explanations")),
        ("Framework parity", table(parity, "parity", "the same configuration in two "
                                   "frameworks, on the images and classes both explained: max "
                                   "absolute difference of the SHAP values, Spearman correlation "
                                   "of the pixel relevance; weights: copied from one model into "
                                   "the other (a parity run) or each model's own",
                                   show_parity)),
        ("Randomisation", figure(plots.mprt_figure, "mprt",
                                 "similarity to the original explanation as the model's "
                                 "layers are randomised from the output down")),
        ("Models", table(models, "models", "models on the test split", show_models)),
        ("Failed cells", table(failures, "failures", "failed cells (retried on the next run); "
                               "the last line of each error", show_failures)),
    ]
    return [(heading, blocks) for heading, blocks in sections if blocks]


def _feature_blocks(numbers: dict[str, "pd.DataFrame"], dataset: str,
                    figure: Callable[..., list[_Figure]],
                    table: Callable[..., list[_Table]]) -> list["_Table | _Figure"]:
    """A tabular dataset's feature importance (top features, bar charts, beeswarm) and the
    agreement of the configurations' feature rankings."""
    importance = numbers[f"feature_importance_{dataset}"]
    agreement = numbers[f"feature_agreement_{dataset}"]
    if len(agreement) < 2:  # a configuration agrees with itself: nothing to show
        agreement = agreement.iloc[:0]
    return (table(importance, "top_features", "each configuration's most important features: "
                  "mean |SHAP value| over the explained rows and outputs",
                  tabular.show_top_features)
            + figure(lambda _, name, path: tabular.importance_figure(importance, name, path),
                     "importance", "mean |SHAP value| per feature, each configuration")
            + figure(tabular.beeswarm_figure, "beeswarm",
                     "SHAP value of each explained row per feature, coloured by the feature's "
                     "value")
            + table(agreement, "feature_agreement", "Kendall's tau between the configurations' "
                    "rankings of the features by mean |SHAP value| (1: the same order, -1: "
                    "reversed)", show_agreement)
            + figure(lambda _, name, path: plots.agreement_figure(
                agreement, name, path, "agreement of the feature rankings\n(Kendall τ of the "
                "features ranked by mean |SHAP|)", "Kendall τ"), "feature_agreement",
                     "agreement of the feature rankings across explainers and frameworks"))


def _leaderboard_caption(board: "pd.DataFrame", results: Results) -> str:
    """What the leaderboard shows, the metrics ranked and the baselines its flags refer to."""
    present = [b for b in BASELINES if b in set(board["explainer"])]
    flag = (f"†: does not beat the {' and the '.join(present)} baseline of the same model on "
            f"most ranked metrics" if present else
            f"no baseline ({', '.join(BASELINES)}) in this run: rows cannot be flagged")
    unranked = [m.replace("_", " ") for m in results.quality_metrics
                if m not in results.ranked_metrics]
    shown = f"; {', '.join(unranked)}: shown, not ranked" if unranked else ""
    return ("configurations ranked; metrics as mean [bootstrap 95 % interval] over images, "
            "best in bold, images where a metric is undefined counted in brackets; median "
            f"rank: the median over the ranked metrics of the row's rank (1 = best; a metric "
            f"under several rulers counts once, with the median of its ranks){shown}; "
            "metric@ruler: pixels removed by that ruler, the same for every row; abpc is the "
            "symmetric relevance gain SRG = AUC(LeRF) − AUC(MoRF) (Blücher et al., TMLR 2024); "
            f"{flag}")


def _document(results: Results, writer: Writer, sections: dict[str, list[_Section]],
              root: Path) -> str:
    parts = [writer.heading("Run", 2), writer.items(_run_lines(results))]
    for dataset, dataset_sections in sections.items():
        parts.append(writer.heading(dataset, 2))
        for heading, blocks in dataset_sections:
            parts.append(writer.heading(heading, 3))
            parts += [writer.table(block.show(writer.notation), block.caption)
                      if isinstance(block, _Table) else writer.image(block.path, root,
                                                                     block.caption)
                      for block in blocks]
    config = results.meta.get(_CONFIG_KEY)
    if isinstance(config, str):
        parts += [writer.heading("Configuration", 2), writer.code(config)]
    name = results.meta.get("name")
    return writer.document(f"xaibench report: {name}" if name else "xaibench report", parts)


def run_status_note(store: Store) -> str | None:
    """A warning when the store's last run did not finish (its results are partial)."""
    resume = f"`xaibench run CONFIG --output {store.root}` resumes it"
    pid = store.get_meta("pid", "unknown")
    return {"interrupted": f"the last run (pid {pid}) was killed before it finished: the "
                           f"results are partial; {resume}",
            "aborted": f"the last run was aborted (Ctrl-C or SIGTERM): the results are "
                       f"partial; {resume}",
            "running": f"a run (pid {pid}) is still writing {store.root}: the results are "
                       f"partial"}.get(store.run_status())


def _run_lines(results: Results) -> list[str]:
    """Meta keys as "key: value" lines (the status as :meth:`Store.run_status` tells it,
    with a warning when partial), then a count of the cells by status."""
    meta = {**results.meta, "status": results.store.run_status()}
    note = run_status_note(results.store)
    if note:
        meta["status"] += f" — {note}"
    lines = [line for key, value in sorted(meta.items()) if key not in _HIDDEN_KEYS
             for line in _meta_lines(key, value)]
    cells = results.cells
    if len(cells):
        statuses = cells["status"].value_counts().sort_index()
        counts = ", ".join(f"{n} {status}" for status, n in statuses.items())
        lines.append(f"cells: {counts} (last finished {_timestamp(cells['finished_at'].max())})")
    else:
        lines.append("cells: none yet")
    return lines


def _meta_lines(key: str, value: Any) -> list[str]:
    """"key: value" lines; a dict's plain entries share a line, nested dicts and list items
    get their own lines, named by their path."""
    if isinstance(value, list):
        return [line for i, item in enumerate(value, 1) for line in _meta_lines(f"{key} {i}", item)]
    if not isinstance(value, dict):
        return [f"{key}: {_meta_scalar(key, value)}"]
    plain = {k: v for k, v in value.items() if not isinstance(v, (dict, list))}
    lines = ([f"{key}: " + ", ".join(f"{k} {_meta_scalar(k, v)}" for k, v in plain.items())]
             if plain else [])
    return lines + [line for k, v in value.items() if k not in plain
                    for line in _meta_lines(f"{key} {k}", v)]


def _meta_scalar(key: str, value: Any) -> str:
    """Times since the epoch (keys *_at, started, finished) as UTC dates, seconds rounded."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if key.endswith("_at") or key in ("started", "finished"):
        return _timestamp(value)
    if key.endswith("seconds"):
        return f"{value:.1f} s"
    return f"{value:.6g}"


def _timestamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
