"""The parameter store: the one place parameter memory is laid out, checked, allocated and counted.

Parameters are not allocated one by one: a materialization lays all of them out (:func:`layout`,
each at an aligned offset, for all of them at once), checks each device's total against its free
memory (:func:`place`), and takes one arena per device (:func:`allocate`). The store counts the arenas
alive (:func:`live_bytes`) until their last view is gone, and gives a failed step's memory back at
once (:func:`release_after_failure`). What goes into the arenas, and when, is the lifecycle's
business (:mod:`gpuinit.lifecycle`); how, the fill engine's (:mod:`gpuinit.engine`).
"""

from __future__ import annotations

import contextlib
import gc
import math
import mmap
import threading
import traceback
import weakref
import numpy as np

from .errors import OutOfMemoryError
from .arrays import NDArray

_MAP_POPULATE = getattr(mmap, "MAP_POPULATE", 0)  # Linux only

ALIGNMENT = 256  # bytes; CUDA's allocation granularity for coalesced access, fine for SIMD too

# Reentrant: an arena's finalizer takes it, and the cyclic GC may run one while this thread holds it.
_accounting_lock = threading.RLock()
_live: dict = {}  # id(owner) -> (device, nbytes), removed by a finalizer when the arena dies
# The most recent successful materialization: bytes, seconds (allocation and fills), devices.
last_materialization: dict = {}


def align(n: int) -> int:
    return -(-n // ALIGNMENT) * ALIGNMENT


def format_bytes(n: int | None) -> str:
    """``1.50 GiB``-style text for a byte count (``unknown`` for None)."""
    if n is None:
        return "unknown"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.2f} {unit}"
        value /= 1024
    return f"{n} B"


def live_bytes(device=None) -> int:
    """Bytes of parameter arenas alive now (on ``device``, or on all devices)."""
    with _accounting_lock:
        return sum(n for d, n in _live.values() if device is None or d == device)


def track(arena, device, nbytes: int) -> None:
    """Count ``arena`` in :func:`live_bytes` until the memory is freed."""
    owner = _owner(arena)
    key = id(owner)
    with _accounting_lock:
        _live[key] = (device, nbytes)

    def forget():
        with _accounting_lock:
            _live.pop(key, None)
    weakref.finalize(owner, forget)


def _owner(arena):
    """The object whose lifetime is the arena memory's: the array every view of the arena keeps
    as its ``base`` (NumPy and CuPy alike). Not CuPy's memory block: a ``PooledMemory`` cannot be
    weakly referenced."""
    return arena.base if arena.base is not None else arena


def layout(nbytes) -> tuple[np.ndarray, int]:
    """Offsets, each aligned to :data:`ALIGNMENT`, for blocks of ``nbytes`` laid out in order.

    Returns:
        ``(offsets, size)``: an int64 array of offsets and the arena's size in bytes.
    """
    nbytes = np.asarray(nbytes, np.int64).reshape(-1)
    aligned = (nbytes + (ALIGNMENT - 1)) // ALIGNMENT * ALIGNMENT
    ends = np.cumsum(aligned)
    return ends - aligned, int(ends[-1]) if ends.size else 0


def place(devices, nbytes) -> dict:
    """Group blocks by device, lay each group out and check that it fits, allocating nothing.

    Args:
        devices: the device of each block; nbytes: its size.

    Returns:
        ``{device: (indices, offsets, arena bytes)}``: the blocks' positions in ``devices``, their
        offsets in that device's arena, and the arena's size.

    Raises:
        OutOfMemoryError: some device has too little free memory; nothing was allocated.
    """
    nbytes = np.asarray(nbytes, np.int64).reshape(-1)
    first = devices[0] if len(devices) else None
    if all(d is first for d in devices) or all(d == first for d in devices):  # the usual case: one device
        groups = {first: np.arange(len(devices))} if len(devices) else {}
    else:
        order: dict = {}
        codes = np.fromiter((order.setdefault(d, len(order)) for d in devices), np.intp, len(devices))
        groups = {d: np.flatnonzero(codes == c) for d, c in order.items()}
    placed = {}
    for device, indices in groups.items():
        offsets, size = layout(nbytes[indices])
        check_fits(device, size)
        placed[device] = (indices, offsets, size)
    return placed


def check_fits(device, needed: int) -> None:
    """Raise :class:`OutOfMemoryError` if ``needed`` bytes will not fit on ``device`` now."""
    free, _total = device.memory_info()
    if free is not None and needed > free:
        raise OutOfMemoryError(
            f"parameters need {format_bytes(needed)} on {device}, {format_bytes(free)} free; "
            f"{format_bytes(needed - free)} short. Nothing was allocated. Use a smaller model or "
            "dtype (dtype='float16'), another device, or check the plan first with gpuinit.plan()")


def allocate(device, nbytes: int, populate: bool = False):
    """One arena of ``nbytes`` (at least one byte) on ``device``, aligned to :data:`ALIGNMENT`.

    ``populate`` (host memory, Linux): have the kernel back every page at once (``MAP_POPULATE``)
    rather than page by page on first touch, for an arena one thread fills front to back (a
    checkpoint load): on the benchmark VM, first-touch faults cost more than the copy itself.
    Fills that many threads share keep first touch, which they spread over the cores.

    Raises:
        OutOfMemoryError: the device could not give the memory.
    """
    size = max(nbytes, 1)
    try:
        if device.is_gpu:
            with device.activate():
                return device.xp.empty(size, dtype=np.uint8)
        if populate and _MAP_POPULATE and size >= 1 << 20:
            # Page-aligned; the array's buffer keeps the mapping, unmapped when its last view dies.
            mapping = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | _MAP_POPULATE)
            return np.frombuffer(mapping, np.uint8, size)
        raw = np.empty(size + ALIGNMENT, dtype=np.uint8)
    except (MemoryError, OSError) as exc:  # NumPy's, CuPy's OutOfMemoryError (a MemoryError), mmap's ENOMEM
        raise OutOfMemoryError(f"allocating {format_bytes(nbytes)} of parameters on {device} failed: "
                               f"{exc}; nothing was initialized. Free memory, or use a smaller model "
                               "or dtype") from exc
    pad = (-raw.ctypes.data) % ALIGNMENT
    return raw[pad:pad + size]


class ArenaSlice:
    """A parameter's place in its arena, made into an array view on first use.

    A CuPy view costs microseconds to create; a model of 10,000 parameters should not pay that
    before anyone asks for the data (the GPU kernels fill by address, not through views).
    """

    __slots__ = ("arena", "offset", "shape", "dtype", "_array")

    def __init__(self, arena, offset: int, shape, dtype):
        self.arena, self.offset, self.shape, self.dtype = arena, offset, shape, dtype
        self._array = None

    def view(self):
        """A new view of the slice, shaped as the parameter."""
        nbytes = math.prod(self.shape) * self.dtype.itemsize
        return self.arena[self.offset:self.offset + nbytes].view(self.dtype).reshape(self.shape)

    def array(self):
        """The view, made on the first call and the same object after."""
        if self._array is None:
            view = self.view()
            if type(view) is np.ndarray:  # on the CPU an NDArray (MXNet's methods) over the arena itself
                view = NDArray(self.shape, self.dtype, buffer=self.arena, offset=self.offset)
            self._array = view
        return self._array


def flat_view(arena, offset: int, count: int, dtype):
    """``count`` elements of ``dtype`` from byte ``offset`` of the arena, one-dimensional (a whole
    parameter's or a shard's)."""
    return arena[offset:offset + count * dtype.itemsize].view(dtype)


def release_after_failure(exc: BaseException, devices) -> None:
    """Free what a failed step allocated while its exception is still alive: clear the locals of
    the finished frames in its traceback and in those of its whole chain of causes and contexts
    (a hook's ``arr`` lives there), then return the devices' pooled blocks. The caller drops its
    own references first."""
    seen, pending = set(), [exc]
    while pending:  # the exception, its causes and contexts, however deep
        chained = pending.pop()
        if chained is None or id(chained) in seen:
            continue
        seen.add(id(chained))
        traceback.clear_frames(chained.__traceback__)
        pending += [chained.__cause__, chained.__context__]
    for device in devices:
        if device.is_gpu:
            with device.activate():
                device.xp.get_default_memory_pool().free_all_blocks()


_gc_lock = threading.Lock()
_gc_pauses = {"count": 0, "was_enabled": False}


@contextlib.contextmanager
def gc_paused():
    """Pause Python's cyclic garbage collector for a block (nested and concurrent blocks too).

    A materialization makes a few small objects per parameter; for thousands of parameters that
    triggers collections which traverse every object of the process, and with a big library
    loaded (torch is 10**5 objects) they take most of the time: 10,000 parameters' bookkeeping
    measured 84 ms with them, 26 ms without, on the benchmark VM. Reference counting still frees
    everything as usual. The collector comes back when the last block ends, if it was on.
    """
    with _gc_lock:
        if _gc_pauses["count"] == 0:
            _gc_pauses["was_enabled"] = gc.isenabled()
            gc.disable()
        _gc_pauses["count"] += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pauses["count"] -= 1
            if _gc_pauses["count"] == 0 and _gc_pauses["was_enabled"]:
                gc.enable()
