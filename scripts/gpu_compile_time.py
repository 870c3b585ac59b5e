"""Time the fill kernels' first-use compile on a GPU: cold (empty CuPy kernel cache) and warm.

    python3 scripts/gpu_compile_time.py            # runs both, each in a fresh process

Each child process times ``gpuinit.kernels.compiled(device)`` (NVRTC through CuPy's RawModule, then
the module load) and a first 1-element fill; the cold one gets an empty ``CUPY_CACHE_DIR``, the
warm one the cache the cold one left.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]


def child() -> None:
    sys.path.insert(0, str(ROOT))
    import gpuinit
    from gpuinit import kernels
    from gpuinit.backend import cupy_module
    device = gpuinit.gpu()
    cupy = cupy_module()
    cupy.cuda.Device(device.index).synchronize()
    t = time.perf_counter()
    kernels.compiled(device)
    compile_s = time.perf_counter() - t
    out = cupy.empty(1, "float32")
    t = time.perf_counter()
    kernels.fill_arrays(device, [(out, gpuinit.streams.Fill.uniform(0, 1), (1, 2), 0)])
    cupy.cuda.Device(device.index).synchronize()
    first_fill_s = time.perf_counter() - t
    print(json.dumps({"compile_s": compile_s, "first_fill_s": first_fill_s,
                      "kernels": len(kernels.NAME_EXPRESSIONS)}))


def main() -> int:
    with tempfile.TemporaryDirectory() as cache:
        path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
        env = dict(os.environ, CUPY_CACHE_DIR=cache, PYTHONPATH=path)
        for label in ("cold (empty kernel cache)", "warm (CuPy's kernel cache)"):
            out = subprocess.run([sys.executable, __file__, "--child"], env=env, capture_output=True, text=True)
            if out.returncode:
                print(f"{label}: failed\n{out.stderr[-2000:]}")
                return 1
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{label}: compile and load {r['kernels']} kernels {r['compile_s'] * 1e3:.0f} ms, "
                  f"first fill {r['first_fill_s'] * 1e3:.1f} ms")
    return 0


if __name__ == "__main__":
    if "--child" in sys.argv:
        child()
    else:
        sys.exit(main())
