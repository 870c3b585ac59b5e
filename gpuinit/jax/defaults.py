"""Which initializer fills each leaf: the caller's rules by path, else Flax's defaults by leaf name.

Flax's layers name their parameters, and their defaults go with the names (kernels are
``(..., in, out)``):

========================  ==========================================================================
leaf name                 initializer (gpuinit's, with Flax's numbers)
========================  ==========================================================================
``kernel``                ``lecun_normal``: variance scaling 1 over fan-in, a normal truncated at 2
                          std, fans from ``in_axis=-2, out_axis=-1``; the ``query``, ``key`` and
                          ``value`` kernels of attention (``(in, heads, head_dim)``, which Flax's
                          ``DenseGeneral`` initializes as an ``(in, heads * head_dim)`` matrix) take
                          ``in_axis=0`` and the other axes as the output
``bias``                  zeros
``embedding``             ``Embed``'s ``variance_scaling(1.0, 'fan_in', 'normal', out_axis=0)``:
                          N(0, 1 / features)
``scale``                 ones (LayerNorm, RMSNorm, BatchNorm, GroupNorm)
``mean`` / ``var``        zeros / ones (BatchNorm's batch statistics)
========================  ==========================================================================

A rule maps a regular expression, searched in the leaf's path (``params/Dense_0/kernel``), to a
gpuinit initializer (an instance, a class, or a name such as ``'zeros'``); the first rule that
matches wins, and every rule must match some leaf.
"""

from __future__ import annotations

import re

from .. import init as gpuinit_init
from ..errors import ArgumentError, ArgumentTypeError, InitializerError
from .leaves import WHERE, Leaf

# Flax's lecun_normal: jax.nn.initializers.variance_scaling(1.0, "fan_in", "truncated_normal").
LECUN_NORMAL = gpuinit_init.VarianceScaling(1.0, "fan_in", "truncated_normal", in_axis=-2, out_axis=-1)
# Flax's default_embed_init: variance_scaling(1.0, "fan_in", "normal", out_axis=0).
EMBED = gpuinit_init.VarianceScaling(1.0, "fan_in", "normal", in_axis=-2, out_axis=0)
ZEROS, ONES = gpuinit_init.Zero(), gpuinit_init.One()

DEFAULTS = {"kernel": LECUN_NORMAL, "bias": ZEROS, "embedding": EMBED, "scale": ONES, "mean": ZEROS,
            "var": ONES}
# The projections Flax's attention makes with DenseGeneral from one input axis to (heads, head_dim).
ATTENTION_PROJECTIONS = ("query", "key", "value")


def _projection(ndim: int):
    return gpuinit_init.VarianceScaling(1.0, "fan_in", "truncated_normal", in_axis=0,
                                        out_axis=tuple(range(1, ndim)))


def flax_default(leaf: Leaf):
    """Flax's default initializer for ``leaf`` (by its name, and its parent's for attention), or None."""
    if leaf.name == "kernel" and leaf.parent in ATTENTION_PROJECTIONS and len(leaf.shape) >= 3:
        return _projection(len(leaf.shape))
    return DEFAULTS.get(leaf.name)


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
        InitializerError: a leaf that no rule matches and that has no Flax default.
    """
    compiled = _rules(rules)
    used = [False] * len(compiled)
    out = []
    for leaf in leaves:
        chosen = None
        for i, (_, pattern, initializer) in enumerate(compiled):
            if pattern.search(leaf.path):
                used[i] = True
                chosen = initializer if chosen is None else chosen
        if chosen is None:
            chosen = flax_default(leaf)
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
