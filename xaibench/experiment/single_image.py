"""Explain one user image file (``xaibench explain IMAGE``) with a model of a finished run or
with a checkpoint file.

From a run (:func:`explain_image`): the run's stored resolved configuration is read back, its
explainers replaced by the one asked for, and validated like an experiment file (registry names
with did-you-mean, masker specs, params and their minimums). The model is the run's: a zoo model
from its cached checkpoint (never trained here), a user's model from its files, a copy from its
source's checkpoint. Native explainers get the run's background images (same seed, same draw).

From a checkpoint (:func:`explain_checkpoint`): a zoo architecture (its params) or a user's
model, the checkpoint's backend, and the images' shape and class names are given, or read from
the JSON sidecar xaibench writes next to a cached checkpoint (``<key>.ckpt`` + ``<key>.json``,
used only when its SHA-256 matches the file). Shape and class names come from a dataset (named,
or the sidecar's) or from an explicit class list and input shape. Explainers that compare with
background images (deep, gradient) get, in this order: the images of a ``background`` folder,
a one-image black background when ``background="blank"``, ``n_background`` training images of
the dataset (drawn as a run draws them, seed 0), or -- with neither -- a black image and a
warning: the zero reference of DeepLIFT and integrated gradients, the only choice that needs no
data, but attributions then explain the difference to black, not to typical images.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from xaibench import registry
from xaibench.backend import Attribution, Backend, ImageSpec
from xaibench.errors import ConfigError, DataError, XaibenchError
from xaibench.metrics.faithfulness import class_probabilities as probabilities


@dataclass(frozen=True)
class ImageExplanation:
    """One image, the model's class probabilities and the explanation of its top-k classes."""

    image: np.ndarray  # (H, W, C) in [0, 1], as the model saw it
    probabilities: np.ndarray  # (n_classes,)
    class_names: tuple[str, ...]
    attribution: Attribution
    model_label: str
    #: what the explainer compared the image with ("" for explainers without a background)
    background: str = ""
    #: why the background may not suit (a default chosen without data), None when it does
    background_warning: str | None = None

    def top_k(self) -> list[tuple[str, float]]:
        """(class name, probability) of the explained classes, best first."""
        return [(self.class_names[i], float(self.probabilities[i]))
                for i in self.attribution.output_indices[0]]


def read_image(path: str | Path, spec: ImageSpec) -> np.ndarray:
    """The image file ``path`` (PNG or JPEG, any size and mode) as a batch of one, resized and
    converted to the spec's shape and channels, values in [0, 1]; DataError if unreadable."""
    from PIL import UnidentifiedImageError

    from xaibench.data.image_folder import _read_image

    height, width, channels = spec.shape
    if channels not in (1, 3):
        raise ConfigError(f"the model takes {channels}-channel images; only grey (1) and RGB "
                          f"(3) models can explain an image file")
    try:
        image, _ = _read_image(Path(path), height, width, grayscale=channels == 1)
    except (OSError, ValueError, UnidentifiedImageError) as exc:
        raise DataError(f"cannot read image {path}: {exc}; give a PNG or JPEG file") from None
    return image[None]


def explain_image(image_path: str | Path, results_dir: str | Path, *, model: str | None = None,
                  explainer: str = "deep", masker: str | None = None,
                  params: dict[str, Any] | None = None, top_k: int = 3) -> ImageExplanation:
    """Explain the ``top_k`` classes of the image file with ``model`` (a model key or its
    prefix, "backend:architecture", or the architecture (a user model's name) when only one
    model has it; may be omitted when the run has one model)
    of the run in ``results_dir``, by ``explainer`` (with ``masker`` where it takes one)."""
    from xaibench.experiment.checkpoints import copy_model, obtain_model
    from xaibench.experiment.config import config_from_dict
    from xaibench.experiment.plan import data_fingerprint, make_plan
    from xaibench.experiment.runner import explain_params, load_dataset, select_background
    from xaibench.experiment.store import Store, require_store

    results_dir = Path(results_dir)
    require_store(results_dir)
    store = Store(results_dir)
    resolved = store.get_meta("resolved_config")
    if resolved is None:
        raise DataError(f"{results_dir} records no configuration (a run older than this "
                        f"command); run the experiment again with this version")
    explainers = [{"name": explainer, "targets": top_k, "params": params or {},
                   **({"maskers": [masker]} if masker else {})}]
    data, base_dir = _file_shaped(resolved)
    config = config_from_dict({**data, "name": store.get_meta("name", "explain"),
                               "explainers": explainers, "metrics": [], "metric_params": {}},
                              origin=f"the run in {results_dir}", base_dir=base_dir)
    dataset = load_dataset(config)
    plan = make_plan(config, data_fingerprint(dataset, config.dataset.n_train))
    chosen = _choose(plan.models, model, results_dir)
    x = read_image(image_path, dataset.spec)

    if chosen.user is None:
        source = plan.model(chosen.weights_from) if chosen.weights_from else chosen
        stored = dict(store.frame("models")[["model_key", "checkpoint"]].values).get(source.key)
        if not stored or not Path(stored).is_file():
            where = f"its checkpoint {stored} is gone" if stored else "it holds no such model"
            raise DataError(f"{results_dir} cannot give {source.label}: {where}; run the "
                            f"experiment again to train it")
        obtained = obtain_model(source, dataset, cache_dir=Path(stored).parents[1],
                                progress=False)
        if chosen.weights_from:
            obtained = copy_model(chosen, obtained, dataset)
    else:
        obtained = obtain_model(chosen, dataset, progress=False)
    backend: Backend = obtained.backend
    (cell,) = [c for c in plan.cells if c.model.key == chosen.key]
    background = select_background(config, dataset)
    attribution = backend.explain(cell.explainer, x, cell.targets,
                                  **explain_params(cell, background))
    uses = "background" in registry.explainers.entry(explainer).consumes
    return ImageExplanation(
        x[0], probabilities(backend.predict(x)[0]), backend.spec.class_names, attribution,
        chosen.label, f"{len(background)} training images of {config.dataset.name} (the run's)"
        if uses else "")


def explain_checkpoint(image_path: str | Path, checkpoint: str | Path, *,
                       backend: str | None = None, model: str | None = None,
                       arch_params: dict[str, Any] | None = None, dataset: str | None = None,
                       class_names: Sequence[str] | None = None,
                       input_shape: tuple[int, int, int] | None = None,
                       background: str | Path | None = None, n_background: int = 50,
                       explainer: str = "deep", masker: str | None = None,
                       params: dict[str, Any] | None = None, top_k: int = 3,
                       base_dir: str | Path = ".") -> ImageExplanation:
    """Explain the ``top_k`` classes of the image file with the weights in ``checkpoint``.

    ``model`` is a zoo architecture (built with ``arch_params``), or a user's model
    ``"pkg.module:Name"`` / ``"file.py:Name"`` (built with ``arch_params``, imported from
    ``base_dir``), or None for a file holding its own architecture (TorchScript, .keras); the
    ``backend`` is the checkpoint's framework. Unset, ``backend``, ``model``, ``arch_params``
    and ``dataset`` are read from the checkpoint's xaibench sidecar. The images' shape and class
    names come from ``dataset`` (loaded, and the default background source) or from
    ``class_names`` and ``input_shape``; the background as in the module docstring.
    """
    from xaibench.data.base import DatasetInfo
    from xaibench.experiment.config import single_model
    from xaibench.experiment.runner import explainer_args

    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise DataError(f"checkpoint {checkpoint} is not a file; give the path of a saved "
                        f"model (a cached <key>.ckpt, a torch state_dict, a .keras file ...)")
    sidecar = _sidecar_model(checkpoint)
    backend = backend or sidecar.get("backend")
    model = model or sidecar.get("architecture")
    if arch_params is None:
        arch_params = sidecar.get("params", {}) if model == sidecar.get("architecture") else {}
    if backend is None:
        raise ConfigError(f"{checkpoint} has no xaibench sidecar ({checkpoint.stem}.json) to "
                          f"read its framework from; give --backend (torch, keras or flax) and "
                          f"--model (a zoo architecture, or module:Class of your own model)")
    if dataset is None and (class_names is None or input_shape is None):
        dataset = sidecar.get("dataset")
    loaded = None
    if dataset is not None:
        dataset_params = sidecar.get("dataset_params", {}) if dataset == sidecar.get("dataset") \
            else {}
        loaded = registry.datasets.get(dataset)(**dataset_params)
        spec = _with_classes(loaded.spec, class_names, input_shape, f"dataset '{dataset}'")
    elif class_names is None or input_shape is None:
        raise ConfigError("the model's classes and input shape are unknown: give --dataset "
                          "NAME (the data it was trained on), or --classes a,b,... and "
                          "--input-shape HxWxC")
    else:
        spec = ImageSpec(tuple(input_shape), tuple(class_names))
    source = dataset or "the --classes list"

    if model is not None and ":" not in model:
        table: dict[str, Any] = {"backend": backend, "architecture": model,
                                 "params": arch_params}
    else:  # a user model: its class "module:Name" (or none: the file holds it)
        table = {"backend": backend, "weights": str(checkpoint.resolve()),
                 "name": model or checkpoint.name, "params": arch_params,
                 **({"model": model} if model is not None else {})}
    explainer_table = {"name": explainer, "targets": top_k, "params": params or {},
                       **({"maskers": [masker]} if masker else {})}
    chosen, explained = single_model(table, explainer_table, dataset=source,
                                     info=DatasetInfo(spec.shape, spec.n_classes),
                                     base_dir=base_dir)
    built = _checkpoint_backend(chosen, checkpoint, spec)
    label = f"{backend}:{chosen.architecture}" + (
        f" ({checkpoint.name})" if chosen.architecture != checkpoint.name else "")

    consumes = registry.explainers.entry(explainer).consumes
    images, described, warning = None, "", None
    if "background" in consumes:
        images, described, warning = _background(background, dataset, loaded,
                                                 spec, n_background)
    explain_args = explainer_args(explainer, explained.params,
                                  explained.maskers[0] if explained.maskers else None, images)
    if "seed" in consumes:
        explain_args.setdefault("seed", 0)
    x = read_image(image_path, spec)
    attribution = built.explain(explainer, x, explained.targets, **explain_args)
    return ImageExplanation(x[0], probabilities(built.predict(x)[0]), spec.class_names,
                            attribution, label, described, warning)


def _sidecar_model(checkpoint: Path) -> dict[str, Any]:
    """The model fields of the xaibench sidecar next to ``checkpoint`` (``<stem>.json``), or
    {} when there is none or it describes another file (its SHA-256 differs)."""
    import json

    from xaibench._files import sha256_file

    path = checkpoint.with_suffix(".json")
    try:
        sidecar = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if (not isinstance(sidecar, dict) or not isinstance(sidecar.get("model"), dict)
            or sidecar.get("sha256") != sha256_file(checkpoint)):
        return {}
    return sidecar["model"]


def _with_classes(spec: ImageSpec, class_names: Sequence[str] | None,
                  input_shape: tuple[int, int, int] | None, source: str) -> ImageSpec:
    """``spec`` with ``class_names`` (as many as it has classes); ConfigError when
    ``input_shape`` contradicts it."""
    if input_shape is not None and tuple(input_shape) != spec.shape:
        raise ConfigError(f"--input-shape {'x'.join(map(str, input_shape))} differs from the "
                          f"{'x'.join(map(str, spec.shape))} images of {source}; drop one")
    if class_names is None:
        return spec
    if len(class_names) != spec.n_classes:
        raise ConfigError(f"--classes lists {len(class_names)} names but {source} has "
                          f"{spec.n_classes} classes; give one name per class, in label order")
    return replace(spec, class_names=tuple(class_names))


def _checkpoint_backend(model: Any, checkpoint: Path, spec: ImageSpec) -> Backend:
    """The validated ``model`` (a ModelConfig) with the weights of ``checkpoint``; a one-line
    ConfigError when the file holds another architecture or framework."""
    framework = _framework_of(checkpoint)
    if framework not in (None, model.backend):
        raise ConfigError(f"{checkpoint} looks like a {framework} file, not a {model.backend} "
                          f"checkpoint; give --backend {framework} (and its --model)")
    backend_class = registry.backends.get(model.backend)
    if model.user is not None:
        user = model.user
        return backend_class.from_user(spec, weights=user.weights, model=user.model,
                                       params=model.params, layout=user.layout,
                                       value_range=user.value_range, base_dir=user.base_dir)
    built = backend_class.from_zoo(model.architecture, spec, **model.params)
    try:
        built.load(checkpoint)
    except XaibenchError as exc:
        first = str(exc).splitlines()[0].split(". ")[0]
        raise ConfigError(f"{first[:300]}{'...' if len(first) > 300 else ''} -- {checkpoint} is "
                          f"not a {model.backend} checkpoint of {model.architecture} with params "
                          f"{model.params}; give the --backend, --model and --arch-param it was "
                          f"saved with") from None
    return built


def _framework_of(path: Path) -> str | None:
    """The framework whose file ``path`` evidently is (Keras: HDF5 or a .keras archive; torch:
    a zip holding data.pkl; flax: .msgpack), None when it does not tell."""
    import zipfile

    with open(path, "rb") as file:
        if file.read(8) == b"\x89HDF\r\n\x1a\n" or path.suffix == ".keras":
            return "keras"
    if path.suffix == ".msgpack":
        return "flax"
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            if any(name.endswith("data.pkl") for name in archive.namelist()):
                return "torch"
    return None


def _background(source: str | Path | None, dataset_name: str | None, dataset: Any,
                spec: ImageSpec, n_background: int) -> tuple[np.ndarray, str, str | None]:
    """(background images, what they are, a warning or None): see the module docstring."""
    from xaibench.data.image_folder import EXTENSIONS
    from xaibench.experiment.runner import draw_background

    if not isinstance(n_background, int) or n_background < 1:
        raise ConfigError(f"--n-background must be a positive integer, got {n_background!r}")
    blank = np.full((1, *spec.shape), spec.value_range[0], dtype=np.float32)
    if source is not None and str(source) == "blank":
        return blank, "one black image (--background blank)", None
    if source is not None:
        folder = Path(source)
        files = sorted(f for f in folder.iterdir() if f.suffix.lower() in EXTENSIONS) \
            if folder.is_dir() else []
        if not files:
            raise ConfigError(f"--background {source}: not a folder holding PNG or JPEG "
                              f"images; give such a folder (images like the training data) "
                              f"or 'blank' for a black image")
        chosen = draw_background(np.asarray(files, dtype=object), n_background, 0)
        images = np.concatenate([read_image(f, spec) for f in chosen])
        return images, f"{len(images)} images of the folder {folder}", None
    if dataset is not None:
        images = draw_background(dataset.x_train, n_background, 0)
        return images, f"{len(images)} training images of {dataset_name}", None
    return (blank, "one black image (default)",
            "no --background and no dataset: explained against one black image (the zero "
            "reference of DeepLIFT); give --background DIR with images like the training data "
            "(the tutorial uses 200) or --dataset NAME")


def _file_shaped(resolved: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """A stored resolved configuration as an experiment file's dict (None values dropped,
    user models flattened), and the directory its user models' paths resolve against."""
    def present(table: dict[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in table.items() if value is not None}

    models, base_dir = [], None
    for model in resolved["models"]:
        user = model.get("user")
        if user is None:
            models.append(present({k: v for k, v in model.items() if k != "user"}))
            continue
        base_dir = user["base_dir"]
        models.append(present({"backend": model["backend"], "name": model["architecture"],
                               "params": model["params"],
                               **{k: v for k, v in user.items() if k != "base_dir"}}))
    data = {key: value for key, value in resolved.items()
            if key not in ("data", "models", "explainers")}
    return {**data, "dataset": present(resolved["dataset"]), "models": models}, base_dir


def _choose(models: tuple, wanted: str | None, results_dir: Path) -> Any:
    """The run's model named ``wanted`` (see :func:`explain_image`); ConfigError naming the
    run's models otherwise."""
    from xaibench.registry import did_you_mean

    names = [f"{m.label} (key {m.key[:12]})" for m in models]
    if wanted is None:
        if len(models) == 1:
            return models[0]
        raise ConfigError(f"{results_dir} holds {len(models)} models; choose one with --model: "
                          + ", ".join(names))
    found = [m for m in models
             if wanted in (m.label, m.architecture) or m.key.startswith(wanted)]
    if len(found) != 1:
        problem = "no model" if not found else f"{len(found)} models"
        raise ConfigError(f"{results_dir} holds {problem} named '{wanted}'"
                          f"{did_you_mean(wanted, [m.label for m in models])}; its models: "
                          + ", ".join(names))
    return found[0]

