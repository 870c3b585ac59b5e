"""Gluon's parametric and named activation layers, and Lambda/HybridLambda."""

import numpy as np
import pytest

from gpuinit import init, nd, nn
from gpuinit.errors import ArgumentError, ShapeError

X = nd.array([[-2.0, -0.1, 0.0, 0.1, 3.0]])


def test_leaky_elu_selu_swish_gelu_formulas():
    x = X.asnumpy().astype(np.float64)
    assert np.allclose(nn.LeakyReLU(0.1)(X), np.where(x >= 0, x, 0.1 * x))
    assert np.allclose(nn.ELU(0.5)(X), np.where(x > 0, x, 0.5 * np.expm1(x)))
    scale, alpha = 1.0507009873554805, 1.6732632423543772
    assert np.allclose(nn.SELU()(X), scale * np.where(x >= 0, x, alpha * np.expm1(x)))
    assert np.array_equal(nn.Swish()(X), X * nd.sigmoid(X))  # exactly the book's formula
    assert np.allclose(nn.Swish(2.0)(X), x / (1 + np.exp(-2 * x)), atol=1e-6)
    tanh = np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3))
    assert np.allclose(nn.GELU()(X), 0.5 * x * (1 + tanh), atol=1e-6)


def test_prelu_slopes_per_channel_or_shared():
    x = nd.array([-0.1, 0.1] * 3).reshape((1, 3, 2))
    shared = nn.PReLU()
    shared.initialize(seed=0)
    assert shared.alpha.shape == (1,) and np.allclose(shared(x), np.where(x >= 0, x, 0.25 * x))
    per_channel = nn.PReLU(alpha_initializer=init.Constant(nd.array([0.1, 0.25, 0.5])), in_channels=3)
    per_channel.initialize(init.Xavier(), seed=0)  # its own initializer wins over the global one
    assert np.allclose(per_channel(x)[0], [[-0.01, 0.1], [-0.025, 0.1], [-0.05, 0.1]])
    with pytest.raises(ShapeError, match="slopes"):
        per_channel(nd.ones((1, 4, 2)))


def test_activation_layers_defer_with_the_network():
    net = nn.Sequential()
    net.add(nn.Dense(6), nn.PReLU(), nn.Dense(4), nn.LeakyReLU(0.2), nn.ELU(), nn.SELU(), nn.Swish(), nn.GELU())
    net.initialize(seed=0)
    assert net(nd.ones((2, 3))).shape == (2, 4)


def test_lambda_and_hybrid_lambda():
    x = nd.random.uniform(shape=(2, 3, 5, 7))
    reference = nn.HybridSequential()
    reference.add(nn.Activation("tanh"), nn.LeakyReLU(0.1))
    hybrid = nn.HybridSequential()
    hybrid.add(nn.HybridLambda("tanh"), nn.HybridLambda(lambda F, x, *args: F.LeakyReLU(x, *args, slope=0.1)))
    plain = nn.Sequential()
    plain.add(nn.Lambda("tanh"), nn.Lambda(lambda x: nd.LeakyReLU(x, slope=0.1)))
    for net in (reference, hybrid, plain):
        net.initialize(seed=0)
    assert np.allclose(hybrid(x), reference(x)) and np.allclose(plain(x), reference(x))


@pytest.mark.parametrize("make,error,words", [
    (lambda: nn.LeakyReLU(-0.1), ArgumentError, ("LeakyReLU", "alpha", "-0.1")),
    (lambda: nn.LeakyReLU("a"), TypeError, ("alpha", "'a'")),
    (lambda: nn.PReLU(in_channels=0), ArgumentError, ("PReLU", "in_channels")),
    (lambda: nn.PReLU(alpha_initializer="nosuch"), ArgumentError, ("alpha_initializer", "nosuch")),
    (lambda: nn.ELU(float("nan")), ArgumentError, ("ELU", "alpha")),
    (lambda: nn.Lambda("nosuch"), ArgumentError, ("Lambda", "'nosuch'")),
    (lambda: nn.HybridLambda(3), TypeError, ("HybridLambda", "callable")),
])
def test_bad_arguments_are_refused_clearly(make, error, words):
    with pytest.raises(error) as info:
        make()
    for word in words:
        assert word in str(info.value)
