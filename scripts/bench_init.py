#!/usr/bin/env python3
"""Benchmarks: materializing parameters with gpuinit against PyTorch (and CuPy), same run.

``--device cpu`` (default): the GPT-2-small parameter set (124,439,808 float32) on the CPU.
``--device cuda``: fill throughput, many small tensors, and whole models on the GPU (see
``gpu_main``).

CPU contenders:

Runs each contender in its own process (so peak RSS is its own) and prints seconds, the ratio
to PyTorch eager, and peak RSS against the parameters' bytes:

- gpuinit, torch-default distributions: KaimingUniform(a=sqrt(5)) weights, N(0, 1) embeddings,
  as torch.nn's constructors draw them (biases: zeros here, U(+-1/sqrt(fan_in)) in torch);
- gpuinit, GPT-2's published initialization (N(0, 0.02), scaled projections): the normal family;
- PyTorch eager: building torch.nn modules allocates and initializes them;
- PyTorch meta: build on the meta device, ``to_empty(device="cpu")``, ``reset_parameters()``.

Each figure is the median of ``--repeat`` runs in fresh processes. PyTorch is the peer, not a
dependency: its rows are skipped where it is not installed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pathlib
import resource
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
N_PARAMS = 124_439_808


def peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def child_gpuinit(variant: str) -> dict:
    sys.path.insert(0, str(ROOT))
    from gpuinit import init, models, planning, streams

    net = models.gpt2("small")
    planning.plan(net, (1, 8), input_dtype="int64", device="cpu")  # shapes only: allocates nothing
    if variant == "torch-dist":
        for name, p in net.collect_params().items():
            if p.role == "weight":
                p.init = init.Normal(1.0) if "wte" in name or "wpe" in name else init.KaimingUniform(a=math.sqrt(5))
    before = peak_rss()
    t = time.perf_counter()
    net.initialize(device="cpu", seed=0)
    seconds = time.perf_counter() - t
    count = sum(p.size for p in net.collect_params().values())
    return {"seconds": seconds, "peak_rss": peak_rss(), "rss_before": before, "params": count,
            "threads": streams.cpu_workers()}


def _torch_gpt2(torch):
    nn = torch.nn

    class Block(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.ln_1, self.ln_2 = nn.LayerNorm(c), nn.LayerNorm(c)
            self.c_attn, self.attn_proj = nn.Linear(c, 3 * c), nn.Linear(c, c)
            self.c_fc, self.mlp_proj = nn.Linear(c, 4 * c), nn.Linear(4 * c, c)

    class GPT2(nn.Module):
        def __init__(self):
            super().__init__()
            self.wte, self.wpe = nn.Embedding(50257, 768), nn.Embedding(1024, 768)
            self.h = nn.ModuleList(Block(768) for _ in range(12))
            self.ln_f = nn.LayerNorm(768)

    return GPT2


def child_torch(variant: str) -> dict:
    import torch

    torch.manual_seed(0)
    model_cls = _torch_gpt2(torch)
    before = peak_rss()
    if variant == "eager":
        t = time.perf_counter()
        model = model_cls()
        seconds = time.perf_counter() - t
    else:
        with torch.device("meta"):
            model = model_cls()
        t = time.perf_counter()
        model = model.to_empty(device="cpu")
        for m in model.modules():
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()
        seconds = time.perf_counter() - t
    count = sum(p.numel() for p in model.parameters())
    return {"seconds": seconds, "peak_rss": peak_rss(), "rss_before": before, "params": count,
            "threads": torch.get_num_threads()}


CONTENDERS = {
    "gpuinit (torch distributions)": ("gpuinit", "torch-dist"),
    "gpuinit (GPT-2 init, normal)": ("gpuinit", "gpt2"),
    "torch eager": ("torch", "eager"),
    "torch meta -> to_empty -> reset": ("torch", "meta"),
}


def run_child(kind: str, variant: str) -> dict | None:
    out = subprocess.run([sys.executable, __file__, "--child", kind, variant], capture_output=True, text=True)
    if out.returncode != 0:
        if "No module named 'torch'" in out.stderr:
            return None
        raise RuntimeError(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--quick", action="store_true",
                        help="GPU section at toy sizes: checks that the benchmark runs, measures nothing")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, variant = args.child
        result = child_gpuinit(variant) if kind == "gpuinit" else child_torch(variant)
        print(json.dumps(result))
        return 0
    if args.device == "cuda":
        sys.path.insert(0, str(ROOT))
        from gpuinit.errors import DeviceError
        try:
            return gpu_main(max(args.repeat, 5) if not args.quick else 1, args.quick)
        except DeviceError as exc:
            print(f"bench_init: {exc}", file=sys.stderr)
            return 2
    param_bytes = N_PARAMS * 4
    print(f"GPT-2 small parameter set: {N_PARAMS:,} float32 = {param_bytes / 2**20:.1f} MiB; "
          f"{os.cpu_count()} CPUs; median of {args.repeat} fresh processes")
    results = {}
    for label, (kind, variant) in CONTENDERS.items():
        runs = [run_child(kind, variant) for _ in range(args.repeat)]
        if any(r is None for r in runs):
            print(f"{label:<34} skipped (PyTorch not installed)")
            continue
        assert all(r["params"] == N_PARAMS for r in runs), runs
        results[label] = {"seconds": statistics.median(r["seconds"] for r in runs),
                          "peak_rss": statistics.median(r["peak_rss"] for r in runs),
                          "growth": statistics.median(r["peak_rss"] - r["rss_before"] for r in runs),
                          "threads": runs[0]["threads"]}
    eager = results.get("torch eager", {}).get("seconds")
    print(f"{'contender':<34} {'seconds':>8} {'vs eager':>9} {'peak RSS MiB':>13} {'RSS / params':>13} "
          f"{'growth / params':>16} threads")
    for label, r in results.items():
        ratio = f"{r['seconds'] / eager:.2f}x" if eager else "-"
        print(f"{label:<34} {r['seconds']:8.3f} {ratio:>9} {r['peak_rss'] / 2**20:13.1f} "
              f"{r['peak_rss'] / param_bytes:13.3f} {r['growth'] / param_bytes:16.3f} {r['threads']:>7}")
    cpu_fill_rates(args.repeat)
    gpu_bookkeeping(args.repeat)
    small_parameters(max(args.repeat, 7))
    sharded_init()
    return 0


def sharded_init() -> None:
    """One rank's shard of LLaMA-2-7B on the CPU: what it allocates against the whole model."""
    sys.path.insert(0, str(ROOT))
    import gpuinit
    from gpuinit import models, store

    net = models.get("llama2-7b")
    net.initialize(device="cpu", seed=0, defer=True)
    whole = gpuinit.plan(net, (1, 8), input_dtype="int64", device="cpu").total_bytes
    before = store.live_bytes()
    t = time.perf_counter()
    part = gpuinit.shard(net, 0, 8)
    seconds = time.perf_counter() - t
    allocated = store.live_bytes() - before
    print(f"\n5. sharded initialization, LLaMA-2-7B float32 ({whole / 1e9:.2f} GB whole), rank 0 of 8 on "
          f"the CPU: {seconds:.2f} s, {allocated / 1e9:.2f} GB allocated = {allocated / whole:.4f} of the "
          f"whole, {len(part)} slices")


def _median_seconds(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _paired(fns, repeats):
    """Median seconds of each of ``fns``, run in turns (this VM's speed drifts by 2x between
    minutes: alternating keeps each comparison within one period), and the median of the per-turn
    ratios of each to the last."""
    for fn in fns:
        fn()
    turns = []
    for _ in range(repeats):
        row = []
        for fn in fns:
            t = time.perf_counter()
            fn()
            row.append(time.perf_counter() - t)
        turns.append(row)
    medians = [statistics.median(r[i] for r in turns) for i in range(len(fns))]
    ratios = [statistics.median(r[i] / r[-1] for r in turns) for i in range(len(fns))]
    return medians, ratios


def cpu_fill_rates(repeats: int) -> None:
    """ns per element of each family and dtype on every core, 16 Mi elements: the compiled engine,
    the NumPy implementation, and torch, in turns."""
    sys.path.insert(0, str(ROOT))
    import numpy as np

    from gpuinit import device, dtypes, engine, streams
    from gpuinit.streams import Fill

    n = 1 << 24
    cpu = device.cpu()
    print(f"\n2. CPU fill rate, {n:,} elements in one parameter, {streams.cpu_workers()} threads, engine "
          f"{engine.cpu_engine()!r} (ns per element; medians of {repeats} turns; ratios: median of the "
          "per-turn ratios)")
    fills = {"uniform": Fill.uniform(-1, 1), "normal": Fill.normal(0, 1),
             "truncated normal": Fill.truncated_normal(0, 1, -2, 2)}
    try:
        import torch
    except ImportError:
        torch = None
    names = [d.name for d in dtypes.float_dtypes()]
    print(f"  {'family':<18}" + "".join(f"{d:>10}" for d in names) + "   float32: NumPy path, torch")
    for family, fill in fills.items():
        row = []
        for dtype in dtypes.float_dtypes():
            out = np.empty(n, dtype)
            row.append(_median_seconds(lambda: engine.fill_arrays(cpu, [(out, fill, (1, 2), 0)]), repeats) / n * 1e9)
        line = f"  {family:<18}" + "".join(f"{v:10.2f}" for v in row)
        out = np.empty(n, np.float32)
        contenders = [lambda: engine.fill_arrays(cpu, [(out, fill, (1, 2), 0)]),
                      lambda: streams.fill_many([(out, fill, (1, 2), 0)])]
        if torch is not None and family != "truncated normal":
            t = torch.empty(n)
            contenders.append((lambda: t.uniform_(-1, 1)) if family == "uniform" else (lambda: t.normal_(0, 1)))
        medians, ratios = _paired(contenders, repeats)
        line += f"   NumPy {medians[1] / n * 1e9:6.2f}"
        if len(contenders) == 3:
            line += f", torch {medians[2] / n * 1e9:6.2f} (compiled / torch: {ratios[0]:.2f}x)"
        print(line)


def small_parameters(repeats: int) -> None:
    """10,000 parameters of 256 elements on the CPU: initialize against a torch per-tensor loop."""
    sys.path.insert(0, str(ROOT))
    from gpuinit import init
    from gpuinit.parameter import Parameter, ParameterDict

    count = 10_000
    params = ParameterDict({f"p{i}": Parameter(f"p{i}", shape=(256,), role="weight") for i in range(count)})
    contenders = [lambda: params.initialize(init.Uniform(0.07), device="cpu", force_reinit=True, seed=0)]
    try:
        import torch
        contenders.append(lambda: [torch.empty(256).uniform_(-0.07, 0.07) for _ in range(count)])
    except ImportError:
        torch = None
    medians, ratios = _paired(contenders, repeats)
    line = f"\n4. {count:,} parameters of 256 float32 elements on the CPU, U(-0.07, 0.07): gpuinit " \
           f"{medians[0] / count * 1e6:.2f} us per parameter"
    if torch is not None:
        line += f"; torch empty + uniform_ per tensor {medians[1] / count * 1e6:.2f} us; gpuinit / torch " \
                f"{ratios[0]:.2f}x (median of {repeats} paired turns)"
    print(line)


def gpu_bookkeeping(repeats: int) -> None:
    """The Python work of a GPU materialization of 10,000 parameters, measured without a GPU:
    keys, requests, fill plans, layout, launch tables, views and the commit; the launches and the
    allocation are left out."""
    sys.path.insert(0, str(ROOT))
    import numpy as np

    from gpuinit import device, init, kernels, lifecycle, store
    from gpuinit.parameter import InitRequest, Parameter
    from gpuinit.streams.keys import derive_key_array

    rng = np.random.default_rng(0)
    sizes = np.exp(rng.uniform(np.log(1024), np.log(256 * 1024), 10_000)).astype(np.int64)
    params = [Parameter(f"p{i}", shape=(int(s),), role="weight") for i, s in enumerate(sizes)]
    initializer, cpu = init.Uniform(0.07), device.as_device("cpu")
    seeds = iter(range(10**6))

    def bookkeeping():
        paths = [p.name for p in params]
        keys = derive_key_array(next(seeds), paths)  # a fresh seed each time: no cached keys
        entries = [(p, InitRequest(initializer, False, cpu, (int(k0), int(k1)), path))
                   for p, (k0, k1), path in zip(params, keys.tolist(), paths)]
        batch = lifecycle.batch_for(entries, keys)
        ((indices, offsets, size),) = store.place([r.device for r in batch.requests], batch.nbytes()).values()
        indices, offsets = indices.tolist(), offsets.tolist()
        tables = kernels.launch_tables(1 << 40, batch.jobs(indices, offsets), size)
        views = [store.ArenaSlice(None, o, batch.shapes[i], batch.dtypes[i]) for i, o in zip(indices, offsets)]
        step = lifecycle.Step()
        for param, request, view in zip(batch.params, batch.requests, views):
            step.stage(param, param._initialized_as(request, view))
        return tables, step

    def paused():  # as initialize() runs it
        with store.gc_paused():
            return bookkeeping()

    seconds = _median_seconds(paused, repeats)
    print(f"\n3. GPU materialization of 10,000 parameters, its Python work alone (keys, requests, fill plans, "
          f"layout, launch tables, views, staging; measured on the CPU): {seconds * 1e3:.1f} ms = "
          f"{seconds / 1e4 * 1e6:.2f} us per parameter")


# --- GPU ---------------------------------------------------------------------------------------


def _timed(cupy, fn, repeats):
    """Median milliseconds of ``fn()`` by CUDA events, after two warm-up calls."""
    for _ in range(2):
        fn()
    cupy.cuda.Device().synchronize()
    times = []
    for _ in range(repeats):
        start, stop = cupy.cuda.Event(), cupy.cuda.Event()
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(cupy.cuda.get_elapsed_time(start, stop))
    return statistics.median(times)


def _free(cupy, torch=None):
    import gc
    gc.collect()
    cupy.get_default_memory_pool().free_all_blocks()
    if torch is not None:
        torch.cuda.empty_cache()


def _torch_llama7b(torch):
    nn = torch.nn

    class Block(nn.Module):
        def __init__(self, c=4096, hidden=11008):
            super().__init__()
            self.attention_norm, self.ffn_norm = nn.RMSNorm(c), nn.RMSNorm(c)
            self.wq, self.wk, self.wv, self.wo = (nn.Linear(c, c, bias=False) for _ in range(4))
            self.w1, self.w3 = nn.Linear(c, hidden, bias=False), nn.Linear(c, hidden, bias=False)
            self.w2 = nn.Linear(hidden, c, bias=False)

    class Llama(nn.Module):
        def __init__(self):
            super().__init__()
            self.tok_embeddings = nn.Embedding(32000, 4096)
            self.layers = nn.ModuleList(Block() for _ in range(32))
            self.norm = nn.RMSNorm(4096)
            self.output = nn.Linear(4096, 32000, bias=False)

    return Llama


def gpu_main(repeats: int, quick: bool = False) -> int:
    sys.path.insert(0, str(ROOT))
    import numpy as np

    import gpuinit
    from gpuinit import init, kernels, models, planning, streams
    from gpuinit.parameter import Parameter, ParameterDict
    from gpuinit.streams import Fill

    cupy = gpuinit.backend.cupy_module()
    try:
        import torch
    except ImportError:
        torch = None
    device = gpuinit.gpu()
    print(f"device: {device.name()}; CuPy {cupy.__version__}; torch {torch.__version__ if torch else 'absent'}; "
          f"median of {repeats} runs timed with CUDA events after warm-up")

    fill_bytes = 1 << (16 if quick else 30)
    print(f"\n1. fill throughput, {fill_bytes / 2**20:g} MiB (GB/s of bytes written; copy: bytes read + written)")
    for dtype in (np.float32, np.float16):
        n = fill_bytes // np.dtype(dtype).itemsize
        a = cupy.empty(n, dtype)
        b = cupy.empty_like(a)
        copy = 2 * a.nbytes / _timed(cupy, lambda: cupy.copyto(b, a), repeats) / 1e6
        b = None  # frees the memory; closures above still name it
        rows = {}
        key = streams.derive_key(0, "bench")
        for family, fill in (("uniform", Fill.uniform(-1, 1)), ("normal", Fill.normal(0, 1))):
            # the launch with its (one-row) table, prepared once: what a materialization pays per family
            base, nbytes, jobs = kernels.jobs_from_arrays([(a, fill, key, 0)])
            launches = kernels.prepare(device, base, nbytes, jobs)
            rows[f"gpuinit {family}"] = _timed(cupy, launches.run, repeats)
        if torch is not None:
            t = torch.empty(n, dtype=getattr(torch, np.dtype(dtype).name), device="cuda")
            rows["torch uniform_"] = _timed(cupy, lambda: t.uniform_(-1, 1), repeats)
            rows["torch normal_"] = _timed(cupy, lambda: t.normal_(0, 1), repeats)
            t = None  # frees the memory; closures above still name it
        rows["cupy.random uniform"] = _timed(cupy, lambda: cupy.random.random(n, dtype=dtype), repeats)
        rows["cupy.random normal"] = _timed(cupy, lambda: cupy.random.standard_normal(n, dtype=dtype), repeats)
        print(f"  {np.dtype(dtype).name}: device-to-device copy {copy:.0f} GB/s")
        for label, ms in rows.items():
            gbs = a.nbytes / ms / 1e6
            print(f"    {label:<22} {ms:8.3f} ms {gbs:8.0f} GB/s  {gbs / copy:6.1%} of copy")
        a = None  # frees the memory; closures above still name it
        _free(cupy, torch)

    count = 100 if quick else 10_000
    print(f"\n2. {count:,} parameters of 1K to 256K elements (float32, U(-0.07, 0.07)), allocation included")
    rng = np.random.default_rng(0)
    sizes = np.exp(rng.uniform(np.log(1024), np.log(256 * 1024), count)).astype(np.int64)
    params = ParameterDict({f"p{i}": Parameter(f"p{i}", shape=(int(s),), role="weight") for i, s in enumerate(sizes)})

    def ours():
        params.initialize(init.Uniform(0.07), device=device, force_reinit=True, seed=0)

    ms_ours = _timed(cupy, ours, repeats)
    print(f"  {int(sizes.sum()):,} elements; gpuinit fused: {ms_ours:.2f} ms")
    if torch is not None:
        def theirs():
            return [torch.empty(int(s), device="cuda").uniform_(-0.07, 0.07) for s in sizes]
        ms_torch = _timed(cupy, theirs, repeats)
        print(f"  torch per tensor: {ms_torch:.2f} ms; gpuinit is {ms_torch / ms_ours:.1f}x faster")
    params = None  # frees the memory; closures above still name it
    _free(cupy, torch)

    print("\n3. whole models on the GPU: gpuinit materialize vs torch meta -> to_empty(cuda) -> reset_parameters")
    for name, builder in (("gpt2-small", lambda: _torch_gpt2(torch)), ("llama2-7b", lambda: _torch_llama7b(torch))):
        for dtype in ("float32", "float16") + (("bfloat16",) if gpuinit.dtypes.bfloat16() is not None else ()):
            net = models.get(name, dtype=dtype) if not quick else models.mlp(dtype=dtype)
            planning.plan(net, (1, 8) if not quick else (1, 20), input_dtype="int64" if not quick else "float32",
                          device=device)
            ms_ours = _timed(cupy, lambda: net.initialize(device=device, force_reinit=True, seed=0), repeats)
            gb = net.collect_params().nbytes / 1e9
            line = f"  {name if not quick else 'mlp (--quick)'} {dtype}: {gb:.2f} GB, gpuinit {ms_ours:.1f} ms ({gb / ms_ours * 1e3:.0f} GB/s)"
            net = None  # frees the memory; closures above still name it
            _free(cupy, torch)
            if torch is not None:
                with torch.device("meta"):
                    model = builder()().to(getattr(torch, dtype))

                def theirs():
                    m = model.to_empty(device="cuda")
                    for mod in m.modules():
                        if hasattr(mod, "reset_parameters"):
                            mod.reset_parameters()
                    return m

                ms_torch = _timed(cupy, theirs, max(3, repeats // 2))
                line += f", torch {ms_torch:.1f} ms: gpuinit {ms_torch / ms_ours:.1f}x faster"
                model = None  # frees the memory; closures above still name it
                _free(cupy, torch)
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
