"""A JAX parameter tree as gpuinit sees it: each leaf's path, shape, dtype and sharding, checked.

A leaf's path is its place in the tree, its keys joined by ``/``: ``params/Dense_0/kernel`` for
Flax linen, ``layers/0/kernel`` for an nnx state (the trailing ``.value`` of an nnx ``Variable``
or a linen ``Partitioned`` box is not part of it). The path keys the leaf's random stream, so the
numbers depend on the seed and the model's structure only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import numpy as np

from .. import dtypes
from ..errors import ArgumentError, ArgumentTypeError, ShapeError

WHERE = "gpuinit.jax"


@dataclass(frozen=True)
class Leaf:
    """One leaf of the abstract tree: what its array will be, and where."""

    path: str
    name: str                 # the last key: what Flax's defaults go by ("kernel", "bias")
    parent: str               # the key before it ("query" for an attention projection)
    shape: tuple
    dtype: np.dtype
    sharding: object = None   # a jax.sharding.Sharding, or None: unsharded, on the default device

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize


def _key_text(key) -> str:
    for attr in ("key", "idx", "name"):  # DictKey / FlattenedIndexKey, SequenceKey, GetAttrKey
        if hasattr(key, attr):
            return str(getattr(key, attr))
    return str(key)


def path_parts(keys) -> list[str]:
    """A tree path (``jax.tree_util`` keys) as the list of its parts, without a trailing ``value``
    attribute (the box an nnx ``Variable`` or linen ``Partitioned`` keeps its array in)."""
    parts = [_key_text(k) for k in keys]
    if keys and isinstance(keys[-1], jax.tree_util.GetAttrKey) and parts[-1] == "value":
        parts.pop()
    return parts


def flatten(tree, what: str = "abstract") -> tuple[list, list, object]:
    """``(paths, leaves, treedef)`` of ``tree``, paths as ``/``-joined text.

    Raises:
        ArgumentError: two leaves whose paths read the same (they would share a stream).
    """
    pairs, treedef = jax.tree_util.tree_flatten_with_path(tree)
    paths = ["/".join(path_parts(keys)) for keys, _ in pairs]
    if len(set(paths)) != len(paths):
        seen, twice = set(), None
        for p in paths:
            if p in seen:
                twice = p
                break
            seen.add(p)
        raise ArgumentError(f"{WHERE}: two leaves of {what} have the same path {twice!r}, so they would "
                            "draw the same numbers; rename a key so that every leaf's path is unique")
    return paths, [leaf for _, leaf in pairs], treedef


def leaves_of(abstract, shardings=None) -> tuple[list[Leaf], object]:
    """The checked leaves of ``abstract`` (with their shardings) and its treedef.

    Raises:
        ArgumentTypeError: a leaf without a shape and dtype, or a sharding that is not one.
        ArgumentError: an empty tree, a dtype gpuinit cannot fill (integers, booleans, complex
            numbers: not floating point), shardings whose tree does not match ``abstract``'s.
        ShapeError: a sharding that does not fit its leaf's shape (see :func:`check_sharding`).
    """
    paths, items, treedef = flatten(abstract)
    if not items:
        raise ArgumentError(f"{WHERE}: the abstract tree {abstract!r} has no leaves; pass what "
                            "jax.eval_shape(model.init, key, example_input) returns")
    if shardings is None:  # what jax.jit(init, out_shardings=...).eval_shape describes, kept
        per_leaf = [_own_sharding(item) for item in items]
    else:
        per_leaf = _shardings_for(paths, shardings)
    leaves = []
    for path, item, sharding in zip(paths, items, per_leaf):
        shape, dtype = getattr(item, "shape", None), getattr(item, "dtype", None)
        if shape is None or dtype is None or isinstance(item, (str, bytes)):
            raise ArgumentTypeError(
                f"{WHERE}: leaf {path!r} is {type(item).__name__} {item!r}, not an array description; "
                "the tree's leaves must be jax.ShapeDtypeStruct (what jax.eval_shape returns) or arrays")
        try:
            shape = tuple(int(d) for d in shape)
        except (TypeError, ValueError):
            raise ArgumentTypeError(f"{WHERE}: leaf {path!r} has shape {shape!r}, which is not a shape; pass "
                                    "jax.ShapeDtypeStruct leaves") from None
        try:
            numpy_dtype = np.dtype(dtype)
        except TypeError:  # JAX's extended dtypes (PRNG keys) have no NumPy dtype
            numpy_dtype = None
        if numpy_dtype is None or not dtypes.is_float(numpy_dtype):
            names = ", ".join(d.name for d in dtypes.float_dtypes())
            raise ArgumentError(
                f"{WHERE}: leaf {path!r} has dtype {dtype}, not a floating-point type gpuinit can fill "
                f"({names}); initialize only the parameters (e.g. the 'params' collection, or "
                "nnx.state(model, nnx.Param)), or give the leaf a float dtype")
        dtype = numpy_dtype
        if dtype.itemsize == 8 and not jax.config.jax_enable_x64:
            raise ArgumentError(f"{WHERE}: leaf {path!r} is float64, but JAX's 64-bit mode is off, so JAX would "
                                "make it float32; turn it on (jax.config.update('jax_enable_x64', True)) or "
                                "describe the leaf as float32")
        parts = path.split("/")
        leaf = Leaf(path, parts[-1], parts[-2] if len(parts) > 1 else "", shape, dtype, sharding)
        if sharding is not None:
            check_sharding(leaf)
        leaves.append(leaf)
    return leaves, treedef


def _is_sharding(x) -> bool:
    return isinstance(x, jax.sharding.Sharding)


def _own_sharding(item):
    """The sharding a leaf describes itself (a ``ShapeDtypeStruct``'s or an array's), unless it is
    one device's or names no devices (an abstract mesh's): None then, as for a leaf with none
    (the default device)."""
    sharding = getattr(item, "sharding", None)
    if not _is_sharding(sharding) or isinstance(sharding, jax.sharding.SingleDeviceSharding):
        return None
    try:
        sharding.device_set
    except ValueError:  # a NamedSharding over an AbstractMesh: no devices to put shards on
        return None
    return sharding


def _shardings_for(paths, shardings) -> list:
    """Each leaf's sharding from ``shardings``: one ``Sharding`` for every leaf, or a matching tree."""
    if _is_sharding(shardings):
        return [shardings] * len(paths)
    spec = jax.sharding.PartitionSpec
    if isinstance(shardings, spec):
        raise ArgumentTypeError(f"{WHERE}: shardings={shardings!r} is a PartitionSpec, which says how to split "
                                "but not over which devices; pass NamedSharding(mesh, " f"{shardings!r})")
    pairs, _ = jax.tree_util.tree_flatten_with_path(
        shardings, is_leaf=lambda x: x is None or _is_sharding(x) or isinstance(x, spec))
    theirs = ["/".join(path_parts(keys)) for keys, _ in pairs]
    if theirs != paths:
        missing = [p for p in paths if p not in set(theirs)]
        extra = [p for p in theirs if p not in set(paths)]
        detail = (f"missing {missing[:3]!r}" if missing else "") + (", " if missing and extra else "") + \
            (f"unexpected {extra[:3]!r}" if extra else "")
        raise ArgumentError(
            f"{WHERE}: shardings must have the tree of abstract ({len(paths)} leaves), got {len(theirs)} leaves"
            f"{': ' + detail if detail else ' in another order'}; build it from the same tree, e.g. "
            "jax.tree.map(lambda x: NamedSharding(mesh, P()), abstract), or pass one sharding for all")
    out = []
    for path, (_, s) in zip(paths, pairs):
        if isinstance(s, spec):
            raise ArgumentTypeError(f"{WHERE}: the sharding of leaf {path!r} is the PartitionSpec {s!r}, which says "
                                    "how to split but not over which devices; pass NamedShardings: "
                                    "jax.tree.map(lambda s: NamedSharding(mesh, s), specs), or for Flax's "
                                    "partitioning boxes nn.get_sharding(abstract, mesh)")
        if s is not None and not _is_sharding(s):
            raise ArgumentTypeError(f"{WHERE}: the sharding of leaf {path!r} is {type(s).__name__} {s!r}, not a "
                                    "jax.sharding.Sharding; pass NamedSharding(mesh, PartitionSpec(...)) or None "
                                    "(a PartitionSpec alone does not name the devices)")
        out.append(s)
    return out


def check_sharding(leaf: Leaf) -> None:
    """Refuse a sharding that cannot hold ``leaf`` evenly, as JAX's own shards must.

    Raises:
        ShapeError: a partition spec longer than the leaf's rank, or a dimension that the mesh
            axes it is split over do not divide; the message names the leaf, the dimension, the
            axes and the fix.
    """
    sharding, shape = leaf.sharding, leaf.shape
    if isinstance(sharding, jax.sharding.NamedSharding):
        spec = tuple(sharding.spec)
        if len(spec) > len(shape):
            raise ShapeError(f"{WHERE}: leaf {leaf.path!r} of shape {shape!r} has {len(shape)} dimensions, "
                             f"but its sharding's PartitionSpec{spec!r} names {len(spec)}; give it at most "
                             f"{len(shape)} entries")
        sizes = dict(sharding.mesh.shape)
        for dim, entry in enumerate(spec):
            names = () if entry is None else (entry,) if isinstance(entry, str) else tuple(entry)
            parts = math.prod(sizes[n] for n in names) if names else 1
            if shape[dim] % parts:
                raise ShapeError(
                    f"{WHERE}: leaf {leaf.path!r} of shape {shape!r}: dimension {dim} ({shape[dim]}) is split "
                    f"over mesh axes {names!r} ({parts} parts), which do not divide it; JAX shards evenly, so "
                    f"pad the dimension to a multiple of {parts}, split it over other axes, or leave it "
                    "unsharded (None in the PartitionSpec)")
        return
    try:
        shard = tuple(sharding.shard_shape(shape))
    except Exception as exc:  # another Sharding class: its own check, reworded
        raise ShapeError(f"{WHERE}: leaf {leaf.path!r} of shape {shape!r} cannot take sharding {sharding!r}: "
                         f"{exc}") from None
    if len(shard) != len(shape):
        raise ShapeError(f"{WHERE}: leaf {leaf.path!r} of shape {shape!r}: sharding {sharding!r} gives shards "
                         f"of shape {shard!r}; pass a sharding of the leaf's rank")


def index_key(index, shape) -> tuple:
    """A shard's index (a tuple of slices) as hashable ``((start, stop), ...)``, every axis given."""
    index = tuple(index) + (slice(None),) * (len(shape) - len(tuple(index)))
    return tuple(s.indices(d)[:2] for s, d in zip(index, shape))


def block_shape(shape, index) -> tuple:
    """The shape of block ``index`` (a tuple of slices, missing trailing axes whole) of ``shape``."""
    return tuple(len(range(*s.indices(d))) for s, d in zip(tuple(index) + (slice(None),) * len(shape), shape))
