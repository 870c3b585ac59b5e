"""Which initializer fills each leaf: the caller's rules by path, else Flax's defaults by leaf name.

Flax's layers name their parameters, and their defaults go with the names (kernels are
``(..., in, out)``):

========================  ==========================================================================
leaf name                 initializer (gpuinit's, with Flax's numbers)
========================  ==========================================================================
``kernel``                ``lecun_normal``: variance scaling 1 over fan-in, a normal truncated at 2
                          std, fans from ``in_axis=-2, out_axis=-1`` (a Dense matrix, a convolution's
                          ``(*window, in, out)``); for kernels of more than 2 dimensions and recurrent
                          cells, see below
``bias``                  zeros
``embedding``             ``Embed``'s ``variance_scaling(1.0, 'fan_in', 'normal', out_axis=0)``:
                          N(0, 1 / features)
``scale``                 ones (LayerNorm, RMSNorm, BatchNorm, GroupNorm)
``mean`` / ``var``        zeros / ones (BatchNorm's batch statistics)
========================  ==========================================================================

A kernel of more than 2 dimensions is ambiguous from its shape alone: Flax's ``DenseGeneral`` with
features ``(a, b)`` on ``in`` features makes an ``(in, a, b)`` kernel and initializes it as the
``(in, a * b)`` matrix (fan-in ``in``), where a 1-D convolution's ``(k, in, out)`` has fan-in
``k * in``. So such a kernel gets the convolution's fans only where its module's name says it is
one (linen's ``Conv_0``, ``ConvTranspose_0``, ``ConvLocal_0``, or any name containing ``conv``, in
any case, and the ``ih``/``hh`` convolutions of ``ConvLSTMCell``); attention's ``query``, ``key``
and ``value`` kernels ``(in, heads, head_dim)`` take ``in_axis=0`` and the other axes as the output,
and its ``out`` kernel ``(heads, head_dim, out)`` (beside them) takes the last axis as the output and
the others as the input. Any other such kernel is refused with an error that gives the rule to pass.

Flax's recurrent cells give their hidden-to-hidden kernels ``orthogonal()``: a cell is recognized by
the exact set of its sub-modules' names, and only when its recurrent kernels are ``(H, H)`` or
``(H, k * H)`` matrices (LSTM, GRU, MGU, SimpleCell), so a user's module that merely has a child named
``h`` keeps ``lecun_normal``:

- linen ``LSTMCell`` and ``OptimizedLSTMCell`` (``ii``, ``if``, ``ig``, ``io``, ``hi``, ``hf``,
  ``hg``, ``ho``), nnx ``LSTMCell`` (``if_`` for ``if``): ``hi``, ``hf``, ``hg``, ``ho``;
- linen ``GRUCell`` (``ir``, ``iz``, ``in``, ``hr``, ``hz``, ``hn``): ``hr``, ``hz``, ``hn``;
- linen ``MGUCell`` (``if``, ``in``, ``hf``, ``hn``): ``hf``, ``hn``, and ``if``'s bias is ones;
- linen ``SimpleCell`` (``i``, ``h``): ``h``;
- nnx ``OptimizedLSTMCell``, ``GRUCell`` and ``SimpleCell`` (``dense_i``, ``dense_h``): ``dense_h``,
  its ``(H, k * H)`` matrix whole, as Flax does.

The input kernels keep ``lecun_normal`` and the biases zeros, as in Flax.

A rule maps a regular expression, searched in the leaf's path (``params/Dense_0/kernel``), to a
gpuinit initializer (an instance, a class, or a name such as ``'zeros'``); the first rule that
matches wins, and every rule must match some leaf.
"""

from __future__ import annotations

import re
from collections import defaultdict

from .. import init as gpuinit_init
from ..errors import ArgumentError, ArgumentTypeError, InitializerError
from .leaves import WHERE, Leaf

# Flax's lecun_normal: jax.nn.initializers.variance_scaling(1.0, "fan_in", "truncated_normal").
LECUN_NORMAL = gpuinit_init.VarianceScaling(1.0, "fan_in", "truncated_normal", in_axis=-2, out_axis=-1)
# Flax's default_embed_init: variance_scaling(1.0, "fan_in", "normal", out_axis=0).
EMBED = gpuinit_init.VarianceScaling(1.0, "fan_in", "normal", in_axis=-2, out_axis=0)
ZEROS, ONES = gpuinit_init.Zero(), gpuinit_init.One()

# Flax's orthogonal(): a normal draw's Q, scale 1; columns orthonormal for a tall or square
# kernel (K^T K = I), rows for a wide one, as jax.nn.initializers.orthogonal(column_axis=-1) does.
ORTHOGONAL = gpuinit_init.Orthogonal(1.0, "normal")

DEFAULTS = {"kernel": LECUN_NORMAL, "bias": ZEROS, "embedding": EMBED, "scale": ONES, "mean": ZEROS,
            "var": ONES}
# The projections Flax's attention makes with DenseGeneral from one input axis to (heads, head_dim),
# and the one back from (heads, head_dim) to the features, named beside them.
ATTENTION_PROJECTIONS = ("query", "key", "value")
ATTENTION_OUT = "out"

# Flax's recurrent cells by the exact set of their sub-modules' names: (the recurrent sub-modules,
# whose kernels are orthogonal; the sub-modules whose bias is ones).
RECURRENT_CELLS = {
    frozenset({"ii", "if", "ig", "io", "hi", "hf", "hg", "ho"}): ({"hi", "hf", "hg", "ho"}, set()),
    frozenset({"ii", "if_", "ig", "io", "hi", "hf", "hg", "ho"}): ({"hi", "hf", "hg", "ho"}, set()),
    frozenset({"ir", "iz", "in", "hr", "hz", "hn"}): ({"hr", "hz", "hn"}, set()),
    frozenset({"if", "in", "hf", "hn"}): ({"hf", "hn"}, {"if"}),  # MGUCell: forget_bias_init is ones
    frozenset({"i", "h"}): ({"h"}, set()),
    frozenset({"dense_i", "dense_h"}): ({"dense_h"}, set()),
}
# linen's ConvLSTMCell: two convolutions, whose names do not say so.
CONV_CELL = frozenset({"ih", "hh"})


def _projection(ndim: int):
    return gpuinit_init.VarianceScaling(1.0, "fan_in", "truncated_normal", in_axis=0,
                                        out_axis=tuple(range(1, ndim)))


def _flattened(ndim: int):
    return gpuinit_init.VarianceScaling(1.0, "fan_in", "truncated_normal", in_axis=tuple(range(ndim - 1)),
                                        out_axis=-1)


def _module_path(path: str, up: int) -> str:
    return "/".join(path.split("/")[:-up])


def sub_modules(leaves) -> dict:
    """``{module path: the names of its sub-modules that hold leaves}``: a cell's or attention's layout."""
    out = defaultdict(set)
    for leaf in leaves:
        if leaf.parent:
            out[_module_path(leaf.path, 2)].add(leaf.parent)
    return out


def _is_recurrent_matrix(shape) -> bool:
    return len(shape) == 2 and shape[0] > 0 and shape[1] in (shape[0], 3 * shape[0], 4 * shape[0])


def _is_conv(name: str) -> bool:
    return "conv" in name.lower()


def flax_default(leaf: Leaf, modules: dict | None = None):
    """Flax's default initializer for ``leaf``, or None where Flax's defaults have no such leaf name.

    Goes by the leaf's name, its module's name, and the names of the modules beside it
    (``modules``, from :func:`sub_modules` of the whole tree; by default, ``leaf``'s alone).

    Raises:
        InitializerError: a kernel of more than 2 dimensions that is neither a convolution's nor
            attention's (see the module docstring); the message gives the rule to pass.
    """
    modules = sub_modules([leaf]) if modules is None else modules
    siblings = frozenset(modules.get(_module_path(leaf.path, 2), ()))
    recurrent, ones_bias = RECURRENT_CELLS.get(siblings, ((), ()))
    if leaf.name == "bias" and leaf.parent in ones_bias:
        return ONES
    if leaf.name != "kernel":
        return DEFAULTS.get(leaf.name)
    ndim = len(leaf.shape)
    if leaf.parent in recurrent and _is_recurrent_matrix(leaf.shape):
        return ORTHOGONAL
    if ndim <= 2 or _is_conv(leaf.parent) or siblings == CONV_CELL:
        return LECUN_NORMAL
    if leaf.parent in ATTENTION_PROJECTIONS:
        return _projection(ndim)
    if leaf.parent == ATTENTION_OUT and siblings.issuperset(ATTENTION_PROJECTIONS):
        return _flattened(ndim)
    pattern = re.escape(f"{leaf.parent}/kernel") + "$" if leaf.parent else "kernel$"
    raise InitializerError(
        f"{WHERE}: leaf {leaf.path!r} is a kernel of shape {leaf.shape!r}, {ndim} dimensions, in a module whose "
        f"name {leaf.parent!r} says neither convolution nor attention, so its fans are ambiguous: Flax's "
        f"DenseGeneral initializes an (in, a, b) kernel as the (in, a * b) matrix (fan_in = in), a convolution's "
        f"(k, in, out) kernel has fan_in = k * in. gpuinit does not guess; pass a rule with the input and "
        f"output axes, for a DenseGeneral with one input axis rules={{{pattern!r}: gpuinit.init.VarianceScaling("
        f"1.0, 'fan_in', 'truncated_normal', in_axis=0, out_axis={tuple(range(1, ndim))!r})}}, for a "
        f"convolution rules={{{pattern!r}: gpuinit.jax.LECUN_NORMAL}} (in_axis=-2, out_axis=-1), or name the "
        "convolution's module with 'conv'")


def _rules(rules) -> list:
    """``rules`` as ``[(text, compiled pattern, initializer)]``."""
    if rules is None:
        return []
    if isinstance(rules, dict):
        items = list(rules.items())
    elif isinstance(rules, (list, tuple)) and all(isinstance(r, (list, tuple)) and len(r) == 2 for r in rules):
        items = list(rules)
    else:
        raise ArgumentTypeError(f"{WHERE}: rules must be a dict {{pattern: initializer}} or a list of "
                                f"(pattern, initializer) pairs, got {type(rules).__name__} {rules!r}; e.g. "
                                "rules={'embedding$': gpuinit.init.Normal(0.02)}")
    out = []
    for pattern, spec in items:
        if not isinstance(pattern, str):
            raise ArgumentTypeError(f"{WHERE}: a rule's pattern must be a string (a regular expression "
                                    f"searched in the leaf's path), got {pattern!r}")
        try:
            compiled = re.compile(pattern)
        except re.error as exc:
            raise ArgumentError(f"{WHERE}: rule pattern {pattern!r} is not a valid regular expression: {exc}; "
                                "escape special characters with re.escape()") from None
        if callable(spec) and not isinstance(spec, (gpuinit_init.Initializer, type)):
            raise ArgumentTypeError(
                f"{WHERE}: rule {pattern!r} gives {spec!r}, a function; rules take gpuinit initializers "
                "(gpuinit.init.Normal(0.02), gpuinit.init.VarianceScaling(..., in_axis=-2, out_axis=-1), "
                "'zeros'), whose numbers come from the leaf's own stream: a JAX initializer function draws "
                "from JAX's generator instead")
        try:
            initializer = gpuinit_init.create(spec)
        except InitializerError as exc:
            raise InitializerError(f"{WHERE}: rule {pattern!r}: {exc}") from None
        out.append((pattern, compiled, initializer))
    return out


def initializers_for(leaves, rules=None) -> list:
    """The initializer of each leaf: the first rule whose pattern its path contains, else Flax's default.

    Raises:
        ArgumentTypeError, ArgumentError: malformed rules; a rule that matches no leaf.
        InitializerError: a leaf that no rule matches and that has no Flax default, or whose
            default is ambiguous (a kernel of more than 2 dimensions; see :func:`flax_default`).
    """
    compiled = _rules(rules)
    modules = sub_modules(leaves)
    used = [False] * len(compiled)
    out = []
    for leaf in leaves:
        chosen = None
        for i, (_, pattern, initializer) in enumerate(compiled):
            if pattern.search(leaf.path):
                used[i] = True
                chosen = initializer if chosen is None else chosen
        if chosen is None:
            chosen = flax_default(leaf, modules)
        if chosen is None:
            raise InitializerError(
                f"{WHERE}: no initializer for leaf {leaf.path!r} (shape {leaf.shape!r}): Flax's defaults cover "
                f"leaves named {sorted(DEFAULTS)}, and no rule matches it; pass rules="
                f"{{{re.escape(leaf.name) + '$'!r}: gpuinit.init.Normal(0.02)}} or another initializer")
        out.append(chosen)
    unused = [pattern for (pattern, _, _), hit in zip(compiled, used) if not hit]
    if unused:
        example = leaves[0].path if leaves else ""
        raise ArgumentError(f"{WHERE}: rule {unused[0]!r} matches no leaf (patterns are searched in paths such as "
                            f"{example!r}); fix the pattern or drop the rule")
    return out
