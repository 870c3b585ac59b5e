#!/usr/bin/env python3
"""Benchmark: saving and loading checkpoints (gpuinit.checkpoint) against the safetensors package.

Each contender runs in its own fresh process (so its peak RSS is its own), ``--repeat`` times,
interleaved; the figures are medians. Loads read the file from the page cache (it was just
written): this measures the copy into memory, not a disk.

Loads of the same file:

- ``gpuinit load``: ``net.load_parameters(path)`` into a network never initialized (its arena is
  allocated by the load, each tensor read straight into its slot);
- ``st.numpy + copy``: ``safetensors.numpy.load_file(path)``, then each array copied into the
  parameter's place (a network materialized beforehand, outside the timing);
  ``st.numpy + alloc + copy``: the same with the places allocated (``initialize(init.Zero())``,
  shapes inferred beforehand) in the timing, as a load into a fresh network must (the first touch
  of fresh memory costs page faults);
- ``st.torch (lazy)``: ``safetensors.torch.load_file(path)``, where torch is installed: tensors
  over the mapped file, whose pages are read only when touched (so its time is not a read);
  ``st.torch + clone``: the same, each tensor cloned (every byte read, in torch's memory);
- ``gpuinit shard 0/8`` and ``st slice 0/8``: one rank's eighth of every tensor, by
  ``gpuinit.checkpoint.load_shard`` (a flat range) and by ``safe_open(...).get_slice`` (rows).

Saves: ``net.save_parameters`` (a temporary file, fsync, checked, renamed) against
``safetensors.numpy.save_file`` of the same arrays (no fsync).

Models: GPT-2 small (float32) and LLaMA-2-7B's first two layers with its embedding and head
(float16: ``safetensors.numpy`` has no bfloat16).

Usage: ``python scripts/bench_io.py [--model gpt2-small|llama2-7b-2|all] [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import resource
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
MODELS = {"gpt2-small": ("float32", (1, 8)), "llama2-7b-2": ("float16", (1, 8))}


def _status(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def rss_now() -> int:
    now = _status("VmRSS")
    return now if now is not None else peak_rss()


def start_peak() -> int:
    """Reset this process's RSS high-water mark (Linux: /proc/self/clear_refs) and return the RSS
    now, the baseline of the timed part."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    return rss_now()


def peak_rss() -> int:
    """The highest RSS since start_peak (VmHWM), else since the process started (ru_maxrss, which
    Linux carries over from the parent: an upper bound)."""
    hwm = _status("VmHWM")
    return hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def build(model: str):
    from gpuinit import models
    dtype, _ = MODELS[model]
    if model == "gpt2-small":
        return models.gpt2("small", dtype=dtype)
    return models.llama2("7b", dtype=dtype, layers=2)


def infer_shapes(net, model: str) -> None:
    from gpuinit import planning
    _, shape = MODELS[model]
    planning.plan(net, shape, input_dtype="int64", device="cpu")  # shapes only: allocates nothing


def materialize(net, model: str, init=None) -> None:
    """Allocate and fill the parameters (shapes inferred first, so no forward pass runs)."""
    if any(not p.shape_known for p in net.collect_params().values()):
        infer_shapes(net, model)
    net.initialize(init=init, device="cpu", seed=0)


def param_items(net):
    params = net.collect_params()
    return [(params.path_of(name), p) for name, p in params.items()]


def child(name: str, model: str, path: str) -> dict:
    sys.path.insert(0, str(ROOT))
    out = {}
    if name == "make":
        net = build(model)
        materialize(net, model)
        net.save_parameters(path)
        return {"bytes": sum(p.nbytes for _, p in param_items(net)), "file_bytes": os.path.getsize(path)}
    if name == "save gpuinit":
        net = build(model)
        materialize(net, model)
        before = start_peak()
        t = time.perf_counter()
        net.save_parameters(path)
        out["seconds"] = time.perf_counter() - t
    elif name == "save st.numpy":
        from safetensors.numpy import save_file
        net = build(model)
        materialize(net, model)
        arrays = {key: p.data() for key, p in param_items(net)}
        before = start_peak()
        t = time.perf_counter()
        save_file(arrays, path)
        out["seconds"] = time.perf_counter() - t
    elif name == "gpuinit load":
        net = build(model)
        before = start_peak()
        t = time.perf_counter()
        net.load_parameters(path, device="cpu")
        out["seconds"] = time.perf_counter() - t
    elif name in ("st.numpy + copy", "st.numpy + alloc + copy"):
        from gpuinit import init
        from safetensors.numpy import load_file
        net = build(model)
        timed_alloc = "alloc" in name
        infer_shapes(net, model)
        if not timed_alloc:
            materialize(net, model, init=init.Zero())  # the places to copy into, outside the timing
        before = start_peak()
        t = time.perf_counter()
        if timed_alloc:
            materialize(net, model, init=init.Zero())  # the places, allocated (and zeroed) in the timing
        loaded = load_file(path)
        for key, p in param_items(net):
            p.data()[...] = loaded[key]
        out["seconds"] = time.perf_counter() - t
        del loaded
    elif name in ("st.torch (lazy)", "st.torch + clone"):
        import torch  # noqa: F401 - its import is not part of the timed load
        from safetensors.torch import load_file
        before = start_peak()
        t = time.perf_counter()
        loaded = load_file(path)  # tensors over the mapped file: pages are read when touched
        if name.endswith("clone"):
            loaded = {k: v.clone() for k, v in loaded.items()}  # every byte read, in torch's memory
        out["seconds"] = time.perf_counter() - t
        del loaded
    elif name == "gpuinit shard 0/8":
        from gpuinit import checkpoint
        before = start_peak()
        t = time.perf_counter()
        part = checkpoint.load_shard(path, 0, 8, device="cpu")
        out["seconds"] = time.perf_counter() - t
        out["read_bytes"] = sum(a.nbytes for a in part.values())
    elif name == "st slice 0/8":
        from safetensors import safe_open
        before = start_peak()
        t = time.perf_counter()
        part = {}
        with safe_open(path, framework="numpy") as f:
            for key in f.keys():
                piece = f.get_slice(key)
                rows = piece.get_shape()[0]
                part[key] = piece[0:-(-rows // 8)]
        out["seconds"] = time.perf_counter() - t
        out["read_bytes"] = sum(a.nbytes for a in part.values())
    else:
        raise SystemExit(f"unknown contender {name!r}")
    out.update(peak_rss=peak_rss(), rss_before=before)
    return out


def run_child(name: str, model: str, path: str) -> dict:
    result = subprocess.run([sys.executable, __file__, "--child", name, "--model", model, "--path", path],
                            capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(f"{name} failed:\n{result.stdout}\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def have(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def bench(model: str, repeat: int, folder: str) -> None:
    path = os.path.join(folder, f"{model}.safetensors")
    made = run_child("make", model, path)
    nbytes = made["bytes"]
    print(f"\n{model}: {nbytes / 1e6:,.1f} MB of parameters ({MODELS[model][0]}), "
          f"file {made['file_bytes'] / 1e6:,.1f} MB")
    loads = ["gpuinit load", "st.numpy + copy", "st.numpy + alloc + copy"]
    loads += ["st.torch (lazy)", "st.torch + clone"] if have("torch") else []
    loads += ["gpuinit shard 0/8", "st slice 0/8"]
    saves = ["save gpuinit", "save st.numpy"]
    results = {name: [] for name in loads + saves}
    for _ in range(repeat):
        for name in loads:
            results[name].append(run_child(name, model, path))
        for name in saves:
            results[name].append(run_child(name, model, os.path.join(folder, f"{model}.{name.split()[-1]}.out")))
    print("peak RSS: the high-water mark during the timed part; before: the RSS when it started")
    print(f"{'contender':<20} {'seconds':>8} {'GB/s':>7} {'peak RSS MB':>12} {'peak/params':>12} "
          f"{'(peak-before)/params':>21}")
    for name in loads + saves:
        runs = results[name]
        seconds = statistics.median(r["seconds"] for r in runs)
        moved = runs[0].get("read_bytes", nbytes)
        peak = statistics.median(r["peak_rss"] for r in runs)
        grown = statistics.median(r["peak_rss"] - r["rss_before"] for r in runs)
        print(f"{name:<20} {seconds:>8.3f} {moved / seconds / 1e9:>7.2f} {peak / 1e6:>12,.0f} {peak / nbytes:>12.2f} "
              f"{grown / nbytes:>21.2f}")
    mine = statistics.median(r["seconds"] for r in results["gpuinit load"])
    mine_peak = statistics.median(r["peak_rss"] for r in results["gpuinit load"])
    for peer in ("st.numpy + copy", "st.numpy + alloc + copy"):
        seconds = statistics.median(r["seconds"] for r in results[peer])
        peak = statistics.median(r["peak_rss"] for r in results[peer])
        print(f"gpuinit load vs {peer}, same run: {seconds / mine:.2f}x as fast, {mine_peak / peak:.2f}x the peak RSS")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="gpt2-small", choices=sorted(MODELS) + ["all"])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child")
    parser.add_argument("--path")
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.model, args.path)))
        return
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; medians of {args.repeat} fresh processes each")
    with tempfile.TemporaryDirectory(dir=os.environ.get("GPUINIT_BENCH_DIR")) as folder:
        for model in (sorted(MODELS) if args.model == "all" else [args.model]):
            bench(model, args.repeat, folder)


if __name__ == "__main__":
    main()
