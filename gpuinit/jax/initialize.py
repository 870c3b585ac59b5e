"""``gpuinit.jax.init``: a tree of ``jax.Array`` parameters from a tree of shapes, on any mesh.

Each leaf draws from its own stream, keyed by ``(seed, path)`` exactly as gpuinit's parameters
are (:mod:`gpuinit.streams.keys`), so element ``i`` of a leaf has one value whatever the mesh,
the sharding or the device. A device's shard of a leaf is made alone: the runs of flat elements
its block covers (:func:`gpuinit.sharding.block_runs`), filled by gpuinit's engine straight into
that device's arena, which JAX then takes over without a copy where it can (see
:mod:`gpuinit.jax.planning`). No device ever holds, or makes, more than its own shards.
"""

from __future__ import annotations

import jax
import numpy as np

from .. import backend, sharding as sharding_mod, store
from ..engine import run as run_fills
from ..errors import OutOfMemoryError
from ..init.base import run_hook
from ..store import format_bytes
from ..streams import Fill, FillJobs, check_seed
from ..streams.keys import derive_key_array
from .leaves import WHERE, block_shape, index_key
from .planning import resolve


def init(abstract, seed, rules=None, shardings=None):
    """Initialize the parameters ``abstract`` describes: the same tree, of ``jax.Array`` leaves.

    Args:
        abstract: a pytree of ``jax.ShapeDtypeStruct`` (or arrays: only their shapes and dtypes
            are read), as ``jax.eval_shape(model.init, key, x)`` gives for Flax linen or
            ``nnx.state(nnx.eval_shape(lambda: Model(rngs=nnx.Rngs(0))))`` for nnx.
        seed: a non-negative integer; with the leaves' paths it fixes every number.
        rules: ``{pattern: initializer}`` (or a list of pairs): the first regular expression found
            in a leaf's path (``params/Dense_0/kernel``) gives its gpuinit initializer; other leaves
            get Flax's defaults by name (:mod:`gpuinit.jax.defaults`).
        shardings: ``None`` (each leaf as it describes itself: a ``ShapeDtypeStruct``'s own
            ``sharding``, as ``jax.jit(init, out_shardings=...).eval_shape`` gives it, else whole
            on the default device), one ``jax.sharding.Sharding`` for every leaf, or a pytree of
            them (``None`` leaves unsharded) matching ``abstract``.
            Each device's shard is made alone; the numbers equal the unsharded ones bit for bit.

    Returns:
        ``abstract``'s tree with a ``jax.Array`` per leaf (committed to its sharding if given).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import gpuinit.jax
        >>> abstract = {"params": {"Dense_0": {"kernel": jax.ShapeDtypeStruct((4, 3), jnp.float32),
        ...                                    "bias": jax.ShapeDtypeStruct((3,), jnp.float32)}}}
        >>> params = gpuinit.jax.init(abstract, seed=0)
        >>> params["params"]["Dense_0"]["bias"]
        Array([0., 0., 0.], dtype=float32)
        >>> params["params"]["Dense_0"]["kernel"].shape
        (4, 3)

    Raises:
        ArgumentTypeError: a leaf that is not an array description, a sharding that is not one,
            malformed rules. ArgumentError: a bad seed, a leaf that is not floating point,
            shardings whose tree does not match, a rule that matches no leaf. ShapeError: a mesh
            axis that does not divide the dimension it splits. InitializerError: a leaf with no
            rule and no Flax default, an initializer that cannot fill its leaf.
            OutOfMemoryError: the arenas do not fit. Every check runs before anything is
            allocated; a failure allocates nothing, or gives back what it took.
    """
    seed = check_seed(seed)
    work = resolve(abstract, rules, shardings)
    plan = work.plan
    if not plan.fits:
        short = {d: n - plan.free_bytes[d] for d, n in plan.arena_bytes.items()
                 if plan.free_bytes.get(d) is not None and n > plan.free_bytes[d]}
        where, missing = next(iter(short.items()))
        raise OutOfMemoryError(
            f"{WHERE}: the parameters need {format_bytes(plan.arena_bytes[where])} on {where}, "
            f"{format_bytes(plan.free_bytes[where])} free; {format_bytes(missing)} short. Nothing was allocated. "
            "Shard them over more devices, use a smaller dtype, or check gpuinit.jax.plan() first")
    keys = derive_key_array(seed, [leaf.path for leaf in work.leaves])
    made, wholes = {}, {}
    try:
        with store.gc_paused():
            for device, (numbers, offsets, size) in work.arenas.items():
                made.update(_make_device(work, keys, device, numbers, offsets, size, wholes))
            wholes = None
            by_leaf = [[] for _ in work.leaves]
            for number, (leaf_number, device, index) in enumerate(work.pieces):
                by_leaf[leaf_number].append((made[number], device, index))
            made = None
            leaves = [_to_jax(work, work.leaves[n], by_leaf[n]) for n in range(len(work.leaves))]
            by_leaf = None
    except BaseException as exc:
        made = by_leaf = wholes = None
        store.release_after_failure(exc, {target for target, _ in work.targets.values()})
        raise
    return jax.tree_util.tree_unflatten(work.treedef, leaves)


def _make_device(work, keys, jax_device, numbers, offsets, size, wholes) -> dict:
    """One JAX device's arena, filled with its pieces: ``{piece number: array}`` (views of it).

    ``wholes`` keeps the whole leaves Python initializers made, for the other devices' blocks.
    """
    where, _ = work.targets[jax_device]
    arena = store.allocate(where, size)
    store.track(arena, where, size)
    jobs, hooks, views = [], [], {}
    for number, offset in zip(numbers, offsets):
        leaf_number, _, index = work.pieces[number]
        leaf, how = work.leaves[leaf_number], work.fills[leaf_number]
        shape = block_shape(leaf.shape, index)
        views[number] = store.flat_view(arena, offset, int(np.prod(shape, dtype=np.int64)), leaf.dtype).reshape(shape)
        if isinstance(how, Fill):
            if views[number].size:
                jobs.append(sharding_mod.block_jobs(offset, leaf.dtype, keys[leaf_number], how, leaf.shape, index))
        else:
            hooks.append((number, leaf_number, index))
    run_fills(where, arena, _joined(jobs))
    with where.activate():
        for number, leaf_number, index in hooks:
            if leaf_number not in wholes:
                wholes[leaf_number] = _hooked_whole(work, keys, leaf_number)
            views[number][...] = where.xp.asarray(wholes[leaf_number][index])
        if where.is_gpu:
            where.xp.cuda.get_current_stream().synchronize()
    return views


def _joined(jobs) -> FillJobs:
    """Many blocks' jobs as one set of columns, so one engine run fills a device's arena."""
    if len(jobs) == 1:
        return jobs[0]
    if not jobs:
        return FillJobs.of([])
    columns = [[] for _ in FillJobs._fields]
    for block in jobs:
        for column, values in zip(columns, block):
            if isinstance(values, np.ndarray):  # the keys, an (n, 2) array per block
                column.append(values)
            else:
                column.extend(values)
    key = FillJobs._fields.index("key")
    columns[key] = np.concatenate(columns[key])
    return FillJobs(*columns)


def _hooked_whole(work, keys, leaf_number) -> np.ndarray:
    """A Python initializer's whole leaf, on the host, its stream active (it needs the whole)."""
    leaf, hook = work.leaves[leaf_number], work.fills[leaf_number]
    whole = np.empty(leaf.shape, leaf.dtype)
    run_hook(hook, whole, tuple(int(k) for k in keys[leaf_number]), leaf.path, f"{WHERE}: leaf {leaf.path!r}")
    return whole


def _hand_over(work, jax_device, value):
    """``value`` (a view of gpuinit's arena) as something JAX takes for ``jax_device``: NumPy
    views as they are (JAX's CPU client aliases them; another device copies), a CuPy view as a
    ``jax.Array`` through DLPack."""
    if work.targets[jax_device][1] == "dlpack":
        return backend.hand_off_dlpack(value, jax.dlpack.from_dlpack)
    return value


def _to_jax(work, leaf, pieces):
    """The leaf's ``jax.Array`` from its blocks, ``[(array, JAX device, index)]``."""
    if leaf.sharding is None:
        array, device, _ = pieces[0]
        value = _hand_over(work, device, array)
        return value if isinstance(value, jax.Array) else jax.device_put(value)  # uncommitted, as JAX makes them
    # JAX asks for each device's block by index, in its own order; equal indices hold equal
    # numbers, so a device takes the next block made for its index (its own, in JAX's order).
    queue: dict = {}
    for array, device, index in pieces:
        queue.setdefault(index_key(index, leaf.shape), []).append(_hand_over(work, device, array))

    def block(index):
        waiting = queue[index_key(index, leaf.shape)]
        return waiting.pop(0) if len(waiting) > 1 else waiting[0]

    return jax.make_array_from_callback(leaf.shape, leaf.sharding, block)
