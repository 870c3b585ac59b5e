"""Gluon's 1-D/3-D and transposed convolutions and pooling: MXNet 1.x shapes, and numbers equal to
plain loops over every output element, for both layouts."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import gpuinit
from gpuinit import init, nd, nn
from gpuinit.backend import to_numpy
from gpuinit.errors import ArgumentError, ShapeError


# --- loop references -------------------------------------------------------------------------------


def loop_conv(x, w, b, stride, pad, dil, groups):
    """Cross-correlation, channels first, any number of spatial axes, one output element at a time."""
    n, c, *size = x.shape
    o, cg, *kernel = w.shape
    k = len(size)
    xp = np.pad(x, ((0, 0), (0, 0)) + tuple((p, p) for p in pad))
    out = [(size[a] + 2 * pad[a] - dil[a] * (kernel[a] - 1) - 1) // stride[a] + 1 for a in range(k)]
    y = np.zeros((n, o, *out))
    og = o // groups
    for oc in range(o):
        g = oc // og
        for pos in np.ndindex(*out):
            acc = np.zeros(n)
            for ci in range(cg):
                for kp in np.ndindex(*kernel):
                    at = tuple(pos[a] * stride[a] + kp[a] * dil[a] for a in range(k))
                    acc += xp[(slice(None), g * cg + ci) + at] * w[(oc, ci) + kp]
            y[(slice(None), oc) + pos] = acc + (b[oc] if b is not None else 0)
    return y


def loop_deconv(x, w, b, stride, pad, dil, groups, out_pad):
    """Transposed convolution by scattering each input element through the kernel."""
    n, c, *size = x.shape
    _, og, *kernel = w.shape
    k = len(size)
    cg = c // groups
    full = [(size[a] - 1) * stride[a] + dil[a] * (kernel[a] - 1) + 1 + out_pad[a] for a in range(k)]
    buf = np.zeros((n, og * groups, *full))
    for ci in range(c):
        g = ci // cg
        for pos in np.ndindex(*size):
            for kp in np.ndindex(*kernel):
                at = tuple(pos[a] * stride[a] + kp[a] * dil[a] for a in range(k))
                for oc in range(og):
                    buf[(slice(None), g * og + oc) + at] += x[(slice(None), ci) + pos] * w[(ci, oc) + kp]
    crop = tuple(slice(pad[a], full[a] - pad[a]) for a in range(k))
    y = buf[(slice(None), slice(None)) + crop]
    return y + (b.reshape((1, -1) + (1,) * k) if b is not None else 0)


def loop_pool(x, kind, size, stride, pad, ceil_mode, include_pad):
    n, c, *dims = x.shape
    k = len(dims)
    if ceil_mode:
        out = [-(-(dims[a] + 2 * pad[a] - size[a]) // stride[a]) + 1 for a in range(k)]
    else:
        out = [(dims[a] + 2 * pad[a] - size[a]) // stride[a] + 1 for a in range(k)]
    y = np.zeros((n, c, *out))
    for pos in np.ndindex(*out):
        lo = [pos[a] * stride[a] - pad[a] for a in range(k)]
        hi = [lo[a] + size[a] for a in range(k)]
        inside = tuple(slice(max(lo[a], 0), min(hi[a], dims[a])) for a in range(k))
        window = x[(slice(None), slice(None)) + inside]
        if window.size == 0:  # a last window of padding alone (ceil_mode)
            y[(slice(None), slice(None)) + pos] = -np.inf if kind == "max" else 0.0
        elif kind == "max":
            y[(slice(None), slice(None)) + pos] = window.max(axis=tuple(range(2, k + 2)))
        else:
            if include_pad:  # the window clipped to the padded input
                count = np.prod([min(hi[a], dims[a] + pad[a]) - lo[a] for a in range(k)])
            else:
                count = np.prod([s.stop - s.start for s in inside])
            y[(slice(None), slice(None)) + pos] = window.sum(axis=tuple(range(2, k + 2))) / count
    return y


def run(layer, x, device="cpu", seed=0):
    layer.initialize(init=init.Normal(1.0), device=device, seed=seed)
    y = layer(nd.array(x, device=device))
    if getattr(layer, "bias", None) is not None:  # give the bias values, so it is checked too
        layer.bias.set_data(nd.random.normal(shape=layer.bias.shape, device=device))
        y = layer(nd.array(x, device=device))
    return to_numpy(y)


def as64(p):
    return to_numpy(p.data()).astype(np.float64) if p is not None else None


# --- MXNet 1.x shapes (inputs and parameter shapes from MXNet's own test_conv/test_deconv) ---------------


@pytest.mark.parametrize("make,in_shape,out_shape,wshape", [
    (lambda: nn.Conv1D(16, 3, in_channels=4), (1, 4, 10), (1, 16, 8), (16, 4, 3)),
    (lambda: nn.Conv1D(16, 3, groups=2, in_channels=4), (1, 4, 10), (1, 16, 8), (16, 2, 3)),
    (lambda: nn.Conv1D(16, 3, strides=3, groups=2, in_channels=4), (1, 4, 10), (1, 16, 3), (16, 2, 3)),
    (lambda: nn.Conv2D(16, (3, 4), dilation=4, in_channels=4), (1, 4, 20, 20), (1, 16, 12, 8), (16, 4, 3, 4)),
    (lambda: nn.Conv3D(16, (1, 8, 4), in_channels=4, activation="relu"), (1, 4, 10, 10, 10), (1, 16, 10, 3, 7),
     (16, 4, 1, 8, 4)),
    (lambda: nn.Conv3D(16, (3, 3, 3), groups=2, in_channels=4), (1, 4, 10, 10, 10), (1, 16, 8, 8, 8),
     (16, 2, 3, 3, 3)),
    (lambda: nn.Conv3D(16, 4, strides=4, in_channels=4), (1, 4, 10, 10, 10), (1, 16, 2, 2, 2), (16, 4, 4, 4, 4)),
    (lambda: nn.Conv3D(16, (3, 3, 3), padding=4, in_channels=4), (1, 4, 10, 10, 10), (1, 16, 16, 16, 16),
     (16, 4, 3, 3, 3)),
    (lambda: nn.Conv2D(16, (3, 3), layout="NHWC", in_channels=4), (1, 10, 10, 4), (1, 8, 8, 16), (16, 3, 3, 4)),
    (lambda: nn.Conv1D(8, 3, layout="NWC"), (2, 10, 4), (2, 8, 8), (8, 3, 4)),
    (lambda: nn.Conv3D(16, (3, 3, 3), layout="NDHWC", in_channels=4), (1, 10, 10, 10, 4), (1, 8, 8, 8, 16),
     (16, 3, 3, 3, 4)),
    (lambda: nn.Conv2DTranspose(16, (3, 4), in_channels=4), (1, 4, 20, 20), (1, 16, 22, 23), (4, 16, 3, 4)),
    (lambda: nn.Conv2DTranspose(16, (3, 4), groups=2, in_channels=4), (1, 4, 20, 20), (1, 16, 22, 23), (4, 8, 3, 4)),
    (lambda: nn.Conv2DTranspose(16, (3, 4), strides=4, in_channels=4), (1, 4, 20, 20), (1, 16, 79, 80),
     (4, 16, 3, 4)),
    (lambda: nn.Conv2DTranspose(16, (3, 4), dilation=4, in_channels=4), (1, 4, 20, 20), (1, 16, 28, 32),
     (4, 16, 3, 4)),
    (lambda: nn.Conv2DTranspose(16, (3, 4), strides=4, output_padding=3, in_channels=4), (1, 4, 20, 20),
     (1, 16, 82, 83), (4, 16, 3, 4)),
    (lambda: nn.Conv1DTranspose(6, 3, strides=2, padding=1), (2, 4, 5), (2, 6, 9), (4, 6, 3)),
    (lambda: nn.Conv3DTranspose(2, 2, strides=2), (1, 3, 2, 3, 4), (1, 2, 4, 6, 8), (3, 2, 2, 2, 2)),
])
def test_shapes_and_parameter_shapes_are_mxnets(make, in_shape, out_shape, wshape):
    layer = make()
    layer.initialize(seed=0)
    y = layer(nd.ones(in_shape))
    assert y.shape == out_shape
    assert layer.weight.shape == wshape
    assert layer.bias.shape == (out_shape[1] if layer._first else out_shape[-1],)


def test_deferred_shapes_come_from_the_shape_only_pass_without_allocating():
    net = nn.Sequential()
    net.add(nn.Conv1D(8, 3, layout="NWC"), nn.MaxPool1D(2, layout="NWC"), nn.Flatten(), nn.Dense(3))
    net3 = nn.Sequential()
    net3.add(nn.Conv3D(4, 3, padding=1), nn.AvgPool3D(2, ceil_mode=True), nn.Conv3D(2, 1, layout="NCDHW"),
             nn.GlobalMaxPool3D())
    deconv = nn.Sequential()
    deconv.add(nn.Conv2DTranspose(5, (3, 2), strides=2, groups=1), nn.GlobalAvgPool2D(), nn.Flatten(), nn.Dense(2))
    for model, shape in [(net, (2, 9, 3)), (net3, (1, 2, 5, 5, 5)), (deconv, (2, 3, 4, 4))]:
        model.initialize(seed=1, defer=True)
        plan = gpuinit.plan(model, shape)
        assert all(p.shape_known for p in model.collect_params().values())
        assert not any(p.initialized for p in model.collect_params().values())
        assert tuple(plan.output_shape) == model(nd.ones(shape)).shape
    assert net[0].weight.shape == (8, 3, 3) and net[3].weight.shape == (3, 8 * 3)
    assert net3[0].weight.shape == (4, 2, 3, 3, 3) and net3(nd.ones((1, 2, 5, 5, 5))).shape == (1, 2, 1, 1, 1)
    assert deconv[0].weight.shape == (3, 5, 3, 2)


# --- numbers against loops --------------------------------------------------------------------------


@pytest.mark.parametrize("k,stride,pad,dil,groups", [
    (1, 1, 0, 1, 1), (1, 2, 1, 2, 2), (3, 1, 1, 1, 1), (3, 2, 0, 1, 2), (2, 2, 1, 2, 1)])
def test_convolution_matches_a_loop(device, k, stride, pad, dil, groups):
    rng = np.random.default_rng(k * 10 + stride)
    x = rng.standard_normal((2, 4) + (7, 6, 5)[:k]).astype(np.float32)
    cls = {1: nn.Conv1D, 2: nn.Conv2D, 3: nn.Conv3D}[k]
    layer = cls(6, 3, strides=stride, padding=pad, dilation=dil, groups=groups)
    y = run(layer, x, device)
    expected = loop_conv(x.astype(np.float64), as64(layer.weight), as64(layer.bias), (stride,) * k, (pad,) * k,
                         (dil,) * k, groups)
    assert y.shape == expected.shape and np.allclose(y, expected, atol=1e-4)


@pytest.mark.parametrize("k,stride,pad,dil,groups,out_pad", [
    (1, 1, 0, 1, 1, 0), (1, 3, 1, 1, 2, 2), (2, 2, 1, 1, 1, 1), (2, 1, 0, 2, 2, 1), (3, 2, 0, 1, 1, 0)])
def test_transposed_convolution_matches_a_loop(device, k, stride, pad, dil, groups, out_pad):
    rng = np.random.default_rng(k * 7 + stride)
    x = rng.standard_normal((2, 4) + (4, 3, 3)[:k]).astype(np.float32)
    cls = {1: nn.Conv1DTranspose, 2: nn.Conv2DTranspose, 3: nn.Conv3DTranspose}[k]
    layer = cls(6, 3, strides=stride, padding=pad, dilation=dil, groups=groups, output_padding=out_pad)
    y = run(layer, x, device)
    expected = loop_deconv(x.astype(np.float64), as64(layer.weight), as64(layer.bias), (stride,) * k, (pad,) * k,
                           (dil,) * k, groups, (out_pad,) * k)
    assert y.shape == expected.shape and np.allclose(y, expected, atol=1e-4)


def test_transposed_convolution_is_the_adjoint_of_convolution():
    """<conv(x), y> == <x, conv_transpose(y)> with the same weight: what 'transposed' means."""
    rng = np.random.default_rng(3)
    w = rng.standard_normal((6, 2, 3, 3))  # conv: 4 -> 6 channels in 2 groups; deconv: 6 -> 4
    x = rng.standard_normal((1, 4, 8, 8))
    y = rng.standard_normal((1, 6, 4, 4))
    conv_x = gpuinit.ops.conv(x, w, None, 2, 1, 1, 2)
    # (out, in/groups, k) read as (in, out/groups, k) is the same array: the transposed weight
    deconv_y = gpuinit.ops.conv_transpose(y, w, None, 2, 1, 1, 2, output_padding=1)
    assert conv_x.shape == y.shape and deconv_y.shape == (1, 4, 8, 8)
    assert np.isclose((conv_x * y).sum(), (x * deconv_y).sum())


@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("size,stride,pad,ceil_mode,include_pad", [
    (2, None, 0, False, True), (3, 2, 1, False, False), (3, 2, 1, True, True), (3, 2, 0, True, False),
    (3, 3, 1, True, False), (4, 3, 2, True, True), (4, 3, 2, True, False)])
def test_pooling_matches_a_loop(device, k, kind, size, stride, pad, ceil_mode, include_pad):
    rng = np.random.default_rng(k)
    x = rng.standard_normal((2, 3) + (7, 6, 5)[:k]).astype(np.float32)
    cls = {("max", 1): nn.MaxPool1D, ("max", 2): nn.MaxPool2D, ("max", 3): nn.MaxPool3D,
           ("avg", 1): nn.AvgPool1D, ("avg", 2): nn.AvgPool2D, ("avg", 3): nn.AvgPool3D}[kind, k]
    kwargs = {"count_include_pad": include_pad} if kind == "avg" else {}
    layer = cls(size, stride, pad, ceil_mode=ceil_mode, **kwargs)
    y = run(layer, x, device)
    expected = loop_pool(x.astype(np.float64), kind, (size,) * k, (stride or size,) * k, (pad,) * k, ceil_mode,
                         include_pad)
    assert y.shape == expected.shape and np.allclose(y, expected, atol=1e-5)


@given(st.integers(1, 3), st.integers(1, 9), st.integers(1, 4), st.integers(1, 3), st.integers(0, 2),
       st.booleans(), st.booleans())
@settings(max_examples=40, deadline=None)
def test_pooling_matches_a_loop_for_any_arguments(k, length, size, stride, pad, ceil_mode, include_pad):
    pad = min(pad, size - 1)
    if length + 2 * pad < size:
        with pytest.raises(ShapeError):
            nn.AvgPool1D(size, stride, pad)(nd.ones((1, 1, length)))
        return
    out = (-(-(length + 2 * pad - size) // stride) if ceil_mode else (length + 2 * pad - size) // stride) + 1
    if (out - 1) * stride - pad >= length + pad:  # a last window beyond the padded input: refused
        with pytest.raises(ShapeError, match="beyond the padded input"):
            nn.MaxPool1D(size, stride, pad, ceil_mode=ceil_mode)(nd.ones((1, 1, length)))
        return
    x = np.random.default_rng(length).standard_normal((1, 2, length)).astype(np.float32)
    for kind, cls in (("max", nn.MaxPool1D), ("avg", nn.AvgPool1D)):
        kwargs = {"count_include_pad": include_pad} if kind == "avg" else {}
        y = to_numpy(cls(size, stride, pad, ceil_mode=ceil_mode, **kwargs)(nd.array(x)))
        expected = loop_pool(x.astype(np.float64), kind, (size,), (stride,), (pad,), ceil_mode, include_pad)
        assert np.allclose(y, expected, atol=1e-5)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_channels_last_layouts_equal_channels_first_transposed(device, k):
    rng = np.random.default_rng(k)
    first = rng.standard_normal((2, 4) + (6, 5, 4)[:k]).astype(np.float32)
    last = np.moveaxis(first, 1, -1).copy()
    names = {1: ("NCW", "NWC"), 2: ("NCHW", "NHWC"), 3: ("NCDHW", "NDHWC")}[k]
    conv = {1: nn.Conv1D, 2: nn.Conv2D, 3: nn.Conv3D}[k]
    a, b = conv(3, 3, padding=1, layout=names[0]), conv(3, 3, padding=1, layout=names[1])
    ya = run(a, first, device, seed=5)
    b.initialize(device=device, seed=5)
    b(nd.array(last, device=device))
    b.weight.set_data(nd.array(np.moveaxis(to_numpy(a.weight.data()), 1, -1), device=device))
    b.bias.set_data(a.bias.data())
    assert np.allclose(to_numpy(b(nd.array(last, device=device))), np.moveaxis(ya, 1, -1), atol=1e-5)
    pools = {1: (nn.MaxPool1D, nn.AvgPool1D, nn.GlobalAvgPool1D, nn.GlobalMaxPool1D),
             2: (nn.MaxPool2D, nn.AvgPool2D, nn.GlobalAvgPool2D, nn.GlobalMaxPool2D),
             3: (nn.MaxPool3D, nn.AvgPool3D, nn.GlobalAvgPool3D, nn.GlobalMaxPool3D)}[k]
    for cls in pools:
        yf = to_numpy(cls(layout=names[0])(nd.array(first, device=device)))
        yl = to_numpy(cls(layout=names[1])(nd.array(last, device=device)))
        assert np.allclose(np.moveaxis(yf, 1, -1), yl)


def test_mxnet_ceil_mode_shapes():
    x = nd.zeros((2, 2, 10, 10))
    assert nn.MaxPool2D(3, ceil_mode=False)(x).shape == (2, 2, 3, 3)
    assert nn.MaxPool2D(3, ceil_mode=True)(x).shape == (2, 2, 4, 4)
    assert nn.MaxPool2D(3, ceil_mode=True, layout="NHWC")(nd.zeros((2, 10, 10, 2))).shape == (2, 4, 4, 2)


def test_names_and_repr():
    with nn.Sequential().name_scope():
        pass
    c = nn.Conv2DTranspose(16, (3, 4), groups=2)
    p = nn.MaxPool3D()
    assert c.name.startswith("conv") and p.name.startswith("pool")
    assert repr(c).startswith("Conv2DTranspose(None -> 16, kernel_size=(3, 4)") and "groups=2" in repr(c)
    assert "ceil_mode=False" in repr(p)


# --- bad arguments: clear errors, nothing made ---------------------------------------------------------


@pytest.mark.parametrize("make,error,words", [
    (lambda: nn.Conv1D(4, (3, 3)), ArgumentError, ("Conv1D", "kernel_size", "2 values")),
    (lambda: nn.Conv3D(4, (3, 3)), ArgumentError, ("Conv3D", "kernel_size", "tuple of 3")),
    (lambda: nn.Conv3D(4, 3, layout="NCHW"), ArgumentError, ("Conv3D", "layout", "'NCDHW' or 'NDHWC'")),
    (lambda: nn.Conv1D(4, 3, layout="NHWC"), ArgumentError, ("'NCW' or 'NWC'",)),
    (lambda: nn.Conv2DTranspose(4, 3, layout="NHWC"), ArgumentError, ("Conv2DTranspose", "layout", "'NCHW'")),
    (lambda: nn.Conv2DTranspose(4, 3, strides=2, output_padding=2), ArgumentError, ("output_padding", "smaller")),
    (lambda: nn.Conv2DTranspose(4, 3, output_padding=-1), ArgumentError, ("output_padding", "-1")),
    (lambda: nn.Conv1DTranspose(5, 3, groups=2), ArgumentError, ("divisible by groups",)),
    (lambda: nn.Conv3DTranspose(0, 3), ArgumentError, ("Conv3DTranspose", "channels", "0")),
    (lambda: nn.MaxPool1D((2, 2)), ArgumentError, ("MaxPool1D", "pool_size")),
    (lambda: nn.MaxPool3D(2, padding=2), ArgumentError, ("MaxPool3D", "smaller than")),
    (lambda: nn.AvgPool3D(ceil_mode="yes"), TypeError, ("ceil_mode", "'yes'")),
    (lambda: nn.AvgPool1D(layout="NCHW"), ArgumentError, ("AvgPool1D", "layout")),
    (lambda: nn.GlobalAvgPool3D(layout="NHWC"), ArgumentError, ("GlobalAvgPool3D", "'NCDHW' or 'NDHWC'")),
    (lambda: nn.MaxPool2D(2, count_include_pad=False), TypeError, ("count_include_pad",)),
])
def test_bad_layer_arguments_are_refused_clearly(make, error, words):
    with pytest.raises(error) as info:
        make()
    for word in words:
        assert word in str(info.value)


@pytest.mark.parametrize("layer,shape,words", [
    (lambda: nn.Conv1D(4, 3), (2, 3, 4, 5), ("Conv1D", "3 dimensions", "NCW")),
    (lambda: nn.Conv3D(4, 3), (2, 3, 4, 5), ("Conv3D", "5 dimensions")),
    (lambda: nn.Conv1D(4, 5), (2, 3, 4), ("too small",)),
    (lambda: nn.Conv2DTranspose(4, 3, padding=3), (1, 2, 1, 1), ("transposed convolution", "padding")),
    (lambda: nn.MaxPool3D(3), (1, 1, 2, 5, 5), ("too small",)),
    (lambda: nn.GlobalMaxPool1D(), (1, 2, 0), ("no spatial extent",)),
])
def test_bad_inputs_are_refused_and_change_nothing(layer, shape, words):
    block = layer()
    block.initialize(seed=0)
    before = {name: (p.shape, p.initialized) for name, p in block.collect_params().items()}
    with pytest.raises(ShapeError) as info:
        block(nd.ones(shape))
    for word in words:
        assert word in str(info.value)
    assert {name: (p.shape, p.initialized) for name, p in block.collect_params().items()} == before


def test_a_known_channel_count_is_checked():
    conv = nn.Conv2DTranspose(4, 3, in_channels=2)
    conv.initialize(seed=0)
    with pytest.raises(ShapeError, match="in_channels"):
        conv(nd.ones((1, 3, 5, 5)))
    assert conv.weight.shape == (2, 4, 3, 3)


def test_conv_layers_are_reached_through_gluon_nn():
    from gpuinit.gluon import nn as gnn
    for name in ("Conv1D", "Conv3D", "Conv2DTranspose", "Conv1DTranspose", "Conv3DTranspose", "MaxPool1D",
                 "AvgPool3D", "GlobalAvgPool1D", "GlobalMaxPool3D"):
        assert getattr(gnn, name) is getattr(nn, name)
