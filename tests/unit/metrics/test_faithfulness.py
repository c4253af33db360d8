"""Deletion / insertion curves, their AUCs and ABPC against closed forms on a linear model."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xaibench.errors import ConfigError, XaibenchError
from xaibench.metrics import ABPC, DeletionAUC, InsertionAUC, curve_auc, perturbation_curves
from xaibench.metrics.base import MetricContext
from xaibench.metrics.faithfulness import (class_probabilities, normalised_curves,
                                           score_spread)


def analytic_class_scores(backend, x, attribution, fill_value: float, steps: int):
    """By hand: removing pixel p (all channels) from a linear model changes the score of every
    class d by exactly Σ_c W[p, c, d] (x_pc − fill). Every class's scores (N, K, steps + 1,
    classes) along the deletion and insertion curves, pixels ranked by the explained output's
    attribution."""
    n, h, w, c = x.shape
    p = h * w
    f_x = backend.scores64(x)
    relevance = ((x[..., None] - fill_value) * backend.weights.reshape(h, w, c, -1)) \
        .sum(axis=3).reshape(n, p, -1)
    counts = [math.floor(j * p / steps + 0.5) for j in range(steps + 1)]
    deletion = np.empty((n, attribution.output_indices.shape[1], steps + 1, f_x.shape[1]))
    insertion = np.empty_like(deletion)
    for i in range(n):
        for k in range(attribution.output_indices.shape[1]):
            order = np.argsort(-attribution.values[i, ..., k].sum(axis=-1).reshape(-1))
            cum = np.concatenate([np.zeros((1, f_x.shape[1])),
                                  np.cumsum(relevance[i, order], axis=0)])
            for j in range(steps + 1):
                deletion[i, k, j] = f_x[i] - cum[counts[j]]
                insertion[i, k, j] = f_x[i] - cum[p] + cum[p - counts[steps - j]]
    return deletion, insertion


def explained(class_values: np.ndarray, attribution) -> np.ndarray:
    """The explained outputs' entries (N, K, steps + 1) of (N, K, steps + 1, classes) values."""
    rows = attribution.output_indices[:, :, None, None]
    return np.take_along_axis(class_values, rows, axis=-1)[..., 0]


def analytic_curves(backend, x, attribution, fill_value: float, steps: int):
    """The explained outputs' score curves (deletion, insertion), by hand."""
    return tuple(explained(scores, attribution)
                 for scores in analytic_class_scores(backend, x, attribution, fill_value, steps))


def softmax_by_hand(scores: np.ndarray) -> np.ndarray:
    exp = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return exp / exp.sum(axis=-1, keepdims=True)


def normalised_auc_by_hand(curve: np.ndarray, f_empty: float, spread: float) -> float:
    c = (curve - f_empty) / spread
    return float((c.sum() - (c[0] + c[-1]) / 2) / (len(c) - 1))


@pytest.mark.parametrize("steps", [8, 20])
def test_curves_match_the_closed_form_with_zero_fill(linear, images, steps):
    # 6x6 = 36 pixels: with 8 steps j·36/8 hits .5 at odd j, which tests the half-up rounding
    x = images(3, linear.spec.shape)
    attribution = linear.explain("deep", x, 2, background=np.zeros((1, *linear.spec.shape)))
    curves = perturbation_curves(linear, x, attribution, steps=steps, replacement="zero",
                                 space="score")
    deletion, insertion = analytic_curves(linear, x, attribution, 0.0, steps)
    assert curves["deletion"].shape == curves["insertion"].shape == (3, 2, steps + 1)
    np.testing.assert_allclose(curves["deletion"], deletion, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(curves["insertion"], insertion, rtol=1e-5, atol=1e-4)

    f_empty = deletion[..., -1]
    scores = linear.scores64(x)
    spread = (scores.max(axis=1) - scores.min(axis=1))[:, None]  # every class of x, by hand
    expected_del = np.vectorize(normalised_auc_by_hand, signature="(s),(),()->()")(
        deletion, f_empty, spread)
    expected_ins = np.vectorize(normalised_auc_by_hand, signature="(s),(),()->()")(
        insertion, f_empty, spread)
    for metric, expected in ((DeletionAUC, expected_del), (InsertionAUC, expected_ins),
                             (ABPC, expected_ins - expected_del)):
        np.testing.assert_allclose(
            metric(steps=steps, replacement="zero", space="score")(linear, x, attribution),
            expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("steps", [8, 20])
def test_probability_curves_are_the_softmax_of_the_closed_form(linear, images, steps):
    x = images(3, linear.spec.shape, seed=8)
    attribution = linear.explain("deep", x, np.array([[0, 3], [2, 1], [1, 1]]),
                                 background=np.zeros((1, *linear.spec.shape)))
    curves = perturbation_curves(linear, x, attribution, steps=steps, replacement="zero")
    deletion, insertion = (explained(softmax_by_hand(scores), attribution) for scores in
                           analytic_class_scores(linear, x, attribution, 0.0, steps))
    np.testing.assert_allclose(curves["deletion"], deletion, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(curves["insertion"], insertion, rtol=1e-5, atol=1e-6)
    assert not np.allclose(deletion[..., 0], 1.0) and np.ptp(deletion) > 0.1  # not saturated

    def auc_by_hand(curve: np.ndarray) -> np.ndarray:  # trapezoid, no normalisation
        return (curve.sum(axis=-1) - (curve[..., 0] + curve[..., -1]) / 2) / steps

    for metric, expected in ((DeletionAUC, auc_by_hand(deletion)),
                             (InsertionAUC, auc_by_hand(insertion)),
                             (ABPC, auc_by_hand(insertion) - auc_by_hand(deletion))):
        np.testing.assert_allclose(metric(steps=steps, replacement="zero")(linear, x, attribution),
                                   expected, rtol=1e-5, atol=1e-6)


def test_probability_outputs_are_not_softmaxed_again(linear, images, monkeypatch):
    x = images(2, linear.spec.shape, seed=9)
    attribution = linear.explain("deep", x, 2, background=np.zeros((1, *linear.spec.shape)))
    from_logits = perturbation_curves(linear, x, attribution, steps=6, replacement="mean")
    predict = linear.predict
    monkeypatch.setattr(linear, "predict", lambda batch: softmax_by_hand(predict(batch)))
    from_probabilities = perturbation_curves(linear, x, attribution, steps=6, replacement="mean")
    scores_are_probabilities = perturbation_curves(linear, x, attribution, steps=6,
                                                   replacement="mean", space="score")
    for kind in from_logits:
        np.testing.assert_allclose(from_probabilities[kind], from_logits[kind], rtol=1e-6)
        np.testing.assert_allclose(scores_are_probabilities[kind], from_logits[kind], rtol=1e-6)


def test_only_rows_of_probabilities_are_kept_as_they_are():
    rows = np.array([[0.25, 0.75, 0.0],        # probabilities
                     [0.5, 0.50005, 0.0],      # sum off by 5e-5: still probabilities
                     [0.5, 0.5002, 0.0],       # sum off by 2e-4: logits
                     [1.5, -0.5, 0.0],         # sums to 1 but outside [0, 1]: logits
                     [0.2, 0.3, 0.1]])         # in [0, 1] but sums to 0.6: logits
    expected = np.concatenate([rows[:2], softmax_by_hand(rows[2:])])
    np.testing.assert_allclose(class_probabilities(rows), expected, rtol=1e-12)
    np.testing.assert_allclose(class_probabilities(rows[None].astype(np.float32))[0], expected,
                               rtol=1e-6)


def test_cell_masker_object_is_used_for_removed_pixels(linear, images):
    from xaibench.explain.maskers import constant

    x = images(2, linear.spec.shape, seed=1)
    attribution = linear.explain("deep", x, np.array([[0, 3], [2, 1]]),
                                 background=np.full((1, *linear.spec.shape), 0.3))
    masker = constant(linear.spec.shape, 0.3)
    curves = perturbation_curves(linear, x, attribution, steps=10, masker=masker, space="score")
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
    fallback = perturbation_curves(linear, x, attribution, steps=4, masker=None, space="score")
    blur = perturbation_curves(linear, x, attribution, steps=4, replacement="blur(8,8)",
                               space="score")
    for kind in fallback:
        np.testing.assert_array_equal(fallback[kind], blur[kind])
    blurred = np.stack([cv2.blur(image, (8, 8)) for image in x])
    expected = np.take_along_axis(linear.scores64(blurred), attribution.output_indices, axis=1)
    np.testing.assert_allclose(fallback["deletion"][..., -1], expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(fallback["insertion"][..., 0], expected, rtol=1e-5, atol=1e-5)
    # the cell's masker spec wins over the fallback
    cell = perturbation_curves(linear, x, attribution, steps=4, masker="blur(3,3)", space="score")
    np.testing.assert_array_equal(
        cell["deletion"], perturbation_curves(linear, x, attribution, steps=4,
                                              replacement="blur(3,3)", space="score")["deletion"])
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
    curves = perturbation_curves(linear, x, attribution, steps=4, replacement=replacement,
                                 space="score")
    np.testing.assert_allclose(curves["deletion"][..., 0], attribution.model_outputs, rtol=1e-5)
    np.testing.assert_allclose(curves["insertion"][..., -1], attribution.model_outputs, rtol=1e-5)
    np.testing.assert_allclose(curves["deletion"][..., -1], curves["insertion"][..., 0], rtol=1e-6)
    if replacement == "mean":
        mean_image = np.broadcast_to(x.mean(axis=(1, 2), keepdims=True), x.shape)
        expected = np.take_along_axis(linear.scores64(mean_image), attribution.output_indices, 1)
        np.testing.assert_allclose(curves["deletion"][..., -1], expected, rtol=1e-5, atol=1e-5)


def test_normalisation_and_degenerate_curves():
    deletion = np.array([[[4.0, 2.0, 1.0, 0.0]], [[3.0, 3.0, 3.0, 3.0]], [[1.0, 2.0, 0.0, 1.0]]])
    spread = np.array([8.0, 2.0, np.nan])  # the third image's model has no spread: undefined
    np.testing.assert_allclose(curve_auc(deletion, "deletion", space="score", spread=spread),
                               [[(4 + 2 * 2 + 2 * 1 + 0) / 6 / 8], [0.0], [np.nan]])
    raw = [(4 + 2 * 2 + 2 * 1 + 0) / 6, 3.0, 1.0]
    np.testing.assert_allclose(curve_auc(deletion, "deletion", space="score")[:, 0], raw)
    np.testing.assert_allclose(curve_auc(deletion, "deletion")[:, 0], raw)  # probabilities
    # the trapezoid rule is symmetric under reversal: the LeRF curve has the insertion AUC
    np.testing.assert_allclose(
        curve_auc(deletion[..., ::-1], "insertion", space="score", spread=spread),
        curve_auc(deletion, "deletion", space="score", spread=spread))
    with pytest.raises(XaibenchError, match="score-space curves only"):
        curve_auc(deletion, "deletion", spread=spread)
    with pytest.raises(XaibenchError, match="one spread per image"):
        curve_auc(deletion, "deletion", space="score", spread=spread[:2])


def test_normalisation_cannot_explode_where_the_replacement_barely_moves_the_score():
    # f(x) = 5.0 and f(∅) = 4.999 (blurring barely moves the logit) while the model's scores
    # on x spread over 10: the old denominator |f(x) − f(∅)| = 0.001 made these AUCs ≈ ±1000
    steps = np.linspace(0, 1, 11)
    faithful = 5.0 - 2.0 * np.sin(np.pi * steps) - 0.001 * steps   # dips, then back to f(∅)
    unfaithful = 5.0 + 2.0 * np.sin(np.pi * steps) - 0.001 * steps
    curves = np.stack([faithful, unfaithful])[None]  # (1 image, 2 outputs, 11)
    auc = curve_auc(curves, "deletion", space="score", spread=np.array([10.0]))[0]
    assert np.all(np.abs(auc) < 0.2), auc
    assert auc[0] < auc[1]  # the raw order of the curves is kept
    np.testing.assert_allclose(auc, np.trapezoid(curves[0] - curves[0, :, -1:], dx=0.1) / 10)


def test_score_spread_is_undefined_only_without_discrimination():
    scores = np.array([[2.0, -1.0, 0.5], [3.0, 3.0, 3.0], [1e7, 1e7 + 1, 1e7], [0.0, 1e-5, 0.0]])
    np.testing.assert_allclose(score_spread(scores), [3.0, np.nan, np.nan, 1e-5])
    with pytest.raises(ConfigError, match="normalise=False"):
        score_spread(np.ones((4, 1)))


@pytest.mark.parametrize("kind", ["deletion", "insertion"])
def test_probability_auc_of_a_constant_curve_is_its_value(kind):
    p = np.array([0.0, 0.3, 0.97])[:, None] * np.ones((3, 11))
    np.testing.assert_allclose(curve_auc(p, kind), [0.0, 0.3, 0.97])


def test_normalised_curves_end_at_zero_where_everything_is_replaced():
    deletion = np.array([[4.0, 3.0, 1.0, 2.0], [5.0, 5.0, 5.0, 5.0]])
    spread = np.array([4.0, 1.0])
    np.testing.assert_allclose(normalised_curves(deletion, "deletion", spread),  # f(∅) = 2
                               [[0.5, 0.25, -0.25, 0.0], [0.0] * 4])
    insertion = np.array([[-1.0, 0.0, 1.0]])  # the replacement raises the score
    np.testing.assert_allclose(normalised_curves(insertion, "insertion", np.array([4.0])),
                               [[0.0, 0.25, 0.5]])
    np.testing.assert_allclose(curve_auc(deletion, "deletion", space="score", spread=spread),
                               np.trapezoid(normalised_curves(deletion, "deletion", spread),
                                            dx=1 / 3))
    with pytest.raises(ConfigError, match="kind"):
        normalised_curves(deletion, "morf", spread)


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
    assert set(context.arrays) == {"deletion_curve", "insertion_curve",
                                   "deletion_curve_space", "insertion_curve_space"}
    for kind in curves:
        np.testing.assert_array_equal(context.arrays[f"{kind}_curve"], curves[kind])
        assert context.arrays[f"{kind}_curve_space"] == "probability"

    predicted.clear()  # the space is part of the memo key
    in_score_space = ABPC(steps=5, space="score")
    score = in_score_space(linear, x, attribution, masker="blur(3,3)", context=context)
    assert sum(predicted) == 3 * 2 * 2 * 6 + 3  # and the 3 images once for their spread
    scores = linear.predict(x)
    np.testing.assert_allclose(context.arrays["score_spread"], np.ptp(scores, axis=1))
    np.testing.assert_array_equal(score, in_score_space(linear, x, attribution,
                                                        masker="blur(3,3)"))
    assert not np.allclose(score, shared[2])
    assert context.arrays["deletion_curve_space"] == "probability"

    predicted.clear()  # other curve params are computed anew; the first arrays stay
    other = ABPC(steps=4, replacement="zero")(linear, x, attribution, masker="blur(3,3)",
                                              context=context)
    assert sum(predicted) == 3 * 2 * 2 * 5
    np.testing.assert_array_equal(
        other, ABPC(steps=4, replacement="zero")(linear, x, attribution, masker="blur(3,3)"))
    assert context.arrays["deletion_curve"].shape == (3, 2, 6)


def test_bad_arguments_fail_fast(linear, images):
    for kwargs in ({"steps": 0}, {"replacement": "blurr"}, {"replacement": "noise"},
                   {"fallback": "masker"}, {"space": "logit"}):
        with pytest.raises(ConfigError):
            DeletionAUC(**kwargs)
    x = images(2, linear.spec.shape)
    attribution = linear.explain("deep", x, 1, background=np.zeros((1, *linear.spec.shape)))
    with pytest.raises(XaibenchError, match="do not explain"):
        perturbation_curves(linear, x[:1], attribution)
    with pytest.raises(ConfigError, match="kinds"):
        perturbation_curves(linear, x, attribution, kinds=("morf",))
    with pytest.raises(ConfigError, match="space"):
        curve_auc(np.zeros((1, 3)), "deletion", space="logits")
    one_output = type(linear).from_zoo("linear", type(linear.spec)(shape=linear.spec.shape,
                                                                   class_names=("a",)))
    single = one_output.explain("deep", x, 1, background=np.zeros((1, *linear.spec.shape)))
    with pytest.raises(ConfigError, match="2 classes"):  # its softmax would be 1 everywhere
        perturbation_curves(one_output, x, single)
    assert perturbation_curves(one_output, x, single, space="score")["deletion"].shape == \
        (2, 1, 21)
    with pytest.raises(ConfigError, match="spread.*normalise=False"):  # no spread to divide by
        ABPC(space="score")(one_output, x, single)
    context = MetricContext()
    raw = ABPC(space="score", normalise=False)(one_output, x, single, context=context)
    assert raw.shape == (2, 1) and "score_spread" not in context.arrays
