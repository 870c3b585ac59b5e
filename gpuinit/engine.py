"""The fill engine: runs declarative fills into device memory, on whichever device it is.

A fill job (:class:`~gpuinit.streams.FillJob`) says which elements of which stream go where in
an arena. On a GPU the jobs become fused kernel launches (:mod:`gpuinit.kernels`, through its one
checked door); on the CPU, chunks on every core (:mod:`gpuinit.streams.cpu`). The numbers are
the same either way, bit for bit: the stream contract says so and the tests check it.
"""

from __future__ import annotations

import numpy as np

from .errors import GpuInitError
from .streams import cpu


def run(device, arena, jobs, progress=None) -> None:
    """Fill ``jobs`` into ``arena``, a 1-D ``uint8`` array on ``device``.

    On a GPU the launches are asynchronous on the current stream: the caller synchronizes.

    Args:
        device: the :class:`~gpuinit.device.Device` the arena is on.
        arena: NumPy (CPU) or CuPy (GPU) bytes; each job's ``offset`` counts from its start.
        jobs: :class:`~gpuinit.streams.FillJob` objects.
        progress: optional ``fn(nbytes)`` called as pieces are done.

    Raises:
        GpuInitError: a job does not fit in the arena.
    """
    if device.is_gpu:
        from . import kernels
        kernels.fill(device, int(arena.data.ptr), int(arena.nbytes), jobs, progress)
        return
    pieces = []
    for job in jobs:
        end = job.offset + job.count * job.dtype.itemsize
        if job.offset < 0 or job.count < 0 or end > arena.nbytes or job.offset % job.dtype.itemsize:
            raise GpuInitError(f"fill job of {job.count} {job.dtype} elements at byte {job.offset} does not "
                               f"fit, aligned, in an arena of {arena.nbytes} bytes")
        pieces.append((arena[job.offset:end].view(job.dtype), job.fill, job.key, job.word_offset, job.start))
    cpu.fill_many(pieces, progress)


def fill_arrays(device, jobs) -> None:
    """Fill whole arrays: ``(out, fill, key, word_offset[, start])`` each, as
    :func:`gpuinit.streams.fill_many` takes them, with the kernels on a GPU.

    Raises:
        GpuInitError: an array the fill cannot write (not contiguous, unsupported dtype).
    """
    if device.is_gpu:
        from . import kernels
        kernels.fill_arrays(device, jobs)
        return
    jobs = list(jobs)
    for out, *_ in jobs:
        if not isinstance(out, np.ndarray) or not out.flags.c_contiguous:
            raise GpuInitError(f"CPU fill needs C-contiguous NumPy arrays, got {type(out).__name__} "
                               f"of shape {getattr(out, 'shape', None)}")
    cpu.fill_many(jobs)
