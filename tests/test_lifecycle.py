"""The parameter lifecycle: deferred initialization, all-or-nothing steps, faults, races, memory."""

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


# --- a first forward is one step ----------------------------------------------------------------

from gpuinit import engine, lifecycle  # noqa: E402
from gpuinit.errors import GpuInitError, UninitializedParameterError  # noqa: E402
from gpuinit.meta import is_meta  # noqa: E402


def observed(net):
    """What a user can see of a network's parameters: names, shapes, states, values."""
    return [(p.name, p.shape, p.initialized, p.deferred,
             to_numpy(p.data()).tobytes() if p.initialized else None)
            for p in net.collect_params().values()]


class Checked(nn.Block):
    """A Dense whose real forward refuses negative inputs: fails after materialization."""

    def __init__(self):
        super().__init__()
        self.d = nn.Dense(16)

    def forward(self, x):
        if not is_meta(x) and float(to_numpy(x).min()) < 0:
            raise ValueError("negative input")
        return self.d(x)


def test_a_first_forward_failing_after_materialization_changes_nothing(device):
    net = nn.Sequential()
    net.add(Checked(), nn.Dense(32))
    net.initialize(device=device, seed=1)
    before, live = observed(net), store.live_bytes()
    with pytest.raises(ValueError, match="negative input"):
        net(nd.array(-np.ones((2, 5)), device=device))
    assert observed(net) == before and store.live_bytes() == live
    y = net(nd.array(np.ones((2, 5)), device=device))  # and it still works with good input
    assert y.shape == (2, 32) and all(p.initialized for p in net.collect_params().values())


def test_a_layer_added_after_initialize_is_named_before_anything_is_allocated():
    net = nn.Sequential()
    net.add(nn.Dense(8))
    net.initialize(device="cpu")
    late = nn.Dense(3)
    net.add(late)
    live = store.live_bytes()
    with pytest.raises(UninitializedParameterError, match=late.name) as err:
        net(np.ones((2, 4), np.float32))
    assert "initialize" in str(err.value)
    assert not any(p.initialized for p in net.collect_params().values()) and store.live_bytes() == live
    assert net[0].weight.shape == (8, 0)


class Keywords(nn.Block):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Dense(3), nn.Dense(3)

    def forward(self, pair, scale=None, extra=None):
        y = self.a(pair[0]) + self.b(pair[1])
        return y * scale if scale is not None else y


def test_blocks_taking_lists_and_keywords_initialize():
    net = Keywords()
    net.initialize(device="cpu", seed=0)
    x1, x2 = np.ones((2, 4), np.float32), np.ones((2, 6), np.float32)
    y = net(pair=[x1, x2], scale=np.float32(2.0), extra={"unused": np.zeros(3)})
    assert y.shape == (2, 3) and net.a.weight.shape == (3, 4) and net.b.weight.shape == (3, 6)
    plan = gpuinit.plan(Keywords(), [(2, 4), (2, 6)])
    assert plan.output_shape == (2, 3)


def test_other_threads_see_nothing_of_a_step_until_it_commits():
    """While a first forward runs, its parameters are initialized for its own thread only; other
    threads see them deferred, and their own calls wait for the step to end."""
    entered, release = threading.Event(), threading.Event()

    class Slow(nn.Block):
        def __init__(self):
            super().__init__()
            self.d = nn.Dense(4)

        def forward(self, x):
            y = self.d(x)
            if not is_meta(x) and not release.is_set():
                entered.set()
                release.wait(10)
            return y

    net = Slow()
    net.initialize(device="cpu", seed=3)
    x = np.ones((2, 5), np.float32)
    results = []
    first = threading.Thread(target=lambda: results.append(net(x)))
    first.start()
    assert entered.wait(10)
    assert net.d.weight.deferred and not net.d.weight.initialized  # seen from this thread
    with pytest.raises(DeferredInitializationError):
        net.d.weight.data()
    second = threading.Thread(target=lambda: results.append(net(x)))
    second.start()
    second.join(0.2)
    assert second.is_alive()  # waits for the step
    release.set()
    first.join(10)
    second.join(10)
    assert len(results) == 2 and np.array_equal(results[0], results[1])
    assert net.d.weight.initialized


# --- faults: an interrupt or out-of-memory in any phase leaves nothing behind ---------------------

class Boom(init.Initializer):
    """Uniform weights, but raises ``error`` on the second weight it fills."""

    def __init__(self, error):
        super().__init__()
        self.error, self.calls = error, 0

    def _init_weight(self, name, arr):
        self.calls += 1
        if self.calls == 2:
            raise self.error()
        arr[...] = 0.5


def _raise_on(count, error, real=None):
    """A stand-in for ``real`` that raises ``error`` on its ``count``-th call (counted under a
    lock: the CPU workers call it from two threads, and a lost update skipped the count)."""
    calls, lock = [0], threading.Lock()

    def wrapper(*args, **kwargs):
        with lock:
            calls[0] += 1
            n = calls[0]
        out = real(*args, **kwargs) if real is not None else None
        if n == count:
            raise error()
        return out
    return wrapper


def _inject(monkeypatch, phase, error):
    """Make ``phase`` of the next materialization fail with ``error``; returns the initializer."""
    if phase == "keys":
        monkeypatch.setattr(lifecycle, "derive_key_array", _raise_on(1, error))
    elif phase == "shape pass":
        real = nn.Dense.forward
        monkeypatch.setattr(nn.Dense, "forward", lambda self, x: (_ for _ in ()).throw(error())
                            if is_meta(x) and self is FAULTY[0] else real(self, x))
    elif phase == "fill plan":
        monkeypatch.setattr(init.Uniform, "fill_for", _raise_on(1, error, init.Uniform.fill_for))
    elif phase == "allocation":
        monkeypatch.setattr(store, "allocate", _raise_on(1, error, store.allocate))
    elif phase == "fill":
        monkeypatch.setattr(engine, "run", _raise_on(1, error, engine.run))
    elif phase == "cpu worker":  # the NumPy engine's worker threads
        monkeypatch.setenv("GPUINIT_CPU_ENGINE", "numpy")
        monkeypatch.setenv("GPUINIT_NUM_THREADS", "2")
        monkeypatch.setattr(gpuinit.streams.cpu, "generate", _raise_on(3, error, gpuinit.streams.cpu.generate))
    elif phase == "compiled engine":  # between two pieces of the compiled engine's work
        if engine._compiled_module() is None:
            pytest.skip("the compiled CPU engine is not built here")
        monkeypatch.setenv("GPUINIT_CPU_ENGINE", "compiled")
        monkeypatch.setattr(engine, "PIECE_GROUPS", 1 << 14)
        compiled = engine._compiled_module()
        monkeypatch.setattr(engine, "_compiled_module",
                            lambda: type("Interrupted", (), {"run": staticmethod(_raise_on(3, error, compiled.run))})())
    elif phase == "forward":
        real = nn.Dense.forward
        monkeypatch.setattr(nn.Dense, "forward", lambda self, x: (_ for _ in ()).throw(error())
                            if not is_meta(x) else real(self, x))
    elif phase == "commit":
        monkeypatch.setattr(store, "track", _raise_on(1, error, store.track))
    return Boom(error) if phase == "hook" else init.Uniform()


FAULTY = [None]
PHASES = ["keys", "shape pass", "fill plan", "allocation", "fill", "cpu worker", "compiled engine", "hook", "forward",
          "commit"]


@pytest.mark.parametrize("error", [KeyboardInterrupt, MemoryError])
@pytest.mark.parametrize("phase", PHASES)
def test_an_interrupt_in_any_phase_leaves_nothing_initialized_or_allocated(monkeypatch, phase, error):
    net = nn.Sequential()
    net.add(nn.Dense(1024), nn.Dense(1024))  # 4 MiB each once the input fixes in_units
    FAULTY[0] = net[1]
    gc.collect()
    live = store.live_bytes()
    x = np.ones((2, 1024), np.float32)
    if phase == "keys":
        _inject(monkeypatch, phase, error)
        with pytest.raises(error):
            net.initialize(device="cpu")
        assert not any(p.requested for p in net.collect_params().values())
        return
    initializer = init.Uniform() if phase == "hook" else None
    net.initialize(init=Boom(error) if phase == "hook" else initializer, device="cpu", seed=5)
    before = observed(net)
    _inject(monkeypatch, phase, error)
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        with pytest.raises((error, GpuInitError)) as err:
            net(x)
        held = tracemalloc.get_traced_memory()[0] - baseline  # while the error is still alive
    finally:
        tracemalloc.stop()
    assert isinstance(err.value, error) or isinstance(err.value.__cause__, error), err.value
    assert held < 1 << 20, (phase, held)
    assert observed(net) == before and store.live_bytes() == live
    monkeypatch.undo()
    net(x)  # the same network initializes once the fault is gone
    assert all(p.initialized for p in net.collect_params().values())


def test_an_interrupted_immediate_initialize_keeps_the_old_values(monkeypatch):
    net = known_mlp()
    net.initialize(device="cpu", seed=1)
    before, live = observed(net), store.live_bytes()
    monkeypatch.setattr(engine, "run", _raise_on(1, KeyboardInterrupt, engine.run))
    with pytest.raises(KeyboardInterrupt):
        net.initialize(device="cpu", seed=2, force_reinit=True)
    assert observed(net) == before and store.live_bytes() == live


def test_a_failed_initialize_gives_its_seed_back():
    gpuinit.seed(40)
    with pytest.raises(InitializerError):
        known_mlp().initialize(init=FailOnSecond(), device="cpu")
    a = known_mlp()
    a.initialize(device="cpu")
    b = known_mlp()
    b.initialize(device="cpu", seed=40)
    assert np.array_equal(a[0].weight.data(), b[0].weight.data())


# --- memory: no reference cycles ------------------------------------------------------------------

@pytest.mark.parametrize("how", ["immediate", "first forward", "plan and shard"])
def test_dropping_a_network_frees_its_arena_at_once_without_the_cyclic_gc(how):
    import weakref
    gc.collect()
    live = store.live_bytes()
    enabled = gc.isenabled()
    gc.disable()
    try:
        net = known_mlp(64) if how == "immediate" else mlp()
        net.initialize(device="cpu", defer=how == "plan and shard")
        if how == "first forward":
            net(np.ones((2, 64), np.float32))
        if how == "plan and shard":
            gpuinit.plan(net, (2, 64))
            assert gpuinit.shard(net, 0, 2)["0.weight"].size == 256 * 64 // 2
        assert how == "plan and shard" or store.live_bytes() > live
        ref = weakref.ref(net)
        del net
        assert ref() is None  # nothing but the name held it: no cycle
        assert store.live_bytes() == live
    finally:
        if enabled:
            gc.enable()


# --- races: every outcome is one of the sequential outcomes ------------------------------------

def _reference(seed):
    net = mlp()
    net.initialize(device="cpu", seed=seed)
    x = np.linspace(-1, 1, 2 * 20, dtype=np.float32).reshape(2, 20)
    return net(x), {p.path: p.data().copy() for p in net.collect_params().values()}


def test_many_threads_changing_and_using_one_network_see_only_whole_steps():
    """Threads run first forwards, plans, shape inference, shards, set_data and re-initializations
    with two seeds on one network. Biases are zeros under both seeds and set_data writes zeros to
    one, so every sequential order gives outputs and shards equal to seed 1's or seed 2's; a mixed
    state (some parameters of each seed, a shape without data) would show."""
    import random
    refs = {s: _reference(s) for s in (1, 2)}
    outputs = {s: refs[s][0] for s in refs}
    x = np.linspace(-1, 1, 2 * 20, dtype=np.float32).reshape(2, 20)
    for round_ in range(4):
        net = mlp()
        net.initialize(device="cpu", seed=1)
        seen, errors = [], []
        barrier = threading.Barrier(6)

        def worker(k):
            rng = random.Random(round_ * 100 + k)
            barrier.wait()
            for _ in range(12):
                op = rng.choice(["forward", "forward", "plan", "infer", "shard", "set_data", "reinit", "defer"])
                try:
                    if op == "forward":
                        seen.append(("out", net(x)))
                    elif op == "plan":
                        assert gpuinit.plan(net, (2, 20)).total_bytes == store.align(256 * 20 * 4) + \
                            store.align(256 * 4) + store.align(10 * 256 * 4) + store.align(10 * 4)
                    elif op == "infer":
                        net.infer_shape(x)
                    elif op == "shard":
                        seen.append(("shard", gpuinit.shard(net, rng.randrange(3), 3)))
                    elif op == "set_data":
                        if net[1].bias.initialized:
                            net[1].bias.set_data(np.zeros(10, np.float32))
                    else:
                        net.initialize(device="cpu", seed=rng.choice([1, 2]), force_reinit=True,
                                       defer=op == "defer")
                except (DeferredInitializationError, gpuinit.PlanError) as exc:
                    # shard or set_data on a network whose shapes a re-initialization reset: a
                    # sequential outcome too (only "defer" makes that possible)
                    if op not in ("shard", "set_data"):
                        errors.append(exc)
                except Exception as exc:  # pragma: no cover - reported below
                    errors.append(exc)

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors, errors[:3]
        for kind, value in seen:
            if kind == "out":
                assert any(np.array_equal(value, outputs[s]) for s in outputs), "a forward saw a mixed network"
            else:
                whole = [s for s in refs if all(
                    np.array_equal(v, refs[s][1][path].reshape(-1)[:0] if v.size == 0 else
                                   _slice(refs[s][1][path], v)) for path, v in value.items())]
                assert whole, "a shard mixed two initializations"
        params = list(net.collect_params().values())
        for p in params:
            assert p.deferred or (p.initialized and p.data().shape == p.shape)
        if all(p.initialized for p in params):
            assert any(np.array_equal(net(x), outputs[s]) for s in outputs)


def _slice(whole, part):
    """The slice of ``whole``'s flat elements that ``part`` should equal, found by its position
    among shard_range's slices (3 ranks)."""
    from gpuinit.sharding import shard_range
    flat = whole.reshape(-1)
    for rank in range(3):
        start, stop = shard_range(flat.size, rank, 3)
        if stop - start == part.size and np.array_equal(flat[start:stop], part):
            return flat[start:stop]
    return flat[:part.size] + 1  # matches nothing


def test_plan_racing_the_first_forward_never_leaves_a_shape_without_its_data():
    """The bug this lifecycle fixed: plan() restored a stale shape outside the lock while another
    thread materialized, leaving weight shape (1024, 0) with data (1024, 20)."""
    for _ in range(40):
        net = nn.Sequential()
        net.add(nn.Dense(1024), nn.Dense(10))
        net.initialize(device="cpu")
        barrier = threading.Barrier(2)
        x = np.ones((2, 20), np.float32)

        def planner():
            barrier.wait()
            gpuinit.plan(net, (2, 20))

        t = threading.Thread(target=planner)
        t.start()
        barrier.wait()
        net(x)
        t.join()
        assert net[0].weight.shape == (1024, 20) and net[0].weight.data().shape == (1024, 20)
        assert net(x).shape == (2, 10)


def test_changing_parameters_inside_a_forward_is_refused_not_deadlocked():
    class SetsData(nn.Block):
        def __init__(self):
            super().__init__()
            self.d = nn.Dense(2, in_units=2)

        def forward(self, x):
            self.d.weight.set_data(np.zeros((2, 2)))
            return self.d(x)

    net = SetsData()
    net.initialize(device="cpu")
    with pytest.raises(GpuInitError, match="forward pass"):
        net(np.ones((1, 2), np.float32))


class SetsShapeThenFails(nn.Block):
    """Sets its weight's shape in forward, Gluon-style, then refuses negative inputs."""

    def __init__(self):
        super().__init__()
        self.w = gpuinit.Parameter("w", shape=(4, 0), role="weight")

    def forward(self, x):
        self.w.shape = (4, x.shape[1])
        y = self._value(self.w, x)
        if not is_meta(x) and float(to_numpy(x).min()) < 0:
            raise ValueError("negative input")
        return y


def test_a_shape_set_in_a_failing_first_forward_is_undone():
    b = SetsShapeThenFails()
    b.initialize(device="cpu", seed=0)
    with pytest.raises(ValueError, match="negative input"):
        b(-np.ones((7, 5), np.float32))
    assert b.w.shape == (4, 0) and b.w.deferred
    b(np.ones((7, 3), np.float32))  # the next good call picks the shape afresh
    assert b.w.shape == (4, 3) and b.w.initialized


def test_initialize_inside_a_first_forward_is_refused():
    class InitializesInside(nn.Block):
        def __init__(self):
            super().__init__()
            self.d = nn.Dense(2)
            self.other = nn.Dense(2, in_units=2)

        def forward(self, x):
            self.other.initialize(device="cpu")
            return self.d(x)

    net = InitializesInside()
    net.d.initialize(device="cpu")
    with pytest.raises(GpuInitError, match="initialize parameters while this thread"):
        net(np.ones((1, 3), np.float32))
    assert not net.other.weight.initialized and net.d.weight.deferred


def test_out_of_memory_in_a_python_initializer_stays_out_of_memory():
    from gpuinit.errors import OutOfMemoryError

    class Exhausted(init.Initializer):
        def _init_weight(self, name, arr):
            raise OutOfMemoryError("no room")

    with pytest.raises(MemoryError, match="no room"):
        nn.Dense(4, in_units=3).initialize(Exhausted(), device="cpu", seed=0)


def test_progress_reports_only_the_observing_threads_materializations():
    """The memory report's progress callback counts what its own thread materializes: a network
    another thread initializes meanwhile is not in its figures."""
    seen, inside, done = [], threading.Event(), threading.Event()

    def report():
        with lifecycle.observe(seen.append):
            inside.set()
            done.wait(30)
            own = nn.Dense(4, in_units=3)
            own.initialize(seed=0)

    thread = threading.Thread(target=report)
    thread.start()
    inside.wait(30)
    other = nn.Dense(1000, in_units=1000)
    other.initialize(seed=1)  # 4 MB in this thread, while the other observes
    done.set()
    thread.join(30)
    assert sum(seen) == (4 * 3 + 4) * 4
