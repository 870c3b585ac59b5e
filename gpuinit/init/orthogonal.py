"""Orthogonal initialization: a Python hook, since it needs a QR of the whole matrix."""

from __future__ import annotations

import numpy as np

from .. import checks
from ..backend import array_module_of
from ..draws import active_or_new_stream
from ..errors import InitializerError
from ..streams import Fill
from .base import Initializer


class Orthogonal(Initializer):
    """Weights whose ``(shape[0], prod(shape[1:]))`` matrix has orthonormal rows or columns, times ``scale``.

    Draws a matrix from the parameter's stream (U(-1, 1) or N(0, 1)), takes ``Q`` of its QR
    decomposition with the signs of ``R``'s diagonal folded in (so a normal draw gives a
    Haar-distributed ``Q``; Saxe et al., 2013), and scales it. Gluon takes the SVD instead; QR gives
    an orthogonal matrix too, at lower cost.

    Unlike the other built-ins, this cannot be chunked or fused: QR needs the whole matrix. It
    runs on the host in float64 with NumPy, whatever the device, so CPU and GPU get the same bits;
    expect it to be slow for very large matrices.

    Args:
        scale: multiplier of the orthogonal matrix.
        rand_type: ``"uniform"`` or ``"normal"``.
    """

    def __init__(self, scale: float = 1.414, rand_type: str = "uniform"):
        checks.choice(rand_type, ("uniform", "normal"), "rand_type", "Orthogonal", error=InitializerError)
        scale = checks.real(scale, "scale", "Orthogonal", error=InitializerError)
        super().__init__(scale=scale, rand_type=rand_type)
        self.scale = scale
        self.rand_type = rand_type

    def _init_weight(self, name, arr):
        if arr.ndim < 1:
            raise InitializerError(f"Orthogonal needs a parameter with at least 1 dimension; "
                                   f"{str(name)!r} has shape {tuple(arr.shape)!r}; give it another initializer")
        rows = int(arr.shape[0])  # a vector is a (n, 1) matrix, as in Gluon: a unit vector times scale
        cols = int(np.prod(arr.shape[1:], dtype=np.int64))
        fill = Fill.uniform(-1.0, 1.0) if self.rand_type == "uniform" else Fill.normal(0.0, 1.0)
        tall = rows >= cols
        draw = active_or_new_stream("orthogonal").draw(fill, (rows, cols) if tall else (cols, rows), np.float64)
        q, r = np.linalg.qr(draw)
        q *= np.where(np.diag(r) < 0, -1.0, 1.0)
        result = (q if tall else q.T) * self.scale
        arr[...] = array_module_of(arr).asarray(result.reshape(arr.shape).astype(arr.dtype))
