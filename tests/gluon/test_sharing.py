"""Sharing parameters the Gluon 1.x way: ``params=`` at construction, or one Parameter assigned to
two blocks. Tied weights must be one object: collected once, initialized once, one arena slot."""

import numpy as np
import pytest

import gpuinit
from gpuinit import nd, nn, store
from gpuinit.errors import ArgumentError


def tied_net(**init_kwargs):
    net = nn.Sequential()
    shared = nn.Dense(8, activation="relu")
    net.add(nn.Dense(8, activation="relu"), shared, nn.Dense(8, activation="relu", params=shared.params),
            nn.Dense(10))
    net.initialize(device="cpu", **init_kwargs)
    return net


def test_a_layer_built_with_params_uses_the_same_parameter_objects():
    net = tied_net(seed=0)
    assert net[2].weight is net[1].weight and net[2].bias is net[1].bias
    assert net[2].params["%sweight" % net[1].prefix] is net[1].weight
    net(nd.random.uniform(shape=(2, 20)))
    assert net[2].weight.data() is net[1].weight.data()
    net[1].weight.set_data(np.full((8, 8), 0.5))
    assert np.all(net[2].weight.data() == 0.5)  # a change through one layer is seen by the other


def test_tied_parameters_are_collected_once_and_take_one_slot():
    tied, untied = tied_net(seed=1), nn.Sequential()
    untied.add(nn.Dense(8, activation="relu"), nn.Dense(8, activation="relu"), nn.Dense(8, activation="relu"),
               nn.Dense(10))
    untied.initialize(device="cpu", seed=1)
    assert len(tied.collect_params()) == len(untied.collect_params()) - 2
    x = nd.random.uniform(shape=(2, 20))
    before = store.live_bytes()
    tied(x)
    tied_bytes = store.live_bytes() - before
    untied(x)
    untied_bytes = store.live_bytes() - before - tied_bytes
    assert untied_bytes - tied_bytes == store.align(8 * 8 * 4) + store.align(8 * 4)
    assert tied.collect_params().nbytes == untied.collect_params().nbytes - (8 * 8 + 8) * 4


def test_sharing_takes_the_unknown_input_size_from_the_shared_layer():
    emb = nn.Embedding(40, 30)
    out = nn.Dense(40, flatten=False, params=emb.params)  # tied input and output embeddings
    assert out.weight is emb.weight and out.weight.shape == (40, 30)
    net = nn.Sequential()
    net.add(emb, out)
    net.initialize(device="cpu", seed=2)
    y = net(np.array([[1, 2, 3]], np.float32))
    assert y.shape == (1, 3, 40)


def test_a_shared_layer_with_its_own_in_units_fills_in_the_unknown_dimension():
    first = nn.Dense(5)
    second = nn.Dense(5, in_units=7, params=first.params)
    assert first.weight is second.weight and first.weight.shape == (5, 7)


def test_sharing_a_parameter_of_another_shape_is_refused_and_changes_nothing():
    first = nn.Dense(5, in_units=4)
    with pytest.raises(ArgumentError, match=r"\(5, 4\).*\(5, 6\)"):
        nn.Dense(5, in_units=6, params=first.params)
    assert first.weight.shape == (5, 4)


def test_a_whole_network_shares_through_collect_params_and_name_scopes():
    class Net(nn.Block):
        def __init__(self, in_units=0, **kwargs):
            super().__init__(**kwargs)
            with self.name_scope():
                self.dense0 = nn.Dense(5, in_units=in_units)
                self.dense1 = nn.Dense(5, in_units=in_units)

        def forward(self, x):
            return self.dense1(self.dense0(x))

    net1 = Net(prefix="net1_", in_units=5)
    net2 = Net(prefix="net2_", params=net1.collect_params())
    assert net2.dense0.weight is net1.dense0.weight and net2.dense1.bias is net1.dense1.bias
    net1.collect_params().initialize(device="cpu", seed=3)
    y = net2(np.zeros((3, 5), np.float32))  # net2 has nothing of its own to initialize
    assert y.shape == (3, 5) and np.array_equal(y, net1(np.zeros((3, 5), np.float32)))
    # The other way round: the sharing network decides the input size.
    net4 = Net(prefix="net4_")
    net5 = Net(prefix="net5_", in_units=5, params=net4.collect_params())
    assert net4.dense0.weight.shape == (5, 5)
    net4.collect_params().initialize(device="cpu", seed=4)
    assert net5(np.zeros((3, 5), np.float32)).shape == (3, 5)


def test_one_parameter_assigned_to_two_blocks_is_one_parameter():
    class Tied(nn.Block):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.a = nn.Dense(4, in_units=4, use_bias=False)
            self.b = nn.Dense(4, in_units=4, use_bias=False)
            self.b.weight = self.a.weight

        def forward(self, x):
            return self.b(self.a(x))

    net = Tied()
    assert list(net.collect_params()) == [net.a.weight.name]
    assert len(net.b.params) == 0  # b's own weight was replaced: it no longer holds one
    net.initialize(device="cpu", seed=5)
    x = np.eye(4, dtype=np.float32)
    w = net.a.weight.data()
    assert np.allclose(net(x), x @ w.T @ w.T)


def test_a_shared_parameter_is_keyed_by_its_first_place_so_seeds_repeat():
    a = tied_net(seed=6)
    b = tied_net(seed=6)
    x = np.random.default_rng(0).random((2, 20), np.float32)
    assert np.array_equal(a(x), b(x))
    paths = [p.path for p in a.collect_params().values()]
    assert "1.weight" in paths and "2.weight" not in paths


def test_changing_an_attribute_from_a_parameter_to_something_else_is_refused():
    layer = nn.Dense(3)
    with pytest.raises(TypeError, match="weight"):
        layer.weight = (2,)
    block = nn.Block()
    block.a = None
    block.a = 1  # ordinary attributes change freely
    block.c = nn.Block()
    c2 = nn.Block()
    block.c = c2
    assert block.c is c2 and list(block._children.values()) == [c2]
