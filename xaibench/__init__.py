"""xaibench: compare SHAP explainers and maskers across PyTorch, Keras and JAX/Flax.

Importing this package imports no deep-learning framework (nor pandas or shap): ``run`` and
``load`` import what they need when called.
"""

from xaibench.api import ExperimentResults, load, run
from xaibench.backend import Attribution, Backend, ImageSpec, resolve_targets
from xaibench.errors import (ConfigError, DataError, MissingFrameworkError,
                             UnsupportedModelError, XaibenchError)

__version__ = "0.1.0"

__all__ = ["Attribution", "Backend", "ConfigError", "DataError", "ExperimentResults", "ImageSpec",
           "MissingFrameworkError", "UnsupportedModelError", "XaibenchError", "load",
           "resolve_targets", "run", "__version__"]
