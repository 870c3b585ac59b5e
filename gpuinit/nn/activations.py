"""Activation layers with arguments or parameters: LeakyReLU, PReLU, ELU, SELU, Swish, GELU.

(``Activation('relu')`` and the other argument-free ones are in ``basic_layers``.)
"""

from __future__ import annotations

from .. import checks, ops
from ..parameter import Parameter
from .basic_layers import _initializer
from .block import HybridBlock


class LeakyReLU(HybridBlock):
    """``x`` where ``x >= 0``, else ``alpha * x``.

    Args:
        alpha: the slope below 0, at least 0.
    """

    def __init__(self, alpha, **kwargs):
        super().__init__(**kwargs)
        self._alpha = checks.real(alpha, "alpha", self._where(), minimum=0,
                                  hint="pass the slope for negative inputs, e.g. LeakyReLU(0.1)")

    def forward(self, x):
        self._input(x, min_ndim=0)
        return ops.leaky_relu(x, "leaky", slope=self._alpha)

    def _extra_repr(self) -> str:
        return f"{self._alpha}"


class PReLU(HybridBlock):
    """LeakyReLU with learned slopes ``alpha``: one, or one per channel (axis 1).

    He et al., "Delving Deep into Rectifiers", 2015.

    Args:
        alpha_initializer: the slopes' initializer (default ``Constant(0.25)``).
        in_channels: the number of slopes: 1 (shared) or the input's channels.
    """

    def __init__(self, alpha_initializer=None, in_channels=1, **kwargs):
        super().__init__(**kwargs)
        from ..init import Constant
        where = self._where()
        in_channels = checks.positive_int(in_channels, "in_channels", where,
                                          hint="pass 1 for one shared slope or the number of channels")
        spec = alpha_initializer if alpha_initializer is not None else Constant(0.25)
        self.alpha = Parameter("alpha", shape=(in_channels,), init=_initializer(self, spec, "alpha_initializer"),
                               role="default")

    def forward(self, x):
        self._input(x, min_ndim=0)
        return ops.leaky_relu(x, "prelu", gamma=self._value(self.alpha, x))


class ELU(HybridBlock):
    """``x`` where ``x > 0``, else ``alpha * (exp(x) - 1)`` (Clevert et al., 2015).

    Args:
        alpha: the scale of the negative part.
    """

    def __init__(self, alpha=1.0, **kwargs):
        super().__init__(**kwargs)
        self._alpha = checks.real(alpha, "alpha", self._where())

    def forward(self, x):
        self._input(x, min_ndim=0)
        return ops.leaky_relu(x, "elu", slope=self._alpha)


class SELU(HybridBlock):
    """Scaled ELU with the self-normalizing constants of Klambauer et al., 2017."""

    def forward(self, x):
        self._input(x, min_ndim=0)
        return ops.leaky_relu(x, "selu")


class GELU(HybridBlock):
    """GELU, ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`` (Hendrycks & Gimpel, 2016)."""

    def forward(self, x):
        self._input(x, min_ndim=0)
        return ops.gelu(x)


class Swish(HybridBlock):
    """``x * sigmoid(beta * x)`` (Ramachandran et al., 2017).

    Args:
        beta: the scale inside the sigmoid.
    """

    def __init__(self, beta=1.0, **kwargs):
        super().__init__(**kwargs)
        self._beta = checks.real(beta, "beta", self._where())

    def forward(self, x):
        self._input(x, min_ndim=0)
        return x * ops.sigmoid(x if self._beta == 1.0 else x * self._beta)
