"""shap image maskers that are correct on float images (imports shap and cv2: import lazily).

shap's own ``shap.maskers.Image("inpaint_telea" | "inpaint_ns")`` casts the image to uint8
before inpainting and back, so an image with values in [0, 1] comes back entirely zero — the
kept pixels included — and even a 0–255 image loses its fractional part everywhere. The maskers
here fix that, and keep everything else shap's ``Image`` masker does (one feature per
pixel-channel, ``shape == (1, H*W*C)``, the axis-aligned partition tree in ``clustering`` that
PartitionExplainer needs, the per-sample background):

* unmasked features are returned *exactly* as they are in the input (no quantisation, no cast);
* hidden features are filled from a per-image background computed once per image (blur) or
  from OpenCV inpainting of an 8-bit copy of the image scaled to its own value range
  [min, max] -> [0, 255] and scaled back (inpaint), so fill values lie in the image's range.

The mask convention is shap's: ``True`` keeps a feature, ``False`` hides (masks) it.
"""

from __future__ import annotations

import contextlib
import math
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterator

import cv2
import numpy as np
import shap

from xaibench.errors import XaibenchError

_INPAINT_FLAGS = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}


class FloatImageMasker(shap.maskers.Image):
    """Base class: shap's Image masker machinery with exact pass-through of kept features.

    Subclasses implement :meth:`_prepare` (per-image work, cached while the same image is being
    explained) and :meth:`_fill` (the image with hidden features replaced).

    Inside :func:`batched_fill` the masker defers the filling: a call returns the keep mask
    (bool, the image's shape) and the model function fills a whole batch of them at once —
    in one vectorised call where ``_fill`` broadcasts over rows, else row by row in a thread
    pool (``threaded_fill``: OpenCV releases the GIL). Each row is filled by the same
    ``_fill`` as an immediate call, so the images, and the attributions, are bit-identical.
    There the masker also takes shap's delta-encoded masks (``supports_delta_masking``, as
    PermutationExplainer sends them): one call for all masks of a permutation returns their
    ids, and the model function decodes and fills them a batch at a time (:class:`DeltaMasks`)
    instead of shap's Python loop over (2M+1) full masks.
    """

    #: ``_fill`` broadcasts over a (B, M) keep matrix (one numpy call fills a batch)
    vectorised_fill = False
    #: fill deferred rows in a thread pool (``_fill`` spends its time outside the GIL)
    threaded_fill = False

    def __init__(self, mask_value: str, shape: tuple[int, int, int]) -> None:
        # shap's constructor sets shape, image_data, fixed_background=False (the background
        # depends on the image) and immutable_outputs=True (every call returns a fresh array);
        # the partition tree (``clustering``) is built when first read.
        self._clustering: np.ndarray | None = None
        super().__init__(mask_value, tuple(int(s) for s in shape))
        self._size = int(np.prod(self.input_shape))
        self._cache_key: bytes | None = None
        self._cache_value: Any = None
        #: the image whose masks are being deferred (inside :func:`batched_fill`), else None
        self._deferred: np.ndarray | None = None
        self._deferring = False
        #: the masks of the last delta-masking call (inside :func:`batched_fill`)
        self._delta: DeltaMasks | None = None

    @property
    def supports_delta_masking(self) -> bool:
        """shap's MaskedModel hands over delta-encoded masks only while filling is deferred
        (an immediate call would have to return all (2M+1) masked images at once)."""
        return self._deferring

    # --- shap's masker protocol ------------------------------------------------------------
    def __call__(self, mask: Any, x: Any) -> tuple[Any, ...]:
        if not isinstance(x, np.ndarray) and shap.utils.safe_isinstance(x, "torch.Tensor"):
            x = x.cpu().numpy()
        if isinstance(x, list) and len(x) == 1:
            x = x[0]
        x = np.asarray(x)
        if x.size != self._size:
            raise ValueError(
                f"the image to mask has {x.size} values, but the masker was built for shape "
                f"{self.input_shape} ({self._size} values)")
        in_shape = x.shape
        flat = x.reshape(-1)
        if (self._deferring and isinstance(mask, np.ndarray) and mask.ndim == 1
                and mask.dtype.kind in "iu"):  # shap's delta masking: all masks at once
            self._deferred, self._delta = flat, DeltaMasks(mask, flat.size)
            return (np.arange(self._delta.n_masks),), np.ones((self._delta.n_masks, 1), bool)
        if mask is None:
            keep = np.zeros(flat.size, dtype=bool)
        else:
            keep = np.asarray(mask, dtype=bool).reshape(-1)
            if keep.size != flat.size:  # shap's True/False shorthand for "all" / "none"
                keep = np.broadcast_to(keep, flat.shape)
        if self._deferring:
            self._deferred = flat
            return (keep.reshape(1, *in_shape).copy(),)
        if keep.all():
            out = flat.copy()
        else:
            out = self._fill(flat, keep, self._prepared(flat))
        return (out.reshape(1, *in_shape),)

    def save(self, out_file: Any) -> None:  # pragma: no cover - not used by xaibench
        raise NotImplementedError(f"{type(self).__name__} cannot be serialised with shap's "
                                  "save(); rebuild it from its spec string")

    def build_partition_tree(self) -> None:
        """Deferred to the first read of :attr:`clustering`: a masker grouped into superpixels
        (:class:`GroupedMasker`) never needs its pixel tree, which takes seconds to build for
        a 224x224x3 image (150,527 nodes)."""

    @property
    def clustering(self) -> np.ndarray:
        """shap's axis-aligned partition tree over the H·W·C features."""
        if self._clustering is None:
            shap.maskers.Image.build_partition_tree(self)
        return self._clustering

    @clustering.setter
    def clustering(self, value: np.ndarray) -> None:
        self._clustering = value

    def _fill_rows(self, keep_rows: np.ndarray, pool: ThreadPoolExecutor | None,
                   threads: int = 1) -> np.ndarray:
        """The deferred image with each row of ``keep_rows`` applied: (B, H, W, C). Rows are
        keep masks (B, ...) or the ids (B,) of the masks of the last delta-masking call;
        they are split into ``threads`` chunks for ``pool``."""
        flat = self._deferred
        if flat is None:
            raise XaibenchError("no deferred image: the masker was not called inside "
                                "batched_fill before the model; call it there first")
        keep_rows = np.asarray(keep_rows)
        if keep_rows.dtype.kind in "iu":
            if self._delta is None:
                raise XaibenchError("mask ids without a delta-masking call: the masker was "
                                    "not handed shap's delta masks before the model")
            keep = self._delta.rows(keep_rows)
        else:
            keep = keep_rows.astype(bool, copy=False).reshape(len(keep_rows), -1)
        prepared = self._prepared(flat)
        if self.vectorised_fill:
            out = self._fill(flat, keep, prepared)
        else:
            def fill(rows: np.ndarray) -> np.ndarray:
                return np.stack([flat.copy() if row.all() else self._fill(flat, row, prepared)
                                 for row in rows])
            if pool is None or len(keep) < 2:
                out = fill(keep)
            else:  # one contiguous chunk of rows per thread: few tasks, little overhead
                chunks = np.array_split(keep, min(len(keep), threads))
                out = np.concatenate(list(pool.map(fill, chunks)))
        return out.reshape(len(keep), *self.input_shape)

    # --- per-image cache -------------------------------------------------------------------
    def _prepared(self, flat: np.ndarray) -> Any:
        """Per-image state, recomputed only when the image changes (compared bit for bit,
        dtype included: a byte comparison is several times faster than ``np.array_equal``)."""
        key = flat.dtype.str.encode() + flat.tobytes()
        if key != self._cache_key:
            self._cache_value = self._prepare(flat.reshape(self.input_shape))
            self._cache_key = key
        return self._cache_value

    def _prepare(self, image: np.ndarray) -> Any:
        raise NotImplementedError

    def _fill(self, flat: np.ndarray, keep: np.ndarray, prepared: Any) -> np.ndarray:
        raise NotImplementedError


class BlurMasker(FloatImageMasker):
    """Hidden features take the value of a (kx, ky) box blur of the whole image."""

    def __init__(self, shape: tuple[int, int, int], kx: int = 8, ky: int = 8) -> None:
        self.kernel = (int(kx), int(ky))
        super().__init__(f"blur({self.kernel[0]},{self.kernel[1]})", shape)

    def _prepare(self, image: np.ndarray) -> np.ndarray:
        # cv2.blur keeps the dtype (float32 stays float32) and drops a trailing axis of size 1;
        # the border is reflected (BORDER_REFLECT_101), as in shap.
        return np.asarray(cv2.blur(image, self.kernel)).reshape(-1)

    vectorised_fill = True

    def _fill(self, flat: np.ndarray, keep: np.ndarray, blurred: np.ndarray) -> np.ndarray:
        return np.where(keep, flat, blurred.astype(flat.dtype, copy=False))

    def __repr__(self) -> str:
        return f"BlurMasker(shape={self.input_shape}, kx={self.kernel[0]}, ky={self.kernel[1]})"


class InpaintMasker(FloatImageMasker):
    """Hidden features are inpainted by OpenCV (Telea or Navier–Stokes) from the kept pixels.

    A pixel is inpainted when any of its channels is hidden; its kept channels are then put
    back exactly. When every pixel is hidden there is nothing to inpaint from and, as in shap,
    the hidden features take the image's per-channel mean.
    """

    threaded_fill = True

    def __init__(self, shape: tuple[int, int, int], method: str, radius: float = 3) -> None:
        if method not in _INPAINT_FLAGS:
            raise ValueError(f"unknown inpainting method {method!r}")
        self.method = method
        self.radius = float(radius)
        self._flag = _INPAINT_FLAGS[method]
        super().__init__(f"inpaint_{method}", shape)

    def _prepare(self, image: np.ndarray) -> tuple[np.ndarray, float, float, np.ndarray]:
        lo, hi = float(image.min()), float(image.max())
        scale = (hi - lo) / 255.0 if hi > lo else 1.0
        u8 = np.clip(np.rint((image.astype(np.float64) - lo) / scale), 0, 255).astype(np.uint8)
        mean = image.reshape(-1, image.shape[-1]).mean(axis=0, dtype=np.float64)
        return np.ascontiguousarray(u8), lo, scale, mean

    def _inpaint_u8(self, u8: np.ndarray, hole: np.ndarray) -> np.ndarray:
        """cv2.inpaint of the ``hole``'s bounding box widened by :meth:`_margin` (the pixels
        OpenCV reads lie within the inpainting radius of the hole: the result is the same as
        inpainting the whole image), for any channel count (it takes 1- or 3-channel images)."""
        rows, cols = np.flatnonzero(hole.any(axis=1)), np.flatnonzero(hole.any(axis=0))
        out = u8.copy()
        if len(rows) == 0:
            return out
        margin = self._margin
        box = (slice(max(rows[0] - margin, 0), rows[-1] + margin + 1),
               slice(max(cols[0] - margin, 0), cols[-1] + margin + 1))
        image, region = np.ascontiguousarray(u8[box]), np.ascontiguousarray(hole[box])
        channels = u8.shape[-1]
        if channels in (1, 3):
            filled = np.asarray(cv2.inpaint(image, region, self.radius, self._flag))
        else:
            filled = np.stack([cv2.inpaint(np.ascontiguousarray(image[..., c]), region,
                                           self.radius, self._flag)
                               for c in range(channels)], axis=-1)
        out[box] = filled.reshape(image.shape)
        return out

    @property
    def _margin(self) -> int:
        """Pixels around the hole's bounding box that the inpainting may read: OpenCV's
        neighbourhood is the radius rounded, plus the 1-pixel border it adds, plus 1 spare."""
        return math.ceil(self.radius) + 2

    def _fill(self, flat: np.ndarray, keep: np.ndarray,
              prepared: tuple[np.ndarray, float, float, np.ndarray]) -> np.ndarray:
        u8, lo, scale, mean = prepared
        hidden = ~keep.reshape(self.input_shape)
        hole = hidden.any(axis=-1)
        if hole.all():
            filled = np.broadcast_to(mean, self.input_shape)
        else:
            filled = self._inpaint_u8(u8, hole.astype(np.uint8)).astype(np.float64) * scale + lo
        out = flat.copy()
        hidden_flat = hidden.reshape(-1)
        out[hidden_flat] = filled.reshape(-1)[hidden_flat]
        return out

    def __repr__(self) -> str:
        return (f"InpaintMasker(shape={self.input_shape}, method={self.method!r}, "
                f"radius={self.radius:g})")


class ConstantMasker(FloatImageMasker):
    """Hidden features take a constant value (a fixed, image-independent background).

    With a constant background exact SHAP values of a linear model are known in closed form,
    which makes this masker the reference for testing the explainers.
    """

    def __init__(self, shape: tuple[int, int, int], value: float = 0.0) -> None:
        self.value = float(value)
        super().__init__(f"constant({self.value:g})", shape)

    def _prepare(self, image: np.ndarray) -> None:
        return None

    vectorised_fill = True

    def _fill(self, flat: np.ndarray, keep: np.ndarray, prepared: None) -> np.ndarray:
        return np.where(keep, flat, np.asarray(self.value, dtype=flat.dtype))

    def __repr__(self) -> str:
        return f"ConstantMasker(shape={self.input_shape}, value={self.value:g})"


#: ROAD's neighbour weights: (row offset, column offset) -> weight (they sum to 1 inside)
_NEIGHBOUR_WEIGHTS = {(-1, 0): 1 / 6, (1, 0): 1 / 6, (0, -1): 1 / 6, (0, 1): 1 / 6,
                      (-1, -1): 1 / 12, (-1, 1): 1 / 12, (1, -1): 1 / 12, (1, 1): 1 / 12}


class NoisyLinearMasker(FloatImageMasker):
    """ROAD's noisy linear imputation (Rong et al., ICML 2022).

    Every hidden pixel (any channel hidden) is the weighted mean of its 8 neighbours, direct
    ones weighing 1/6 and diagonal ones 1/12, the weights renormalised over the neighbours
    inside the image; hidden neighbours are unknowns too, so all hidden pixels come from one
    sparse linear system per image (one right-hand side per channel). Gaussian noise of
    standard deviation ``noise`` (from ``seed``, the same for every call) is added to the
    imputed values, which are then clipped to the image's own value range [min, max] (as the
    inpainting fills are: a model's declared input range must hold); kept channels are put
    back exactly. With every pixel hidden there is
    nothing to impute from and the hidden features take the image's per-channel mean.
    """

    def __init__(self, shape: tuple[int, int, int], noise: float = 0.01, seed: int = 0) -> None:
        self.noise, self.seed = float(noise), int(seed)
        super().__init__(f"noisy_linear({self.noise:g},{self.seed})", shape)

    def _prepare(self, image: np.ndarray) -> np.ndarray:
        return image.astype(np.float64)

    def _fill(self, flat: np.ndarray, keep: np.ndarray, image: np.ndarray) -> np.ndarray:
        hidden = ~keep.reshape(self.input_shape)
        hole = hidden.any(axis=-1)
        if hole.all():
            filled = np.broadcast_to(image.reshape(-1, image.shape[-1]).mean(axis=0),
                                     image.shape)
        else:
            filled = image.copy()
            imputed = impute_linear(image, hole)
            noise = np.random.default_rng(self.seed).normal(0.0, self.noise, imputed.shape)
            filled[hole] = np.clip(imputed + noise, image.min(), image.max())
        out = flat.copy()
        hidden_flat = hidden.reshape(-1)
        out[hidden_flat] = filled.reshape(-1)[hidden_flat].astype(flat.dtype)
        return out

    def __repr__(self) -> str:
        return (f"NoisyLinearMasker(shape={self.input_shape}, noise={self.noise:g}, "
                f"seed={self.seed})")


def impute_linear(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """Values (n_hole, C) of the ``hole`` pixels (H, W) of ``image`` (H, W, C) solving
    x_i = Σ_j w_ij x_j over each hole pixel's neighbours (:data:`_NEIGHBOUR_WEIGHTS`,
    renormalised inside the image); the hole must not cover the whole image."""
    from scipy import sparse
    from scipy.sparse.linalg import spsolve

    height, width, channels = image.shape
    index = np.full((height, width), -1)
    rows, cols = np.nonzero(hole)
    index[rows, cols] = np.arange(len(rows))
    weight_sum = np.zeros(len(rows))
    entries: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    rhs = np.zeros((len(rows), channels))
    for (dr, dc), weight in _NEIGHBOUR_WEIGHTS.items():
        r, c = rows + dr, cols + dc
        inside = (r >= 0) & (r < height) & (c >= 0) & (c < width)
        weight_sum += weight * inside
        at, r, c = np.nonzero(inside)[0], r[inside], c[inside]
        neighbour = index[r, c]
        unknown = neighbour >= 0
        entries.append((at[unknown], neighbour[unknown], np.full(unknown.sum(), -weight)))
        np.add.at(rhs, at[~unknown], weight * image[r[~unknown], c[~unknown]])
    diagonal = np.arange(len(rows))
    row_ids = np.concatenate([diagonal, *(e[0] for e in entries)])
    col_ids = np.concatenate([diagonal, *(e[1] for e in entries)])
    values = np.concatenate([weight_sum, *(e[2] for e in entries)])
    system = sparse.csc_matrix((values, (row_ids, col_ids)), shape=(len(rows), len(rows)))
    solved = spsolve(system, rhs)
    return np.asarray(solved).reshape(len(rows), channels)


class DeltaMasks:
    """shap's delta-encoded masks (the 1-D int arrays MaskedModel takes), decoded on demand.

    Masks start from all features hidden; mask i is mask i - 1 with some features flipped:
    an entry -f - 1 flips feature f and continues the same mask, an entry f >= 0 flips f and
    ends the mask (shap's no-op value ends it without a flip). :meth:`rows` builds only the
    requested masks, so the (n_masks, M) matrix is never held whole.
    """

    def __init__(self, deltas: np.ndarray, n_features: int) -> None:
        from shap.utils import MaskedModel

        deltas = np.asarray(deltas, dtype=np.int64)
        ends = deltas >= 0
        self.n_masks = int(ends.sum())
        self.n_features = n_features
        flips = deltas != MaskedModel.delta_mask_noop_value
        #: per flip, in mask order: the mask it belongs to and the feature it flips
        self._mask = (np.cumsum(ends) - ends)[flips]
        self._feature = np.where(deltas < 0, -deltas - 1, deltas)[flips]

    def rows(self, ids: np.ndarray) -> np.ndarray:
        """The keep masks (len(ids), M) bool of the masks ``ids``."""
        ids = np.asarray(ids, dtype=np.int64)
        if len(ids) == 0:
            return np.zeros((0, self.n_features), dtype=bool)
        lo, hi = int(ids.min()), int(ids.max()) + 1
        if lo < 0 or hi > self.n_masks:
            raise XaibenchError(f"mask ids {lo}..{hi - 1} outside the {self.n_masks} masks of "
                                f"the last delta-masking call")
        first, last = np.searchsorted(self._mask, [lo, hi])
        # features flipped an odd number of times before mask lo, then each mask's own flips
        flipped = np.zeros((hi - lo, self.n_features), dtype=np.uint8)
        flipped[0] = np.bincount(self._feature[:first], minlength=self.n_features) & 1
        np.add.at(flipped, (self._mask[first:last] - lo, self._feature[first:last]), 1)
        np.bitwise_and(flipped, 1, out=flipped)
        np.bitwise_xor.accumulate(flipped, axis=0, out=flipped)
        return flipped.view(bool)[ids - lo]


class GroupedMasker(shap.maskers.Masker):
    """A masker whose features are groups of pixels (superpixels), each with all its channels.

    ``labels`` (H, W) numbers the group of every pixel 0..G-1, row-major over a ``grid``
    (rows, columns) of groups (:func:`~xaibench.explain.maskers.patch_labels`); shap switches
    G features on and off (``shape == (1, G)``, masks of G booleans, and ``clustering`` is
    shap's axis-aligned partition tree over the grid), and hiding a group hides every
    pixel-channel of it through ``inner``, any image masker over the H·W·C pixel-channels.
    With groups of one pixel of a one-channel image it is ``inner`` itself, feature for
    feature and tree for tree.

    Inside :func:`batched_fill` the group masks are deferred as they are and the model
    function expands a whole batch of them to pixel masks at once (:meth:`pixel_masks`).
    """

    def __init__(self, inner: Any, labels: np.ndarray, grid: tuple[int, int]) -> None:
        self.inner = inner
        self.input_shape = tuple(int(s) for s in inner.input_shape)
        labels = np.asarray(labels, dtype=np.intp)
        if labels.shape != self.input_shape[:2]:
            raise XaibenchError(f"group labels of shape {labels.shape} do not fit images of "
                                f"shape {self.input_shape}; give one label per pixel (H, W)")
        self.n_groups = int(grid[0]) * int(grid[1])
        #: the group of every pixel-channel, in the flat (H, W, C) order of the image
        self.pixel_group = np.repeat(labels.reshape(-1), self.input_shape[2])
        self.group_size = np.bincount(self.pixel_group, minlength=self.n_groups)
        self.shape = (1, self.n_groups)
        self.clustering = shap.maskers.Image(np.zeros((*grid, 1), np.float32)).clustering
        self.image_data = True
        self.fixed_background = getattr(inner, "fixed_background", False)
        self.immutable_outputs = True

    def __call__(self, mask: Any, x: Any) -> tuple[np.ndarray]:
        if mask is None:
            keep = np.zeros(self.n_groups, dtype=bool)
        else:
            keep = np.broadcast_to(np.asarray(mask, dtype=bool).reshape(-1), (self.n_groups,))
        if getattr(self.inner, "_deferring", False):
            image = np.asarray(x).reshape(-1)
            if image.size != self.pixel_group.size:
                raise ValueError(f"the image to mask has {image.size} values, but the masker "
                                 f"was built for shape {self.input_shape}")
            self.inner._deferred = image
            return (keep.reshape(1, -1).copy(),)
        return self.inner(keep[self.pixel_group], x)

    def mask_shapes(self, *args: Any) -> list[tuple[int]]:
        """shap reshapes the values of one image to this: one per group."""
        return [(self.n_groups,)]

    def pixel_masks(self, group_masks: np.ndarray) -> np.ndarray:
        """(B, G) keep masks of groups -> (B, H, W, C) keep masks of pixel-channels."""
        rows = np.asarray(group_masks, dtype=bool).reshape(len(group_masks), self.n_groups)
        return rows[:, self.pixel_group].reshape(len(rows), *self.input_shape)

    def spread(self, values: np.ndarray) -> np.ndarray:
        """Values (G, ...) of the groups -> (H, W, C, ...): each group's value divided evenly
        over its pixel-channels, so that the sum over the image equals the sum over the
        groups (additivity) and every pixel carries its group's attribution density."""
        values = np.asarray(values).reshape(self.n_groups, -1)
        per_pixel = values[self.pixel_group] / self.group_size[self.pixel_group, None]
        return per_pixel.reshape(*self.input_shape, -1)

    def save(self, out_file: Any) -> None:  # pragma: no cover - not used by xaibench
        raise NotImplementedError("GroupedMasker cannot be serialised with shap's save(); "
                                  "rebuild it with the explainer's patch parameter")

    def __repr__(self) -> str:
        return f"GroupedMasker({self.inner!r}, groups={self.n_groups})"


def group_pixels(masker: Any, patch: int) -> GroupedMasker:
    """``masker`` (an image masker over H·W·C pixel-channels) over square ``patch`` x ``patch``
    superpixels instead (see :func:`~xaibench.explain.maskers.patch_grid` for the edge)."""
    from xaibench.explain.maskers import patch_grid, patch_labels

    shape = tuple(int(s) for s in masker.input_shape)
    return GroupedMasker(masker, patch_labels(shape, patch), patch_grid(shape, patch))


@contextlib.contextmanager
def batched_fill(masker: Any) -> Iterator[Callable[[np.ndarray], np.ndarray] | None]:
    """Defer ``masker``'s filling to the model function while the block runs.

    Yields the function that turns a batch of the masker's deferred outputs (keep masks) into
    masked images — the model function applies it before predicting — or None for maskers
    that are not a :class:`FloatImageMasker` (they fill immediately, as always). A
    :class:`GroupedMasker` defers its group masks when its inner masker defers.
    """
    if isinstance(masker, GroupedMasker):
        with batched_fill(masker.inner) as fill:
            yield None if fill is None else (lambda rows: fill(masker.pixel_masks(rows)))
        return
    if not isinstance(masker, FloatImageMasker):
        yield None
        return
    threads = os.cpu_count() or 1
    pool = ThreadPoolExecutor(threads) if masker.threaded_fill and threads > 1 else None
    masker._deferring = True
    try:
        yield lambda keep_rows: masker._fill_rows(keep_rows, pool, threads)
    finally:
        masker._deferring, masker._deferred, masker._delta = False, None, None
        if pool is not None:
            pool.shutdown()
