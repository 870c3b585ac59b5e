"""The CUDA side of the stream contract: kernel sources, their loader, and one checked wrapper.

Sources, beside this file:

- ``philox.cuh``: Philox4x64-10, the 256-bit counter, the transforms of the stream contract
  (``gpuinit.streams.spec``, with ``gpuinit.streams.transforms``'s log, sine and cosine, operation
  for operation), float16 and bfloat16 rounding, the job table and what one thread does with its
  group, written once for host and device (``host.cpp`` builds it for the host, so the tests check
  the GPU's arithmetic, and the launch tables, against NumPy on machines with no GPU);
- ``init_kernels.cu``: ``init_fill<T, FAMILY>``, one fused launch per distribution family and
  output type over a table of jobs (:func:`launch_tables`).

The source text is compiled by CuPy's ``RawModule`` (NVRTC) on first use on each device, never at
import, with ``--fmad=false`` so that every operation rounds as NumPy's do, and cached per device.

Every launch goes through one checked door, :func:`prepare` (or :func:`fill`, which prepares and
runs): it checks dtypes, bounds, alignment and word offsets before building the tables. To add a
kernel: write it in a ``.cu`` file here, list its name expressions, and give it one such door.
"""

from __future__ import annotations

import functools
import pathlib
import threading
from typing import NamedTuple

import numpy as np

from .. import dtypes
from ..backend import is_cupy_array
from ..errors import GpuInitError

KERNEL_DIR = pathlib.Path(__file__).resolve().parent
OPTIONS = ("--std=c++17", "--fmad=false")
FAMILIES = {"constant": 0, "uniform": 1, "normal": 2, "truncated_normal": 3}
# The C types the kernels store outputs as (float16 and bfloat16 as their bits): every kernel is
# compiled for each.
C_STORAGE = ("unsigned short", "gpuinit::bf16", "float", "double")
_CTYPES = {np.dtype(np.float16): "unsigned short", np.dtype(np.float32): "float",
           np.dtype(np.float64): "double"}
THREADS_PER_BLOCK = 256
# Thread groups per entry of a launch's chunk map (CHUNK_SHIFT in philox.cuh).
CHUNK_SHIFT = 8

# struct FillJob in philox.cuh: four u64, then FillParams (three u64, six f64): 104 bytes.
JOB_DTYPE = np.dtype([("out_ptr", "<u8"), ("first_group", "<u8"), ("begin", "<u8"), ("count", "<u8"),
                      ("k0", "<u8"), ("k1", "<u8"), ("word_offset", "<u8"),
                      ("a", "<f8"), ("b", "<f8"), ("lo", "<f8"), ("hi", "<f8"),
                      ("pa", "<f8"), ("pb", "<f8")])


def name_expression(dtype, family: str) -> str:
    """The kernel's C++ name for an output dtype and a fill family."""
    return f"gpuinit::init_fill<{ctype(dtype)}, {FAMILIES[family]}>"


NAME_EXPRESSIONS = tuple(f"gpuinit::init_fill<{c}, {FAMILIES[f]}>" for c in C_STORAGE for f in FAMILIES)


@functools.lru_cache(maxsize=None)
def source() -> str:
    """The kernels' source with the header inlined: one self-contained text for NVRTC."""
    header = (KERNEL_DIR / "philox.cuh").read_text()
    return (KERNEL_DIR / "init_kernels.cu").read_text().replace('#include "philox.cuh"', header)


def group_size(dtype, family: str) -> int:
    """Elements one thread writes: those of one Philox block (mirrors ``group_size`` in the header)."""
    return 8 if family != "truncated_normal" and np.dtype(dtype).itemsize <= 4 else 4


def ctype(dtype) -> str | None:
    """The C type the kernels store ``dtype`` as, or None (bfloat16 recognized without importing
    ml_dtypes for any other dtype)."""
    dtype = np.dtype(dtype)
    found = _CTYPES.get(dtype)
    if found is None and dtypes.is_bfloat16(dtype):
        found = "gpuinit::bf16"
    return found


def supported(dtype) -> np.dtype:
    """``dtype`` as a NumPy dtype, if the kernels can write it.

    Raises:
        GpuInitError: they cannot.
    """
    dtype = np.dtype(dtype)
    if ctype(dtype) is None:
        raise GpuInitError(f"GPU fills support {', '.join(d.name for d in dtypes.float_dtypes())}, not {dtype}")
    return dtype


def _pointer(arr) -> int:
    """The address of an array's first element: CuPy's device pointer or NumPy's host one."""
    if is_cupy_array(arr):
        return int(arr.data.ptr)
    return int(arr.__array_interface__["data"][0])


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


class Launch(NamedTuple):
    """One fused launch, as host arrays: what :func:`launch_tables` returns for each (dtype, family)."""

    dtype: np.dtype
    family: str
    table: np.ndarray            # JOB_DTYPE rows, one per job, by address
    total_groups: int
    nbytes: int                  # bytes the launch writes
    chunk_job: np.ndarray | None  # uint32: the job of every 2**CHUNK_SHIFT-th group (None: one job)


def chunk_map(first_group: np.ndarray, total_groups: int) -> np.ndarray:
    """The job of every ``2**CHUNK_SHIFT``-th thread group of a launch whose jobs start at
    ``first_group`` (sorted): where a thread entering a job starts its short scan."""
    starts = np.arange(0, total_groups, 1 << CHUNK_SHIFT, dtype=np.uint64)
    return (np.searchsorted(first_group, starts, side="right") - 1).astype(np.uint32)


def _by_identity(column, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Each item's index among the distinct objects (by identity) of ``column``, and the position
    of each distinct object's first occurrence: without a Python loop over the items, since a
    sharded block has a job per row and a device may have hundreds of thousands of them."""
    ids = np.fromiter(map(id, column), np.uint64, n)
    _, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
    return inverse.reshape(-1).astype(np.intp), first


def launch_tables(base: int, jobs, nbytes: int | None = None) -> list:
    """The launches that run ``jobs`` in memory at address ``base``, as host arrays.

    Args:
        base: the device address jobs' offsets count from.
        jobs: :class:`~gpuinit.streams.FillJob` objects, or :class:`~gpuinit.streams.FillJobs`
            columns (empty jobs are skipped).
        nbytes: the size of the memory at ``base``; every job must fall inside it.

    Returns:
        A :class:`Launch` per (dtype, family) present, its table listing its jobs by address.

    Raises:
        GpuInitError: a job outside the memory or not aligned to its elements, or as
            :func:`table_from_columns`.
    """
    from ..streams import FillJobs
    jobs = FillJobs.of(jobs)
    if not len(jobs):
        return []
    # Group the jobs by (dtype, family) with array operations: an index per distinct fill (jobs
    # usually share their initializer's) and per dtype, then the jobs of each pair.
    n = len(jobs)
    fill_idx, first = _by_identity(jobs.fill, n)
    fills_all = [jobs.fill[i] for i in first.tolist()]
    # dtypes by identity first (C speed), then equal dtypes merged
    dtype_first_idx, dtype_first = _by_identity(jobs.dtype, n)
    dtype_order: dict = {}
    merged = np.array([dtype_order.setdefault(jobs.dtype[i], len(dtype_order)) for i in dtype_first.tolist()], np.intp)
    dtype_idx = merged[dtype_first_idx]
    family_of_fill = np.array([FAMILIES[f.family] for f in fills_all], np.intp)
    kind = dtype_idx * len(FAMILIES) + family_of_fill[fill_idx]
    counts_all = np.fromiter(jobs.count, np.int64, n)
    offsets_all = np.fromiter(jobs.offset, np.int64, n)
    keys_all = np.asarray(jobs.key, np.uint64).reshape(n, 2)
    starts_all = np.fromiter(jobs.start, np.uint64, n)
    word_all = np.fromiter(jobs.word_offset, np.uint64, n)
    dtypes_all = list(dtype_order)
    family_names = list(FAMILIES)
    launches = []
    for code in np.unique(kind).tolist():
        dtype, family = dtypes_all[code // len(FAMILIES)], family_names[code % len(FAMILIES)]
        idx = np.flatnonzero((kind == code) & (counts_all != 0))
        if not idx.size:
            continue
        dtype = supported(dtype)
        offsets, counts = offsets_all[idx], counts_all[idx]
        if nbytes is not None:
            ends = offsets + counts * dtype.itemsize
            bad = (offsets < 0) | (counts < 0) | (ends > nbytes) | (offsets % dtype.itemsize != 0)
            if bad.any():
                i = int(idx[int(np.argmax(bad))])
                raise GpuInitError(f"GPU fill job of {jobs.count[i]} {dtype} elements at byte {jobs.offset[i]} "
                                   f"does not fit, aligned, in the {nbytes} bytes it was given")
        used, fill_index = np.unique(fill_idx[idx], return_inverse=True)
        table, total = table_from_columns(
            dtype, family, offsets.astype(np.uint64) + np.uint64(base), counts.astype(np.uint64), keys_all[idx],
            [fills_all[i] for i in used.tolist()], fill_index, begin=starts_all[idx], word_offset=word_all[idx])
        chunks = chunk_map(table["first_group"], total) if len(table) > 1 else None
        launches.append(Launch(dtype, family, table, total, int(counts.sum()) * dtype.itemsize, chunks))
    return launches


def jobs_from_arrays(jobs) -> tuple[int, int, list]:
    """Jobs over separate arrays as :class:`~gpuinit.streams.FillJob` objects in one address range.

    Args:
        jobs: ``(out, fill, key, word_offset)`` or ``(out, fill, key, word_offset, start)``:
            ``out`` (C-contiguous, of a supported dtype) receives elements ``[start, start +
            out.size)``.

    Returns:
        ``(base, nbytes, jobs)``: the range from the lowest array's address to the end of the
        highest, and a job per array with its offset in that range.

    Raises:
        GpuInitError: an array is not C-contiguous or of a dtype the kernels cannot write.
    """
    from ..streams import FillJob
    jobs = [job for job in jobs if job[0].size]
    for out, *_ in jobs:
        supported(out.dtype)
        if not out.flags.c_contiguous:
            raise GpuInitError(f"GPU fill needs C-contiguous {out.dtype} arrays, got {out.dtype} with "
                               f"shape {out.shape} (contiguous: {out.flags.c_contiguous})")
    if not jobs:
        return 0, 0, []
    pointers = [_pointer(job[0]) for job in jobs]
    base = min(pointers)
    end = max(p + job[0].nbytes for p, job in zip(pointers, jobs))
    return base, end - base, [
        FillJob(p - base, np.dtype(job[0].dtype), job[0].size, job[2], job[1],
                int(job[4]) if len(job) > 4 else 0, int(job[3])) for p, job in zip(pointers, jobs)]


def build_table(jobs, dtype, family: str) -> tuple[np.ndarray, int]:
    """The job table of one launch over arrays of ``dtype`` and fills of ``family``, and its
    number of thread groups (see :func:`jobs_from_arrays`).

    Raises:
        GpuInitError: a job's array has another dtype or is not contiguous, or as
            :func:`table_from_columns`.
    """
    dtype = supported(dtype)
    for out, *_ in jobs:
        if out.dtype != dtype or not out.flags.c_contiguous:
            raise GpuInitError(f"GPU fill needs C-contiguous {dtype} arrays, got {out.dtype} with "
                               f"shape {out.shape} (contiguous: {out.flags.c_contiguous})")
    base, _, fill_jobs = jobs_from_arrays(jobs)
    (launch,) = launch_tables(base, fill_jobs)
    return launch.table, launch.total_groups


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


class Launches:
    """Fused fills checked and ready to run on a device: made by :func:`prepare`, run by
    :meth:`run`. Their tables (and chunk maps) are already on the device."""

    def __init__(self, device, items):
        self.device = device
        self._items = items  # (kernel, device table, jobs, total groups, device chunk map, nbytes)

    @property
    def nbytes(self) -> int:
        """Bytes the launches write."""
        return sum(item[5] for item in self._items)

    def run(self, progress=None) -> None:
        """Enqueue the launches on the current stream (asynchronous: nothing waits for them)."""
        with self.device.activate():
            _, sms = compiled(self.device)
            for kernel, d_table, njobs, total, d_chunks, nbytes in self._items:
                blocks = int(min(-(-total // THREADS_PER_BLOCK), sms * 32))
                kernel((blocks,), (THREADS_PER_BLOCK,), (d_table, np.int32(njobs), np.uint64(total), d_chunks))
                if progress:
                    progress(nbytes)


def prepare(device, base: int, nbytes: int, jobs) -> Launches:
    """Check ``jobs`` and build their launches, to fill memory at device address ``base``.

    Compiles the kernels on first use on ``device`` and copies the job tables there.

    Args:
        device: the CUDA :class:`~gpuinit.device.Device` the memory is on.
        base, nbytes: the memory the jobs write, an arena (every job must fall inside it).
        jobs: :class:`~gpuinit.streams.FillJob` objects.

    Raises:
        GpuInitError: a job outside the memory, misaligned, of an unsupported dtype, or with a
            word offset that is not a multiple of 4.
    """
    from ..backend import cupy_module
    cupy = cupy_module()
    items = []
    with device.activate():
        mod, _ = compiled(device)
        for launch in launch_tables(base, jobs, nbytes):
            # A table of one job needs no map, but the kernel gets a real (all-zero) one rather than
            # a null pointer: no scalar-as-pointer argument to trust.
            chunks = launch.chunk_job if launch.chunk_job is not None else np.zeros(
                -(-launch.total_groups >> CHUNK_SHIFT), np.uint32)
            d_chunks = cupy.asarray(chunks)
            items.append((mod.get_function(name_expression(launch.dtype, launch.family)),
                          cupy.asarray(launch.table.view(np.uint8)), len(launch.table), launch.total_groups,
                          d_chunks, launch.nbytes))
    return Launches(device, items)


def fill(device, base: int, nbytes: int, jobs, progress=None) -> None:
    """The one door to the fill kernels: check ``jobs`` and run them into memory at ``base``.

    One launch per (dtype, family) present, asynchronous on the current stream (the caller
    synchronizes once, after all its work). See :func:`prepare` for the arguments.
    """
    prepare(device, base, nbytes, jobs).run(progress)


def fill_arrays(device, jobs) -> None:
    """Fill CuPy arrays on ``device`` through :func:`fill` (see :func:`jobs_from_arrays`)."""
    base, nbytes, fill_jobs = jobs_from_arrays(jobs)
    fill(device, base, nbytes, fill_jobs)
