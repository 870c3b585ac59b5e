"""ParameterDict and Block.params as Gluon 1.x users rely on them."""

import re

import numpy as np
import pytest

import gpuinit
from gpuinit import Parameter, ParameterDict, init, nd, nn
from gpuinit.errors import ArgumentError


def test_a_built_in_layer_lists_its_own_parameters_in_params():
    net = nn.Sequential()
    net.add(nn.Dense(256, activation="relu"), nn.Dense(10))
    first = net[0]
    assert list(first.params) == [first.weight.name, first.bias.name]
    assert first.params[f"{first.prefix}weight"] is first.weight
    assert len(net.params) == 0  # a container's own dictionary holds only its own parameters
    bn = nn.BatchNorm()
    assert [n[len(bn.prefix):] for n in bn.params] == ["gamma", "beta", "running_mean", "running_var"]


def test_params_get_makes_once_with_the_prefix_and_returns_it_after():
    params = ParameterDict("net_")
    w0 = params.get("w0", shape=(10, 10))
    params.get("w1", shape=(10, 10))
    assert list(params.keys()) == ["net_w0", "net_w1"]
    assert params.get("w0") is w0 and params.get("w0", shape=(10, 0)) is w0
    with pytest.raises(ArgumentError, match="dtype"):
        params.get("w0", dtype="float64")


def test_get_fills_in_unknown_dimensions_of_an_existing_parameter():
    params = ParameterDict("p_")
    w = params.get("w", shape=(4, 0))
    assert params.get("w", shape=(0, 3)) is w and w.shape == (4, 3)


def test_a_dictionary_made_with_shared_returns_the_shared_parameters():
    base = ParameterDict("blk_")
    w = base.get("weight", shape=(2, 2))
    other = ParameterDict("blk_", shared=base)
    assert other.get("weight") is w and list(other) == ["blk_weight"]
    assert other.get("fresh", shape=(1,)) is not None and "blk_fresh" not in base


def test_custom_layer_parameters_initialize_with_the_global_initializer():
    class MyDense(nn.Block):
        def __init__(self, units, in_units, **kwargs):
            super().__init__(**kwargs)
            self.weight = self.params.get("weight", shape=(in_units, units))
            self.bias = self.params.get("bias", shape=(units,))

        def forward(self, x):
            return nd.relu(nd.dot(x, self.weight.data()) + self.bias.data())

    dense = MyDense(units=3, in_units=5)
    assert list(dense.params) == [f"{dense.prefix}weight", f"{dense.prefix}bias"]
    dense.initialize(init=init.Uniform(0.5), device="cpu", seed=0)
    for p in (dense.weight, dense.bias):  # Gluon fills both through the initializer's weight rule
        data = p.data()
        assert np.all(np.abs(data) <= 0.5) and np.count_nonzero(data) == data.size
    assert dense(np.ones((2, 5), np.float32)).shape == (2, 3)


def test_get_constant_holds_its_value_and_is_not_trained():
    params = ParameterDict("c_")
    value = np.asarray([[1, 2], [3, 4]])
    const = params.get_constant("const", value)
    assert params.get_constant("const") is const and params.get_constant("const", value) is const
    assert const.grad_req == "null" and const.dtype == np.float32  # integers become float32, as in MXNet
    params.initialize(device="cpu", init=init.Uniform(9.0), seed=1)
    assert np.array_equal(const.data(), value)
    with pytest.raises(KeyError, match="c_missing"):
        params.get_constant("missing")
    with pytest.raises(ArgumentError, match="another value"):
        params.get_constant("const", value + 1)


def test_update_adds_and_refuses_a_different_parameter_of_the_same_name():
    a, b = ParameterDict("a_"), ParameterDict("b_")
    wa, wb = a.get("w", shape=(1,)), b.get("w", shape=(1,))
    a.update(b)
    assert list(a) == ["a_w", "b_w"] and a["b_w"] is wb
    a.update(b)  # the same parameters again: nothing to do
    with pytest.raises(ArgumentError, match="different parameter"):
        a.update({"a_w": Parameter("other", shape=(1,))})
    assert a["a_w"] is wa


def test_setattr_sets_on_every_parameter():
    net = nn.Sequential()
    net.add(nn.Dense(4, in_units=3), nn.Dense(2, in_units=4))
    params = net.collect_params()
    params.setattr("grad_req", "null")
    assert {p.grad_req for p in params.values()} == {"null"}
    params.setattr("lr_mult", 0.5)
    assert {p.lr_mult for p in params.values()} == {0.5}


def test_collect_params_selects_by_regular_expression():
    net = nn.Sequential(prefix="test_")
    with net.name_scope():
        net.add(nn.Conv2D(10, 3), nn.Dense(10, activation="relu"))
    assert set(net.collect_params()) == {"test_conv0_weight", "test_conv0_bias", "test_dense0_weight",
                                         "test_dense0_bias"}
    assert set(net.collect_params(".*weight")) == {"test_conv0_weight", "test_dense0_weight"}
    assert set(net.collect_params("test_conv0_bias|test_dense0_bias")) == {"test_conv0_bias", "test_dense0_bias"}


def test_collected_parameters_print_like_gluon():
    class Net(nn.Block):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            with self.name_scope():
                self.dense0 = nn.Dense(10, in_units=5, use_bias=False)

    lines = str(Net(prefix="net1_").collect_params()).splitlines()
    assert lines[0] == "net1_ (" and lines[2] == ")"
    assert re.fullmatch(r"\s+Parameter net1_dense0_weight \(shape=\(10, 5\), dtype=float32\)", lines[1])
    assert str(ParameterDict()).splitlines()[0] == "("


def test_the_collected_paths_key_the_streams_as_before():
    net = nn.Sequential()
    net.add(nn.Dense(3, in_units=2), nn.Dense(1, in_units=3))
    net.initialize(device="cpu", seed=4)
    assert [p.path for p in net.collect_params().values()] == ["0.weight", "0.bias", "1.weight", "1.bias"]
    assert net[1].weight.rng_key == gpuinit.streams.derive_key(4, "1.weight")


def test_setattr_dtype_casts_the_data():
    net = nn.Dense(2, in_units=3)
    net.initialize(device="cpu", seed=5)
    net.collect_params().setattr("dtype", "float64")
    assert net.weight.dtype == np.float64 and net.weight.data().dtype == np.float64


def test_two_parameters_of_one_name_in_a_network_are_refused():
    net = nn.Sequential()
    net.add(nn.Dense(2, prefix="same_"), nn.Dense(2, prefix="same_"))
    with pytest.raises(ArgumentError, match=r"'same_weight'.*'0.weight'.*'1.weight'"):
        net.collect_params()
    with pytest.raises(ArgumentError):
        net.initialize(device="cpu")
    assert not net[0].weight.requested and not net[1].weight.requested


def test_a_refused_get_from_a_shared_dictionary_keeps_nothing():
    base = ParameterDict("blk_")
    base.get("weight", shape=(2, 2))
    other = ParameterDict("blk_", shared=base)
    with pytest.raises(ArgumentError):
        other.get("weight", shape=(3, 3))
    assert len(other) == 0
    assert other.get("weight") is base["blk_weight"] and len(other) == 1
