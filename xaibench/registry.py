"""Name -> object registries with lazy ``"module:attr"`` entries.

Every registered name lives in this file (one place registers a name); entries are resolved
on first use, so listing them imports no framework.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Mapping

from xaibench.errors import ConfigError


def did_you_mean(name: object, known: Iterable[str]) -> str:
    """" — did you mean 'a' or 'b'?" for the close matches of ``name`` in ``known`` ("" if
    none)."""
    close = difflib.get_close_matches(str(name), list(known), n=3, cutoff=0.6)
    return f" — did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


@dataclass(frozen=True)
class Minimum:
    """The least accepted value of a numeric parameter: ``constant + per_feature * M``, where
    M = H·W·C is the number of features of the dataset's images."""

    constant: int | float
    per_feature: int = 0

    def of(self, n_features: int) -> int | float:
        """The minimum for images of ``n_features`` features."""
        return self.constant + self.per_feature * n_features

    def __str__(self) -> str:
        if not self.per_feature:
            return str(self.constant)
        return f"{self.per_feature}*M" + (f"+{self.constant}" if self.constant else "")


@dataclass(frozen=True)
class Entry:
    """One registered name: where it lives, which framework it needs (if any), and what
    validation must know about it without importing it."""

    name: str
    target: str
    framework: str | None = None
    description: str = ""
    #: backends: the explainers the backend computes with its framework (``native`` ones)
    native_explainers: frozenset[str] = frozenset()
    #: backends: the keyword options of ``fit`` beyond epochs, batch_size, lr (and seed,
    #: progress) -> their types
    train_options: Mapping[str, Any] = field(default_factory=dict, hash=False)
    #: backends: whether ``fit`` trains by epochs of mini-batch steps (epochs, batch_size and
    #: lr apply); False: a one-pass fit (a random forest), whose config may not set them
    epoch_training: bool = True
    #: backends: whether its models are weight tensors (get/set_weights, layer randomisation);
    #: False: a tree ensemble, which metrics that randomise the model cannot score
    weight_tensors: bool = True
    #: explainers: computed by the backend's framework (not model-agnostic), so only backends
    #: listing it in ``native_explainers`` run it
    native: bool = False
    #: explainers: the least accepted value of their numeric parameters
    minimums: Mapping[str, Minimum] = field(default_factory=dict, hash=False)
    #: explainers: the inputs the runner supplies (:data:`EXPLAINER_INPUTS`) that it takes
    consumes: frozenset[str] = frozenset()
    #: explainers consuming a masker: the masker spec used when a config lists none
    default_masker: str | None = None
    #: explainers: the param that bounds the model evaluations per image (what a config's
    #: ``budget`` sweep sets), None when the cost is not set by one
    budget: str | None = None
    #: explainers: whether Σφ = f(x) − base holds (else the additivity metric does not apply)
    additive: bool = True
    #: explainers: the :data:`MODEL_PROPERTIES` a model must have (zoo models are checked at
    #: validation, user models when explained)
    requires: frozenset[str] = frozenset()
    #: the :data:`MODALITIES` the entry applies to (validation refuses it for the others)
    modalities: frozenset[str] = frozenset(("image", "tabular"))
    #: maskers: whether they define a partition tree over the features; explainers: whether
    #: their masker must (Partition SHAP walks the tree)
    feature_tree: bool = True
    needs_feature_tree: bool = False

    @property
    def available(self) -> bool:
        """True when the entry's framework (if any) can be imported."""
        return self.framework is None or importlib.util.find_spec(self.framework) is not None


class Registry:
    """A named collection of lazily imported objects."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry] = {}
        self._resolved: dict[str, Any] = {}

    def register(self, name: str, target: str, *, framework: str | None = None,
                 description: str = "", native_explainers: tuple[str, ...] = (),
                 train_options: Mapping[str, Any] | None = None, native: bool = False,
                 minimums: Mapping[str, Minimum] | None = None, consumes: tuple[str, ...] = (),
                 default_masker: str | None = None, budget: str | None = None,
                 additive: bool = True, requires: tuple[str, ...] = (),
                 epoch_training: bool = True, weight_tensors: bool = True,
                 modalities: tuple[str, ...] = ("image", "tabular"), feature_tree: bool = True,
                 needs_feature_tree: bool = False) -> None:
        """Register ``name`` -> ``"package.module:attribute"`` (or a bare module path), with
        the declarations of :class:`Entry`."""
        if name in self._entries:
            raise ValueError(f"{self.kind} '{name}' is already registered")
        unknown = set(consumes) - set(EXPLAINER_INPUTS)
        if unknown:
            raise ValueError(f"{self.kind} '{name}' consumes unknown inputs {sorted(unknown)}")
        if set(requires) - set(MODEL_PROPERTIES):
            raise ValueError(f"{self.kind} '{name}' requires unknown model properties "
                             f"{sorted(set(requires) - set(MODEL_PROPERTIES))}")
        if not modalities or set(modalities) - set(MODALITIES):
            raise ValueError(f"{self.kind} '{name}' applies to {modalities}; use a non-empty "
                             f"subset of {MODALITIES}")
        self._entries[name] = Entry(
            name, target, framework=framework, description=description,
            native_explainers=frozenset(native_explainers),
            train_options=dict(train_options or {}), epoch_training=epoch_training,
            weight_tensors=weight_tensors, native=native, minimums=dict(minimums or {}),
            consumes=frozenset(consumes), default_masker=default_masker, budget=budget,
            additive=additive, requires=frozenset(requires), modalities=frozenset(modalities),
            feature_tree=feature_tree, needs_feature_tree=needs_feature_tree)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._entries))

    def adopt(self, entry: Entry) -> None:
        """Register ``entry`` (of another process's registry) with all its declarations, unless
        its name is registered here already."""
        self._entries.setdefault(entry.name, entry)

    def entries(self) -> list[Entry]:
        """All entries sorted by name."""
        return [self._entries[name] for name in self]

    def entry(self, name: str) -> Entry:
        """The entry for ``name``; unknown names raise with close-match suggestions."""
        try:
            return self._entries[name]
        except KeyError:
            raise ConfigError(self.unknown_message(name)) from None

    def for_modality(self, modality: str) -> list[str]:
        """The names whose entries apply to ``modality`` ("image" or "tabular"), sorted."""
        return [name for name in self if modality in self._entries[name].modalities]

    def check_modality(self, name: str, modality: str) -> None:
        """ConfigError unless entry ``name`` applies to ``modality``, naming those that do."""
        if modality not in self.entry(name).modalities:
            data = "tabular rows" if modality == "tabular" else "images"
            raise ConfigError(f"{self.kind} '{name}' does not apply to {data}; use one of "
                              f"{', '.join(self.for_modality(modality))}")

    def unknown_message(self, name: str) -> str:
        """"unknown explainer 'partion' — did you mean 'partition'?" style message."""
        return f"unknown {self.kind} '{name}'{did_you_mean(name, self._entries)} " \
               f"(known: {', '.join(self)})"

    def get(self, name: str) -> Any:
        """Import (once) and return the object registered as ``name``."""
        if name not in self._resolved:
            entry = self.entry(name)
            module_name, _, attr = entry.target.partition(":")
            try:
                module = importlib.import_module(module_name)
            except ImportError as exc:
                if entry.framework and not entry.available:
                    from xaibench.errors import MissingFrameworkError
                    raise MissingFrameworkError(entry.framework, _EXTRA[entry.framework]) from exc
                raise
            self._resolved[name] = getattr(module, attr) if attr else module
        return self._resolved[name]


#: what the runner supplies to an explainer that declares it in ``consumes``: ``masker`` (a
#: spec from the config's ``maskers``), ``background`` (``n_background`` training images),
#: ``seed`` (derived from the cell's key unless the config's params set it)
EXPLAINER_INPUTS = ("masker", "background", "seed")

#: the kinds of data: images (H, W, C), or tabular rows of F features travelling as (1, F, 1)
#: images (:attr:`xaibench.backend.ImageSpec.is_tabular`)
MODALITIES = ("image", "tabular")


def modality(tabular: bool) -> str:
    """"tabular" or "image"."""
    return "tabular" if tabular else "image"


def cell_inputs(explainer: str, masker: str | None) -> frozenset[str]:
    """What the runner supplies to a cell: the inputs its explainer consumes and those its
    masker spec's entry consumes (a tabular masker draws hidden features from background
    rows)."""
    from xaibench.explain.maskers import parse_masker_spec

    consumes = explainers.entry(explainer).consumes
    if masker is not None:
        consumes = consumes | maskers.entry(parse_masker_spec(masker)[0]).consumes
    return consumes


#: what an explainer may require of a model (a zoo architecture declares when it has them)
#: -> (what it means, what to do without it)
MODEL_PROPERTIES = {"global_pooling": ("ends in convolution -> global average pooling -> dense",
                                       "use 'gradcam', which works for any CNN")}

_EXTRA = {"torch": "torch", "tensorflow": "tensorflow", "keras": "tensorflow", "jax": "jax",
          "flax": "jax"}

backends = Registry("backend")
models = Registry("model")
datasets = Registry("dataset")
explainers = Registry("explainer")
maskers = Registry("masker")
metrics = Registry("metric")

ALL = {r.kind: r for r in (backends, models, datasets, explainers, maskers, metrics)}

# a backend is one line: native_explainers are the keys of the class's ``native_methods`` and
# train_options its ``fit`` keywords beyond epochs, batch_size, lr, declared here without
# importing the framework (tests/unit/experiment/test_config.py checks both)
_NATIVE = ("deep", "gradient", "cam", "gradcam", "gradcam_pp")
backends.register("torch", "backends.torch_backend:TorchBackend", framework="torch",
                  description="PyTorch nn.Module", native_explainers=_NATIVE)
backends.register("keras", "backends.keras_backend:KerasBackend", framework="tensorflow",
                  description="Keras 3 model on TensorFlow 2",
                  native_explainers=_NATIVE,
                  train_options={"augment": bool, "patience": int | None,
                                 "validation_fraction": float})
backends.register("flax", "backends.flax_backend:FlaxBackend", framework="flax",
                  description="Flax linen module on JAX", native_explainers=_NATIVE)
backends.register("sklearn", "backends.sklearn_backend:SklearnBackend",
                  description="scikit-learn random forest (class probabilities or one "
                              "regression output)", native_explainers=("tree",),
                  epoch_training=False, weight_tensors=False)

models.register("fmnist_cnn", "backends.zoo.architectures:FMNIST_CNN",
                description="conv32-conv16 3x3 SAME ReLU, dense 10 (Flax tutorial CNN)")
models.register("cifar_convnet", "backends.zoo.architectures:CIFAR_CONVNET",
                description="CIFAR-10 tutorial ConvNet: 6 conv-ReLU-(pool)-BatchNorm, conv 1x1, "
                            "avgpool")
models.register("cifar_convnet_functional",
                "backends.zoo.architectures:CIFAR_CONVNET_FUNCTIONAL",
                description="cifar_convnet with functional F.relu, as the tutorial (torch only: "
                            "DeepExplainer attributions do not add up)")
models.register("mlp", "backends.zoo.architectures:MLP",
                description="flatten, dense 128 ReLU, dense 10")
models.register("random_forest", "backends.zoo.architectures:RANDOM_FOREST",
                description="scikit-learn random forest (n_estimators trees, max_depth)")
models.register("tabular_mlp", "backends.zoo.architectures:TABULAR_MLP",
                description="tabular rows: 5 x dense 10 ReLU, dense n_outputs (course MLP)")
models.register("vgg16_transfer", "backends.zoo.architectures:VGG16_TRANSFER",
                description="frozen VGG16 features + new dense softmax head")

datasets.register("fashion_mnist", "xaibench.data.fashion_mnist:load",
                  description="Fashion-MNIST 28x28 grey, 10 classes")
datasets.register("cifar10", "xaibench.data.cifar10:load",
                  description="CIFAR-10 32x32 colour, 10 classes (python-pickle batches)")
datasets.register("digits", "xaibench.data.digits:load",
                  description="scikit-learn's bundled 8x8 digits")
datasets.register("image_folder", "xaibench.data.image_folder:load",
                  description="class-per-subfolder image directory (PNG/JPEG)")
datasets.register("synthetic", "xaibench.data.synthetic:load",
                  description="pattern-at-random-position images with ground-truth masks")
datasets.register("diabetes", "xaibench.data.diabetes:load",
                  description="scikit-learn's diabetes table: 10 features, regression")
datasets.register("breast_cancer", "xaibench.data.breast_cancer:load",
                  description="scikit-learn's breast-cancer table: 30 features, 2 classes")

_SEED = Minimum(0)
explainers.register("deep", "xaibench.explain.native:deep",
                    description="DeepLIFT rescale (shap DeepExplainer)", native=True,
                    consumes=("background",))
explainers.register("gradient", "xaibench.explain.native:gradient",
                    description="expected gradients (shap GradientExplainer)", native=True,
                    minimums={"nsamples": Minimum(1), "local_smoothing": Minimum(0),
                              "seed": _SEED}, consumes=("background", "seed"))
explainers.register("tree", "xaibench.explain.native:tree",
                    description="exact TreeSHAP of tree ensembles (shap TreeExplainer)",
                    native=True, consumes=("background",))
explainers.register("partition", "xaibench.explain.partition:partition",
                    description="Partition SHAP (shap's Owen values) over backend.predict",
                    minimums={"max_evals": Minimum(2), "batch_size": Minimum(1), "seed": _SEED},
                    consumes=("masker", "seed"), default_masker="blur(8,8)", budget="max_evals",
                    needs_feature_tree=True)
explainers.register("permutation", "xaibench.explain.permutation:permutation",
                    description="shap PermutationExplainer over backend.predict",
                    minimums={"max_evals": Minimum(1, per_feature=2), "batch_size": Minimum(1),
                              "seed": _SEED}, consumes=("masker", "seed"),
                    default_masker="blur(8,8)", budget="max_evals")
explainers.register("random", "xaibench.explain.baselines:random",
                    description="baseline: Gaussian noise attributions (a floor for metrics)",
                    minimums={"seed": _SEED}, consumes=("seed",), additive=False)
explainers.register("edge", "xaibench.explain.baselines:edge",
                    description="baseline: Sobel edge magnitude of the image (no model)",
                    additive=False, modalities=("image",))
explainers.register("cam", "xaibench.explain.native:cam",
                    description="class activation map (conv -> global average pool -> dense)",
                    native=True, additive=False, requires=("global_pooling",),
                    modalities=("image",))
explainers.register("gradcam", "xaibench.explain.native:gradcam",
                    description="Grad-CAM at a convolution layer (last by default)",
                    native=True, additive=False, modalities=("image",))
explainers.register("gradcam_pp", "xaibench.explain.native:gradcam_pp",
                    description="Grad-CAM++ at a convolution layer (last by default)",
                    native=True, additive=False, modalities=("image",))

_IMAGE = ("image",)
maskers.register("inpaint_telea", "xaibench.explain.maskers:inpaint_telea",
                 description="OpenCV Telea inpainting of masked pixels", modalities=_IMAGE)
maskers.register("inpaint_ns", "xaibench.explain.maskers:inpaint_ns",
                 description="OpenCV Navier-Stokes inpainting of masked pixels",
                 modalities=_IMAGE)
maskers.register("blur", "xaibench.explain.maskers:blur",
                 description="masked pixels replaced by a box blur of the image, blur(kx,ky)",
                 modalities=_IMAGE)
maskers.register("constant", "xaibench.explain.maskers:constant",
                 description="masked pixels set to a constant value, constant(v)")
maskers.register("noisy_linear", "xaibench.explain.maskers:noisy_linear",
                 description="ROAD noisy linear imputation: neighbour mean (1/6, 1/12) + noise",
                 modalities=_IMAGE)
_TABULAR = ("tabular",)
maskers.register("independent", "xaibench.explain.maskers:independent",
                 description="tabular: hidden features drawn from background rows, each "
                             "independently (shap.maskers.Independent)",
                 modalities=_TABULAR, consumes=("background",), feature_tree=False)
maskers.register("partition", "xaibench.explain.maskers:partition",
                 description="tabular: background rows with shap's correlation clustering "
                             "of the features (shap.maskers.Partition)",
                 modalities=_TABULAR, consumes=("background",))

metrics.register("additivity", "xaibench.metrics.additivity:AdditivityGap",
                 description="|sum(phi) - (f(x) - base)| per image and output")
metrics.register("deletion_auc", "xaibench.metrics.faithfulness:DeletionAUC",
                 description="AUC of the deletion (MoRF) curve, class probability by default")
metrics.register("insertion_auc", "xaibench.metrics.faithfulness:InsertionAUC",
                 description="AUC of the insertion curve (most relevant restored first)")
metrics.register("abpc", "xaibench.metrics.faithfulness:ABPC",
                 description="SRG (symmetric relevance gain, Bluecher et al. TMLR 2024): "
                             "AUC(LeRF) - AUC(MoRF), the area between the curves")
metrics.register("gini", "xaibench.metrics.complexity:Gini",
                 description="Gini sparseness of |attribution| per pixel")
metrics.register("entropy", "xaibench.metrics.complexity:Entropy",
                 description="entropy of the normalised |attribution| per pixel")
metrics.register("mprt", "xaibench.metrics.randomisation:MPRT",
                 description="cascading model randomisation: mean Spearman similarity")
metrics.register("smprt", "xaibench.metrics.randomisation:SmoothMPRT",
                 description="MPRT of explanations averaged over noisy copies of the input")
metrics.register("emprt", "xaibench.metrics.randomisation:EfficientMPRT",
                 description="entropy rise of |attribution| under full model randomisation")
metrics.register("faithfulness_correlation", "xaibench.metrics.fidelity:FaithfulnessCorrelation",
                 description="Pearson corr. of attribution mass and output drop, random subsets")
metrics.register("infidelity", "xaibench.metrics.fidelity:Infidelity",
                 description="mean squared gap of attribution mass and output drop, squares")
metrics.register("relevance_mass", "xaibench.metrics.localisation:RelevanceMass",
                 description="share of positive relevance inside the ground-truth mask")
metrics.register("relevance_rank", "xaibench.metrics.localisation:RelevanceRank",
                 description="share of the top-|mask| pixels inside the ground-truth mask")
metrics.register("pointing_game", "xaibench.metrics.localisation:PointingGame",
                 description="is the most relevant pixel inside the ground-truth mask")
metrics.register("max_sensitivity", "xaibench.metrics.robustness:MaxSensitivity",
                 description="max relative attribution change under small uniform input noise")
metrics.register("seconds_per_image", "xaibench.metrics.runtime:SecondsPerImage",
                 description="explanation wall-clock seconds per image")
metrics.register("evals_per_image", "xaibench.metrics.runtime:EvalsPerImage",
                 description="model evaluations of the explanation per image")
