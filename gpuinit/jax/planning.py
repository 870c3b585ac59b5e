"""Plans for a JAX parameter tree: what each leaf costs, on each device, before anything is allocated.

:func:`plan` resolves everything :func:`gpuinit.jax.init` will do (every leaf's initializer and
fill, every device's blocks and where they go in its arena) and checks that the arenas fit, with
no allocation. ``init`` runs the same resolution, so what the plan says is what it allocates.

Where the numbers are made, by the kind of JAX device:

- ``cpu``: in an arena of host memory per device, handed to JAX without a copy (its CPU client
  takes buffers aligned to 64 bytes as they are; the arenas are aligned to 256);
- ``gpu`` with CUDA, where CuPy sees the GPU: in an arena on that GPU, filled by gpuinit's
  kernels, handed over through DLPack, without a copy;
- anything else (a GPU without CuPy, a TPU): on the host, then copied to the device by JAX.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import jax
import numpy as np

from .. import backend, store
from ..device import Device, cpu
from ..init.base import InitDesc, resolve_fill
from ..store import format_bytes
from ..streams import Fill
from . import defaults, leaves as leaves_mod
from .leaves import WHERE, block_shape


@dataclass
class LeafPlan:
    """One leaf: its path, array, initializer and bytes (whole, and per device that holds it)."""

    path: str
    shape: tuple
    dtype: str
    initializer: str
    fill: str
    bytes: int
    shard_shape: tuple
    sharding: str


@dataclass
class Plan:
    """The result of :func:`plan`. ``fits`` is False rather than an exception.

    Attributes:
        leaves: a :class:`LeafPlan` per leaf, in the tree's order.
        parameter_bytes: all leaves' bytes, once each.
        device_bytes: ``{JAX device: bytes of the blocks it holds}``.
        arena_bytes: ``{gpuinit device: bytes gpuinit allocates there}`` (the arenas, aligned).
        free_bytes: ``{gpuinit device: free bytes now}`` (None where unknown).
        handoff: ``{JAX device: "zero-copy" | "dlpack" | "host copy"}``.
    """

    leaves: list = field(default_factory=list)
    parameter_bytes: int = 0
    device_bytes: dict = field(default_factory=dict)
    arena_bytes: dict = field(default_factory=dict)
    free_bytes: dict = field(default_factory=dict)
    handoff: dict = field(default_factory=dict)

    @property
    def fits(self) -> bool:
        """Whether every arena fits in its device's free memory (True where that is unknown)."""
        return all(self.free_bytes.get(d) is None or n <= self.free_bytes[d] for d, n in self.arena_bytes.items())

    def to_dict(self) -> dict:
        out = asdict(self)
        out["fits"] = self.fits
        return out

    def summary(self, max_rows: int | None = 40) -> str:
        """A human-readable table: the leaves, then each device's bytes."""
        lines = [f"{'leaf':<48} {'shape':<18} {'dtype':<8} {'bytes':>12} {'per device':>12}  initializer"]
        rows = self.leaves if max_rows is None else self.leaves[:max_rows]
        for leaf in rows:
            per = leaf.bytes * int(np.prod(leaf.shard_shape)) // max(1, int(np.prod(leaf.shape)))
            lines.append(f"{leaf.path:<48} {str(leaf.shape):<18} {leaf.dtype:<8} {leaf.bytes:>12,} {per:>12,}  "
                         f"{leaf.fill}")
        if len(rows) < len(self.leaves):
            lines.append(f"... {len(self.leaves) - len(rows)} more leaves")
        lines.append("")
        for d, n in self.device_bytes.items():
            lines.append(f"JAX device {d}: {format_bytes(n)} ({self.handoff[d]})")
        for d, n in self.arena_bytes.items():
            lines.append(f"gpuinit allocates {format_bytes(n)} on {d}; free: {format_bytes(self.free_bytes.get(d))}")
        lines.append(f"total: {len(self.leaves)} leaves, {format_bytes(self.parameter_bytes)}; "
                     f"fits: {'yes' if self.fits else 'no'}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


@dataclass
class Work:
    """Everything :func:`gpuinit.jax.init` does, resolved: made by :func:`resolve`, allocating nothing.

    ``pieces`` lists the blocks gpuinit makes, ``(leaf number, JAX device, index)``: one per
    device holding a shard, or one for an unsharded or fully replicated leaf (JAX asks for its
    value once and puts it on every device). ``arenas`` gives each JAX device's pieces, their
    byte offsets in its arena and the arena's size.
    """

    leaves: list
    treedef: object
    fills: list                # a Fill, or a callable (a Python hook) per leaf
    pieces: list
    arenas: dict               # JAX device -> (piece numbers, offsets, size)
    targets: dict              # JAX device -> (gpuinit Device, handoff)
    plan: Plan


def target_of(jax_device) -> tuple[Device, str]:
    """Where gpuinit makes a JAX device's numbers, and how JAX gets them."""
    if jax_device.platform == "cpu":
        return cpu(), "zero-copy"
    version = str(getattr(jax_device.client, "platform_version", "")).lower()
    if jax_device.platform == "gpu" and "rocm" not in version and backend.has_cupy_gpu():
        index = getattr(jax_device, "local_hardware_id", None)
        if index is not None and index < backend.gpu_count():
            return Device("cuda", index), "dlpack"
    return cpu(), "host copy"


def _fill_of(leaf, initializer):
    """The leaf's fill (or Python hook), checked against its dtype; errors name the leaf."""
    if not leaf.size:
        return Fill.constant(0.0)
    desc = InitDesc(leaf.path, "weight", leaf.path, leaf.shape, leaf.dtype, own=True)
    return resolve_fill(initializer, desc, f"{WHERE}: leaf {leaf.path!r}")


def _default_device():
    """Where JAX puts an uncommitted array: ``jax.default_device``'s device, else the first."""
    chosen = jax.config.jax_default_device
    if isinstance(chosen, str):
        return jax.devices(chosen)[0]
    return chosen if chosen is not None else jax.devices()[0]


def resolve(abstract, rules=None, shardings=None) -> Work:
    """Check the inputs and work out every leaf's fill, block and place; allocate nothing.

    Raises:
        ArgumentError, ArgumentTypeError, ShapeError, InitializerError: see :func:`gpuinit.jax.init`.
    """
    leaves, treedef = leaves_mod.leaves_of(abstract, shardings)
    initializers = defaults.initializers_for(leaves, rules)
    fills = [_fill_of(leaf, initializer) for leaf, initializer in zip(leaves, initializers)]

    plan = Plan(parameter_bytes=sum(leaf.nbytes for leaf in leaves))
    pieces, by_device = [], {}
    for number, (leaf, initializer, how) in enumerate(zip(leaves, initializers, fills)):
        sharding = leaf.sharding
        if sharding is None:
            device = _default_device()
            held = {device: (slice(None),) * len(leaf.shape)}
            made = list(held.items())
        else:
            held = sharding.addressable_devices_indices_map(leaf.shape)
            made = list(held.items())[:1] if sharding.is_fully_replicated else list(held.items())
        shard_shape = tuple(sharding.shard_shape(leaf.shape)) if sharding is not None else leaf.shape
        shard_bytes = int(np.prod(shard_shape, dtype=np.int64)) * leaf.dtype.itemsize
        for device in held:
            plan.device_bytes[str(device)] = plan.device_bytes.get(str(device), 0) + shard_bytes
            if str(device) not in plan.handoff:
                plan.handoff[str(device)] = target_of(device)[1]
        for device, index in made:
            by_device.setdefault(device, []).append(len(pieces))
            pieces.append((number, device, tuple(index)))
        plan.leaves.append(LeafPlan(leaf.path, leaf.shape, leaf.dtype.name, repr(initializer),
                                    how.describe() if isinstance(how, Fill) else "python hook",
                                    leaf.nbytes, shard_shape, "unsharded" if sharding is None else str(sharding)))

    arenas, targets = {}, {}
    for device, numbers in by_device.items():
        nbytes = [int(np.prod(block_shape(leaves[pieces[i][0]].shape, pieces[i][2]), dtype=np.int64))
                  * leaves[pieces[i][0]].dtype.itemsize for i in numbers]
        offsets, size = store.layout(nbytes)
        arenas[device] = (numbers, offsets.tolist(), size)
        targets[device] = target_of(device)
        where = targets[device][0]
        plan.arena_bytes[str(where)] = plan.arena_bytes.get(str(where), 0) + size
    for where in {str(t): t for t, _ in targets.values()}.values():
        plan.free_bytes[str(where)] = where.memory_info()[0]
    return Work(leaves, treedef, fills, pieces, arenas, targets, plan)


def plan(abstract, rules=None, shardings=None) -> Plan:
    """What :func:`gpuinit.jax.init` will allocate for ``abstract``, per leaf and per device; allocates nothing.

    Args:
        abstract, rules, shardings: as :func:`gpuinit.jax.init`.

    Returns:
        A :class:`Plan`; ``plan.fits`` says whether the arenas fit in free memory now.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> import gpuinit.jax
        >>> abstract = {"Dense_0": {"kernel": jax.ShapeDtypeStruct((256, 512), jnp.float32),
        ...                         "bias": jax.ShapeDtypeStruct((512,), jnp.float32)}}
        >>> p = gpuinit.jax.plan(abstract)
        >>> p.parameter_bytes, p.fits
        (526336, True)

    Raises:
        As :func:`gpuinit.jax.init`, except for memory: a plan that does not fit says so.
    """
    return resolve(abstract, rules, shardings).plan
