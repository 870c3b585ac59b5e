"""Benchmark gpuinit.jax.init against jax.jit(model.init) on a GPT-2-small-sized Flax model, on the CPU.

Each contender runs in a fresh subprocess, so its peak resident memory is its own: the peak is
read from the kernel (VmHWM, reset just before the timed call through /proc/self/clear_refs) and
reported above the process's resident memory just before the call. Times are wall-clock seconds
of the call, the results ready (``jax.block_until_ready``).

Contenders, unsharded and on 8 host devices (``--xla_force_host_platform_device_count=8``, the
kernels split FSDP-style over a mesh axis, the rest replicated):

- ``gpuinit``: ``gpuinit.jax.init(jax.eval_shape(model.init, ...), seed)``, eval_shape included
  (and the same without it: ``init`` alone);
- ``jit first``: ``jax.jit(model.init)(key, x)`` in a fresh process: tracing, compiling, running;
- ``jit compiled``: the same jitted function's second call.

Usage: python scripts/bench_jax.py [--layers 12] [--repeats 1]
       python scripts/bench_jax.py --turns 5   (time only, alternating turns in one process)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

VOCAB, CONTEXT, WIDTH, HEADS = 50257, 1024, 768, 12


def _rss() -> tuple[int, int]:
    """(VmRSS, VmHWM) of this process, in bytes."""
    fields = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, value = line.split(":", 1)
            fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]) * 1024, int(fields["VmHWM"].split()[0]) * 1024


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _model(layers: int):
    import flax.linen as nn
    import jax.numpy as jnp

    class Block(nn.Module):
        @nn.compact
        def __call__(self, x):
            h = nn.LayerNorm(name="ln_1")(x)
            q, k, v = jnp.split(nn.Dense(3 * WIDTH, name="c_attn")(h), 3, axis=-1)
            split = lambda t: t.reshape(t.shape[:-1] + (HEADS, WIDTH // HEADS))  # noqa: E731
            weights = nn.softmax(jnp.einsum("bqhd,bkhd->bhqk", split(q), split(k)) / (WIDTH // HEADS) ** 0.5)
            att = jnp.einsum("bhqk,bkhd->bqhd", weights, split(v)).reshape(x.shape)
            x = x + nn.Dense(WIDTH, name="c_proj")(att)
            h = nn.LayerNorm(name="ln_2")(x)
            return x + nn.Dense(WIDTH, name="mlp_proj")(nn.gelu(nn.Dense(4 * WIDTH, name="mlp_fc")(h)))

    class GPT2(nn.Module):
        @nn.compact
        def __call__(self, tokens):
            x = nn.Embed(VOCAB, WIDTH, name="wte")(tokens)
            x = x + nn.Embed(CONTEXT, WIDTH, name="wpe")(jnp.arange(tokens.shape[1]))
            for i in range(layers):
                x = Block(name=f"h_{i}")(x)
            return nn.LayerNorm(name="ln_f")(x)

    return GPT2()


def run_one(contender: str, layers: int, sharded: bool) -> dict:
    """One contender, in this (fresh) process."""
    if sharded:
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

    model = _model(layers)
    tokens = jnp.zeros((1, 8), jnp.int32)
    key = jax.random.key(0)
    shardings = None
    if sharded:
        mesh = Mesh(np.array(jax.devices()[:8]), ("x",))
        abstract = jax.eval_shape(model.init, key, tokens)
        # FSDP-style: every matrix split over its first axis (the vocabulary's 50257 rows do not
        # divide by 8: the embedding is split over its columns, a run per row), vectors replicated
        def spec(leaf):
            if leaf.ndim == 2:
                return P("x") if leaf.shape[0] % 8 == 0 else P(None, "x")
            return P()
        shardings = jax.tree.map(lambda leaf: NamedSharding(mesh, spec(leaf)), abstract)
    result = {"contender": contender, "sharded": sharded, "layers": layers}
    if contender == "gpuinit":
        import gpuinit.jax
        gpuinit.jax.init({"w": jax.ShapeDtypeStruct((8,), jnp.float32)}, 0, rules={"w": "zeros"})  # warm the imports
        rss0, _ = _rss()
        result["peak_reset"] = _reset_peak()
        start = time.perf_counter()
        abstract = jax.eval_shape(model.init, key, tokens)
        middle = time.perf_counter()
        params = gpuinit.jax.init(abstract, seed=0, shardings=shardings)
        jax.block_until_ready(params)
        result["seconds"] = time.perf_counter() - start
        result["init_seconds"] = time.perf_counter() - middle
    else:
        fn = jax.jit(model.init, out_shardings=shardings) if sharded else jax.jit(model.init)
        rss0, _ = _rss()
        result["peak_reset"] = _reset_peak()
        start = time.perf_counter()
        params = jax.block_until_ready(fn(key, tokens))
        result["seconds"] = time.perf_counter() - start
        if contender == "jit compiled":
            del params
            import gc
            gc.collect()
            rss0, _ = _rss()
            result["peak_reset"] = _reset_peak()
            start = time.perf_counter()
            params = jax.block_until_ready(fn(jax.random.key(1), tokens))
            result["seconds"] = time.perf_counter() - start
    rss1, peak = _rss()
    leaves = jax.tree.leaves(params)
    result["parameter_bytes"] = int(sum(leaf.nbytes for leaf in leaves))
    result["parameters"] = int(sum(leaf.size for leaf in leaves))
    result["peak_above_start"] = peak - rss0
    result["rss_after_above_start"] = rss1 - rss0
    return result


def turns(layers: int, count: int) -> None:
    """Time only, in one process on 8 host devices: gpuinit and the compiled jit in alternating
    turns, unsharded (device 0) and sharded, so that each turn's ratio meets one period of this
    VM's drifting speed; the median of the per-turn ratios is printed."""
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()
    import gc
    import statistics

    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

    import gpuinit.jax
    model, tokens = _model(layers), jnp.zeros((1, 8), jnp.int32)
    abstract = jax.eval_shape(model.init, jax.random.key(0), tokens)
    mesh = Mesh(np.array(jax.devices()[:8]), ("x",))
    shardings = jax.tree.map(lambda leaf: NamedSharding(
        mesh, (P("x") if leaf.shape[0] % 8 == 0 else P(None, "x")) if leaf.ndim == 2 else P()), abstract)
    contenders = {
        "gpuinit 1 device": lambda: gpuinit.jax.init(abstract, seed=0),
        "jit compiled 1 device": jax.jit(model.init),
        "gpuinit 8 devices": lambda: gpuinit.jax.init(abstract, seed=0, shardings=shardings),
        "jit compiled 8 devices": jax.jit(model.init, out_shardings=shardings),
    }
    seconds = {name: [] for name in contenders}
    for turn in range(count + 1):  # turn 0 compiles and warms up, and is not counted
        for name, fn in contenders.items():
            gc.collect()
            start = time.perf_counter()
            out = fn() if name.startswith("gpuinit") else fn(jax.random.key(turn), tokens)
            jax.block_until_ready(out)
            elapsed = time.perf_counter() - start
            del out
            if turn:
                seconds[name].append(elapsed)
    for name, values in seconds.items():
        print(f"{name:<24} median {statistics.median(values):.3f} s  (turns: {', '.join(f'{v:.2f}' for v in values)})")
    for where in ("1 device", "8 devices"):
        ratios = [a / b for a, b in zip(seconds[f"gpuinit {where}"], seconds[f"jit compiled {where}"])]
        print(f"{where}: gpuinit / jit compiled, median of per-turn ratios: {statistics.median(ratios):.2f}x "
              f"(turns: {', '.join(f'{r:.2f}' for r in ratios)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=1, help="runs of each contender (the fastest is kept)")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one contender, print JSON
    parser.add_argument("--sharded", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--turns", type=int, default=0,
                        help="time only: gpuinit and the compiled jit in N alternating turns in one process")
    args = parser.parse_args()
    if args.turns:
        turns(args.layers, args.turns)
        return
    if args.one:
        print(json.dumps(run_one(args.one, args.layers, args.sharded)))
        return

    import platform
    print(f"# machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    # Alternating turns (every contender once per round), the fastest round of each kept: this
    # VM's speed drifts, and the contenders then meet the same drift.
    contenders = [(sharded, c) for sharded in (False, True) for c in ("gpuinit", "jit first", "jit compiled")]
    best: dict = {}
    for _ in range(args.repeats):
        for sharded, contender in contenders:
            cmd = [sys.executable, __file__, "--one", contender, "--layers", str(args.layers)]
            out = subprocess.run(cmd + (["--sharded"] if sharded else []), capture_output=True, text=True, check=True)
            got = json.loads(out.stdout.strip().splitlines()[-1])
            if (sharded, contender) not in best or got["seconds"] < best[sharded, contender]["seconds"]:
                best[sharded, contender] = got
    rows = [best[k] for k in contenders]
    for row in rows:
        n = row["parameter_bytes"]
        alone = f" (init alone {row['init_seconds']:.3f} s)" if "init_seconds" in row else ""
        print(f"{'8 devices' if row['sharded'] else '1 device ':<10} {row['contender']:<13} {row['seconds']:8.3f} s{alone}   "
              f"peak +{row['peak_above_start'] / 2**20:8.1f} MiB = {row['peak_above_start'] / n:5.2f}x the "
              f"parameters ({n / 2**20:.1f} MiB, {row['parameters']:,})", flush=True)
    for sharded in (False, True):
        ours = next(r for r in rows if r["sharded"] == sharded and r["contender"] == "gpuinit")
        for other in ("jit first", "jit compiled"):
            theirs = next(r for r in rows if r["sharded"] == sharded and r["contender"] == other)
            print(f"{'8 devices' if sharded else '1 device'}: gpuinit / {other}: time {ours['seconds'] / theirs['seconds']:.2f}x "
                  f"(init alone {ours['init_seconds'] / theirs['seconds']:.2f}x), "
                  f"peak {ours['peak_above_start'] / max(1, theirs['peak_above_start']):.2f}x")


if __name__ == "__main__":
    main()
