"""Materialize a meta-built torch module into one arena per device, and refill modules in place.

:func:`materialize` lays every tensor that needs memory (the meta ones) out in one arena taken
from torch's allocator (so ``torch.cuda.memory_allocated`` and torch's caching see it), fills the
arena through gpuinit's fill engine (:func:`gpuinit.sharding.fill_pieces`: on the CPU the compiled
engine writes straight into torch's memory; on CUDA the kernels run on torch's current stream),
and only then points the module's parameters and buffers at it (each through a storage of its own
over its bytes). :func:`fill_` writes into tensors someone else allocated (FSDP2's shards
included), in place.

Steps that can fail (checks, the fit, allocation, fills, a rule's function) run before the module
is touched; a failure leaves it as it was and drops the arena.
"""

from __future__ import annotations

import math
import time

import torch

from .. import backend, store
from ..device import Device, host_memory
from ..errors import ArgumentError, DeviceError, InitializerError, OutOfMemoryError
from ..init import Initializer
from ..sharding import Piece, fill_pieces
from ..streams import call_seed
from . import fsdp
from .slots import FLOATS, collect, numpy_dtype

# The most recent successful materialization: arena bytes, host seconds (on CUDA the fills are
# asynchronous on torch's stream and may not have finished), device.
last_materialization: dict = {}


def target_device(module, device, where) -> torch.device:
    """The device to materialize on: ``device``, else where the module's real tensors are, else
    CUDA when torch sees one, else the CPU.

    Raises:
        DeviceError: the module's tensors are on several devices, or on another than ``device``.
    """
    real = {}
    for prefix, mod in module.named_modules():
        for table in (mod._parameters, mod._buffers):
            for local, t in table.items():
                if t is not None and not t.is_meta:
                    real.setdefault(t.device, f"{prefix}.{local}" if prefix else local)
    if len(real) > 1:
        listing = ", ".join(f"{n!r} on {d}" for d, n in real.items())
        raise DeviceError(f"{where}: the module's tensors are on several devices ({listing}); move the "
                          "module to one device (module.to(device)) or build it on the meta device")
    if device is None:
        if real:
            return next(iter(real))
        return torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ArgumentError(f"{where}: cannot understand device {device!r} ({exc}); pass 'cpu', 'cuda' or "
                            "'cuda:N'") from None
    if device.type not in ("cpu", "cuda"):
        raise DeviceError(f"{where}: gpuinit fills on 'cpu' and 'cuda', not {device.type!r}; pass device='cpu' "
                          "or device='cuda'")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"{where}: device {str(device)!r} asked for, but torch sees no CUDA device; pass "
                          "device='cpu'")
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    for d, name in real.items():
        if d != device:
            raise DeviceError(f"{where}: tensor {name!r} is already on {d}, not on {device}; move the module "
                              f"there first (module.to({str(device)!r})) or pass device={str(d)!r}")
    return device


def gpuinit_device(device: torch.device) -> Device:
    """gpuinit's device for a torch device (CUDA needs CuPy, gpuinit's door to the kernels)."""
    if device.type == "cpu":
        return Device("cpu")
    if not backend.has_cupy_gpu():
        raise DeviceError(f"filling torch tensors on {device} runs gpuinit's CUDA kernels through CuPy: "
                          f"{backend.why_no_gpu()}")
    return Device("cuda", device.index)


def free_bytes(device: torch.device) -> int | None:
    """Bytes torch can still allocate on ``device``: the driver's free memory plus what torch's
    caching allocator holds unused; the host's available memory for the CPU."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
    return host_memory()[0]


def check_fits(device: torch.device, needed: int, where: str) -> None:
    free = free_bytes(device)
    if free is not None and needed > free:
        raise OutOfMemoryError(
            f"{where}: the tensors need {store.format_bytes(needed)} on {device}, {store.format_bytes(free)} "
            f"free; {store.format_bytes(needed - free)} short. Nothing was allocated. Use a smaller model or "
            "dtype (dtype=torch.bfloat16), shard it (FSDP2), or check first with gpuinit.torch.plan()")


def _check_dtype_arg(dtype, where):
    if dtype is None:
        return None
    if not isinstance(dtype, torch.dtype) or dtype not in FLOATS:
        raise ArgumentError(f"{where}: dtype must be one of {[str(d) for d in FLOATS]}, got {dtype!r}; "
                            "pass e.g. dtype=torch.bfloat16 (it applies to the floating tensors only)")
    return dtype


class _Filler:
    """Fills for one device, collected then run: gpuinit pieces fused, then torch-side steps."""

    def __init__(self, device: torch.device, seed: int):
        self.device, self.seed = device, seed
        self.pieces, self.after = [], []

    def add(self, slot, out_torch, out_xp, start: int, shape) -> None:
        """Fill ``out_torch`` (contiguous: elements ``[start, ...)`` of ``slot``'s tensor of ``shape``);
        ``out_xp`` is the same memory as a NumPy or CuPy array, or None."""
        how = slot.how
        if isinstance(how, Initializer):
            if out_torch.numel():
                self.pieces.append(Piece(out_xp, slot.name, tuple(shape), how, start))
        elif how == "zero" or how == "reset":
            # "reset": the module's own reset_parameters runs later; zeros first, so a tensor it
            # does not touch never keeps the uninitialized memory's garbage.
            self.after.append(lambda: out_torch.zero_())
        if slot.zero_rows and isinstance(how, Initializer):
            row = math.prod(shape[1:])
            for r in slot.zero_rows:
                lo, hi = max(r * row - start, 0), min((r + 1) * row - start, out_torch.numel())
                if lo < hi:
                    self.after.append(lambda lo=lo, hi=hi: out_torch.view(-1)[lo:hi].zero_())

    def run(self) -> None:
        device = gpuinit_device(self.device)
        if self.device.type == "cuda":
            # gpuinit's kernels on torch's current stream: ordered with the caller's torch work
            # and with the allocator's reuse of this memory, with no synchronization.
            # The device first: CuPy keeps a current stream per device.
            stream = torch.cuda.current_stream(self.device)
            with device.activate(), backend.external_stream(stream.cuda_stream, self.device.index):
                fill_pieces(device, self.pieces, self.seed)
        else:
            fill_pieces(device, self.pieces, self.seed)
        with torch.no_grad():
            for step in self.after:
                step()


def xp_view(t: torch.Tensor):
    """The memory of a contiguous torch tensor as a flat NumPy (CPU) or CuPy (CUDA) array, no copy."""
    flat = t.detach().reshape(-1)
    if t.device.type == "cuda":
        return backend.cupy_module().asarray(flat.view(torch.uint8)).view(numpy_dtype(t.dtype))
    if t.dtype is torch.bfloat16:
        return flat.view(torch.int16).numpy().view(numpy_dtype(t.dtype))
    return flat.numpy()


def _run_functions(slots, tensor_of, where) -> None:
    """Run the rules' torch functions on their tensors (``tensor_of(slot)``)."""
    with torch.no_grad():
        for slot in slots:
            how = slot.how
            if callable(how) and not isinstance(how, Initializer) and not isinstance(how, str):
                for t in tensor_of(slot):
                    try:
                        result = how(t)
                        if result is not None and result is not t:
                            if not isinstance(result, torch.Tensor):
                                raise TypeError(f"it returned {type(result).__name__} {result!r:.80}, neither "
                                                "None nor a tensor")
                            if tuple(result.shape) != tuple(t.shape):
                                raise ValueError(f"it returned a tensor of shape {tuple(result.shape)}")
                            t.copy_(result)  # the values returned: fn(t) -> tensor, as RoPE recipes write it
                    except Exception as exc:
                        raise InitializerError(f"{where}: the function of {slot.source} failed on {slot.kind} "
                                               f"{slot.name!r} (shape {tuple(t.shape)}): {type(exc).__name__}: "
                                               f"{exc}; it must fill the tensor it is given in place, or return "
                                               "a tensor of its shape") from exc


def _reset_unknown(slots, where) -> None:
    """Run ``reset_parameters`` of the modules whose tensors ``unknown="reset"`` left to them, and
    put back every other tensor it rewrites: a module's reset covers all its tensors (and its
    children's), but only the uncovered ones are its to fill; the rest keep a rule's or a
    default's numbers, or the values they held before. Those others are copied while it runs
    (memory for them, beside the arena)."""
    seen = {}
    for slot in slots:
        if slot.how == "reset":
            owner = slot.owners[0][0]
            seen.setdefault(id(owner), owner)
    if not seen:
        return
    theirs = {id(t) for slot in slots if slot.how == "reset" for t in slot.current()}
    with torch.no_grad():
        kept, ids = [], set()
        for owner in seen.values():
            for t in list(owner.parameters()) + list(owner.buffers()):
                if id(t) not in theirs and id(t) not in ids and not t.is_meta:
                    ids.add(id(t))
                    kept.append((t, t.detach().clone()))
        try:
            for owner in seen.values():
                owner.reset_parameters()
        finally:  # on failure too: a tensor that held values before keeps them
            for t, value in kept:
                t.detach().copy_(value)


def materialize(module, device=None, seed=None, rules=None, dtype=None, unknown="error", reinit=False):
    """Give a meta-built module memory, one arena per device, filled by gpuinit's streams.

    Every parameter and buffer on the meta device gets its bytes in one arena that torch's
    allocator gives (on CUDA, ``torch.cuda.memory_allocated`` counts it), through a storage of its
    own (so ``torch.save`` of a part writes that part, and safetensors' ``save_model`` sees
    separate tensors; the arena lives while any of them does; CUDA IPC sharing of such a tensor
    needs a ``clone()`` first), filled with no copy:
    gpuinit's fill engine writes into that memory, on CUDA on torch's current stream (the call does
    not wait for the fills: torch work queued after it on that stream sees the numbers). Tensors
    already on a real device are kept as they are (pass ``reinit=True`` to re-initialize them too).
    A module after FSDP2's ``fully_shard`` (DTensor parameters, ``Shard(0)``) is allocated the way
    FSDP2 expects, with ``to_empty``, and each rank fills only its own shard, with no communication:
    the gathered parameters equal the unsharded ones bit for bit.

    A tensor's numbers depend only on the seed, its name (the alphabetically first, for tied
    tensors), its initializer and its shape: not on the device, the process, the build order, or
    the sharding.

    Args:
        module: a ``torch.nn.Module`` built under ``torch.device("meta")`` (or with some meta tensors).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or a ``torch.device``; default: where the module's
            real tensors are, else CUDA if torch sees one, else the CPU.
        seed: a non-negative integer; default the next of gpuinit's global seeds (``gpuinit.seed``).
        rules: ``{pattern: initializer}``: a tensor whose name (any of its names) a pattern
            (``re.search``) matches gets the first such rule's initializer: a gpuinit
            :class:`~gpuinit.init.Initializer` (or its name, ``'zeros'``), or a function
            ``fn(tensor)`` that fills it in place or returns its values (torch code: RoPE
            frequencies). An ``Embedding``'s ``padding_idx`` row is zero whatever initializer a
            rule gives it (as torch's and Hugging Face's inits leave it). Other tensors get
            torch's own default for their module (:mod:`gpuinit.torch.defaults`).
        dtype: a torch float dtype the floating tensors become (integer buffers keep theirs).
        unknown: what to do with tensors of modules gpuinit does not know and no rule covers:
            ``"error"`` (raise, listing them) or ``"reset"`` (run the module's own
            ``reset_parameters()`` on the materialized tensors: torch's random numbers for those
            tensors; every other tensor it rewrites is put back).
        reinit: also re-initialize (into the new arena) tensors that already have memory.

    Returns:
        ``module``, materialized.

    Raises:
        ArgumentError: a bad argument, a rule matching nothing or an integer tensor, a non-float
            parameter, or a module with nothing to materialize; InitializerError: tensors no rule or
            default covers; DeviceError: tensors on several devices; OutOfMemoryError: the arena does
            not fit (nothing allocated). The module is unchanged after any of them.

    Example:
        >>> import torch, gpuinit.torch
        >>> with torch.device("meta"):
        ...     net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.LayerNorm(8))
        >>> net = gpuinit.torch.materialize(net, device="cpu", seed=0)
        >>> net[0].weight.device.type, bool(net[1].weight.eq(1).all())
        ('cpu', True)
    """
    with store.gc_paused():  # thousands of small objects: collections would traverse all of torch
        return _materialize_checked(module, device, seed, rules, dtype, unknown, reinit)


def _materialize_checked(module, device, seed, rules, dtype, unknown, reinit):
    where = "gpuinit.torch.materialize"
    dtype = _check_dtype_arg(dtype, where)
    reinit = bool(reinit)
    slots = collect(module, rules, unknown, where, lambda t: reinit or t.is_meta)
    if not slots and not any(True for _ in module.parameters()) and not any(True for _ in module.buffers()):
        raise ArgumentError(f"{where}: the {type(module).__name__} has no parameters or buffers, so there is "
                            "nothing to materialize; pass the module that holds the tensors")
    if not slots:
        raise ArgumentError(f"{where}: every tensor of the {type(module).__name__} already has memory (none is on "
                            "the meta device); to re-initialize it in place call gpuinit.torch.fill_(module), or "
                            "pass reinit=True to materialize it into a new arena")
    target = target_device(module, device, where)
    if fsdp.has_dtensors(module):
        return fsdp.materialize(module, slots, target, seed, dtype, where)
    with call_seed(seed) as seed_value:
        _materialize(module, slots, target, seed_value, dtype, where)
    return module


def target_dtype(t: torch.Tensor, dtype):
    return dtype if dtype is not None and t.dtype in FLOATS else t.dtype


def _materialize(module, slots, device, seed, dtype, where) -> None:
    started = time.perf_counter()
    new_dtypes = [target_dtype(s.tensor, dtype) for s in slots]
    shapes = [tuple(s.tensor.shape) for s in slots]
    nbytes = [math.prod(shape) * d.itemsize for shape, d in zip(shapes, new_dtypes)]
    offsets, size = store.layout(nbytes)
    offsets = offsets.tolist()
    check_fits(device, size, where)
    pad = store.ALIGNMENT if device.type == "cpu" else 0  # CUDA's allocator aligns to 512 bytes
    try:
        raw = torch.empty(max(size, 1) + pad, dtype=torch.uint8, device=device)
    except torch.OutOfMemoryError as exc:
        raise OutOfMemoryError(f"{where}: allocating {store.format_bytes(size)} on {device} failed: {exc}; "
                               "nothing was changed. Free memory, or use a smaller model or dtype") from exc
    start = (-raw.data_ptr()) % store.ALIGNMENT if pad else 0
    arena = raw[start:start + max(size, 1)]
    arena_xp = backend.cupy_module().asarray(arena) if device.type == "cuda" else arena.numpy()
    # Each tensor gets a storage of its own over its bytes of the arena (a storage slice keeps the
    # arena alive): one allocation, yet torch.save and safetensors' save_model see separate
    # tensors, not one storage shared by all (which save_model refuses, and torch.save of one
    # sub-module would write whole).
    storage = raw.untyped_storage()
    typed_xp = {}  # the whole arena as each float dtype: one view per tensor after that
    views = []
    filler = _Filler(device, seed)
    for slot, shape, d, offset, n in zip(slots, shapes, new_dtypes, offsets, nbytes):
        if d not in typed_xp:
            typed_xp[d] = arena_xp[:size // d.itemsize * d.itemsize].view(numpy_dtype(d)) if d in FLOATS else None
        view = torch.empty(0, dtype=d, device=device).set_(storage[start + offset:start + offset + n], 0, shape)
        first, count = offset // d.itemsize, n // d.itemsize
        filler.add(slot, view, typed_xp[d][first:first + count] if typed_xp[d] is not None else None, 0, shape)
        views.append(view)
    filler.run()
    view_of = {id(slot): view for slot, view in zip(slots, views)}
    _run_functions(slots, lambda slot: [view_of[id(slot)]], where)
    # Nothing can fail from here on but a module's own reset_parameters, which is undone.
    old = []
    for slot, view in zip(slots, views):
        t = slot.tensor
        if slot.is_param:
            new = torch.nn.Parameter(view, requires_grad=t.requires_grad)
            new.__dict__.update(t.__dict__)  # attributes code set on the parameter (no_weight_decay flags)
        else:
            new = view
        for mod, local in slot.owners:
            table = mod._parameters if slot.is_param else mod._buffers
            old.append((table, local, table[local]))
            table[local] = new
    try:
        _reset_unknown(slots, where)
    except BaseException:
        for table, local, t in reversed(old):
            table[local] = t
        raise
    # On CUDA the fills may still be running (nothing here waits for them): the seconds are the host's.
    last_materialization.update(bytes=size, seconds=time.perf_counter() - started, device=str(device))


def fill_(module, seed=None, rules=None, unknown="error"):
    """Re-initialize, in place, every tensor of a module that already has memory.

    For storage someone else owns (FSDP2's shards, a module moved with ``to_empty``, a trained
    model to reset): the tensors are not re-pointed, their memory is written. A DTensor gets its
    local shard's part of the numbers, so the gathered tensor equals the unsharded fill. The
    numbers are those :func:`materialize` gives for the same seed, names and rules.

    Args:
        module, seed, rules, unknown: as for :func:`materialize`.

    Returns:
        ``module``.

    Raises:
        ArgumentError: a tensor still on the meta device (materialize it instead), or as
            :func:`materialize`. Checks run before anything is written.

    Example:
        >>> import torch, gpuinit.torch
        >>> net = torch.nn.Linear(3, 2)
        >>> a = gpuinit.torch.fill_(net, seed=1).weight.clone()
        >>> bool(torch.equal(a, gpuinit.torch.fill_(net, seed=1).weight))
        True
    """
    with store.gc_paused():
        return _fill_checked(module, seed, rules, unknown)


def _fill_checked(module, seed, rules, unknown):
    where = "gpuinit.torch.fill_"
    slots = collect(module, rules, unknown, where, lambda t: True)
    for slot in slots:
        if slot.tensor.is_meta:
            raise ArgumentError(f"{where}: {slot.kind} {slot.name!r} is on the meta device, it has no memory to "
                                "fill; call gpuinit.torch.materialize(module) instead")
    target_device(module, None, where)
    fsdp.check_placements(slots, where)
    if fsdp.has_dtensors(module):
        fsdp.check_seed_shared(seed, where)
    with call_seed(seed) as seed_value:
        fill_in_place(slots, seed_value, where)
    return module


def fill_in_place(slots, seed: int, where: str) -> None:
    """Fill every slot's current tensors in place (a DTensor: its local shard's elements).

    All or nothing: the rules' functions (Python, so they may fail) fill temporaries first, copied
    in only once everything else has worked; where modules' own ``reset_parameters`` run (which
    may fail after gpuinit's fills), the tensors are copied first and put back on failure.
    """
    staged = []

    def temporaries(slot):
        out = []
        for t in slot.current():
            temporary = torch.empty_like(t.detach())
            staged.append((t, temporary))
            out.append(temporary)
        return out

    _run_functions(slots, temporaries, where)
    with torch.no_grad():
        saved = ([(t, t.detach().clone()) for slot in slots for t in slot.current()]
                 if any(slot.how == "reset" for slot in slots) else [])
    try:
        _fill_now(slots, seed, where)
    except BaseException:
        with torch.no_grad():
            for t, old in saved:
                t.detach().copy_(old)
        raise
    with torch.no_grad():
        for t, temporary in staged:
            t.detach().copy_(temporary)


def _fill_now(slots, seed: int, where: str) -> None:
    fillers: dict = {}
    copies = []
    for slot in slots:
        for t in slot.current():
            local, start = fsdp.local_part(t)
            shape = tuple(t.shape)
            filler = fillers.setdefault(local.device, _Filler(local.device, seed))
            data = local.detach()
            target = data if data.is_contiguous() else torch.empty_like(data, memory_format=torch.contiguous_format)
            if target is not data:
                copies.append((data, target))
            flat = target.reshape(-1)
            filler.add(slot, flat, xp_view(target) if target.dtype in FLOATS else None, start, shape)
    for filler in fillers.values():
        filler.run()
    with torch.no_grad():
        for data, target in copies:
            data.copy_(target)
    _reset_unknown(slots, where)
