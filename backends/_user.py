"""Private helpers of the backends' ``from_user`` loaders: a user's own trained model.

Framework-free: importing ``"pkg.module:Name"`` from the config file's directory, the layout and
value-range adaptation in numbers, and the one-batch check every loader runs before a user model
is used. The backends wrap the user's model so that it takes the dataset's NHWC images in
[0, 1] *inside* the framework graph (gradients flow through the transpose and the scaling), and
hand the wrapped forward pass to :func:`check_first_batch`.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from xaibench.backend import ImageSpec
from xaibench.errors import ConfigError

#: the input layouts a user model may declare
LAYOUTS = ("NCHW", "NHWC")


def model_shape(spec: ImageSpec, layout: str) -> tuple[int, int, int]:
    """The per-image input shape a model with ``layout`` takes for the images of ``spec``."""
    if layout not in LAYOUTS:
        raise ConfigError(f"layout = {layout!r} is unknown; set layout = \"NCHW\" or \"NHWC\"")
    h, w, c = spec.shape
    return (c, h, w) if layout == "NCHW" else (h, w, c)


def affine(value_range: tuple[float, float]) -> tuple[float, float]:
    """(scale, offset) mapping the dataset's [0, 1] pixels linearly onto ``value_range``."""
    low, high = map(float, value_range)
    if not high > low:
        raise ConfigError(f"value_range = [{low:g}, {high:g}] is empty; give [low, high] with "
                          f"low < high, e.g. [0, 255]")
    return high - low, low


def import_object(target: str, base_dir: str | Path | None) -> Any:
    """The object ``"pkg.module:Name"``, imported with ``base_dir`` (the config file's
    directory) at the front of ``sys.path``, or ``"path/to/file.py:Name"`` (relative to
    ``base_dir``), imported with the file's directory there; a one-line ConfigError naming the
    fix otherwise."""
    module_name, _, attribute = target.rpartition(":")
    if not module_name or not attribute:
        raise ConfigError(f"model = {target!r} must read \"package.module:Name\" "
                          f"(e.g. \"models:Net\" for class Net in models.py)")
    if module_name.endswith(".py"):
        path = Path(base_dir or ".") / module_name
        base_dir, module_name = path.resolve().parent, path.stem
    if base_dir is not None and str(base_dir) not in sys.path:
        sys.path.insert(0, str(base_dir))
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ConfigError(f"model = {target!r}: cannot import module '{module_name}' ({exc}); "
                          f"put {module_name.replace('.', '/')}.py next to the experiment file "
                          f"({base_dir}) or install its package") from None
    try:
        obj = module
        for part in attribute.split("."):
            obj = getattr(obj, part)
    except AttributeError:
        public = sorted(name for name in vars(module) if not name.startswith("_"))
        raise ConfigError(f"model = {target!r}: module '{module_name}' has no '{attribute}' "
                          f"(it defines: {', '.join(public)}); fix the name after ':'") from None
    if not callable(obj):
        raise ConfigError(f"model = {target!r} is a {type(obj).__name__}, not a class or "
                          f"factory; name the class (or a function returning the model)")
    return obj


def build(target: str, params: Mapping[str, Any], base_dir: str | Path | None) -> Any:
    """``import_object(target)(**params)``; wrong params are a one-line ConfigError."""
    factory = import_object(target, base_dir)
    try:
        return factory(**params)
    except TypeError as exc:
        raise ConfigError(f"model = {target!r} with params {dict(params)}: {exc}; fix the "
                          f"[[models]] params") from None


def require_file(path: str | Path, what: str) -> Path:
    """``path`` as a Path; ConfigError when it is not a file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} = '{path}' is not a file; check the path (relative paths "
                          f"resolve against the experiment file's directory)")
    return path


def run_checked(call: Callable[[], Any], spec: ImageSpec, layout: str, label: str) -> Any:
    """``call()`` (which feeds the model a batch in ``layout``); any failure is a one-line
    ConfigError asking whether the other layout is meant."""
    shape = model_shape(spec, layout)
    other = "NHWC" if layout == "NCHW" else "NCHW"
    try:
        return call()
    except Exception as exc:  # noqa: BLE001 - any failure of the user's code is reported
        text = str(exc).strip()
        first = text.splitlines()[0] if text else "no message"
        raise ConfigError(
            f"{label} fails on a batch (N, {', '.join(map(str, shape))}) in layout {layout} "
            f"({type(exc).__name__}: {first}); expected input (N, "
            f"{', '.join(map(str, model_shape(spec, other)))}) — is layout {other}? Set "
            f"layout = \"{other}\" or fix the model") from None


def check_first_batch(forward: Callable[[np.ndarray], Any], spec: ImageSpec, layout: str,
                      label: str) -> None:
    """Run ``forward`` (the wrapped model: NHWC [0, 1] numpy -> scores) on one batch of two
    mid-grey images; a one-line ConfigError naming the problem and the fix unless it returns
    finite (2, n_classes) scores."""
    batch = np.full((2, *spec.shape), 0.5, np.float32)
    scores = np.asarray(run_checked(lambda: forward(batch), spec, layout, label))
    if scores.shape != (2, spec.n_classes):
        raise ConfigError(
            f"{label} returned {scores.shape} scores for a batch of 2 images and "
            f"{spec.n_classes} classes; it must return (N, {spec.n_classes}): use a dataset "
            f"with the model's classes or a model with {spec.n_classes} outputs")
    if not np.isfinite(scores).all():
        raise ConfigError(f"{label} returned NaN or infinite scores for mid-grey images; check "
                          f"its weights and value_range")
