"""MXNet's names, reached as Gluon code reaches them with ``import gpuinit as mx``."""

import importlib

import numpy as np
import pytest

import gpuinit
import gpuinit as mx
from gpuinit import backend, nd


def test_gluon_namespace():
    from gpuinit import gluon
    from gpuinit.gluon import nn as gnn
    import gpuinit.gluon.nn
    assert gnn is gpuinit.nn and gpuinit.gluon.nn is gpuinit.nn
    assert gluon.Parameter is gpuinit.Parameter and gluon.ParameterDict is gpuinit.ParameterDict
    assert gluon.Block is gpuinit.nn.Block and gluon.HybridBlock is gpuinit.nn.HybridBlock
    assert gluon.Constant is gpuinit.parameter.Constant
    const = gluon.Constant("const", np.arange(6.0).reshape(2, 3))
    const.initialize(ctx=[mx.cpu(0), mx.cpu(1)])
    assert const.grad_req == "null" and np.array_equal(const.data(mx.cpu(1)), np.arange(6.0).reshape(2, 3))
    assert const.data(mx.cpu(1)).context == mx.cpu(1)
    assert importlib.import_module("gpuinit.gluon.parameter").DeferredInitializationError is \
        gpuinit.DeferredInitializationError
    net = gluon.nn.Sequential()
    net.add(gluon.nn.Dense(3))
    net.initialize(seed=0)
    assert net(nd.ones((2, 4))).shape == (2, 3)


def test_training_parts_of_gluon_say_they_are_out_of_scope():
    with pytest.raises(AttributeError, match="out of its scope"):
        mx.gluon.Trainer
    with pytest.raises(AttributeError, match="out of its scope"):
        mx.gluon.loss
    assert not hasattr(mx.gluon, "no_such_thing")


def test_mxnet_error_is_every_gpuinit_error():
    assert mx.base.MXNetError is gpuinit.GpuInitError and mx.MXNetError is gpuinit.GpuInitError
    for error in (gpuinit.DeviceError, gpuinit.ShapeError, gpuinit.DeferredInitializationError,
                  gpuinit.InitializerError):
        assert issubclass(error, mx.base.MXNetError)


def try_gpu():
    """The book's try_gpu(), unchanged but for its imports."""
    try:
        ctx = mx.gpu()
        _ = nd.zeros((1,), ctx=ctx)
    except mx.base.MXNetError:
        ctx = mx.cpu()
    return ctx


def test_try_gpu_falls_back_to_the_cpu_or_finds_the_gpu():
    ctx = try_gpu()
    if backend.has_cupy_gpu():
        assert ctx == gpuinit.Device("cuda", 0)
    else:
        assert ctx == mx.cpu()
        with pytest.raises(mx.base.MXNetError, match="not usable"):
            nd.zeros((1,), ctx="cuda")


def test_context_module():
    assert mx.context.num_gpus() == backend.gpu_count()
    assert mx.context.Context is gpuinit.Device and mx.context.cpu() == mx.cpu()
    assert mx.context.current_context() == gpuinit.default_device()


def test_ctx_keyword_on_creation_functions():
    for make in (lambda: nd.zeros((2,), ctx=mx.cpu()), lambda: nd.ones((2,), ctx="cpu"),
                 lambda: nd.array([1, 2], ctx=mx.cpu()), lambda: nd.empty((2,), ctx=mx.cpu()),
                 lambda: nd.full((2,), 3, ctx=mx.cpu()), lambda: nd.arange(2, ctx=mx.cpu()),
                 lambda: nd.random.uniform(shape=(2,), ctx=mx.cpu()),
                 lambda: nd.random.normal(shape=(2,), ctx=mx.cpu())):
        x = make()
        assert x.shape == (2,) and x.context == mx.cpu()


def test_long_names():
    assert mx.ndarray is nd and mx.initializer is gpuinit.init and mx.random is nd.random
    assert mx.ndarray.empty((1, 1, 4, 4)).shape == (1, 1, 4, 4)
    mx.random.seed(11)
    a = mx.nd.random.uniform(shape=(3,))
    mx.random.seed(11)
    assert np.array_equal(a, mx.random.uniform(shape=(3,)))
