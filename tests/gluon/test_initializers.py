"""Which initializer fills what, as in Gluon 1.x: an explicit ``init`` wins whatever the role."""

import numpy as np
import pytest

from gpuinit import Parameter, init, nn
from gpuinit.errors import InitializerError


def dense(**kwargs):
    layer = nn.Dense(4, in_units=3, **kwargs)
    layer.initialize(device="cpu", seed=0)
    return layer


def test_parameter_initialize_with_init_fills_a_bias_too():
    layer = dense()
    assert np.all(layer.bias.data() == 0)
    layer.bias.initialize(init=init.Constant(3), force_reinit=True)
    assert np.all(layer.bias.data() == 3)
    layer.bias.initialize(init=init.Uniform(0.5), force_reinit=True)  # random, not the bias rule's zeros
    data = layer.bias.data()
    assert np.count_nonzero(data) == 4 and np.all(np.abs(data) <= 0.5)


def test_an_explicit_init_wins_over_the_parameters_own():
    layer = dense(weight_initializer="zeros")
    assert np.all(layer.weight.data() == 0)
    layer.weight.initialize(init="ones", force_reinit=True)
    assert np.all(layer.weight.data() == 1)


def test_the_global_initializer_leaves_parameters_with_their_own_initializer_alone():
    layer = nn.Dense(4, in_units=3, weight_initializer=init.Constant(2))
    layer.initialize(init=init.Constant(5), device="cpu")
    assert np.all(layer.weight.data() == 2) and np.all(layer.bias.data() == 0)
    layer.initialize(init=init.Constant(1), force_reinit=True)
    assert np.all(layer.weight.data() == 2) and np.all(layer.bias.data() == 0)


def test_a_custom_initializer_is_called_for_weights_only():
    seen = []

    class MyInit(init.Initializer):
        def _init_weight(self, name, data):
            seen.append((str(name), data.shape))
            data[:] = 7

    net = nn.Sequential()
    net.add(nn.Dense(256, activation="relu"), nn.Dense(10))
    net.initialize(device="cpu")
    net(np.ones((2, 20), np.float32))
    net.initialize(MyInit(), force_reinit=True)
    assert seen == [(net[0].weight.name, (256, 20)), (net[1].weight.name, (10, 256))]
    assert np.all(net[1].weight.data() == 7) and np.all(net[1].bias.data() == 0)


def test_a_standalone_parameter_takes_the_initializer_by_name():
    p = Parameter("weight", shape=(10, 10))
    p.initialize(init="xavier", ctx="cpu")
    bound = np.sqrt(3 / 10)  # Xavier, uniform, average of fans, magnitude 3
    assert np.all(np.abs(p.data()) <= bound) and p.data().std() > bound / 4


def test_what_gluon_refuses_is_refused_with_its_reason():
    layer = dense()
    before = layer.bias.data().copy()
    with pytest.raises(InitializerError, match="at least 2 dimensions"):
        layer.bias.initialize(init=init.Xavier(), force_reinit=True)  # Xavier cannot fill a vector
    assert np.array_equal(layer.bias.data(), before)


def test_orthogonal_fills_a_vector_as_gluon_does():
    p = Parameter("v", shape=(5,))
    p.initialize(init=init.Orthogonal(scale=2.0), device="cpu", seed=0)
    assert np.isclose(np.linalg.norm(p.data()), 2.0)  # a unit vector (an n x 1 orthonormal matrix), scaled
