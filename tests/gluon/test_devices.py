"""Devices as Gluon has them: cpu(i), ctx=, a list of devices replicating each parameter, reset_ctx.

Only the host exists here: cpu(0), cpu(1), ... are all the host, told apart as labels, as in
MXNet. Each replica still lives in the arena of its own device label."""

import numpy as np
import pytest

import gpuinit
from gpuinit import Parameter, ParameterDict, cpu, nd, nn, store
from gpuinit.errors import DeviceError


def test_cpu_takes_a_device_id():
    assert cpu() == cpu(0) == gpuinit.as_device("cpu") and cpu(1) != cpu(0)
    assert gpuinit.as_device("cpu(1)") == cpu(1) == gpuinit.as_device("cpu:1")
    assert repr(cpu(1)) == "cpu(1)" and cpu(1).device_type == "cpu" and cpu(1).device_id == 1
    with pytest.raises(DeviceError):
        cpu(-1)


def test_a_list_of_devices_replicates_each_parameter():
    p = Parameter("weight", shape=(10, 10))
    p.initialize(init="xavier", ctx=[cpu(0), cpu(1)], seed=0)
    assert p.list_ctx() == [cpu(0), cpu(1)]
    first, second = p.list_data()
    assert first is not second and np.array_equal(first, second)
    assert p.data(cpu(1)) is second and p.data() is first and p.data(ctx=cpu(0)) is first
    assert len(p.list_grad()) == 2
    assert p.data(cpu(1)).context == cpu(1) and p.data(cpu(1)).ctx == cpu(1) and p.data().context == cpu(0)


def test_each_replica_lives_in_its_own_devices_arena():
    before = {d: store.live_bytes(d) for d in (cpu(0), cpu(1))}
    net = nn.Dense(4, in_units=3)
    net.initialize(ctx=[cpu(0), cpu(1)], seed=1)
    grown = {d: store.live_bytes(d) - before[d] for d in (cpu(0), cpu(1))}
    assert grown[cpu(0)] == grown[cpu(1)] > 0


def test_a_deferred_network_replicates_at_its_first_forward():
    net = nn.Sequential()
    net.add(nn.Dense(5), nn.Dense(2))
    net.initialize(ctx=[cpu(0), cpu(1)], seed=2)
    net(np.ones((3, 7), np.float32))
    for p in net.collect_params().values():
        assert p.list_ctx() == [cpu(0), cpu(1)] and np.array_equal(*p.list_data())


def test_set_data_writes_every_copy():
    p = Parameter("w", shape=(2, 2))
    p.initialize(ctx=[cpu(0), cpu(3)], seed=3)
    p.set_data(np.full((2, 2), 4.0))
    assert all(np.all(d == 4) for d in p.list_data())


def test_reset_ctx_moves_data_and_keeps_values():
    params = ParameterDict("net_")
    params.get("w0", shape=(10, 10))
    params.get("w1", shape=(10, 10))
    params.initialize(ctx=cpu(1), seed=4)
    values = [p.data().copy() for p in params.values()]
    params.reset_ctx([cpu(42), cpu(24)])
    assert params.list_ctx() == [cpu(42), cpu(24)]
    for p, v in zip(params.values(), values):
        assert p.list_ctx() == [cpu(42), cpu(24)]
        assert all(np.array_equal(d, v) for d in p.list_data())


def test_reset_ctx_of_a_deferred_parameter_changes_where_it_will_live():
    layer = nn.Dense(3)
    layer.initialize(ctx=cpu(0), seed=5)
    layer.collect_params().reset_ctx(cpu(2))
    layer(np.ones((1, 4), np.float32))
    assert layer.weight.list_ctx() == [cpu(2)]


def test_the_arrays_and_functions_take_ctx():
    x = nd.array([1, 2, 3], ctx=cpu(0))
    assert x.shape == (3,)
    layer = nn.Dense(2, in_units=3)
    layer.initialize(ctx=cpu(), seed=6)
    assert layer(x.reshape(1, 3)).shape == (1, 2)


def test_cast_converts_every_copy_and_deferred_parameters_follow():
    net = nn.Sequential()
    net.add(nn.Dense(4, in_units=3), nn.Dense(2))
    net.initialize(ctx=[cpu(0), cpu(1)], seed=7)
    net(np.ones((1, 3), np.float32))
    before = net[0].weight.data().copy()
    net.cast("float64")
    assert [d.dtype for d in net[0].weight.list_data()] == [np.float64, np.float64]
    assert np.array_equal(net[0].weight.data(cpu(1)), before)  # float32 values are exact in float64
    assert net(np.ones((1, 3))).dtype == np.float64
    waiting = nn.Dense(2)
    waiting.initialize(device="cpu", seed=8)
    waiting.cast("float16")
    assert waiting(np.ones((1, 3), np.float16)).dtype == np.float16 and waiting.weight.data().dtype == np.float16


def test_replicas_gradients_casts_and_moves_on_each_backend(device):
    from gpuinit.backend import to_numpy

    main = gpuinit.as_device(device)
    net = nn.Sequential()
    net.add(nn.Dense(8), nn.Dense(3))
    net.initialize(device=[main, cpu(1)], seed=10)
    net(nd.ones((2, 5), device=main))
    w = net[0].weight
    first, second = w.list_data()
    assert np.array_equal(to_numpy(first), to_numpy(second)) and w.list_ctx() == [main, cpu(1)]
    grads = w.list_grad()
    assert [to_numpy(g).sum() for g in grads] == [0, 0] and to_numpy(grads[0]).shape == (8, 5)
    w.set_data(np.full((8, 5), 0.25))
    assert all(np.all(to_numpy(d) == 0.25) for d in w.list_data())
    net.cast("float16")
    assert all(to_numpy(d).dtype == np.float16 and np.all(to_numpy(d) == 0.25) for d in w.list_data())
    net.collect_params().reset_ctx(cpu(2))
    assert w.list_ctx() == [cpu(2)] and isinstance(w.data(), np.ndarray) and np.all(w.data() == 0.25)
