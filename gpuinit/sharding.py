"""Sharded initialization: a rank's slice of every parameter, equal to that slice of the whole.

ZeRO-3 and FSDP never hold a whole parameter on one device: each of ``world_size`` ranks keeps a
contiguous slice of every parameter's flattened elements. :func:`shard` materializes exactly that
slice and nothing more, with the numbers the unsharded initialization gives those elements: a
parameter's stream yields any element range alone (``gpuinit.streams``), on the CPU and in the
GPU kernels. So a model initialized in shards and gathered is, bit for bit, the model initialized
whole, for any world size and on any device.

Rank ``r`` of ``N`` holds flat elements ``[r c, min(n, (r + 1) c))`` of a parameter of ``n``
elements, ``c = ceil(n / N)`` (FSDP's split: the last ranks' slices may be shorter, or empty).
With ``split="dim0"`` it holds whole rows instead, the first dimension chunked the same way (FSDP2's
and DTensor's ``Shard(0)``).

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

import math
from typing import NamedTuple

import numpy as np

from . import checks, engine, lifecycle
from .errors import ArgumentError, ArgumentTypeError, ShapeError
from .streams import FillJobs


def shard_range(size: int, rank: int, world_size: int) -> tuple[int, int]:
    """``(start, stop)`` of rank ``rank``'s slice of ``size`` flat elements among ``world_size``."""
    chunk = -(-size // world_size)
    start = min(size, rank * chunk)
    return start, min(size, start + chunk)


def block_runs(shape, index) -> tuple[np.ndarray, int]:
    """The runs of flat elements that make up block ``index`` of a row-major array of ``shape``.

    A block of a multi-dimensional parameter (a device's shard of a JAX or DTensor parameter split
    along its second axis, say) is not one element range of the flattened parameter but a run per
    row: the trailing axes the block takes whole, and the last axis it cuts, are contiguous; the
    axes before that give one run per combination of their indices. Generating each run alone
    (its stream elements ``[start, start + length)``) makes the block without the whole parameter.

    Args:
        shape: the whole parameter's shape.
        index: one ``slice`` (step 1, or None) per axis, as ``jax.Array`` shards and NumPy basic
            indexing give them; missing trailing axes are taken whole.

    Returns:
        ``(starts, length)``: the first flat element of each run (int64, in the block's row-major
        order) and the length of every run. An empty block has no runs.

    Example:
        >>> from gpuinit.sharding import block_runs
        >>> starts, length = block_runs((4, 6), (slice(0, 2), slice(3, 6)))  # rows 0-1, columns 3-5
        >>> starts.tolist(), length
        ([3, 9], 3)

    Raises:
        ShapeError: more slices than axes, or a slice with a step other than 1.
    """
    shape = tuple(int(d) for d in shape)
    index = tuple(index)
    if len(index) > len(shape):
        raise ShapeError(f"block index {index!r} has {len(index)} slices for a parameter of shape {shape!r}")
    bounds = []
    for axis, size in enumerate(shape):
        part = index[axis] if axis < len(index) else slice(None)
        if not isinstance(part, slice):
            raise ShapeError(f"block index {index!r}: axis {axis} must be a slice, got {part!r}")
        start, stop, step = part.indices(size)
        if step != 1:
            raise ShapeError(f"block index {index!r}: axis {axis} has step {step}; blocks take contiguous ranges")
        bounds.append((start, max(start, stop)))
    lengths = [b - a for a, b in bounds]
    if math.prod(lengths) == 0:
        return np.zeros(0, np.int64), 0
    # The last axis the block cuts; the axes after it are whole, so the run goes on through them.
    cut = max((axis for axis, (a, b) in enumerate(bounds) if (a, b) != (0, shape[axis])), default=-1)
    if cut < 0:
        return np.zeros(1, np.int64), math.prod(shape)
    strides = [math.prod(shape[axis + 1:]) for axis in range(len(shape))]
    length = lengths[cut] * strides[cut]
    starts = np.array([bounds[cut][0] * strides[cut]], np.int64)
    for axis in range(cut - 1, -1, -1):  # outer axes: every index of each, in row-major order
        offsets = np.arange(bounds[axis][0], bounds[axis][1], dtype=np.int64) * strides[axis]
        starts = (offsets[:, None] + starts[None, :]).reshape(-1)
    return starts, length


def block_jobs(offset: int, dtype, key, fill, shape, index) -> FillJobs:
    """Fill jobs that write block ``index`` of a parameter into memory laid out row-major.

    The block's elements go, in its row-major order, from byte ``offset`` of the memory the jobs
    run on (:func:`gpuinit.engine.run`): one job per run of :func:`block_runs`, each the
    parameter's stream ``key`` and ``fill`` from the run's first element. Jobs of many blocks
    (all the shards one device holds) can be joined and run together.

    Args:
        offset: where the block's first element goes, in bytes.
        dtype: the parameter's dtype; ``key``: its stream's key, ``(k0, k1)``; ``fill``: its
            :class:`~gpuinit.streams.Fill`; ``shape``, ``index``: as :func:`block_runs`.
    """
    starts, length = block_runs(shape, index)
    dtype = np.dtype(dtype)
    n = len(starts)
    offsets = offset + np.arange(n, dtype=np.int64) * (length * dtype.itemsize)
    keys = np.broadcast_to(np.asarray(key, np.uint64).reshape(1, 2), (n, 2))
    return FillJobs(offsets.tolist(), [dtype] * n, [length] * n, keys, [fill] * n, starts.tolist(), [0] * n)


def fill_block(device, out, fill, key, shape, index) -> None:
    """Fill ``out``, a caller-owned C-contiguous array, with block ``index`` of a parameter.

    ``out`` gets exactly the numbers the whole parameter of ``shape`` would have there (stream
    ``key``, ``fill``), made alone, with no temporary of the whole: the element-range fill of
    :mod:`gpuinit.sharding` for a block of any shape. On a GPU the fill is asynchronous on the
    current stream.

    Args:
        device: the :class:`~gpuinit.device.Device` ``out`` is on (NumPy on the CPU, CuPy on a GPU).
        out: the block's array, of the block's shape (or its size) and the parameter's dtype.
        fill, key, shape, index: as :func:`block_jobs`.

    Example:
        >>> import numpy as np
        >>> from gpuinit import cpu
        >>> from gpuinit.sharding import fill_block
        >>> from gpuinit.streams import Fill, derive_key
        >>> key, fill = derive_key(0, "w"), Fill.normal(0.0, 1.0)
        >>> whole, part = np.empty((4, 6), np.float32), np.empty((4, 2), np.float32)
        >>> fill_block(cpu(), whole, fill, key, (4, 6), ())
        >>> fill_block(cpu(), part, fill, key, (4, 6), (slice(None), slice(2, 4)))
        >>> bool((part == whole[:, 2:4]).all())
        True

    Raises:
        ShapeError: ``out`` has not the block's number of elements or is not C-contiguous.
    """
    starts, length = block_runs(shape, index)
    if out.size != len(starts) * length or not out.flags.c_contiguous:
        raise ShapeError(f"fill_block: the block {tuple(index)!r} of shape {tuple(shape)!r} has "
                         f"{len(starts) * length} elements, got a{'' if out.flags.c_contiguous else ' non-contiguous'} "
                         f"array of shape {tuple(out.shape)!r}; pass a C-contiguous array of the block's shape")
    if not out.size:
        return
    engine.run(device, out.reshape(-1).view(np.uint8), block_jobs(0, out.dtype, key, fill, shape, index))


def _check(rank, world_size) -> tuple[int, int]:
    hint = "pass integers with 0 <= rank < world_size, e.g. shard(net, rank=0, world_size=8)"
    world_size = checks.positive_int(world_size, "world_size", "shard", hint=hint)
    rank = checks.integer(rank, "rank", "shard", hint=hint)
    if not 0 <= rank < world_size:
        raise ArgumentError(f"shard: rank must be an integer in [0, {world_size}), got {rank!r}; {hint}")
    return rank, world_size


def shard(net, rank: int, world_size: int, split: str = "flat") -> dict:
    """Rank ``rank``'s slice of every parameter of ``net``, among ``world_size`` ranks.

    The parameters need ``initialize()`` called (``defer=True`` allocates nothing) and complete
    shapes (``gpuinit.plan`` infers them without allocating). They are left as they are: the
    slices are new arrays, on the device each parameter was initialized for, all in one arena per
    device. Declarative fills produce only the slice; a custom Python initializer (a Gluon
    ``_init_weight`` override, ``Orthogonal``) needs its whole parameter, which is made in a
    temporary array, one parameter at a time, and dropped.

    Args:
        net: a :class:`~gpuinit.nn.Block` or a :class:`~gpuinit.parameter.ParameterDict`.
        rank, world_size: which slice (see :func:`shard_range`); Python or NumPy integers.
        split: ``"flat"`` (a contiguous range of the flattened elements, :func:`shard_range`) or
            ``"dim0"`` (whole rows: the first dimension chunked as ``torch.chunk`` and FSDP2's
            ``Shard(0)`` chunk it, :func:`dim0_range`; a slice is still returned flat).

    Returns:
        ``{path: 1-D array}``, keyed by each parameter's structural path (``"0.weight"``).

    Raises:
        ArgumentError: a bad rank or world size; UninitializedParameterError: ``initialize`` was
            not called; DeferredInitializationError: a shape is still unknown; OutOfMemoryError:
            the slices do not fit. Nothing is allocated, or kept, on failure.
    """
    rank, world_size = _check(rank, world_size)
    checks.choice(split, ("flat", "dim0"), "split", "shard",
                  hint='pass split="flat" (ZeRO-3, FSDP1) or split="dim0" (FSDP2, DTensor Shard(0))')
    if hasattr(net, "collect_params"):
        params = net.collect_params()
    elif hasattr(net, "values") and hasattr(net, "path_of"):
        params = net
    else:
        raise ArgumentTypeError(f"shard takes a Block or a ParameterDict, got {type(net).__name__}; pass the "
                                "network whose parameters to shard")
    if split == "dim0":
        return lifecycle.shard(list(params.values()), lambda shape: dim0_range(shape, rank, world_size))
    return lifecycle.shard(list(params.values()), lambda shape: shard_range(math.prod(shape), rank, world_size))


def dim0_range(shape, rank: int, world_size: int) -> tuple[int, int]:
    """``(start, stop)`` flat elements of rank ``rank``'s rows of a parameter of ``shape`` split on
    its first dimension among ``world_size`` ranks, as ``torch.chunk`` (and so FSDP2's ``Shard(0)``)
    splits it: ``c = ceil(shape[0] / world_size)`` rows each, the last ranks' fewer or none. A
    scalar counts as one row."""
    shape = tuple(shape) or (1,)
    row = math.prod(shape[1:])
    first, last = shard_range(shape[0], rank, world_size)
    return first * row, last * row


class Piece(NamedTuple):
    """Elements ``[start, start + out.size)`` of the parameter ``path`` (of ``shape``), filled by
    ``initializer`` into ``out``, a caller-owned C-contiguous 1-D NumPy or CuPy array: see
    :func:`fill_pieces`."""

    out: object
    path: str
    shape: tuple
    initializer: object
    start: int = 0
    role: str = "weight"


def fill_pieces(device, pieces, seed: int) -> None:
    """Fill caller-owned memory with element ranges of named parameters, with no copy.

    A piece's numbers are those the parameter ``path`` of ``shape`` gets from ``initializer``
    under ``seed`` (its stream keyed by ``path``, :mod:`gpuinit.streams.keys`), elements
    ``[start, start + out.size)`` of its row-major flattening: so a whole parameter, a shard of
    it, or its ranks' shards gathered, are the same bits on every device. Declarative fills run
    fused through the fill engine (:func:`gpuinit.engine.fill_arrays`: the GPU kernels on the
    current stream, or the CPU engine); a Python initializer (``Orthogonal``, a Gluon hook) fills
    a temporary whole parameter with its stream active, of which the range is copied.

    This is the bridges' door into the fills (``gpuinit.torch`` hands it views of torch's
    memory); gpuinit's own parameters go through :mod:`gpuinit.lifecycle` instead.

    Args:
        device: the :class:`~gpuinit.device.Device` every ``out`` is on.
        pieces: :class:`Piece` objects (or tuples in its order).
        seed: the seed the keys are derived from.

    Raises:
        InitializerError: an initializer cannot fill its parameter (named, with its shape), or
            its values would overflow the dtype; GpuInitError: an ``out`` the fills cannot write.
            Memory already written may hold part of the numbers then.
    """
    from .engine import fill_arrays
    from .errors import GpuInitError
    from .init.base import InitDesc, resolve_fill, run_hook
    from .streams import Fill
    from .streams.keys import derive_key_array

    pieces = [Piece(*p) for p in pieces]
    if not pieces:
        return
    keys = derive_key_array(seed, [p.path for p in pieces])
    jobs, hooks = [], []
    known: dict = {}
    for piece, key in zip(pieces, keys):
        dtype = piece.out.dtype
        kind = (id(piece.initializer), piece.role, piece.shape, dtype.str)
        how = known.get(kind)
        if how is None:
            desc = InitDesc(piece.path, piece.role, piece.path, piece.shape, dtype, own=True)
            how = resolve_fill(piece.initializer, desc)
            if type(piece.initializer).__dict__.get("pure_fills") is not None:
                known[kind] = how
        total = math.prod(piece.shape)
        if piece.start < 0 or piece.start + piece.out.size > total:
            raise GpuInitError(f"parameter {piece.path!r}: elements [{piece.start}, {piece.start + piece.out.size}) "
                               f"are outside its {total} elements")
        if type(how) is Fill:
            jobs.append((piece.out, how, (int(key[0]), int(key[1])), 0, piece.start))
        elif piece.out.size:
            hooks.append((piece, how, (int(key[0]), int(key[1]))))
    fill_arrays(device, jobs)
    for piece, hook, key in hooks:
        with device.activate():
            whole = device.xp.empty(piece.shape, piece.out.dtype)
            run_hook(hook, whole, key, piece.path)
            piece.out[...] = whole.reshape(-1)[piece.start:piece.start + piece.out.size]
