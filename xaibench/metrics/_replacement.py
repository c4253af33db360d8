"""What a removed pixel becomes in the perturbation curves (a "filler").

A filler maps one image (H, W, C) and a stack of removal masks (S, H, W) (True = removed pixel,
all its channels) to the S perturbed images (S, H, W, C). Replacements:

``"zero"``             removed pixels set to 0 (vectorised, no masker)
``"mean"``             removed pixels set to the image's per-channel mean (vectorised)
a masker spec          ``"blur"``, ``"blur(kx,ky)"``, ``"inpaint_telea"``, ``"inpaint_ns"`` ...
                       built with :func:`xaibench.explain.maskers.make_masker`; maskers whose
                       fill does not depend on the mask (blur, constant) are called once per
                       image on the all-hidden mask and the steps vectorised, the others once
                       per step, shap-style (``masker(keep_flat, image)``)
a masker object        any shap-style image masker, called once per step
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from xaibench.errors import ConfigError

Filler = Callable[[np.ndarray, np.ndarray], np.ndarray]

#: replacements computed here without a masker object
CONSTANT_FILLS = ("zero", "mean")
#: the constant fills that apply to tabular rows: "zero" is each feature's training mean for
#: rows standardised by the training split (the tabular loaders); "mean", the mean over one
#: row's features, would mix unrelated quantities
TABULAR_FILLS = ("zero",)
#: maskers that give hidden pixels a per-image value independent of the mask
FIXED_FILL_MASKERS = frozenset({"blur", "constant"})


def check_replacement(replacement: Any, *, allow_masker: bool) -> None:
    """ConfigError unless ``replacement`` names a fill ("masker" only when ``allow_masker``)."""
    from xaibench.explain.maskers import parse_masker_spec
    from xaibench.registry import maskers

    if (replacement == "masker" and allow_masker) or replacement in CONSTANT_FILLS:
        return
    if isinstance(replacement, str) and replacement != "masker":
        maskers.entry(parse_masker_spec(replacement)[0])  # unknown names: did-you-mean error
        return
    allowed = "'masker', " * allow_masker + "'zero', 'mean' or a masker spec such as 'blur(8,8)'"
    raise ConfigError(f"replacement must be {allowed}; got {replacement!r}")


def ruler_names(tabular: bool) -> list[str]:
    """The fills and masker names that can be rulers for tabular rows or for images: the
    maskers of that modality that need no background rows (a ruler fills one image per
    step), and the applicable :data:`CONSTANT_FILLS`."""
    from xaibench.registry import maskers, modality

    fills = TABULAR_FILLS if tabular else CONSTANT_FILLS
    return [*(name for name in maskers.for_modality(modality(tabular))
              if "background" not in maskers.entry(name).consumes), *fills]


def default_rulers(shape: tuple[int, int, int], *, tabular: bool = False) -> tuple[str, ...]:
    """The rulers of an experiment whose ``[evaluation]`` lists none, for images of ``shape``
    (H, W, C): a box blur whose kernel is to the image what 8×8 is to 28×28 (at least 1), Telea
    inpainting, and the per-channel image mean; for tabular rows "zero" (the training mean of
    standardised features, :data:`TABULAR_FILLS`)."""
    from xaibench.explain.maskers import DEFAULT_BLUR_KERNEL

    if tabular:
        return TABULAR_FILLS

    height, width, _ = shape
    kernel = max(1, round(DEFAULT_BLUR_KERNEL[0] * min(height, width) / 28))
    return f"blur({kernel},{kernel})", "inpaint_telea", "mean"


def make_filler(replacement: str, masker: Any, fallback: str,
                shape: tuple[int, int, int]) -> Filler:
    """The filler for ``replacement``; ``"masker"`` means ``masker`` (a spec or object), or
    ``fallback`` when the cell has none (explainers that use no masker)."""
    if replacement == "masker":
        replacement = fallback if masker is None else masker
    if isinstance(replacement, str):
        check_replacement(replacement, allow_masker=False)
        if replacement == "zero":
            return _fixed_filler(lambda image: np.zeros(image.shape[-1], image.dtype))
        if replacement == "mean":
            return _fixed_filler(lambda image: image.mean(axis=(0, 1), dtype=np.float64))
        from xaibench.explain.maskers import make_masker, parse_masker_spec

        masker = make_masker(replacement, shape)
        if parse_masker_spec(replacement)[0] in FIXED_FILL_MASKERS:
            return _fixed_filler(lambda image: _masked(masker, np.zeros(image.size, bool), image))
        replacement = masker
    if not callable(replacement):
        raise ConfigError(f"a masker must be a spec string or a shap-style masker object; "
                          f"got {replacement!r}")
    return _masker_filler(replacement)


def _masked(masker: Callable[..., Any], keep: np.ndarray, image: np.ndarray) -> np.ndarray:
    """One shap-style masker call: ``image`` with the features not in ``keep`` hidden."""
    masked = masker(keep, image)
    return np.asarray(masked[0] if isinstance(masked, tuple) else masked).reshape(image.shape)


def _fixed_filler(fill_value: Callable[[np.ndarray], np.ndarray]) -> Filler:
    """Removed pixels take ``fill_value(image)`` (per channel or per pixel), all steps at once."""
    def fill(image: np.ndarray, removed: np.ndarray) -> np.ndarray:
        value = np.asarray(fill_value(image), dtype=image.dtype)
        return np.where(removed[..., None], value, image[None])
    return fill


def _masker_filler(masker: Callable[..., Any]) -> Filler:
    """One masker call per step (fills that depend on the mask, e.g. inpainting)."""
    def fill(image: np.ndarray, removed: np.ndarray) -> np.ndarray:
        keep = np.broadcast_to(~removed[..., None], (len(removed), *image.shape))
        return np.stack([_masked(masker, step.reshape(-1), image) for step in keep])
    return fill
