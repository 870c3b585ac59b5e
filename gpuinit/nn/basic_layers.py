"""Basic layers: Dense, Activation, Dropout, Flatten, Embedding."""

from __future__ import annotations

import math

import numpy as np

from .. import checks, ops
from ..backend import array_module_of
from ..errors import ArgumentError, ArgumentTypeError, GpuInitError
from ..meta import is_meta
from ..parameter import Parameter
from .block import HybridBlock


def _initializer(block, spec, what: str):
    """Check an initializer argument now, so a bad one is named with its layer."""
    if spec is None:
        return None
    from ..init import create
    try:
        create(spec)
    except GpuInitError as exc:
        raise type(exc)(f"{block._where()}: {what}: {exc}") from None
    return spec


class Dense(HybridBlock):
    """Fully connected layer: ``y = activation(x @ weight.T + bias)``.

    Args:
        units: output size.
        activation: name of an activation applied to the output (``'relu'``, ...), or None.
        use_bias: whether to add a bias.
        flatten: flatten inputs of more than two dimensions to ``(batch, -1)``; with False the
            layer applies to the last axis.
        dtype: the parameters' dtype.
        weight_initializer: the weight's own initializer (default: the one given to initialize).
        bias_initializer: the bias's own initializer.
        in_units: input size; 0 (unknown) defers initialization to the first forward pass.

    Raises:
        ArgumentError: an argument the layer cannot take (``units=0``, ``activation='bogus'``).
    """

    def __init__(self, units, activation=None, use_bias=True, flatten=True, dtype="float32",
                 weight_initializer=None, bias_initializer="zeros", in_units=0, **kwargs):
        super().__init__(**kwargs)
        where = self._where()
        # units=0 is accepted here, as Gluon accepts it (a layer built and never run); running it is refused
        units = checks.non_negative_int(units, "units", where, hint="pass the output size, e.g. Dense(256)")
        in_units = checks.non_negative_int(in_units, "in_units", where,
                                           hint="pass the input size, or 0 to infer it from the first input")
        if activation is not None:
            ops.check_activation(activation, where)
        use_bias = checks.flag(use_bias, "use_bias", where)
        self._units, self._act = units, activation
        self._flatten = checks.flag(flatten, "flatten", where)
        self.weight = Parameter("weight", shape=(units, in_units), dtype=dtype,
                                init=_initializer(self, weight_initializer, "weight_initializer"), role="weight")
        self.bias = Parameter("bias", shape=(units,), dtype=dtype,
                              init=_initializer(self, bias_initializer, "bias_initializer"),
                              role="bias") if use_bias else None

    def forward(self, x):
        self._input(x)
        if not self._units:
            raise ArgumentError(f"{self._where()}: units is 0, so the layer has no outputs and cannot run; "
                                "pass the output size, e.g. Dense(256)")
        if self._flatten and x.ndim != 2:
            x = x.reshape(x.shape[0], math.prod(x.shape[1:]))
        in_units = x.shape[-1]
        if in_units < 1:
            raise ArgumentError(f"{self._where()}: the input of shape {tuple(x.shape)} has no features "
                                "(its last dimension is 0); pass an input with at least one feature")
        self._fix_shape(self.weight, (self._units, in_units),
                        f"expected inputs with {self.weight.shape[1] or 'any number of'} features "
                        f"(in_units), got input of shape {tuple(x.shape)}")
        y = ops.dense(x, self._value(self.weight, x), self._value(self.bias, x))
        return ops.activation(y, self._act) if self._act else y

    def _extra_repr(self) -> str:
        in_units = self.weight.shape[1] or None
        return f"{in_units} -> {self._units}, {'Activation(' + self._act + ')' if self._act else 'linear'}"


class Activation(HybridBlock):
    """An element-wise activation: relu, sigmoid, tanh, softrelu, softsign, gelu, silu."""

    def __init__(self, activation, **kwargs):
        object.__setattr__(self, "_act_name", activation)  # read by _alias, before Block.__init__ names it
        super().__init__(**kwargs)
        self._act = ops.check_activation(activation, self._where())

    def _alias(self) -> str:
        name = getattr(self, "_act_name", None)  # Gluon names it after its function: relu0, tanh0
        return name if isinstance(name, str) and name.isidentifier() else "activation"

    def forward(self, x):
        self._input(x, min_ndim=0)
        return ops.activation(x, self._act)

    def _extra_repr(self) -> str:
        return self._act


class Dropout(HybridBlock):
    """Dropout; gpuinit runs inference only, so it passes its input through unchanged.

    Args:
        rate: fraction of inputs that training would drop, in ``[0, 1)``.
        axes: axes on which the same mask would be shared.
    """

    def __init__(self, rate, axes=(), **kwargs):
        super().__init__(**kwargs)
        self._rate = checks.real(rate, "rate", self._where(), minimum=0, below=1,
                                 hint="pass the fraction to drop, e.g. Dropout(0.5)")
        if isinstance(axes, (int, np.integer)) and not isinstance(axes, bool):
            axes = (axes,)
        if not isinstance(axes, (tuple, list)):
            raise ArgumentTypeError(f"{self._where()}: axes must be a tuple of integers, got {axes!r}")
        self._axes = tuple(checks.integer(a, "axes", self._where()) for a in axes)

    def forward(self, x):
        return x

    def _extra_repr(self) -> str:
        return f"p = {self._rate}"


class Flatten(HybridBlock):
    """Flatten all but the first axis: ``(N, ...) -> (N, -1)``."""

    def forward(self, x):
        self._input(x)
        return x.reshape(x.shape[0], math.prod(x.shape[1:]))


class Embedding(HybridBlock):
    """A lookup table: integer indices to rows of ``weight`` (``input_dim`` x ``output_dim``).

    Indices may be integers, or floats with integral values (as MXNet takes them); each must lie
    in ``[0, input_dim)``.

    Args:
        input_dim: vocabulary size.
        output_dim: size of each vector.
        dtype: the weight's dtype.
        weight_initializer: the weight's own initializer.
    """

    def __init__(self, input_dim, output_dim, dtype="float32", weight_initializer=None, **kwargs):
        super().__init__(**kwargs)
        where = self._where()
        self._dims = (checks.positive_int(input_dim, "input_dim", where, hint="pass the vocabulary size"),
                      checks.positive_int(output_dim, "output_dim", where, hint="pass the vector size"))
        self.weight = Parameter("weight", shape=self._dims, dtype=dtype,
                                init=_initializer(self, weight_initializer, "weight_initializer"), role="weight")

    def forward(self, x):
        self._input(x, min_ndim=0, what="indices")
        if not is_meta(x) and x.size:
            self._check_indices(x)
        return ops.take(self._value(self.weight, x), x)

    def _check_indices(self, x) -> None:
        xp = array_module_of(x)
        if x.dtype.kind == "b" or (x.dtype.kind not in "iu" and bool((x != xp.floor(x)).any())):
            raise ArgumentError(f"{self._where()}: indices must be whole numbers, got dtype {x.dtype} with "
                                "fractional or boolean values; pass integer indices")
        low, high = float(x.min()), float(x.max())
        if low < 0 or high >= self._dims[0]:
            raise ArgumentError(f"{self._where()}: indices must lie in [0, {self._dims[0]}) (input_dim), got "
                                f"values from {low:g} to {high:g}")

    def _extra_repr(self) -> str:
        return f"{self._dims[0]} -> {self._dims[1]}, {self.weight.dtype}"
