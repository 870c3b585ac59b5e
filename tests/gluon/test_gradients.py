"""Parameter.grad(): a zero buffer of the parameter's shape, made on first use."""

import numpy as np
import pytest

from gpuinit import cpu, nd, nn, store
from gpuinit.errors import ArgumentError, DeferredInitializationError


def test_grad_is_zeros_of_the_parameters_shape_and_made_on_first_use():
    net = nn.Sequential()
    net.add(nn.Dense(256, activation="relu"), nn.Dense(10))
    net.initialize(device="cpu", seed=0)
    with pytest.raises(DeferredInitializationError):
        net[0].weight.grad()
    net(np.ones((2, 20), np.float32))
    before = store.live_bytes()
    grad = net[0].weight.grad()
    assert grad.shape == (256, 20) and grad.dtype == np.float32 and not grad.any()
    assert store.live_bytes() - before >= grad.nbytes  # allocated now, not with the parameters
    assert net[0].weight.grad() is grad


def test_zero_grad_clears_every_buffer_made():
    net = nn.Dense(3, in_units=2)
    net.initialize(ctx=[cpu(0), cpu(1)], seed=1)
    grads = net.weight.list_grad()
    for g in grads:
        g[...] = 5
    net.collect_params().zero_grad()
    assert all(not g.any() for g in grads)
    net.bias.zero_grad()  # no buffer made yet: nothing to do


def test_grad_req_null_has_no_gradient():
    bn = nn.BatchNorm(in_channels=3)
    bn.initialize(device="cpu", seed=2)
    assert bn.running_mean.grad_req == "null" and bn.gamma.grad_req == "write"
    with pytest.raises(RuntimeError, match="grad_req"):  # Gluon's class: NoGradientError is one
        bn.running_mean.grad()
    bn.gamma.grad()
    bn.collect_params().setattr("grad_req", "null")
    assert bn.gamma._now.grads == ()  # buffers dropped with the request for gradients
    bn.gamma.grad_req = "write"
    assert bn.gamma.grad().shape == (3,)


def test_reinitializing_starts_gradients_over():
    net = nn.Dense(3, in_units=2)
    net.initialize(device="cpu", seed=3)
    net.weight.grad()[...] = 1
    net.initialize(device="cpu", force_reinit=True, seed=3)
    assert not net.weight.grad().any()


def test_threads_asking_for_a_gradient_at_once_get_one_buffer():
    import threading

    net = nn.Dense(64, in_units=64)
    net.initialize(device="cpu", seed=4)
    start = threading.Barrier(8)
    got = []

    def ask():
        start.wait()
        got.append(net.weight.grad())

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 8 and all(g is got[0] for g in got)


def test_a_refused_grad_req_change_leaves_grad_req_and_its_buffer():
    """Dropping the buffers is refused inside a forward; grad_req then stays as it was."""
    from gpuinit import GpuInitError

    class Dropper(nn.Block):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.dense = nn.Dense(2, in_units=3)

        def forward(self, x):
            self.dense.weight.grad_req = "null"
            return self.dense(x)

    net = Dropper()
    net.initialize(seed=0)
    buffer = net.dense.weight.grad()
    with pytest.raises(GpuInitError):
        net(nd.ones((1, 3)))
    assert net.dense.weight.grad_req == "write" and net.dense.weight.grad() is buffer
