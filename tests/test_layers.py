"""Layers compute real results, infer their shapes, and name themselves as Gluon 1.x does."""

import numpy as np
import pytest

from gpuinit import init, nd, nn
from gpuinit.backend import to_numpy
from gpuinit.errors import ArgumentError


def naive_conv(x, w, b, stride, pad, dil, groups):
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh = (h + 2 * pad - dil * (kh - 1) - 1) // stride + 1
    ow = (wd + 2 * pad - dil * (kw - 1) - 1) // stride + 1
    out = np.zeros((n, o, oh, ow))
    og = o // groups
    for oc in range(o):
        g = oc // og
        for i in range(oh):
            for j in range(ow):
                patch = xp[:, g * cg:(g + 1) * cg, i * stride:i * stride + dil * kh:dil,
                           j * stride:j * stride + dil * kw:dil]
                out[:, oc, i, j] = (patch * w[oc]).sum(axis=(1, 2, 3)) + b[oc]
    return out


@pytest.mark.parametrize("stride,pad,dil,groups", [(1, 0, 1, 1), (2, 1, 1, 1), (1, 2, 2, 2), (2, 1, 1, 4)])
def test_conv2d_matches_a_naive_loop(device, stride, pad, dil, groups):
    conv = nn.Conv2D(8, 3, strides=stride, padding=pad, dilation=dil, groups=groups)
    conv.initialize(init=init.Normal(1.0), device=device, seed=1)
    x = nd.random.normal(shape=(2, 4, 9, 8), device=device)
    conv(x)
    conv.bias.set_data(nd.random.normal(shape=(8,), device=device))
    y = to_numpy(conv(x))
    expected = naive_conv(to_numpy(x).astype(np.float64), to_numpy(conv.weight.data()).astype(np.float64),
                          to_numpy(conv.bias.data()).astype(np.float64), stride, pad, dil, groups)
    assert y.shape == expected.shape and np.allclose(y, expected, atol=1e-4)
    assert conv.weight.shape == (8, 4 // groups, 3, 3)


def test_pooling(device):
    x = nd.array(np.arange(2 * 3 * 6 * 6, dtype=np.float32).reshape(2, 3, 6, 6), device=device)
    xn = to_numpy(x)
    assert np.array_equal(to_numpy(nn.MaxPool2D(2)(x)), xn.reshape(2, 3, 3, 2, 3, 2).max(axis=(3, 5)))
    assert np.allclose(to_numpy(nn.AvgPool2D(2)(x)), xn.reshape(2, 3, 3, 2, 3, 2).mean(axis=(3, 5)))
    assert to_numpy(nn.MaxPool2D(3, 2, 1)(x)).shape == (2, 3, 3, 3)
    padded = to_numpy(nn.AvgPool2D(3, 1, 1, count_include_pad=False)(x))
    assert np.isclose(padded[0, 0, 0, 0], xn[0, 0, :2, :2].mean())
    assert np.allclose(to_numpy(nn.GlobalAvgPool2D()(x)), xn.mean(axis=(2, 3), keepdims=True))
    assert np.allclose(to_numpy(nn.GlobalMaxPool2D()(x)), xn.max(axis=(2, 3), keepdims=True))


def test_batchnorm_and_layernorm(device):
    x = nd.random.normal(2.0, 3.0, shape=(4, 5, 3, 3), device=device)
    bn = nn.BatchNorm()
    bn.initialize(device=device)
    y = bn(x)
    assert bn.gamma.shape == (5,) and np.allclose(to_numpy(y), to_numpy(x) / np.sqrt(1 + 1e-5), atol=1e-5)
    assert np.all(to_numpy(bn.running_var.data()) == 1) and np.all(to_numpy(bn.running_mean.data()) == 0)
    ln = nn.LayerNorm()
    ln.initialize(device=device)
    z = to_numpy(ln(x))
    assert np.allclose(z.mean(axis=-1), 0, atol=1e-5) and np.allclose(z.std(axis=-1), 1, atol=1e-2)
    rms = nn.RMSNorm()
    rms.initialize(device=device)
    r = to_numpy(rms(x))
    assert np.allclose(np.sqrt((r * r).mean(axis=-1)), 1, atol=1e-3)


def test_embedding_dense_flatten_dropout(device):
    emb = nn.Embedding(10, 4)
    emb.initialize(device=device)  # shape known: immediate
    idx = nd.array(np.array([[1, 2], [3, 9]]), device=device, dtype="int64")
    out = emb(idx)
    assert out.shape == (2, 2, 4)
    assert np.array_equal(to_numpy(out[1, 1]), to_numpy(emb.weight.data()[9]))
    assert nd.array(np.array([1, 2])).dtype == np.int64 and nd.array([1, 2]).dtype == np.float32
    d = nn.Dense(3, flatten=False)
    d.initialize(device=device)
    assert d(out).shape == (2, 2, 3) and d.weight.shape == (3, 4)
    assert nn.Flatten()(out).shape == (2, 8)
    assert nn.Dropout(0.5)(out) is out


@pytest.mark.parametrize("act", ["relu", "sigmoid", "tanh", "softrelu", "softsign", "gelu", "silu"])
def test_activations(act):
    x = np.linspace(-5, 5, 101).astype(np.float32)
    expected = {"relu": np.maximum(x, 0), "sigmoid": 1 / (1 + np.exp(-x)), "tanh": np.tanh(x),
                "softrelu": np.log1p(np.exp(x)), "softsign": x / (1 + np.abs(x)),
                "gelu": 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3))),
                "silu": x / (1 + np.exp(-x))}[act]
    assert np.allclose(nn.Activation(act)(x), expected, atol=1e-6)
    with pytest.raises(ArgumentError, match="unknown activation"):
        nn.Activation("bogus")


def test_user_block_with_deferred_layers(device):
    class MLP(nn.Block):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            with self.name_scope():
                self.hidden = nn.Dense(16, activation="relu")
                self.output = nn.Dense(3)

        def forward(self, x):
            h = self.hidden(x)
            return self.output(nd.concat(h, h * 2, dim=1))

    net = MLP()
    assert net.hidden.weight.name == f"{net.prefix}dense0_weight"
    net.initialize(device=device)
    y = net(nd.random.uniform(shape=(2, 5), device=device))
    assert y.shape == (2, 3) and net.output.weight.shape == (3, 32)
    assert list(net.collect_params()) == [p.name for p in (net.hidden.weight, net.hidden.bias,
                                                            net.output.weight, net.output.bias)]
    assert net.hidden.weight.path == "hidden.weight"


def test_sequential_container():
    net = nn.Sequential()
    net.add(nn.Dense(3), nn.Dense(4), nn.Dense(5))
    assert len(net) == 3 and isinstance(net[1], nn.Dense) and len(net[1:]) == 2
    assert "Dense(None -> 3, linear)" in repr(net)
    params = net.collect_params()
    assert [params.path_of(n) for n in params] == ["0.weight", "0.bias", "1.weight", "1.bias", "2.weight", "2.bias"]


def test_names_count_per_layer_type():
    a, b, c = nn.Dense(1), nn.Conv2D(1, 1), nn.Dense(1)
    na, nc = int(a.name[len("dense"):]), int(c.name[len("dense"):])
    assert nc == na + 1 and b.name.startswith("conv") and a.weight.name == a.prefix + "weight"
