"""The report of a results directory: ``report.{md,html,tex}``, ``report.csv`` and figures."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from xaibench.errors import ConfigError
from xaibench.report._formats import WRITERS, Writer
from xaibench.report.figures import explanation_figure
from xaibench.report.tables import (Results, failure_lines, failure_table, model_table,
                                    show_models, show_summary, summary_table)

FORMATS = ("md", "csv", "tex", "html")
_CONFIG_KEY = "config"
_HIDDEN_KEYS = {"class_names", _CONFIG_KEY}


def render(results_dir: str | Path, formats: Iterable[str] = ("md", "csv")) -> list[Path]:
    """Render the report of ``results_dir`` from its store; return the files written.

    ``formats``: any of md, csv, tex, html. Documents (md, tex, html) embed one explanations
    figure per dataset, ``figures/explanations_<dataset>.png``.
    """
    formats = list(formats)
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise ConfigError(f"unknown report format(s) {', '.join(unknown)} "
                          f"(known: {', '.join(FORMATS)})")
    root = Path(results_dir)
    results = Results.load(root)
    written: list[Path] = []
    if "csv" in formats:
        written.append(root / "report.csv")
        summary_table(results).to_csv(written[-1], index=False)
    writers = [WRITERS[f] for f in formats if f in WRITERS]
    if writers:
        figures = {dataset: explanation_figure(results, dataset,
                                               root / "figures" / f"explanations_{dataset}.png")
                   for dataset in results.datasets}
        written += [path for path in figures.values() if path is not None]
        for writer in writers:
            written.append(root / f"report.{writer.suffix}")
            written[-1].write_text(_document(results, writer, figures, root), encoding="utf-8")
    return written


def _document(results: Results, writer: Writer, figures: dict[str, Path | None],
              root: Path) -> str:
    parts = [writer.heading("Run", 2), writer.items(_run_lines(results))]
    config = results.meta.get(_CONFIG_KEY)
    if isinstance(config, str):
        parts.append(writer.code(config))
    models, summary, failures = model_table(results), summary_table(results), failure_table(results)
    for dataset in results.datasets:
        parts.append(writer.heading(dataset, 2))
        dataset_models = models[models["dataset"] == dataset]
        if len(dataset_models):
            parts.append(writer.table(show_models(dataset_models, writer.notation),
                                      f"{dataset}: models on the test split"))
        dataset_summary = summary[summary["dataset"] == dataset].reset_index(drop=True)
        if len(dataset_summary):
            parts.append(writer.table(
                show_summary(dataset_summary, results.higher_is_better, writer.notation),
                f"{dataset}: explainers; metrics as mean ± 95 % CI over images"))
        if figures.get(dataset) is not None:
            caption = f"{dataset}: explanations of the top-1 output (red positive, blue negative)"
            parts.append(writer.image(figures[dataset].relative_to(root).as_posix(), caption))
        dataset_failures = failures[failures["dataset"] == dataset]
        if len(dataset_failures):
            parts += [writer.heading("Failed cells", 3),
                      writer.items(failure_lines(dataset_failures))]
    return writer.document("xaibench report", parts)


def _run_lines(results: Results) -> list[str]:
    """Meta keys as "key: value" lines, then a count of the cells by status."""
    lines = [line for key, value in sorted(results.meta.items()) if key not in _HIDDEN_KEYS
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
