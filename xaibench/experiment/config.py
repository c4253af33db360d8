"""Experiment files: TOML parsed into frozen dataclasses, validated before anything runs.

Schema (keys marked *required* must be present; every other key shows its default)::

    name = "quickstart"                   # required: names the run
    seed = 0                              # run seed: model init, training, background choice;
                                          # every cell's own seed derives from its key
    output = "results/<name>"             # results directory, relative to the working
                                          # directory (``xaibench run --output`` overrides)
    metrics = ["additivity"]              # metric registry names
    [metric_params]                       # constructor arguments of listed metrics, e.g.
    max_sensitivity = { radius = 0.05 }   # (a metric taking ``seed`` gets the cell's seed
                                          # unless set here)

    [evaluation]                          # how faithfulness metrics remove pixels
    rulers = ["blur(8,8)", "inpaint_telea", "mean"]   # every cell is scored under every ruler
                                          # by the metrics consuming one (deletion_auc,
                                          # insertion_auc, abpc); a masker spec, "mean" or
                                          # "zero" (default: blur scaled to the image, Telea
                                          # inpainting and the image mean; tabular rows:
                                          # "zero", each standardised feature's training mean)

    [dataset]                             # required
    name = "fashion_mnist"                # required: dataset registry name
    params = {}                           # keyword arguments of the dataset's loader
    n_train = 10000                       # train on the first n_train training images
                                          # (all when absent)
    n_background = 50                     # background images, drawn (seeded) from those, for
                                          # explainers that take ``background`` (deep, gradient)

    [images]                              # which test images are explained (per model)
    first = 8                             # the first N test images
    correct = 0                           # plus the next N the model predicts correctly
    wrong = 0                             # plus the next N it predicts wrongly

    [[models]]                            # one or more
    backend = "torch"                     # required: backend registry name
    architecture = "fmnist_cnn"           # required: zoo name, implemented for the backend
    params = {}                           # keyword arguments of the architecture's builder
    train = { epochs = 1, batch_size = 128, lr = 1e-3 }   # keyword arguments of the backend's
                                          # fit (seed excepted), e.g. keras: augment, patience

    [[models]]                            # a user's own trained model: loaded, never trained
    backend = "torch"                     # required
    model = "models:Net"                  # "module:Name" of the class or factory, called with
                                          # params (torch, flax; a .keras file needs none);
                                          # imported with the experiment file's directory on
                                          # sys.path; or "path/to/models.py:Net"
    weights = "net.pt"                    # required: torch state_dict (or, without model, a
                                          # TorchScript archive), .keras file, flax msgpack
    name = "net"                          # its name in reports (default: weights' file stem)
    layout = "NCHW"                       # input layout (default: NCHW for torch, NHWC for
                                          # keras and flax)
    value_range = [0, 1]                  # the pixel range the model takes: the dataset's
                                          # [0, 1] images are mapped onto it linearly
    class_names = ["t-shirt", ...]        # or class_names_file = "classes.txt" (one a line);
                                          # as many as the dataset's classes (default: the
                                          # dataset's names)
                                          # relative paths (weights, class_names_file, the
                                          # import directory) resolve against the experiment
                                          # file's directory; for a dict config against the
                                          # working directory

    [[models]]                            # a copy: no training, no params of its own
    backend = "keras"
    architecture = "fmnist_cnn"
    weights_from = "torch"                # the trained model of that backend and architecture
                                          # in this file; its weights and params are copied

    [[explainers]]                        # one or more
    name = "partition"                    # required: explainer registry name
    maskers = ["inpaint_telea", "blur(8,8)"]   # one cell per masker; only for explainers that
                                          # take a masker (default: the explainer's default)
    targets = 1                           # explain the top-k outputs of each image
    params = { max_evals = 300 }          # keyword arguments of the explainer
    budget = [100, 300, 1000]             # a sweep of the explainer's evaluation budget (its
                                          # registry entry's ``budget`` param, max_evals for
                                          # partition and permutation): one cell per value
    seeds = [0, 1, 2]                     # one cell per seed, for explainers taking a seed
                                          # (their spread is reported)

What is checked, and how, without importing a deep-learning framework:

- the file: missing, a directory, not UTF-8, empty or not TOML are one-line errors (a dict of
  the same shape, :func:`config_from_dict`, is checked like the parsed file from here on);
- every table's keys (an unknown key names the allowed ones) and every value's type;
- registry names (unknown names get the registry's did-you-mean message);
- dataset, explainer and metric params are bound against the loader's / explainer's /
  metric class's signature (the explainer's leading ``backend, x, output_indices`` are
  fixed) and checked against its type annotations; what the runner supplies is declared in
  the explainer's registry entry (``consumes``, :data:`xaibench.registry.EXPLAINER_INPUTS`):
  ``masker`` and ``background`` may not appear in ``params``, and an explainer consuming
  ``seed`` gets one derived from its cell key unless ``params`` sets it;
- the dataset is described by the ``describe(**params)`` next to its loader
  (:class:`xaibench.data.base.DatasetInfo`: image shape, classes, masks, split sizes) without
  reading an image: both splits must be non-empty and a classification dataset hold at
  least 2 classes; tabular datasets take only the explainers, maskers and rulers whose
  registry entries apply to tabular rows (``modalities``), and images only those for images;
  ``targets``
  may not exceed the classes; metrics consuming ``masks`` need a dataset that has them;
- explainer params are at least the :class:`xaibench.registry.Minimum` their registry entry
  declares (e.g. permutation's ``max_evals >= 2*M+1``, M = H*W*C of the dataset's images),
  each value of a ``budget`` sweep included; ``budget`` needs an explainer whose entry declares
  a budget param and ``seeds`` one that consumes a seed, and neither may be set in ``params``
  too;
- metric objects are constructed from their params (they check the values themselves);
- rulers are replacements of :mod:`xaibench.metrics._replacement`, masker specs checked like
  the explainers' for the image shape, listed once each; a metric scored per ruler (``ruler``
  in its ``consumes``) may not set ``replacement`` in ``[metric_params]``;
- masker specs are parsed by :func:`xaibench.explain.maskers.parse_masker_spec` and their
  arguments bound against the registered masker factory and checked for the dataset's image
  shape (:func:`xaibench.explain.maskers.resolve_masker_spec`);
- metrics that randomise the model (``randomises_model``) need every model's backend to have
  weight tensors (registry entry ``weight_tensors``);
- an explainer's ``backends`` (optional) restricts it to the models of those backends, each
  used by some model; an explainer computed natively by the backends (registry entry
  ``native``) must be listed in the ``native_explainers`` of the backend of every model it
  explains (the error names the backends that list it);
- the architecture must list the backend in its framework-free catalogue entry
  (:class:`backends.zoo.architectures.Architecture`), and model ``params`` must be params that
  entry declares, of the declared types;
- ``train`` keys must be epochs, batch_size, lr or an option the backend's registry entry
  declares (``train_options``, with their types); ``seed`` is the run seed; a backend whose
  entry declares ``epoch_training = False`` (a one-pass fit) refuses epochs, batch_size, lr;
- a user model (``model`` or ``weights`` set): its files exist, ``layout`` and
  ``value_range`` are valid, its class names match the dataset's number of classes, and it
  has no ``train``, ``architecture`` or ``weights_from``; the model itself is loaded and checked
  on one batch when the run obtains it (importing it would import its framework);
- ``weights_from`` must name another backend with exactly one trained model (no
  ``weights_from`` of its own: no chains, no cycles) of the same architecture in the file.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import json
import tomllib
import types
import typing
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping

from xaibench import registry
from xaibench.data.base import DatasetInfo
from xaibench.errors import ConfigError, XaibenchError

#: explainer inputs the runner supplies (from ``maskers`` and ``dataset.n_background``) that
#: ``params`` may not set
RUNNER_SUPPLIED = ("masker", "background")
#: training parameters every backend's ``fit`` takes (besides ``seed`` and ``progress``) and
#: their defaults
TRAIN_DEFAULTS: dict[str, Any] = {"epochs": 1, "batch_size": 128, "lr": 1e-3}

_TOP_KEYS = ("name", "seed", "output", "metrics", "metric_params", "evaluation", "dataset",
             "images", "models", "explainers")
_EVALUATION_KEYS = ("rulers",)
_DATASET_KEYS = ("name", "params", "n_train", "n_background")
_IMAGES_KEYS = ("first", "correct", "wrong")
_MODEL_KEYS = ("backend", "architecture", "params", "train", "weights_from")
_USER_MODEL_KEYS = ("backend", "model", "weights", "name", "params", "layout", "value_range",
                    "class_names", "class_names_file")
_EXPLAINER_KEYS = ("name", "maskers", "targets", "params", "budget", "seeds", "backends")
_REQUIRED = object()
_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", dict: "a table",
               list: "a list", tuple: "a list", bool: "true or false"}


@dataclass(frozen=True)
class DatasetConfig:
    """The dataset, its loader parameters and the training / background subsets."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)
    n_train: int | None = None
    n_background: int = 50


@dataclass(frozen=True)
class ImagesConfig:
    """Which test images are explained: the first N, plus N correct and N wrong predictions."""

    first: int = 8
    correct: int = 0
    wrong: int = 0


@dataclass(frozen=True)
class UserModelConfig:
    """How to load a user's trained model (paths absolute) and what input it takes."""

    #: the file read by the backend's ``from_user`` (state_dict, TorchScript, .keras, msgpack)
    weights: str
    #: "module:Name" of its class or factory (None: the weights file holds the architecture)
    model: str | None = None
    #: the directory put on ``sys.path`` to import ``model`` (the experiment file's)
    base_dir: str = "."
    #: "NCHW" or "NHWC" (None: the backend's default)
    layout: str | None = None
    value_range: tuple[float, float] = (0.0, 1.0)
    #: names of the model's outputs (None: the dataset's class names)
    class_names: tuple[str, ...] | None = None


@dataclass(frozen=True)
class ModelConfig:
    """A zoo architecture in one backend, and how to train it (or whose weights to copy)."""

    backend: str
    architecture: str
    train: dict[str, Any] = field(default_factory=lambda: dict(TRAIN_DEFAULTS))
    #: keyword arguments of the architecture's builder
    params: dict[str, Any] = field(default_factory=dict)
    #: the backend of the trained model whose weights (and params) this untrained copy takes
    weights_from: str | None = None
    #: a user's own model (``architecture`` is then its name; ``params`` its factory's)
    user: UserModelConfig | None = None


@dataclass(frozen=True)
class ExplainerConfig:
    """An explainer, the maskers it runs with (empty for explainers without one), its params."""

    name: str
    maskers: tuple[str, ...] = ()
    targets: int = 1
    params: dict[str, Any] = field(default_factory=dict)
    #: values of the explainer's budget param (registry entry ``budget``), one cell each
    budgets: tuple[int, ...] = ()
    #: seeds, one cell each
    seeds: tuple[int, ...] = ()
    #: the backends whose models it explains (empty: every model)
    backends: tuple[str, ...] = ()

    def applies_to(self, backend: str) -> bool:
        """Whether it explains the models of ``backend``."""
        return not self.backends or backend in self.backends

    def variants(self) -> list[dict[str, Any]]:
        """The params of each of its cells: ``params`` with every budget × seed set."""
        budget = registry.explainers.entry(self.name).budget
        return [{**self.params, **({budget: b} if b is not None else {}),
                 **({"seed": seed} if seed is not None else {})}
                for b in self.budgets or (None,) for seed in self.seeds or (None,)]


@dataclass(frozen=True)
class EvaluationConfig:
    """The rulers: the replacements every cell is scored under by the metrics consuming one
    (empty: each metric's own ``replacement``, as outside an experiment)."""

    rulers: tuple[str, ...] = ()


@dataclass(frozen=True)
class ExperimentConfig:
    """A validated experiment file (treat the ``params`` dicts as read-only)."""

    name: str
    dataset: DatasetConfig
    models: tuple[ModelConfig, ...]
    explainers: tuple[ExplainerConfig, ...]
    #: the results directory (relative paths: to the working directory)
    output: str
    seed: int = 0
    metrics: tuple[str, ...] = ("additivity",)
    #: constructor arguments by metric name (only for metrics that have some)
    metric_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    images: ImagesConfig = ImagesConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    #: the TOML text it was parsed from, or the JSON text of its dict (recorded with the results)
    source: str = field(default="", compare=False, repr=False)


def load_config(path: str | Path) -> ExperimentConfig:
    """Read and validate an experiment file; errors are ConfigError prefixed with the path.
    Relative paths in it resolve against its directory."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"experiment file {path} does not exist; check the path") from None
    except IsADirectoryError:
        raise ConfigError(f"{path} is a directory; pass an experiment file "
                          f"(e.g. {path / 'experiment.toml'})") from None
    except OSError as exc:
        raise ConfigError(f"cannot read experiment file {path}: {exc.strerror}; "
                          f"make it readable") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset "
                          f"{exc.start}); save it as UTF-8 TOML") from None
    return parse_config(text, origin=str(path), base_dir=path.resolve().parent)


def parse_config(text: str, *, origin: str = "<config>",
                 base_dir: str | Path | None = None) -> ExperimentConfig:
    """Validate the TOML ``text`` of an experiment file (``origin`` prefixes error messages;
    relative paths resolve against ``base_dir``, default the working directory)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{origin}: invalid TOML: {exc}; fix the syntax there "
                          f"(an experiment file is TOML: key = value, [table], [[array]])") \
            from None
    return _validated(data, text, origin, "the file", base_dir)


def config_from_dict(data: Mapping[str, Any], *, origin: str = "experiment dict",
                     base_dir: str | Path | None = None) -> ExperimentConfig:
    """Validate a dict shaped like an experiment file (tables as dicts, arrays of tables as
    lists of dicts) exactly as :func:`parse_config` validates the file; ``source`` is its JSON
    text; relative paths resolve against ``base_dir`` (default: the working directory). Tuples count as lists; a value no TOML file can hold (None excepted, it fails the
    type checks) is a ConfigError."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{origin} must be a dict shaped like an experiment file, got "
                          f"{type(data).__name__}")
    try:
        source = json.dumps(data, indent=2, default=_not_toml)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{origin}: {exc}; use str keys and str, int, float, bool, list or "
                          f"dict values, as a TOML file holds (e.g. int(n) for a numpy "
                          f"integer)") from None
    return _validated(json.loads(source), source, origin, "the dict", base_dir)


def single_model(model: dict[str, Any], explainer: dict[str, Any], *, dataset: str,
                 info: DatasetInfo, base_dir: str | Path) -> tuple[ModelConfig, ExplainerConfig]:
    """A ``[[models]]`` table (zoo or user model) and an ``[[explainers]]`` table validated as
    in an experiment file, for images described by ``info`` (``dataset`` names their source in
    messages; relative paths resolve against ``base_dir``): one image explained outside a run."""
    where = f"the model ({model.get('backend')})"
    checked = (_user_model(model, where, Path(base_dir).resolve(), info)
               if "model" in model or "weights" in model else _model(model, where))
    explained = _explainer(explainer, "the explainer", dataset, info)
    _check_native((checked,), (explained,))
    return checked, explained


def _not_toml(value: Any) -> Any:
    """``json.dumps``'s fallback: refuse what a TOML file cannot hold."""
    raise TypeError(f"{value!r} is not a TOML value")


def _validated(data: dict[str, Any], source: str, origin: str, holder: str,
               base_dir: str | Path | None = None) -> ExperimentConfig:
    """The :class:`ExperimentConfig` of ``data`` parsed from ``source``; errors are ConfigError
    prefixed with ``origin``."""
    if not data:
        raise ConfigError(f"{origin}: {holder} holds no settings; an experiment needs name, "
                          f"[dataset], [[models]] and [[explainers]] "
                          f"(see experiments/quickstart.toml)")
    try:
        return _experiment(data, source, Path(base_dir or ".").resolve())
    except ConfigError as exc:
        raise ConfigError(f"{origin}: {exc}") from None


def dataset_info(name: str, params: dict[str, Any]) -> DatasetInfo:
    """What dataset ``name`` with loader ``params`` will hold, from the ``describe`` function
    next to its registered loader: no image is read. Errors are ConfigError."""
    loader = registry.datasets.get(name)
    describe = importlib.import_module(loader.__module__).describe
    try:
        return describe(**params)
    except XaibenchError as exc:
        raise ConfigError(str(exc)) from None


# --- tables -----------------------------------------------------------------------------------
def _experiment(data: dict[str, Any], text: str, base_dir: Path) -> ExperimentConfig:
    _check_keys(data, _TOP_KEYS, "the top level")
    name = _value(data, "name", "the top level", str)
    if not name.strip():
        raise ConfigError("'name' must not be empty")
    metrics = tuple(_value(data, "metrics", "the top level", list, ["additivity"]))
    for metric in metrics:
        _lookup(registry.metrics, _string(metric, "an entry of 'metrics'"), "'metrics'")
    if len(set(metrics)) != len(metrics):
        raise ConfigError(f"'metrics' lists a metric twice: {list(metrics)}")
    metric_params = _value(data, "metric_params", "the top level", dict, {})
    for metric, params in metric_params.items():
        if metric not in metrics:
            raise ConfigError(f"[metric_params] sets '{metric}', which 'metrics' does not list "
                              f"(metrics: {', '.join(metrics)})")
        _metric(metric, _value(metric_params, metric, "[metric_params]", dict))
    dataset, info = _dataset(_value(data, "dataset", "the top level", dict))
    evaluation = _evaluation(_value(data, "evaluation", "the top level", dict, {}), info)
    images = _images(_value(data, "images", "the top level", dict, {}))
    if info.is_tabular:
        _check_tabular_replacements(metrics, metric_params)
    if info.task == "regression":
        _check_single_output(metrics, metric_params, dataset.name)
        if images.correct or images.wrong:
            raise ConfigError(f"[images]: dataset '{dataset.name}' is a regression, whose "
                              f"predictions are not right or wrong; explain the first rows "
                              f"(first = N) and remove correct / wrong")
    if not info.has_masks:
        needing = [m for m in metrics if "masks" in registry.metrics.get(m).consumes]
        if needing:
            raise ConfigError(f"'metrics': {', '.join(needing)} need(s) ground-truth masks, which "
                              f"dataset '{dataset.name}' does not have; remove them or use a "
                              f"dataset with masks")
    models = _with_weight_sources(_array_of_tables(
        data, "models", lambda table, where: _user_model(table, where, base_dir, info)
        if "model" in table or "weights" in table else _model(table, where)))
    explainers = _array_of_tables(
        data, "explainers", lambda table, where: _explainer(table, where, dataset.name, info))
    _check_native(models, explainers)
    _check_weight_tensors(models, metrics)
    return ExperimentConfig(
        name=name,
        seed=_count(data, "seed", "the top level", 0),
        output=_value(data, "output", "the top level", str, f"results/{name}"),
        metrics=metrics,
        metric_params=metric_params,
        dataset=dataset,
        images=images,
        evaluation=evaluation,
        models=models,
        explainers=explainers,
        source=text,
    )


def _check_tabular_replacements(metrics: tuple[str, ...],
                                metric_params: dict[str, Any]) -> None:
    """ConfigError for a metric (not scored per ruler) whose replacement of removed features
    does not apply to tabular rows: the cell's masker ("masker", a tabular masker draws from
    background rows and fills no single row) or an image fill."""
    from xaibench.metrics._replacement import ruler_names

    allowed = ruler_names(tabular=True)
    for name in metrics:
        metric_class = registry.metrics.get(name)
        if "ruler" in metric_class.consumes:
            continue
        metric = metric_class(**metric_params.get(name, {}))
        replacement = getattr(metric, "replacement", None)
        if replacement is not None and str(replacement).partition("(")[0] not in allowed:
            raise ConfigError(f"[metric_params] {name}: replacement {replacement!r} does not "
                              f"apply to tabular rows; set {name} = {{ replacement = \"zero\" "
                              f"}} (one of {', '.join(allowed)})")


def _check_single_output(metrics: tuple[str, ...], metric_params: dict[str, Any],
                         dataset: str) -> None:
    """ConfigError for a metric that would score class probabilities (or normalise by the
    spread over outputs) on a regression dataset, whose models have one output."""
    for name in metrics:
        metric = registry.metrics.get(name)(**metric_params.get(name, {}))
        if getattr(metric, "space", None) == "probability" or (
                getattr(metric, "space", None) == "score" and getattr(metric, "normalise", False)):
            raise ConfigError(
                f"[metric_params] {name}: dataset '{dataset}' is a regression (one output), "
                f"which has no class probabilities nor spread over outputs; set {name} = "
                f"{{ space = \"score\", normalise = false }} (raw scores)")


def _metric(name: str, params: dict[str, Any]) -> None:
    """Bind ``params`` to metric ``name`` and construct it (metrics check their values)."""
    where = f"[metric_params] {name}"
    metric_class = registry.metrics.get(name)
    _bind(inspect.signature(metric_class), 0, params, where)
    _check_types(metric_class.__init__, params, where)
    try:
        metric_class(**params)
    except XaibenchError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    if "ruler" in metric_class.consumes and "replacement" in params:
        raise ConfigError(f"{where}: 'replacement' is set by the rulers of [evaluation], under "
                          f"each of which every cell is scored; list {params['replacement']!r} "
                          f"in [evaluation] rulers instead")


def _evaluation(table: dict[str, Any], info: DatasetInfo) -> EvaluationConfig:
    """The rulers of ``[evaluation]`` in canonical form (default: :func:`default_rulers`),
    each one that applies to the dataset's images or tabular rows (:func:`ruler_names`)."""
    from xaibench.explain.maskers import parse_masker_spec
    from xaibench.metrics._replacement import CONSTANT_FILLS, default_rulers, ruler_names

    image_shape = info.shape
    _check_keys(table, _EVALUATION_KEYS, "[evaluation]")
    rulers = _value(table, "rulers", "[evaluation]", list, None)
    if rulers is None:
        return EvaluationConfig(default_rulers(image_shape, tabular=info.is_tabular))
    if not rulers:
        raise ConfigError("[evaluation] 'rulers' is empty; list at least one, e.g. "
                          "rulers = [\"blur(8,8)\", \"inpaint_telea\", \"mean\"]")
    known = [*registry.maskers, *CONSTANT_FILLS]
    allowed = ruler_names(info.is_tabular)
    canonical = []
    for ruler in rulers:
        ruler = _string(ruler, "an entry of [evaluation] rulers")
        if ruler == "masker":
            raise ConfigError("[evaluation] rulers: 'masker' (each cell's own masker) would score "
                              "rows with different rulers; list masker specs such as "
                              "'inpaint_telea', or 'mean' / 'zero'")
        name = parse_masker_spec(ruler)[0]
        if name not in known:
            raise ConfigError(f"[evaluation] rulers: unknown ruler {name!r}"
                              f"{registry.did_you_mean(name, known)}; a ruler is one of "
                              f"{', '.join(known)} (maskers with arguments, e.g. 'blur(8,8)')")
        if name not in allowed:
            data = "tabular rows" if info.is_tabular else "images"
            raise ConfigError(f"[evaluation] rulers: {name!r} does not apply to {data}; use "
                              f"one of {', '.join(allowed)}")
        canonical.append(ruler if ruler in CONSTANT_FILLS
                         else _masker_spec(ruler, "[evaluation] rulers", image_shape))
    if len(set(canonical)) != len(canonical):
        raise ConfigError(f"[evaluation] rulers lists a ruler twice: {canonical}")
    return EvaluationConfig(tuple(canonical))


def _dataset(table: dict[str, Any]) -> tuple[DatasetConfig, DatasetInfo]:
    where = "[dataset]"
    _check_keys(table, _DATASET_KEYS, where)
    name = _value(table, "name", where, str)
    _lookup(registry.datasets, name, where)
    params = _value(table, "params", where, dict, {})
    loader = registry.datasets.get(name)
    _bind(inspect.signature(loader), 0, params, f"{where} params of dataset '{name}'")
    _check_types(loader, params, f"{where} params of dataset '{name}'")
    try:
        info = dataset_info(name, params)
    except ConfigError as exc:
        raise ConfigError(f"{where} params: {exc}") from None
    settings = ", ".join(f"{key} = {value!r}" for key, value in params.items()) or "defaults"
    for split, size in (("train", info.n_train), ("test", info.n_test)):
        if size == 0:
            raise ConfigError(f"{where}: dataset '{name}' has no {split} image with params "
                              f"{settings}; give the {split} split at least one "
                              f"(n_{split} >= 1)")
    if info.task == "classification" and info.n_classes < 2:
        raise ConfigError(f"{where}: dataset '{name}' has {info.n_classes} class with params "
                          f"{settings}; a classifier needs at least 2 classes")
    n_train = _count(table, "n_train", where, None, minimum=1)
    config = DatasetConfig(name=name, params=params, n_train=n_train,
                           n_background=_count(table, "n_background", where, 50, minimum=1))
    return config, info


def _images(table: dict[str, Any]) -> ImagesConfig:
    where = "[images]"
    _check_keys(table, _IMAGES_KEYS, where)
    images = ImagesConfig(**{key: _count(table, key, where, getattr(ImagesConfig, key))
                             for key in _IMAGES_KEYS})
    if images.first + images.correct + images.wrong == 0:
        raise ConfigError(f"{where} selects no image: set first, correct or wrong above 0")
    return images


def _model(table: dict[str, Any], where: str) -> ModelConfig:
    _check_keys(table, _MODEL_KEYS, where)
    backend = _value(table, "backend", where, str)
    _lookup(registry.backends, backend, where)
    architecture_name = _value(table, "architecture", where, str)
    _lookup(registry.models, architecture_name, where)
    architecture = registry.models.get(architecture_name)
    if backend not in architecture.frameworks:
        raise ConfigError(f"{where}: architecture '{architecture_name}' is not implemented for "
                          f"backend '{backend}' (it is for: {', '.join(architecture.frameworks)})")
    weights_from = _value(table, "weights_from", where, str, None)
    if weights_from is not None:
        _lookup(registry.backends, weights_from, f"{where} weights_from")
        for key in ("params", "train"):
            if key in table:
                raise ConfigError(f"{where}: a model with 'weights_from' is not trained and "
                                  f"takes its params from its source; remove '{key}'")
        return ModelConfig(backend=backend, architecture=architecture_name, train={},
                           weights_from=weights_from)
    params = _value(table, "params", where, dict, {})
    _bind_architecture(backend, architecture_name, params, where)
    train = _value(table, "train", where, dict, {})
    entry = registry.backends.entry(backend)
    options = entry.train_options
    if not entry.epoch_training:
        given = [key for key in TRAIN_DEFAULTS if key in train]
        if given:
            raise ConfigError(f"{where} train: backend '{backend}' fits in one pass, so "
                              f"{', '.join(given)} do not apply; remove them (size the model "
                              f"with its params)")
        _check_keys(train, tuple(options), f"{where} train")
        _check_hints(options, train, f"{where} train of backend '{backend}'")
        return ModelConfig(backend=backend, architecture=architecture_name, train=dict(train),
                           params=params)
    _check_keys(train, (*TRAIN_DEFAULTS, *options), f"{where} train")
    _check_hints(options, train, f"{where} train of backend '{backend}'")
    train = {**TRAIN_DEFAULTS, **train}
    for key, minimum in (("epochs", 0), ("batch_size", 1)):
        _count(train, key, f"{where} train", minimum=minimum)
    lr = _value(train, "lr", f"{where} train", (int, float))
    if not lr > 0:
        raise ConfigError(f"{where} train: 'lr' must be > 0, got {lr!r}")
    return ModelConfig(backend=backend, architecture=architecture_name, train=train,
                       params=params)


def _user_model(table: dict[str, Any], where: str, base_dir: Path,
                info: DatasetInfo) -> ModelConfig:
    """A user's trained model (``model`` / ``weights`` set): files and declarations checked;
    the model itself is checked when the run loads it."""
    for key, why in (("train", "it is loaded from its weights, never trained by the runner"),
                     ("architecture", "it is the user's model, not a zoo architecture"),
                     ("weights_from", "it has weights of its own")):
        if key in table:
            raise ConfigError(f"{where}: '{key}' does not apply to a user model ({why}); "
                              f"remove '{key}' (or model/weights for a zoo model)")
    _check_keys(table, _USER_MODEL_KEYS, where)
    backend = _value(table, "backend", where, str)
    _lookup(registry.backends, backend, where)
    weights = _user_file(_value(table, "weights", where, str), "weights", where, base_dir)
    name = _value(table, "name", where, str, Path(weights).stem)
    if name in registry.models:
        raise ConfigError(f"{where}: name = '{name}' is a zoo architecture's; give the user "
                          f"model another name (name = \"my_{name}\")")
    where = f"{where} ({backend}:{name})"
    model = _value(table, "model", where, str, None)
    if model is not None:
        module, _, attribute = model.rpartition(":")
        if not module or not attribute:
            raise ConfigError(f"{where}: model = {model!r} must read \"package.module:Name\" "
                              f"or \"path/to/file.py:Name\" (e.g. \"models:Net\" for class "
                              f"Net in models.py)")
        if module.endswith(".py"):
            model = f"{_user_file(module, 'model', where, base_dir)}:{attribute}"
    layout = _value(table, "layout", where, str, None)
    if layout not in (None, "NCHW", "NHWC"):
        raise ConfigError(f"{where}: layout = {layout!r} is unknown; set layout = \"NCHW\" "
                          f"(channels first) or \"NHWC\" (channels last)")
    value_range = _value(table, "value_range", where, list, [0, 1])
    if (len(value_range) != 2 or not all(_conforms(v, float) for v in value_range)
            or not value_range[0] < value_range[1]):
        raise ConfigError(f"{where}: value_range = {value_range!r} must be [low, high] with "
                          f"low < high, e.g. [0, 255] for a model taking 8-bit pixel values")
    class_names = _user_class_names(table, where, base_dir, info)
    user = UserModelConfig(weights=weights, model=model, base_dir=str(base_dir), layout=layout,
                           value_range=(float(value_range[0]), float(value_range[1])),
                           class_names=class_names)
    return ModelConfig(backend=backend, architecture=name, train={},
                       params=_value(table, "params", where, dict, {}), user=user)


def _user_file(path: str, key: str, where: str, base_dir: Path) -> str:
    """``path`` resolved against ``base_dir``, absolute; ConfigError unless it is a file."""
    resolved = (base_dir / Path(path).expanduser()).resolve()
    if not resolved.is_file():
        raise ConfigError(f"{where}: {key} = '{path}' is not a file (looked for {resolved}); "
                          f"fix the path (relative paths resolve against {base_dir})")
    return str(resolved)


def _user_class_names(table: dict[str, Any], where: str, base_dir: Path,
                      info: DatasetInfo) -> tuple[str, ...] | None:
    """The user model's class names (``class_names`` or ``class_names_file``), as many as
    the dataset has classes; None when neither is given."""
    if "class_names" in table and "class_names_file" in table:
        raise ConfigError(f"{where}: set class_names or class_names_file, not both")
    if "class_names_file" in table:
        path = _user_file(_value(table, "class_names_file", where, str), "class_names_file",
                          where, base_dir)
        names = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines()
                 if line.strip()]
        source = f"class_names_file '{Path(path).name}'"
    elif "class_names" in table:
        names = [_string(n, f"{where}: an entry of class_names")
                 for n in _value(table, "class_names", where, list)]
        source = "class_names"
    else:
        return None
    if len(names) != info.n_classes:
        raise ConfigError(f"{where}: {source} lists {len(names)} classes but the dataset has "
                          f"{info.n_classes}; give one name per dataset class, in label order")
    return tuple(names)


def _bind_architecture(backend: str, architecture: str, params: dict[str, Any],
                       where: str) -> None:
    """Check ``params`` against those the catalogue entry of ``architecture`` declares."""
    declared = registry.models.get(architecture).params
    where = f"{where} params of architecture '{architecture}' ({backend})"
    _bind(inspect.Signature([inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY,
                                               default=param.default)
                             for name, param in declared.items()]), 0, params, where)
    _check_hints({name: param.type for name, param in declared.items()}, params, where)


def _with_weight_sources(models: tuple[ModelConfig, ...]) -> tuple[ModelConfig, ...]:
    """``models`` with every copy's params taken from its source, after checking that the
    source is the one trained model of its backend with the copy's architecture."""
    resolved = []
    for number, model in enumerate(models, 1):
        if model.weights_from is None:
            resolved.append(model)
            continue
        where = f"[[models]] #{number} ({model.backend}:{model.architecture})"
        if model.weights_from == model.backend:
            raise ConfigError(f"{where}: weights_from = '{model.weights_from}' is its own "
                              f"backend; copy from a model of another backend")
        sources = [(n, m) for n, m in enumerate(models, 1)
                   if m.backend == model.weights_from and m.architecture == model.architecture]
        trained = [(n, m) for n, m in sources if m.weights_from is None]
        if not sources:
            raise ConfigError(f"{where}: weights_from = '{model.weights_from}', but no "
                              f"[[models]] entry is {model.weights_from}:{model.architecture}")
        if not trained:
            raise ConfigError(f"{where}: weights_from = '{model.weights_from}' names "
                              f"[[models]] #{sources[0][0]}, which copies its weights itself; "
                              f"copy from a trained model")
        if len(trained) > 1:
            raise ConfigError(f"{where}: weights_from = '{model.weights_from}' is ambiguous: "
                              f"[[models]] {' and '.join(f'#{n}' for n, _ in trained)} are "
                              f"both trained {model.weights_from}:{model.architecture}")
        params = trained[0][1].params
        _bind_architecture(model.backend, model.architecture, params, where)
        resolved.append(replace(model, params=params))
    return tuple(resolved)


def _explainer(table: dict[str, Any], where: str, dataset: str,
               info: DatasetInfo) -> ExplainerConfig:
    _check_keys(table, _EXPLAINER_KEYS, where)
    name = _value(table, "name", where, str)
    _lookup(registry.explainers, name, where)
    where = f"{where} ({name})"
    entry = registry.explainers.entry(name)
    try:
        registry.explainers.check_modality(name, registry.modality(info.is_tabular))
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    params = _value(table, "params", where, dict, {})
    for key in RUNNER_SUPPLIED:
        if key in params:
            source = "'maskers'" if key == "masker" else "[dataset] n_background"
            raise ConfigError(f"{where}: '{key}' is set by the runner from {source}, "
                              f"not in params")
    if "patch" in params:
        _check_patch(name, params["patch"], where, info)
    supplied = [key for key in RUNNER_SUPPLIED if key in entry.consumes]
    explain = registry.explainers.get(name)
    _bind(inspect.signature(explain), 3, params, f"{where} params", supplied)
    _check_types(explain, params, f"{where} params")
    _check_minimums(name, params, f"{where} params", dataset, info)
    budgets = _sweep(table, "budget", where, params, entry.budget, minimum=1,
                     lacking=f"explainer '{name}' has no evaluation budget; a budget sweep "
                             f"applies to: {', '.join(_budget_explainers())}")
    for value in budgets:
        _check_minimums(name, {**params, entry.budget: value}, f"{where} budget", dataset, info)
    seeds = _sweep(table, "seeds", where, params, "seed" if "seed" in entry.consumes else None,
                   minimum=0, lacking=f"explainer '{name}' takes no seed (it is deterministic); "
                                      f"remove 'seeds'")
    maskers = _value(table, "maskers", where, list, None)
    if "masker" not in entry.consumes:
        if maskers is not None:
            raise ConfigError(f"{where}: explainer '{name}' takes no masker (it explains "
                              f"against background images); maskers apply to model-agnostic "
                              f"explainers: {', '.join(_masker_explainers())}")
        maskers = []
    elif maskers is None:
        if entry.default_masker is None:
            raise ConfigError(f"{where}: explainer '{name}' has no default masker; "
                              f"set 'maskers'")
        maskers = [entry.default_masker]
    for spec in maskers:
        _check_masker_fits(spec, entry, where, info)
    specs = tuple(_masker_spec(spec, where, info.shape) for spec in maskers)
    if "masker" in entry.consumes and not specs:
        raise ConfigError(f"{where}: 'maskers' is empty; list at least one masker spec")
    if len(set(specs)) != len(specs):
        raise ConfigError(f"{where}: 'maskers' lists a masker twice: {list(specs)}")
    targets = _count(table, "targets", where, 1, minimum=1)
    if targets > info.n_classes:
        raise ConfigError(f"{where}: targets = {targets} asks for the top {targets} outputs, but "
                          f"dataset '{dataset}' has {info.n_classes} classes; set targets <= "
                          f"{info.n_classes}")
    backends = [_string(backend, f"an entry of {where} 'backends'")
                for backend in _value(table, "backends", where, list, [])]
    for backend in backends:
        _lookup(registry.backends, backend, f"{where} backends")
    if len(set(backends)) != len(backends):
        raise ConfigError(f"{where}: 'backends' lists a backend twice: {backends}")
    return ExplainerConfig(name=name, maskers=specs, targets=targets, params=params,
                           budgets=budgets, seeds=seeds, backends=tuple(backends))


def _sweep(table: dict[str, Any], key: str, where: str, params: dict[str, Any],
           param: str | None, minimum: int, lacking: str) -> tuple[int, ...]:
    """The distinct integers >= ``minimum`` of the explainer table's list ``key``, each a value
    of the explainer's ``param`` (None: it has none, ``lacking`` says so); () when absent."""
    values = _value(table, key, where, list, None)
    if values is None:
        return ()
    if param is None:
        raise ConfigError(f"{where}: {lacking}")
    if param in params:
        raise ConfigError(f"{where}: '{key}' sets {param}, which params sets too; remove "
                          f"{param} from params")
    if not values:
        raise ConfigError(f"{where}: '{key}' is empty; list at least one value or remove it")
    for value in values:
        _count({key: value}, key, where, minimum=minimum)
    if len(set(values)) != len(values):
        raise ConfigError(f"{where}: '{key}' lists a value twice: {values}")
    return tuple(values)


def _check_patch(name: str, patch: Any, where: str, info: DatasetInfo) -> None:
    """ConfigError unless explainer ``name`` masks features (only those group them into
    superpixels), the dataset has images (not tabular rows) and ``patch`` fits them."""
    from xaibench.explain.maskers import check_patch

    if "masker" not in registry.explainers.entry(name).consumes:
        raise ConfigError(f"{where}: explainer '{name}' does not mask features, so it takes no "
                          f"patch; superpixel grouping applies to: "
                          f"{', '.join(_masker_explainers())}")
    if info.is_tabular:
        raise ConfigError(f"{where}: patch groups neighbouring pixels into superpixels, but the "
                          f"dataset has tabular rows of {info.shape[1]} features; remove patch")
    try:
        check_patch(patch, info.shape)
    except ConfigError as exc:
        raise ConfigError(f"{where} params: {exc}") from None


def _check_minimums(name: str, params: dict[str, Any], where: str, dataset: str,
                    info: DatasetInfo) -> None:
    """ConfigError for a param below the minimum that explainer ``name``'s registry entry
    declares (per-feature minimums for the dataset's images, or for their superpixels when
    params set ``patch``)."""
    from xaibench.explain.maskers import n_features, patch_grid

    patch = params.get("patch")
    features = n_features(info.shape, patch)
    for key, minimum in registry.explainers.entry(name).minimums.items():
        value = params.get(key)
        least = minimum.of(features)
        if value is None or value >= least:
            continue
        detail = ""
        if minimum.per_feature:
            h, w, c = info.shape
            counted = ("H*W*C of" if patch is None else
                       f"{'x'.join(map(str, patch_grid(info.shape, patch)))} superpixels of "
                       f"patch = {patch} on")
            detail = (f" = {least} for M = {features} features ({counted} the {h}x{w}x{c} "
                      f"images of dataset '{dataset}')")
        raise ConfigError(f"{where}: {key} = {value} is below {name}'s minimum {minimum}{detail}; "
                          f"set {key} >= {least}")


def _check_native(models: tuple[ModelConfig, ...],
                  explainers: tuple[ExplainerConfig, ...]) -> None:
    """ConfigError when an explainer's ``backends`` names only backends no model uses (it
    would explain nothing), or the backend of a model it explains cannot compute it (a native
    explainer)."""
    used = {model.backend for model in models}
    for number, explainer in enumerate(explainers, 1):
        unused = [backend for backend in explainer.backends if backend not in used]
        if unused and len(unused) == len(explainer.backends):
            raise ConfigError(f"[[explainers]] #{number} ({explainer.name}): backends lists "
                              f"{', '.join(map(repr, unused))}, which no [[models]] uses (they "
                              f"use: {', '.join(sorted(used))}); remove it from 'backends'")
        if not registry.explainers.entry(explainer.name).native:
            continue
        for model_number, model in enumerate(models, 1):
            if not explainer.applies_to(model.backend):
                continue
            backend = registry.backends.entry(model.backend)
            if explainer.name in backend.native_explainers:
                continue
            runs = [name for name in registry.explainers
                    if not registry.explainers.entry(name).native
                    or name in backend.native_explainers]
            having = [name for name in registry.backends
                      if explainer.name in registry.backends.entry(name).native_explainers]
            raise ConfigError(f"[[explainers]] #{number} ({explainer.name}): backend "
                              f"'{model.backend}' ([[models]] #{model_number}) cannot run "
                              f"explainer '{explainer.name}' (backends that can: "
                              f"{', '.join(having)}); it runs: {', '.join(runs)} — "
                              f"remove the explainer or that model, or restrict the explainer: "
                              f"backends = {json.dumps(having)}")
    _check_required_properties(models, explainers)


def _check_weight_tensors(models: tuple[ModelConfig, ...], metrics: tuple[str, ...]) -> None:
    """ConfigError when a metric randomises the model's layers but a model's backend has no
    weight tensors (registry entry ``weight_tensors``)."""
    for metric in metrics:
        if not registry.metrics.get(metric).randomises_model:
            continue
        for number, model in enumerate(models, 1):
            if not registry.backends.entry(model.backend).weight_tensors:
                raise ConfigError(f"'metrics': {metric} re-initialises the model's layers, but "
                                  f"backend '{model.backend}' ([[models]] #{number}) has no "
                                  f"weight tensors (a tree ensemble); remove the metric or "
                                  f"that model")


def _check_required_properties(models: tuple[ModelConfig, ...],
                               explainers: tuple[ExplainerConfig, ...]) -> None:
    """ConfigError when a zoo model lacks a property an explainer requires (user models are
    checked when explained)."""
    for number, explainer in enumerate(explainers, 1):
        for prop in sorted(registry.explainers.entry(explainer.name).requires):
            for model_number, model in enumerate(models, 1):
                if model.user is not None or not explainer.applies_to(model.backend):
                    continue
                architecture = registry.models.get(model.architecture)
                if architecture.has(prop, model.params):
                    continue
                what, otherwise = registry.MODEL_PROPERTIES[prop]
                params = ", ".join(f"{key} = {value!r}"
                                   for key, value in architecture.properties.get(prop, {}).items())
                fix = (f"build it with params = {{ {params} }}" if prop in architecture.properties
                       else "use another architecture")
                raise ConfigError(
                    f"[[explainers]] #{number} ({explainer.name}) needs a model that {what}; "
                    f"[[models]] #{model_number} ({model.backend} {model.architecture}) does "
                    f"not: {fix}, or {otherwise}")


def _masker_spec(spec: Any, where: str, image_shape: tuple[int, int, int]) -> str:
    """Validate a masker spec for images of ``image_shape`` without building the masker;
    return it in canonical form."""
    from xaibench.explain.maskers import resolve_masker_spec

    try:
        name, _, args, kwargs = resolve_masker_spec(spec, image_shape)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    arguments = [*map(str, args), *(f"{key}={value}" for key, value in kwargs.items())]
    return f"{name}({','.join(arguments)})" if arguments else name


def _check_masker_fits(spec: str, explainer: registry.Entry, where: str,
                       info: DatasetInfo) -> None:
    """ConfigError unless the masker of ``spec`` applies to the dataset's images or tabular
    rows and has the partition tree ``explainer`` may need."""
    from xaibench.explain.maskers import check_masker_modality, parse_masker_spec

    try:
        check_masker_modality(spec, info.is_tabular)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    masker = registry.maskers.entry(parse_masker_spec(spec)[0])
    if explainer.needs_feature_tree and not masker.feature_tree:
        with_tree = [name for name in registry.maskers.for_modality(
            registry.modality(info.is_tabular)) if registry.maskers.entry(name).feature_tree]
        raise ConfigError(f"{where}: explainer '{explainer.name}' needs a masker with a "
                          f"partition tree over the features, which '{masker.name}' has not; "
                          f"use one of {', '.join(with_tree)}")


def _budget_explainers() -> list[str]:
    return [name for name in registry.explainers if registry.explainers.entry(name).budget]


def _masker_explainers() -> list[str]:
    return [name for name in registry.explainers
            if "masker" in registry.explainers.entry(name).consumes]


# --- helpers ----------------------------------------------------------------------------------
def _array_of_tables(data: dict[str, Any], key: str,
                     build: Callable[[dict[str, Any], str], Any]) -> tuple[Any, ...]:
    tables = _value(data, key, "the top level", list)
    if not tables:
        raise ConfigError(f"'{key}' is empty: add at least one [[{key}]] table")
    built = []
    for number, table in enumerate(tables, 1):
        where = f"[[{key}]] #{number}"
        if not isinstance(table, dict):
            raise ConfigError(f"{where} must be a table, got {table!r}")
        built.append(build(table, where))
    return tuple(built)


def _lookup(reg: registry.Registry, name: str, where: str) -> None:
    """ConfigError naming ``where`` and close matches when ``reg`` has no entry ``name``."""
    if name not in reg:
        raise ConfigError(f"{where}: {reg.unknown_message(name)}")


def _check_keys(table: dict[str, Any], allowed: tuple[str, ...], where: str) -> None:
    for key in table:
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f" — did you mean '{close[0]}'?" if close else ""
            raise ConfigError(f"unknown key '{key}' in {where}{hint} "
                              f"(allowed: {', '.join(allowed)})")


def _value(table: dict[str, Any], key: str, where: str, kind: type | tuple[type, ...],
           default: Any = _REQUIRED) -> Any:
    if key not in table:
        if default is _REQUIRED:
            raise ConfigError(f"{where}: missing required key '{key}'")
        return default
    value = table[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)

    def accepts(candidate: Any) -> bool:
        return isinstance(candidate, kinds) and (bool in kinds or not isinstance(candidate, bool))

    if not accepts(value):
        expected = " or ".join(_TYPE_NAMES.get(k, k.__name__) for k in kinds)
        raise _type_error(where, key, expected, value, accepts)
    return value


def _count(table: dict[str, Any], key: str, where: str, default: Any = _REQUIRED,
           minimum: int = 0) -> Any:
    value = _value(table, key, where, int, default)
    if value is not None and value < minimum:
        raise ConfigError(f"{where}: '{key}' must be >= {minimum}, got {value}")
    return value


def _check_types(function: Callable[..., Any], params: dict[str, Any], where: str) -> None:
    """ConfigError for a value in ``params`` that does not match ``function``'s annotation
    of that parameter (parameters without one, or with one naming what only type checkers
    import, accept anything)."""
    try:
        hints = typing.get_type_hints(function)
    except NameError:
        return
    _check_hints(hints, params, where)


def _check_hints(hints: Mapping[str, Any], params: dict[str, Any], where: str) -> None:
    """ConfigError for a value in ``params`` that does not match its type in ``hints``
    (annotations by param name; params without one accept anything)."""
    for key, value in params.items():
        if key in hints and not _conforms(value, hints[key]):
            raise _type_error(where, key, _type_name(hints[key]), value,
                              lambda candidate: _conforms(candidate, hints[key]))


def _type_error(where: str, key: str, expected: str, value: Any,
                accepts: Callable[[Any], bool]) -> ConfigError:
    """"'key' must be <expected>, got <value>", with the fix when ``value`` is a string that
    ``accepts`` would take as a number or as a list."""
    fix = ""
    if isinstance(value, str):
        if any(accepts(number) for number in _number(value)):
            fix = f"; write it without quotes: {key} = {value.strip()}"
        elif accepts([value]):
            fix = f'; write a list: {key} = ["{value}"]'
    return ConfigError(f"{where}: '{key}' must be {expected}, got {value!r}{fix}")


def _number(text: str) -> list[int | float]:
    """``text`` read as an int and/or a float (none when it is neither)."""
    numbers: list[int | float] = []
    for kind in (int, float):
        try:
            numbers.append(kind(text))
        except ValueError:
            pass
    return numbers


def _conforms(value: Any, hint: Any) -> bool:
    """Whether the TOML ``value`` matches the annotation ``hint`` (ints are not bools; ints
    are numbers; lists stand for tuples)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_conforms(value, arg) for arg in args)
    if origin is typing.Literal:
        return value in args
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            return False
        if origin is tuple and args and args[-1] is not Ellipsis:
            return len(value) == len(args) and all(map(_conforms, value, args))
        return all(_conforms(item, args[0]) for item in value) if args else True
    kind = origin or hint
    return isinstance(value, kind) if isinstance(kind, type) else True


def _type_name(hint: Any) -> str:
    """``hint`` in words, without None (TOML cannot write it)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(arg) for arg in args if arg is not type(None))
    if origin is typing.Literal:
        return "one of " + ", ".join(map(repr, args))
    if origin is tuple and args and args[-1] is not Ellipsis:
        return f"a list of {len(args)} ({', '.join(_type_name(arg) for arg in args)})"
    return _TYPE_NAMES.get(origin or hint, getattr(hint, "__name__", str(hint)))


def _string(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{what} must be a string, got {value!r}")
    return value


def _describe(parameters: list[inspect.Parameter]) -> str:
    return ", ".join(p.name if p.default is inspect.Parameter.empty else f"{p.name}={p.default!r}"
                     for p in parameters
                     if p.kind not in (inspect.Parameter.VAR_POSITIONAL,
                                       inspect.Parameter.VAR_KEYWORD))


def _bind(signature: inspect.Signature, n_fixed: int, params: dict[str, Any], where: str,
          supplied: list[str] = ()) -> None:
    """Bind ``params`` to ``signature`` after ``n_fixed`` leading positional arguments.

    ``supplied`` names parameters the runner passes (bound with placeholders, not listed).
    """
    own = [p for p in list(signature.parameters.values())[n_fixed:] if p.name not in supplied]
    takes = f"it takes: {_describe(own) or 'no params'}"
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in own):
        names = [p.name for p in own]
        for key in params:
            if key not in names:
                close = difflib.get_close_matches(key, names, n=1)
                hint = f" — did you mean '{close[0]}'?" if close else ""
                raise ConfigError(f"{where}: unknown param '{key}'{hint} ({takes})")
    try:
        signature.bind(*[None] * n_fixed, **params, **{key: None for key in supplied})
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc} ({takes})") from None
