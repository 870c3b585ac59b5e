"""FSDP2 and DTensor: each rank fills its own dim-0 shard, with no communication.

After ``fully_shard``, a parameter is a DTensor placed ``Shard(0)`` on a device mesh: rank ``k`` of
``n`` holds rows ``[k c, min(d0, (k + 1) c))``, ``c = ceil(d0 / n)``, as ``torch.chunk`` cuts them
(the last ranks' shards shorter, or empty). Those rows are the flat elements
:func:`gpuinit.sharding.dim0_range` names, and gpuinit's streams produce any element range alone,
so each rank fills exactly its rows and the gathered ``full_tensor()`` is the unsharded fill, bit
for bit, for any world size. ``Replicate`` mesh dimensions hold the whole range.

Other placements (``Shard(1)``, ``Partial``, two mesh dimensions both sharding dim 0) are refused
with a clear error for now.
"""

from __future__ import annotations

import sys



from ..errors import ArgumentError
from ..sharding import dim0_range
from ..streams import call_seed


def _dtensor_type():
    """DTensor's class, or None where no DTensor can exist yet. Importing
    ``torch.distributed.tensor`` takes over a second, so it is not imported here: a module with
    DTensors has imported it already."""
    module = sys.modules.get("torch.distributed.tensor")
    return getattr(module, "DTensor", None)


def is_dtensor(t) -> bool:
    cls = _dtensor_type()
    return cls is not None and isinstance(t, cls)


def has_dtensors(module) -> bool:
    cls = _dtensor_type()
    return cls is not None and any(isinstance(p, cls) for p in module.parameters())


def _shard_dims(t) -> list:
    """``[(mesh dim, its size)]`` of the mesh dimensions that shard ``t``'s dim 0.

    Raises:
        ArgumentError: a placement other than ``Shard(0)`` and ``Replicate``.
    """
    from torch.distributed.tensor import Replicate, Shard
    out = []
    for mesh_dim, placement in enumerate(t.placements):
        if isinstance(placement, Shard) and placement.dim == 0:
            out.append((mesh_dim, t.device_mesh.size(mesh_dim)))
        elif not isinstance(placement, Replicate):
            raise ArgumentError(f"DTensor placement {placement!r} is not supported yet: gpuinit fills Shard(0) and "
                                "Replicate placements (FSDP2's fully_shard); shard dimension 0 instead")
    if len(out) > 1:
        raise ArgumentError(f"DTensor placements {tuple(t.placements)!r} shard dimension 0 over several mesh "
                            "dimensions, which gpuinit does not fill yet; shard dimension 0 over one mesh "
                            "dimension (the others Replicate)")
    return out


def check_placements(slots, where: str) -> None:
    """Refuse, before anything changes, DTensors with placements :func:`local_part` cannot fill."""
    for slot in slots:
        t = slot.tensor
        if is_dtensor(t):
            try:
                _shard_dims(t)
            except ArgumentError as exc:
                raise ArgumentError(f"{where}: {slot.kind} {slot.name!r}: {exc}") from None


def local_part(t):
    """``(local tensor, first flat element)``: what of ``t``'s row-major elements this process holds.

    Raises:
        ArgumentError: the local shard's shape is not torch's dim-0 chunk (a layout gpuinit does not
            know).
    """
    if not is_dtensor(t):
        return t, 0
    local = t.to_local()
    dims = _shard_dims(t)
    if not dims:
        return local, 0
    mesh_dim, size = dims[0]
    rank = t.device_mesh.get_coordinate()[mesh_dim]
    shape = tuple(t.shape)
    start, stop = dim0_range(shape, rank, size)
    if local.numel() != stop - start:
        raise ArgumentError(f"the local shard of a DTensor of shape {shape} on rank {rank} of {size} has shape "
                            f"{tuple(local.shape)}, not torch.chunk's {stop - start} elements; gpuinit cannot "
                            "tell which elements it holds")
    return local, start


def check_seed_shared(seed, where: str) -> None:
    """Refuse ``seed=None`` on sharded modules unless ``gpuinit.seed(n)`` was called: the global
    seed is otherwise drawn from each process's own entropy, and the ranks' shards would not
    belong to one tensor."""
    from ..streams import keys
    if seed is None and keys._seed_state["seed"] is None:
        raise ArgumentError(f"{where}: the module has DTensor (sharded) parameters, and every rank must fill them "
                            "from the same seed: pass seed=<the same integer on every rank>, or call "
                            "gpuinit.seed(n) on every rank first")


def materialize(module, slots, device, seed, dtype, where):
    """``to_empty`` (FSDP2 re-points its shards) and fill each rank's local shards in place; on any
    failure the module goes back to the meta device, its memory given back."""
    from .materialize import fill_in_place
    check_placements(slots, where)
    check_seed_shared(seed, where)
    if dtype is not None:
        raise ArgumentError(f"{where}: dtype= is not supported for an FSDP2 module: FSDP2 owns its sharded "
                            "storage; build the model in the dtype you want (or use fully_shard's "
                            "MixedPrecisionPolicy)")
    if any(not slot.tensor.is_meta for slot in slots):
        raise ArgumentError(f"{where}: reinit=True is not supported for an FSDP2 module; call "
                            "gpuinit.torch.fill_(module) to re-initialize its shards in place")
    real = [name for name, p in module.named_parameters() if not p.is_meta]
    if real:
        raise ArgumentError(f"{where}: the FSDP2 module has parameters that already have memory ({real[:3]!r}"
                            f"{' ...' if len(real) > 3 else ''}) beside meta ones; FSDP2 allocates with to_empty, "
                            "which would overwrite them. Build every parameter on the meta device before "
                            "fully_shard, or materialize before fully_shard")
    # to_empty gives every tensor new memory, buffers with values included: those are put back.
    kept = [(mod._buffers, local, b) for mod in module.modules() for local, b in mod._buffers.items()
            if b is not None and not b.is_meta]
    with call_seed(seed) as seed_value:
        try:
            module.to_empty(device=device)
            _put_back(kept)
            fill_in_place(slots, seed_value, where)
        except BaseException:
            module.to_empty(device="meta")  # the module as it was: the shards' memory given back
            _put_back(kept)
            raise
    return module


def _put_back(kept) -> None:
    for table, local, buffer in kept:
        table[local] = buffer


__all__ = ["check_placements", "has_dtensors", "is_dtensor", "local_part", "materialize"]
