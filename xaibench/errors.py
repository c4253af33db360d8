"""Exception types shared across xaibench."""


class XaibenchError(Exception):
    """Base class of every error raised on purpose by xaibench."""


class ConfigError(XaibenchError, ValueError):
    """An experiment file, a name or a parameter is invalid."""


class DataError(XaibenchError):
    """A dataset file is missing, corrupt, truncated or fails its checksum."""


class TrainingDivergedError(XaibenchError):
    """Training produced a NaN/Inf loss or NaN/Inf weights (typically: the lr is too large)."""


class MissingFrameworkError(XaibenchError, ImportError):
    """An optional framework (torch, tensorflow, jax) is not installed."""

    def __init__(self, framework: str, extra: str) -> None:
        super().__init__(f"{framework} is not installed: pip install 'xaibench[{extra}]'")
        self.framework = framework
        self.extra = extra


class UnsupportedModelError(XaibenchError):
    """A model uses a layer or pattern that an explainer cannot handle correctly."""


class TerminatedError(KeyboardInterrupt):
    """The process received SIGTERM during a run; handled like Ctrl-C (finished work kept)."""
