"""MXNet NDArray's fluent methods that real and shape-only arrays share.

``x.exp()``, ``x.relu()``, ``x.context``, ... are written once here, in terms of NumPy functions
and indexing. :class:`~gpuinit.arrays.NDArray` (real values) and :class:`~gpuinit.meta.MetaArray`
(shapes only) both inherit them: NumPy computes the values of the one, and the other answers the
same calls with shapes through its ``__array_ufunc__`` and ``__array_function__``. Methods whose
shape-only version must differ (``softmax``, ``norm``, ``copyto``, ``asnumpy``, ...) are defined
on each class instead.
"""

from __future__ import annotations

import numpy as np


class FluentMethods:
    """The MXNet NDArray methods that mean the same on :class:`NDArray` and :class:`MetaArray`."""

    __slots__ = ()

    @property
    def context(self):
        """The device of the array: its device label where it carries one (a parameter's copy on
        ``cpu(1)``, the arrays of a shape-only pass), else the CPU."""
        from .device import cpu
        return getattr(self, "_device", None) or cpu()

    ctx = context

    @property
    def stype(self) -> str:
        """Storage type: always ``'default'`` (dense); gpuinit has no sparse storage."""
        return "default"

    def wait_to_read(self) -> None:
        """No-op: NumPy computes eagerly (MXNet's engine is asynchronous)."""

    def abs(self):
        return np.absolute(self)

    def exp(self):
        return np.exp(self)

    def log(self):
        return np.log(self)

    def sqrt(self):
        return np.sqrt(self)

    def square(self):
        return np.square(self)

    def sign(self):
        return np.sign(self)

    def relu(self):
        return np.maximum(self, 0)

    def sigmoid(self):
        return 1 / (1 + np.exp(-self))

    def expand_dims(self, axis):
        return np.expand_dims(self, axis)

    def reshape_like(self, other):
        return self.reshape(tuple(other.shape))

    def broadcast_like(self, other):
        return self.broadcast_to(other.shape)

    def slice_axis(self, axis, begin, end):
        index = [slice(None)] * self.ndim
        index[axis] = slice(begin, end)
        return self[tuple(index)]
