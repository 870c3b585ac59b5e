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
``negative_slope``        0.01 (PReLU's ``negative_slope_init``)
========================  ==========================================================================

A kernel of more than 2 dimensions is ambiguous from its shape alone: Flax's ``DenseGeneral`` with
features ``(a, b)`` on ``in`` features makes an ``(in, a, b)`` kernel and initializes it as the
``(in, a * b)`` matrix (fan-in ``in``), where a 1-D convolution's ``(k, in, out)`` has fan-in
``k * in``. So such a kernel gets the convolution's fans only where its module's name says it is
one (linen's ``Conv_0``, ``ConvTranspose_0``, ``ConvLocal_0``, or a name with ``conv`` as a word
of it: ``conv1``, ``stem_conv``, ``UpConv``, ``deconv``, not ``convert``; and the ``ih``/``hh``
convolutions of ``ConvLSTMCell``); attention's ``query``, ``key`` and ``value`` kernels
``(in, heads, head_dim)`` take ``in_axis=0`` and the other axes as the output, and its ``out``
kernel ``(heads, head_dim, out)`` (beside them) takes the last axis as the output and the others as
the input. Any other such kernel is refused with an error that gives the rule to pass.

Layers stacked by ``nn.scan``, ``nn.vmap`` (``variable_axes={'params': 0}``) or ``nnx.vmap`` carry
their copies on leading axes, which are neither fan: Flax draws each copy as the layer alone.
gpuinit counts leading axes as stacked (``batch_axis``) where the tree shows them: attention's
kernels beyond 3 dimensions (Flax's are always 3), an ``embedding`` beyond 2, a convolution's bias
beyond 1, a kernel of linen's ``Dense_N`` beyond 2, and, for any kernel, a normalization's ``scale``, ``mean`` or ``var`` beyond 1 dimension in
its own module or the nearest enclosing module that holds one (a scanned transformer block's
LayerNorm, a scanned convolution's BatchNorm), and only where every leaf in that enclosing module
starts with the same sizes, as stacking makes them. A stacked Dense kernel
``(L, in, out)`` without such a sign is refused as ambiguous; a stacked recurrent cell's hidden
kernel is refused (each copy would need its own orthogonal matrix).

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
matches wins, and every rule must match some leaf. A variance-scaling initializer given without
fan axes (``KaimingNormal()``, ``Xavier()``, ``'kaiming_normal'``) reads JAX's ``(..., in, out)``
layout here (``in_axis=-2, out_axis=-1``), not gpuinit's ``(out, in, *kernel)``; pass its axes
(``VarianceScaling(..., in_axis=..., out_axis=...)`` or ``.with_axes(...)``) for any other layout.
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
            "var": ONES, "negative_slope": gpuinit_init.Constant(0.01)}  # PReLU's negative_slope_init
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


def _lecun(in_axis, out_axis, stacked: int = 0):
    """Flax's lecun_normal with these fan axes, over ``stacked`` leading axes of stacked copies."""
    if not stacked:
        if (in_axis, out_axis) == (-2, -1):
            return LECUN_NORMAL
        return gpuinit_init.VarianceScaling(1.0, "fan_in", "truncated_normal", in_axis=in_axis, out_axis=out_axis)
    return gpuinit_init.VarianceScaling(1.0, "fan_in", "truncated_normal", in_axis=in_axis, out_axis=out_axis,
                                        batch_axis=tuple(range(stacked)))


def _module_path(path: str, up: int) -> str:
    return "/".join(path.split("/")[:-up])


def sub_modules(leaves) -> dict:
    """``{module path: the names of its sub-modules that hold leaves}``: a cell's or attention's layout."""
    out = defaultdict(set)
    for leaf in leaves:
        if leaf.parent:
            out[_module_path(leaf.path, 2)].add(leaf.parent)
    return out


# Leaves whose rank Flax fixes, so that more dimensions are stacked copies: a normalization's
# per-feature statistics and scale (1-D: LayerNorm, RMSNorm, BatchNorm, GroupNorm).
NORM_LEAVES = ("scale", "mean", "var")


def stacked_signs(leaves) -> dict:
    """``{module path: {leading shape}}``: the leading axes that normalization leaves (see
    :data:`NORM_LEAVES`) directly inside each module's sub-modules show to be stacked copies
    (``()`` for a 1-D leaf: not stacked)."""
    out = defaultdict(set)
    for leaf in leaves:
        if leaf.name in NORM_LEAVES and len(leaf.shape) >= 1 and leaf.parent:
            out[_module_path(leaf.path, 2)].add(tuple(leaf.shape[:-1]))
    return out


def _stacked_axes(leaf: Leaf, own: dict, signs: dict, common: dict) -> int:
    """How many leading axes of ``leaf`` (a kernel) are stacked copies: shown by its module's own
    ``bias`` of a convolution (``own``, its leaves' shapes by name; not a ``ConvLocal``'s, whose
    bias is per position), else by the nearest enclosing module holding normalization leaves;
    and in both cases only where every leaf beside it, in the enclosing module, starts with the
    same sizes (``common``: each module path's shared leading shape), as stacking makes them.
    0 where nothing shows it."""
    container = _module_path(leaf.path, 2)
    bias = own.get("bias")
    if bias is not None and _is_conv(leaf.parent) and "local" not in _words(leaf.parent) and len(bias) > 1:
        lead = tuple(bias[:-1])  # the kernel is below the container: its shape starts with the shared sizes
        return len(lead) if common.get(container, ())[:len(lead)] == lead else 0
    level = _module_path(leaf.path, 1)
    while level:
        level = _module_path(level, 1) if "/" in level else ""
        found = signs.get(level)
        if found:
            if len(found) == 1:
                lead = next(iter(found))
                if lead and len(leaf.shape) - len(lead) >= 2 and common.get(level, ())[:len(lead)] == lead:
                    return len(lead)
            return 0
    return 0


def common_leading_shapes(leaves) -> dict:
    """``{module path: the leading sizes every leaf below it shares}``."""
    out: dict = {}
    for leaf in leaves:
        shape = tuple(leaf.shape)
        parts = leaf.path.split("/")[:-1]
        for depth in range(len(parts) + 1):
            level = "/".join(parts[:depth])
            have = out.get(level)
            if have is None:
                out[level] = shape
            else:
                n = 0
                while n < min(len(have), len(shape)) and have[n] == shape[n]:
                    n += 1
                out[level] = have[:n]
    return out


def _is_recurrent_matrix(shape) -> bool:
    return len(shape) == 2 and shape[0] > 0 and shape[1] in (shape[0], 3 * shape[0], 4 * shape[0])


# A module name's words: split at non-letters and at camel-case humps ("UpConv" -> Up, Conv).
_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])")
# What may follow "conv" in one word: convtranspose, convblock; not convert, convex.
_CONV_TAILS = ("", "s", "olution", "transpose", "local", "block", "layer", "net", "bn", "proj")


def _words(name: str) -> list:
    return [word.lower() for word in _WORD.findall(name or "")]


# linen's automatic name for a Dense (not a DenseGeneral): its kernel is always (in, out).
_DENSE_NAME = re.compile(r"Dense_\d+$")


def _is_conv(name: str) -> bool:
    """Whether the name says convolution: a word of it ends with "conv" (Conv_0, UpConv, conv1,
    stem_conv, dwconv, deconv) or is "conv" with a known tail (ConvTranspose_0, convblock); not
    convert_proj or convex."""
    return any(word.endswith("conv") or (word.startswith("conv") and word[4:] in _CONV_TAILS)
               for word in _words(name))


class TreeContext:
    """What Flax's defaults read from the whole tree beside a leaf's own name and shape: the
    sub-modules of each module, each module's leaves, and the signs of stacked layers."""

    def __init__(self, leaves):
        self.modules = sub_modules(leaves)
        self.signs = stacked_signs(leaves)
        self.common = common_leading_shapes(leaves)
        self.own = defaultdict(dict)
        for leaf in leaves:
            self.own[_module_path(leaf.path, 1)][leaf.name] = tuple(leaf.shape)


def flax_default(leaf: Leaf, modules=None):
    """Flax's default initializer for ``leaf``, or None where Flax's defaults have no such leaf name.

    Goes by the leaf's name, its module's name, the names of the modules beside it, and the signs
    of stacked layers (``modules``: a :class:`TreeContext` of the whole tree, or the
    ``{module path: sub-module names}`` of :func:`sub_modules`; by default, ``leaf`` alone).

    Raises:
        InitializerError: a kernel of more than 2 dimensions that is neither a convolution's nor
            attention's nor shown to be stacked (see the module docstring); the message gives the
            rule to pass.
    """
    context = modules if isinstance(modules, TreeContext) else TreeContext([leaf])
    if isinstance(modules, dict):
        context.modules = modules
    siblings = frozenset(context.modules.get(_module_path(leaf.path, 2), ()))
    recurrent, ones_bias = RECURRENT_CELLS.get(siblings, ((), ()))
    ndim = len(leaf.shape)
    if leaf.name == "bias" and leaf.parent in ones_bias:
        return ONES
    if leaf.name == "embedding" and ndim > 2:  # Flax's Embed tables are 2-D: more are stacked copies
        return gpuinit_init.VarianceScaling(1.0, "fan_in", "normal", in_axis=-2, out_axis=-2,
                                            batch_axis=tuple(range(ndim - 2)))
    if leaf.name != "kernel":
        return DEFAULTS.get(leaf.name)
    if leaf.parent in recurrent and _is_recurrent_matrix(leaf.shape):
        return ORTHOGONAL
    attention_out = leaf.parent == ATTENTION_OUT and siblings.issuperset(ATTENTION_PROJECTIONS)
    if ndim >= 3 and (leaf.parent in ATTENTION_PROJECTIONS or attention_out):
        stacked = ndim - 3  # Flax's attention kernels are 3-D: (in, heads, head_dim), (heads, head_dim, out)
        return (_lecun(stacked, (-2, -1), stacked) if leaf.parent in ATTENTION_PROJECTIONS
                else _lecun((-3, -2), -1, stacked))
    if _DENSE_NAME.match(leaf.parent or ""):  # linen's Dense: its kernel is (in, out), more are stacked copies
        stacked = max(ndim - 2, 0)
    else:
        stacked = _stacked_axes(leaf, context.own[_module_path(leaf.path, 1)], context.signs, context.common)
    if leaf.parent in recurrent and stacked and _is_recurrent_matrix(leaf.shape[stacked:]):
        raise InitializerError(
            f"{WHERE}: leaf {leaf.path!r} of shape {leaf.shape!r} is the hidden kernel of {stacked} stacked "
            "recurrent cells, which Flax gives an orthogonal matrix each; gpuinit's Orthogonal does not draw "
            f"stacked matrices yet. Pass a rule for it, e.g. rules={{{re.escape(leaf.path) + '$'!r}: "
            f"gpuinit.init.VarianceScaling(1.0, 'fan_in', 'truncated_normal', in_axis=-2, out_axis=-1, "
            f"batch_axis={tuple(range(stacked))!r})}} (lecun_normal per copy, not orthogonal)")
    if ndim - stacked <= 2 or _is_conv(leaf.parent) or siblings == CONV_CELL:
        return _lecun(-2, -1, stacked)
    pattern = re.escape(f"{leaf.parent}/kernel") + "$" if leaf.parent else "kernel$"
    raise InitializerError(
        f"{WHERE}: leaf {leaf.path!r} is a kernel of shape {leaf.shape!r}, {ndim} dimensions, in a module whose "
        f"name {leaf.parent!r} says neither convolution nor attention, so its fans are ambiguous: Flax's "
        f"DenseGeneral initializes an (in, a, b) kernel as the (in, a * b) matrix (fan_in = in), a convolution's "
        f"(k, in, out) kernel has fan_in = k * in, and a Dense stacked by nn.scan or vmap, (copies, in, out), "
        f"has fan_in = in. gpuinit does not guess; pass a rule with the input and output axes: for a "
        f"DenseGeneral with one input axis rules={{{pattern!r}: gpuinit.init.VarianceScaling(1.0, 'fan_in', "
        f"'truncated_normal', in_axis=0, out_axis={tuple(range(1, ndim))!r})}} (with axis=(-2, -1), "
        f"in_axis=(0, 1) and the rest out); for stacked Dense layers in_axis=-2, out_axis=-1, "
        f"batch_axis={tuple(range(ndim - 2))!r}; for a convolution rules={{{pattern!r}: "
        "gpuinit.jax.LECUN_NORMAL} (in_axis=-2, out_axis=-1), or name the convolution's module with 'conv'")


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
        if isinstance(initializer, gpuinit_init.VarianceScaling) and not initializer.has_axes:
            # Presets (KaimingNormal(), Xavier(), 'kaiming_normal') read gpuinit's (out, in, *kernel)
            # layout unless told otherwise; JAX's kernels are (..., in, out).
            initializer = initializer.with_axes(in_axis=-2, out_axis=-1)
        out.append((pattern, compiled, initializer))
    return out


def _path_pattern(leaf: Leaf) -> str:
    """A pattern that matches ``leaf``'s whole path (a name alone, ``'0$'``, would also match ``'10'``)."""
    return "^" + re.escape(leaf.path) + "$"


def initializers_for(leaves, rules=None) -> list:
    """The initializer of each leaf: the first rule whose pattern its path contains, else Flax's default.

    Raises:
        ArgumentTypeError, ArgumentError: malformed rules; a rule that matches no leaf.
        InitializerError: a leaf that no rule matches and that has no Flax default, or whose
            default is ambiguous (a kernel of more than 2 dimensions; see :func:`flax_default`).
    """
    compiled = _rules(rules)
    context = TreeContext(leaves)
    used = [False] * len(compiled)
    out, uncovered = [], []
    for leaf in leaves:
        chosen = None
        for i, (_, pattern, initializer) in enumerate(compiled):
            if pattern.search(leaf.path):
                used[i] = True
                chosen = initializer if chosen is None else chosen
        if chosen is None:
            chosen = flax_default(leaf, context)
        if chosen is None:
            uncovered.append(leaf)
        out.append(chosen)
    if uncovered:
        listing = ", ".join(f"{leaf.path!r} (shape {leaf.shape!r})" for leaf in uncovered[:8])
        more = f" and {len(uncovered) - 8} more" if len(uncovered) > 8 else ""
        what = f"leaf {listing}" if len(uncovered) == 1 else f"{len(uncovered)} leaves: {listing}{more}"
        example = ", ".join(f"{_path_pattern(leaf)!r}: gpuinit.init.Normal(0.02)" for leaf in uncovered[:2])
        raise InitializerError(
            f"{WHERE}: no initializer for {what}. Flax's defaults cover leaves named {sorted(DEFAULTS)}, and no "
            f"rule matches; pass rules={{{example}}} (or other initializers: gpuinit.init.Constant(0.25), "
            "'zeros')")
    unused = [pattern for (pattern, _, _), hit in zip(compiled, used) if not hit]
    if unused:
        example = leaves[0].path if leaves else ""
        raise ArgumentError(f"{WHERE}: rule {unused[0]!r} matches no leaf (patterns are searched in paths such as "
                            f"{example!r}); fix the pattern or drop the rule")
    return out
