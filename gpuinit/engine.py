"""The fill engine: runs declarative fills into device memory, on whichever device it is.

A fill job (:class:`~gpuinit.streams.FillJob`) says which elements of which stream go where in
an arena. The jobs become launch tables (:func:`gpuinit.kernels.launch_tables`), and:

- on a GPU, fused kernel launches (:mod:`gpuinit.kernels`, through its one checked door);
- on the CPU, the same tables run by the kernels' own code compiled for the host
  (``gpuinit.kernels._cpu``, built by ``pip install``), on every core without the GIL;
- on the CPU without that extension (no compiler at install time), the NumPy implementation
  (:mod:`gpuinit.streams.cpu`): slower, the same numbers.

``GPUINIT_CPU_ENGINE`` chooses the CPU path: ``auto`` (the default: compiled where built),
``compiled`` or ``numpy``. The numbers are the same on every path, bit for bit: the stream
contract says so and the tests check it.
"""

from __future__ import annotations

import functools
import logging
import os

import numpy as np

from . import dtypes
from .errors import ArgumentError, GpuInitError
from .streams import FillJobs, cpu

logger = logging.getLogger("gpuinit")

ENGINES = ("auto", "compiled", "numpy")
# Thread groups per call into the compiled engine: about 8M float32 elements, tens of
# milliseconds, so progress is reported and Ctrl-C is seen that often.
PIECE_GROUPS = 1 << 20


@functools.lru_cache(maxsize=None)
def _compiled_module():
    try:
        from .kernels import _cpu
    except ImportError as exc:
        logger.info("gpuinit: the compiled CPU fill engine is not built (%s); filling with NumPy", exc)
        return None
    return _cpu


def cpu_engine() -> str:
    """The CPU fill path in use: ``"compiled"`` or ``"numpy"``.

    Raises:
        ArgumentError: ``GPUINIT_CPU_ENGINE`` is not one of ``auto``, ``compiled``, ``numpy``, or
            asks for ``compiled`` where the extension is not built.
    """
    choice = os.environ.get("GPUINIT_CPU_ENGINE", "auto").strip().lower() or "auto"
    if choice not in ENGINES:
        raise ArgumentError(f"environment variable GPUINIT_CPU_ENGINE={choice!r} must be one of {ENGINES}; "
                            "set it to auto, compiled or numpy, or unset it")
    if choice == "numpy":
        return "numpy"
    if _compiled_module() is None:
        if choice == "compiled":
            raise ArgumentError("GPUINIT_CPU_ENGINE=compiled, but gpuinit's compiled CPU engine is not built: "
                                "reinstall with a C++ compiler present (pip install --force-reinstall --no-deps "
                                "-e .), or set GPUINIT_CPU_ENGINE=auto")
        return "numpy"
    return "compiled"


def run(device, arena, jobs, progress=None) -> None:
    """Fill ``jobs`` into ``arena``, a 1-D ``uint8`` array on ``device``.

    On a GPU the launches are asynchronous on the current stream: the caller synchronizes.

    Args:
        device: the :class:`~gpuinit.device.Device` the arena is on.
        arena: NumPy (CPU) or CuPy (GPU) bytes; each job's ``offset`` counts from its start.
        jobs: :class:`~gpuinit.streams.FillJob` objects or :class:`~gpuinit.streams.FillJobs`.
        progress: optional ``fn(nbytes)`` called as pieces are done.

    Raises:
        GpuInitError: a job does not fit in the arena.
    """
    from . import kernels
    if device.is_gpu:
        kernels.fill(device, int(arena.data.ptr), int(arena.nbytes), jobs, progress)
        return
    if cpu_engine() == "compiled":
        _run_compiled(int(arena.ctypes.data), int(arena.nbytes), jobs, progress)
        return
    pieces = []
    for job in zip(*FillJobs.of(jobs)):
        offset, dtype, count, key, fill, start, word_offset = job
        end = offset + count * dtype.itemsize
        _check_like_the_kernels(dtype, word_offset)
        if offset < 0 or count < 0 or end > arena.nbytes or offset % dtype.itemsize:
            raise GpuInitError(f"fill job of {count} {dtype} elements at byte {offset} does not "
                               f"fit, aligned, in an arena of {arena.nbytes} bytes")
        pieces.append((arena[offset:end].view(dtype), fill, key, word_offset, start))
    cpu.fill_many(pieces, progress)


def _run_compiled(base: int, nbytes: int, jobs, progress) -> None:
    """The launch tables of ``jobs`` (in ``nbytes`` at host address ``base``) through the
    compiled engine, a piece at a time, on ``GPUINIT_NUM_THREADS`` threads."""
    from . import kernels
    engine = _compiled_module()
    threads = cpu.cpu_workers()
    for launch in kernels.launch_tables(base, jobs, nbytes):
        code = 3 if dtypes.is_bfloat16(launch.dtype) else launch.dtype.itemsize
        total = launch.total_groups
        for first in range(0, total, PIECE_GROUPS):
            last = min(total, first + PIECE_GROUPS)
            engine.run(kernels.FAMILIES[launch.family], code, launch.table, len(launch.table), total,
                       launch.chunk_job, first, last, threads)
            if progress:  # differences of running totals: the pieces add up to every byte
                progress(launch.nbytes * last // total - launch.nbytes * first // total)


def _check_like_the_kernels(dtype, word_offset) -> None:
    """The NumPy path refuses what the kernels refuse, so every engine takes the same jobs."""
    from . import kernels
    kernels.supported(dtype)
    if word_offset % 4:
        raise GpuInitError(f"fill word offsets must be multiples of 4, got {word_offset}")


def fill_arrays(device, jobs) -> None:
    """Fill whole arrays: ``(out, fill, key, word_offset[, start])`` each, as
    :func:`gpuinit.streams.fill_many` takes them, with the kernels on a GPU.

    Raises:
        GpuInitError: an array the fill cannot write (not contiguous, unsupported dtype).
    """
    from . import kernels
    if device.is_gpu:
        kernels.fill_arrays(device, jobs)
        return
    jobs = list(jobs)
    for out, *_ in jobs:
        if not isinstance(out, np.ndarray) or not out.flags.c_contiguous:
            raise GpuInitError(f"CPU fill needs C-contiguous NumPy arrays, got {type(out).__name__} "
                               f"of shape {getattr(out, 'shape', None)}")
    if cpu_engine() == "compiled":
        base, nbytes, fill_jobs = kernels.jobs_from_arrays(jobs)
        _run_compiled(base, nbytes, fill_jobs, None)
        return
    for out, fill, key, word_offset, *_ in jobs:
        _check_like_the_kernels(out.dtype, word_offset)
    cpu.fill_many(jobs)
