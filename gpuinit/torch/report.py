"""The memory report for a torch model: ``gpuinit-report --torch module.path:function``.

The factory is called under ``torch.device("meta")`` (nothing allocated), then the same stages as
for gpuinit's own models are read: start, built (on the meta device), initialized (how every
tensor is filled, checked: rules and defaults), materialized (:func:`gpuinit.torch.materialize`)
and steady. The result has the schema of :func:`gpuinit.report.run`, plus a ``torch`` entry
(bytes per dtype, per rank, training memory with Adam).
"""

from __future__ import annotations

import importlib
import time

import torch

from .. import checks, dtypes
from ..device import Device
from ..errors import ArgumentError
from ..memory import nvml_reading, process_seconds, rss_bytes
from ..streams.keys import check_seed
from .materialize import last_materialization, materialize, target_device
from .plan import plan
from .slots import collect

TORCH_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32,
                "float64": torch.float64}


def load_factory(spec: str):
    """The function named by ``"package.module:function"``.

    Raises:
        ArgumentError: a malformed spec, a module that does not import, or no such function.
    """
    hint = "name a function that returns a torch.nn.Module, e.g. --torch mypkg.models:gpt2_small"
    checks.text(spec, "torch model factory", "report", hint=hint)
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ArgumentError(f"report: --torch takes 'module.path:function', got {spec!r}; {hint}")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise ArgumentError(f"report: cannot import {module_name!r} ({type(exc).__name__}: {exc}); {hint}") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise ArgumentError(f"report: {module_name!r} has no function {attr!r}; {hint}")
    return factory


def _held_bytes(module) -> int:
    """Bytes of the distinct storages the module's tensors (not on the meta device) live in."""
    seen = {}
    for t in list(module.parameters()) + list(module.buffers()):
        if not t.is_meta:
            s = t.untyped_storage()
            seen[s.data_ptr()] = s.nbytes()
    return sum(seen.values())


def _reading(name, seconds, device, module) -> dict:
    on_gpu = device.type == "cuda"
    nvml = nvml_reading(device.index) if on_gpu else {"available": False,
                                                      "reason": "NVML not read: the device is the CPU"}
    pool = ({"available": True, "used_bytes": torch.cuda.memory_allocated(device),
             "total_bytes": torch.cuda.memory_reserved(device)} if on_gpu else
            {"available": False, "reason": "no torch CUDA caching allocator on the CPU"})
    return {"name": name, "seconds": seconds, "store_bytes": _held_bytes(module) if module is not None else 0,
            "rss_bytes": rss_bytes(), "device_used_bytes": nvml.get("used_bytes") if nvml["available"] else None,
            "nvml": nvml, "pool": pool}


def run(spec: str, device=None, dtype=None, seed=0, plan_only=False, world_size=1) -> dict:
    """Build ``spec``'s model on the meta device, plan, materialize; the report as a dict.

    ``spec`` names a function (``pkg.module:function``) that returns the module, or
    ``(module, rules)`` with the rules :func:`gpuinit.torch.materialize` takes. ``dtype``: a float
    dtype's name the floating tensors become; None keeps the dtypes the model is built with.

    Raises:
        GpuInitError: a bad argument or factory, a factory that does not return a module, or a
            model gpuinit cannot fill (as :func:`gpuinit.torch.materialize`); nothing allocated.
    """
    started = process_seconds()
    seed = check_seed(seed)
    if dtype is not None:
        checks.choice(dtype, tuple(TORCH_DTYPES), "dtype", "report")
        dtypes.float_dtype(dtype, "report")
    to_dtype = TORCH_DTYPES[dtype] if dtype is not None else None
    world_size = checks.positive_int(world_size, "world_size", "report", hint="e.g. --world-size 8")
    factory = load_factory(spec)
    report = {"model": spec, "dtype": dtype, "seed": seed, "stages": []}
    t = time.perf_counter()
    try:
        with torch.device("meta"):
            module = factory()
    except Exception as exc:
        raise ArgumentError(f"report: {spec} failed under torch.device('meta'): {type(exc).__name__}: {exc}") from exc
    built = time.perf_counter() - t
    rules = None
    if isinstance(module, tuple) and len(module) == 2 and isinstance(module[0], torch.nn.Module):
        module, rules = module
    if not isinstance(module, torch.nn.Module):
        raise ArgumentError(f"report: {spec} returned {type(module).__name__}, not a torch.nn.Module (or a "
                            "(module, rules) pair)")
    if dtype is None:
        floats = sorted({str(t.dtype).removeprefix("torch.") for t in list(module.parameters()) +
                         list(module.buffers()) if t.is_floating_point()})
        report["dtype"] = "/".join(floats) or "float32"
    target = target_device(module, device, "report")
    report["device"] = str(target)
    report["device_name"] = torch.cuda.get_device_name(target) if target.type == "cuda" else Device("cpu").name()
    report["stages"].append(_reading("start", started, target, None))
    report["stages"].append(_reading("built", built, target, module))
    t = time.perf_counter()
    collect(module, rules, "error", "report", lambda x: x.is_meta)  # every tensor has a fill, or the fix is said
    report["stages"].append(_reading("initialized", time.perf_counter() - t, target, module))
    t = time.perf_counter()
    p = plan(module, device=target, dtype=to_dtype, world_size=world_size, rules=rules)
    report["plan_seconds"] = time.perf_counter() - t
    report["plan"] = {"total_bytes": p.total_bytes, "parameter_bytes": p.parameter_bytes,
                      "num_parameters": p.num_parameters,
                      "trainable_parameters": sum(int(torch.Size(x.shape).numel()) for x in p.tensors if x.trainable),
                      "free_bytes": p.free_bytes, "fits": p.fits, "missing_bytes": p.missing_bytes,
                      "output_shape": None,
                      "parameters": [{"name": x.name, "path": x.name, "shape": list(x.shape), "dtype": x.dtype,
                                      "bytes": x.bytes, "initializer": x.fill} for x in p.tensors],
                      "layers": [dict(layer) for layer in p.layers if layer["parameters"]]}
    report["torch"] = {"bytes_by_dtype": p.bytes_by_dtype, "world_size": world_size, "rank_bytes": p.rank_bytes,
                       "training_bytes": p.training_bytes, "fits_training": p.fits_training,
                       "largest_layer": p.largest_layer, "buffer_bytes": p.buffer_bytes}
    report["plan_text"] = p.summary(max_rows=None)
    if plan_only or not p.fits:
        return report
    t = time.perf_counter()
    materialize(module, device=target, seed=seed, dtype=to_dtype, rules=rules)
    if target.type == "cuda":
        torch.cuda.synchronize(target)  # the fills are asynchronous on torch's stream
    seconds = time.perf_counter() - t
    report["stages"].append(_reading("materialized", seconds, target, module))
    last = dict(last_materialization)
    report["materialization"] = {"bytes": last["bytes"], "seconds": seconds,
                                 "gb_per_s": last["bytes"] / seconds / 1e9 if seconds else None,
                                 "planned_bytes_equal_allocated": last["bytes"] == p.total_bytes}
    report["stages"].append(_reading("steady", None, target, module))
    return report


__all__ = ["load_factory", "run"]
