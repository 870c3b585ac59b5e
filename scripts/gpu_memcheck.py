"""A GPU materialization made to catch out-of-bounds writes under compute-sanitizer.

Parameters of odd sizes (1, 3, 7, 33, 1023 elements ...) in every dtype and fill family, one arena
at unaligned lengths, shards of every rank of odd world sizes, and fills into misaligned array
views: every write the kernels make lands at a ragged edge somewhere. The values are compared with
the CPU's too, so a wrong write that stays in bounds fails as well. Run it as

    compute-sanitizer --tool memcheck --error-exitcode 1 python3 scripts/gpu_memcheck.py

(scripts/gpu_checks.sh does). Exit status 0: every value equal; 1: some differ (printed).
"""

from __future__ import annotations

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

import gpuinit  # noqa: E402
from gpuinit import dtypes, init, kernels, nn  # noqa: E402
from gpuinit.backend import cupy_module, to_numpy  # noqa: E402
from gpuinit.streams import Fill, generate  # noqa: E402


def network(dtype):
    net = nn.Sequential()
    net.add(nn.Dense(1, in_units=1, dtype=dtype, weight_initializer=init.Normal(0.5)),
            nn.Dense(3, in_units=1, dtype=dtype, weight_initializer=init.TruncatedNormal(sigma=0.2)),
            nn.Dense(7, in_units=3, dtype=dtype, weight_initializer=init.Xavier()),
            nn.Dense(33, in_units=7, dtype=dtype, weight_initializer=init.Orthogonal()),
            nn.Dense(31, in_units=33, dtype=dtype, weight_initializer=init.Constant(0.25)),
            nn.BatchNorm(in_channels=31, dtype=dtype),
            nn.Dense(1023, in_units=31, dtype=dtype, weight_initializer=init.Uniform(0.3)))
    return net


def main() -> int:
    cupy = cupy_module()
    names = ["float16", "float32", "float64"] + (["bfloat16"] if dtypes.bfloat16() is not None else [])
    bad = 0
    for dtype in names:
        try:
            cupy.empty(1, dtypes.as_dtype(dtype))
        except Exception as exc:
            print(f"{dtype}: skipped, CuPy cannot hold it ({exc})")
            continue
        cpu, gpu = network(dtype), network(dtype)
        cpu.initialize(device="cpu", seed=3)
        gpu.initialize(device="cuda", seed=3)
        want = {p.path: to_numpy(p.data()) for p in cpu.collect_params().values()}
        for p in gpu.collect_params().values():
            got = to_numpy(p.data())
            if got.tobytes() != want[p.path].tobytes():
                print(f"MISMATCH {dtype} {p.path}")
                bad += 1
        for world in (3, 7):
            deferred = network(dtype)
            deferred.initialize(device="cuda", seed=3, defer=True)
            for rank in range(world):
                for path, part in gpuinit.shard(deferred, rank, world).items():
                    start, stop = gpuinit.sharding.shard_range(want[path].size, rank, world)
                    if to_numpy(part).tobytes() != want[path].reshape(-1)[start:stop].tobytes():
                        print(f"MISMATCH {dtype} shard {rank}/{world} {path}")
                        bad += 1
        for family, fill in (("uniform", Fill.uniform(-1, 1)), ("normal", Fill.normal(0, 1)),
                             ("truncated_normal", Fill.truncated_normal(0, 1, -2, 2))):
            for misalign, n, start in ((1, 1, 0), (3, 9, 5), (1, 1023, 7), (2, 4097, 1 << 20)):
                buf = cupy.zeros(n + misalign + 1, dtypes.as_dtype(dtype))
                view = buf[misalign:misalign + n]
                kernels.fill_arrays(gpuinit.gpu(), [(view, fill, (11, 12), 0, start)])
                ref = np.empty(n, dtypes.as_dtype(dtype))
                generate(ref, fill, (11, 12), start)
                edges = to_numpy(buf)
                if to_numpy(view).tobytes() != ref.tobytes() or edges[:misalign].any() or edges[-1] != 0:
                    print(f"MISMATCH {dtype} {family} view misalign={misalign} n={n} start={start}")
                    bad += 1
        print(f"{dtype}: checked")
    cupy.cuda.Device().synchronize()
    print(f"memcheck workload done: {bad} mismatches")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
