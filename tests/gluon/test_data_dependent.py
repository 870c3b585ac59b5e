"""A block whose forward depends on values (the book's FancyMLP) inside a deferred network."""

import numpy as np
import pytest

import gpuinit
from gpuinit import nd, nn, store
from gpuinit.errors import PlanError


def norm(x):
    return float(np.sqrt((x * x).sum()))


class FancyMLP(nn.Block):
    def __init__(self, in_units=0, fail=False, **kwargs):
        super().__init__(**kwargs)
        self.rand_weight = self.params.get_constant("rand_weight", np.random.default_rng(0).random((20, 20)))
        self.dense = nn.Dense(20, activation="relu", in_units=in_units)
        self.fail = fail

    def forward(self, x):
        x = self.dense(x)
        x = nd.relu(nd.dot(x, self.rand_weight.data()) + 1)
        x = self.dense(x)
        while norm(x) > 1:  # a Python loop on a value: the shape-only pass cannot follow it
            x = x / 2
        if norm(x) < 0.8:
            x = x * 10
        if self.fail:
            raise RuntimeError("the forward failed")
        return x.sum()


class NestMLP(nn.Block):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.net = nn.Sequential()
        self.net.add(nn.Dense(64, activation="relu"), nn.Dense(32, activation="relu"))
        self.dense = nn.Dense(16, activation="relu")

    def forward(self, x):
        return self.dense(self.net(x))


def chimera(in_units=0, fail=False):
    net = nn.Sequential()
    net.add(NestMLP(), nn.Dense(20), FancyMLP(in_units=in_units, fail=fail))
    return net


X = np.random.default_rng(1).random((2, 20), dtype=np.float32)


@pytest.mark.parametrize("in_units", [20, 0])
def test_the_network_around_a_data_dependent_block_initializes(in_units):
    net = chimera(in_units)
    net.initialize(device="cpu", seed=3)
    y = net(X)
    assert np.ndim(y) == 0 and np.isfinite(y)
    assert all(p.initialized for p in net.collect_params().values())
    assert net[2].dense.weight.shape == (20, 20) and net[0].net[0].weight.shape == (64, 20)


def test_the_numbers_are_those_of_the_same_network_initialized_at_once():
    followed, known = chimera(0), chimera(20)
    followed.initialize(device="cpu", seed=4)
    known.initialize(device="cpu", seed=4)
    assert float(followed(X)) == float(known(X))
    for a, b in zip(followed.collect_params().values(), known.collect_params().values()):
        assert np.array_equal(a.data(), b.data())


def test_a_failing_forward_after_a_data_dependent_block_changes_nothing():
    net = chimera(0, fail=True)
    net.initialize(device="cpu", seed=5)
    live = store.live_bytes()
    with pytest.raises(RuntimeError, match="the forward failed"):
        net(X)
    params = net.collect_params().values()
    assert not any(p.initialized for p in params) and store.live_bytes() == live
    assert net[2].dense.weight.shape == (20, 0) and net[0].net[0].weight.shape == (64, 0)


def test_plan_names_the_block_and_its_advice_works():
    net = chimera(0)
    net.initialize(device="cpu", defer=True)
    with pytest.raises(PlanError) as err:
        gpuinit.plan(net, (2, 20))
    message = str(err.value)
    assert net[2].name in message and "values" in message and "in_units" in message
    # The advice: give the input sizes, then plan with no input.
    given = nn.Sequential()
    inner = nn.Sequential()
    inner.add(nn.Dense(64, in_units=20), nn.Dense(20, in_units=64))
    given.add(inner, FancyMLP(in_units=20))
    given.initialize(device="cpu", defer=True)
    assert gpuinit.plan(given).parameter_bytes == given.collect_params().nbytes


def test_threads_racing_the_first_forward_initialize_once():
    import threading

    net = chimera(0)
    net.initialize(device="cpu", seed=6)
    start, outs = threading.Barrier(4), []

    def call():
        start.wait()
        outs.append(float(net(X)))

    threads = [threading.Thread(target=call) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(outs) == 4 and len(set(outs)) == 1
    reference = chimera(20)
    reference.initialize(device="cpu", seed=6)
    assert outs[0] == float(reference(X))
