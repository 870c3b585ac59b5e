"""Gluon 1.x's InstanceNorm, GroupNorm and ReflectionPad2D: formulas checked one group or channel
at a time, MXNet's parameter shapes, and bad arguments refused."""

import numpy as np
import pytest

from gpuinit import init, nd, nn
from gpuinit.backend import to_numpy
from gpuinit.errors import ArgumentError, ShapeError


def normalize(v, eps):
    return (v - v.mean()) / np.sqrt(v.var() + eps)


def test_instance_norm_per_sample_and_channel(device):
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5))
    layer = nn.InstanceNorm(scale=True, gamma_initializer=init.Constant([1.0, 2.0, 3.0]),
                            beta_initializer=init.Constant([0.5, 0.0, -1.0]))
    layer.initialize(device=device, seed=0)
    y = to_numpy(layer(nd.array(x, device=device, dtype="float32")))
    for n in range(2):
        for c in range(3):
            expected = normalize(x[n, c], 1e-5) * (c + 1) + [0.5, 0.0, -1.0][c]
            assert np.allclose(y[n, c], expected, atol=1e-4)
    assert layer.gamma.shape == (3,) and layer.beta.grad_req == "write"
    assert nn.InstanceNorm().gamma.grad_req == "null"  # scale=False by default, as in Gluon


def test_instance_norm_on_another_axis():
    x = np.random.default_rng(1).standard_normal((2, 5, 3)).astype(np.float32)
    layer = nn.InstanceNorm(axis=2)
    layer.initialize(seed=0)
    y = to_numpy(layer(nd.array(x)))
    assert layer.gamma.shape == (3,)
    assert np.allclose(y[1, :, 2], normalize(x[1, :, 2].astype(np.float64), 1e-5), atol=1e-4)


@pytest.mark.parametrize("groups", [1, 2, 5])
def test_group_norm_per_group(device, groups):
    x = np.random.default_rng(groups).standard_normal((2, 10, 3, 3))
    gamma = np.arange(1.0, groups + 1)
    layer = nn.GroupNorm(num_groups=groups, gamma_initializer=init.Constant(gamma))
    layer.initialize(device=device, seed=0)
    y = to_numpy(layer(nd.array(x, device=device, dtype="float32")))
    assert layer.gamma.shape == (groups,) and layer.beta.shape == (groups,)  # Gluon 1.x: one per group
    per = 10 // groups
    for n in range(2):
        for g in range(groups):
            block = x[n, g * per:(g + 1) * per]
            assert np.allclose(y[n, g * per:(g + 1) * per], normalize(block, 1e-5) * gamma[g], atol=1e-4)


def test_group_norm_refuses_channels_it_cannot_split():
    layer = nn.GroupNorm(num_groups=3)
    layer.initialize(seed=0)
    with pytest.raises(ShapeError, match="num_groups=3"):
        layer(nd.ones((1, 4, 2)))


def test_reflection_pad():
    x = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    y = to_numpy(nn.ReflectionPad2D(2)(nd.array(x)))
    assert y.shape == (2, 3, 8, 9)
    assert np.array_equal(y, np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)), mode="reflect"))
    assert y[0, 0, 0, 0] == x[0, 0, 2, 2]  # a reflection, not an edge copy
    z = to_numpy(nn.ReflectionPad2D((0, 0, 0, 0, 1, 0, 0, 3))(nd.array(x)))
    assert z.shape == (2, 3, 5, 8)
    with pytest.raises(ShapeError, match="smaller than its axis"):
        nn.ReflectionPad2D(4)(nd.array(x))


def test_the_new_layers_defer_and_plan():
    net = nn.Sequential()
    net.add(nn.Conv2D(4, 3), nn.InstanceNorm(), nn.GroupNorm(2), nn.ReflectionPad2D(1), nn.Flatten(), nn.Dense(2))
    net.initialize(seed=0)
    assert net(nd.ones((1, 3, 6, 6))).shape == (1, 2) and net[1].gamma.shape == (4,)
    assert net[5].weight.shape == (2, 4 * 6 * 6)


@pytest.mark.parametrize("make,error,words", [
    (lambda: nn.GroupNorm(num_groups=0), ArgumentError, ("GroupNorm", "num_groups", "0")),
    (lambda: nn.GroupNorm(epsilon=0), ArgumentError, ("GroupNorm", "epsilon")),
    (lambda: nn.InstanceNorm(epsilon=-1), ArgumentError, ("InstanceNorm", "epsilon")),
    (lambda: nn.InstanceNorm(scale=1), TypeError, ("scale", "1")),
    (lambda: nn.ReflectionPad2D(-1), ArgumentError, ("ReflectionPad2D", "padding", "-1")),
    (lambda: nn.ReflectionPad2D((1, 1)), ArgumentError, ("ReflectionPad2D", "padding", "tuple of 8")),
])
def test_bad_arguments_are_refused_clearly(make, error, words):
    with pytest.raises(error) as info:
        make()
    for word in words:
        assert word in str(info.value)
