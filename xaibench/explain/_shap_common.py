"""Helpers shared by the shap-based model-agnostic explainers (partition, permutation)."""

from __future__ import annotations

import contextlib
import functools
import inspect
from typing import Any, Callable, Iterator

import numpy as np

from xaibench.backend import Backend
from xaibench.errors import ConfigError


def check_positive_int(name: str, value: Any, minimum: int = 1) -> int:
    """``value`` as an int >= ``minimum``, or ConfigError naming the parameter."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_seed(seed: Any) -> int | None:
    """``seed`` as None or an int usable by numpy's legacy global RNG, or ConfigError."""
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
        raise ConfigError(f"seed must be None or an integer in [0, 2**32), got {seed!r}")
    return int(seed)


def check_output_indices(x: np.ndarray, output_indices: np.ndarray) -> np.ndarray:
    """``output_indices`` as an (N, K) int64 array matching the batch ``x``."""
    idx = np.asarray(output_indices, dtype=np.int64)
    if idx.ndim != 2 or idx.shape[0] != len(x):
        raise ConfigError(f"output_indices must have shape ({len(x)}, K), got {idx.shape}")
    return idx


#: marks an attribute a masker does not have (read without running its properties)
_ABSENT = object()

def resolve_masker(masker: Any, image_shape: tuple[int, int, int],
                   patch: int | None = None) -> Any:
    """A masker spec string built with :func:`~xaibench.explain.maskers.make_masker`;
    an already built shap masker object is used as it is (programmatic use, tests, and
    tabular maskers, built over background rows by :func:`~xaibench.explain.maskers.
    masker_for`). With ``patch`` it is wrapped to switch square ``patch`` x ``patch``
    superpixels instead of pixel-channels
    (:class:`~xaibench.explain._image_maskers.GroupedMasker`)."""
    from xaibench.explain.maskers import make_masker

    if isinstance(masker, str):
        built = make_masker(masker, image_shape)
    elif callable(masker) and hasattr(masker, "shape") and \
            inspect.getattr_static(masker, "clustering", _ABSENT) is not _ABSENT:  # not built
        n_features = int(np.prod(image_shape))
        if not callable(masker.shape) and int(masker.shape[1]) != n_features:
            raise ConfigError(f"the masker has {masker.shape[1]} features but images of shape "
                              f"{tuple(image_shape)} have {n_features}")
        built = masker
    else:
        raise ConfigError(f"masker must be a spec string such as 'blur(8,8)' or a shap image "
                          f"masker, got {masker!r}")
    if patch is None:
        return built
    from xaibench.explain._image_maskers import group_pixels
    return group_pixels(built, patch)


def check_grouping(backend: Backend, patch: Any) -> int | None:
    """``patch`` (None: no grouping) checked for the backend's images: an int in 1..min(H, W),
    and refused for tabular rows, whose features have no neighbours to group with."""
    from xaibench.explain.maskers import check_patch

    if patch is None:
        return None
    if backend.spec.is_tabular:
        raise ConfigError(f"patch = {patch!r} groups neighbouring pixels into superpixels, but "
                          f"this model takes tabular rows of {backend.spec.shape[1]} features; "
                          f"remove patch")
    return check_patch(patch, backend.spec.shape)


def image_values(masker: Any, values: Any, image_shape: tuple[int, int, int]) -> np.ndarray:
    """shap's values for one image, (features, K) -> (H, W, C, K): as they are for a masker
    over pixel-channels, spread evenly over each group's pixels for a grouped one."""
    from xaibench.explain._image_maskers import GroupedMasker

    if isinstance(masker, GroupedMasker):
        return masker.spread(values)
    return np.asarray(values).reshape(*image_shape, -1)


def masker_input(masker: Any, x: np.ndarray) -> np.ndarray:
    """``x`` as ``masker`` takes it: rows (N, F) for shap's tabular maskers (they check the
    data against their background's row shape), the NHWC images otherwise."""
    import shap

    return x.reshape(len(x), -1) if isinstance(masker, shap.maskers._tabular.Tabular) else x


def model_function(backend: Backend, fill: Callable[[np.ndarray], np.ndarray] | None = None,
                   batch_size: int | None = None) -> Callable[[np.ndarray], np.ndarray]:
    """The model as shap sees it: masked NHWC samples -> (B, n_classes) scores.

    Every call goes through ``backend.predict``, so each masked sample is counted as one
    model evaluation. With ``fill`` (from :func:`~xaibench.explain._image_maskers.batched_fill`)
    shap hands over keep masks — or, from a delta-masking call, the ids of all the masks of a
    permutation at once — and ``fill`` turns them into masked images, ``batch_size`` at a time
    (None: all at once).
    """
    shape = backend.spec.shape

    def predict(batch: np.ndarray) -> np.ndarray:
        return backend.predict(np.asarray(batch, dtype=np.float32).reshape((-1, *shape)))

    def f(batch: np.ndarray) -> np.ndarray:
        if fill is None:
            return predict(batch)
        batch = np.asarray(batch)
        step = batch_size or max(len(batch), 1)
        parts = [predict(fill(batch[i:i + step])) for i in range(0, max(len(batch), 1), step)]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    return f


@contextlib.contextmanager
def numpy_global_seed(seed: int | None) -> Iterator[None]:
    """Seed the global RNGs shap draws from, and restore numpy's afterwards.

    shap uses numpy's global RNG in plain Python (PartitionExplainer's queue tie-breaking) and
    inside numba-compiled code (PermutationExplainer's partition-tree shuffle), where
    ``np.random`` is numba's *own* generator that ``np.random.seed`` does not reach — so
    shap's ``seed=`` alone does not make permutations reproducible. Both are seeded here.
    """
    check_seed(seed)
    state = np.random.get_state()
    numba_state = _numba_rng_state()
    if seed is not None:
        np.random.seed(seed)
        _seed_numba(seed)
    try:
        yield
    finally:
        np.random.set_state(state)
        _restore_numba_rng_state(numba_state)


def _numba_rng_state() -> Any:
    try:
        from numba import _helperlib
        return _helperlib.rnd_get_state(_helperlib.rnd_get_np_state_ptr())
    except Exception:  # pragma: no cover - private numba API changed
        return None


def _restore_numba_rng_state(state: Any) -> None:
    """Best effort (numba's cached second Gaussian is not part of the state)."""
    if state is None:  # pragma: no cover
        return
    from numba import _helperlib
    _helperlib.rnd_set_state(_helperlib.rnd_get_np_state_ptr(), state)


def _seed_numba(seed: int) -> None:
    try:
        from numba import _helperlib
        _helperlib.rnd_seed(_helperlib.rnd_get_np_state_ptr(), int(seed))
    except (ImportError, AttributeError):  # pragma: no cover - private numba API changed
        _numba_seed_function()(int(seed))


@functools.cache
def _numba_seed_function() -> Callable[[int], None]:  # pragma: no cover
    from numba import njit

    @njit
    def seed(value: int) -> None:
        np.random.seed(value)

    return seed


def empty_result(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Values and base values for a batch with no images or no outputs to explain."""
    return np.zeros((*x.shape, k)), np.zeros((len(x), k))
