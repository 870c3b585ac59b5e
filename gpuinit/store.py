"""The parameter store: the one place parameter memory is allocated, filled and accounted for.

``materialize`` takes parameters whose shapes are complete, together with how each is to be
initialized, and turns them into data as one step:

1. ask every initializer how it will fill its parameter (bad initializers fail here, before any
   memory is taken);
2. lay the parameters out in one arena per device at aligned offsets, and check the total against
   the device's free memory;
3. allocate each arena once and give every parameter a view into it;
4. run the declarative fills together (chunked on every core for NumPy, fused launches for CuPy),
   then the Python hooks, each with its parameter's stream active;
5. only then attach the views to the parameters.

If anything fails, the arenas are dropped, no parameter changes, and the error names the
parameter. So a parameter is either fully initialized or untouched.
"""

from __future__ import annotations

import contextlib
import gc
import math
import threading
import time
import traceback
import weakref
from dataclasses import dataclass

import numpy as np

from . import streams
from .errors import GpuInitError, InitializerError, OutOfMemoryError
from .init import InitDesc

ALIGNMENT = 256  # bytes; CUDA's allocation granularity for coalesced access, fine for SIMD too

_accounting_lock = threading.Lock()
_live: dict = {}  # id(arena) -> (device, nbytes), removed by a finalizer when the arena dies
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


_observer: dict = {}


@contextlib.contextmanager
def observe(progress):
    """Report the progress of every materialization in the block to ``progress(nbytes)``."""
    previous = _observer.get("progress")
    _observer["progress"] = progress
    try:
        yield
    finally:
        _observer["progress"] = previous


def live_bytes(device=None) -> int:
    """Bytes of parameter arenas alive now (on ``device``, or on all devices)."""
    with _accounting_lock:
        return sum(n for d, n in _live.values() if device is None or d == device)


def _track(arena, device, nbytes) -> None:
    key = id(arena)
    with _accounting_lock:
        _live[key] = (device, nbytes)

    def forget():
        with _accounting_lock:
            _live.pop(key, None)
    weakref.finalize(arena, forget)


@dataclass
class Slot:
    """One parameter's place in its arena and how it will be filled."""

    param: object
    request: object
    desc: object
    plan: object  # a Fill or a callable hook
    size: int = 0    # elements held: the parameter's, or a shard's
    nbytes: int = 0
    offset: int = 0
    start: int = 0   # the first of the parameter's (flat) elements held: 0 but in a shard


def layout(slots) -> int:
    """Assign aligned offsets to ``slots`` in order; return the arena's size in bytes."""
    offset = 0
    for slot in slots:
        slot.offset = offset
        offset += align(slot.nbytes)
    return offset


def place(slots) -> tuple[dict, dict]:
    """Group ``slots`` by device, lay each group out and check that it fits, allocating nothing.

    Returns:
        ``({device: [slot, ...]}, {device: arena bytes})``.
    """
    by_device: dict = {}
    for slot in slots:
        by_device.setdefault(slot.request.device, []).append(slot)
    sizes = {device: layout(group) for device, group in by_device.items()}
    for device, size in sizes.items():
        check_fits(device, size)
    return by_device, sizes


def check_fits(device, needed: int) -> None:
    """Raise :class:`OutOfMemoryError` if ``needed`` bytes will not fit on ``device`` now."""
    free, _total = device.memory_info()
    if free is not None and needed > free:
        raise OutOfMemoryError(
            f"parameters need {format_bytes(needed)} on {device}, {format_bytes(free)} free; "
            f"{format_bytes(needed - free)} short. Nothing was allocated. Use a smaller model or "
            "dtype (dtype='float16'), another device, or check the plan first with gpuinit.plan()")


def describe(param, request):
    return InitDesc(param.name, role=param.role, path=request.path, shape=param.shape,
                    dtype=param.dtype, own=request.own)


def plan_slots(entries) -> list[Slot]:
    """Ask each initializer how it fills its parameter; fail before any allocation."""
    slots = []
    for param, request in entries:
        desc = describe(param, request)
        try:
            plan = request.initializer.plan_fill(desc)
        except GpuInitError:
            raise
        except Exception as exc:
            raise InitializerError(f"initializer {request.initializer!r} cannot fill parameter "
                                   f"{param.name!r} (shape {param.shape!r}): {exc}") from exc
        size = math.prod(param.shape)
        slots.append(Slot(param, request, desc, plan, size, size * param.dtype.itemsize))
    return slots


def _allocate(device, nbytes: int):
    """One arena of ``nbytes`` (rounded up), aligned to :data:`ALIGNMENT` bytes."""
    if device.is_gpu:
        with device.activate():
            try:
                arena = device.xp.empty(max(nbytes, 1), dtype=np.uint8)
            except Exception as exc:  # cupy.cuda.memory.OutOfMemoryError
                raise OutOfMemoryError(f"allocating {format_bytes(nbytes)} of parameters on {device} "
                                       f"failed: {exc}") from exc
        return arena
    raw = np.empty(max(nbytes, 1) + ALIGNMENT, dtype=np.uint8)
    pad = (-raw.ctypes.data) % ALIGNMENT
    return raw[pad:pad + max(nbytes, 1)]


def _owner(arena):
    """The object whose lifetime is the arena memory's: the array every view of the arena keeps
    as its ``base`` (NumPy and CuPy alike). Not CuPy's memory block: a ``PooledMemory`` cannot be
    weakly referenced."""
    return arena.base if arena.base is not None else arena


class ArenaSlice:
    """A parameter's place in its arena, made into an array view on first use.

    A CuPy view costs microseconds to create; a model of 10,000 parameters should not pay that
    before anyone asks for the data (the GPU kernels fill by address, not through views).
    """

    __slots__ = ("arena", "offset", "shape", "dtype")

    def __init__(self, arena, offset: int, shape, dtype):
        self.arena, self.offset, self.shape, self.dtype = arena, offset, shape, dtype

    def view(self):
        nbytes = math.prod(self.shape) * self.dtype.itemsize
        return self.arena[self.offset:self.offset + nbytes].view(self.dtype).reshape(self.shape)


def _view(arena, slot):
    return ArenaSlice(arena, slot.offset, slot.param.shape, slot.param.dtype).view()


def flat_view(arena, slot):
    """The slot's elements in the arena, one-dimensional (a whole parameter's or a shard's)."""
    return arena[slot.offset:slot.offset + slot.nbytes].view(slot.param.dtype)


def fill_declared(device, arena, slots, progress=None) -> None:
    """Run the declarative fills (``Fill`` plans) of ``slots`` in ``arena``, all together: fused
    launches by address on a GPU, chunks on every core on the CPU. Each slot gets elements
    ``[slot.start, slot.start + slot.size)`` of its parameter's stream."""
    if device.is_gpu:
        from . import kernels
        for dtype, family, table, total, nbytes in fill_tables(int(arena.data.ptr), slots):
            kernels.launch(device, dtype, family, table, total)
            if progress:
                progress(nbytes)
    else:
        streams.fill_many([(flat_view(arena, s), s.plan, s.request.key, 0, s.start) for s in slots], progress)


def fill_tables(base: int, slots) -> list:
    """The GPU launches that fill ``slots`` in an arena at address ``base``.

    Returns:
        ``(dtype, family, table, total_groups, nbytes)`` per launch: one per (dtype, family)
        present, each table listing its parameters by address (see ``gpuinit.kernels``).
    """
    from . import kernels
    groups: dict = {}
    for slot in slots:
        if slot.size:
            groups.setdefault((slot.param.dtype, slot.plan.family), []).append(slot)
    launches = []
    for (dtype, family), group in groups.items():
        fills, fill_index = kernels.distinct_fills([s.plan for s in group])
        offsets = np.fromiter((s.offset for s in group), np.uint64, len(group))
        table, total = kernels.table_from_columns(
            dtype, family, offsets + np.uint64(base), [s.size for s in group],
            [s.request.key for s in group], fills, fill_index, begin=[s.start for s in group])
        launches.append((dtype, family, table, total, sum(s.nbytes for s in group)))
    return launches


def _run_hook(slot, view) -> None:
    view[...] = 0
    try:
        with streams.Stream(slot.request.key):
            slot.plan(view)
    except GpuInitError as exc:
        if slot.param.name in str(exc):
            raise
        raise InitializerError(f"initializing parameter {slot.param.name!r} (shape "
                               f"{slot.param.shape!r}) failed: {exc}") from exc
    except Exception as exc:
        raise InitializerError(f"initializer {slot.request.initializer!r} failed on parameter "
                               f"{slot.param.name!r} (shape {slot.param.shape!r}): "
                               f"{type(exc).__name__}: {exc}") from exc


def release_after_failure(exc: BaseException, devices) -> None:
    """Free what a failed step allocated while its exception is still alive: clear the locals of
    the finished frames in its traceback (and its cause's: a hook's ``arr`` lives there), then
    return the devices' pooled blocks. The caller drops its own references first."""
    for chained in (exc, exc.__cause__, exc.__context__):
        if chained is not None:
            traceback.clear_frames(chained.__traceback__)
    for device in devices:
        if device.is_gpu:
            with device.activate():
                device.xp.get_default_memory_pool().free_all_blocks()


@contextlib.contextmanager
def gc_paused():
    """Pause Python's cyclic garbage collector for a block.

    A materialization makes a few small objects per parameter; for thousands of parameters that
    triggers collections which traverse every object of the process, and with a big library
    loaded (torch is 10**5 objects) they take most of the time: 10,000 parameters' bookkeeping
    measured 84 ms with them, 26 ms without, on the benchmark VM. Reference counting still frees
    everything as usual.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def materialize(entries, progress=None) -> int:
    """Allocate and fill parameters as one all-or-nothing step.

    Args:
        entries: ``(param, InitRequest)`` pairs; every shape must be complete.
        progress: optional ``fn(nbytes)`` called as each piece of ``nbytes`` is filled.

    Returns:
        The number of bytes allocated.

    Raises:
        OutOfMemoryError: the parameters do not fit; nothing was allocated.
        InitializerError: an initializer failed; nothing was initialized, memory was released.
    """
    with gc_paused():
        return _materialize(list(entries), progress)


def _materialize(entries, progress) -> int:
    if not entries:
        return 0
    started = time.perf_counter()
    progress = progress or _observer.get("progress")
    slots = plan_slots(entries)
    by_device, sizes = place(slots)
    arenas, views = {}, {}
    try:
        for device, group in by_device.items():
            arena = _allocate(device, sizes[device])
            arenas[device] = arena
            fill_declared(device, arena, [s for s in group if isinstance(s.plan, streams.Fill)], progress)
            hooks = [s for s in group if not isinstance(s.plan, streams.Fill)]
            with device.activate():
                for slot in hooks:
                    views[id(slot)] = _view(arena, slot)
                    _run_hook(slot, views[id(slot)])
                    if progress:
                        progress(slot.nbytes)
            if device.is_gpu:
                with device.activate():
                    device.xp.cuda.get_current_stream().synchronize()
    except BaseException as exc:
        # Give the memory back now, not when the exception is collected: drop our references
        # and the locals of the finished frames in its traceback (a hook's ``arr`` among them).
        views.clear()
        devices = list(arenas)
        arenas.clear()
        arena = None  # noqa: F841 - releases the last local reference
        release_after_failure(exc, devices)
        raise
    for device, arena in arenas.items():
        _track(_owner(arena), device, sizes[device])
    for slot in slots:
        view = views.get(id(slot))
        slot.param._data = view if view is not None else ArenaSlice(arenas[slot.request.device], slot.offset,
                                                                    slot.param.shape, slot.param.dtype)
        slot.param._request = slot.request
    total = sum(sizes.values())
    last_materialization.update(bytes=total, seconds=time.perf_counter() - started,
                                devices=[str(d) for d in sizes])
    return total
