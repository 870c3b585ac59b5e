"""Sharded initialization: every rank's slice equals that slice of the unsharded parameter, and
only the slice is allocated."""

import tracemalloc

import numpy as np
import pytest

import gpuinit
from gpuinit import dtypes, init, models, nn, store
from gpuinit.backend import to_numpy
from gpuinit.errors import DeferredInitializationError, GpuInitError, UninitializedParameterError
from gpuinit.sharding import shard_range


def mixed_net():
    """Every kind of fill: fan-scaled uniform, normal, truncated normal, constants, a Python hook
    (Orthogonal), float16/bfloat16/float64, and parameters smaller than the world size."""
    low = "bfloat16" if dtypes.bfloat16() is not None else "float16"
    net = nn.Sequential()
    net.add(nn.Dense(37, in_units=11, weight_initializer="xavier"),
            nn.Dense(5, in_units=37, dtype="float16", weight_initializer=init.Normal(0.3)),
            nn.Dense(13, in_units=5, dtype=low, weight_initializer=init.TruncatedNormal(sigma=0.5)),
            nn.BatchNorm(in_channels=13, dtype="float64"),
            nn.Dense(3, in_units=13, weight_initializer=init.Orthogonal()))
    return net


def bits(a):
    a = to_numpy(a)
    return a.view(f"u{a.itemsize}")


@pytest.mark.parametrize("world_size", [1, 3, 8, 64])
def test_gathered_shards_are_the_whole_initialization(device, world_size):
    whole = mixed_net()
    whole.initialize(device=device, seed=7)
    expected = {p.path: bits(p.data()).reshape(-1) for p in whole.collect_params().values()}

    net = mixed_net()
    net.initialize(device=device, seed=7, defer=True)
    parts = [gpuinit.shard(net, rank, world_size) for rank in range(world_size)]
    assert set(parts[0]) == set(expected)
    for path, want in expected.items():
        got = np.concatenate([bits(part[path]) for part in parts])
        assert np.array_equal(got, want), path
    assert not any(p.initialized for p in net.collect_params().values())  # shards are separate


def test_a_shard_allocates_only_its_slice():
    net = nn.Dense(1000, in_units=1000)
    net.initialize(device="cpu", seed=1, defer=True)
    before = store.live_bytes()
    part = gpuinit.shard(net, 3, 8)
    assert part["weight"].size == 125_000 and part["bias"].size == 125
    assert store.live_bytes() - before == store.align(125_000 * 4) + store.align(125 * 4)
    del part
    assert store.live_bytes() == before


def test_deferred_shapes_come_from_a_plan_without_allocating():
    net = models.mlp()
    net.initialize(device="cpu", seed=2)
    with pytest.raises(DeferredInitializationError, match="gpuinit.plan"):
        gpuinit.shard(net, 0, 2)
    before = store.live_bytes()
    gpuinit.plan(net, (4, 20))
    assert store.live_bytes() == before
    halves = [gpuinit.shard(net, r, 2) for r in range(2)]
    net(np.zeros((4, 20), np.float32))  # now the whole network, for comparison
    for p in net.collect_params().values():
        got = np.concatenate([halves[0][p.path], halves[1][p.path]])
        assert np.array_equal(got, p.data().reshape(-1)), p.path


def test_ranges_split_like_fsdp():
    assert [shard_range(10, r, 4) for r in range(4)] == [(0, 3), (3, 6), (6, 9), (9, 10)]
    assert [shard_range(2, r, 4) for r in range(4)] == [(0, 1), (1, 2), (2, 2), (2, 2)]


def test_bad_arguments_say_what_is_wrong():
    net = nn.Dense(4, in_units=4)
    with pytest.raises(UninitializedParameterError, match="initialize"):
        gpuinit.shard(net, 0, 1)
    net.initialize(device="cpu", defer=True)
    for rank, world in ((2, 2), (-1, 2), (0, 0), (0, True)):
        with pytest.raises(GpuInitError, match="rank|world_size"):
            gpuinit.shard(net, rank, world)


def test_a_failing_initializer_leaves_nothing_allocated():
    class Boom(init.Initializer):
        def _init_weight(self, name, arr):
            raise RuntimeError("boom")

    net = nn.Dense(2048, in_units=2048, weight_initializer=Boom())  # 16 MiB whole, 8 MiB a shard
    net.initialize(device="cpu", defer=True)
    before = store.live_bytes()
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        with pytest.raises(gpuinit.InitializerError, match="boom") as err:
            gpuinit.shard(net, 0, 2)
        # released at once, while the error (and its traceback) is still alive
        assert tracemalloc.get_traced_memory()[0] - baseline < 1 << 20, err.value
    finally:
        tracemalloc.stop()
    assert store.live_bytes() == before


@pytest.mark.parametrize("shape,index", [
    ((6, 10), (slice(2, 4), slice(None))),          # rows: one run
    ((6, 10), (slice(None), slice(5, 10))),         # columns: a run per row
    ((6, 10), (slice(3, 6), slice(0, 5))),          # both
    ((4, 6, 10), (slice(None), slice(2, 4), slice(None))),
    ((4, 6, 10), (slice(1, 3), slice(None), slice(5, 10))),
    ((4, 6, 10), ()),                               # the whole parameter
    ((4, 0, 10), (slice(1, 3),)),                   # empty
])
def test_block_runs_cover_exactly_the_block(shape, index):
    from gpuinit.sharding import block_runs
    flat = np.arange(int(np.prod(shape))).reshape(shape)
    starts, length = block_runs(shape, index)
    got = np.concatenate([np.arange(s, s + length) for s in starts]) if len(starts) else np.zeros(0, int)
    np.testing.assert_array_equal(got, flat[index].reshape(-1))


@pytest.mark.parametrize("fill", [init.Normal(0.5), init.TruncatedNormal(sigma=2.0), init.Uniform(1.0), init.One()])
def test_fill_block_equals_the_block_of_the_whole(device, fill):
    from gpuinit.device import as_device
    from gpuinit.sharding import fill_block
    from gpuinit.streams import derive_key
    dev = as_device(device)
    how = fill.fill_for(init.InitDesc("w", shape=(12, 37), own=True))
    key = derive_key(3, "layer/kernel")
    whole = dev.xp.empty((12, 37), np.float32)
    fill_block(dev, whole, how, key, (12, 37), ())
    for index in [(slice(None), slice(9, 18)), (slice(4, 8), slice(30, 37)), (slice(11, 12),)]:
        part = dev.xp.empty(whole[index].shape, np.float32)
        fill_block(dev, part, how, key, (12, 37), index)
        np.testing.assert_array_equal(bits(part), bits(whole[index]))
    with pytest.raises(GpuInitError, match="block"):
        fill_block(dev, dev.xp.empty((3, 3), np.float32), how, key, (12, 37), (slice(0, 2),))


def test_a_shard_of_a_parameter_with_data_is_what_it_holds_not_its_initial_values(tmp_path):
    """After set_data, a load or a cast, a shard slices the values the parameter holds."""
    net = nn.Dense(4, in_units=3)
    net.initialize(device="cpu", seed=1)
    net.weight.set_data(np.arange(12, dtype=np.float32).reshape(4, 3))
    assert np.array_equal(gpuinit.shard(net, 1, 2)["weight"], np.arange(6, 12, dtype=np.float32))
    saved = nn.Dense(4, in_units=3)
    saved.initialize(device="cpu", seed=7)
    saved.save_parameters(str(tmp_path / "w.safetensors"))
    net.load_parameters(str(tmp_path / "w.safetensors"))
    assert np.array_equal(gpuinit.shard(net, 0, 1)["weight"], saved.weight.data().ravel())
    net.cast("float64")
    piece = gpuinit.shard(net, 0, 2)["weight"]
    assert piece.dtype == np.float64 and np.array_equal(piece, net.weight.data().ravel()[:6])
