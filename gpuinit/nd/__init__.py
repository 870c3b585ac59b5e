"""Array creation and operations on plain NumPy/CuPy arrays (MXNet's ``nd``, without a wrapper).

Arrays here are ``numpy.ndarray`` on the CPU and ``cupy.ndarray`` on a GPU. The operations work on
either, and on the shape-only arrays of a planning pass.
"""

from __future__ import annotations

import numpy as np

from .. import ops
from ..backend import array_module_of, is_cupy_array, to_numpy
from ..device import Device, as_device
from ..ops import (activation, concat, conv2d, dense, gelu, layer_norm, matmul, pool2d, relu,
                   rms_norm, sigmoid, silu, softmax, softrelu, softsign, take)
from . import random
from ..checkpoint import load  # MXNet's nd.load, for safetensors files (gpuinit.checkpoint)
from ..checkpoint import save  # MXNet's nd.save


def _where(device, ctx) -> Device:
    return as_device(device if device is not None else ctx)


def array(source, device=None, dtype=None, ctx=None):
    """An array with ``source``'s values on ``device`` (default device if None)."""
    device = _where(device, ctx)
    if dtype is None:  # an array keeps its dtype; anything else becomes float32, as in MXNet
        dtype = getattr(source, "dtype", None)
        dtype = np.float32 if dtype is None else dtype
    with device.activate():
        if device.is_gpu:
            return device.xp.asarray(source, dtype=dtype)
        return np.array(to_numpy(source), dtype=dtype)


def zeros(shape, device=None, dtype="float32", ctx=None):
    """An array of zeros."""
    device = _where(device, ctx)
    with device.activate():
        return device.xp.zeros(shape, dtype=dtype)


def ones(shape, device=None, dtype="float32", ctx=None):
    """An array of ones."""
    device = _where(device, ctx)
    with device.activate():
        return device.xp.ones(shape, dtype=dtype)


def full(shape, val, device=None, dtype="float32", ctx=None):
    """An array filled with ``val``."""
    device = _where(device, ctx)
    with device.activate():
        return device.xp.full(shape, val, dtype=dtype)


def arange(start, stop=None, step=1, device=None, dtype="float32", ctx=None):
    """Evenly spaced values in ``[start, stop)``."""
    device = _where(device, ctx)
    with device.activate():
        return device.xp.arange(start, stop, step, dtype=dtype)


def dot(a, b):
    """Matrix product (MXNet's ``nd.dot``)."""
    return matmul(a, b)


def tanh(x):
    return np.tanh(x)


def exp(x):
    return np.exp(x)


def log(x):
    return np.log(x)


def sqrt(x):
    return np.sqrt(x)


def asnumpy(x) -> np.ndarray:
    """A NumPy copy of an array from any device."""
    return to_numpy(x)


__all__ = ["activation", "arange", "array", "array_module_of", "asnumpy", "concat", "conv2d",
           "dense", "dot", "exp", "full", "gelu", "is_cupy_array", "layer_norm", "log", "matmul",
           "ones", "ops", "pool2d", "random", "relu", "rms_norm", "sigmoid", "silu", "softmax",
           "softrelu", "softsign", "sqrt", "take", "tanh", "zeros"]
