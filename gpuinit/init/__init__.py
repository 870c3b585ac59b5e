"""Initializers: how each parameter is filled.

One family per file: ``constant`` (Zero, One, Constant), ``random`` (Uniform, Normal,
TruncatedNormal), ``variance_scaling`` (the core and its Gluon/PyTorch presets), ``orthogonal``,
``mixed``; the protocol lives in ``base``. To add an initializer, subclass :class:`Initializer` in
the file of its family and return a :class:`~gpuinit.streams.Fill` from ``_weight_fill`` (fused,
runs on every backend) or fill the array in ``_init_weight`` (a Python hook).
"""

from ..errors import InitializerError
from ..streams import Fill
from .base import ROLES, InitDesc, Initializer, compute_fans, fans
from .constant import Constant, One, Zero
from .mixed import Mixed
from .orthogonal import Orthogonal
from .random import Normal, TruncatedNormal, Uniform
from .variance_scaling import (KaimingNormal, KaimingUniform, MSRAPrelu, VarianceScaling, Xavier,
                               XavierNormal, XavierUniform, calculate_gain)

# Names accepted where an initializer is taken as a string (``bias_initializer='zeros'``).
_BY_NAME = {
    "zeros": Zero, "zero": Zero, "ones": One, "one": One, "constant": Constant,
    "uniform": Uniform, "normal": Normal, "truncated_normal": TruncatedNormal,
    "truncnorm": TruncatedNormal, "xavier": Xavier, "msraprelu": MSRAPrelu,
    "orthogonal": Orthogonal, "xavier_uniform": XavierUniform, "xavier_normal": XavierNormal,
    "kaiming_uniform": KaimingUniform, "kaiming_normal": KaimingNormal,
}


def create(spec) -> Initializer:
    """An :class:`Initializer` from an instance, a class, or a name such as ``'zeros'``."""
    if isinstance(spec, Initializer):
        return spec
    if isinstance(spec, type) and issubclass(spec, Initializer):
        return spec()
    if isinstance(spec, str) and spec.lower() in _BY_NAME:
        return _BY_NAME[spec.lower()]()
    raise InitializerError(f"cannot make an initializer from {spec!r}; pass an Initializer or "
                           f"one of the names {sorted(_BY_NAME)}")


__all__ = ["Constant", "Fill", "InitDesc", "Initializer", "InitializerError", "KaimingNormal",
           "KaimingUniform", "MSRAPrelu", "Mixed", "Normal", "One", "Orthogonal", "ROLES",
           "TruncatedNormal", "Uniform", "VarianceScaling", "Xavier", "XavierNormal",
           "XavierUniform", "Zero", "calculate_gain", "compute_fans", "create", "fans"]
