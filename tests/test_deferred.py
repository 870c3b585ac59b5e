"""Deferred initialization: what is allocated when, all-or-nothing, and reproducibility."""

import gc
import threading
import tracemalloc
import warnings

import numpy as np
import pytest

import gpuinit
from gpuinit import init, nd, nn, store
from gpuinit.backend import to_numpy
from gpuinit.errors import DeferredInitializationError, InitializerError, ShapeError


def mlp(**kw):
    net = nn.Sequential()
    net.add(nn.Dense(256, activation="relu", **kw), nn.Dense(10))
    return net


def known_mlp(in_units=20):
    net = nn.Sequential()
    net.add(nn.Dense(256, activation="relu", in_units=in_units), nn.Dense(10, in_units=256))
    return net


def weights(net):
    return {p.path: to_numpy(p.data()).copy() for p in net.collect_params().values()}


def test_initialize_with_unknown_shapes_allocates_nothing(device):
    net = nn.Sequential()
    net.add(nn.Dense(4096, activation="relu"), nn.Dense(4096))
    before = store.live_bytes()
    tracemalloc.start()
    try:
        net.initialize(device=device)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20  # the second layer alone would be 64 MiB
    assert store.live_bytes() == before
    assert net[0].weight.shape == (4096, 0)
    assert all(p.deferred and not p.initialized for p in net.collect_params().values()
               if not p.shape_known)


def test_data_before_first_forward_says_why_and_how(device):
    net = mlp()
    net.initialize(device=device)
    with pytest.raises(DeferredInitializationError) as err:
        net[0].weight.data()
    message = str(err.value)
    assert net[0].weight.name in message and "first forward" in message and "in_units" in message
    with pytest.raises(DeferredInitializationError):
        net[0].weight.set_data(np.zeros((256, 20)))


def test_uninitialized_use_is_a_clear_error():
    net = known_mlp(5)
    with pytest.raises(gpuinit.UninitializedParameterError, match="initialize"):
        net(np.zeros((1, 5), np.float32))


def test_first_forward_materializes_every_parameter_once(device):
    net = mlp()
    net.initialize(device=device)
    x = nd.random.uniform(shape=(2, 20), device=device)
    before = store.live_bytes()
    y = net(x)
    params = net.collect_params()
    assert all(p.initialized for p in params.values())
    assert net[0].weight.shape == (256, 20) and net[1].weight.shape == (10, 256)
    assert store.live_bytes() - before >= params.nbytes
    first = weights(net)
    net(x)
    assert all(np.array_equal(first[k], v) for k, v in weights(net).items())
    assert y.shape == (2, 10)


def test_forward_matches_a_numpy_reference():
    net = mlp()
    net.initialize(device="cpu", seed=3)
    x = nd.random.uniform(shape=(3, 7), device="cpu")
    y = net(x)
    w0, b0, w1, b1 = (p.data() for p in net.collect_params().values())
    expected = np.maximum(x @ w0.T + b0, 0) @ w1.T + b1
    assert np.allclose(y, expected, rtol=1e-6)
    assert np.all(b0 == 0)
    assert np.abs(w0).max() <= 0.07  # the default Uniform(0.07)


def test_known_shapes_initialize_at_once(device):
    net = known_mlp()
    net.initialize(device=device)
    assert all(p.initialized for p in net.collect_params().values())


def test_second_initialize_warns_once_and_changes_nothing():
    net = known_mlp()
    net.initialize(device="cpu")
    before = weights(net)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        net.initialize(device="cpu")
    assert len(caught) == 1 and "force_reinit=True" in str(caught[0].message)
    assert all(np.array_equal(before[k], v) for k, v in weights(net).items())


def test_force_reinit_reinitializes_at_once_with_a_new_seed():
    net = known_mlp()
    net.initialize(device="cpu", seed=1)
    before = weights(net)
    net.initialize(device="cpu", seed=2, force_reinit=True)
    assert not np.array_equal(before["0.weight"], weights(net)["0.weight"])
    net.initialize(device="cpu", seed=1, force_reinit=True)
    assert all(np.array_equal(before[k], v) for k, v in weights(net).items())


def test_other_batch_size_works_other_feature_size_fails_and_changes_nothing(device):
    net = mlp()
    net.initialize(device=device)
    net(nd.random.uniform(shape=(2, 20), device=device))
    before = weights(net)
    assert net(nd.random.uniform(shape=(5, 20), device=device)).shape == (5, 10)
    with pytest.raises(ShapeError) as err:
        net(nd.random.uniform(shape=(2, 30), device=device))
    message = str(err.value)
    assert net[0].name in message and "20" in message and "(2, 30)" in message
    assert net[0].weight.shape == (256, 20)
    assert all(np.array_equal(before[k], v) for k, v in weights(net).items())


def test_feature_size_change_before_first_forward_leaves_shapes_unknown():
    """A failing first forward (shape inference error) leaves every deferred shape as it was."""
    net = nn.Sequential()
    net.add(nn.Dense(8), nn.Dense(4, in_units=3))
    net.initialize(device="cpu")
    with pytest.raises(ShapeError):
        net(np.zeros((2, 5), np.float32))
    assert net[0].weight.shape == (8, 0) and net[0].weight.deferred


class FailOnSecond(init.Initializer):
    def __init__(self):
        super().__init__()
        self.calls = 0

    def _init_weight(self, name, arr):
        self.calls += 1
        if self.calls == 2:
            raise RuntimeError("boom")
        arr[:] = 1


def test_failing_initializer_leaves_nothing_initialized_and_frees_memory(device):
    net = mlp()
    net.initialize(init=FailOnSecond(), device=device)
    x = nd.random.uniform(shape=(2, 20), device=device)
    gc.collect()
    before = store.live_bytes()
    with pytest.raises(InitializerError) as err:
        net(x)
    assert net[1].weight.name in str(err.value) and "boom" in str(err.value)
    assert not any(p.initialized for p in net.collect_params().values())
    assert store.live_bytes() == before  # released at once, while the error is still alive
    # The request is still there: a working initializer can take over.
    net.initialize(init=init.Xavier(), device=device, force_reinit=True)
    net(nd.random.uniform(shape=(2, 20), device=device))
    assert all(p.initialized for p in net.collect_params().values())


def test_a_failed_materialization_frees_its_memory_while_the_error_lives():
    """The arena and a hook's array are freed at once, not when the exception is collected."""
    net = nn.Sequential()
    net.add(nn.Dense(2048, in_units=2048), nn.Dense(2048, in_units=2048))  # 2 x 16 MiB
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        with pytest.raises(InitializerError, match="boom") as err:
            net.initialize(init=FailOnSecond(), device="cpu")
        assert tracemalloc.get_traced_memory()[0] - baseline < 1 << 20, err.value
    finally:
        tracemalloc.stop()


def test_failing_immediate_initialize_changes_nothing():
    net = known_mlp()
    net.initialize(device="cpu", seed=4)
    before = weights(net)
    with pytest.raises(InitializerError):
        net.initialize(init=FailOnSecond(), device="cpu", force_reinit=True)
    assert all(np.array_equal(before[k], v) for k, v in weights(net).items())


def test_unsuitable_initializer_fails_before_allocating():
    net = nn.Sequential()
    net.add(nn.Dense(3, in_units=2, bias_initializer=init.Xavier()))
    gc.collect()
    before = store.live_bytes()
    with pytest.raises(InitializerError, match="at least 2 dimensions"):
        net.initialize(device="cpu")
    assert store.live_bytes() == before and not net[0].weight.initialized


def test_threads_calling_the_first_forward_initialize_exactly_once():
    calls = []

    class Counting(init.Initializer):
        def _init_weight(self, name, arr):
            calls.append(str(name))
            arr[:] = 0.5

    net = mlp()
    net.initialize(init=Counting(), device="cpu")
    x = np.ones((2, 20), np.float32)
    barrier = threading.Barrier(8)
    results, errors = [], []

    def run():
        barrier.wait()
        try:
            results.append(net(x))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(calls) == sorted([net[0].weight.name, net[1].weight.name])
    assert all(np.array_equal(r, results[0]) for r in results)


# --- reproducibility ----------------------------------------------------------------------


def test_same_seed_same_weights_whatever_the_build_order_or_timing(device):
    nn.Dense(7)  # shifts the global name counter: names must not matter
    a = mlp()
    a.initialize(init=init.Xavier(), device=device, seed=42)
    a(nd.random.uniform(shape=(2, 20), device=device))
    b = known_mlp()
    b.initialize(init=init.Xavier(), device=device, seed=42)  # immediate, not deferred
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    assert all(np.array_equal(wa[k], wb[k]) for k in wa)
    assert a[0].weight.rng_key == b[0].weight.rng_key
    assert a[0].weight.rng_key == gpuinit.streams.derive_key(42, "0.weight")


def test_parameter_numbers_follow_the_stream_contract():
    net = nn.Sequential()
    net.add(nn.Dense(5, in_units=3))
    net.initialize(init=init.Uniform(0.5), device="cpu", seed=9)
    key = net[0].weight.rng_key
    u = np.random.Generator(np.random.Philox(key=np.array(key, dtype=np.uint64))).random(15, dtype=np.float32)
    expected = (np.float32(-0.5) + np.float32(1.0) * u).reshape(5, 3)
    assert np.array_equal(net[0].weight.data(), expected)


def test_global_seed_makes_unseeded_initialize_reproducible():
    gpuinit.seed(5)
    a = known_mlp(4)
    a.initialize(device="cpu")
    gpuinit.seed(5)
    b = known_mlp(4)
    b.initialize(device="cpu")
    assert np.array_equal(a[0].weight.data(), b[0].weight.data())
    c = known_mlp(4)
    c.initialize(device="cpu")  # the next seed: different numbers
    assert not np.array_equal(a[0].weight.data(), c[0].weight.data())


def test_custom_initializers_draw_from_the_parameter_stream():
    class RandomInit(init.Initializer):
        def _init_weight(self, name, arr):
            arr[:] = nd.random.normal(0, 1, shape=arr.shape, device="cpu")

    a = known_mlp(6)
    a.initialize(init=RandomInit(), device="cpu", seed=8)
    nn.Dense(3)
    b = mlp()
    b.initialize(init=RandomInit(), device="cpu", seed=8)
    b(np.zeros((1, 6), np.float32))
    assert np.array_equal(a[0].weight.data(), b[0].weight.data())


def test_set_data_and_data():
    net = known_mlp(3)
    net.initialize(device="cpu")
    w = net[0].weight
    w.set_data(np.full((256, 3), 2.0))
    assert np.all(w.data() == 2.0) and w.data().dtype == np.float32
    with pytest.raises(ShapeError, match=r"\(256, 3\)"):
        w.set_data(np.zeros((3, 256)))


def test_parameters_are_views_of_one_arena(device):
    """The store hands each parameter its place in the arena; data() makes the view once."""
    net = known_mlp(3)
    net.initialize(device=device)
    a, b = net[0].weight.data(), net[1].bias.data()
    assert net[0].weight.data() is a
    xp = gpuinit.backend.array_module_of(a)
    base = a.base if xp is np else a.data.mem
    assert (b.base if xp is np else b.data.mem) is base
    b[...] = 3.0  # writes land in the parameter's own memory
    assert float(to_numpy(net[1].bias.data()).sum()) == 30.0


def test_shared_parameters_are_initialized_once():
    class Tied(nn.Block):
        def __init__(self):
            super().__init__()
            self.a = nn.Dense(4, in_units=4)
            self.b = nn.Dense(4, in_units=4)
            self.b.weight = self.a.weight

        def forward(self, x):
            return self.b(self.a(x))

    net = Tied()
    params = net.collect_params()
    assert len(params) == 3
    net.initialize(device="cpu")
    assert net.a.weight.data() is net.b.weight.data()
