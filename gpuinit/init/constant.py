"""Constant initializers: every element gets the same value (or the elements of one given array),
whatever the parameter's role.

Deterministic: they take no random numbers from the parameter's stream.
"""

from __future__ import annotations

import numpy as np

from .. import checks, dtypes
from ..backend import array_module_of, to_numpy
from ..errors import InitializerError
from ..streams import Fill
from .base import Initializer


class Constant(Initializer):
    """Fill with ``value``: a number, or an array broadcast to the parameter's shape.

    A number is a fused fill on every backend. An array (NumPy, CuPy, a list of numbers) is kept
    as a host copy and copied into each parameter it fills; its shape must broadcast to the
    parameter's (``Constant(nd.array([0.1, 0.25, 0.5]))`` for a PReLU's 3 channels).

    Args:
        value: the number every element gets, or the array of values.

    Raises:
        InitializerError: a value that is not finite real numbers; at initialization, an array
            that does not broadcast to the parameter's shape, or whose values overflow its dtype.

    Example:
        >>> import numpy as np
        >>> from gpuinit import init
        >>> init.Constant(np.ones((2, 3))).dumps()
        '["constant", {"value": [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]}]'
    """

    pure_fills = "role"

    def __init__(self, value: float = 0.0):
        array = _as_host_array(value)
        if array is not None and array.ndim == 0:  # a 0-d array is a number
            value, array = float(array), None
        if array is None:
            super().__init__(value=value)
            self.value = checks.real(value, "value", "Constant", error=InitializerError)
            self._constant = Fill.constant(self.value)  # one Fill shared by every parameter it fills
        else:
            # MXNet's JSON form keeps an array value as nested lists
            super().__init__(value=array.tolist())
            self.value = array
            self._largest = Fill.constant(float(np.abs(array).max()) if array.size else 0.0)
            self._constant = self._copy_into

    def _fill(self, desc):
        if callable(self._constant) and getattr(desc, "shape", None):
            self._check_shape(desc.shape, f"parameter {str(desc)!r}")  # refused before anything is allocated
        return self._constant

    _weight_fill = _bias_fill = _gamma_fill = _beta_fill = _fill
    _running_mean_fill = _running_var_fill = _default_fill = _fill

    def _check_shape(self, shape, what) -> None:
        try:
            fits = np.broadcast_shapes(self.value.shape, tuple(shape)) == tuple(shape)
        except ValueError:
            fits = False
        if not fits:
            raise InitializerError(f"Constant: its value of shape {self.value.shape} does not broadcast to "
                                   f"{what} of shape {tuple(shape)}; give a value of that shape or one that "
                                   "broadcasts to it")

    def _copy_into(self, arr) -> None:
        """The fill of an array value: a host copy broadcast into ``arr`` (NumPy or CuPy)."""
        self._check_shape(arr.shape, "the array being initialized")
        self._largest.check(arr.dtype, "the array being initialized")
        values = np.broadcast_to(self.value, arr.shape)
        if dtypes.is_bfloat16(arr.dtype):
            values = values.astype(np.float32)
        xp = array_module_of(arr)
        dtypes.assign(arr, values if xp is np else xp.asarray(values.astype(arr.dtype)))


def _as_host_array(value):
    """``value`` as a float64 NumPy array if it is an array or a list, else None (a number).

    Raises:
        InitializerError: values that are not finite real numbers.
    """
    if isinstance(value, (list, tuple)) or (hasattr(value, "shape") and hasattr(value, "dtype")):
        if hasattr(value, "dtype") and not dtypes.is_real(value.dtype):
            raise InitializerError(f"Constant: value must hold real numbers, got dtype {value.dtype}")
        try:
            array = np.array(to_numpy(value) if hasattr(value, "dtype") else value, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise InitializerError(f"Constant: value must be a number or an array of real numbers, got "
                                   f"{value!r} ({exc})") from None
        if not np.isfinite(array).all():
            raise InitializerError("Constant: the value array holds NaN or infinite numbers; give finite values")
        return array
    return None


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
