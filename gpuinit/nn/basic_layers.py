"""Basic layers: Dense, Activation, Dropout, Flatten, Embedding."""

from __future__ import annotations

import numpy as np

from .. import ops
from ..errors import ShapeError
from ..parameter import Parameter
from .block import Block


class Dense(Block):
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
    """

    def __init__(self, units, activation=None, use_bias=True, flatten=True, dtype="float32",
                 weight_initializer=None, bias_initializer="zeros", in_units=0, **kwargs):
        super().__init__(**kwargs)
        if activation is not None:
            ops.activation(np.zeros(1, np.float32), activation)  # reject unknown names now
        self._units, self._flatten, self._act = int(units), flatten, activation
        self.weight = Parameter("weight", shape=(units, in_units), dtype=dtype,
                                init=weight_initializer, role="weight")
        self.bias = Parameter("bias", shape=(units,), dtype=dtype, init=bias_initializer,
                              role="bias") if use_bias else None

    def forward(self, x):
        if self._flatten and x.ndim != 2:
            x = x.reshape(x.shape[0], -1)
        in_units = x.shape[-1]
        self._fix_shape(self.weight, (self._units, in_units),
                        f"expected inputs with {self.weight.shape[1] or 'any number of'} features "
                        f"(in_units), got input of shape {tuple(x.shape)}")
        y = ops.dense(x, self._value(self.weight, x), self._value(self.bias, x))
        return ops.activation(y, self._act) if self._act else y

    def _extra_repr(self) -> str:
        in_units = self.weight.shape[1] or None
        return f"{in_units} -> {self._units}, {'Activation(' + self._act + ')' if self._act else 'linear'}"


class Activation(Block):
    """An element-wise activation: relu, sigmoid, tanh, softrelu, softsign, gelu, silu."""

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        ops.activation(np.zeros(1, np.float32), activation)
        self._act = activation

    @classmethod
    def _alias(cls) -> str:
        return "activation"

    def forward(self, x):
        return ops.activation(x, self._act)

    def _extra_repr(self) -> str:
        return self._act


class Dropout(Block):
    """Dropout; gpuinit runs inference only, so it passes its input through unchanged.

    Args:
        rate: fraction of inputs that training would drop.
    """

    def __init__(self, rate, axes=(), **kwargs):
        super().__init__(**kwargs)
        if not 0 <= rate < 1:
            raise ShapeError(f"Dropout rate must be in [0, 1), got {rate!r}")
        self._rate = rate

    def forward(self, x):
        return x

    def _extra_repr(self) -> str:
        return f"p = {self._rate}"


class Flatten(Block):
    """Flatten all but the first axis: ``(N, ...) -> (N, -1)``."""

    def forward(self, x):
        return x.reshape(x.shape[0], -1)


class Embedding(Block):
    """A lookup table: integer indices to rows of ``weight`` (``input_dim`` x ``output_dim``).

    Args:
        input_dim: vocabulary size.
        output_dim: size of each vector.
        dtype: the weight's dtype.
        weight_initializer: the weight's own initializer.
    """

    def __init__(self, input_dim, output_dim, dtype="float32", weight_initializer=None, **kwargs):
        super().__init__(**kwargs)
        self._dims = (int(input_dim), int(output_dim))
        self.weight = Parameter("weight", shape=self._dims, dtype=dtype,
                                init=weight_initializer, role="weight")

    def forward(self, x):
        return ops.take(self._value(self.weight, x), x)

    def _extra_repr(self) -> str:
        return f"{self._dims[0]} -> {self._dims[1]}, {self.weight.dtype}"
