"""The memory report: what a model costs before, during and after initialization.

Run it as ``gpuinit-report``, ``python -m gpuinit report`` or ``scripts/memory_report.py``. It
builds a model, initializes it (deferred: nothing allocated), plans it (predicted bytes), runs
the first forward (materialized) and a second one (steady), and reads at each stage the store's
parameter bytes, host RSS, CuPy's pool and NVML. A model that does not fit is reported with its
plan and the shortfall, and the report exits with status 3 without allocating.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time

import numpy as np

from . import checks, dtypes, lifecycle, models, nd, store
from .backend import why_no_gpu
from .device import as_device
from .errors import ArgumentError, GpuInitError
from .streams.keys import check_seed
from .memory import nvml_reading, pool_reading, process_seconds, rss_bytes
from .planning import plan
from .store import format_bytes

EXIT_DOES_NOT_FIT = 3
EXIT_USAGE = 2
LARGEST = 5  # layers shown in the default summary
STAGES = ("start", "built", "initialized", "materialized", "steady")


def _reading(name, seconds, device) -> dict:
    nvml = nvml_reading(device.index) if device.is_gpu else {
        "available": False, "reason": "NVML not read: the device is the CPU"}
    pool = pool_reading(device)
    return {"name": name, "seconds": seconds, "store_bytes": store.live_bytes(device),
            "rss_bytes": rss_bytes(),
            "device_used_bytes": nvml.get("used_bytes") if nvml["available"] else None,
            "nvml": nvml, "pool": pool}


class _Progress:
    """A progress bar on stderr, drawn only when stderr is a terminal and the work passes ~1 s."""

    def __init__(self, total: int):
        self.total, self.done, self.start = max(total, 1), 0, time.perf_counter()
        self.enabled = sys.stderr.isatty()
        self.lock = threading.Lock()
        self.drawn = False
        self.last = 0.0

    def __call__(self, nbytes: int) -> None:
        with self.lock:
            self.done += nbytes
            now = time.perf_counter()
            finished = self.done >= self.total
            if not self.enabled or now - self.start < 1.0 or (now - self.last < 0.1 and not finished):
                return
            self.last = now
            frac = min(1.0, self.done / self.total)
            bar = "#" * int(30 * frac)
            sys.stderr.write(f"\rmaterializing [{bar:<30}] {100 * frac:5.1f}% "
                             f"{format_bytes(self.done)} / {format_bytes(self.total)}")
            sys.stderr.flush()
            self.drawn = True

    def close(self) -> None:
        if self.drawn:
            sys.stderr.write("\n")


def _example_input(name, shape, batch_size, device):
    _, default_shape, in_dtype = models.MODELS[name]
    shape = tuple(shape) if shape else tuple(default_shape)
    if batch_size:
        shape = (batch_size,) + shape[1:]
    if in_dtype == "int64":
        rng = np.random.default_rng(0)
        return nd.array(rng.integers(0, 1000, size=shape), device=device, dtype="int64")
    return nd.random.uniform(shape=shape, device=device)


def run(model=models.DEFAULT_MODEL, device=None, dtype="float32", seed=0, input_shape=None,
        batch_size=None, plan_only=False) -> dict:
    """Build, plan and materialize ``model``; return the report as a dict (the ``--json`` schema).

    Raises:
        GpuInitError: a bad argument (unknown model, device or dtype; a seed, batch size or input
            shape that is not made of positive integers), or a model whose forward rejects the
            input shape; nothing is allocated then.
    """
    started = process_seconds()
    checks.choice(model, tuple(models.MODELS), "model", "report")
    seed = check_seed(seed)
    if input_shape is not None:
        input_shape = checks.shape(input_shape, "input_shape", "report", positive=True,
                                   hint="give positive sizes, e.g. --input-shape 1,128")
        if not input_shape:
            raise ArgumentError("report: input_shape must not be empty; give sizes, e.g. --input-shape 1,128")
    if batch_size is not None:
        batch_size = checks.positive_int(batch_size, "batch_size", "report", hint="e.g. --batch-size 4")
    dtypes.float_dtype(dtype, "report")
    device = as_device(device)
    report = {"model": model, "device": str(device), "device_name": device.name(), "dtype": dtype,
              "seed": seed, "stages": []}
    report["stages"].append(_reading("start", started, device))
    t = time.perf_counter()
    net = models.get(model, dtype=dtype)
    report["stages"].append(_reading("built", time.perf_counter() - t, device))
    t = time.perf_counter()
    net.initialize(device=device, seed=seed)
    report["stages"].append(_reading("initialized", time.perf_counter() - t, device))
    x = _example_input(model, input_shape, batch_size, device)
    t = time.perf_counter()
    p = plan(net, x, device=device)
    report["plan_seconds"] = time.perf_counter() - t
    report["plan"] = {"total_bytes": p.total_bytes, "parameter_bytes": p.parameter_bytes,
                      "num_parameters": p.num_elements, "trainable_parameters": models.count_parameters(net),
                      "free_bytes": p.free_bytes, "fits": p.fits, "missing_bytes": p.missing_bytes,
                      "output_shape": p.output_shape,
                      "parameters": [{"name": e.name, "path": e.path, "shape": list(e.shape), "dtype": e.dtype,
                                      "bytes": e.bytes, "initializer": e.initializer} for e in p.parameters],
                      "layers": [{"path": l.path, "block": l.block, "output_shape": l.output_shape,
                                  "parameters": l.parameters, "bytes": l.bytes} for l in p.layers if l.parameters]}
    report["plan_text"] = p.summary(max_rows=None)
    if plan_only or not p.fits:
        return report
    progress = _Progress(p.parameter_bytes)  # what the fills report: parameter bytes, not the padded arena
    t = time.perf_counter()
    with lifecycle.observe(progress):
        net(x)
    progress.close()
    report["stages"].append(_reading("materialized", time.perf_counter() - t, device))
    mat = dict(store.last_materialization)
    report["materialization"] = {"bytes": mat.get("bytes"), "seconds": mat.get("seconds"),
                                 "gb_per_s": mat["bytes"] / mat["seconds"] / 1e9 if mat.get("seconds") else None,
                                 "planned_bytes_equal_allocated": mat.get("bytes") == p.total_bytes}
    t = time.perf_counter()
    net(x)
    report["stages"].append(_reading("steady", time.perf_counter() - t, device))
    return report


def _fmt(n):
    return "-" if n is None else format_bytes(n)


def render(report: dict, verbose: bool = False) -> str:
    """The report as text: stages and a summary (the largest layers); every parameter and layer
    with ``verbose``."""
    lines = [f"gpuinit memory report: {report['model']} ({report['dtype']}) on {report['device']} "
             f"({report['device_name']}), seed {report['seed']}", ""]
    lines.append(f"{'stage':<14} {'seconds':>9} {'store':>12} {'host RSS':>12} {'GPU used':>12} "
                 f"{'GPU process':>12} {'pool used':>12} {'pool total':>12}")
    for s in report["stages"]:
        nv, pool = s["nvml"], s["pool"]
        sec = "-" if s["seconds"] is None else f"{s['seconds']:.3f}"
        lines.append(f"{s['name']:<14} {sec:>9} {_fmt(s['store_bytes']):>12} {_fmt(s['rss_bytes']):>12} "
                     f"{_fmt(s['device_used_bytes']):>12} {_fmt(nv.get('process_bytes')):>12} "
                     f"{_fmt(pool.get('used_bytes')):>12} {_fmt(pool.get('total_bytes')):>12}")
    first = report["stages"][0]
    missing = [f"{what}: unavailable: {reading['reason']}"
               for what, reading in (("NVML", first["nvml"]), ("CuPy pool", first["pool"])) if not reading["available"]]
    if missing:
        lines.append("; ".join(missing))
    if report["device"] == "cpu" and why_no_gpu():
        lines.append(f"no usable GPU: {why_no_gpu()}")
    pl = report["plan"]
    lines.append("")
    lines.append(f"plan ({report['plan_seconds']:.3f} s, nothing allocated): {pl['num_parameters']:,} parameters "
                 f"({pl['trainable_parameters']:,} trainable), {_fmt(pl['total_bytes'])}; "
                 f"free on {report['device']}: {_fmt(pl['free_bytes'])}; fits: {'yes' if pl['fits'] else 'no'}; "
                 f"output shape {pl['output_shape']}")
    tr = report.get("torch")
    if tr:
        lines.append("bytes by dtype: " + ", ".join(f"{d} {_fmt(n)}" for d, n in tr["bytes_by_dtype"].items())
                     + f"; buffers {_fmt(tr['buffer_bytes'])}")
        lines.append(f"per rank ({tr['world_size']}, dim-0 shards): {_fmt(max(tr['rank_bytes']))}; training with Adam "
                     f"(parameters, gradients, two moments): {_fmt(max(tr['training_bytes']))} per rank, "
                     f"activations not counted; fits: {'yes' if tr['fits_training'] else 'no'}")
    if not pl["fits"]:
        lines.append(f"DOES NOT FIT: {_fmt(pl['missing_bytes'])} missing on {report['device']}; nothing was allocated")
    mat = report.get("materialization")
    if mat:
        lines.append(f"materialized {_fmt(mat['bytes'])} in {mat['seconds']:.3f} s "
                     f"({mat['gb_per_s']:.2f} GB/s); planned bytes == allocated bytes: "
                     f"{mat['planned_bytes_equal_allocated']}")
        stages = {s["name"]: s for s in report["stages"]}
        if stages["materialized"]["rss_bytes"] and stages["initialized"]["rss_bytes"]:
            growth = stages["materialized"]["rss_bytes"] - stages["initialized"]["rss_bytes"]
            lines.append(f"host RSS growth at materialization: {_fmt(growth)} "
                         f"({growth / pl['total_bytes']:.3f} x planned)")
    lines.append("")
    if verbose:
        lines.append(report["plan_text"])
        return "\n".join(lines)
    layers = sorted(pl["layers"], key=lambda l: -l["bytes"])
    total = max(1, sum(l["bytes"] for l in layers))
    lines.append(f"largest layers ({min(LARGEST, len(layers))} of {len(layers)} with parameters):")
    for l in layers[:LARGEST]:
        lines.append(f"  {l['path'] or '(root)':<28} {l['block']:<12} {l['parameters']:>14,} parameters "
                     f"{_fmt(l['bytes']):>12} {100 * l['bytes'] / total:5.1f}%")
    lines.append("(--verbose lists every parameter and layer)")
    return "\n".join(lines)


def plot(report: dict, path: str) -> None:
    """Save a picture of memory by stage and bytes by layer (needs matplotlib)."""
    try:
        import matplotlib  # noqa: PLC0415 - optional
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415
    except ImportError:
        raise GpuInitError('--plot needs matplotlib: pip install "gpuinit[plot]"') from None
    fig, (a, b) = plt.subplots(1, 2, figsize=(13, 5))
    names = [s["name"] for s in report["stages"]]
    for key, label in (("store_bytes", "store"), ("rss_bytes", "host RSS"), ("device_used_bytes", "GPU used")):
        values = [(s[key] or 0) / 2**20 for s in report["stages"]]
        if any(values):
            a.plot(names, values, marker="o", label=label)
    a.axhline(report["plan"]["total_bytes"] / 2**20, linestyle="--", color="gray", label="planned")
    a.set_ylabel("MiB")
    a.set_title(f"{report['model']} on {report['device']}: memory by stage")
    a.legend()
    layers = sorted(report["plan"]["layers"], key=lambda l: -l["bytes"])[:20]
    b.barh([l["path"] or "(root)" for l in layers][::-1], [l["bytes"] / 2**20 for l in layers][::-1])
    b.set_xlabel("MiB")
    b.set_title("largest layers by parameter bytes")
    fig.tight_layout()
    fig.savefig(path)


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad option is one line on stderr and exit status 2."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {text!r}")
    return value


def _shape(text: str) -> tuple:
    try:
        dims = tuple(int(v) for v in text.split(","))
    except ValueError:
        dims = ()
    if not dims or any(d < 1 for d in dims):
        raise argparse.ArgumentTypeError(f"must be positive integers separated by commas (e.g. 1,128), got {text!r}")
    return dims


def _run_torch(args) -> dict:
    try:
        from .torch.report import run as run_torch
    except ImportError as exc:
        raise GpuInitError(str(exc)) from None
    return run_torch(args.torch, args.device, args.dtype, args.seed, args.plan_only, args.world_size)


def main(argv=None) -> int:
    parser = _Parser(prog="gpuinit-report", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, choices=sorted(models.MODELS),
                        help=f"one of gpuinit's models (default {models.DEFAULT_MODEL})")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: first usable GPU, else CPU)")
    parser.add_argument("--dtype", default=None, choices=["float16", "bfloat16", "float32", "float64"],
                        help="the parameters' dtype (default float32; with --torch, as the model is built)")
    parser.add_argument("--seed", type=_non_negative, default=0)
    parser.add_argument("--input-shape", type=_shape, default=None,
                        help="example input shape, comma-separated (e.g. 1,128)")
    parser.add_argument("--batch-size", type=_positive, default=None, help="replaces the input shape's first size")
    parser.add_argument("--plan-only", action="store_true", help="plan and stop: allocate nothing")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--verbose", action="store_true", help="list every parameter and layer")
    parser.add_argument("--plot", metavar="FILE.png", default=None)
    parser.add_argument("--torch", metavar="MODULE:FUNCTION", default=None,
                        help="report a torch model instead: a function returning a torch.nn.Module (or a "
                             "(module, rules) pair), built on the meta device and materialized by gpuinit.torch "
                             "(needs gpuinit[torch])")
    parser.add_argument("--world-size", type=_positive, default=1,
                        help="with --torch: ranks the parameters are split among on dim 0 (FSDP2)")
    args = parser.parse_args(argv)
    if args.torch is not None:
        given = [flag for flag, value in (("--model", args.model is not None),
                                          ("--input-shape", args.input_shape is not None),
                                          ("--batch-size", args.batch_size is not None)) if value]
        if given:
            parser.error(f"argument --torch: {', '.join(given)} applies to gpuinit's own models, not to a torch "
                         "model (which is planned from its parameters, without an input); drop it")
    else:
        args.model = args.model or models.DEFAULT_MODEL
        args.dtype = args.dtype or "float32"
    if args.plot is not None:
        folder = os.path.dirname(os.path.abspath(args.plot))
        if not os.path.isdir(folder):
            parser.error(f"argument --plot: folder {folder!r} does not exist; create it or name another file")
    try:
        if args.torch is not None:
            report = _run_torch(args)
        else:
            report = run(args.model, args.device, args.dtype, args.seed, args.input_shape, args.batch_size,
                         args.plan_only)
        if args.plot:
            plot(report, args.plot)
    except GpuInitError as exc:
        print(f"{parser.prog}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted; nothing was kept", file=sys.stderr)
        return 130
    if args.json:
        out = dict(report)
        out.pop("plan_text")
        print(json.dumps(out, indent=1, default=str))
    else:
        print(render(report, verbose=args.verbose))
    return 0 if report["plan"]["fits"] else EXIT_DOES_NOT_FIT


if __name__ == "__main__":
    sys.exit(main())
