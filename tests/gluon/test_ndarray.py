"""NDArray's conveniences on NumPy arrays, and the nd functions the book's chapters call."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import gpuinit
from gpuinit import init, nd, nn
from gpuinit.errors import ArgumentError, PlanError, ShapeError
from gpuinit.meta import MetaArray
from gpuinit.nd import NDArray


# --- what the arrays are ---------------------------------------------------------------------------


def test_nd_functions_return_ndarrays_that_are_numpy_arrays():
    made = [nd.array([[1, 2], [3, 4]]), nd.zeros((2, 3)), nd.ones(4), nd.full((2,), 7), nd.empty((3, 2)),
            nd.arange(5), nd.random.uniform(shape=(2, 2)), nd.random.normal(0, 1, (3,)),
            nd.ones_like(np.ones(3)), nd.zeros_like(np.ones(3))]
    for x in made:
        assert type(x) is NDArray and isinstance(x, np.ndarray)
    x = made[0]
    assert x.dtype == np.float32  # a list becomes float32, as in MXNet
    assert np.array_equal(np.asarray(x) @ np.eye(2), [[1, 2], [3, 4]])  # NumPy takes it unchanged
    assert type(np.asanyarray(x)) is NDArray and type(x.asnumpy()) is np.ndarray


def test_parameters_and_forward_outputs_are_ndarrays_over_the_arena():
    net = nn.Sequential()
    net.add(nn.Dense(4, activation="relu"), nn.Dense(2))
    net.initialize(seed=0)
    y = net(nd.ones((3, 5)))
    w = net[0].weight.data()
    assert type(y) is NDArray and type(w) is NDArray
    assert net[0].weight.data() is w  # made once
    w[0, 0] = 42.0  # a view: writes land in the parameter
    assert net[0].weight.data()[0, 0].asscalar() == 42.0


def test_custom_initializer_hooks_get_ndarrays():
    seen = []

    class MyInit(init.Initializer):
        def _init_weight(self, name, data):  # the book's chapter 4.2 initializer
            seen.append(type(data))
            data[:] = nd.random.uniform(low=-10, high=10, shape=data.shape)
            data *= data.abs() >= 5

    net = nn.Dense(8, in_units=6)
    net.initialize(MyInit(), seed=3)
    w = net.weight.data().asnumpy()
    assert seen == [NDArray]
    assert np.all((w == 0) | (np.abs(w) >= 5)) and (w != 0).any()


# --- methods ----------------------------------------------------------------------------------------


def test_asnumpy_and_asscalar():
    x = nd.array([[1.5, 2.0], [3.0, 4.0]])
    copy = x.asnumpy()
    copy[0, 0] = 0
    assert x[0, 0].asscalar() == 1.5  # a copy
    assert x.sum().asscalar() == 10.5 and isinstance(x.sum().asscalar(), np.float32)
    with pytest.raises(ArgumentError, match="one-element"):
        x.asscalar()
    assert nd.array([7.0]).asscalar() == 7.0


def test_elements_and_iteration_give_ndarrays():
    x = nd.array([[1.0, 2.0], [3.0, 4.0]])
    assert type(x[1, 0]) is NDArray and x[1, 0].shape == () and x[1, 0].asscalar() == 3.0
    assert [v.asscalar() for v in x[0]] == [1.0, 2.0]
    assert [type(row) for row in x] == [NDArray, NDArray]
    y = nd.zeros((2, 2))
    y[0, 1] = (x[0] * x[1]).sum()  # the book's corr2d: one element from a reduction
    assert y[0, 1].asscalar() == 11.0
    assert float(x[0, 1]) == 2.0 and int(nd.arange(5)[3]) == 3 and x[0, 1].item() == 2.0


def test_context_copyto_and_as_in_context():
    x = nd.array([1.0, 2.0, 3.0])
    assert x.context == gpuinit.cpu() and x.ctx == gpuinit.cpu()
    y = x.copyto(gpuinit.cpu())
    assert y is not x and np.array_equal(y, x) and not np.shares_memory(x, y)
    assert x.as_in_context(gpuinit.cpu()) is x
    target = nd.zeros(3)
    assert x.copyto(target) is target and np.array_equal(target, x)
    with pytest.raises(ShapeError, match="shape"):
        x.copyto(nd.zeros(4))


@pytest.mark.parametrize("method,numpy", [("abs", np.abs), ("exp", np.exp), ("sqrt", np.sqrt),
                                          ("square", np.square), ("log", np.log), ("sign", np.sign)])
def test_elementwise_methods_equal_numpy(method, numpy):
    x = nd.array([[0.5, 2.0], [3.0, 9.0]])
    with np.errstate(all="ignore"):
        assert np.array_equal(getattr(x, method)(), numpy(x.asnumpy()))
        assert np.array_equal(getattr(-x, method)(), numpy(-x.asnumpy()), equal_nan=True)


def test_norm():
    x = nd.array([[3.0, -4.0], [0.0, 12.0]])
    assert x.norm().asscalar() == 13.0
    assert np.allclose(x.norm(axis=1), [5.0, 12.0]) and x.norm(axis=1, keepdims=True).shape == (2, 1)
    assert nd.norm(x, ord=1).asscalar() == 19.0
    with pytest.raises(ArgumentError, match="ord"):
        nd.norm(x, ord=3)


# MXNet's documented examples of reshape's special values
RESHAPES = [((2, 3, 4), (4, 0, 2), False, (4, 3, 2)), ((2, 3, 4), (2, 0, 0), False, (2, 3, 4)),
            ((2, 3, 4), (6, 1, -1), False, (6, 1, 4)), ((2, 3, 4), (3, -1, 8), False, (3, 1, 8)),
            ((2, 3, 4), (-1,), False, (24,)), ((2, 3, 4), (-2,), False, (2, 3, 4)),
            ((2, 3, 4), (2, -2), False, (2, 3, 4)), ((2, 3, 4), (-2, 1, 1), False, (2, 3, 4, 1, 1)),
            ((2, 3, 4), (-3, 4), False, (6, 4)), ((2, 3, 4, 5), (-3, -3), False, (6, 20)),
            ((2, 3, 4), (0, -3), False, (2, 12)), ((2, 3, 4), (-3, -2), False, (6, 4)),
            ((2, 3, 4), (-4, 1, 2, -2), False, (1, 2, 3, 4)), ((2, 3, 4), (2, -4, -1, 3, -2), False, (2, 1, 3, 4)),
            ((10, 5, 4), (-1, 0), False, (40, 5)), ((10, 5, 4), (-1, 0), True, (50, 4))]


@pytest.mark.parametrize("shape,spec,reverse,expected", RESHAPES)
def test_reshape_special_values_as_mxnet_documents_them(shape, spec, reverse, expected):
    x = nd.arange(int(np.prod(shape))).reshape(shape)
    y = x.reshape(spec, reverse=reverse)
    assert y.shape == expected and np.array_equal(y.asnumpy().ravel(), x.asnumpy().ravel())
    assert nd.reshape(x, spec, reverse=reverse).shape == expected
    assert x.reshape(shape=spec, reverse=reverse).shape == expected
    assert MetaArray(shape).reshape(spec, reverse=reverse).shape == expected  # the shape-only pass agrees


def test_reshape_keeps_numpy_forms_and_refuses_clearly():
    x = nd.zeros((2, 6))
    assert x.reshape(3, 4).shape == (3, 4) and x.reshape((4, -1)).shape == (4, 3)
    assert nd.zeros((0, 3)).reshape(0, 5).shape == (0, 5)  # an empty array keeps NumPy's meaning of 0
    with pytest.raises(ShapeError, match="cannot split"):
        x.reshape((-4, 5, -1, 0))
    with pytest.raises(ShapeError, match="special value"):
        x.reshape((0, 0, 0))


def test_other_mxnet_methods():
    x = nd.arange(6).reshape((2, 3))
    assert x.T.shape == (3, 2) and type(x.T) is NDArray
    assert x.expand_dims(0).shape == (1, 2, 3) and x.reshape((2, 3, 1)).squeeze(inplace=True).shape == (2, 3)
    assert x.slice_axis(1, 1, 3).shape == (2, 2) and x.tile((2, 1)).shape == (4, 3)
    assert x.broadcast_to((2, 2, 3)).shape == (2, 2, 3) and x.flip(1)[0, 0].asscalar() == 2
    assert x.one_hot(6).shape == (2, 3, 6) and x.astype("int32").dtype == np.int32
    assert x.stype == "default" and x.tostype("default") is x
    with pytest.raises(ArgumentError, match="storage"):
        x.tostype("csr")
    x.wait_to_read()
    x.attach_grad()
    assert np.array_equal(x.grad, np.zeros((2, 3)))  # no autograd: a zero buffer nobody writes
    assert type(x.as_np_ndarray()) is np.ndarray and np.shares_memory(x.as_np_ndarray(), x)
    assert repr(nd.array([1.0])) == "array([1.], dtype=float32)"


# --- nd functions -------------------------------------------------------------------------------------


def test_dot_is_mxnets_contraction():
    a = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)
    b = np.random.default_rng(1).standard_normal((4, 5, 6)).astype(np.float32)
    assert np.allclose(nd.dot(a, b), np.tensordot(a, b, axes=1), atol=1e-5)  # last of a with first of b
    m = np.arange(6.0).reshape(2, 3)
    assert np.array_equal(nd.dot(m, m.T), m @ m.T)
    assert np.array_equal(nd.dot(m, m, transpose_a=True), m.T @ m)
    assert np.array_equal(nd.dot(m, m, transpose_b=True), m @ m.T)
    assert nd.dot(MetaArray((2, 3, 4)), MetaArray((4, 5, 6))).shape == (2, 3, 5, 6)
    with pytest.raises(ShapeError, match="align"):
        nd.dot(a, a)
    assert nd.batch_dot(nd.ones((2, 3, 4)), nd.ones((2, 4, 5))).shape == (2, 3, 5)


def test_joining_and_reducing():
    x, y = nd.ones((2, 3)), nd.zeros((2, 3))
    assert nd.concat(x, y, dim=1).shape == (2, 6) and nd.concat(x, y, dim=0).shape == (4, 3)
    assert nd.concat(x, y).shape == (2, 6)  # MXNet's default dim is 1
    assert nd.stack(x, y).shape == (2, 2, 3) and nd.stack(x, y, axis=2).shape == (2, 3, 2)
    assert np.array_equal(nd.add_n(x, x, x), np.full((2, 3), 3.0))
    z = nd.arange(24).reshape((2, 3, 4))
    assert nd.sum(z, axis=1, keepdims=True).shape == (2, 1, 4)
    assert np.array_equal(nd.sum(z, axis=1, exclude=True), z.asnumpy().sum(axis=(0, 2)))
    assert nd.mean(z).asscalar() == 11.5 and nd.max(z, axis=(0, 2)).tolist() == [15, 19, 23]
    assert nd.min(z).asscalar() == 0 and nd.argmax(z, axis=2).tolist() == [[3] * 3] * 2
    parts = nd.split(nd.arange(6).reshape((2, 3)), 3, axis=1)
    assert len(parts) == 3 and parts[0].shape == (2, 1)


def test_elementwise_functions():
    x = nd.array([[-1.0, 0.0, 2.0]])
    assert np.array_equal(nd.relu(x), [[0.0, 0.0, 2.0]])
    assert np.allclose(nd.sigmoid(x), 1 / (1 + np.exp(-x.asnumpy())))
    s = nd.softmax(x)
    assert np.isclose(s.sum().asscalar(), 1.0) and s.argmax().asscalar() == 2
    assert np.allclose(nd.exp(nd.log(nd.array([1.0, 5.0]))), [1.0, 5.0])
    assert nd.transpose(nd.ones((2, 3, 4))).shape == (4, 3, 2)
    assert nd.transpose(nd.ones((2, 3, 4)), axes=(1, 0, 2)).shape == (3, 2, 4)
    assert nd.flatten(nd.ones((2, 3, 4))).shape == (2, 12) and nd.Flatten(nd.ones((5, 1))).shape == (5, 1)
    assert np.array_equal(nd.clip(nd.array([-2.0, 0.5, 3.0]), -1, 1), [-1.0, 0.5, 1.0])
    assert np.array_equal(nd.where(nd.array([1, 0]), nd.array([1.0, 2.0]), nd.array([3.0, 4.0])), [1.0, 4.0])
    assert np.array_equal(nd.arange(3, repeat=2), [0, 0, 1, 1, 2, 2])
    assert nd.one_hot(nd.array([0, 2]), 3).tolist() == [[1, 0, 0], [0, 0, 1]]


def test_random_takes_mxnets_positional_order_and_ctx():
    a = nd.random.normal(2.0, 0.5, (1000,), ctx=gpuinit.cpu())
    b = nd.random.uniform(-1, 1, (2, 3), ctx="cpu")
    assert a.shape == (1000,) and abs(float(a.mean()) - 2.0) < 0.1 and b.shape == (2, 3)
    assert b.min().asscalar() >= -1 and b.max().asscalar() < 1
    gpuinit.random.seed(5)
    first = nd.random.uniform(shape=(4,))
    gpuinit.random.seed(5)
    assert np.array_equal(nd.random.uniform(shape=(4,)), first)


def test_operator_forms_equal_the_layers():
    rng = np.random.default_rng(2)
    x = nd.array(rng.standard_normal((2, 3, 7, 6)))
    conv = nn.Conv2D(4, 3, strides=2, padding=1, in_channels=3)
    conv.initialize(seed=1)
    w, b = conv.weight.data(), conv.bias.data()
    y = nd.Convolution(x, w, b, kernel=(3, 3), stride=(2, 2), pad=(1, 1), num_filter=4)
    assert np.allclose(y, conv(x), atol=1e-6)
    last = nd.Convolution(x.transpose((0, 2, 3, 1)), w.transpose((0, 2, 3, 1)), b, kernel=(3, 3), stride=(2, 2),
                          pad=(1, 1), num_filter=4, layout="NHWC")
    assert np.allclose(last.transpose((0, 3, 1, 2)), y, atol=1e-6)
    assert np.array_equal(nd.Pooling(x, kernel=(2, 2), pool_type="max", stride=(2, 2)), nn.MaxPool2D(2)(x))
    assert nd.Pooling(x, kernel=(3, 3), stride=(2, 2), pooling_convention="full").shape == (2, 3, 3, 3)
    assert np.allclose(nd.Pooling(x, pool_type="avg", global_pool=True), x.mean(axis=(2, 3), keepdims=True))
    d = nd.Deconvolution(x, nd.ones((3, 2, 2, 2)), kernel=(2, 2), stride=(2, 2), num_filter=2)
    assert d.shape == (2, 2, 14, 12)
    fc = nd.FullyConnected(x, nd.ones((5, 126)), nd.zeros(5), num_hidden=5)
    assert fc.shape == (2, 5) and np.allclose(fc[:, 0], x.reshape((2, -1)).sum(axis=1), atol=1e-5)
    assert np.allclose(nd.LeakyReLU(nd.array([-1.0, 2.0]), slope=0.1), [-0.1, 2.0])


# --- the shape-only pass follows the same methods ---------------------------------------------------------


class Fancy(nn.Block):
    """A forward that uses NDArray's methods and nd functions between deferred layers."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = nn.Dense(8)
        self.out = nn.Dense(3)

    def forward(self, x):
        h = nd.relu(self.dense(x)).abs().sqrt().square().exp()
        h = nd.concat(h, h.reshape((0, -1)), dim=1) / h.norm(axis=1, keepdims=True)
        h = nd.stack(h, h).mean(axis=0).reshape((-1, 0))
        return self.out(nd.dot(h, nd.ones((16, 4))).T.T)


def test_the_shape_only_pass_follows_ndarray_methods():
    net = Fancy()
    net.initialize(seed=0)
    assert net.deferred_params()
    y = net(nd.ones((2, 5)))
    assert y.shape == (2, 3) and net.dense.weight.shape == (8, 5) and net.out.weight.shape == (3, 4)


def test_shape_only_arrays_refuse_to_give_values_with_a_marked_error():
    """A forward that reads values (the book's FancyMLP: while x.norm().asscalar() > 1) cannot be
    followed by shapes alone: the error says why and is marked, so that a first forward can tell
    it from a shape mismatch and follow that block with real values instead."""
    for read in (lambda m: m.norm().asscalar(), lambda m: m.asnumpy(), lambda m: m.sum().item()):
        with pytest.raises(PlanError) as info:
            read(MetaArray((2, 4)))
        assert getattr(info.value, "gpuinit_needs_values", None) and "in_units" in str(info.value)


@given(st.lists(st.integers(1, 4), min_size=1, max_size=4), st.data())
@settings(max_examples=60, deadline=None)
def test_meta_and_real_reshape_agree(shape, data):
    """Any spec the real array takes, the shape-only array takes with the same result, and the
    other way round."""
    spec = data.draw(st.lists(st.sampled_from([0, -1, -2, -3, 1, 2, 3, 4, 6]), min_size=1, max_size=5))
    x = nd.zeros(tuple(shape))
    try:
        expected = x.reshape(tuple(spec)).shape
    except (ShapeError, ValueError):
        with pytest.raises((ShapeError, ValueError)):
            MetaArray(tuple(shape)).reshape(tuple(spec))
        return
    assert MetaArray(tuple(shape)).reshape(tuple(spec)).shape == expected


METHOD_CALLS = [("abs", ()), ("exp", ()), ("sqrt", ()), ("square", ()), ("log", ()), ("sign", ()), ("relu", ()),
                ("sigmoid", ()), ("softmax", ()), ("norm", ()), ("norm", (2, 1, True)), ("reshape", ((0, -1),)),
                ("reshape", ((-3, -2),)), ("squeeze", ()), ("expand_dims", (1,)), ("sum", ()), ("mean", (1,)),
                ("max", (0,)), ("argmax", (1,)), ("transpose", ()), ("slice_axis", (2, 1, 3)),
                ("broadcast_to", ((2, 2, 3, 4),)), ("tile", ((1, 2),)), ("flip", (0,)), ("one_hot", (5,)),
                ("astype", ("float16",)), ("copyto", (gpuinit.cpu(),)), ("as_in_context", (gpuinit.cpu(),))]


@pytest.mark.parametrize("name,args", METHOD_CALLS)
def test_shape_only_arrays_take_ndarrays_methods_with_the_same_result_shapes(name, args):
    real = getattr(nd.ones((2, 3, 4)), name)(*args)
    meta = getattr(MetaArray((2, 3, 4)), name)(*args)
    assert isinstance(meta, MetaArray) and meta.shape == real.shape and meta.dtype == real.dtype
    assert MetaArray((2, 3)).context == gpuinit.cpu() and MetaArray((1,)).stype == "default"


def test_misspelt_or_unsupported_keywords_are_refused_not_ignored():
    x = nd.ones((1, 1, 4, 4))
    with pytest.raises(TypeError, match="strides"):
        nd.Convolution(x, nd.ones((1, 1, 3, 3)), kernel=(3, 3), num_filter=1, strides=(2, 2))  # MXNet says stride=
    with pytest.raises(TypeError, match="dtyp"):
        nd.zeros((2,), dtyp="float16")
    with pytest.raises(TypeError, match="sparse"):
        nd.zeros((2,), stype="row_sparse")
    assert nd.zeros((2,), stype="default").shape == (2,)
    assert nd.Convolution(x, nd.ones((1, 1, 3, 3)), kernel=(3, 3), num_filter=1, no_bias=True, name="c",
                          workspace=512).shape == (1, 1, 2, 2)  # a name and cuDNN's workspace change nothing
    with pytest.raises(TypeError):
        nd.random.uniform(0, 1, (2,), out=None)


def test_batch_norm_operator():
    x = nd.array(np.random.default_rng(0).standard_normal((2, 3, 2, 2)))
    g, b = nd.array([2.0, 2.0, 2.0]), nd.array([0.5, 0.5, 0.5])
    mean, var = nd.array([0.1, 0.2, 0.3]), nd.array([1.0, 4.0, 9.0])
    expected = (x.asnumpy() - mean.reshape((1, 3, 1, 1))) / np.sqrt(var.reshape((1, 3, 1, 1)) + 1e-3)
    assert np.allclose(nd.BatchNorm(x, g, b, mean, var), expected + 0.5, atol=1e-5)  # fix_gamma: gamma is 1
    assert np.allclose(nd.BatchNorm(x, g, b, mean, var, fix_gamma=False), 2 * expected + 0.5, atol=1e-5)
    with pytest.raises(ArgumentError, match="inference"):
        nd.BatchNorm(x, g, b, mean, var, output_mean_var=True)


def test_mxnets_arithmetic_names_broadcast():
    a, b = nd.ones((2, 3)), nd.arange(3)
    assert np.array_equal(nd.broadcast_add(a, b), a + b) and np.array_equal(nd.elemwise_sub(a, a), a * 0)
    assert np.array_equal(nd.broadcast_mul(a, b), b + a * 0) and np.array_equal(nd.broadcast_div(b, a), b + a * 0)
    assert nd.broadcast_greater(b, a).tolist() == [[False, False, True]] * 2
    assert type(nd.broadcast_maximum(a, b)) is nd.NDArray and nd.broadcast_power(b, 2).tolist() == [0, 1, 4]
