"""Constant initializers: every element gets the same value, whatever the parameter's role."""

from __future__ import annotations

from .. import checks
from ..errors import InitializerError
from ..streams import Fill
from .base import Initializer


class Constant(Initializer):
    """Fill with ``value``.

    Args:
        value: the number every element gets.
    """

    pure_fills = "role"

    def __init__(self, value: float = 0.0):
        super().__init__(value=value)
        self.value = checks.real(value, "value", "Constant", error=InitializerError)
        self._constant = Fill.constant(self.value)  # one Fill shared by every parameter it fills

    def _fill(self, desc) -> Fill:
        return self._constant

    _weight_fill = _bias_fill = _gamma_fill = _beta_fill = _fill
    _running_mean_fill = _running_var_fill = _default_fill = _fill


class Zero(Constant):
    """Fill with zeros (``'zeros'``)."""

    pure_fills = "role"

    def __init__(self):
        super().__init__(0.0)
        self._kwargs = {}


class One(Constant):
    """Fill with ones (``'ones'``)."""

    pure_fills = "role"

    def __init__(self):
        super().__init__(1.0)
        self._kwargs = {}
