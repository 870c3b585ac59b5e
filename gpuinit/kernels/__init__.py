"""Filling parameters on a CUDA device.

The CUDA kernels that reproduce ``gpuinit.streams`` on the GPU (sources beside this file, one
launch per distribution family) are not written yet. Until they are, a GPU fill generates each
parameter's numbers on the host with the NumPy reference, in bounded chunks, and copies them into
the parameter's view of the device arena: the same numbers, at host speed.
"""

from __future__ import annotations

import numpy as np

from .. import streams


def fill_many(device, jobs) -> None:
    """Fill CuPy arrays on ``device``: ``jobs`` as for :func:`gpuinit.streams.fill_many`."""
    for out, fill, key, offset in jobs:
        flat = out.reshape(-1)
        if fill.family == "constant":
            flat.fill(fill.a)
            continue
        for s in range(0, flat.size, streams.CHUNK_ELEMENTS):
            e = min(flat.size, s + streams.CHUNK_ELEMENTS)
            host = np.empty(e - s, out.dtype)
            streams.generate(host, fill, key, s, offset)
            flat[s:e].set(host)
