"""The report rendered from a store of synthetic records: files, documents, partial runs."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from tests.unit.report._store import (CLASS_NAMES, CONFIGS, DATASET, ERROR, K, N_IMAGES, Cell,
                                      build_store, cell_record, model_record)
from xaibench.errors import ConfigError, DataError
from xaibench.experiment.store import Store
from xaibench.report import (FORMATS, Results, explanation_figure, render, summary_table,
                             topk_figure)
from xaibench.report.figures import _rows, red_transparent_blue

FAILED = ("keras", "permutation")
RECOMPUTED = ("torch", "partition")  # stored without metric rows
T_975_DF3 = 3.182446305284263  # Student-t 97.5 % quantile, 3 degrees of freedom (4 images)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[Path, list[Cell], list[Path]]:
    root = tmp_path_factory.mktemp("results")
    cells = build_store(root, failed={FAILED}, without_metrics={RECOMPUTED})
    return root, cells, render(root, formats=FORMATS)


FIGURES = ["metric_agreement", "cd", "runtime", "explanations", "topk", "curves", "agreement",
           "mprt"]
TABLES = ["leaderboard", "metric_agreement", "friedman", "runtime", "agreement", "parity",
          "models", "failures"]


def test_render_writes_every_format_table_and_figure(run):
    root, _, written = run
    expected = {"report.md", "report.csv", "report.tex", "report.html",
                *(f"tables/{name}.csv" for name in ["leaderboard", "home_advantage", "runtime",
                                                    "models", "parity", "failures", "seeds",
                                                    f"agreement_{DATASET}",
                                                    f"metric_agreement_{DATASET}",
                                                    f"friedman_{DATASET}"]),
                *(f"tables/{name}_{DATASET}.tex" for name in TABLES),
                *(f"figures/{name}_{DATASET}.{suffix}" for name in FIGURES
                  for suffix in ("png", "svg"))}
    assert {p.relative_to(root).as_posix() for p in written} == expected
    assert len(written) == len(expected)
    assert all(p.is_file() and p.stat().st_size > 0 for p in written)
    fragment = (root / "tables" / f"leaderboard_{DATASET}.tex").read_text()
    assert fragment.startswith(r"\begin{table}") and r"\toprule" in fragment


def test_summary_has_one_row_per_finished_configuration_with_its_numbers(run):
    root, cells, _ = run
    table = pd.read_csv(root / "report.csv", keep_default_na=False)
    assert len(table) == len(cells) == 2 * len(CONFIGS) - 1
    for cell in cells:
        row = table[(table.backend == cell.backend) & (table.explainer == cell.explainer)]
        assert len(row) == 1
        row = row.iloc[0]
        assert row.masker == (cell.masker or "")
        assert row.images == N_IMAGES
        assert row.accuracy == pytest.approx({"torch": 0.90, "keras": 0.85}[cell.backend])
        assert row.seconds_per_image == pytest.approx(cell.wall_seconds / N_IMAGES)
        assert row.evals_per_image == pytest.approx(cell.model_evals / N_IMAGES)
        per_image = cell.gaps.mean(axis=1)  # each image: mean over its K explained outputs
        assert row.additivity_mean == pytest.approx(per_image.mean(), rel=1e-4, abs=1e-9)
        ci = T_975_DF3 * per_image.std(ddof=1) / np.sqrt(N_IMAGES)
        assert row.additivity_ci95 == pytest.approx(ci, rel=1e-3, abs=1e-9)


def test_summary_rows_put_an_explainer_side_by_side_across_backends(run):
    table = pd.read_csv(run[0] / "report.csv")
    assert list(zip(table.explainer, table.backend)) == [
        ("deep", "keras"), ("deep", "torch"), ("partition", "keras"), ("partition", "torch"),
        ("permutation", "torch")]


def test_markdown_report(run):
    root, cells, _ = run
    text = (root / "report.md").read_text()
    sections = [line for line in text.splitlines() if line.startswith("#")]
    assert sections == ["# xaibench report: report-test", "## Run", f"## {DATASET}",
                        "### Leaderboard", "### Metric agreement", "### Significance",
                        "### Cost", "### Explanations",
                        "### Faithfulness curves", "### Agreement between explainers",
                        "### Framework parity", "### Randomisation", "### Models",
                        "### Failed cells", "## Configuration"]
    assert ("| backend | explainer | masker | images | median rank | abpc ↑ | deletion auc ↓ "
            "| additivity ↓ |") in text  # by category: faithfulness, then correctness; no cost
    assert "| backend | explainer | masker | images | s / image | evals / image | evals / s |" \
        in text
    assert "| torch | fmnist_cnn | 0 | 0.900 | 12.5 |" in text
    best_abpc = max((c for c in cells if c.backend != "torch" or c.explainer != "partition"),
                    key=lambda c: c.abpc)
    row = next(line for line in text.splitlines()
               if line.startswith(f"| {best_abpc.backend} | {best_abpc.explainer} |"))
    assert f"**{best_abpc.abpc:.3g} [" in row
    for name in FIGURES:
        assert f"](figures/{name}_{DATASET}.png)" in text
    assert "| keras | permutation | inpaint_telea | 0 | ValueError: max_evals=129 is too small |" \
        in text and "Traceback" not in text
    assert "- versions: python 3.11.7, shap 0.51.0, torch 2.13.0\n" in text
    assert "- platform: Linux-6.1-x86_64\n- started_at: 2023-11-14 22:13:20 UTC\n" in text
    assert "- duration_seconds: 73.2 s\n" in text
    assert 'name = "report-test"' in text and "class_names" not in text
    assert "cells: 5 done, 1 failed" in text


def test_latex_report(run):
    tex = (run[0] / "report.tex").read_text()
    assert r"\toprule" in tex and r"\bottomrule" in tex and r"\midrule" in tex
    assert r"\bfseries" in tex and r"abpc $\uparrow$" in tex
    assert tex.count(r"\begin{table}") == len(TABLES) and r"\end{document}" in tex
    assert r"\includegraphics[width=\linewidth]{figures/curves_digits.png}" in tex
    assert r"inpaint\_telea" in tex


def test_html_report_is_self_contained(run):
    html = (run[0] / "report.html").read_text()
    assert html.count("<table") == html.count('class="sortable"') == len(TABLES)
    assert html.count('<img src="data:image/png;base64,') == len(FIGURES)
    assert "figures/" not in html and "font-weight: bold" in html
    assert "ValueError: max_evals=129 is too small" in html and "<script>" in html
    assert "versions: python 3.11.7, shap 0.51.0, torch 2.13.0" in html


def test_default_formats_and_figures_only_for_stored_data(tmp_path):
    build_store(tmp_path, extras=False)  # no perturbation curves, no MPRT similarities
    written = {p.relative_to(tmp_path).as_posix() for p in render(tmp_path)}
    assert {"report.md", "report.csv", "report.html", f"figures/explanations_{DATASET}.png"} \
        <= written and "report.tex" not in written
    assert not written & {f"figures/{name}_{DATASET}.png" for name in ("curves", "mprt")}
    text = (tmp_path / "report.md").read_text()
    assert "### Faithfulness curves" not in text and "### Randomisation" not in text


def test_figure_decodes_and_shows_positive_red_and_negative_blue(run):
    image = imread(run[0] / "figures" / f"explanations_{DATASET}.png")
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    red, green, blue = (image[..., i] for i in range(3))
    assert np.sum((red > 0.9) & (green < 0.4) & (blue < 0.6)) > 100
    assert np.sum((blue > 0.8) & (red < 0.3)) > 100


def test_colour_map_is_shaps_red_transparent_blue():
    cmap = red_transparent_blue()
    np.testing.assert_allclose(cmap(1.0), (1, 13 / 255, 87 / 255, 1), atol=1e-6)
    np.testing.assert_allclose(cmap(0.0), (30 / 255, 136 / 255, 229 / 255, 1), atol=1e-6)
    assert cmap(0.5)[3] < 0.02


def test_rgb_images(tmp_path):
    build_store(tmp_path, shape=(8, 8, 3))
    results = Results.load(tmp_path)
    for draw in (explanation_figure, topk_figure):
        path = draw(results, DATASET, tmp_path / "figure.png")
        assert imread(path).shape[0] > 0


def test_store_with_only_failed_cells(tmp_path):
    store = Store(tmp_path)
    store.put_model(model_record("torch"))
    for explainer, masker, params in CONFIGS:
        store.put_failure(cell_record("torch", explainer, masker, params), ERROR)
    written = render(tmp_path, formats=("md", "csv", "tex", "html"))
    assert not (tmp_path / "figures").exists()
    assert {p.name for p in written} >= {"report.md", "report.csv", "report.tex", "report.html"}
    text = (tmp_path / "report.md").read_text()
    assert text.count("ValueError: max_evals=129 is too small") == len(CONFIGS)
    assert "cells: 3 failed" in text and "additivity" not in text
    assert "### Leaderboard" not in text and "### Models" in text
    assert pd.read_csv(tmp_path / "report.csv").empty


def test_partially_finished_run(tmp_path):
    build_store(tmp_path, failed={("torch", e) for e, _, _ in CONFIGS[1:]}
                | {("keras", e) for e, _, _ in CONFIGS})
    Store(tmp_path).put_model(model_record("torch", dataset="cifar10"))  # trained, not explained
    render(tmp_path, formats=("md", "csv"))
    table = pd.read_csv(tmp_path / "report.csv")
    assert list(zip(table.backend, table.explainer)) == [("torch", "deep")]
    text = (tmp_path / "report.md").read_text()
    assert "## cifar10" in text and "_cifar10.png" not in text
    assert (tmp_path / "figures" / f"explanations_{DATASET}.png").is_file()


def test_empty_store_and_bad_arguments(tmp_path):
    with pytest.raises(DataError, match="no results store"):
        render(tmp_path)
    Store(tmp_path)
    assert render(tmp_path, formats=("md",)) == [tmp_path / "report.md"]
    assert "cells: none yet" in (tmp_path / "report.md").read_text()
    with pytest.raises(ConfigError, match="unknown report format.*pdf"):
        render(tmp_path, formats=("md", "pdf"))


def test_seed_replications_are_pooled(tmp_path):
    cell = build_store(tmp_path)[0]
    store = Store(tmp_path)
    explainer, masker, params = CONFIGS[0]
    replica = replace(cell_record(cell.backend, explainer, masker, {**params, "seed": 99},
                                  wall_seconds=3 * cell.wall_seconds, model_evals=cell.model_evals),
                      cell_key="replica", seed=1)  # an explainer seed in params does not split rows
    store.put_cell(replica, store.load_arrays(cell.key))
    row = summary_table(Results.load(tmp_path)).query(
        f"backend == '{cell.backend}' and explainer == '{cell.explainer}'").iloc[0]
    assert (row.cells, row.images) == (2, 2 * N_IMAGES)
    assert row.seconds_per_image == pytest.approx(4 * cell.wall_seconds / (2 * N_IMAGES))
    assert row.additivity_mean == pytest.approx(cell.gaps.mean(), rel=1e-4)


def test_class_names_come_from_meta(run):
    results = Results.load(run[0])
    assert [results.class_name(DATASET, i) for i in range(len(CLASS_NAMES))] == CLASS_NAMES
    assert results.class_name(DATASET, 7) == "7" and results.class_name("other", 1) == "1"
    assert results.higher_is_better == {"abpc": True, "additivity": False,
                                        "deletion_auc": False, "seconds_per_image": False}
    assert results.quality_metrics == ["abpc", "deletion_auc", "additivity"]
    assert len(results.scores) == (4 * 4 + 1) * N_IMAGES and K > 1  # one cell: additivity only


def test_import_is_light():
    code = ("import sys, xaibench.report; "
            "print(sorted(m for m in ('pandas', 'matplotlib', 'scipy', 'torch', 'tensorflow', "
            "'jax', 'playwright') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_figure_rows_prefer_images_explained_by_most_cells(tmp_path):
    build_store(tmp_path)
    store = Store(tmp_path)
    arrays = store.load_arrays(store.frame("cells").cell_key[0])
    store.put_cell(cell_record("torch", "random", None, {"seed": 0}),
                   {**arrays, "image_ids": arrays["image_ids"] + 2})  # ids 102..105
    rows = _rows(Results.load(tmp_path), list(store.frame("cells").cell_key), n_images=N_IMAGES)
    # ids 102, 103 are in every cell, 100, 101 in all but the new one (its panels are missing)
    assert [[p is None for p in row.panels].count(True) for row in rows] == [0, 0, 1, 1]
    np.testing.assert_array_equal(rows[0].image, arrays["images"][2])
    np.testing.assert_allclose(rows[0].panels[0].heatmaps,
                               arrays["values"][2].sum(axis=2).transpose(2, 0, 1))
    np.testing.assert_array_equal(rows[0].panels[0].explained, arrays["output_indices"][2])
    assert explanation_figure(Results.load(tmp_path), DATASET, tmp_path / "grid.png")
