"""Deletion / insertion curves, their AUCs and ABPC against closed forms on a linear model."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xaibench.errors import ConfigError, XaibenchError
from xaibench.metrics import ABPC, DeletionAUC, InsertionAUC, curve_auc, perturbation_curves
from xaibench.metrics.base import MetricContext
from xaibench.metrics.faithfulness import normalised_curves


def analytic_curves(backend, x, attribution, fill_value: float, steps: int):
    """By hand: removing pixel p (all channels) from a linear model changes the score by
    exactly its relevance Σ_c w_pc (x_pc − fill) (the exact SHAP value against ``fill``)."""
    n, h, w, c = x.shape
    p = h * w
    f_x = backend.scores64(x)
    f_empty = backend.scores64(np.full((1, h, w, c), fill_value))[0]
    counts = [math.floor(j * p / steps + 0.5) for j in range(steps + 1)]
    deletion = np.empty((n, attribution.output_indices.shape[1], steps + 1))
    insertion = np.empty_like(deletion)
    for i in range(n):
        for k, cls in enumerate(attribution.output_indices[i]):
            rel = attribution.values[i, ..., k].sum(axis=-1).reshape(-1)
            cum = np.concatenate([[0.0], np.cumsum(np.sort(rel)[::-1])])
            for j in range(steps + 1):
                deletion[i, k, j] = f_x[i, cls] - cum[counts[j]]
                insertion[i, k, j] = f_empty[cls] + cum[p - counts[steps - j]]
    return deletion, insertion


def normalised_auc_by_hand(curve: np.ndarray, f_x: float, f_empty: float) -> float:
    c = (curve - f_empty) / abs(f_x - f_empty)
    return float((c.sum() - (c[0] + c[-1]) / 2) / (len(c) - 1))


@pytest.mark.parametrize("steps", [8, 20])
def test_curves_match_the_closed_form_with_zero_fill(linear, images, steps):
    # 6x6 = 36 pixels: with 8 steps j·36/8 hits .5 at odd j, which tests the half-up rounding
    x = images(3, linear.spec.shape)
    attribution = linear.explain("deep", x, 2, background=np.zeros((1, *linear.spec.shape)))
    curves = perturbation_curves(linear, x, attribution, steps=steps, replacement="zero")
    deletion, insertion = analytic_curves(linear, x, attribution, 0.0, steps)
    assert curves["deletion"].shape == curves["insertion"].shape == (3, 2, steps + 1)
    np.testing.assert_allclose(curves["deletion"], deletion, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(curves["insertion"], insertion, rtol=1e-5, atol=1e-4)

    f_x, f_empty = deletion[..., 0], deletion[..., -1]
    expected_del = np.vectorize(normalised_auc_by_hand, signature="(s),(),()->()")(
        deletion, f_x, f_empty)
    expected_ins = np.vectorize(normalised_auc_by_hand, signature="(s),(),()->()")(
        insertion, f_x, f_empty)
    for metric, expected in ((DeletionAUC, expected_del), (InsertionAUC, expected_ins),
                             (ABPC, expected_ins - expected_del)):
        np.testing.assert_allclose(metric(steps=steps, replacement="zero")(linear, x, attribution),
                                   expected, rtol=1e-4, atol=1e-5)


def test_cell_masker_object_is_used_for_removed_pixels(linear, images):
    from xaibench.explain.maskers import constant

    x = images(2, linear.spec.shape, seed=1)
    attribution = linear.explain("deep", x, np.array([[0, 3], [2, 1]]),
                                 background=np.full((1, *linear.spec.shape), 0.3))
    masker = constant(linear.spec.shape, 0.3)
    curves = perturbation_curves(linear, x, attribution, steps=10, masker=masker)
    deletion, insertion = analytic_curves(linear, x, attribution, 0.3, 10)
    np.testing.assert_allclose(curves["deletion"], deletion, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(curves["insertion"], insertion, rtol=1e-5, atol=1e-4)


def test_insertion_read_backwards_is_the_lerf_curve(linear, images):
    x = images(2, linear.spec.shape, seed=2)
    attribution = linear.explain("deep", x, 3, background=np.zeros((1, *linear.spec.shape)))
    flipped = type(attribution)(**{**vars(attribution), "values": -attribution.values})
    insertion = perturbation_curves(linear, x, attribution, kinds=("insertion",), steps=8,
                                    replacement="mean")["insertion"]
    lerf = perturbation_curves(linear, x, flipped, kinds=("deletion",), steps=8,
                               replacement="mean")["deletion"]
    np.testing.assert_allclose(insertion, lerf[..., ::-1], rtol=1e-6, atol=1e-5)


def test_random_attribution_is_less_faithful_than_exact_shap(linear, images):
    x = images(4, linear.spec.shape, seed=3)
    targets = np.array([[0, 1], [1, 2], [2, 3], [3, 0]])
    background = np.zeros((1, *linear.spec.shape))
    exact = linear.explain("deep", x, targets, background=background)
    noise = linear.explain("random", x, targets, seed=0)
    for metric, exact_is_better in ((DeletionAUC(replacement="zero"), np.less),
                                    (InsertionAUC(replacement="zero"), np.greater),
                                    (ABPC(replacement="zero"), np.greater)):
        assert np.all(exact_is_better(metric(linear, x, exact), metric(linear, x, noise))), \
            metric.name


def test_all_steps_of_an_image_go_through_one_predict_call(linear, images, monkeypatch):
    x = images(3, linear.spec.shape)
    attribution = linear.explain("deep", x, 2, background=np.zeros((1, *linear.spec.shape)))
    calls: list[int] = []
    predict = linear.predict
    monkeypatch.setattr(linear, "predict", lambda batch: calls.append(len(batch)) or predict(batch))
    reference = perturbation_curves(linear, x, attribution, steps=5, replacement="zero")
    assert calls == [3 * 2 * 2 * 6]
    calls.clear()
    per_image = perturbation_curves(linear, x, attribution, steps=5, replacement="zero",
                                    max_batch_bytes=1)
    assert calls == [2 * 2 * 6] * 3
    for kind in reference:
        np.testing.assert_array_equal(per_image[kind], reference[kind])


def test_masker_free_cells_fall_back_to_blur(linear, images):
    import cv2

    x = images(2, linear.spec.shape, seed=4)
    attribution = linear.explain("deep", x, 1, background=np.zeros((1, *linear.spec.shape)))
    fallback = perturbation_curves(linear, x, attribution, steps=4, masker=None)
    blur = perturbation_curves(linear, x, attribution, steps=4, replacement="blur(8,8)")
    for kind in fallback:
        np.testing.assert_array_equal(fallback[kind], blur[kind])
    blurred = np.stack([cv2.blur(image, (8, 8)) for image in x])
    expected = np.take_along_axis(linear.scores64(blurred), attribution.output_indices, axis=1)
    np.testing.assert_allclose(fallback["deletion"][..., -1], expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(fallback["insertion"][..., 0], expected, rtol=1e-5, atol=1e-5)
    # the cell's masker spec wins over the fallback
    cell = perturbation_curves(linear, x, attribution, steps=4, masker="blur(3,3)")
    np.testing.assert_array_equal(
        cell["deletion"],
        perturbation_curves(linear, x, attribution, steps=4, replacement="blur(3,3)")["deletion"])
    assert not np.allclose(cell["deletion"][..., -1], blur["deletion"][..., -1])


@pytest.mark.parametrize("spec", ["blur(3,2)", "constant(0.4)", "inpaint_telea"])
def test_vectorised_fills_equal_one_masker_call_per_step(linear, images, spec):
    from xaibench.explain.maskers import make_masker

    x = images(2, linear.spec.shape, seed=6)
    attribution = linear.explain("deep", x, 2, background=np.zeros((1, *linear.spec.shape)))
    by_spec = perturbation_curves(linear, x, attribution, steps=6, masker=spec)
    per_step = perturbation_curves(linear, x, attribution, steps=6,
                                   masker=make_masker(spec, linear.spec.shape))
    for kind in by_spec:
        np.testing.assert_array_equal(by_spec[kind], per_step[kind])


@pytest.mark.parametrize("replacement", ["zero", "mean", "blur", "inpaint_telea", "inpaint_ns"])
def test_every_replacement_runs_from_x_to_fully_replaced(linear, images, replacement):
    x = images(2, linear.spec.shape, seed=5)
    attribution = linear.explain("deep", x, 1, background=np.zeros((1, *linear.spec.shape)))
    curves = perturbation_curves(linear, x, attribution, steps=4, replacement=replacement)
    np.testing.assert_allclose(curves["deletion"][..., 0], attribution.model_outputs, rtol=1e-5)
    np.testing.assert_allclose(curves["insertion"][..., -1], attribution.model_outputs, rtol=1e-5)
    np.testing.assert_allclose(curves["deletion"][..., -1], curves["insertion"][..., 0], rtol=1e-6)
    if replacement == "mean":
        mean_image = np.broadcast_to(x.mean(axis=(1, 2), keepdims=True), x.shape)
        expected = np.take_along_axis(linear.scores64(mean_image), attribution.output_indices, 1)
        np.testing.assert_allclose(curves["deletion"][..., -1], expected, rtol=1e-5, atol=1e-5)


def test_normalisation_and_degenerate_curves():
    deletion = np.array([[[4.0, 2.0, 1.0, 0.0]], [[3.0, 3.0, 3.0, 3.0]]])
    np.testing.assert_allclose(curve_auc(deletion, "deletion")[0], (1 + 0.5 + 0.25) / 3 - 1 / 6)
    assert np.isnan(curve_auc(deletion, "deletion")[1, 0])
    np.testing.assert_allclose(curve_auc(deletion, "deletion", normalise=False)[:, 0],
                               [(4 + 2 * 2 + 2 * 1 + 0) / 6, 3.0])
    # the trapezoid rule is symmetric under reversal: the LeRF curve has the insertion AUC
    np.testing.assert_allclose(curve_auc(deletion[..., ::-1], "insertion"),
                               curve_auc(deletion, "deletion"))
    # f(empty) > f(x): scaled by |f(x) - f(empty)|, so a lower raw curve stays lower
    rising = np.array([[0.0, 1.0, 3.0, 4.0], [0.0, 2.0, 3.0, 4.0]])
    # normalised: [-1, -.75, -.25, 0] and [-1, -.5, -.25, 0]
    np.testing.assert_allclose(curve_auc(rising, "deletion"), [-1.5 / 3, -1.25 / 3])


def test_normalised_curves_run_from_one_to_zero_and_zero_to_one():
    deletion = np.array([[4.0, 3.0, 1.0, 2.0], [5.0, 5.0, 5.0, 5.0]])
    np.testing.assert_allclose(normalised_curves(deletion, "deletion"),  # f(x) = 4, f(∅) = 2
                               [[1.0, 0.5, -0.5, 0.0], [np.nan] * 4])
    insertion = np.array([[-1.0, 0.0, 1.0]])  # the replacement raises the score: |span|
    np.testing.assert_allclose(normalised_curves(insertion, "insertion"), [[0.0, 0.5, 1.0]])
    np.testing.assert_allclose(curve_auc(deletion, "deletion"),
                               np.trapezoid(normalised_curves(deletion, "deletion"), dx=1 / 3))
    with pytest.raises(ConfigError, match="kind"):
        normalised_curves(deletion, "morf")


def test_metrics_of_a_context_share_one_curve_computation(linear, images, monkeypatch):
    x = images(3, linear.spec.shape, seed=7)
    attribution = linear.explain("deep", x, 2, background=np.zeros((1, *linear.spec.shape)))
    metrics = (DeletionAUC(steps=5), InsertionAUC(steps=5), ABPC(steps=5))
    alone = [metric(linear, x, attribution, masker="blur(3,3)") for metric in metrics]
    predicted: list[int] = []
    predict = linear.predict
    monkeypatch.setattr(linear, "predict",
                        lambda batch: predicted.append(len(batch)) or predict(batch))
    context = MetricContext()
    shared = [metric(linear, x, attribution, masker="blur(3,3)", context=context)
              for metric in metrics]
    assert sum(predicted) == 3 * 2 * 2 * 6  # each kind's images once, not once per metric
    for score, expected in zip(shared, alone):
        np.testing.assert_array_equal(score, expected)
    curves = perturbation_curves(linear, x, attribution, steps=5, masker="blur(3,3)")
    assert set(context.arrays) == {"deletion_curve", "insertion_curve"}
    for kind in curves:
        np.testing.assert_array_equal(context.arrays[f"{kind}_curve"], curves[kind])

    predicted.clear()  # other curve params are computed anew; the first arrays stay
    other = ABPC(steps=4, replacement="zero")(linear, x, attribution, masker="blur(3,3)",
                                              context=context)
    assert sum(predicted) == 3 * 2 * 2 * 5
    np.testing.assert_array_equal(
        other, ABPC(steps=4, replacement="zero")(linear, x, attribution, masker="blur(3,3)"))
    assert context.arrays["deletion_curve"].shape == (3, 2, 6)


def test_bad_arguments_fail_fast(linear, images):
    for kwargs in ({"steps": 0}, {"replacement": "blurr"}, {"replacement": "noise"},
                   {"fallback": "masker"}):
        with pytest.raises(ConfigError):
            DeletionAUC(**kwargs)
    x = images(2, linear.spec.shape)
    attribution = linear.explain("deep", x, 1, background=np.zeros((1, *linear.spec.shape)))
    with pytest.raises(XaibenchError, match="do not explain"):
        perturbation_curves(linear, x[:1], attribution)
    with pytest.raises(ConfigError, match="kinds"):
        perturbation_curves(linear, x, attribution, kinds=("morf",))
