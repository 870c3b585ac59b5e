"""The CUDA side of the stream contract: kernel sources, their loader, and one checked wrapper.

Sources, beside this file:

- ``philox.cuh``: Philox4x64-10, the 256-bit counter, the transforms of ``gpuinit.streams`` (with
  ``gpuinit.transforms``'s log, sine and cosine, operation for operation) and float16 rounding,
  written once for host and device (``host.cpp`` builds it for the host, so the
  tests check the GPU's arithmetic against NumPy on machines with no GPU);
- ``init_kernels.cu``: ``init_fill<T, FAMILY>``, one fused launch per distribution family and
  output type over a table of jobs.

The source text is compiled by CuPy's ``RawModule`` (NVRTC) on first use on each device, never at
import, with ``--fmad=false`` so that every operation rounds as NumPy's do, and cached per device.
To add a kernel: write it in a ``.cu`` file here, list its name expressions, and reach it through
one wrapper like :func:`fill_many` that checks dtype, contiguity and size and picks the launch.
"""

from __future__ import annotations

import functools
import pathlib
import threading

import numpy as np

from ..errors import GpuInitError

KERNEL_DIR = pathlib.Path(__file__).resolve().parent
OPTIONS = ("--std=c++17", "--fmad=false")
FAMILIES = {"uniform": 1, "normal": 2, "truncated_normal": 3}
# Output dtypes and the C type the kernels store them as (float16 as its bits).
CTYPES = {np.dtype(np.float16): "unsigned short", np.dtype(np.float32): "float",
          np.dtype(np.float64): "double"}
THREADS_PER_BLOCK = 256

# struct FillJob in init_kernels.cu: four u64, then FillParams (three u64, six f64): 104 bytes.
JOB_DTYPE = np.dtype([("out_ptr", "<u8"), ("first_group", "<u8"), ("begin", "<u8"), ("count", "<u8"),
                      ("k0", "<u8"), ("k1", "<u8"), ("word_offset", "<u8"),
                      ("a", "<f8"), ("b", "<f8"), ("lo", "<f8"), ("hi", "<f8"),
                      ("pa", "<f8"), ("pb", "<f8")])


def name_expression(dtype, family: str) -> str:
    """The kernel's C++ name for an output dtype and a fill family."""
    return f"gpuinit::init_fill<{CTYPES[np.dtype(dtype)]}, {FAMILIES[family]}>"


NAME_EXPRESSIONS = tuple(name_expression(d, f) for d in CTYPES for f in FAMILIES)


@functools.lru_cache(maxsize=None)
def source() -> str:
    """The kernels' source with the header inlined: one self-contained text for NVRTC."""
    header = (KERNEL_DIR / "philox.cuh").read_text()
    return (KERNEL_DIR / "init_kernels.cu").read_text().replace('#include "philox.cuh"', header)


def group_size(dtype, family: str) -> int:
    """Elements one thread writes: those of one Philox block (mirrors ``group_size`` in the header)."""
    return 8 if family in ("uniform", "normal") and np.dtype(dtype).itemsize <= 4 else 4


def _pointer(arr) -> int:
    data = getattr(arr, "data", None)
    return int(data.ptr) if hasattr(data, "ptr") else int(arr.ctypes.data)


def build_table(jobs, dtype, family: str) -> tuple[np.ndarray, int]:
    """The job table of one launch, and its number of thread groups.

    Args:
        jobs: ``(out, fill, key, word_offset)`` or ``(out, fill, key, word_offset, start)``: ``out``
            (C-contiguous, of ``dtype``, non-empty) receives elements ``[start, start + out.size)``.

    Raises:
        GpuInitError: a job's array has another dtype, is not contiguous, or its word offset is not
            a multiple of 4.
    """
    dtype = np.dtype(dtype)
    if dtype not in CTYPES:
        raise GpuInitError(f"GPU fills support float16, float32 and float64, not {dtype}")
    for out, _, _, offset, *_ in jobs:
        if out.dtype != dtype or not out.flags.c_contiguous:
            raise GpuInitError(f"GPU fill needs C-contiguous {dtype} arrays, got {out.dtype} with "
                               f"shape {out.shape} (contiguous: {out.flags.c_contiguous})")
        if offset % 4:
            raise GpuInitError(f"GPU fill word offsets must be multiples of 4, got {offset}")
    # Column by column: thousands of small parameters cost microseconds, not a Python loop of
    # structured-row assignments.
    table = np.zeros(len(jobs), JOB_DTYPE)
    g = group_size(dtype, family)
    begin = np.array([int(job[4]) if len(job) > 4 else 0 for job in jobs], np.uint64)
    count = np.array([job[0].size for job in jobs], np.uint64)
    spans = (begin + count - np.uint64(1)) // np.uint64(g) - begin // np.uint64(g) + np.uint64(1)
    table["out_ptr"] = [_pointer(job[0]) for job in jobs]
    table["first_group"][1:] = np.cumsum(spans)[:-1]
    table["begin"], table["count"] = begin, count
    table["k0"] = [job[2][0] for job in jobs]
    table["k1"] = [job[2][1] for job in jobs]
    table["word_offset"] = [job[3] for job in jobs]
    fills = [job[1] for job in jobs]
    for name in ("a", "b", "lo", "hi"):
        table[name] = [getattr(f, name) for f in fills]
    if family == "truncated_normal":
        bounds = np.array([f.cdf_bounds() for f in fills], np.float64).reshape(-1, 2)
        table["pa"], table["pb"] = bounds[:, 0], bounds[:, 1]
    return table, int(spans.sum())


_lock = threading.Lock()
_modules: dict = {}


def module(device):
    """The compiled kernels on ``device`` (compiled on first use there, then cached)."""
    from ..backend import cupy_module
    with _lock:
        if device.index not in _modules:
            cupy = cupy_module()
            with device.activate():
                mod = cupy.RawModule(code=source(), options=OPTIONS, name_expressions=NAME_EXPRESSIONS)
                mod.compile()
            _modules[device.index] = mod
        return _modules[device.index]


def fill_many(device, jobs) -> None:
    """Fill CuPy arrays on ``device``, one launch per (family, dtype) present.

    Args:
        device: the CUDA :class:`~gpuinit.device.Device` the arrays live on.
        jobs: iterable of ``(out, fill, key, word_offset)`` as for :func:`gpuinit.streams.fill_many`,
            optionally with a fifth item ``start``: ``out`` then receives elements
            ``[start, start + out.size)`` of the fill (a shard of a larger parameter).

    Launches are asynchronous on the current stream; the store synchronizes once at the end.
    """
    from ..backend import cupy_module
    groups: dict = {}
    with device.activate():
        for job in jobs:
            out, fill = job[0], job[1]
            if out.size == 0:
                continue
            if fill.family == "constant":
                out.fill(fill.a)
                continue
            groups.setdefault((np.dtype(out.dtype), fill.family), []).append(job)
        if not groups:
            return
        cupy = cupy_module()
        mod = module(device)
        sms = cupy.cuda.Device(device.index).attributes["MultiProcessorCount"]
        for (dtype, family), group in groups.items():
            table, total = build_table(group, dtype, family)
            d_table = cupy.asarray(table.view(np.uint8))
            blocks = int(min(-(-total // THREADS_PER_BLOCK), sms * 32))
            kernel = mod.get_function(name_expression(dtype, family))
            kernel((blocks,), (THREADS_PER_BLOCK,), (d_table, np.int32(len(group)), np.uint64(total)))
