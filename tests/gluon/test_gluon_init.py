"""Gluon's Bilinear, Constant(array) and Initializer.dumps(): MXNet's numbers and JSON, on every
path a fill takes (initialize, a forward's materialization, shards, direct hook calls)."""

import json

import numpy as np
import pytest

import gpuinit
from gpuinit import init, nd, nn, store
from gpuinit.backend import to_numpy
from gpuinit.errors import InitializerError
from gpuinit.init.bilinear import bilinear_kernel


def loop_bilinear(h, w):
    """MXNet's description, one tap at a time: factor ceil(n/2), centre (2f - 1 - f % 2) / 2f."""
    out = np.zeros((h, w))
    for y in range(h):
        for x in range(w):
            fy, fx = np.ceil(h / 2), np.ceil(w / 2)
            cy, cx = (2 * fy - 1 - fy % 2) / (2 * fy), (2 * fx - 1 - fx % 2) / (2 * fx)
            out[y, x] = (1 - abs(x / fx - cx)) * (1 - abs(y / fy - cy))
    return out


@pytest.mark.parametrize("h,w", [(4, 4), (3, 3), (1, 1), (2, 5), (8, 8), (6, 3)])
def test_bilinear_kernel_matches_the_loop(h, w):
    assert np.allclose(bilinear_kernel(h, w), loop_bilinear(h, w), rtol=0, atol=1e-15)


def test_bilinear_as_mxnet_tests_it():
    w = nd.empty((1, 1, 4, 4))
    init.Bilinear()._init_weight(None, w)
    taps = np.array([[1 / 4, 3 / 4, 3 / 4, 1 / 4]])
    assert (taps * taps.T == w.asnumpy()).all()


def test_bilinear_upsampling_layer(device):
    up = nn.Conv2DTranspose(3, 4, strides=2, padding=1, groups=3, in_channels=3, use_bias=False,
                            weight_initializer=init.Bilinear())
    up.initialize(device=device, seed=0)
    x = nd.ones((1, 3, 5, 5), device=device)
    w = to_numpy(up.weight.data())
    assert w.shape == (3, 1, 4, 4) and all(np.array_equal(w[i, 0], bilinear_kernel(4, 4)) for i in range(3))
    y = to_numpy(up(x))
    assert y.shape == (1, 3, 10, 10) and np.allclose(y[:, :, 1:-1, 1:-1], 1.0)  # a constant stays constant
    other = nn.Conv2DTranspose(3, 4, strides=2, padding=1, groups=3, in_channels=3, use_bias=False,
                               weight_initializer="bilinear")
    other.initialize(device=device, seed=99)  # deterministic: no seed changes it
    assert np.array_equal(to_numpy(other.weight.data()), w)


def test_bilinear_refuses_vectors():
    p = gpuinit.Parameter("v", shape=(4,), init=init.Bilinear())
    with pytest.raises(InitializerError, match="at least 2 dimensions"):
        p.initialize(seed=0)
    assert not p.initialized


def test_constant_arrays_fill_and_broadcast(device):
    full = np.arange(6, dtype=np.float64).reshape(3, 2)
    dense = nn.Dense(3, in_units=2, weight_initializer=init.Constant(nd.array(full)),
                     bias_initializer=init.Constant([7, 8, 9]))
    dense.initialize(device=device, seed=0)
    assert np.array_equal(to_numpy(dense.weight.data()), full) and to_numpy(dense.bias.data()).tolist() == [7, 8, 9]
    row = nn.Dense(3, in_units=2, weight_initializer=init.Constant(np.array([1.5, -2.0])))
    row.initialize(device=device, seed=0)
    assert np.array_equal(to_numpy(row.weight.data()), np.tile([1.5, -2.0], (3, 1)))
    # as the global initializer, at the first forward (deferred), for every parameter it fits
    net = nn.Sequential()
    net.add(nn.Dense(4, use_bias=False), nn.Dense(4, use_bias=False))
    net.initialize(init.Constant(np.full((1, 4), 0.5)), device=device, seed=0)
    net(nd.ones((2, 4), device=device))
    assert all(np.array_equal(to_numpy(p.data()), np.full((4, 4), 0.5)) for p in net.collect_params().values())


def test_constant_array_that_does_not_fit_is_refused_before_allocating():
    before = store.live_bytes()
    layer = nn.Dense(3, in_units=2, weight_initializer=init.Constant(np.ones(3)))
    with pytest.raises(InitializerError) as info:
        layer.initialize(seed=0)
    assert "(3,)" in str(info.value) and "(3, 2)" in str(info.value) and "broadcast" in str(info.value)
    assert not layer.weight.initialized and not layer.bias.initialized and store.live_bytes() == before


def test_constant_array_overflowing_the_dtype_is_refused():
    layer = nn.Dense(2, in_units=2, dtype="float16", weight_initializer=init.Constant(np.full((2, 2), 1e6)))
    with pytest.raises(InitializerError, match="float16"):
        layer.initialize(seed=0)
    assert not layer.weight.initialized


@pytest.mark.parametrize("value", [np.array([1.0, np.nan]), [[1.0], ["x"]], np.array([1 + 2j])])
def test_constant_refuses_values_that_are_not_finite_reals(value):
    with pytest.raises(InitializerError, match="Constant"):
        init.Constant(value)


def test_constant_array_shards_equal_the_whole():
    def build():
        net = nn.Sequential()
        net.add(nn.Dense(5, in_units=3, weight_initializer=init.Constant(np.arange(15.0).reshape(5, 3))))
        return net
    whole = build()
    whole.initialize(seed=1)
    expected = to_numpy(whole[0].weight.data()).ravel()
    parts = []
    for rank in range(4):
        net = build()
        net.initialize(seed=1, defer=True)
        parts.append(to_numpy(gpuinit.shard(net, rank, 4)["0.weight"]))
    assert np.array_equal(np.concatenate(parts), expected)


def test_constant_fills_take_no_random_numbers():
    """A deterministic fill leaves the stream where it was: a custom initializer's later draw is
    the same as if the constant had not been filled."""
    seen = []

    class ConstantThenDraw(init.Initializer):
        def _init_weight(self, name, arr):
            init.Constant(np.ones(arr.shape))._init_weight(name, arr)
            seen.append(to_numpy(nd.random.uniform(shape=(4,))))

    class DrawOnly(init.Initializer):
        def _init_weight(self, name, arr):
            seen.append(to_numpy(nd.random.uniform(shape=(4,))))

    for initializer in (ConstantThenDraw(), DrawOnly()):
        gpuinit.Parameter("w", shape=(2, 2), role="weight").initialize(initializer, seed=4)
    assert np.array_equal(seen[0], seen[1])


def test_dumps_is_mxnets_json():
    assert init.Constant(1).dumps() == '["constant", {"value": 1}]'
    assert init.Xavier().dumps() == '["xavier", {"rnd_type": "uniform", "factor_type": "avg", "magnitude": 3}]'
    assert json.loads(init.Xavier("gaussian", "in", 2).dumps()) == ["xavier", {"rnd_type": "gaussian",
                                                                               "factor_type": "in", "magnitude": 2}]
    assert json.loads(init.MSRAPrelu().dumps()) == ["msraprelu", {"factor_type": "avg", "slope": 0.25}]
    assert json.loads(init.Uniform(0.1).dumps()) == ["uniform", {"scale": 0.1}]
    assert json.loads(init.Normal(0.5).dumps()) == ["normal", {"sigma": 0.5}]
    assert init.Zero().dumps() == '["zero", {}]' and init.Bilinear().dumps() == '["bilinear", {}]'
    shape = (2, 3)
    for value in (nd.ones(shape), np.ones(shape)):  # MXNet's test: the JSON of the name and _kwargs
        c = init.Constant(value)
        assert c.dumps() == json.dumps([type(c).__name__.lower(), c._kwargs])
        assert json.loads(c.dumps())[1]["value"] == [[1.0] * 3] * 2
    mixed = json.loads(init.Mixed([".*bias", ".*"], [init.Zero(), init.Uniform(0.2)]).dumps())
    assert mixed == ["mixed", {"patterns": [".*bias", ".*"],
                               "initializers": [["zero", {}], ["uniform", {"scale": 0.2}]]}]


@pytest.mark.parametrize("initializer", [init.Xavier("gaussian", "out", 2), init.MSRAPrelu("in", 0.1),
                                         init.Uniform(0.3), init.Normal(2.0), init.Constant(3),
                                         init.Constant(np.arange(4.0)), init.Bilinear(), init.One()])
def test_create_reads_dumps_back(initializer):
    again = init.create(initializer.dumps())
    assert type(again) is type(initializer) and again.dumps() == initializer.dumps()


def test_create_refuses_bad_json_clearly():
    for text in ('["nosuch", {}]', '["xavier", {"bogus": 1}]', "[1, 2, 3]", "[not json"):
        with pytest.raises(InitializerError, match="JSON"):
            init.create(text)
