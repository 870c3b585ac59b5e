#!/usr/bin/env python3
"""Benchmark: materialize the GPT-2-small parameter set (124,439,808 float32) on the CPU.

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
    parser.add_argument("--device", default="cpu", choices=["cpu"],
                        help="the CUDA benchmarks come with the CUDA backend")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, variant = args.child
        result = child_gpuinit(variant) if kind == "gpuinit" else child_torch(variant)
        print(json.dumps(result))
        return 0
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
