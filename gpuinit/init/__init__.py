"""Initializers: how each parameter is filled.

One family per file: ``constant`` (Zero, One, Constant), ``bilinear`` (Bilinear), ``random`` (Uniform, Normal,
TruncatedNormal), ``variance_scaling`` (the core and its Gluon/PyTorch presets), ``orthogonal``,
``mixed``; the protocol lives in ``base``. To add an initializer, subclass :class:`Initializer` in
the file of its family and return a :class:`~gpuinit.streams.Fill` from ``_weight_fill`` (fused,
runs on every backend) or fill the array in ``_init_weight`` (a Python hook).
"""

from ..errors import InitializerError
from ..streams import Fill
from .base import ROLES, InitDesc, Initializer, compute_fans, fans
from .bilinear import Bilinear
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
    "kaiming_uniform": KaimingUniform, "kaiming_normal": KaimingNormal, "bilinear": Bilinear,
}


def create(spec) -> Initializer:
    """An :class:`Initializer` from an instance, a class, or a name such as ``'zeros'``."""
    if isinstance(spec, Initializer):
        return spec
    if isinstance(spec, type) and issubclass(spec, Initializer):
        return spec()
    if isinstance(spec, str) and spec.lower() in _BY_NAME:
        return _BY_NAME[spec.lower()]()
    if isinstance(spec, str) and spec.lstrip().startswith("["):
        return _from_json(spec)
    raise InitializerError(f"cannot make an initializer from {spec!r}; pass an Initializer, "
                           f"one of the names {sorted(_BY_NAME)}, or the JSON of Initializer.dumps()")


def _from_json(text: str) -> Initializer:
    """The initializer ``Initializer.dumps()`` wrote: ``'["xavier", {"magnitude": 2}]'``."""
    import json
    try:
        name, kwargs = json.loads(text)
        cls = _BY_NAME[name.lower()]
        if name.lower() in ("zeros", "zero", "ones", "one") or not kwargs:
            return cls()
        return cls(**kwargs)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise InitializerError(f"cannot make an initializer from the JSON {text!r} ({type(exc).__name__}: "
                               f"{exc}); expected '[name, {{arguments}}]' as Initializer.dumps() writes, with a "
                               f"name among {sorted(_BY_NAME)}") from None


__all__ = ["Bilinear", "Constant", "Fill", "InitDesc", "Initializer", "InitializerError", "KaimingNormal",
           "KaimingUniform", "MSRAPrelu", "Mixed", "Normal", "One", "Orthogonal", "ROLES",
           "TruncatedNormal", "Uniform", "VarianceScaling", "Xavier", "XavierNormal",
           "XavierUniform", "Zero", "calculate_gain", "compute_fans", "create", "fans"]
