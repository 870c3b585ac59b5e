"""Benchmark gpuinit.torch.materialize against torch's own ways to initialize a model.

Each figure is the median of ``--repeats`` fresh processes (imports and the meta build not
counted), so one run's caches do not help the next. Ways compared, for each model:

- ``eager``: ``Model()`` on the device (torch allocates and runs every ``reset_parameters``);
- ``reset``: built on the meta device, then ``to_empty(device)`` and every module's
  ``reset_parameters()`` (the FSDP-era recipe);
- ``gpuinit``: built on the meta device, then ``gpuinit.torch.materialize(model, device)``.

Models: GPT-2 small (124M, tied embeddings), a LLaMA-shaped model sized for this machine
(``--llama-dim``/``--llama-layers``), LLaMA-2-7B's shapes (``llama2-7b``, for a GPU, with
``--dtype float16``), and 10,000 small parameters (5,000 ``Linear(8, 8)``). With
``--fsdp N`` it also runs GPT-2 small under FSDP2 on ``N`` gloo ranks (CPU) and prints each
rank's seconds for ``reset`` and ``gpuinit``.

Usage: ``python scripts/bench_torch.py [--device cpu|cuda] [--repeats 5] [--fsdp 2]``. Timings on
a shared VM drift; compare the ratios of one run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WAYS = ("eager", "reset", "gpuinit")



# The tied embedding/head (GPT-2) takes one default, said by a rule (gpuinit refuses to guess
# between Embedding's and Linear's); torch's reset_parameters recipe, run last by lm_head, gives
# Linear's, so the rule does too.


def _tie_rule(model):
    import math
    from gpuinit import init
    tied = getattr(model, "lm_head", None) is not None and getattr(model, "wte", None) is not None \
        and model.lm_head.weight is model.wte.weight
    return {r"^wte\.weight$": init.KaimingUniform(a=math.sqrt(5))} if tied else None

def build(name, args):
    from torch import nn

    class Block(nn.Module):
        def __init__(self, d, ffn, norm, bias, gated):
            super().__init__()
            self.ln1, self.ln2 = norm(d), norm(d)
            self.qkv = nn.Linear(d, 3 * d, bias=bias)
            self.proj = nn.Linear(d, d, bias=bias)
            self.up = nn.Linear(d, ffn * (2 if gated else 1), bias=bias)
            self.down = nn.Linear(ffn, d, bias=bias)

    class LM(nn.Module):
        def __init__(self, vocab, d, layers, ffn, norm, bias, gated, tied, positions=0):
            super().__init__()
            self.wte = nn.Embedding(vocab, d)
            self.wpe = nn.Embedding(positions, d) if positions else None
            self.h = nn.ModuleList(Block(d, ffn, norm, bias, gated) for _ in range(layers))
            self.ln_f = norm(d)
            self.lm_head = nn.Linear(d, vocab, bias=False)
            if tied:
                self.lm_head.weight = self.wte.weight

    if name == "gpt2-small":
        return LM(50257, 768, 12, 3072, nn.LayerNorm, True, False, True, positions=1024)
    if name == "llama":
        d = args.llama_dim
        return LM(32000, d, args.llama_layers, int(8 * d / 3 / 64 + 1) * 64, nn.RMSNorm, False, True, False)
    if name == "llama2-7b":  # LLaMA-2-7B's shapes: 6.74B parameters
        return LM(32000, 4096, 32, 11008, nn.RMSNorm, False, True, False)
    if name == "small-10k":
        return nn.ModuleList(nn.Linear(8, 8) for _ in range(5000))
    raise SystemExit(f"unknown model {name}")


def reset(model, device) -> None:
    """torch's recipe after a meta build: to_empty, re-tie what to_empty untied, reset every module."""
    import torch
    tied = getattr(model, "lm_head", None) is not None and model.lm_head.weight is model.wte.weight
    model.to_empty(device=device)
    if tied:
        model.lm_head.weight = model.wte.weight
    with torch.no_grad():
        for m in model.modules():
            if callable(getattr(m, "reset_parameters", None)):
                m.reset_parameters()


def child(name, way, args) -> dict:
    import torch
    import gpuinit.torch as gt
    device = torch.device(args.device)
    torch.set_default_dtype(getattr(torch, args.dtype))  # every way builds in it; gpuinit keeps it
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    if way == "eager":
        sync()
        t = time.perf_counter()
        with device:
            model = build(name, args)
        sync()
        seconds = time.perf_counter() - t
    else:
        with torch.device("meta"):
            model = build(name, args)
        sync()
        t = time.perf_counter()
        if way == "reset":
            reset(model, device)
        else:
            gt.materialize(model, device=device, seed=0, rules=_tie_rule(model))
        sync()
        seconds = time.perf_counter() - t
    n = sum(p.numel() for p in model.parameters())
    return {"seconds": seconds, "parameters": n, "tensors": len(list(model.parameters()))}


def fsdp_child(args) -> None:
    import torch
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard
    import gpuinit.torch as gt
    dist.init_process_group("gloo")
    mesh = init_device_mesh("cpu", (dist.get_world_size(),))
    out = {}
    for way in ("reset", "gpuinit"):
        with torch.device("meta"):
            model = build("gpt2-small", args)
        for block in model.h:
            fully_shard(block, mesh=mesh)
        fully_shard(model, mesh=mesh)
        dist.barrier()
        t = time.perf_counter()
        if way == "reset":
            reset(model, "cpu")
        else:
            gt.materialize(model, device="cpu", seed=0, rules=_tie_rule(model))
        out[way] = time.perf_counter() - t
        dist.barrier()
    print("FSDP " + json.dumps({"rank": dist.get_rank(), **out}), flush=True)
    dist.destroy_process_group()


def run_child(name, way, args) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--child", name, way, "--device", args.device, "--dtype", args.dtype,
           "--llama-dim", str(args.llama_dim), "--llama-layers", str(args.llama_layers)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    parser.add_argument("--models", default="gpt2-small,llama,small-10k")
    parser.add_argument("--llama-dim", type=int, default=1024)
    parser.add_argument("--llama-layers", type=int, default=8)
    parser.add_argument("--fsdp", type=int, default=0, help="also run GPT-2 small under FSDP2 on N gloo ranks")
    parser.add_argument("--child", nargs=2, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--fsdp-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*args.child, args)))
        return
    if args.fsdp_child:
        fsdp_child(args)
        return
    import platform
    import torch
    print(f"bench_torch: device {args.device} ({torch.cuda.get_device_name() if args.device.startswith('cuda') else 'CPU'}), "
          f"{args.dtype}, torch {torch.__version__}, {os.cpu_count()} CPUs "
          f"({platform.processor() or platform.machine()}), median of {args.repeats} processes")
    for name in args.models.split(","):
        times = {w: [] for w in WAYS}
        info = None
        for _ in range(args.repeats):
            for way in WAYS:  # interleaved: drift hits every way alike
                r = run_child(name, way, args)
                times[way].append(r["seconds"])
                info = r
        med = {w: statistics.median(v) for w, v in times.items()}
        print(f"{name}: {info['parameters']:,} parameters in {info['tensors']:,} tensors: "
              + ", ".join(f"{w} {med[w]:.3f} s" for w in WAYS)
              + f"; gpuinit / reset = {med['gpuinit'] / med['reset']:.2f}x, gpuinit / eager = "
                f"{med['gpuinit'] / med['eager']:.2f}x")
    if args.fsdp:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")])}
        out = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                              f"--nproc_per_node={args.fsdp}", os.path.abspath(__file__), "--fsdp-child"],
                             capture_output=True, text=True, env=env, check=True)
        for line in out.stdout.splitlines():
            if line.startswith("FSDP "):
                r = json.loads(line[5:])
                print(f"gpt2-small FSDP2 rank {r['rank']} of {args.fsdp}: reset {r['reset']:.3f} s, gpuinit "
                      f"{r['gpuinit']:.3f} s, gpuinit / reset = {r['gpuinit'] / r['reset']:.2f}x")


if __name__ == "__main__":
    main()
