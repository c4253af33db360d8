"""The runner: stores every cell, resumes after a kill, records failures and goes on."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from xaibench.errors import XaibenchError
from xaibench.experiment import runner
from xaibench.metrics import curve_auc
from xaibench.experiment.config import ImagesConfig, parse_config
from xaibench.experiment.plan import data_fingerprint, make_plan
from xaibench.experiment.store import Store

pytestmark = pytest.mark.usefixtures("cache_dir")


@pytest.fixture
def tiny(tiny_toml):
    pytest.importorskip("torch")
    return parse_config(tiny_toml)


def _run(config, out):
    return runner.run(config, out, progress=False)


def _plan(config):
    """The plan of a run of ``config``: keyed with the fingerprint of its loaded data."""
    dataset = runner.load_dataset(config)
    return make_plan(config, data_fingerprint(dataset, config.dataset.n_train))


def test_run_stores_every_cell_and_rerun_does_nothing(tiny, tmp_path):
    out = tmp_path / "out"
    summary = _run(tiny, out)
    assert (summary.n_cells, summary.n_finished, summary.n_skipped, summary.failures) == \
           (2, 2, 0, ())
    store = Store(out)
    plan = _plan(tiny)
    assert store.done_keys() == {cell.key for cell in plan.cells}

    for cell in plan.cells:
        arrays = store.load_arrays(cell.key)
        assert arrays["values"].shape == (2, 8, 8, 1, 1) and arrays["values"].dtype == np.float32
        np.testing.assert_array_equal(arrays["image_ids"], [0, 1])
        assert arrays["images"].shape == (2, 8, 8, 1)
        assert {"output_indices", "base_values", "model_outputs", "labels",
                "predictions"} <= set(arrays)
        np.testing.assert_array_equal(arrays["output_indices"][:, 0], arrays["predictions"])
    metrics = store.frame("metrics")
    assert len(metrics) == 2 * 2 and set(metrics["metric"]) == {"additivity"}
    assert metrics["value"].max() < 1e-3  # deep and partition are additive
    cells = store.frame("cells").set_index("cell_key")
    partition = plan.cells[0]
    assert cells.loc[partition.key, "params"] == {"max_evals": 40, "seed": partition.seed,
                                                  "targets": 1}
    assert cells.loc[partition.key, "model_evals"] > 0
    assert len(store.frame("models")) == 1
    assert store.get_meta("config") == tiny.source
    assert store.get_meta("status") == "finished"
    assert {"python", "numpy", "shap", "torch"} <= set(store.get_meta("versions"))
    assert store.get_meta("class_names") == {"digits": [str(d) for d in range(10)]}

    started, seconds = store.get_meta("started_at"), store.get_meta("duration_seconds")
    again = _run(tiny, out)
    assert (again.n_finished, again.n_skipped, again.failures) == (0, 2, ())
    assert store.get_meta("started_at") == started  # the first run's start ...
    assert store.get_meta("duration_seconds") > seconds  # ... and the time of all runs


RULERS = ["blur(3,3)", "mean", "noisy_linear"]


def test_curve_metrics_score_every_cell_under_every_ruler_and_the_report_draws_them(tiny_toml,
                                                                                    tmp_path):
    pytest.importorskip("torch")
    from matplotlib.image import imread

    from xaibench.report import render
    from xaibench.report.tables import Results, home_advantage_table

    metrics = ["deletion_auc", "insertion_auc", "abpc", "mprt"]
    config = parse_config(tiny_toml.replace('metrics = ["additivity"]', f"metrics = {metrics}")
                          + f"[evaluation]\nrulers = {RULERS}\n")
    out = tmp_path / "out"
    assert _run(config, out).failures == ()
    store = Store(out)
    rows = store.frame("metrics")
    assert set(rows.loc[rows["metric"] == "mprt", "ruler"]) == {""}  # no ruler: scored once
    scores = rows.pivot_table("value", ["cell_key", "ruler", "image", "output"], "metric")
    for cell in _plan(config).cells:
        arrays = store.load_arrays(cell.key)
        n_layers = len(arrays["mprt_layers"])
        assert arrays["mprt_layers"].dtype.kind == "U" and n_layers >= 2
        assert arrays["mprt_curve"].shape == (2, 1, n_layers)
        assert set(rows.loc[(rows["cell_key"] == cell.key) & (rows["metric"] == "abpc"),
                            "ruler"]) == set(RULERS)  # every cell under every ruler
        for ruler in RULERS:
            curves = {kind: arrays[f"{kind}_curve@{ruler}"] for kind in ("deletion", "insertion")}
            assert curves["deletion"].shape == curves["insertion"].shape == (2, 1, 21)
            aucs = {kind: curve_auc(curve, kind).ravel() for kind, curve in curves.items()}
            stored = scores.loc[(cell.key, ruler)]
            np.testing.assert_allclose(stored["deletion_auc"], aucs["deletion"])
            np.testing.assert_allclose(stored["insertion_auc"], aucs["insertion"])
            np.testing.assert_allclose(stored["abpc"], aucs["insertion"] - aucs["deletion"])
        # the rulers fill removed pixels differently: half-removed images score differently
        halves = [arrays[f"deletion_curve@{ruler}"][..., 10] for ruler in RULERS]
        assert not np.allclose(halves[0], halves[1]) and not np.allclose(halves[1], halves[2])
        stored = scores.loc[(cell.key, "")]
        np.testing.assert_allclose(stored["mprt"], arrays["mprt_curve"].mean(axis=-1).ravel())

    results = Results.load(out)
    assert {f"abpc@{ruler}" for ruler in RULERS} <= set(results.quality_metrics)
    home = home_advantage_table(results)  # partition explained with blur(3,3), one of the rulers
    assert set(home["explainer"]) == {"partition"} and set(home["masker"]) == {"blur(3,3)"}
    assert sorted(home["metric"]) == ["abpc", "deletion_auc", "insertion_auc"]

    written = render(out, formats=["md"])
    for figure in ("curves", "mprt"):
        png = out / "figures" / f"{figure}_digits.png"
        assert png in written and png.with_suffix(".svg") in written
        height, width, _ = imread(png).shape
        assert height > 300 and width > 300
    report = (out / "report.md").read_text()
    assert "abpc@blur(3,3) ↑" in report and "home advantage" in report


def test_metric_arrays_may_not_replace_the_cells_own(tiny, tmp_path, monkeypatch):
    class Clashing(runner.MetricContext):
        def __init__(self) -> None:
            super().__init__()
            self.keep("values", np.zeros(1))

    monkeypatch.setattr(runner, "MetricContext", Clashing)
    summary = _run(tiny, tmp_path / "out")
    assert summary.n_finished == 0
    assert [error for _, error in summary.failures] == \
        ["metrics hand on arrays named like the cell's own: ['values']"] * 2


def test_killed_run_resumes_exactly_the_rest(tiny, tmp_path, monkeypatch):
    out = tmp_path / "out"
    real_run_cell = runner.run_cell
    ran: list[str] = []

    def killed_after_first(cell, *args, **kwargs):
        if ran:
            raise KeyboardInterrupt
        ran.append(cell.key)
        return real_run_cell(cell, *args, **kwargs)

    monkeypatch.setattr(runner, "run_cell", killed_after_first)
    with pytest.raises(KeyboardInterrupt):
        _run(tiny, out)
    assert Store(out).done_keys() == set(ran)
    assert Store(out).get_meta("status") == "aborted"

    monkeypatch.setattr(runner, "run_cell", real_run_cell)
    resumed = _run(tiny, out)
    assert (resumed.n_finished, resumed.n_skipped, resumed.failures) == (1, 1, ())
    assert Store(out).done_keys() == {cell.key for cell in _plan(tiny).cells}


def test_failing_cell_is_recorded_and_the_others_finish(tiny, tmp_path):
    # validation refuses max_evals = 1, so it is set behind its back: partition refuses it
    # at run time
    partition, deep = tiny.explainers
    config = replace(tiny, explainers=(replace(partition, params={"max_evals": 1}), deep))
    out = tmp_path / "out"
    summary = _run(config, out)
    assert summary.n_finished == 1
    [(label, error)] = summary.failures
    assert label == "partition/blur(3,3)/torch:fmnist_cnn"
    assert "max_evals must be an integer >= 2, got 1" in error
    cells = Store(out).frame("cells").set_index("explainer")
    assert cells.loc["partition", "status"] == "failed"
    assert "max_evals" in cells.loc["partition", "error"]
    assert cells.loc["deep", "status"] == "done"

    retried = _run(config, out)  # failed cells are retried, done ones are not
    assert (retried.n_finished, retried.n_skipped, len(retried.failures)) == (0, 1, 1)


def test_unexpected_error_is_recorded_with_its_origin(tiny, tmp_path, monkeypatch):
    def broken(self, *args, **kwargs):
        raise ValueError("boom")

    monkeypatch.setattr(runner.registry.metrics.get("additivity"), "__call__", broken)
    summary = _run(tiny, tmp_path / "out")
    assert summary.n_finished == 0 and len(summary.failures) == 2
    assert all(error.startswith("ValueError: boom (at test_runner.py:")
               for _, error in summary.failures)


def test_model_failure_fails_its_cells(tiny, tmp_path, monkeypatch):
    def no_model(*args, **kwargs):
        raise XaibenchError("cannot build")

    monkeypatch.setattr(runner, "obtain_model", no_model)
    summary = _run(tiny, tmp_path / "out")
    assert [error for _, error in summary.failures] == ["cannot build"] * 2
    errors = Store(tmp_path / "out").frame("cells")["error"]
    assert list(errors) == ["model torch:fmnist_cnn: cannot build"] * 2


def test_select_images_first_then_correct_then_wrong():
    labels = np.array([0, 1, 2, 0, 1, 2, 0, 1])
    predictions = np.array([0, 0, 2, 0, 2, 2, 1, 1])  # wrong at 1, 4, 6
    chosen = runner.select_images(ImagesConfig(first=2, correct=2, wrong=1), labels, predictions)
    np.testing.assert_array_equal(chosen, [0, 1, 2, 3, 4])
    chosen = runner.select_images(ImagesConfig(first=0, correct=0, wrong=5), labels, predictions)
    np.testing.assert_array_equal(chosen, [1, 4, 6])  # only three wrong ones exist


def test_describe_error():
    assert runner.describe_error(XaibenchError("plain message")) == "plain message"
    try:
        {}["missing"]
    except KeyError as exc:
        assert runner.describe_error(exc).startswith("KeyError: 'missing' (at test_runner.py:")


# --- parity: one trained model copied into other frameworks --------------------------------------
PARITY_TOML = """
name = "parity"
seed = 5
metrics = ["additivity"]

[dataset]
name = "digits"
n_train = 300
n_background = 5

[images]
first = 2
wrong = 1

[[models]]
backend = "torch"
architecture = "fmnist_cnn"
params = { conv1 = 8, conv2 = 4 }
train = { epochs = 1, batch_size = 32, lr = 1e-2 }

[[models]]
backend = "flax"
architecture = "fmnist_cnn"
weights_from = "torch"

[[models]]
backend = "keras"
architecture = "fmnist_cnn"
weights_from = "torch"

[[explainers]]
name = "partition"
maskers = ["blur(3,3)"]
params = { max_evals = 40 }

[[explainers]]
name = "deep"
"""


@pytest.fixture(scope="module")
def parity(tmp_path_factory):
    """The parity experiment run once (counting how often a model is trained or loaded)."""
    for framework in ("torch", "flax", "tensorflow"):
        pytest.importorskip(framework)
    config = parse_config(PARITY_TOML)
    out = tmp_path_factory.mktemp("parity")
    obtained = []
    with pytest.MonkeyPatch.context() as patch:
        real = runner.obtain_model
        patch.setattr(runner, "obtain_model",
                      lambda model, *a, **k: obtained.append(model.label) or real(model, *a, **k))
        summary = runner.run(config, out / "results", progress=False,
                             cache_dir=out / "cache")
    return config, summary, Store(out / "results"), obtained


def test_parity_run_copies_the_trained_model(parity):
    config, summary, store, obtained = parity
    assert (summary.n_finished, summary.failures) == (6, ())
    assert obtained == ["torch:fmnist_cnn"]  # trained once, kept for both copies
    models = store.frame("models").set_index("backend")
    source = _plan(config).models[0].key
    assert models.loc["torch", "model_key"] == source
    for copy in ("flax", "keras"):
        assert models.loc[copy, "train_params"] == {"weights_from": source}
        assert models.loc[copy, "evaluation"]["weights_from"] == source
        assert models.loc[copy, "evaluation"]["copy_max_abs_diff"] < 1e-5
        assert models.loc[copy, "train_seconds"] == 0.0
        assert models.loc[copy, "accuracy"] == models.loc["torch", "accuracy"]


def test_parity_run_attributions_agree_across_frameworks(parity):
    _, _, store, _ = parity
    cells = store.frame("cells")
    for explainer, group in cells.groupby("explainer"):
        arrays = {row.backend: store.load_arrays(row.cell_key) for row in group.itertuples()}
        reference = arrays.pop("torch")
        assert len(arrays) == 2 and reference["image_ids"][:2].tolist() == [0, 1]
        wrong = reference["image_ids"][2]  # the first image the trained model gets wrong
        assert reference["predictions"][2] != reference["labels"][2] and wrong > 1
        scale = np.abs(reference["values"]).max()
        assert scale > 1e-3, "the comparison needs non-trivial attributions"
        for backend, other in arrays.items():
            for name in ("image_ids", "output_indices"):
                np.testing.assert_array_equal(other[name], reference[name])
            gap = np.abs(other["values"] - reference["values"]).max()
            assert gap <= (1e-4 if explainer == "partition" else 1e-4 * scale), (backend, gap)
    assert store.frame("metrics")["value"].max() < 1e-4  # every cell is additive


def test_copies_explain_the_images_their_source_selects(tmp_path, monkeypatch):
    for framework in ("torch", "flax"):
        pytest.importorskip(framework)
    models, deep = PARITY_TOML.split("[[explainers]]")[0], '[[explainers]]\nname = "deep"\n'
    torch_only = parse_config(models.split('[[models]]\nbackend = "flax"')[0] + deep)
    with_copy = parse_config(models.split('[[models]]\nbackend = "keras"')[0] + deep)
    _run(torch_only, tmp_path / "out")  # the source and its cells are done
    wrong = np.eye(10)[(runner.load_dataset(with_copy).y_test + 1) % 10]
    real_copy, real_obtain, loaded = runner.copy_model, runner.obtain_model, []
    monkeypatch.setattr(runner, "copy_model", lambda *a, **k: replace(  # all predictions wrong
        real_copy(*a, **k), test_scores=wrong))
    monkeypatch.setattr(runner, "obtain_model", lambda *a, **k: loaded.append(
        real_obtain(*a, **k)) or loaded[-1])
    summary = _run(with_copy, tmp_path / "out")
    assert (summary.n_finished, summary.n_skipped, summary.failures) == (1, 1, ())
    assert [source.from_cache for source in loaded] == [True]  # the source, from its checkpoint
    store = Store(tmp_path / "out")
    ids = {row.backend: store.load_arrays(row.cell_key)["image_ids"].tolist()
           for row in store.frame("cells").itertuples()}
    assert ids["flax"] == ids["torch"] != [0, 1, 2]  # the copy's own scores would pick image 2


def test_first_cell_of_each_explainer_is_warmed_up_untimed(tiny, tmp_path, monkeypatch):
    from xaibench.backend import Backend

    calls: list[tuple[str, int]] = []
    real_explain = Backend.explain

    def counting_explain(self, method, x, *args, **kwargs):
        calls.append((method, len(x)))
        return real_explain(self, method, x, *args, **kwargs)

    monkeypatch.setattr(Backend, "explain", counting_explain)
    _run(tiny, tmp_path / "out")
    assert sorted(calls) == [("deep", 1), ("deep", 2), ("partition", 1), ("partition", 2)]
    cells = Store(tmp_path / "out").frame("cells")
    assert (cells["n_images"] == 2).all()


def test_the_cell_summary_gives_an_additivity_gap_only_for_additive_explainers():
    from types import SimpleNamespace

    from xaibench.backend import Attribution
    from xaibench.experiment.runner import _summary

    values = np.ones((2, 2, 2, 1, 1))
    for method, expected in (("partition", "mean additivity gap 3.00e+00"),
                             ("gradcam", "not additive (no SHAP values)")):
        attribution = Attribution(method, values, np.zeros((2, 1), np.int64), np.zeros((2, 1)),
                                  np.ones((2, 1)), wall_seconds=1.0, model_evals=4)
        line = _summary(SimpleNamespace(label=f"{method}/-/torch:mlp", explainer=method),
                        attribution)
        assert line == (f"done {method}/-/torch:mlp: 2 images, 0.500 s/image, 2 evals/image, "
                        f"{expected}")
