"""The variance-scaling family: one core, and Glorot/He presets as thin wrappers.

The core draws with variance ``scale / fan``, where ``fan`` is ``fan_in``, ``fan_out`` or their
mean: of gpuinit's ``(out, in, *kernel)`` layout by default (``fans`` in :mod:`gpuinit.init.base`),
or of the axes given as ``in_axis``/``out_axis``/``batch_axis`` (JAX's ``_compute_fans``,
``compute_fans`` there), which is how Flax's ``(..., in, out)`` kernels are read. It draws from U(-sqrt(3 var), sqrt(3 var)), N(0, var), or a
normal truncated at two standard deviations and rescaled to have that variance. Gluon's Xavier and
MSRAPrelu and PyTorch's xavier_*/kaiming_* are each a choice of ``scale``, ``mode`` and
``distribution``.
"""

from __future__ import annotations

import copy
import math

from .. import checks
from ..errors import InitializerError
from ..streams import Fill
from .base import Initializer, _axes, compute_fans, fans

# Standard deviation of a standard normal truncated to [-2, 2].
_TRUNCATED_STD = 0.87962566103423978
_MODES = ("fan_in", "fan_out", "fan_avg")
_DISTRIBUTIONS = ("uniform", "normal", "truncated_normal")


class VarianceScaling(Initializer):
    """Weights with variance ``scale / fan`` (JAX's ``variance_scaling``).

    Args:
        scale: numerator of the variance.
        mode: ``"fan_in"``, ``"fan_out"`` or ``"fan_avg"``.
        distribution: ``"uniform"``, ``"normal"`` or ``"truncated_normal"``.
        in_axis, out_axis: the parameter's input and output axes (an int or a tuple of ints,
            negative from the end), as JAX's ``variance_scaling`` takes them; ``None`` (both, the
            default) reads gpuinit's ``(out, in, *kernel)`` layout, as :func:`~gpuinit.init.fans`
            does. Flax's kernels are ``in_axis=-2, out_axis=-1``.
        batch_axis: axes of independent weights stacked together (counted in neither fan).

    Example:
        >>> from gpuinit import init
        >>> lecun = init.VarianceScaling(1.0, "fan_in", "truncated_normal", in_axis=-2, out_axis=-1)
        >>> fill = lecun.fill_for(init.InitDesc("kernel", shape=(3, 3, 16, 32), own=True))
        >>> round(fill.b * 0.87962566103423978, 6) == round((1 / 144) ** 0.5, 6)  # std 1/sqrt(3*3*16)
        True
    """

    pure_fills = "shape"

    def __init__(self, scale: float = 1.0, mode: str = "fan_in", distribution: str = "truncated_normal",
                 in_axis=None, out_axis=None, batch_axis=()):
        where = type(self).__name__
        checks.choice(mode, _MODES, "mode", where, error=InitializerError)
        checks.choice(distribution, _DISTRIBUTIONS, "distribution", where, error=InitializerError)
        scale = checks.real(scale, "scale", where, above=0, error=InitializerError)
        if (in_axis is None) != (out_axis is None):
            raise InitializerError(f"{where}: pass both in_axis and out_axis, or neither (gpuinit's (out, in, "
                                   f"*kernel) layout), got in_axis={in_axis!r}, out_axis={out_axis!r}; "
                                   "Flax's kernels are in_axis=-2, out_axis=-1")
        axes = {}
        if in_axis is not None:
            for name, value in (("in_axis", in_axis), ("out_axis", out_axis), ("batch_axis", batch_axis)):
                _axes(value, name, None, where)  # the type now; the range against each parameter's shape
                axes[name] = tuple(value) if isinstance(value, (list, tuple)) else value
        elif batch_axis not in ((), None):
            raise InitializerError(f"{where}: batch_axis={batch_axis!r} needs in_axis and out_axis too")
        super().__init__(scale=scale, mode=mode, distribution=distribution, **axes)
        self._core = (scale, mode, distribution)
        self._fan_axes = axes

    def _weight_fill(self, desc) -> Fill:
        scale, mode, distribution = self._core
        if self._fan_axes:
            fan_in, fan_out = compute_fans(desc.shape, **self._fan_axes, where=f"parameter {str(desc)!r}")
        else:
            fan_in, fan_out = fans(desc)
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[mode]
        if not fan:  # an empty parameter: no element to fill
            return Fill.constant(0.0)
        if distribution == "uniform":
            limit = math.sqrt(3.0 * scale / fan)
            return Fill.uniform(-limit, limit)
        std = math.sqrt(scale / fan)
        if distribution == "normal":
            return Fill.normal(0.0, std)
        return Fill.truncated_normal(0.0, std / _TRUNCATED_STD, -2.0, 2.0)

    @property
    def has_axes(self) -> bool:
        """Whether the fan axes are given (``in_axis``/``out_axis``) rather than read from gpuinit's
        ``(out, in, *kernel)`` layout."""
        return bool(self._fan_axes)

    def with_axes(self, in_axis=-2, out_axis=-1, batch_axis=()):
        """The same initializer (scale, mode, distribution) with its fans read from these axes: a
        preset (``KaimingNormal()``, ``Xavier()``) for Flax's ``(..., in, out)`` kernels.

        Example:
            >>> from gpuinit import init
            >>> he = init.KaimingNormal().with_axes(in_axis=-2, out_axis=-1)
            >>> round(he.fill_for(init.InitDesc("kernel", shape=(1024, 16), own=True)).b ** 2 * 1024, 6)
            2.0
        """
        axes = {"in_axis": in_axis, "out_axis": out_axis, "batch_axis": batch_axis}
        where = type(self).__name__
        for name, value in axes.items():
            _axes(value, name, None, where)
        clone = copy.copy(self)
        clone._fan_axes = {k: tuple(v) if isinstance(v, (list, tuple)) else v for k, v in axes.items()}
        if type(self) is VarianceScaling:  # its constructor takes the axes: repr and dumps keep them
            clone._kwargs = {**self._kwargs, **clone._fan_axes}
        return clone

    def _preset(self, **kwargs) -> None:
        """Keep the preset's own arguments for ``repr`` (the core's are derived)."""
        self._kwargs = kwargs


class Xavier(VarianceScaling):
    """Gluon's Xavier: bound (uniform) or std (gaussian) ``sqrt(magnitude / factor)``.

    ``factor`` is ``(fan_in + fan_out) / 2``, ``fan_in`` or ``fan_out``. Glorot & Bengio,
    "Understanding the difficulty of training deep feedforward neural networks", 2010.

    Args:
        rnd_type: ``"uniform"`` or ``"gaussian"``.
        factor_type: ``"avg"``, ``"in"`` or ``"out"``.
        magnitude: scale of the random numbers.
    """

    pure_fills = "shape"

    def __init__(self, rnd_type: str = "uniform", factor_type: str = "avg", magnitude: float = 3):
        where = type(self).__name__
        checks.choice(rnd_type, ("uniform", "gaussian"), "rnd_type", where, error=InitializerError)
        checks.choice(factor_type, ("avg", "in", "out"), "factor_type", where, error=InitializerError)
        given = magnitude  # kept as given for repr and dumps(), as MXNet writes it
        magnitude = checks.real(magnitude, "magnitude", where, above=0, error=InitializerError)
        # U(-b, b) has variance b^2 / 3, so Gluon's uniform bound sqrt(m / f) is variance m / (3 f).
        scale = magnitude / 3.0 if rnd_type == "uniform" else magnitude
        super().__init__(scale, "fan_" + factor_type, "uniform" if rnd_type == "uniform" else "normal")
        self._preset(rnd_type=rnd_type, factor_type=factor_type, magnitude=given)


class MSRAPrelu(Xavier):
    """Gluon's MSRAPrelu: gaussian Xavier with magnitude ``2 / (1 + slope^2)``.

    He et al., "Delving Deep into Rectifiers", 2015.

    Args:
        factor_type: ``"avg"``, ``"in"`` or ``"out"``.
        slope: the negative slope of the PReLU that follows.
    """

    pure_fills = "shape"

    def __init__(self, factor_type: str = "avg", slope: float = 0.25):
        slope = checks.real(slope, "slope", "MSRAPrelu", error=InitializerError)
        super().__init__("gaussian", factor_type, 2.0 / (1 + slope ** 2))
        self._preset(factor_type=factor_type, slope=slope)
        self._preset(factor_type=factor_type, slope=slope)


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The gain PyTorch's ``torch.nn.init.calculate_gain`` gives for a nonlinearity."""
    linear = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
              "conv_transpose3d", "sigmoid")
    checks.choice(nonlinearity, linear + ("tanh", "relu", "leaky_relu", "selu"), "nonlinearity",
                  "calculate_gain", error=InitializerError)
    if param is not None:
        param = checks.real(param, "param", "calculate_gain", error=InitializerError)
    if nonlinearity in linear:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise InitializerError(f"unsupported nonlinearity {nonlinearity!r}; expected one of "
                           f"{linear + ('tanh', 'relu', 'leaky_relu', 'selu')}")


class XavierUniform(VarianceScaling):
    """``torch.nn.init.xavier_uniform_``: U(-a, a), ``a = gain * sqrt(6 / (fan_in + fan_out))``."""

    pure_fills = "shape"

    def __init__(self, gain: float = 1.0):
        gain = checks.real(gain, "gain", "XavierUniform", above=0, error=InitializerError)
        super().__init__(gain ** 2, "fan_avg", "uniform")
        self._preset(gain=gain)


class XavierNormal(VarianceScaling):
    """``torch.nn.init.xavier_normal_``: N(0, std^2), ``std = gain * sqrt(2 / (fan_in + fan_out))``."""

    pure_fills = "shape"

    def __init__(self, gain: float = 1.0):
        gain = checks.real(gain, "gain", "XavierNormal", above=0, error=InitializerError)
        super().__init__(gain ** 2, "fan_avg", "normal")
        self._preset(gain=gain)


def _kaiming_mode(mode: str, where: str) -> str:
    return checks.choice(mode, ("fan_in", "fan_out"), "mode", where, error=InitializerError)


class KaimingUniform(VarianceScaling):
    """``torch.nn.init.kaiming_uniform_``: U(-b, b), ``b = gain * sqrt(3 / fan_mode)``.

    ``gain = calculate_gain(nonlinearity, a)``. He et al., 2015.
    """

    pure_fills = "shape"

    def __init__(self, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu"):
        super().__init__(calculate_gain(nonlinearity, a) ** 2, _kaiming_mode(mode, "KaimingUniform"), "uniform")
        self._preset(a=a, mode=mode, nonlinearity=nonlinearity)


class KaimingNormal(VarianceScaling):
    """``torch.nn.init.kaiming_normal_``: N(0, std^2), ``std = gain / sqrt(fan_mode)``."""

    pure_fills = "shape"

    def __init__(self, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu"):
        super().__init__(calculate_gain(nonlinearity, a) ** 2, _kaiming_mode(mode, "KaimingNormal"), "normal")
        self._preset(a=a, mode=mode, nonlinearity=nonlinearity)
