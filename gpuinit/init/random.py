"""Initializers drawing from a fixed distribution: Uniform, Normal, TruncatedNormal (Gluon's)."""

from __future__ import annotations

from .. import checks
from ..errors import InitializerError
from ..streams import Fill
from .base import Initializer


class Uniform(Initializer):
    """Weights from U(-scale, scale); Gluon's default initializer.

    Args:
        scale: half-width of the interval.
    """

    pure_fills = "role"

    def __init__(self, scale: float = 0.07):
        super().__init__(scale=scale)
        self.scale = checks.real(scale, "scale", "Uniform", minimum=0, error=InitializerError,
                                 hint="pass the half-width of the interval, e.g. Uniform(0.07)")
        self._fill = Fill.uniform(-self.scale, self.scale)  # shared: it does not depend on the shape

    def _weight_fill(self, desc) -> Fill:
        return self._fill


class Normal(Initializer):
    """Weights from N(0, sigma^2).

    Args:
        sigma: standard deviation.
    """

    pure_fills = "role"

    def __init__(self, sigma: float = 0.01):
        super().__init__(sigma=sigma)
        self.sigma = checks.real(sigma, "sigma", "Normal", minimum=0, error=InitializerError,
                                 hint="pass the standard deviation, e.g. Normal(0.01)")
        self._fill = Fill.normal(0.0, self.sigma)

    def _weight_fill(self, desc) -> Fill:
        return self._fill


class TruncatedNormal(Initializer):
    """Weights from N(mean, sigma^2) truncated to [mean + a*sigma, mean + b*sigma].

    Drawn by the inverse CDF, with no rejection (see ``gpuinit.streams``).

    Args:
        mean: mean of the untruncated normal.
        sigma: standard deviation of the untruncated normal.
        a: lower bound, in units of sigma.
        b: upper bound, in units of sigma.
    """

    pure_fills = "role"

    def __init__(self, mean: float = 0.0, sigma: float = 0.01, a: float = -2.0, b: float = 2.0):
        where = "TruncatedNormal"
        mean = checks.real(mean, "mean", where, error=InitializerError)
        sigma = checks.real(sigma, "sigma", where, minimum=0, error=InitializerError)
        a = checks.real(a, "a", where, error=InitializerError)
        b = checks.real(b, "b", where, error=InitializerError)
        if not a < b:
            raise InitializerError(f"TruncatedNormal needs a < b, got a={a!r}, b={b!r}; the bounds are "
                                   "in units of sigma, e.g. a=-2.0, b=2.0")
        super().__init__(mean=mean, sigma=sigma, a=a, b=b)
        self.mean, self.sigma, self.a, self.b = mean, sigma, a, b
        self._fill = Fill.truncated_normal(self.mean, self.sigma, self.a, self.b)

    def _weight_fill(self, desc) -> Fill:
        return self._fill
