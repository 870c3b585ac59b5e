"""Memory plans: what a network's parameters will cost, worked out before anything is allocated.

``plan(net, inputs...)`` runs the shape-only pass (``gpuinit.meta``), which fixes every unknown
dimension without allocating parameter memory or running arithmetic, then lists each parameter
with its bytes and initializer, totals per layer with the layer's output shape, and compares the
total with the device's free memory. The total is the store's arena size (each parameter at an
aligned offset), so it equals what ``initialize`` and the first forward then allocate.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

import numbers

from . import checks, dtypes, lifecycle
from .device import as_device
from .errors import ArgumentTypeError, PlanError
from .init import InitDesc, Uniform, fans
from .meta import MetaArray
from .store import align, format_bytes
from .streams import Fill


@dataclass
class ParameterPlan:
    name: str
    path: str
    shape: tuple
    dtype: str
    bytes: int
    initializer: str
    fill: str
    fan_in: int | None
    fan_out: int | None
    scale: float | None


@dataclass
class LayerPlan:
    path: str
    block: str
    output_shape: tuple | None
    parameters: int
    bytes: int


@dataclass
class Plan:
    """The result of :func:`plan`. ``fits`` is False rather than an exception."""

    device: str
    parameters: list = field(default_factory=list)
    layers: list = field(default_factory=list)
    output_shape: tuple | None = None
    parameter_bytes: int = 0
    total_bytes: int = 0
    free_bytes: int | None = None
    device_total_bytes: int | None = None

    @property
    def fits(self) -> bool:
        """Whether the arena fits in the device's free memory (True where free memory is unknown)."""
        return self.free_bytes is None or self.total_bytes <= self.free_bytes

    @property
    def missing_bytes(self) -> int:
        return 0 if self.fits else self.total_bytes - self.free_bytes

    @property
    def num_elements(self) -> int:
        return sum(int(np.prod(p.shape, dtype=np.int64)) for p in self.parameters)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["fits"] = self.fits
        out["missing_bytes"] = self.missing_bytes
        return out

    def summary(self, max_rows: int | None = 40) -> str:
        """A human-readable table of parameters and layers."""
        lines = [f"{'parameter':<48} {'shape':<22} {'dtype':<8} {'bytes':>12}  initializer"]
        rows = self.parameters if max_rows is None else self.parameters[:max_rows]
        for p in rows:
            lines.append(f"{p.path:<48} {str(p.shape):<22} {p.dtype:<8} {p.bytes:>12,}  {p.initializer}")
        if len(rows) < len(self.parameters):
            lines.append(f"... {len(self.parameters) - len(rows)} more parameters")
        lines.append("")
        lines.append(f"{'layer':<40} {'kind':<14} {'output shape':<24} {'parameters':>14} {'bytes':>14}")
        layers = [l for l in self.layers if l.parameters]
        shown = layers if max_rows is None else layers[:max_rows]
        for l in shown:
            lines.append(f"{l.path or '(root)':<40} {l.block:<14} {str(l.output_shape):<24} "
                         f"{l.parameters:>14,} {l.bytes:>14,}")
        if len(shown) < len(layers):
            lines.append(f"... {len(layers) - len(shown)} more layers")
        lines.append("")
        lines.append(f"total: {self.num_elements:,} parameters, {format_bytes(self.parameter_bytes)} "
                     f"({self.total_bytes:,} bytes in the arena) on {self.device}; free: "
                     f"{format_bytes(self.free_bytes)}; fits: {'yes' if self.fits else 'no'}")
        return "\n".join(lines)


def _is_shape(x) -> bool:
    return (isinstance(x, (tuple, list)) and len(x) > 0
            and all(isinstance(d, numbers.Real) and not isinstance(d, bool) or isinstance(d, np.number)
                    for d in x))


def _as_meta(x, dtype, where):
    """An example input as a shape-only array: arrays keep their shape and dtype; a tuple of
    numbers is a shape (every dimension a positive integer), also inside lists and dicts."""
    if isinstance(x, MetaArray):
        return x
    if hasattr(x, "shape") and hasattr(x, "dtype"):
        return MetaArray(x.shape, x.dtype)
    if _is_shape(x):
        return MetaArray(checks.shape(x, where, "plan", positive=True,
                                      hint="give every dimension as a positive integer, e.g. (2, 20)"), dtype)
    if isinstance(x, (list, tuple)):
        return type(x)(_as_meta(v, dtype, f"{where}[{j}]") for j, v in enumerate(x))
    if isinstance(x, dict):
        return {k: _as_meta(v, dtype, f"{where}[{k!r}]") for k, v in x.items()}
    return x


def _fill_text(how):
    if isinstance(how, Fill):
        scale = {"constant": how.a, "uniform": how.b, "normal": how.b, "truncated_normal": how.b}[how.family]
        return how.describe(), scale
    return "python hook", None


def plan(net, *inputs, device=None, dtype=None, input_dtype="float32", ctx=None) -> Plan:
    """Plan a network's parameter memory for example inputs, allocating nothing.

    Args:
        net: the block.
        *inputs: example inputs: arrays, :class:`~gpuinit.meta.MetaArray`, or shape tuples.
        device: the device to check against (default: the parameters' device if initialized,
            else ``gpuinit.default_device()``).
        dtype: plan as if every parameter had this dtype (default: each parameter's own).
        input_dtype: dtype of inputs given as shape tuples.
        ctx: Gluon's name for ``device``.

    Returns:
        A :class:`Plan`.

    Raises:
        PlanError: a block's forward cannot be followed by the shape-only pass (names the block),
            or no inputs were given while some shape is unknown.
        ShapeError: the inputs do not fit the network.
        ArgumentError: a bad input shape, dtype or device.
    """
    from .nn import Block
    if not isinstance(net, Block):
        raise ArgumentTypeError(f"plan takes a gpuinit Block, got {type(net).__name__}; pass the network "
                                "(an nn.Block) and its example inputs")
    input_dtype = dtypes.as_dtype(input_dtype)
    if dtype is not None:
        dtype = dtypes.float_dtype(dtype, "plan")
    device = device if device is not None else ctx
    device = as_device(device) if device is not None else None
    with lifecycle.access.changing("plan"):
        metas = [_as_meta(x, input_dtype, f"input {i}") for i, x in enumerate(inputs)]
        params = net.collect_params()
        calls, out = [], None
        if metas:
            out, calls = lifecycle.infer_shapes(net, tuple(metas), {}, net._call_forward, record=True)
        else:
            unknown = [p.name for p in params.values() if not p.shape_known]
            if unknown:
                raise PlanError(f"plan: {len(unknown)} parameter(s) of {net.name!r} have unknown shapes "
                                f"({', '.join(unknown[:3])}{', ...' if len(unknown) > 3 else ''}); pass an "
                                "example input or its shape, e.g. gpuinit.plan(net, (2, 20))")
        first = next(iter(params.values()), None)
        if device is None and first is not None and first.device is not None:
            device = first.device
        device = device if device is not None else as_device(None)
        result = Plan(device=str(device), output_shape=tuple(out.shape) if hasattr(out, "shape") else None)
        by_param = {}
        for name, p in params.items():
            pdtype = dtypes.as_dtype(dtype) if dtype is not None else p.dtype
            nbytes = p.size * pdtype.itemsize
            request = p.request  # what initialize() recorded (an explicit init included), else the default
            initializer, own = (request.initializer, request.own) if request else p.chosen_initializer(Uniform())
            desc = InitDesc(name, role=p.role, path=params.path_of(name), shape=p.shape, dtype=pdtype, own=own)
            try:
                fan_in, fan_out = fans(desc)
            except Exception:
                fan_in = fan_out = None
            text, scale = (_fill_text(initializer.fill_for(desc)) if p.shape_known
                           else ("shape not known yet", None))
            entry = ParameterPlan(name, desc.path, p.shape, str(pdtype), nbytes, f"{initializer!r}: {text}",
                                  text, fan_in, fan_out, scale)
            result.parameters.append(entry)
            by_param[id(p)] = entry
            result.parameter_bytes += nbytes
            result.total_bytes += align(nbytes)
        outputs = {}
        for block, output in calls:
            outputs.setdefault(id(block), tuple(output.shape) if hasattr(output, "shape") else None)
        for path, block in net.named_blocks():
            own = [by_param[id(p)] for p in block._reg_params.values() if id(p) in by_param]
            result.layers.append(LayerPlan(path, type(block).__name__, outputs.get(id(block)),
                                           sum(int(np.prod(e.shape, dtype=np.int64)) for e in own),
                                           sum(e.bytes for e in own)))
        result.free_bytes, result.device_total_bytes = device.memory_info()
    return result
