"""Plan a torch model before allocating it: bytes, the largest layer, per rank, and training memory.

Reads only shapes and dtypes (a meta-built model costs nothing), so "will it fit" is answered
before anything is allocated, as :func:`gpuinit.plan` answers it for gpuinit's own models.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np


from .. import checks, store
from .materialize import _check_dtype_arg, target_device, free_bytes, target_dtype
from .slots import collect

# Bytes per trainable element for training with Adam: the parameter, its gradient and two moments
# in the parameter's dtype; with mixed precision, those four in float32 plus a 16-bit copy for compute.
MIXED_BYTES = 4 * 4 + 2


@dataclass
class TensorPlan:
    name: str
    kind: str
    shape: tuple
    dtype: str
    bytes: int
    trainable: bool
    fill: str


@dataclass
class TorchPlan:
    """The result of :func:`plan`; ``fits`` is False rather than an exception.

    Attributes:
        tensors: a :class:`TensorPlan` per tensor (tied ones once).
        bytes_by_dtype: ``{dtype: bytes}`` of the tensors.
        total_bytes: the arena :func:`~gpuinit.torch.materialize` takes (aligned), unsharded: for
            the tensors on the meta device (all of them, with ``reinit=True``, where none is).
        largest_layer: ``(module name, class, bytes)`` of the module holding the most bytes itself.
        rank_bytes: bytes each of ``world_size`` ranks holds (parameters split on dim 0, buffers whole).
        training_bytes: per rank, with Adam: parameters, gradients and two moments (and with mixed
            precision a float32 master copy plus a 16-bit one).
    """

    device: str
    world_size: int
    mixed_precision: bool
    tensors: list = field(default_factory=list)
    bytes_by_dtype: dict = field(default_factory=dict)
    parameter_bytes: int = 0
    buffer_bytes: int = 0
    total_bytes: int = 0
    largest_layer: tuple | None = None
    layers: list = field(default_factory=list)
    rank_bytes: list = field(default_factory=list)
    training_bytes: list = field(default_factory=list)
    free_bytes: int | None = None

    @property
    def num_parameters(self) -> int:
        return sum(math.prod(t.shape) for t in self.tensors if t.kind == "parameter")

    @property
    def fits(self) -> bool:
        """Whether the busiest rank's parameters and buffers fit in the free memory (True where
        it is unknown)."""
        return self.free_bytes is None or max(self.rank_bytes, default=0) <= self.free_bytes

    @property
    def fits_training(self) -> bool:
        """Whether the busiest rank's training memory (Adam) fits, activations not counted."""
        return self.free_bytes is None or max(self.training_bytes, default=0) <= self.free_bytes

    @property
    def missing_bytes(self) -> int:
        return 0 if self.fits else max(self.rank_bytes) - self.free_bytes

    def to_dict(self) -> dict:
        out = asdict(self)
        out.update(fits=self.fits, fits_training=self.fits_training, missing_bytes=self.missing_bytes,
                   num_parameters=self.num_parameters)
        return out

    def summary(self, max_rows: int | None = 40) -> str:
        f = store.format_bytes
        lines = [f"{'tensor':<48} {'shape':<22} {'dtype':<9} {'bytes':>12}  fill"]
        rows = self.tensors if max_rows is None else self.tensors[:max_rows]
        for t in rows:
            lines.append(f"{t.name:<48} {str(t.shape):<22} {t.dtype:<9} {t.bytes:>12,}  {t.fill}")
        if len(rows) < len(self.tensors):
            lines.append(f"... {len(self.tensors) - len(rows)} more tensors")
        lines.append("")
        lines.append("bytes by dtype: " + ", ".join(f"{d} {f(n)}" for d, n in self.bytes_by_dtype.items()))
        if self.largest_layer:
            lines.append(f"largest layer: {self.largest_layer[0] or '(root)'} ({self.largest_layer[1]}), "
                         f"{f(self.largest_layer[2])}")
        lines.append(f"per rank ({self.world_size}): {f(max(self.rank_bytes, default=0))} at most; training with "
                     f"Adam{' (mixed precision)' if self.mixed_precision else ''}: "
                     f"{f(max(self.training_bytes, default=0))} at most, activations not counted")
        lines.append(f"total: {self.num_parameters:,} parameters, {f(self.parameter_bytes)} + buffers "
                     f"{f(self.buffer_bytes)} ({self.total_bytes:,} bytes in the arena) on {self.device}; free: "
                     f"{f(self.free_bytes)}; fits: {'yes' if self.fits else 'no'}; training fits: "
                     f"{'yes' if self.fits_training else 'no'}")
        return "\n".join(lines)


def plan(module, device=None, dtype=None, world_size=1, mixed_precision=False, rules=None) -> TorchPlan:
    """What materializing (and training) ``module`` will take, allocating nothing.

    Args:
        module: a ``torch.nn.Module``, typically built under ``torch.device("meta")``.
        device: where it would live (default as :func:`~gpuinit.torch.materialize` chooses).
        dtype: a torch float dtype the floating tensors would become.
        world_size: ranks the parameters would be split among on dim 0 (FSDP2).
        mixed_precision: count float32 master weights, gradients and moments plus a 16-bit copy.
        rules: as for :func:`~gpuinit.torch.materialize`; only used to say how each tensor is filled.

    Returns:
        A :class:`TorchPlan`.

    Example:
        >>> import torch, gpuinit.torch
        >>> with torch.device("meta"):
        ...     net = torch.nn.Linear(1000, 1000)
        >>> p = gpuinit.torch.plan(net, device="cpu", world_size=3)
        >>> p.parameter_bytes, p.rank_bytes
        (4004000, [1337336, 1337336, 1329328])
    """
    where = "gpuinit.torch.plan"
    dtype = _check_dtype_arg(dtype, where)
    world_size = checks.positive_int(world_size, "world_size", where, hint="pass the number of ranks, e.g. 8")
    mixed_precision = checks.flag(mixed_precision, "mixed_precision", where)
    slots = collect(module, rules, "error", where, lambda t: True, strict=False)
    target = target_device(module, device, where)
    out = TorchPlan(str(target), world_size, mixed_precision, free_bytes=free_bytes(target))
    rank_bytes = np.zeros(world_size, np.int64)
    training_bytes = np.zeros(world_size, np.int64)
    sizes, meta_sizes, owners_bytes = [], [], {}
    for slot in slots:
        t = slot.tensor
        d = target_dtype(t, dtype)
        shape = tuple(t.shape)
        nbytes = math.prod(shape) * d.itemsize
        trainable = slot.is_param and t.requires_grad
        fill = slot.source if slot.how is not None or slot.source.startswith("needs") else "needs a rule"
        out.tensors.append(TensorPlan(slot.name, slot.kind, shape, str(d).replace("torch.", ""), nbytes,
                                      trainable, fill))
        key = str(d).replace("torch.", "")
        out.bytes_by_dtype[key] = out.bytes_by_dtype.get(key, 0) + nbytes
        sizes.append(nbytes)
        if t.is_meta:
            meta_sizes.append(nbytes)
        if slot.is_param:
            out.parameter_bytes += nbytes
        else:
            out.buffer_bytes += nbytes
        owner_name = slot.name.rpartition(".")[0]
        entry = owners_bytes.get(owner_name)
        if entry is None:  # the class of the module the name belongs to (a tied tensor has several)
            owner = module.get_submodule(owner_name) if owner_name else module
            entry = owners_bytes[owner_name] = [type(owner).__name__, 0, 0]
        entry[1] += math.prod(shape) if slot.is_param else 0
        entry[2] += nbytes
        # Elements each rank holds: whole rows of dim 0 as torch.chunk deals them, buffers whole.
        held = np.zeros(world_size, np.int64)
        if slot.is_param:
            rows = shape[0] if shape else 1
            row = math.prod(shape[1:]) if shape else 1
            chunk = -(-rows // world_size) if rows else 0
            if chunk:
                full = rows // chunk
                held[:full] = chunk * row
                if rows % chunk:
                    held[full] = rows % chunk * row
        else:
            held[:] = math.prod(shape)
        rank_bytes += held * d.itemsize
        training_bytes += held * (MIXED_BYTES if mixed_precision else 4 * d.itemsize) if trainable else held * d.itemsize
    out.rank_bytes, out.training_bytes = rank_bytes.tolist(), training_bytes.tolist()
    out.total_bytes = store.layout(meta_sizes if meta_sizes else sizes)[1]
    out.layers = [{"path": name, "block": cls, "parameters": n, "bytes": b, "output_shape": None}
                  for name, (cls, n, b) in owners_bytes.items()]
    if out.layers:
        top = max(out.layers, key=lambda layer: layer["bytes"])
        out.largest_layer = (top["path"], top["block"], top["bytes"])
    return out


__all__ = ["TensorPlan", "TorchPlan", "plan"]
