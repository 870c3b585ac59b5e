"""Bilinear upsampling kernels: the weights that make a transposed convolution a bilinear resize.

Deterministic: they take no random numbers from the parameter's stream.
"""

from __future__ import annotations

import numpy as np

from ..backend import array_module_of
from ..errors import InitializerError
from .base import Initializer


def bilinear_kernel(height: int, width: int) -> np.ndarray:
    """The ``(height, width)`` kernel of bilinear interpolation, as a float64 array.

    Along an axis of length ``n``, with factor ``f = ceil(n / 2)`` and centre
    ``c = (2f - 1 - f mod 2) / (2f)``, tap ``i`` weighs ``1 - |i / f - c|``; the kernel is the
    outer product of the two axes' taps (Long et al., "Fully Convolutional Networks", 2015).
    """
    def taps(n):
        f = np.ceil(n / 2.0)
        c = (2 * f - 1 - f % 2) / (2.0 * f)
        return 1 - np.abs(np.arange(n) / f - c)
    return np.outer(taps(height), taps(width))


class Bilinear(Initializer):
    """Weights ``(..., kh, kw)`` set to the bilinear upsampling kernel, the same for every leading
    index, as MXNet's ``Bilinear`` (meant for a ``Conv2DTranspose`` with ``strides=f`` and
    ``kernel_size=2f - f mod 2``). Biases get the role's default (zeros).

    For square kernels (the usual case) the numbers equal MXNet's; for non-square ones each axis
    uses its own factor, where MXNet applies the width's to both.

    Raises:
        InitializerError: a weight of fewer than 2 dimensions.

    Example:
        >>> from gpuinit import init, nd
        >>> w = nd.zeros((1, 1, 4, 4))
        >>> init.Bilinear()._init_weight("up", w)
        >>> w[0, 0, 0].tolist()
        [0.0625, 0.1875, 0.1875, 0.0625]
    """

    def __init__(self):
        super().__init__()

    def _init_weight(self, name, arr):
        if arr.ndim < 2:
            raise InitializerError(f"Bilinear needs a weight of at least 2 dimensions (..., height, width); "
                                   f"{str(name)!r} has shape {tuple(arr.shape)!r}")
        kernel = np.broadcast_to(bilinear_kernel(*arr.shape[-2:]), arr.shape).astype(arr.dtype)
        arr[...] = array_module_of(arr).asarray(kernel)
