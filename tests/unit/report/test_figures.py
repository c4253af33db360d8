"""Chart figures: what they compute, when they are drawn, and labels that never overlap."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.image import imread
from matplotlib.text import Text

from tests.unit.report._store import (DATASET, K, N_IMAGES, build_store, cell_arrays, cell_record,
                                     extra_arrays)
from xaibench.experiment.store import Store
from xaibench.report import (Results, agreement_figure, agreement_table, curves_figure,
                             mprt_figure, runtime_figure, topk_figure)
from xaibench.metrics.faithfulness import normalised_curves
from xaibench.report import plots
from xaibench.report.plots import _callouts, _lines, faithfulness_metric, pareto_front

DRAWN = {"topk": topk_figure, "curves": curves_figure, "runtime": runtime_figure,
         "mprt": mprt_figure}


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Results:
    root = tmp_path_factory.mktemp("results")
    build_store(root)
    return Results.load(root)


@pytest.mark.parametrize("name", DRAWN)
def test_figures_are_written_as_png_and_svg(results, tmp_path, name):
    path = DRAWN[name](results, DATASET, tmp_path / f"{name}.png")
    assert path == tmp_path / f"{name}.png"
    height, width, _ = imread(path).shape
    assert height > 300 and width > 300
    assert path.with_suffix(".svg").read_text().lstrip().startswith("<?xml")


def test_agreement_heatmap(results, tmp_path):
    matrix = agreement_table(results, DATASET)
    path = agreement_figure(matrix, DATASET, tmp_path / "agreement.png")
    assert imread(path).shape[0] > 300
    assert agreement_figure(matrix.iloc[:1, :1], DATASET, tmp_path / "one.png") is None


def test_figures_without_their_data_are_not_drawn(tmp_path):
    store = Store(tmp_path)
    arrays = cell_arrays(np.zeros((N_IMAGES, K)), (8, 8, 1), seed=0)
    top1 = {**arrays, **{name: arrays[name][..., :1] for name in ("values", "output_indices",
                                                                  "base_values",
                                                                  "model_outputs")}}
    store.put_cell(cell_record("torch", "deep", None, {}, wall_seconds=1.0), top1)  # no metrics
    results = Results.load(tmp_path)
    for name, draw in DRAWN.items():
        assert draw(results, DATASET, tmp_path / f"{name}.png") is None, name
    assert not list(tmp_path.glob("*.png"))
    assert faithfulness_metric(results) is None


@pytest.mark.parametrize("space", ["probability", "score", "score without spread", None])
def test_curves_are_drawn_in_the_space_they_were_stored_in(tmp_path, monkeypatch, space):
    # None: an older store (scores, no space recorded, no spreads)
    arrays = cell_arrays(np.zeros((N_IMAGES, K)), (8, 8, 1), seed=0)
    extras = extra_arrays(arrays, quality=0.5, seed=0)
    curves = {kind: extras[f"{kind}_curve"] for kind in ("deletion", "insertion")}
    spread = np.linspace(2.0, 5.0, N_IMAGES)
    if space == "probability":
        curves = {kind: 1 / (1 + np.exp(-curve)) for kind, curve in curves.items()}
    if space is not None:
        arrays |= {f"{kind}_curve_space": np.array(space.split()[0]) for kind in curves}
    if space == "score":
        arrays["score_spread"] = spread
    store = Store(tmp_path)
    store.put_cell(cell_record("torch", "deep", None, {}),
                   arrays | {f"{kind}_curve": curve for kind, curve in curves.items()})
    figures = []
    monkeypatch.setattr(plots, "save", lambda figure, path: figures.append(figure) or path)
    assert curves_figure(Results.load(tmp_path), DATASET, tmp_path / "curves.png")
    for ax, (kind, curve) in zip(figures[0].axes, curves.items()):
        shown = normalised_curves(curve[:, 0], kind, spread) if space == "score" else curve[:, 0]
        np.testing.assert_allclose(ax.lines[0].get_ydata(), np.median(shown, axis=0))
        label = {"probability": "p(explained class)",
                 "score": "(f − f(∅)) / (max − min of the scores of x)"}.get(space,
                                                                          "f (score units)")
        assert ax.get_ylabel().startswith(f"{kind}\n{label}\n")


def test_pareto_front():
    seconds = np.array([1.0, 2.0, 3.0, 0.5, 2.0, 10.0])
    quality = np.array([0.5, 0.4, 0.9, 0.1, 0.6, 0.9])
    assert pareto_front(seconds, quality, higher=True).tolist() == \
        [True, False, True, True, True, False]
    assert pareto_front(seconds, -quality, higher=False).tolist() == \
        [True, False, True, True, True, False]


def test_per_backend_panels_name_and_colour_a_method_alike(results):
    lines = _lines(results, DATASET)
    assert len(lines) == 6 and set(lines["backend"]) == {"torch", "keras"}
    for backend, group in lines.groupby("backend"):
        assert all(label.startswith(f"{backend} / ") for label in group["label"])
        assert not any(backend in method for method in group["method"])
    by_method = lines.groupby("method")
    assert len(by_method) == 3 and (by_method["backend"].nunique() == 2).all()
    assert (by_method["colour"].nunique() == 1).all()  # one colour per method, every panel
    assert lines.drop_duplicates("method")["colour"].nunique() == 3


def test_point_labels_do_not_overlap():
    figure = Figure(figsize=(6, 4))
    ax = figure.subplots()
    x = np.array([1.0, 1.1, 1.2, 1.3, 5.0, 5.1])
    y = np.array([0.50, 0.501, 0.502, 0.503, 0.1, 0.9])  # four points almost on top of another
    ax.plot(x, y, "o")
    _callouts(ax, x, y, [f"configuration {i}" for i in range(len(x))])
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    renderer = canvas.get_renderer()
    boxes = [Text.get_window_extent(label, renderer) for label in ax.texts]  # without lines
    assert len(boxes) == len(x)
    assert not any(a.overlaps(b) for a, b in combinations(boxes, 2))
    heights = [box.y0 for box in boxes]
    assert heights[5] > heights[0] > heights[4]  # labels keep the points' vertical order


def test_colour_scale_is_not_set_by_one_outlying_column():
    import numpy as np

    from xaibench.report.figures import _scale

    rng = np.random.default_rng(0)
    columns = [[rng.uniform(-1, 1, (8, 8))] for _ in range(3)] + [[rng.normal(0, 100, (8, 8))]]
    assert 0.9 < _scale(columns) < 1.0
