"""``ImageSpec.check`` and ``Backend.predict`` on their fast paths: a batch that is already
float32 and C-contiguous is not copied, every other input is converted, a batch within the
backend's batch size is predicted in one call and the caller gets its own copy of the scores."""

from __future__ import annotations

import numpy as np
import pytest

from xaibench import ImageSpec
from xaibench.errors import XaibenchError
from xaibench.testing import InferenceOnlyBackend

SPEC = ImageSpec(shape=(4, 4, 1), class_names=("a", "b", "c"))


def images(n: int) -> np.ndarray:
    return np.random.default_rng(0).random((n, *SPEC.shape), dtype=np.float32)


class FixedScores(InferenceOnlyBackend):
    """Returns the same score buffer for every batch (rows cycled), as a model that reuses
    its output memory would."""

    name = "fixed"

    def __init__(self, scores: np.ndarray, **kwargs: object) -> None:
        super().__init__(SPEC, **kwargs)
        self.scores = scores
        self.calls = 0

    def _predict_batch(self, x: np.ndarray) -> np.ndarray:
        self.calls += 1
        return self.scores[:len(x)]


def test_a_float32_contiguous_batch_is_returned_as_is():
    x = images(3)
    assert SPEC.check(x) is x


@pytest.mark.parametrize("convert", [
    lambda x: x.astype(np.float64),
    lambda x: np.asfortranarray(x),
    lambda x: x.astype(">f4"),
    lambda x: x[:, ::-1],
    lambda x: x.tolist(),
    lambda x: (x * 255).astype(np.uint8) / np.float32(255),
], ids=["float64", "fortran", "big-endian", "strided", "list", "from-uint8"])
def test_every_other_batch_is_converted_to_float32_contiguous(convert):
    source = convert(images(3))
    x = SPEC.check(source)
    assert x.dtype == np.float32 and x.dtype.isnative and x.flags.c_contiguous
    np.testing.assert_array_equal(x, np.asarray(source, dtype=np.float32))


def test_non_numeric_and_misshapen_batches_are_rejected():
    with pytest.raises(XaibenchError, match="numeric images, got dtype <U"):
        SPEC.check(np.full((1, *SPEC.shape), "a"))
    with pytest.raises(XaibenchError, match="add a batch axis"):
        SPEC.check(images(1)[0])
    with pytest.raises(XaibenchError, match=r"\(N, 4, 4, 1\) \(NHWC\); got \(1, 4, 4\)"):
        SPEC.check(images(1)[..., 0])


@pytest.mark.parametrize("nan_pixel", [True, False])
def test_one_bad_pixel_anywhere_fails_the_min_max_check(nan_pixel):
    x = images(5)
    x[4, 3, 3, 0] = np.nan if nan_pixel else 1.5
    with pytest.raises(XaibenchError, match="NaN or infinite" if nan_pixel else "outside"):
        SPEC.check(x)


def test_predict_returns_a_fresh_float32_array_in_batch_order():
    scores = np.arange(30, dtype=np.float64).reshape(10, 3)
    backend = FixedScores(scores, batch_size=4)
    out = backend.predict(images(3))
    assert out.dtype == np.float32 and backend.n_evals == 3
    out[:] = -1  # the caller owns it: the model's buffer is untouched
    np.testing.assert_array_equal(backend.predict(images(3)), scores[:3])
    backend.scores = np.arange(12, dtype=np.float32).reshape(4, 3)
    np.testing.assert_array_equal(backend.predict(images(10)),
                                  np.concatenate([backend.scores] * 2 + [backend.scores[:2]]))
    assert backend.calls == 2 + 3


# inf + -inf in predict's one-sum check warns before the error says which scores are bad
@pytest.mark.filterwarnings("ignore:invalid value encountered in reduce:RuntimeWarning")
def test_the_largest_finite_scores_pass_and_any_nonfinite_one_fails():
    big = np.finfo(np.float32).max
    scores = np.full((64, 3), big, np.float32)
    scores[::2] = -big
    backend = FixedScores(scores, batch_size=64)
    assert np.isfinite(backend.predict(images(64))).all()
    scores[:] = big
    assert np.isfinite(backend.predict(images(64))).all()
    for bad in ([np.inf], [-np.inf], [np.nan], [np.inf, -np.inf]):
        backend.scores = np.zeros((5, 3), np.float32)
        backend.scores[4, 3 - len(bad):] = bad
        with pytest.raises(XaibenchError, match=rf"outputs NaN or infinite scores \({len(bad)} "
                                                r"of 15 outputs\) for 1 of 5 images"):
            backend.predict(images(5))
