"""Image maskers for the model-agnostic explainers, and the masker spec parser.

A masker decides what a *hidden* pixel looks like while shap's Partition/Permutation explainers
switch features on and off. Maskers are named by spec strings::

    "inpaint_telea"          OpenCV Telea inpainting (optionally "inpaint_telea(radius)")
    "inpaint_ns"             OpenCV Navier–Stokes inpainting (optionally "inpaint_ns(radius)")
    "blur"                   box blur of the image with the default 8x8 kernel
    "blur(kx,ky)"            box blur with a kx (width) by ky (height) kernel, e.g. "blur(8,8)"
    "noisy_linear"           ROAD's noisy linear imputation (optionally "noisy_linear(noise, seed)")

Tabular rows (1, F, 1) take the tabular maskers, which draw hidden features from background
rows: the runner builds them over ``n_background`` training rows (:func:`masker_for`) and
hands the explainers the built masker; in code, ``make_masker(spec, shape, background)``::

    "independent"            each hidden feature from the background rows, independently
                             (shap.maskers.Independent; optionally "independent(max_samples)")
    "partition"              the same, with shap's correlation clustering of the features as
                             the partition tree (shap.maskers.Partition)

and image maskers are refused for them (and tabular maskers for images) by
:func:`check_masker_modality`, from the modalities the registry declares.

Arguments may also be given by keyword (``"blur(kx=4, ky=2)"``). The name is looked up in
:data:`xaibench.registry.maskers` (unknown names get its did-you-mean error) and the arguments
are bound to the registered factory, ``factory(image_shape, *args, **kwargs)``.

Every masker is a ``shap.maskers.Image`` subclass (one feature per pixel *and channel*, so an
(H, W, C) image has M = H·W·C features, with shap's axis-aligned partition tree for
PartitionExplainer) that works on float images in any value range: kept features come back
exactly as in the input. This fixes shap's inpainting maskers, which cast the image to uint8 and
so return an all-zero image for inputs in [0, 1] (see ``_image_maskers``).

The explainers' ``patch`` parameter groups the features into square superpixels
(:func:`check_patch`, :func:`patch_grid`, :func:`patch_labels`); the masker then fills every
pixel-channel of a hidden superpixel.

This module imports neither shap nor OpenCV; building a masker does (about 6 s the first time).
"""

from __future__ import annotations

import inspect
import math
import re
from typing import Any, Callable

import numpy as np

from xaibench.errors import ConfigError

#: default blur kernel (kx, ky) of the spec "blur" without arguments
DEFAULT_BLUR_KERNEL = (8, 8)
#: default inpainting radius (pixels), as in shap
DEFAULT_INPAINT_RADIUS = 3.0
#: default standard deviation of the noise added by noisy linear imputation, as in ROAD
DEFAULT_IMPUTATION_NOISE = 0.01

_SPEC = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\((.*)\))?\s*$", re.DOTALL)
_INT = re.compile(r"^[+-]?\d+$")
_FLOAT = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$")
_KEYWORD = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$", re.DOTALL)


# --- factories (registered in xaibench.registry.maskers) ----------------------------------------
def inpaint_telea(shape: tuple[int, int, int], radius: float = DEFAULT_INPAINT_RADIUS) -> Any:
    """Hidden pixels inpainted with OpenCV's Telea fast-marching method."""
    return _inpaint(shape, "telea", radius)


def inpaint_ns(shape: tuple[int, int, int], radius: float = DEFAULT_INPAINT_RADIUS) -> Any:
    """Hidden pixels inpainted with OpenCV's Navier–Stokes method."""
    return _inpaint(shape, "ns", radius)


def blur(shape: tuple[int, int, int], kx: int = DEFAULT_BLUR_KERNEL[0],
         ky: int = DEFAULT_BLUR_KERNEL[1]) -> Any:
    """Hidden pixels replaced by a ``kx`` (width) × ``ky`` (height) box blur of the image."""
    shape = _check_blur(shape, kx, ky)
    from xaibench.explain._image_maskers import BlurMasker
    return BlurMasker(shape, kx, ky)


def constant(shape: tuple[int, int, int], value: float = 0.0) -> Any:
    """Hidden pixels set to ``value`` — a fixed background, the reference for exact tests."""
    shape = _check_constant(shape, value)
    from xaibench.explain._image_maskers import ConstantMasker
    return ConstantMasker(shape, float(value))


def noisy_linear(shape: tuple[int, int, int], noise: float = DEFAULT_IMPUTATION_NOISE,
                 seed: int = 0) -> Any:
    """Hidden pixels imputed as the weighted mean of their 8 neighbours (ROAD, Rong et al.,
    ICML 2022: direct neighbours 1/6, diagonal ones 1/12), plus Gaussian noise of standard
    deviation ``noise`` drawn with ``seed``."""
    shape = _check_noisy_linear(shape, noise, seed)
    from xaibench.explain._image_maskers import NoisyLinearMasker
    return NoisyLinearMasker(shape, float(noise), int(seed))


def independent(shape: tuple[int, int, int], max_samples: int = 100, *,
                background: Any = None) -> Any:
    """Hidden features of a tabular row take their values from the ``background`` rows
    (at most ``max_samples`` of them), each feature independently: the expected model output
    over the background (``shap.maskers.Independent``)."""
    import shap

    return shap.maskers.Independent(_background_rows(shape, max_samples, background),
                                    max_samples=max_samples)


def partition(shape: tuple[int, int, int], max_samples: int = 100, *,
              background: Any = None) -> Any:
    """As :func:`independent`, with shap's hierarchical clustering of the features by their
    correlation over the background rows as the partition tree (``shap.maskers.Partition``)."""
    import shap

    return shap.maskers.Partition(_background_rows(shape, max_samples, background),
                                  max_samples=max_samples, clustering="correlation")


def _background_rows(shape: Any, max_samples: Any, background: Any) -> Any:
    """``background`` (B, 1, F, 1) as (B, F) float64 rows, checked against ``shape``."""
    import numpy as np

    _, n_features, _ = _check_tabular(shape, max_samples)
    if background is None:
        raise ConfigError("a tabular masker needs background rows: pass background=<rows "
                          "(B, 1, F, 1)> (an experiment supplies [dataset] n_background rows)")
    rows = np.asarray(background, dtype=np.float64)
    if rows.ndim != 4 or rows.shape[1:] != (1, n_features, 1) or len(rows) == 0:
        raise ConfigError(f"tabular masker background must be rows of shape (B, 1, "
                          f"{n_features}, 1) with B >= 1; got {rows.shape}")
    return rows.reshape(len(rows), n_features)


def _inpaint(shape: tuple[int, int, int], method: str, radius: float) -> Any:
    shape = _check_inpaint(shape, radius)
    from xaibench.explain._image_maskers import InpaintMasker
    return InpaintMasker(shape, method, float(radius))


# --- argument checks (no shap, no OpenCV): named like the factories' parameters ---------------
def _check_blur(shape: Any, kx: Any, ky: Any) -> tuple[int, int, int]:
    for name, value in (("kx", kx), ("ky", ky)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"blur kernel size {name} must be a positive integer, got "
                              f"{value!r}; e.g. 'blur(8,8)'")
    return check_image_shape(shape)


def _check_blur_fits(shape: Any, kx: Any, ky: Any) -> tuple[int, int, int]:
    """:func:`_check_blur`, and a kernel no larger than the image. The factory accepts larger
    kernels (OpenCV then averages mirrored copies of the image, not a neighbourhood); an
    experiment file may not ask for one."""
    height, width, _ = shape = _check_blur(shape, kx, ky)
    if kx > width or ky > height:
        raise ConfigError(f"blur kernel kx x ky = {kx}x{ky} is larger than the {width}x{height} "
                          f"(width x height) images; use kx <= {width} and ky <= {height}")
    return shape


def _check_constant(shape: Any, value: Any) -> tuple[int, int, int]:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"constant masker value must be a finite number, got {value!r}")
    return check_image_shape(shape)


def _check_inpaint(shape: Any, radius: Any) -> tuple[int, int, int]:
    if (isinstance(radius, bool) or not isinstance(radius, (int, float))
            or not math.isfinite(radius) or radius <= 0):
        raise ConfigError(f"inpainting radius must be a positive number, got {radius!r}; "
                          f"e.g. 'inpaint_telea({DEFAULT_INPAINT_RADIUS:g})'")
    return check_image_shape(shape)


def _check_noisy_linear(shape: Any, noise: Any, seed: Any) -> tuple[int, int, int]:
    if (isinstance(noise, bool) or not isinstance(noise, (int, float))
            or not math.isfinite(noise) or noise < 0):
        raise ConfigError(f"noisy_linear noise must be a number >= 0 (a standard deviation), "
                          f"got {noise!r}; e.g. 'noisy_linear({DEFAULT_IMPUTATION_NOISE:g})'")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"noisy_linear seed must be an integer >= 0, got {seed!r}")
    return check_image_shape(shape)


def _check_tabular(shape: Any, max_samples: Any, background: Any = None) -> tuple[int, int, int]:
    if isinstance(max_samples, bool) or not isinstance(max_samples, int) or max_samples < 1:
        raise ConfigError(f"tabular masker max_samples must be a positive integer, got "
                          f"{max_samples!r}")
    shape = check_image_shape(shape)
    if shape[0] != 1 or shape[2] != 1:
        raise ConfigError(f"tabular maskers take rows of shape (1, F, 1), got {shape}")
    return shape


#: the argument check of each factory, run by :func:`resolve_masker_spec` for an image shape
_ARGUMENT_CHECKS: dict[Callable[..., Any], Callable[..., tuple[int, int, int]]] = {
    blur: _check_blur_fits, constant: _check_constant, inpaint_telea: _check_inpaint,
    inpaint_ns: _check_inpaint, noisy_linear: _check_noisy_linear,
    independent: _check_tabular, partition: _check_tabular}


# --- spec parsing -----------------------------------------------------------------------------
def check_image_shape(shape: Any) -> tuple[int, int, int]:
    """``shape`` as an (H, W, C) tuple of positive ints, or ConfigError."""
    try:
        out = tuple(int(s) for s in shape)
    except (TypeError, ValueError):
        raise ConfigError(f"image shape must be (H, W, C), got {shape!r}") from None
    if len(out) != 3 or min(out) < 1:
        raise ConfigError(f"image shape must be (H, W, C) with positive sizes, got {shape!r}")
    return out  # type: ignore[return-value]


def _literal(text: str, spec: str) -> int | float:
    text = text.strip()
    if _INT.match(text):
        return int(text)
    if _FLOAT.match(text):
        return float(text)
    raise ConfigError(f"masker spec {spec!r}: argument {text!r} is not a number; masker "
                      "arguments are numbers, e.g. 'blur(8,8)'")


def parse_masker_spec(spec: str) -> tuple[str, tuple[int | float, ...], dict[str, int | float]]:
    """Split ``"name(a, b, key=c)"`` into ``("name", (a, b), {"key": c})``.

    Malformed specs raise ConfigError. Only the syntax is checked here: the name and the
    arguments are checked by :func:`resolve_masker_spec`.
    """
    if not isinstance(spec, str):
        raise ConfigError(f"a masker spec must be a string such as 'blur(8,8)', got {spec!r}")
    match = _SPEC.match(spec)
    if match is None:
        raise ConfigError(f"malformed masker spec {spec!r}: expected 'name' or 'name(arg, ...)', "
                          "e.g. 'inpaint_telea' or 'blur(8,8)'")
    name, inner = match.group(1), match.group(2)
    args: list[int | float] = []
    kwargs: dict[str, int | float] = {}
    if inner is not None and inner.strip():
        for part in inner.split(","):
            part = part.strip()
            if not part:
                raise ConfigError(f"malformed masker spec {spec!r}: empty argument")
            keyword = _KEYWORD.match(part)
            if keyword:
                key = keyword.group(1)
                if key in kwargs:
                    raise ConfigError(f"masker spec {spec!r}: argument {key!r} given twice")
                kwargs[key] = _literal(keyword.group(2), spec)
            elif kwargs:
                raise ConfigError(f"masker spec {spec!r}: positional argument after a keyword one")
            else:
                args.append(_literal(part, spec))
    return name, tuple(args), kwargs


def resolve_masker_spec(spec: str, image_shape: tuple[int, int, int] | None = None
                        ) -> tuple[str, Callable[..., Any], tuple, dict[str, Any]]:
    """(name, factory, args, kwargs) of ``spec``, checked without building anything: unknown
    names and arguments the factory does not take raise ConfigError; with ``image_shape``
    (H, W, C), so do argument values the built-in factories refuse (non-positive kernel
    sizes or radii, non-finite values) and blur kernels larger than the image."""
    from xaibench.registry import maskers

    name, args, kwargs = parse_masker_spec(spec)
    factory = maskers.get(name)
    supplied = sorted(set(kwargs) & maskers.entry(name).consumes)
    if supplied:
        raise ConfigError(f"masker spec {spec!r}: {', '.join(supplied)} is supplied by the "
                          f"runner ([dataset] n_background rows), not in the spec")
    signature = inspect.signature(factory)
    try:
        bound = signature.bind(image_shape, *args, **kwargs)
    except TypeError as exc:
        accepted = ", ".join(p.name if p.default is inspect.Parameter.empty
                             else f"{p.name}={p.default!r}"
                             for p in list(signature.parameters.values())[1:]
                             if p.name not in maskers.entry(name).consumes)
        raise ConfigError(f"masker spec {spec!r}: {exc} — {name} takes ({accepted})") from None
    check = _ARGUMENT_CHECKS.get(factory)
    if image_shape is not None and check is not None:
        bound.apply_defaults()
        try:
            check(**bound.arguments)
        except ConfigError as exc:
            raise ConfigError(f"masker spec {spec!r}: {exc}") from None
    return name, factory, args, kwargs


def make_masker(spec: str, image_shape: tuple[int, int, int], background: Any = None) -> Any:
    """Build the shap masker named by ``spec`` for images of ``image_shape`` (H, W, C).

    ``"blur(8,8)"`` -> ``registry.maskers.get("blur")(image_shape, 8, 8)``; a masker whose
    registry entry consumes a background (the tabular ones) gets ``background`` rows.
    """
    from xaibench.registry import maskers

    name, factory, args, kwargs = resolve_masker_spec(spec)
    if "background" in maskers.entry(name).consumes:
        kwargs = {**kwargs, "background": background}
    return factory(check_image_shape(image_shape), *args, **kwargs)


def masker_for(spec: str, background: Any) -> Any:
    """``spec`` as the explainers take it: the spec itself, or, for a masker whose registry
    entry consumes background rows (the tabular ones), the masker built over ``background``
    (B, H, W, C)."""
    from xaibench.registry import maskers

    if "background" not in maskers.entry(parse_masker_spec(spec)[0]).consumes:
        return spec
    return make_masker(spec, np.shape(background)[1:], background)


def check_masker_modality(spec: str, tabular: bool) -> None:
    """ConfigError unless the masker of ``spec`` applies to the data (tabular rows or
    images), naming the maskers that do."""
    from xaibench.registry import maskers, modality

    maskers.check_modality(parse_masker_spec(spec)[0], modality(tabular))


def n_features(image_shape: tuple[int, int, int], patch: int | None = None) -> int:
    """Number of features M the explainers switch on and off: one per pixel and channel,
    H·W·C, or with ``patch`` one per square superpixel (all its channels), ⌈H/p⌉·⌈W/p⌉."""
    h, w, c = check_image_shape(image_shape)
    if patch is None:
        return h * w * c
    rows, cols = patch_grid((h, w, c), patch)
    return rows * cols


# --- feature grouping -------------------------------------------------------------------------
def check_patch(patch: Any, image_shape: tuple[int, int, int]) -> int:
    """``patch`` (the side of the square superpixels) as an int in 1..min(H, W), or
    ConfigError."""
    h, w, _ = check_image_shape(image_shape)
    if isinstance(patch, bool) or not isinstance(patch, int) or not 1 <= patch <= min(h, w):
        raise ConfigError(f"patch must be an integer in 1..{min(h, w)} (the side of the square "
                          f"superpixels of the {h}x{w} images), got {patch!r}; e.g. patch = "
                          f"{max(1, min(8, min(h, w) // 2))}")
    return patch


def patch_grid(image_shape: tuple[int, int, int], patch: int) -> tuple[int, int]:
    """(rows, columns) of ``patch`` x ``patch`` superpixels covering an (H, W, C) image; where
    ``patch`` does not divide H (W), the last row (column) of superpixels is cut by the edge."""
    h, w, _ = check_image_shape(image_shape)
    patch = check_patch(patch, (h, w, 1))
    return -(-h // patch), -(-w // patch)


def patch_labels(image_shape: tuple[int, int, int], patch: int) -> np.ndarray:
    """(H, W) int array: the superpixel of each pixel, numbered row-major over
    :func:`patch_grid` (so a superpixel's number is its flat index in that grid)."""
    h, w, _ = check_image_shape(image_shape)
    _, cols = patch_grid(image_shape, patch)
    rows_of, cols_of = np.arange(h) // patch, np.arange(w) // patch
    return rows_of[:, None] * cols + cols_of[None, :]
