"""The Gluon entry points that change parameters are all-or-nothing steps too: a failure while
allocating replicas, moving, casting or making gradients leaves every parameter as it was and
gives the memory back."""

import gc
import threading

import numpy as np
import pytest

from gpuinit import cpu, nn, store
from gpuinit.errors import OutOfMemoryError


def failing_on(count, real):
    calls, lock = [0], threading.Lock()

    def allocate(*args, **kwargs):
        with lock:
            calls[0] += 1
            n = calls[0]
        if n == count:
            raise OutOfMemoryError("injected: no memory left")
        return real(*args, **kwargs)
    return allocate


def snapshot(net):
    out = []
    for p in net.collect_params().values():
        out.append((p.name, p.shape, p.dtype, p.initialized, p.list_ctx() if p.requested else None,
                    [d.tobytes() for d in p.list_data()] if p.initialized else None, len(p._now.grads)))
    return out


def ready_net():
    net = nn.Sequential()
    net.add(nn.Dense(16, in_units=8), nn.Dense(4, in_units=16))
    net.initialize(ctx=[cpu(0), cpu(1)], seed=0)
    return net


@pytest.mark.parametrize("count", [1, 2])
def test_replicating_at_the_first_forward_is_all_or_nothing(monkeypatch, count):
    net = nn.Sequential()
    net.add(nn.Dense(16), nn.Dense(4))
    net.initialize(ctx=[cpu(0), cpu(1)], seed=1)
    gc.collect()
    before, live = snapshot(net), store.live_bytes()
    monkeypatch.setattr(store, "allocate", failing_on(count, store.allocate))  # 1: the first device, 2: the replica
    with pytest.raises(OutOfMemoryError):
        net(np.ones((2, 8), np.float32))
    assert snapshot(net) == before and store.live_bytes() == live
    monkeypatch.undo()
    net(np.ones((2, 8), np.float32))
    assert all(len(p.list_data()) == 2 for p in net.collect_params().values())


@pytest.mark.parametrize("act", ["reset_ctx", "cast", "grad"])
@pytest.mark.parametrize("count", [1, 2])
def test_moving_casting_and_gradients_are_all_or_nothing(monkeypatch, act, count):
    net = ready_net()
    gc.collect()
    before, live = snapshot(net), store.live_bytes()
    monkeypatch.setattr(store, "allocate", failing_on(count, store.allocate))
    with pytest.raises(OutOfMemoryError):
        if act == "reset_ctx":
            net.collect_params().reset_ctx([cpu(2), cpu(3)])
        elif act == "cast":
            net.cast("float64")
        else:
            for p in net.collect_params().values():
                p.grad()
                p.grad(cpu(1))  # grads of one parameter are made together; count 2 fails the second one
    after = snapshot(net)
    if act == "grad" and count == 2:  # the first parameter's gradients were a step of their own, and stand
        assert after[1:] == before[1:] and after[0][:-1] == before[0][:-1]
    else:
        assert after == before and store.live_bytes() == live
