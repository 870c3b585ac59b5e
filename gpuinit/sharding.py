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

from . import checks, lifecycle
from .errors import ArgumentError, ArgumentTypeError


def shard_range(size: int, rank: int, world_size: int) -> tuple[int, int]:
    """``(start, stop)`` of rank ``rank``'s slice of ``size`` flat elements among ``world_size``."""
    chunk = -(-size // world_size)
    start = min(size, rank * chunk)
    return start, min(size, start + chunk)


def _check(rank, world_size) -> tuple[int, int]:
    hint = "pass integers with 0 <= rank < world_size, e.g. shard(net, rank=0, world_size=8)"
    world_size = checks.positive_int(world_size, "world_size", "shard", hint=hint)
    rank = checks.integer(rank, "rank", "shard", hint=hint)
    if not 0 <= rank < world_size:
        raise ArgumentError(f"shard: rank must be an integer in [0, {world_size}), got {rank!r}; {hint}")
    return rank, world_size


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
        rank, world_size: which slice (see :func:`shard_range`); Python or NumPy integers.

    Returns:
        ``{path: 1-D array}``, keyed by each parameter's structural path (``"0.weight"``).

    Raises:
        ArgumentError: a bad rank or world size; UninitializedParameterError: ``initialize`` was
            not called; DeferredInitializationError: a shape is still unknown; OutOfMemoryError:
            the slices do not fit. Nothing is allocated, or kept, on failure.
    """
    rank, world_size = _check(rank, world_size)
    if hasattr(net, "collect_params"):
        params = net.collect_params()
    elif hasattr(net, "values") and hasattr(net, "path_of"):
        params = net
    else:
        raise ArgumentTypeError(f"shard takes a Block or a ParameterDict, got {type(net).__name__}; pass the "
                                "network whose parameters to shard")
    return lifecycle.shard(list(params.values()), lambda size: shard_range(size, rank, world_size))
