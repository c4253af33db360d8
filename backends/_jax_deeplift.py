"""DeepLIFT (rescale rule) for JAX functions: the quantity shap's DeepExplainer computes.

shap has no JAX code path, so this module reimplements what ``shap/explainers/_deep/
deep_pytorch.py`` computes, for any function ``fn(params, x)`` that JAX can trace (a Flax
``apply``). For an image x and each background row b the model runs on the pair (x, b); the
backward pass multiplies by DeepLIFT multipliers instead of derivatives, and
φ = mean over b of multipliers(b) × (x − b).

``fn`` is traced once (batch size 1) to a jaxpr. Pure calls (``jit``, ``remat``) are inlined and
every equation that depends on the input x ("live") is classified:

- **linear** (conv, dot, add/sub, mul or div by a constant, reshape, transpose, pad, slices,
  sum and average pooling, ...): evaluated on the x side and the b side separately; autodiff
  passes multipliers through unchanged (shap's ``linear_1d`` / ``passthrough``).
- **nonlinear block**: a connected group of elementwise operations fed by one live tensor,
  optionally with reductions that are broadcast back to its shape (ReLU, leaky ReLU, ELU, GELU,
  SiLU, sigmoid, tanh, softplus, softmax, ...). The whole block gets the rescale rule
  Δout/Δin elementwise, with the block's own gradient where |Δin| < 1e-6 (shap's
  ``nonlinear_1d``, which handles softmax the same way). Leading bias additions stay outside.
- **max** (``max_pool``, ``reduce_max``): shap's ``maxpool`` rule.
- anything else (a product of two activations, sorting, ...) raises
  :class:`~xaibench.errors.UnsupportedModelError` naming the operation and its source line.

As in shap, the multipliers of the *reference* side are used (they equal the input side's
except where the gradient fallback applies).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend import core as jcore
from jax.extend import source_info_util

from xaibench.errors import UnsupportedModelError

#: |Δin| below which shap's nonlinear_1d falls back to the gradient
RESCALE_EPS = 1e-6
#: |Δin| below which shap's maxpool rule gives a zero multiplier
MAXPOOL_EPS = 1e-7

#: call primitives inlined into the flat program -> the parameter holding their jaxpr
_CALLS = {"jit": "jaxpr", "closed_call": "call_jaxpr", "call": "call_jaxpr", "remat2": "jaxpr"}
#: calls with a custom derivative: kept whole when elementwise (relu's derivative at 0 is 0,
#: which inlining ``max(x, 0)`` would lose), inlined otherwise
_CUSTOM_CALLS = {"custom_jvp_call": "call_jaxpr", "custom_vjp_call": "call_jaxpr"}

_ELEMENTWISE = frozenset({
    "add", "add_any", "sub", "mul", "div", "rem", "neg", "max", "min", "abs", "sign", "exp",
    "exp2", "expm1", "log", "log1p", "tanh", "logistic", "sin", "cos", "tan", "atan", "atan2",
    "sinh", "cosh", "asinh", "acosh", "atanh", "sqrt", "rsqrt", "cbrt", "square", "integer_pow",
    "pow", "erf", "erfc", "erf_inv", "floor", "ceil", "round", "clamp", "select_n", "gt", "ge",
    "lt", "le", "eq", "ne", "and", "or", "not", "is_finite", "convert_element_type", "copy",
    "copy_p", "reduce_precision", "stop_gradient"})
#: may join a nonlinear block (e.g. softmax) as long as the block's outputs keep its shape
_BLOCK_EXTRA = frozenset({"reduce_max", "reduce_min", "reduce_sum", "broadcast_in_dim"})
_LINEAR = frozenset({
    "add", "add_any", "sub", "neg", "convert_element_type", "copy", "copy_p",
    "reduce_precision", "stop_gradient", "reshape", "transpose", "broadcast_in_dim", "squeeze",
    "expand_dims", "rev", "reduce_sum", "reduce_window_sum", "cumsum", "slice", "concatenate",
    "pad"})
_MAX_OPS = frozenset({"reduce_window_max", "reduce_max"})


@dataclass(frozen=True)
class _Lit:
    """A literal operand (a Python or numpy scalar baked into the jaxpr)."""

    value: Any


Atom = int | _Lit  # a variable id of the flat program or a literal


@dataclass(frozen=True, eq=False)
class _Op:
    """One primitive application of the flat program."""

    eqn: jcore.JaxprEqn
    ins: tuple[Atom, ...]
    outs: tuple[int, ...]
    #: where the operation comes from: Flax module path and source line
    where: str

    @property
    def name(self) -> str:
        return self.eqn.primitive.name

    def bind(self, values: Sequence[Any]) -> list[Any]:
        params = self.eqn.primitive.get_bind_params(self.eqn.params)
        with self.eqn.ctx.manager:
            out = self.eqn.primitive.bind(*values, **params)
        return list(out) if self.eqn.primitive.multiple_results else [out]


def _sub_jaxpr(eqn: jcore.JaxprEqn) -> tuple[jcore.Jaxpr, Sequence[Any]] | None:
    """(jaxpr, consts) of a call equation, None for other primitives."""
    key = _CALLS.get(eqn.primitive.name) or _CUSTOM_CALLS.get(eqn.primitive.name)
    if key is None:
        return None
    sub = eqn.params[key]
    return (sub.jaxpr, sub.consts) if isinstance(sub, jcore.ClosedJaxpr) else (sub, ())


def _is_elementwise(jaxpr: jcore.Jaxpr) -> bool:
    """True when every output is an elementwise function of the inputs (same shapes)."""
    for eqn in jaxpr.eqns:
        sub = _sub_jaxpr(eqn)
        if sub is not None:
            if not _is_elementwise(sub[0]):
                return False
        elif eqn.primitive.name not in _ELEMENTWISE | {"broadcast_in_dim"}:
            return False
    shapes = {v.aval.shape for v in (*jaxpr.invars, *jaxpr.outvars) if v.aval.shape != ()}
    return len(shapes) <= 1


def _is_linear(op: _Op, live: Sequence[bool]) -> bool:
    """True when ``op`` is linear in its live operands (the others are constants)."""
    name, n_live = op.name, sum(live)
    if name in _LINEAR:
        return True
    if name in ("mul", "dot_general", "conv_general_dilated"):
        return n_live == 1
    if name in ("div", "dynamic_slice", "gather"):
        return bool(live[0]) and n_live == 1
    if name == "select_n":
        return not live[0]
    if name == "dynamic_update_slice":
        return not any(live[2:])
    return False


class _Flattener:
    """Turns a closed jaxpr into a flat list of :class:`_Op` over integer variable ids."""

    def __init__(self) -> None:
        self.ops: list[_Op] = []
        self.consts: dict[int, Any] = {}
        self.avals: dict[int, Any] = {}

    def new(self, aval: Any) -> int:
        self.avals[len(self.avals)] = aval
        return len(self.avals) - 1

    def inline(self, jaxpr: jcore.Jaxpr, consts: Sequence[Any], args: Sequence[Atom],
               where: str = "") -> list[Atom]:
        """Append the equations of ``jaxpr`` applied to ``args``; return its outputs.

        ``where`` locates the enclosing call, for equations whose own location is in JAX.
        """
        env: dict[Any, Atom] = {}

        def read(v: Any) -> Atom:
            return _Lit(v.val) if isinstance(v, jcore.Literal) else env[v]

        for var, value in zip(jaxpr.constvars, consts):
            env[var] = self.new(var.aval)
            self.consts[env[var]] = value
        env.update(zip(jaxpr.invars, args))
        for eqn in jaxpr.eqns:
            ins = [read(v) for v in eqn.invars]
            line = source_info_util.summarize(eqn.source_info)
            module = str(eqn.source_info.name_stack)
            here = f"{f'module {module}, ' if module else ''}{line}" if line else where
            sub = _sub_jaxpr(eqn)
            if sub is not None and (eqn.primitive.name in _CALLS or not _is_elementwise(sub[0])):
                outs: list[Atom] = self.inline(*sub, ins, here)
            else:
                outs = [self.new(v.aval) for v in eqn.outvars]
                self.ops.append(_Op(eqn, tuple(ins), tuple(outs), here))
            env.update(zip(eqn.outvars, outs))
        return [read(v) for v in jaxpr.outvars]


def _read(env: dict[int, Any], shared: dict[int, Any], atom: Atom) -> Any:
    if isinstance(atom, _Lit):
        return atom.value
    return env[atom] if atom in env else shared[atom]


def _zero_cotangent(x: Any) -> Any:
    if jnp.issubdtype(jnp.result_type(x), jnp.inexact):
        return jnp.zeros_like(x)
    return np.zeros(jnp.shape(x), dtype=jax.dtypes.float0)


@dataclass(frozen=True, eq=False)
class _Linear:
    """A linear operation, applied to each side of the pair."""

    op: _Op

    def run(self, shared: dict[int, Any], side_x: dict[int, Any], side_b: dict[int, Any]) -> None:
        for env in (side_x, side_b):
            values = [_read(env, shared, a) for a in self.op.ins]
            env.update(zip(self.op.outs, self.op.bind(values)))


@dataclass(frozen=True, eq=False)
class _Block:
    """A nonlinear block: ``exits = F(entry)``, elementwise in shape, with the rescale rule."""

    entry: int
    ops: tuple[_Op, ...]
    exits: tuple[int, ...]
    consts: tuple[int, ...]

    def __call__(self, value: Any, consts: tuple[Any, ...]) -> tuple[Any, ...]:
        env = {self.entry: value, **dict(zip(self.consts, consts))}
        for op in self.ops:
            env.update(zip(op.outs, op.bind([_read(env, {}, a) for a in op.ins])))
        return tuple(env[e] for e in self.exits)

    def run(self, shared: dict[int, Any], side_x: dict[int, Any], side_b: dict[int, Any]) -> None:
        consts = tuple(shared[c] for c in self.consts)
        out_x, out_b = _rescale(self, side_x[self.entry], side_b[self.entry], consts)
        side_x.update(zip(self.exits, out_x))
        side_b.update(zip(self.exits, out_b))


@partial(jax.custom_vjp, nondiff_argnums=(0,))
def _rescale(block: _Block, x: Any, b: Any, consts: tuple[Any, ...]) -> tuple[Any, Any]:
    return block(x, consts), block(b, consts)


def _rescale_fwd(block: _Block, x: Any, b: Any, consts: tuple[Any, ...]):
    out_x, out_b = block(x, consts), block(b, consts)
    return (out_x, out_b), (x, b, consts, out_x, out_b)


def _rescale_bwd(block: _Block, res: tuple, cotangents: tuple) -> tuple:
    x, b, consts, out_x, out_b = res
    g_x, g_b = cotangents
    delta_in = x - b
    small = jnp.abs(delta_in) < RESCALE_EPS
    safe = jnp.where(small, 1.0, delta_in).astype(delta_in.dtype)
    grads = []
    for point, g in ((x, g_x), (b, g_b)):
        rescaled = sum(gi * (yx - yb) for gi, yx, yb in zip(g, out_x, out_b)) / safe
        gradient = jax.vjp(lambda v: block(v, consts), point)[1](tuple(g))[0]
        grads.append(jnp.where(small, gradient, rescaled))
    return grads[0], grads[1], tuple(_zero_cotangent(c) for c in consts)


_rescale.defvjp(_rescale_fwd, _rescale_bwd)


@dataclass(frozen=True, eq=False)
class _Max:
    """A max reduction (max pooling) with shap's ``maxpool`` rule."""

    op: _Op

    def __call__(self, value: Any) -> Any:
        return self.op.bind([value])[0]

    def run(self, shared: dict[int, Any], side_x: dict[int, Any], side_b: dict[int, Any]) -> None:
        (live,), (out,) = self.op.ins, self.op.outs
        side_x[out], side_b[out] = _max_rule(self, side_x[live], side_b[live])


@partial(jax.custom_vjp, nondiff_argnums=(0,))
def _max_rule(op: _Max, x: Any, b: Any) -> tuple[Any, Any]:
    return op(x), op(b)


def _max_rule_fwd(op: _Max, x: Any, b: Any):
    out_x, out_b = op(x), op(b)
    return (out_x, out_b), (x, b, out_x, out_b)


def _max_rule_bwd(op: _Max, res: tuple, cotangents: tuple) -> tuple:
    x, b, out_x, out_b = res
    g_x, g_b = cotangents
    cross = jnp.maximum(out_x, out_b)
    # route each side's share of Δout to the positions of its own maxima ("unpooling")
    routed = (jax.vjp(op, x)[1](g_x * (cross - out_b))[0]
              + jax.vjp(op, b)[1](g_b * (out_x - cross))[0])
    delta_in = x - b
    small = jnp.abs(delta_in) < MAXPOOL_EPS
    multiplier = jnp.where(small, 0.0, routed / jnp.where(small, 1.0, delta_in))
    return multiplier, multiplier


_max_rule.defvjp(_max_rule_fwd, _max_rule_bwd)


@dataclass(frozen=True, eq=False)
class Plan:
    """The classified flat program of ``fn(params, x)``, evaluated on (input, reference) pairs."""

    n_params: int
    consts: dict[int, Any]
    shared_ops: tuple[_Op, ...]  # operations that do not depend on x (e.g. on parameters)
    steps: tuple[_Linear | _Block | _Max, ...]
    x_id: int
    output: Atom

    def pair(self, params: Any, x: jax.Array, b: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``fn`` at x and at b; differentiating these gives the DeepLIFT multipliers."""
        leaves = jax.tree.leaves(params)
        if len(leaves) != self.n_params:
            raise ValueError(f"expected {self.n_params} parameter arrays, got {len(leaves)}")
        shared = {**self.consts, **dict(enumerate(leaves))}  # parameters are ids 0 .. n - 1
        for op in self.shared_ops:
            shared.update(zip(op.outs, op.bind([_read({}, shared, a) for a in op.ins])))
        side_x, side_b = {self.x_id: x}, {self.x_id: b}
        for step in self.steps:
            step.run(shared, side_x, side_b)
        return _read(side_x, shared, self.output), _read(side_b, shared, self.output)


def _unsupported(op: _Op, why: str) -> UnsupportedModelError:
    return UnsupportedModelError(
        f"the 'deep' explainer (DeepLIFT) cannot handle the operation '{op.name}' "
        f"({op.where or 'location unknown'}): {why}. Supported: linear operations (conv, "
        f"dense, add, reshape, pad, sum/average pooling, scaling by constants), elementwise "
        f"activations of one tensor (relu, sigmoid, tanh, elu, gelu, softplus, ...), softmax "
        f"and max pooling.")


def build_plan(fn: Callable[[Any, jax.Array], jax.Array], params: Any,
               input_shape: Sequence[int], dtype: Any = jnp.float32) -> Plan:
    """Trace ``fn(params, x)`` for one input of ``input_shape`` and classify its operations.

    Raises :class:`UnsupportedModelError` for an operation on activations that is neither
    linear, part of an elementwise block, nor a max reduction.
    """
    leaves, treedef = jax.tree.flatten(params)
    x = jax.ShapeDtypeStruct((1, *input_shape), dtype)
    closed = jax.make_jaxpr(lambda ls, xx: fn(jax.tree.unflatten(treedef, ls), xx))(leaves, x)
    flat = _Flattener()
    in_ids = [flat.new(v.aval) for v in closed.jaxpr.invars]  # the leaves, then x
    outputs = flat.inline(closed.jaxpr, closed.consts, in_ids)
    if len(outputs) != 1:
        raise UnsupportedModelError(f"the model returns {len(outputs)} arrays; the 'deep' "
                                    f"explainer needs one (N, K) array of scores")
    x_id = in_ids[-1]
    live = {x_id}
    for op in flat.ops:
        if _live_ins(op, live):
            live.update(op.outs)
    live_ops = [op for op in flat.ops if op.outs[0] in live]

    blocks = _nonlinear_blocks(live_ops, live, x_id, flat.avals, outputs[0])
    block_of = {id(op): block for block in blocks for op in block.ops}
    steps: list[_Linear | _Block | _Max] = []
    for op in live_ops:
        block = block_of.get(id(op))
        if block is not None:
            if op is block.ops[0]:
                steps.append(block)
        elif _is_linear(op, _live_mask(op, live)):
            steps.append(_Linear(op))
        elif op.name in _MAX_OPS and len(op.ins) == 1:
            steps.append(_Max(op))
        elif op.name in _ELEMENTWISE | _BLOCK_EXTRA:
            raise _unsupported(op, "it combines activations computed along different paths "
                                   "(e.g. a product of two activations, as in gating)")
        else:
            raise _unsupported(op, "no DeepLIFT rule for this operation on activations")
    return Plan(len(leaves), flat.consts, tuple(op for op in flat.ops if op.outs[0] not in live),
                tuple(steps), x_id, outputs[0])


def _live_mask(op: _Op, live: set[int]) -> list[bool]:
    return [isinstance(a, int) and a in live for a in op.ins]


def _live_ins(op: _Op, live: set[int]) -> list[int]:
    return [a for a, is_live in zip(op.ins, _live_mask(op, live)) if is_live]


def _nonlinear_blocks(live_ops: list[_Op], live: set[int], x_id: int, avals: dict[int, Any],
                      output: Atom) -> list[_Block]:
    """The nonlinear blocks of the live program.

    Each block-eligible operation whose live operands all stem from one source tensor joins
    that source's group. A group must give back tensors of its source's shape; when one of its
    outputs has another shape (e.g. global pooling after a ReLU), the operation that first
    changed the shape is split off and the grouping is redone. Groups of linear operations
    only are no blocks.
    """
    producer = {out: i for i, op in enumerate(live_ops) for out in op.outs}
    returned = {output} if isinstance(output, int) else set()
    split: set[int] = set()
    while True:
        source = {x_id: x_id}
        for i, op in enumerate(live_ops):
            sources = {source[a] for a in _live_ins(op, live)}
            joins = (i not in split and len(sources) == 1 and len(op.outs) == 1
                     and op.name in _ELEMENTWISE | _BLOCK_EXTRA | set(_CUSTOM_CALLS))
            for out in op.outs:
                source[out] = sources.pop() if joins else out
        groups: dict[int, list[_Op]] = {}
        for op in live_ops:
            if source[op.outs[0]] != op.outs[0]:
                groups.setdefault(source[op.outs[0]], []).append(op)
        exits: dict[int, list[int]] = {}
        for src, ops in groups.items():
            inside = {op.outs[0] for op in ops}
            used = returned | {a for op in live_ops if op.outs[0] not in inside
                               for a in _live_ins(op, live)}
            exits[src] = sorted(inside & used)
            wrong = [v for v in exits[src] if avals[v].shape != avals[src].shape]
            if wrong:
                split.add(_first_reshape(src, wrong[0], live_ops, live, producer, source, avals))
                break
        else:
            break

    blocks = []
    for src, ops in groups.items():
        if all(_is_linear(op, _live_mask(op, live)) for op in ops):
            continue
        entry = src
        while True:  # leave leading single-input linear steps (bias additions) outside
            users = [op for op in ops if entry in _live_ins(op, live)]
            head = users[0] if len(users) == 1 else None
            if (head is None or head.name not in _ELEMENTWISE
                    or len(_live_ins(head, live)) != 1
                    or not _is_linear(head, _live_mask(head, live))
                    or head.outs[0] in exits[src]):
                break
            ops.remove(head)
            entry = head.outs[0]
        inside = {entry} | {op.outs[0] for op in ops}
        consts = sorted({a for op in ops for a in op.ins
                         if isinstance(a, int) and a not in inside})
        blocks.append(_Block(entry, tuple(ops), tuple(exits[src]), tuple(consts)))
    return blocks


def _first_reshape(src: int, exit_id: int, live_ops: list[_Op], live: set[int],
                   producer: dict[int, int], source: dict[int, int],
                   avals: dict[int, Any]) -> int:
    """Index of the operation on the way from ``src`` to ``exit_id`` that changed the shape."""
    i = producer[exit_id]
    while True:
        back = [a for a in _live_ins(live_ops[i], live) if a != src and source[a] == src
                and avals[a].shape != avals[src].shape]
        if not back:
            return i
        i = producer[back[0]]


@partial(jax.jit, static_argnames=("plan",))
def _summed_contributions(plan: Plan, params: Any, x: jax.Array, refs: jax.Array,
                          outputs: jax.Array) -> jax.Array:
    """Σ over reference rows b of multipliers(b) × (x − b), for each output: (K, *x.shape)."""

    def per_reference(b: jax.Array) -> jax.Array:
        (out_x, _), pullback = jax.vjp(lambda u, v: plan.pair(params, u, v), x[None], b[None])

        def one_output(k: jax.Array) -> jax.Array:
            # as shap: the summed output of both sides, multipliers of the reference side
            onehot = jax.nn.one_hot(k, out_x.shape[1], dtype=out_x.dtype)[None]
            return pullback((onehot, onehot))[1][0]

        return jax.vmap(one_output)(outputs) * (x - b)

    return jnp.sum(jax.vmap(per_reference)(refs), axis=0)


def image_attributions(plan: Plan, params: Any, x: np.ndarray, background: np.ndarray,
                       outputs: np.ndarray, *, chunk: int) -> np.ndarray:
    """DeepLIFT attributions of outputs ``outputs`` (K,) for one input ``x``: (K, *x.shape).

    The background is processed ``chunk`` rows at a time (one compiled shape: the last chunk
    is padded with copies of x, which contribute exactly zero); results do not depend on it.
    """
    n_chunks = -(-len(background) // chunk)
    padding = np.broadcast_to(x, (n_chunks * chunk - len(background), *x.shape))
    refs = np.concatenate([background, padding])
    total = sum(_summed_contributions(plan, params, x, refs[i:i + chunk], outputs)
                for i in range(0, len(refs), chunk))
    return np.asarray(total) / len(background)
