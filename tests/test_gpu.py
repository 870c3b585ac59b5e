"""The CUDA backend against the NumPy reference: run where a GPU is usable, skipped elsewhere.

Every family must be bit-identical to the CPU's, in every dtype: the stream contract uses no libm
(gpuinit/transforms.py), so there is nothing left to differ.
"""

import gc

import numpy as np
import pytest

import gpuinit
from gpuinit import dtypes, init, models, nd, nn, store, streams
from gpuinit.backend import to_numpy
from gpuinit.streams import Fill

pytestmark = pytest.mark.gpu

BUILTINS = [init.Zero(), init.One(), init.Constant(0.5), init.Uniform(), init.Normal(), init.TruncatedNormal(),
            init.Xavier(), init.Xavier("gaussian"), init.MSRAPrelu(), init.Orthogonal(), init.XavierUniform(),
            init.XavierNormal(), init.KaimingUniform(), init.KaimingNormal(), init.VarianceScaling()]


def same_bits(a, b) -> bool:
    return a.shape == b.shape and np.array_equal(a.view(f"u{a.itemsize}"), b.view(f"u{b.itemsize}"))


DTYPES = ["float16", "float32", "float64"] + (["bfloat16"] if dtypes.bfloat16() is not None else [])


def skip_unless_cupy_holds(dtype):
    """CuPy holds bfloat16 from version 14, with ml_dtypes installed."""
    cupy = gpuinit.backend.cupy_module()
    try:
        cupy.empty(1, dtypes.as_dtype(dtype))
    except Exception as exc:
        pytest.skip(f"CuPy {cupy.__version__} cannot hold {dtype}: {exc}")


def both(initializer, dtype, gpu_device, shape=(257, 129)):
    out = {}
    for device in ("cpu", gpu_device):
        net = nn.Dense(shape[0], in_units=shape[1], dtype=dtype)
        net.initialize(init=initializer, device=device, seed=11)
        out[device] = to_numpy(net.weight.data())
    return out["cpu"], out[gpu_device]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("initializer", BUILTINS, ids=repr)
def test_every_initializer_matches_the_cpu(gpu_device, initializer, dtype):
    skip_unless_cupy_holds(dtype)
    cpu, gpu = both(initializer, dtype, gpu_device)
    assert same_bits(cpu, gpu)


@pytest.mark.parametrize("fill", [Fill.uniform(-1, 3), Fill.normal(0.2, 1.5), Fill.truncated_normal(0, 1, -2, 2)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_mismatch_rate_on_a_large_fill(gpu_device, fill, dtype):
    """Prints the measured mismatch rate (recorded in BENCHMARKS.md)."""
    skip_unless_cupy_holds(dtype)
    dtype = dtypes.as_dtype(dtype)
    cupy = gpuinit.backend.cupy_module()
    n = 1 << 22
    key = streams.derive_key(1, "rate")
    gpu = cupy.empty(n, dtype)
    gpuinit.kernels.fill_arrays(gpuinit.gpu(), [(gpu, fill, key, 0)])
    cpu = np.empty(n, dtype)
    streams.fill_many([(cpu, fill, key, 0)])
    differ = int(np.count_nonzero(cpu.view(f"u{cpu.itemsize}") != gpu.get().view(f"u{cpu.itemsize}")))
    print(f"\n{fill.family} {np.dtype(dtype).name}: {differ} of {n} differ")
    assert differ == 0


def test_custom_initializer_draws_on_the_gpu_match_the_cpu(gpu_device):
    class RandomInit(init.Initializer):
        def _init_weight(self, name, arr):
            arr[:] = nd.random.normal(0, 1, shape=arr.shape, device=gpuinit.device.Device("cuda", 0)
                                      if gpuinit.backend.is_cupy_array(arr) else "cpu")

    cpu, gpu = both(RandomInit(), "float32", gpu_device, (33, 7))
    assert same_bits(cpu, gpu)


def test_deferred_network_on_the_gpu(gpu_device):
    net = models.mlp()
    net.initialize(device=gpu_device, seed=3)
    x = nd.random.uniform(shape=(2, 20), device=gpu_device)
    p = gpuinit.plan(net, x)
    y = net(x)
    assert gpuinit.backend.is_cupy_array(y) and y.shape == (2, 10)
    assert store.last_materialization["bytes"] == p.total_bytes
    ref = models.mlp()
    ref.initialize(device="cpu", seed=3)
    ref(np.zeros((2, 20), np.float32))
    assert np.array_equal(to_numpy(net[0].weight.data()), ref[0].weight.data())


def test_failure_on_the_gpu_releases_the_arena(gpu_device):
    class Boom(init.Initializer):
        def _init_weight(self, name, arr):
            raise RuntimeError("boom")

    cupy = gpuinit.backend.cupy_module()
    net = nn.Dense(4096, in_units=4096)
    gc.collect()
    pool = cupy.get_default_memory_pool()
    before = pool.total_bytes()
    with pytest.raises(gpuinit.InitializerError, match="boom"):
        net.initialize(init=Boom(), device=gpu_device)
    assert pool.total_bytes() <= before and not net.weight.initialized


def test_too_large_for_the_gpu_fails_before_allocating(gpu_device):
    net = models.get("llama2-70b")
    net.initialize(device=gpu_device)
    with pytest.raises(gpuinit.OutOfMemoryError, match="free"):
        net(nd.array(np.zeros((1, 4)), device=gpu_device, dtype="int64"))
    assert not any(p.initialized for p in net.collect_params().values())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fill", [Fill.uniform(-1, 3), Fill.normal(0.2, 1.5), Fill.truncated_normal(0, 1, -2, 2)])
def test_shards_generated_alone_equal_the_cpu_slices(gpu_device, fill, dtype):
    """Shards starting inside a thread's group, and outputs not 16-byte aligned, take the kernels'
    element-by-element stores; whole aligned groups take the wide stores. Both give the CPU's bits."""
    skip_unless_cupy_holds(dtype)
    dtype = dtypes.as_dtype(dtype)
    cupy = gpuinit.backend.cupy_module()
    key = streams.derive_key(5, "shard")
    for start, n, misalign in ((0, 1, 0), (3, 1000, 0), (12_345, 7, 0), (1 << 20, 4099, 0), (0, 999, 1),
                               (8, 1000, 3)):
        gpu = cupy.zeros(n + misalign, dtype)[misalign:]
        gpuinit.kernels.fill_arrays(gpuinit.gpu(), [(gpu, fill, key, 0, start)])
        cpu = np.empty(n, dtype)
        streams.generate(cpu, fill, key, start)
        assert same_bits(cpu, gpu.get())
