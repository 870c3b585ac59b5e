"""Filling parameters on a CUDA device.

The CUDA sources live beside this file: ``philox.cuh`` (Philox4x64-10 and the transforms of
``gpuinit.streams``, compiled for the host too so the tests can check them against NumPy) and
``init_kernels.cu`` (one fused, table-driven launch per family and output type). They compile to
PTX and their arithmetic matches the NumPy reference on the CPU (``tests/test_kernels.py``), but
they have not yet run on a GPU, so they are not wired in: until that check is done, a GPU fill
generates each parameter's numbers on the host with the NumPy reference, in bounded chunks, and
copies them into the parameter's view of the device arena: the same numbers, at host speed.
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
