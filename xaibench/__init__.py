"""xaibench: compare SHAP explainers and maskers across PyTorch, Keras and JAX/Flax.

Importing this package imports no deep-learning framework.
"""

from xaibench.backend import Attribution, Backend, ImageSpec, resolve_targets
from xaibench.errors import (ConfigError, DataError, MissingFrameworkError,
                             UnsupportedModelError, XaibenchError)

__version__ = "0.1.0"

__all__ = ["Attribution", "Backend", "ConfigError", "DataError", "ImageSpec",
           "MissingFrameworkError", "UnsupportedModelError", "XaibenchError", "resolve_targets",
           "__version__"]
