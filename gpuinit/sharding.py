"""Sharded initialization: a rank's slice of every parameter, equal to that slice of the whole.

ZeRO-3 and FSDP never hold a whole parameter on one device: each of ``world_size`` ranks keeps a
contiguous slice of every parameter's flattened elements. :func:`shard` materializes exactly that
slice and nothing more, with the numbers the unsharded initialization gives those elements: a
parameter's stream yields any element range alone (``gpuinit.streams``), on the CPU and in the
GPU kernels. So a model initialized in shards and gathered is, bit for bit, the model initialized
whole, for any world size and on any device.

Rank ``r`` of ``N`` holds flat elements ``[r c, min(n, (r + 1) c))`` of a parameter of ``n``
elements, ``c = ceil(n / N)`` (FSDP's split: the last ranks' slices may be shorter, or empty).

Example:
    >>> import gpuinit
    >>> from gpuinit import nn
    >>> net = nn.Dense(6, in_units=4)
    >>> net.initialize(device="cpu", seed=0, defer=True)  # record how; allocate nothing
    >>> part = gpuinit.shard(net, rank=1, world_size=4)
    >>> part["weight"].shape, part["bias"].shape
    ((6,), (2,))
"""

from __future__ import annotations

from . import store, streams
from .errors import DeferredInitializationError, GpuInitError, UninitializedParameterError


def shard_range(size: int, rank: int, world_size: int) -> tuple[int, int]:
    """``(start, stop)`` of rank ``rank``'s slice of ``size`` flat elements among ``world_size``."""
    chunk = -(-size // world_size)
    start = min(size, rank * chunk)
    return start, min(size, start + chunk)


def _check(rank, world_size) -> None:
    if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 1:
        raise GpuInitError(f"world_size must be a positive integer, got {world_size!r}")
    if isinstance(rank, bool) or not isinstance(rank, int) or not 0 <= rank < world_size:
        raise GpuInitError(f"rank must be an integer in [0, {world_size}), got {rank!r}")


def _entries(params):
    entries = []
    for p in {id(p): p for p in params.values()}.values():
        if p._request is None:
            raise UninitializedParameterError(
                f"parameter {p.name!r} has no initializer yet: call net.initialize(...) first "
                "(defer=True records it without allocating)")
        if not p.shape_known:
            raise DeferredInitializationError(
                f"parameter {p.name!r} has shape {p.shape!r}, not fully known: run "
                "gpuinit.plan(net, example_input) first, which infers every shape and allocates nothing")
        entries.append((p, p._request))
    return entries


def shard(net, rank: int, world_size: int) -> dict:
    """Rank ``rank``'s slice of every parameter of ``net``, among ``world_size`` ranks.

    The parameters need ``initialize()`` called (``defer=True`` allocates nothing) and complete
    shapes (``gpuinit.plan`` infers them without allocating). They are left as they are: the
    slices are new arrays, on the device each parameter was initialized for, all in one arena per
    device. Declarative fills produce only the slice; a custom Python initializer (a Gluon
    ``_init_weight`` override, ``Orthogonal``) needs its whole parameter, which is made in a
    temporary array, one parameter at a time, and dropped.

    Args:
        net: a :class:`~gpuinit.nn.Block` or a :class:`~gpuinit.parameter.ParameterDict`.
        rank, world_size: which slice (see :func:`shard_range`).

    Returns:
        ``{path: 1-D array}``, keyed by each parameter's structural path (``"0.weight"``).

    Raises:
        GpuInitError: a bad rank or world size; UninitializedParameterError: ``initialize`` was not
            called; DeferredInitializationError: a shape is still unknown; OutOfMemoryError: the
            slices do not fit. Nothing is allocated, or kept, on failure.
    """
    from .parameter import materialize_lock
    _check(rank, world_size)
    params = net.collect_params() if hasattr(net, "collect_params") else net
    with materialize_lock, store.gc_paused():
        entries = _entries(params)
        slots = store.plan_slots(entries)
        for slot in slots:
            slot.start, stop = shard_range(slot.size, rank, world_size)
            slot.size = stop - slot.start
            slot.nbytes = slot.size * slot.param.dtype.itemsize
        by_device, sizes = store.place(slots)
        arenas, out = {}, {}
        try:
            for device, group in by_device.items():
                arena = arenas[device] = store._allocate(device, sizes[device])
                store.fill_declared(device, arena, [s for s in group if isinstance(s.plan, streams.Fill)])
                with device.activate():
                    for slot in group:
                        view = store.flat_view(arena, slot)
                        if not isinstance(slot.plan, streams.Fill):
                            whole = device.xp.empty(slot.param.shape, slot.param.dtype)
                            store._run_hook(slot, whole)
                            view[...] = whole.reshape(-1)[slot.start:slot.start + slot.size]
                            whole = None
                        out[slot.request.path] = view
                    if device.is_gpu:
                        device.xp.cuda.get_current_stream().synchronize()
        except BaseException as exc:
            out.clear()
            arena = whole = view = None  # noqa: F841 - drop the last local references
            devices = list(arenas)
            arenas.clear()
            store.release_after_failure(exc, devices)
            raise
        for device, arena in arenas.items():
            store._track(store._owner(arena), device, sizes[device])
    return out

