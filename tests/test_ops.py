"""The layers' array operations under any hyperparameters: a right answer or a GpuInitError.

Hypothesis draws layer arguments (including zeros, negatives and absurd strides and dilations)
and input shapes (including empty ones). Each case must either run and match a plain-NumPy loop
reference, with the shape-only pass predicting the same output shape, or raise a GpuInitError:
never another exception, a crash, or values read from outside the input.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings, strategies as st

import gpuinit
from gpuinit import init, nd, nn
from gpuinit.errors import GpuInitError

ODD = [-10**7, -1, 0, 10**7, 2.5, True, (1, 2, 3), "2", None]


def with_one_bad(data, args: dict) -> dict:
    """``args`` as drawn, or (a third of the time) with one argument replaced by an absurd value:
    most cases run, and every argument meets every kind of bad value."""
    victim = data.draw(st.sampled_from([None] * (2 * len(args)) + list(args)), label="bad argument")
    if victim is not None:
        args = dict(args, **{victim: data.draw(st.sampled_from(ODD), label="bad value")})
    return args


def pair(values):
    return st.one_of(values, st.tuples(values, values))


positive = st.integers(1, 3)
dims = st.one_of(st.integers(1, 7), st.integers(0, 7))


def reference_conv(x, w, b, stride, pad, dil, groups, channels=None):
    """The convolution by its definition, in float64: for each output channel and kernel tap, that
    tap's input pixel at every output position. Only the output ``channels`` listed, if given
    (``channels=10**7`` is a valid layer: its reference is checked on a few channels)."""
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad[0], pad[0]), (pad[1], pad[1])))
    oh = (h + 2 * pad[0] - dil[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (wd + 2 * pad[1] - dil[1] * (kw - 1) - 1) // stride[1] + 1
    channels = range(o) if channels is None else channels
    out = np.zeros((n, len(channels), oh, ow))
    if out.size == 0:  # (an empty batch with padding=10**7 has 4e14 empty windows)
        return out
    og = o // groups
    for k, oc in enumerate(channels):
        g = oc // og
        for ci in range(cg):
            for a in range(kh):
                for bb in range(kw):
                    r, q = a * dil[0], bb * dil[1]
                    taps = xp[:, g * cg + ci, r:r + stride[0] * (oh - 1) + 1:stride[0],
                              q:q + stride[1] * (ow - 1) + 1:stride[1]]
                    out[:, k] += taps * float(w[oc, ci, a, bb])
        out[:, k] += float(b[oc]) if b is not None else 0.0
    return out


def reference_pool(x, kind, size, stride, pad, count_include_pad):
    n, c, h, w = x.shape
    oh = (h + 2 * pad[0] - size[0]) // stride[0] + 1
    ow = (w + 2 * pad[1] - size[1]) // stride[1] + 1
    out = np.zeros((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            rows = [r for r in range(i * stride[0] - pad[0], i * stride[0] - pad[0] + size[0])]
            cols = [q for q in range(j * stride[1] - pad[1], j * stride[1] - pad[1] + size[1])]
            inside = [(r, q) for r in rows for q in cols if 0 <= r < h and 0 <= q < w]
            values = np.stack([x[:, :, r, q] for r, q in inside], axis=-1)
            if kind == "max":
                out[:, :, i, j] = values.max(axis=-1)
            else:
                count = size[0] * size[1] if count_include_pad else len(inside)
                out[:, :, i, j] = values.sum(axis=-1) / count
    return out


def as_pair(v):
    return (int(v), int(v)) if not isinstance(v, tuple) else tuple(int(i) for i in v)


def run_or_refuse(make, x):
    """``(layer, output)`` or None if gpuinit refused (with a GpuInitError) at any point."""
    try:
        layer = make()
        layer.initialize(init=init.Normal(1.0), device="cpu", seed=0)
        planned = gpuinit.plan(make(), tuple(x.shape)).output_shape
        y = layer(x)
    except GpuInitError as exc:
        event(f"refused: {type(exc).__name__}")
        return None
    event("ran")
    assert tuple(y.shape) == planned  # the shape-only pass predicts the real output
    return layer, y


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), n=st.integers(0, 2), c=dims, h=dims, w=dims)
def test_conv2d_is_right_or_refuses(data, n, c, h, w):
    args = with_one_bad(data, dict(
        channels=data.draw(st.sampled_from([1, 2, 4])), kernel_size=data.draw(pair(positive)),
        strides=data.draw(pair(positive)), padding=data.draw(pair(st.integers(0, 2))),
        dilation=data.draw(pair(positive)), groups=data.draw(st.sampled_from([1, 1, 2])),
        use_bias=data.draw(st.booleans()), in_channels=data.draw(st.sampled_from([0, c]))))
    x = np.random.default_rng(0).standard_normal((n, c, h, w)).astype(np.float32)
    done = run_or_refuse(lambda: nn.Conv2D(**args), x)
    if done is None:
        return
    layer, y = done
    o = layer.weight.shape[0]
    channels = None if o <= 64 else sorted({0, 1, o // 2, o - 2, o - 1})
    bias = layer.bias.data() if args["use_bias"] else None
    expected = reference_conv(x.astype(np.float64), layer.weight.data(), bias,
                              as_pair(args["strides"]), as_pair(args["padding"]), as_pair(args["dilation"]),
                              args["groups"], channels)
    got = y if channels is None else y[:, channels]
    assert y.shape[:2] == (n, o)
    assert got.shape == expected.shape
    assert np.allclose(got, expected, atol=1e-4, rtol=1e-4)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), n=st.integers(0, 2), c=dims, h=dims, w=dims, kind=st.sampled_from(["max", "avg"]))
def test_pool2d_is_right_or_refuses(data, n, c, h, w, kind):
    args = with_one_bad(data, dict(
        pool_size=data.draw(pair(positive)), strides=data.draw(st.one_of(st.none(), pair(positive))),
        padding=data.draw(pair(st.integers(0, 1))), count_include_pad=data.draw(st.booleans())))
    x = np.random.default_rng(1).standard_normal((n, c, h, w)).astype(np.float32)
    layer_type = nn.MaxPool2D if kind == "max" else nn.AvgPool2D
    done = run_or_refuse(lambda: layer_type(**args), x)
    if done is None:
        return
    _, y = done
    strides = args["strides"] if args["strides"] is not None else args["pool_size"]
    expected = reference_pool(x.astype(np.float64), kind, as_pair(args["pool_size"]), as_pair(strides),
                              as_pair(args["padding"]), args["count_include_pad"])
    assert y.shape == expected.shape
    assert np.allclose(y, expected, atol=1e-5)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), shape=st.lists(st.integers(0, 4), min_size=0, max_size=4))
def test_dense_is_right_or_refuses(data, shape):
    args = with_one_bad(data, dict(units=data.draw(positive), in_units=data.draw(st.integers(0, 5)),
                                   flatten=data.draw(st.booleans()), use_bias=data.draw(st.booleans())))
    x = np.random.default_rng(2).standard_normal(shape).astype(np.float32)
    done = run_or_refuse(lambda: nn.Dense(**args), x)
    if done is None:
        return
    layer, y = done
    x2 = x.reshape(x.shape[0], -1) if args["flatten"] and x.ndim != 2 else x
    expected = x2.astype(np.float64) @ layer.weight.data().T.astype(np.float64)
    if args["use_bias"]:
        expected += layer.bias.data()
    assert np.allclose(y, expected, atol=1e-4, rtol=1e-4)


@settings(max_examples=100, deadline=None)
@given(indices=st.lists(st.one_of(st.integers(-3, 12), st.floats(-2, 12), st.just(float("nan"))),
                       min_size=1, max_size=6))
def test_embedding_looks_up_or_refuses(indices):
    x = np.array(indices)
    layer = nn.Embedding(10, 3)
    layer.initialize(device="cpu", seed=0)
    try:
        y = layer(x)
    except GpuInitError:
        assert not (np.all(x == np.floor(x)) and x.min() >= 0 and x.max() < 10)
        return
    assert np.array_equal(y, layer.weight.data()[x.astype(np.int64)])


def test_windows_never_reach_outside_the_input():
    """The issue's crash: huge strides with a negative dilation on a 1x1 input were handed to
    as_strided. They are refused now, before any array is touched."""
    with pytest.raises(GpuInitError, match="dilation"):
        nd.conv2d(np.zeros((1, 1, 1, 1), np.float32), np.ones((2, 1, 1, 1), np.float32),
                  stride=10**7, dilation=-10**7)
    conv = nn.Conv2D(2, 1, strides=10**7, in_channels=1)  # a huge stride alone is fine: one window
    conv.initialize(device="cpu", seed=0)
    y = conv(np.full((1, 1, 1, 1), 2.0, np.float32))
    assert y.shape == (1, 2, 1, 1) and np.allclose(y[0, :, 0, 0], 2.0 * conv.weight.data()[:, 0, 0, 0])
