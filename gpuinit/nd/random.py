"""Random arrays from gpuinit's streams (``gpuinit.streams`` defines the numbers).

Inside a custom initializer's hook, draws come from the parameter's own stream, so they are the
same for the same seed and architecture whatever the order or timing of initialization. Elsewhere,
each call takes the next global seed (see ``gpuinit.seed``).
"""

from __future__ import annotations

import numpy as np

from ..device import as_device
from ..streams import Fill, active_or_new_stream


def _draw(fill: Fill, shape, dtype, device, ctx):
    device = as_device(device if device is not None else ctx)
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    stream = active_or_new_stream("nd.random")
    with device.activate():
        return stream.draw(fill, shape, dtype, device.xp)


def uniform(low=0.0, high=1.0, shape=(1,), dtype="float32", device=None, ctx=None):
    """Samples of U(low, high), of ``shape`` and ``dtype``, on ``device``."""
    return _draw(Fill.uniform(low, high), shape, dtype, device, ctx)


def normal(loc=0.0, scale=1.0, shape=(1,), dtype="float32", device=None, ctx=None):
    """Samples of N(loc, scale^2), of ``shape`` and ``dtype``, on ``device``."""
    return _draw(Fill.normal(loc, scale), shape, dtype, device, ctx)


def truncated_normal(loc=0.0, scale=1.0, a=-2.0, b=2.0, shape=(1,), dtype="float32", device=None, ctx=None):
    """Samples of N(loc, scale^2) truncated to ``[loc + a*scale, loc + b*scale]``."""
    return _draw(Fill.truncated_normal(loc, scale, a, b), shape, dtype, device, ctx)
