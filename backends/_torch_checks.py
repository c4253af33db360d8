"""Private helpers of the torch backend: what shap's PyTorch DeepExplainer can explain.

shap's DeepExplainer (``shap/explainers/_deep/deep_pytorch.py``) computes DeepLIFT multipliers in
forward/backward hooks on every leaf module, keeping the module's last input and output as
attributes. That design breaks, mostly *silently*, on

- a nonlinear module instance called more than once per forward pass (the second call
  overwrites the first call's stored tensors),
- ``inplace=True`` activations (the stored/hooked tensors are modified underneath),
- in-place arithmetic such as ``out += x`` and functional nonlinearities (``F.relu``): these are
  invisible to module hooks and are only caught by checking additivity afterwards.

The first two are found here before anything runs; :func:`module_state_restored` undoes
everything shap leaves behind on a module (hooks and the ``x`` / ``y`` tensors it registers as
*parameters*, which would otherwise leak into ``state_dict()`` and the optimiser).
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import nn

from xaibench.errors import UnsupportedModelError

_HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks",
               "_backward_pre_hooks", "_forward_hooks_with_kwargs",
               "_forward_hooks_always_called", "_forward_pre_hooks_with_kwargs")


def _shap_op_handlers() -> dict[str, str]:
    """Module class name -> name of shap's DeepLIFT handler for it."""
    from shap.explainers._deep.deep_pytorch import op_handler

    return {name: fn.__name__ for name, fn in op_handler.items()}


def is_leaf(module: nn.Module) -> bool:
    return next(module.children(), None) is None


def _describe(name: str, module: nn.Module) -> str:
    return f"'{name}' ({module!r})" if name else f"the top-level module ({module!r})"


def call_counts(module: nn.Module, probe: torch.Tensor) -> dict[str, tuple[nn.Module, int]]:
    """Run ``module(probe)`` once; the (sub)modules it called, with their number of calls.

    Ordered by when each module's first call *finished* (children before their parent), which
    for leaf layers is the order data flows through them.
    """
    _refuse_torchscript(module)
    counts: dict[int, int] = {}

    def hook(mod: nn.Module, _inputs: object, _output: object) -> None:
        counts[id(mod)] = counts.get(id(mod), 0) + 1

    named = {id(m): (name, m) for name, m in module.named_modules()}
    handles = [m.register_forward_hook(hook) for _, m in named.values()]
    try:
        with torch.no_grad():
            module(probe)
    finally:
        for handle in handles:
            handle.remove()
    return {named[i][0]: (named[i][1], n) for i, n in counts.items()}


def _refuse_torchscript(module: nn.Module) -> None:
    """UnsupportedModelError when ``module`` holds TorchScript, which takes no module hooks."""
    if any(isinstance(m, torch.jit.ScriptModule) for m in module.modules()):
        raise UnsupportedModelError(
            "this TorchScript model cannot be inspected layer by layer (TorchScript modules "
            "take no hooks): 'deep', layer attributions and randomisation (MPRT) need a Python "
            "nn.Module -- give model = \"pkg.module:Net\" with a state_dict as weights, or "
            "use 'gradient' without a layer")


def check_deep_supported(module: nn.Module, probe: torch.Tensor) -> list[str]:
    """Raise :class:`UnsupportedModelError` for patterns that break shap's DeepExplainer.

    ``probe`` is one valid NCHW input batch. Returns the names of leaf modules that shap does
    not recognise (it passes gradients through them unchanged: right for linear ops, wrong for
    nonlinear ones) -- used to make a later additivity failure more helpful.
    """
    handlers = _shap_op_handlers()
    problems: list[str] = []
    unrecognised: list[str] = []
    for name, (mod, n_calls) in call_counts(module, probe).items():
        kind = type(mod).__name__
        if getattr(mod, "inplace", False) is True and handlers.get(kind) != "passthrough":
            problems.append(
                f"module {_describe(name, mod)} is in-place (inplace=True): DeepExplainer's hooks "
                f"need its input intact -- build it with inplace=False")
        if not is_leaf(mod):
            continue
        if kind not in handlers:
            unrecognised.append(name or kind)
        elif n_calls > 1 and handlers[kind] in ("nonlinear_1d", "maxpool"):
            problems.append(
                f"module {_describe(name, mod)} is called {n_calls} times in one forward pass: "
                f"DeepExplainer keeps one input/output per module instance, so a reused "
                f"{kind} gives wrong attributions -- give every use its own {kind}() instance")
    if problems:
        raise UnsupportedModelError(
            "model not supported by the 'deep' explainer (shap DeepExplainer):\n  - "
            + "\n  - ".join(problems))
    return unrecognised


@contextlib.contextmanager
def module_state_restored(module: nn.Module) -> Iterator[None]:
    """Remove every hook and parameter added to ``module``'s submodules inside the block.

    shap registers hooks (and, on error, never removes them) and stores ``module.x`` /
    ``module.y`` as ``nn.Parameter``; both are undone here, also when the block raises.
    TorchScript submodules, which take neither, are left alone.
    """
    saved = []
    for mod in module.modules():
        if isinstance(mod, torch.jit.ScriptModule):  # takes no hooks: shap leaves none
            continue
        dicts = {d: set(getattr(mod, d).keys()) for d in _HOOK_DICTS if hasattr(mod, d)}
        saved.append((mod, set(mod._parameters), dicts,
                      getattr(mod, "_is_full_backward_hook", None)))
    try:
        yield
    finally:
        for mod, params, dicts, full_flag in saved:
            for name in set(mod._parameters) - params:
                del mod._parameters[name]
            for dname, keys in dicts.items():
                d = getattr(mod, dname)
                for key in set(d.keys()) - keys:
                    del d[key]
            mod._is_full_backward_hook = full_flag
