"""Random arrays from gpuinit's streams (``gpuinit.streams`` defines the numbers).

Inside a custom initializer's hook, draws come from the parameter's own stream, so they are the
same for the same seed and architecture whatever the order or timing of initialization. Elsewhere,
each call takes the next global seed (see ``gpuinit.seed``).
"""

from __future__ import annotations

import numpy as np

from .. import checks, dtypes
from ..device import as_device
from ..draws import active_or_new_stream
from ..streams import Fill
from ..streams import seed  # noqa: F401  (mx.random.seed)

__all__ = ["normal", "seed", "truncated_normal", "uniform"]
from ..arrays import NDArray


def _draw(fill: Fill, shape, dtype, device, ctx, where):
    device = as_device(device if device is not None else ctx)
    shape = checks.shape(shape, "shape", where)
    dtype = dtypes.as_dtype(dtype)
    fill.check(dtype, f"{where}'s output")  # before a stream (and an unseeded call's seed) is taken
    out = active_or_new_stream("nd.random").draw(fill, shape, dtype, device)
    return out.view(NDArray) if type(out) is np.ndarray else out


def _number(value, what, where, **bounds):
    return checks.real(value, what, where, **bounds)


def uniform(low=0.0, high=1.0, shape=(1,), dtype="float32", device=None, ctx=None):
    """Samples of U(low, high), of ``shape`` and ``dtype``, on ``device``."""
    where = "nd.random.uniform"
    low, high = _number(low, "low", where), _number(high, "high", where)
    return _draw(Fill.uniform(low, high), shape, dtype, device, ctx, where)


def normal(loc=0.0, scale=1.0, shape=(1,), dtype="float32", device=None, ctx=None):
    """Samples of N(loc, scale^2), of ``shape`` and ``dtype``, on ``device``."""
    where = "nd.random.normal"
    fill = Fill.normal(_number(loc, "loc", where), _number(scale, "scale", where, minimum=0))
    return _draw(fill, shape, dtype, device, ctx, where)


def truncated_normal(loc=0.0, scale=1.0, a=-2.0, b=2.0, shape=(1,), dtype="float32", device=None, ctx=None):
    """Samples of N(loc, scale^2) truncated to ``[loc + a*scale, loc + b*scale]``."""
    where = "nd.random.truncated_normal"
    fill = Fill.truncated_normal(_number(loc, "loc", where), _number(scale, "scale", where, minimum=0),
                                 _number(a, "a", where), _number(b, "b", where))
    return _draw(fill, shape, dtype, device, ctx, where)
