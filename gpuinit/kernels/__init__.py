"""The CUDA side of the stream contract: kernel sources, their loader, and one checked wrapper.

Sources, beside this file:

- ``philox.cuh``: Philox4x64-10, the 256-bit counter, the transforms of ``gpuinit.streams`` (with
  ``gpuinit.transforms``'s log, sine and cosine, operation for operation), float16 and bfloat16
  rounding, the job table and what one thread does with its group, written once for host and
  device (``host.cpp`` builds it for the host, so the tests check the GPU's arithmetic, and the
  store's launch tables, against NumPy on machines with no GPU);
- ``init_kernels.cu``: ``init_fill<T, FAMILY>``, one fused launch per distribution family and
  output type over a table of jobs (:func:`table_from_columns`, :func:`launch`).

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

from ..dtypes import bfloat16
from ..errors import GpuInitError

KERNEL_DIR = pathlib.Path(__file__).resolve().parent
OPTIONS = ("--std=c++17", "--fmad=false")
FAMILIES = {"constant": 0, "uniform": 1, "normal": 2, "truncated_normal": 3}
# The C types the kernels store outputs as (float16 and bfloat16 as their bits): every kernel is
# compiled for each; CTYPES maps the NumPy dtypes present here (bfloat16 where ml_dtypes is) to them.
C_STORAGE = ("unsigned short", "gpuinit::bf16", "float", "double")
CTYPES = {np.dtype(np.float16): "unsigned short", np.dtype(np.float32): "float",
          np.dtype(np.float64): "double"}
if bfloat16() is not None:
    CTYPES[bfloat16()] = "gpuinit::bf16"
THREADS_PER_BLOCK = 256

# struct FillJob in philox.cuh: four u64, then FillParams (three u64, six f64): 104 bytes.
JOB_DTYPE = np.dtype([("out_ptr", "<u8"), ("first_group", "<u8"), ("begin", "<u8"), ("count", "<u8"),
                      ("k0", "<u8"), ("k1", "<u8"), ("word_offset", "<u8"),
                      ("a", "<f8"), ("b", "<f8"), ("lo", "<f8"), ("hi", "<f8"),
                      ("pa", "<f8"), ("pb", "<f8")])


def name_expression(dtype, family: str) -> str:
    """The kernel's C++ name for an output dtype and a fill family."""
    return f"gpuinit::init_fill<{CTYPES[np.dtype(dtype)]}, {FAMILIES[family]}>"


NAME_EXPRESSIONS = tuple(f"gpuinit::init_fill<{c}, {FAMILIES[f]}>" for c in C_STORAGE for f in FAMILIES)


@functools.lru_cache(maxsize=None)
def source() -> str:
    """The kernels' source with the header inlined: one self-contained text for NVRTC."""
    header = (KERNEL_DIR / "philox.cuh").read_text()
    return (KERNEL_DIR / "init_kernels.cu").read_text().replace('#include "philox.cuh"', header)


def group_size(dtype, family: str) -> int:
    """Elements one thread writes: those of one Philox block (mirrors ``group_size`` in the header)."""
    return 8 if family != "truncated_normal" and np.dtype(dtype).itemsize <= 4 else 4


def supported(dtype) -> np.dtype:
    """``dtype`` as a NumPy dtype, if the kernels can write it.

    Raises:
        GpuInitError: they cannot.
    """
    dtype = np.dtype(dtype)
    if dtype not in CTYPES:
        raise GpuInitError(f"GPU fills support {', '.join(d.name for d in CTYPES)}, not {dtype}")
    return dtype


def _pointer(arr) -> int:
    data = getattr(arr, "data", None)
    return int(data.ptr) if hasattr(data, "ptr") else int(arr.ctypes.data)


def table_from_columns(dtype, family: str, out_ptr, count, keys, fills, fill_index, begin=None,
                       word_offset=None) -> tuple[np.ndarray, int]:
    """The job table of one launch, built column by column, and its number of thread groups.

    Args:
        dtype: the outputs' dtype; ``family``: the fills' family (all jobs share both).
        out_ptr: device address where each job's element ``begin`` goes.
        count: elements per job (each > 0).
        keys: ``(n, 2)`` uint64, each job's stream key.
        fills: the distinct :class:`~gpuinit.streams.Fill` objects; ``fill_index[j]`` is job ``j``'s.
        begin: first element of each job's stream (default 0); ``word_offset``: where each fill starts
            in its stream, a multiple of 4 (default 0).

    Thousands of small parameters cost microseconds here, not a Python loop over them.

    Raises:
        GpuInitError: an unsupported dtype, an empty job, or a word offset not a multiple of 4.
    """
    dtype = supported(dtype)
    count = np.asarray(count, np.uint64)
    n = count.size
    begin = np.zeros(n, np.uint64) if begin is None else np.asarray(begin, np.uint64)
    word_offset = np.zeros(n, np.uint64) if word_offset is None else np.asarray(word_offset, np.uint64)
    if n and not count.all():
        raise GpuInitError("GPU fill jobs must have at least one element")
    if (word_offset % np.uint64(4)).any():
        bad = int(word_offset[(word_offset % np.uint64(4)) != 0][0])
        raise GpuInitError(f"GPU fill word offsets must be multiples of 4, got {bad}")
    table = np.zeros(n, JOB_DTYPE)
    g = np.uint64(group_size(dtype, family))
    spans = (begin + count - np.uint64(1)) // g - begin // g + np.uint64(1)
    table["out_ptr"] = out_ptr
    table["first_group"][1:] = np.cumsum(spans)[:-1]
    table["begin"], table["count"] = begin, count
    keys = np.asarray(keys, np.uint64).reshape(n, 2)
    table["k0"], table["k1"] = keys[:, 0], keys[:, 1]
    table["word_offset"] = word_offset
    numbers = np.array([(f.a, f.b, f.lo, f.hi) + (f.cdf_bounds() if family == "truncated_normal" else (0.0, 0.0))
                        for f in fills], np.float64).reshape(-1, 6)[np.asarray(fill_index, np.intp)]
    for column, name in enumerate(("a", "b", "lo", "hi", "pa", "pb")):
        table[name] = numbers[:, column]
    return table, int(spans.sum())


def build_table(jobs, dtype, family: str) -> tuple[np.ndarray, int]:
    """The job table of one launch over arrays, and its number of thread groups.

    Args:
        jobs: ``(out, fill, key, word_offset)`` or ``(out, fill, key, word_offset, start)``: ``out``
            (C-contiguous, of ``dtype``, non-empty) receives elements ``[start, start + out.size)``.

    Raises:
        GpuInitError: a job's array has another dtype or is not contiguous, or as
            :func:`table_from_columns`.
    """
    dtype = supported(dtype)
    for out, *_ in jobs:
        if out.dtype != dtype or not out.flags.c_contiguous:
            raise GpuInitError(f"GPU fill needs C-contiguous {dtype} arrays, got {out.dtype} with "
                               f"shape {out.shape} (contiguous: {out.flags.c_contiguous})")
    fills, fill_index = distinct_fills([job[1] for job in jobs])
    return table_from_columns(
        dtype, family, [_pointer(job[0]) for job in jobs], [job[0].size for job in jobs],
        [job[2] for job in jobs], fills, fill_index,
        begin=[int(job[4]) if len(job) > 4 else 0 for job in jobs], word_offset=[job[3] for job in jobs])


def distinct_fills(fills) -> tuple[list, list]:
    """The distinct fills (by identity: parameters usually share their initializer's) and each one's index."""
    index: dict = {}
    order = [index.setdefault(id(f), len(index)) for f in fills]
    unique = [None] * len(index)
    for f, i in zip(fills, order):
        unique[i] = f
    return unique, order


_lock = threading.Lock()
_modules: dict = {}


def compiled(device):
    """``(module, multiprocessor count)`` on ``device``: compiled on first use there, then cached."""
    from ..backend import cupy_module
    with _lock:
        if device.index not in _modules:
            cupy = cupy_module()
            with device.activate():
                mod = cupy.RawModule(code=source(), options=OPTIONS, name_expressions=NAME_EXPRESSIONS)
                mod.compile()
                # attributes queries every attribute of the device: once, not per launch
                sms = cupy.cuda.Device(device.index).attributes["MultiProcessorCount"]
            _modules[device.index] = (mod, sms)
        return _modules[device.index]


def launch(device, dtype, family: str, table: np.ndarray, total_groups: int) -> None:
    """One fused fill on ``device``: copy ``table`` there and run the kernel over it.

    Asynchronous on the current stream; the table's device copy is freed (stream-ordered by CuPy's
    pool) when this returns.
    """
    if not len(table):
        return
    from ..backend import cupy_module
    cupy = cupy_module()
    with device.activate():
        mod, sms = compiled(device)
        d_table = cupy.asarray(table.view(np.uint8))
        blocks = int(min(-(-total_groups // THREADS_PER_BLOCK), sms * 32))
        kernel = mod.get_function(name_expression(dtype, family))
        kernel((blocks,), (THREADS_PER_BLOCK,), (d_table, np.int32(len(table)), np.uint64(total_groups)))


def fill_many(device, jobs) -> None:
    """Fill CuPy arrays on ``device``, one launch per (family, dtype) present.

    Args:
        device: the CUDA :class:`~gpuinit.device.Device` the arrays live on.
        jobs: iterable of ``(out, fill, key, word_offset)`` as for :func:`gpuinit.streams.fill_many`,
            optionally with a fifth item ``start``: ``out`` then receives elements
            ``[start, start + out.size)`` of the fill (a shard of a larger parameter).

    Launches are asynchronous on the current stream; the store synchronizes once at the end.
    """
    groups: dict = {}
    for job in jobs:
        if job[0].size:
            groups.setdefault((np.dtype(job[0].dtype), job[1].family), []).append(job)
    for (dtype, family), group in groups.items():
        launch(device, dtype, family, *build_table(group, dtype, family))
