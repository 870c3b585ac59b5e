"""Bad input at every public entry: a clear error, and nothing changed.

Each case makes one bad call against a small world of networks (initialized, deferred, never
initialized, convolutional, with an embedding, with normalization) and asserts:

- the error's class (a ``GpuInitError``, and the built-in class Python or Gluon would raise);
- that the message names the culprit (the layer, parameter or argument and the value given) and
  says what it must be or how to fix it;
- that nothing changed: every parameter's shape, state and values, and the live arena bytes.

The memory report's command-line options are checked in ``test_report.py``.
"""

from types import SimpleNamespace
from typing import Callable, NamedTuple

import gc

import numpy as np
import pytest

import gpuinit
from gpuinit import init, nd, nn, store
from gpuinit.backend import to_numpy
from gpuinit.errors import (ArgumentError, ArgumentTypeError, DeferredInitializationError, DeviceError,
                            GpuInitError, InitializerError, OutOfMemoryError, PlanError, ShapeError,
                            UninitializedParameterError)

# A message says how to fix the problem: with one of these, followed by what to do.
FIX_WORDS = ("must", "pass", "use ", "give", "call", "set it", "expected", "needs", "check", "choose",
             "wrap", "install", "swap", "escape", "transpose", "move", "scale", "run ", "create")


class Case(NamedTuple):
    id: str
    act: Callable
    error: type
    mentions: tuple = ()


def world():
    """The networks every case runs against."""
    ready = nn.Sequential()
    ready.add(nn.Dense(6, in_units=4), nn.Dense(3, in_units=6))
    ready.initialize(device="cpu", seed=0)
    waiting = nn.Sequential()
    waiting.add(nn.Dense(5), nn.Dense(2))
    waiting.initialize(device="cpu", seed=1)
    conv = nn.Sequential()
    conv.add(nn.Conv2D(4, 3), nn.MaxPool2D(2), nn.Dense(2))
    conv.initialize(device="cpu", seed=2)
    conv_ready = nn.Conv2D(4, 3, in_channels=2, groups=2)
    conv_ready.initialize(device="cpu", seed=3)
    emb = nn.Sequential()
    emb.add(nn.Embedding(10, 4), nn.Dense(3))
    emb.initialize(device="cpu", seed=4)
    norm = nn.Sequential()
    norm.add(nn.BatchNorm(), nn.LayerNorm())
    norm.initialize(device="cpu", seed=5)
    norm_ready = nn.Sequential()
    norm_ready.add(nn.BatchNorm(), nn.LayerNorm())
    norm_ready.initialize(device="cpu", seed=5)
    norm_ready(np.ones((2, 3, 4), np.float32))
    half = nn.Dense(2, in_units=2, dtype="float16")
    half.initialize(device="cpu", seed=7)
    bare = nn.Dense(3, in_units=2)
    planned = nn.Dense(7)
    planned.initialize(device="cpu", seed=6, defer=True)
    tied = nn.Sequential()  # Gluon sharing: the second layer uses the first's parameters
    first = nn.Dense(3, in_units=3)
    tied.add(first, nn.Dense(3, params=first.params))
    tied.initialize(device=[gpuinit.cpu(0), gpuinit.cpu(1)], seed=8)  # and a copy on each device
    tied[0].weight.grad()
    return SimpleNamespace(ready=ready, waiting=waiting, conv=conv, conv_ready=conv_ready, emb=emb,
                           norm=norm, norm_ready=norm_ready, half=half, bare=bare, planned=planned, tied=tied)


def observe(w):
    """Everything a bad call must leave as it was."""
    state = []
    for name, net in sorted(vars(w).items()):
        for p in net.collect_params().values():
            state.append((name, p.name, p.shape, p.initialized, p.deferred, p.rng_key,
                          [to_numpy(d).tobytes() for d in p.list_data()] if p.initialized else None,
                          p.list_ctx() if p.requested else None, len(p._now.grads), p.grad_req, p.init))
    return store.live_bytes(), state


x24 = np.ones((2, 4), np.float32)
img = np.ones((1, 2, 8, 8), np.float32)


def initialize_with(net, **kwargs):
    net.initialize(device="cpu", **kwargs)


def fresh_dense(initializer, dtype="float32", in_units=3):
    """A layer made and initialized in one go (its failure must leave no arena behind)."""
    net = nn.Dense(4, in_units=in_units, dtype=dtype)
    net.initialize(init=initializer, device="cpu")


def set_env(name, value, call):
    import os
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        return call()
    finally:
        if old is None:
            del os.environ[name]
        else:
            os.environ[name] = old


def threaded_fill():
    out = np.empty(1 << 19, np.float32)
    gpuinit.streams.fill_many([(out, gpuinit.streams.Fill.uniform(0, 1), (1, 2), 0)])


def _same_names():
    net = nn.Sequential()
    net.add(nn.Dense(2, prefix="same_"), nn.Dense(2, prefix="same_"))
    return net


def _initialized(block):
    block.initialize(device="cpu")
    return block


def _hybrid_with_unknown_shape():
    class Mine(nn.HybridBlock):
        def __init__(self):
            super().__init__(prefix="mine_")
            self.scale = self.params.get("scale", shape=(0,))

        def hybrid_forward(self, F, x, scale):
            return x * scale

    block = Mine()
    block.initialize(device="cpu")
    return block


def _reads_values():
    class ReadsValues(nn.Block):
        def __init__(self):
            super().__init__()
            self.dense = nn.Dense(3)

        def forward(self, x):
            x = self.dense(x)
            return x * 2 if float(x.sum()) > 0 else x

    return ReadsValues()


CASES = [
    # --- Dense ----------------------------------------------------------------------------------
    Case("Dense units=0 run", lambda w: _initialized(nn.Dense(0))(x24), ArgumentError, ("Dense", "units is 0")),
    Case("Dense units=-3", lambda w: nn.Dense(-3), ArgumentError, ("units", "-3")),
    Case("Dense units=2.5", lambda w: nn.Dense(2.5), ArgumentTypeError, ("units", "2.5")),
    Case("Dense units='abc'", lambda w: nn.Dense("abc"), ArgumentTypeError, ("units", "'abc'")),
    Case("Dense units=True", lambda w: nn.Dense(True), ArgumentTypeError, ("units", "True")),
    Case("Dense units=None", lambda w: nn.Dense(None), ArgumentTypeError, ("units", "None")),
    Case("Dense in_units=-1", lambda w: nn.Dense(3, in_units=-1), ArgumentError, ("in_units", "-1")),
    Case("Dense in_units=1.5", lambda w: nn.Dense(3, in_units=1.5), ArgumentTypeError, ("in_units", "1.5")),
    Case("Dense activation='bogus'", lambda w: nn.Dense(3, activation="bogus"), ArgumentError,
         ("Dense", "'bogus'", "relu")),
    Case("Dense activation=3", lambda w: nn.Dense(3, activation=3), ArgumentError, ("activation", "3")),
    Case("Dense use_bias='yes'", lambda w: nn.Dense(3, use_bias="yes"), ArgumentTypeError, ("use_bias", "'yes'")),
    Case("Dense flatten=1", lambda w: nn.Dense(3, flatten=1), ArgumentTypeError, ("flatten", "1")),
    Case("Dense dtype='int32'", lambda w: nn.Dense(3, dtype="int32"), ArgumentError, ("dtype", "int32", "float32")),
    Case("Dense dtype='complex64'", lambda w: nn.Dense(3, dtype="complex64"), ArgumentError, ("complex64",)),
    Case("Dense dtype='nope'", lambda w: nn.Dense(3, dtype="nope"), ArgumentError, ("'nope'", "dtype")),
    Case("Dense weight_initializer='nope'", lambda w: nn.Dense(3, weight_initializer="nope"), InitializerError,
         ("weight_initializer", "'nope'", "xavier")),
    Case("Dense bias_initializer=3", lambda w: nn.Dense(3, bias_initializer=3), InitializerError,
         ("bias_initializer", "3")),
    Case("Dense prefix=3", lambda w: nn.Dense(3, prefix=3), ArgumentTypeError, ("prefix", "3")),
    # --- Conv2D ---------------------------------------------------------------------------------
    Case("Conv2D channels=0", lambda w: nn.Conv2D(0, 3), ArgumentError, ("Conv2D", "channels", "0")),
    Case("Conv2D kernel_size=0", lambda w: nn.Conv2D(2, 0), ArgumentError, ("kernel_size", "0")),
    Case("Conv2D kernel_size=(3,)", lambda w: nn.Conv2D(2, (3,)), ArgumentError, ("kernel_size", "(3,)", "pair")),
    Case("Conv2D kernel_size=(3,3,3)", lambda w: nn.Conv2D(2, (3, 3, 3)), ArgumentError, ("kernel_size", "3 values")),
    Case("Conv2D kernel_size=(3,0)", lambda w: nn.Conv2D(2, (3, 0)), ArgumentError, ("kernel_size", "(3, 0)")),
    Case("Conv2D kernel_size='3'", lambda w: nn.Conv2D(2, "3"), ArgumentTypeError, ("kernel_size", "'3'")),
    Case("Conv2D strides=0", lambda w: nn.Conv2D(2, 3, strides=0), ArgumentError, ("strides", "0")),
    Case("Conv2D strides=(1,-1)", lambda w: nn.Conv2D(2, 3, strides=(1, -1)), ArgumentError, ("strides", "(1, -1)")),
    Case("Conv2D strides=1.5", lambda w: nn.Conv2D(2, 3, strides=1.5), ArgumentTypeError, ("strides", "1.5")),
    Case("Conv2D padding=-1", lambda w: nn.Conv2D(2, 3, padding=-1), ArgumentError, ("padding", "-1")),
    Case("Conv2D dilation=0", lambda w: nn.Conv2D(2, 3, dilation=0), ArgumentError, ("dilation", "0")),
    Case("Conv2D dilation=-10**7", lambda w: nn.Conv2D(1, 2, strides=10**7, dilation=-10**7, in_channels=1),
         ArgumentError, ("dilation", "-10000000")),
    Case("Conv2D groups=0", lambda w: nn.Conv2D(2, 3, groups=0), ArgumentError, ("groups", "0")),
    Case("Conv2D groups not dividing channels", lambda w: nn.Conv2D(4, 3, groups=3), ArgumentError,
         ("channels (4)", "groups (3)")),
    Case("Conv2D in_channels not divisible", lambda w: nn.Conv2D(4, 3, in_channels=3, groups=2), ArgumentError,
         ("in_channels (3)",)),
    Case("Conv2D in_channels=-1", lambda w: nn.Conv2D(4, 3, in_channels=-1), ArgumentError, ("in_channels", "-1")),
    Case("Conv2D layout='NCDHW'", lambda w: nn.Conv2D(4, 3, layout="NCDHW"), ArgumentError, ("layout", "'NCDHW'")),
    Case("Conv2DTranspose layout='NHWC'", lambda w: nn.Conv2DTranspose(4, 3, layout="NHWC"), ArgumentError,
         ("Conv2DTranspose", "layout", "'NHWC'")),
    Case("Conv1D kernel_size=(3, 3)", lambda w: nn.Conv1D(4, (3, 3)), ArgumentError, ("Conv1D", "kernel_size")),
    Case("Conv3D strides=(1, 0, 1)", lambda w: nn.Conv3D(4, 3, strides=(1, 0, 1)), ArgumentError,
         ("Conv3D", "strides", "(1, 0, 1)")),
    Case("Conv2DTranspose output_padding=2 with strides=2", lambda w: nn.Conv2DTranspose(4, 3, strides=2,
         output_padding=2), ArgumentError, ("output_padding", "smaller")),
    Case("Conv2D activation='x'", lambda w: nn.Conv2D(4, 3, activation="x"), ArgumentError, ("'x'",)),
    # --- pooling --------------------------------------------------------------------------------
    Case("MaxPool2D(0)", lambda w: nn.MaxPool2D(0), ArgumentError, ("MaxPool2D", "pool_size", "0")),
    Case("MaxPool2D((2, 0))", lambda w: nn.MaxPool2D((2, 0)), ArgumentError, ("pool_size", "(2, 0)")),
    Case("MaxPool2D strides=0", lambda w: nn.MaxPool2D(2, strides=0), ArgumentError, ("strides", "0")),
    Case("MaxPool2D padding=-1", lambda w: nn.MaxPool2D(2, padding=-1), ArgumentError, ("padding", "-1")),
    Case("MaxPool2D padding as large as the window", lambda w: nn.MaxPool2D(2, padding=2), ArgumentError,
         ("padding (2, 2)", "smaller than")),
    Case("AvgPool2D layout='NWC'", lambda w: nn.AvgPool2D(layout="NWC"), ArgumentError, ("AvgPool2D", "layout")),
    Case("MaxPool3D pool_size=(2, 2)", lambda w: nn.MaxPool3D((2, 2)), ArgumentError, ("MaxPool3D", "pool_size")),
    Case("AvgPool1D ceil_mode=1", lambda w: nn.AvgPool1D(ceil_mode=1), ArgumentTypeError, ("ceil_mode", "1")),
    Case("GlobalMaxPool1D layout='NCHW'", lambda w: nn.GlobalMaxPool1D(layout="NCHW"), ArgumentError,
         ("GlobalMaxPool1D", "layout")),
    Case("GroupNorm num_groups=0", lambda w: nn.GroupNorm(num_groups=0), ArgumentError, ("GroupNorm", "num_groups")),
    Case("InstanceNorm epsilon=0", lambda w: nn.InstanceNorm(epsilon=0), ArgumentError, ("InstanceNorm", "epsilon")),
    Case("ReflectionPad2D(-1)", lambda w: nn.ReflectionPad2D(-1), ArgumentError, ("ReflectionPad2D", "padding")),
    Case("PReLU in_channels=0", lambda w: nn.PReLU(in_channels=0), ArgumentError, ("PReLU", "in_channels")),
    Case("LeakyReLU alpha=-1", lambda w: nn.LeakyReLU(-1), ArgumentError, ("LeakyReLU", "alpha")),
    Case("AvgPool2D count_include_pad='no'", lambda w: nn.AvgPool2D(count_include_pad="no"), ArgumentTypeError,
         ("count_include_pad",)),
    Case("AvgPool2D pool_size=2.5", lambda w: nn.AvgPool2D(2.5), ArgumentTypeError, ("pool_size", "2.5")),
    # --- normalization, embedding, dropout, activation, containers ----------------------------------
    Case("BatchNorm axis=1.5", lambda w: nn.BatchNorm(axis=1.5), ArgumentTypeError, ("BatchNorm", "axis", "1.5")),
    Case("BatchNorm momentum=2", lambda w: nn.BatchNorm(momentum=2), ArgumentError, ("momentum", "2")),
    Case("BatchNorm epsilon=0", lambda w: nn.BatchNorm(epsilon=0), ArgumentError, ("epsilon", "0")),
    Case("BatchNorm epsilon=nan", lambda w: nn.BatchNorm(epsilon=float("nan")), ArgumentError, ("epsilon", "nan")),
    Case("BatchNorm center='y'", lambda w: nn.BatchNorm(center="y"), ArgumentTypeError, ("center",)),
    Case("BatchNorm in_channels=-3", lambda w: nn.BatchNorm(in_channels=-3), ArgumentError, ("in_channels", "-3")),
    Case("LayerNorm axis=0", lambda w: nn.LayerNorm(axis=0), ArgumentError, ("LayerNorm", "axis=0")),
    Case("LayerNorm epsilon=-1", lambda w: nn.LayerNorm(epsilon=-1), ArgumentError, ("epsilon", "-1")),
    Case("RMSNorm epsilon=inf", lambda w: nn.RMSNorm(epsilon=float("inf")), ArgumentError, ("RMSNorm", "epsilon")),
    Case("Embedding input_dim=0", lambda w: nn.Embedding(0, 4), ArgumentError, ("Embedding", "input_dim", "0")),
    Case("Embedding output_dim=-1", lambda w: nn.Embedding(10, -1), ArgumentError, ("output_dim", "-1")),
    Case("Embedding input_dim=2.5", lambda w: nn.Embedding(2.5, 4), ArgumentTypeError, ("input_dim", "2.5")),
    Case("Embedding dtype='int64'", lambda w: nn.Embedding(10, 4, dtype="int64"), ArgumentError, ("int64",)),
    Case("Dropout rate=1", lambda w: nn.Dropout(1), ArgumentError, ("Dropout", "rate", "1")),
    Case("Dropout rate=-0.1", lambda w: nn.Dropout(-0.1), ArgumentError, ("rate", "-0.1")),
    Case("Dropout rate='x'", lambda w: nn.Dropout("x"), ArgumentTypeError, ("rate", "'x'")),
    Case("Dropout axes='a'", lambda w: nn.Dropout(0.5, axes="a"), ArgumentTypeError, ("axes", "'a'")),
    Case("Activation('bogus')", lambda w: nn.Activation("bogus"), ArgumentError, ("Activation", "'bogus'")),
    Case("Activation(None)", lambda w: nn.Activation(None), ArgumentError, ("None",)),
    Case("Sequential.add(3)", lambda w: w.ready.add(3), ArgumentTypeError, ("Sequential.add", "3")),
    Case("Sequential.add(block, fn)", lambda w: w.ready.add(nn.Dense(2), len), ArgumentTypeError, ("len",)),
    Case("collect_params('(')", lambda w: w.ready.collect_params("("), ArgumentError, ("select", "'('")),
    # --- initializers ---------------------------------------------------------------------------
    Case("Uniform(nan)", lambda w: init.Uniform(float("nan")), InitializerError, ("Uniform", "scale", "nan")),
    Case("Uniform(inf)", lambda w: init.Uniform(float("inf")), InitializerError, ("scale", "inf")),
    Case("Uniform(-1)", lambda w: init.Uniform(-1), InitializerError, ("scale", "-1")),
    Case("Uniform('a')", lambda w: init.Uniform("a"), ArgumentTypeError, ("scale", "'a'")),
    Case("Uniform(True)", lambda w: init.Uniform(True), ArgumentTypeError, ("scale", "True")),
    Case("Normal(nan)", lambda w: init.Normal(float("nan")), InitializerError, ("Normal", "sigma", "nan")),
    Case("Normal(-1)", lambda w: init.Normal(-1), InitializerError, ("sigma", "-1")),
    Case("Normal(inf)", lambda w: init.Normal(float("inf")), InitializerError, ("sigma", "inf")),
    Case("Normal(1j)", lambda w: init.Normal(1j), ArgumentTypeError, ("sigma", "1j")),
    Case("TruncatedNormal(a=1, b=0)", lambda w: init.TruncatedNormal(a=1, b=0), InitializerError, ("a < b", "a=1")),
    Case("TruncatedNormal(sigma=-1)", lambda w: init.TruncatedNormal(sigma=-1), InitializerError, ("sigma", "-1")),
    Case("TruncatedNormal(mean=nan)", lambda w: init.TruncatedNormal(mean=float("nan")), InitializerError,
         ("mean", "nan")),
    Case("Constant(nan)", lambda w: init.Constant(float("nan")), InitializerError, ("Constant", "value", "nan")),
    Case("Constant(inf)", lambda w: init.Constant(float("inf")), InitializerError, ("value", "inf")),
    Case("Constant('x')", lambda w: init.Constant("x"), ArgumentTypeError, ("value", "'x'")),
    Case("Xavier(rnd_type='gauss')", lambda w: init.Xavier(rnd_type="gauss"), InitializerError,
         ("rnd_type", "'gauss'", "'gaussian'")),
    Case("Xavier(factor_type='x')", lambda w: init.Xavier(factor_type="x"), InitializerError, ("factor_type",)),
    Case("Xavier(magnitude=inf)", lambda w: init.Xavier(magnitude=float("inf")), InitializerError,
         ("magnitude", "inf")),
    Case("Xavier(magnitude=0)", lambda w: init.Xavier(magnitude=0), InitializerError, ("magnitude", "0")),
    Case("MSRAPrelu(slope=nan)", lambda w: init.MSRAPrelu(slope=float("nan")), InitializerError, ("slope", "nan")),
    Case("MSRAPrelu(factor_type='x')", lambda w: init.MSRAPrelu(factor_type="x"), InitializerError, ("factor_type",)),
    Case("VarianceScaling(scale=0)", lambda w: init.VarianceScaling(0), InitializerError, ("scale", "0")),
    Case("VarianceScaling(mode='fan')", lambda w: init.VarianceScaling(mode="fan"), InitializerError,
         ("mode", "'fan'", "'fan_in'")),
    Case("VarianceScaling(distribution='x')", lambda w: init.VarianceScaling(distribution="x"), InitializerError,
         ("distribution",)),
    Case("XavierUniform(gain=0)", lambda w: init.XavierUniform(0), InitializerError, ("XavierUniform", "gain")),
    Case("XavierNormal(gain=nan)", lambda w: init.XavierNormal(float("nan")), InitializerError, ("gain", "nan")),
    Case("KaimingUniform(mode='x')", lambda w: init.KaimingUniform(mode="x"), InitializerError,
         ("KaimingUniform", "mode")),
    Case("KaimingNormal(nonlinearity='swish')", lambda w: init.KaimingNormal(nonlinearity="swish"),
         InitializerError, ("nonlinearity", "'swish'")),
    Case("KaimingUniform(a=nan)", lambda w: init.KaimingUniform(a=float("nan")), InitializerError, ("nan",)),
    Case("Orthogonal(scale=nan)", lambda w: init.Orthogonal(scale=float("nan")), InitializerError,
         ("Orthogonal", "scale", "nan")),
    Case("Orthogonal(rand_type='x')", lambda w: init.Orthogonal(rand_type="x"), InitializerError, ("rand_type",)),
    Case("Mixed(['('], ...)", lambda w: init.Mixed(["("], [init.Zero()]), InitializerError, ("'('", "escape")),
    Case("Mixed lengths differ", lambda w: init.Mixed([".*"], [init.Zero(), init.One()]), InitializerError,
         ("1 patterns", "2 initializers")),
    Case("Mixed(str, ...)", lambda w: init.Mixed(".*", [init.Zero()]), ArgumentTypeError, ("Mixed",)),
    Case("init.create('nope')", lambda w: init.create("nope"), InitializerError, ("'nope'", "zeros")),
    Case("calculate_gain('x')", lambda w: init.calculate_gain("x"), InitializerError, ("nonlinearity", "'x'")),
    # --- fills that would overflow their dtype (found at initialize, before allocating) -------------
    Case("Constant(1e300) into float32", lambda w: fresh_dense(init.Constant(1e300)), InitializerError,
         ("constant(1e+300)", "float32", "infinite")),
    Case("Uniform(1e39) into float32", lambda w: fresh_dense(init.Uniform(1e39)), InitializerError,
         ("uniform", "float32")),
    Case("Normal(1e4) into float16", lambda w: fresh_dense(init.Normal(1e4), "float16"), InitializerError,
         ("normal", "float16")),
    Case("Constant(70000) into float16", lambda w: fresh_dense(init.Constant(70000.0), "float16"),
         InitializerError, ("float16", "70000")),
    Case("Xavier on a 1-D parameter", lambda w: nn.Dense(3, in_units=2, bias_initializer=init.Xavier()).initialize(
        device="cpu"), InitializerError, ("dense", "bias", "at least 2 dimensions")),
    # --- Parameter ------------------------------------------------------------------------------
    Case("Parameter(name='')", lambda w: gpuinit.Parameter(""), ArgumentError, ("name",)),
    Case("Parameter(name=3)", lambda w: gpuinit.Parameter(3), ArgumentTypeError, ("name", "3")),
    Case("Parameter(shape='12')", lambda w: gpuinit.Parameter("w", shape="12"), ArgumentTypeError,
         ("'w'", "shape", "'12'")),
    Case("Parameter(shape=(2.5,))", lambda w: gpuinit.Parameter("w", shape=(2.5,)), ArgumentTypeError, ("(2.5,)",)),
    Case("Parameter(shape=(-1, 2))", lambda w: gpuinit.Parameter("w", shape=(-1, 2)), ArgumentError, ("(-1, 2)",)),
    Case("Parameter(shape=True)", lambda w: gpuinit.Parameter("w", shape=True), ArgumentTypeError, ("True",)),
    Case("Parameter(dtype='int32')", lambda w: gpuinit.Parameter("w", shape=(2,), dtype="int32"), ArgumentError,
         ("'w'", "int32")),
    Case("Parameter(role='foo')", lambda w: gpuinit.Parameter("w", role="foo"), ArgumentError, ("role", "'foo'")),
    Case("Parameter(grad_req='maybe')", lambda w: gpuinit.Parameter("w", grad_req="maybe"), ArgumentError,
         ("grad_req", "'maybe'")),
    Case("Parameter(allow_deferred_init='x')", lambda w: gpuinit.Parameter("w", allow_deferred_init="x"),
         ArgumentTypeError, ("allow_deferred_init",)),
    Case("Parameter(init='nope')", lambda w: gpuinit.Parameter("w", init="nope"), InitializerError, ("'w'", "'nope'")),
    Case("grad_req = 'x' on a parameter", lambda w: setattr(w.ready[0].weight, "grad_req", "x"), ArgumentError,
         ("grad_req", "'x'")),
    Case("shape change of an initialized parameter", lambda w: setattr(w.ready[0].weight, "shape", (6, 5)),
         ShapeError, ("(6, 4)", "(6, 5)")),
    Case("shape of another rank", lambda w: setattr(w.waiting[0].weight, "shape", (5, 3, 3)), ShapeError,
         ("(5, 0)", "(5, 3, 3)")),
    # --- initialize() -----------------------------------------------------------------------------
    Case("initialize(device='tpu')", lambda w: w.bare.initialize(device="tpu"), DeviceError, ("'tpu'", "cpu")),
    Case("initialize(device=3.5)", lambda w: w.bare.initialize(device=3.5), DeviceError, ("3.5",)),
    Case("initialize(device='cuda:x')", lambda w: w.bare.initialize(device="cuda:x"), DeviceError, ("'cuda:x'",)),
    Case("initialize(seed=-1)", lambda w: initialize_with(w.bare, seed=-1), ArgumentError, ("seed", "-1")),
    Case("initialize(seed=1.5)", lambda w: initialize_with(w.bare, seed=1.5), ArgumentTypeError, ("seed", "1.5")),
    Case("initialize(seed=True)", lambda w: initialize_with(w.bare, seed=True), ArgumentTypeError, ("seed", "True")),
    Case("initialize(force_reinit='yes')", lambda w: initialize_with(w.ready, force_reinit="yes"), ArgumentTypeError,
         ("force_reinit",)),
    Case("initialize(defer=1)", lambda w: initialize_with(w.bare, defer=1), ArgumentTypeError, ("defer",)),
    Case("initialize(init='nope')", lambda w: initialize_with(w.bare, init="nope"), InitializerError, ("'nope'",)),
    Case("initialize(init=3)", lambda w: initialize_with(w.bare, init=3), InitializerError, ("3",)),
    Case("unknown shape without deferral", lambda w: gpuinit.Parameter("w", shape=(3, 0), role="weight",
                                                                       allow_deferred_init=False).initialize(device="cpu"),
         DeferredInitializationError, ("'w'", "(3, 0)", "full shape")),
    # --- forward inputs -------------------------------------------------------------------------
    Case("complex input", lambda w: w.ready(x24.astype(np.complex64)), ArgumentTypeError, ("complex64", "real")),
    Case("string input", lambda w: w.waiting(np.array([["a", "b"]])), ArgumentTypeError, ("<U1",)),
    Case("complex input in a list", lambda w: w.waiting([x24.astype(complex)]), ArgumentTypeError, ("[0]",)),
    Case("zero features at the first forward", lambda w: w.waiting(np.ones((2, 0), np.float32)), ArgumentError,
         ("(2, 0)", "no features")),
    Case("0-d input", lambda w: w.ready(np.float32(1.0)), ShapeError, ("dimension",)),
    Case("a list where an array goes", lambda w: w.ready([[1.0, 2.0, 3.0, 4.0]]), ArgumentTypeError,
         ("must be an array", "list")),
    Case("other feature count", lambda w: w.ready(np.ones((2, 5), np.float32)), ShapeError,
         ("dense", "(2, 5)", "(6, 4)")),
    Case("3-D input to a convolution", lambda w: w.conv(np.ones((2, 8, 8), np.float32)), ShapeError,
         ("Conv2D", "4 dimensions", "(2, 8, 8)")),
    Case("other channel count", lambda w: w.conv_ready(np.ones((1, 4, 8, 8), np.float32)), ShapeError,
         ("conv", "(1, 4, 8, 8)")),
    Case("odd channels for groups=2", lambda w: w.conv_ready(np.ones((1, 3, 8, 8), np.float32)), ShapeError,
         ("3 channels", "groups=2")),
    Case("input smaller than the kernel", lambda w: w.conv(np.ones((1, 2, 2, 2), np.float32)), ShapeError,
         ("too small", "(3, 3)")),
    Case("input smaller than the pool", lambda w: w.conv(np.ones((1, 2, 3, 3), np.float32)), ShapeError,
         ("too small", "window")),
    Case("embedding index too large", lambda w: w.emb(np.array([[1, 10]])), ArgumentError, ("Embedding", "[0, 10)", "10")),
    Case("embedding index negative", lambda w: w.emb(np.array([[-1, 2]])), ArgumentError, ("-1",)),
    Case("embedding index 1.5", lambda w: w.emb(np.array([[1.5, 2.0]])), ArgumentError, ("whole numbers",)),
    Case("embedding index bool", lambda w: w.emb(np.array([[True]])), ArgumentError, ("whole numbers",)),
    Case("norm channels after initialization", lambda w: w.norm_ready(np.ones((2, 5, 4), np.float32)),
         ShapeError, ("batchnorm", "(2, 5, 4)")),
    Case("zero channels to a norm", lambda w: w.norm(np.ones((2, 0, 4), np.float32)), ShapeError, ("no channels",)),
    Case("forward before initialize", lambda w: w.bare(np.ones((1, 2), np.float32)), UninitializedParameterError,
         ("'dense", "initialize")),
    Case("data() before the first forward", lambda w: w.waiting[0].weight.data(), DeferredInitializationError,
         ("weight", "in_units")),
    Case("input on another device kind", lambda w: w.ready(nd.array(x24, device="cpu").tolist()), ArgumentTypeError,
         ("list",)),
    # --- set_data -------------------------------------------------------------------------------
    Case("set_data of another shape", lambda w: w.ready[0].weight.set_data(np.zeros((4, 6))), ShapeError,
         ("(6, 4)", "(4, 6)")),
    Case("set_data with complex values", lambda w: w.ready[0].weight.set_data(np.zeros((6, 4), complex)),
         ArgumentTypeError, ("complex128", "real")),
    Case("set_data with strings", lambda w: w.ready[0].bias.set_data([[1, 2], [3, "x"], [5, 6]]), ArgumentTypeError,
         ("dense", "real numbers")),
    Case("set_data with a ragged list", lambda w: w.ready[0].bias.set_data([[1, 2], [3]]), ArgumentTypeError,
         ("dense",)),
    Case("set_data that overflows float16", lambda w: w.half.weight.set_data(np.full((2, 2), 1e6)), ArgumentError,
         ("float16", "infinite")),
    Case("set_data on a deferred parameter", lambda w: w.waiting[0].weight.set_data(np.zeros((5, 3))),
         DeferredInitializationError, ("weight",)),
    Case("set_data on an uninitialized parameter", lambda w: w.bare.weight.set_data(np.zeros((3, 2))),
         UninitializedParameterError, ("weight", "initialize")),
    # --- plan -----------------------------------------------------------------------------------
    Case("plan without inputs", lambda w: gpuinit.plan(w.waiting), PlanError, ("dense", "unknown shapes", "(2, 20)")),
    Case("plan with float dimensions", lambda w: gpuinit.plan(w.waiting, (2.5, 3)), ArgumentTypeError, ("(2.5, 3)",)),
    Case("plan with a zero dimension", lambda w: gpuinit.plan(w.waiting, (2, 0)), ArgumentError, ("(2, 0)", "positive")),
    Case("plan with a negative dimension", lambda w: gpuinit.plan(w.waiting, (2, -3)), ArgumentError, ("(2, -3)",)),
    Case("plan(dtype='int8')", lambda w: gpuinit.plan(w.waiting, (2, 3), dtype="int8"), ArgumentError, ("int8",)),
    Case("plan(device='tpu')", lambda w: gpuinit.plan(w.waiting, (2, 3), device="tpu"), DeviceError, ("'tpu'",)),
    Case("plan(input_dtype='nope')", lambda w: gpuinit.plan(w.waiting, (2, 3), input_dtype="nope"), ArgumentError,
         ("'nope'",)),
    Case("plan of something not a block", lambda w: gpuinit.plan("net", (2, 3)), ArgumentTypeError, ("str",)),
    Case("plan with inputs that do not fit", lambda w: gpuinit.plan(w.ready, (2, 5)), ShapeError, ("(2, 5)",)),
    Case("plan of a too small image", lambda w: gpuinit.plan(w.conv, (1, 2, 2, 2)), ShapeError, ("too small",)),
    Case("infer_shape of a complex input", lambda w: w.waiting.infer_shape(x24.astype(complex)), ArgumentTypeError,
         ("complex128",)),
    # --- shard ----------------------------------------------------------------------------------
    Case("shard rank=-1", lambda w: gpuinit.shard(w.ready, -1, 2), ArgumentError, ("rank", "-1", "[0, 2)")),
    Case("shard rank == world_size", lambda w: gpuinit.shard(w.ready, 2, 2), ArgumentError, ("rank", "2")),
    Case("shard world_size=0", lambda w: gpuinit.shard(w.ready, 0, 0), ArgumentError, ("world_size", "0")),
    Case("shard world_size=True", lambda w: gpuinit.shard(w.ready, 0, True), ArgumentTypeError, ("world_size",)),
    Case("shard rank=1.5", lambda w: gpuinit.shard(w.ready, 1.5, 4), ArgumentTypeError, ("rank", "1.5")),
    Case("shard of an uninitialized net", lambda w: gpuinit.shard(w.bare, 0, 2), UninitializedParameterError,
         ("initialize",)),
    Case("shard with unknown shapes", lambda w: gpuinit.shard(w.planned, 0, 2), DeferredInitializationError,
         ("gpuinit.plan",)),
    Case("shard of a string", lambda w: gpuinit.shard("net", 0, 2), ArgumentTypeError, ("str",)),
    # --- devices and environment ------------------------------------------------------------------
    Case("as_device('tpu')", lambda w: gpuinit.as_device("tpu"), DeviceError, ("'tpu'", "'cuda:N'")),
    Case("gpu(-1)", lambda w: gpuinit.gpu(-1), DeviceError, ("-1",)),
    Case("GPUINIT_DEVICE=tpu", lambda w: set_env("GPUINIT_DEVICE", "tpu", gpuinit.default_device), DeviceError,
         ("GPUINIT_DEVICE", "'tpu'")),
    Case("GPUINIT_DEVICE=tpu at initialize", lambda w: set_env("GPUINIT_DEVICE", "tpu", lambda: w.bare.initialize()),
         DeviceError, ("GPUINIT_DEVICE",)),
    Case("GPUINIT_NUM_THREADS=zero", lambda w: set_env("GPUINIT_NUM_THREADS", "zero", threaded_fill), ArgumentError,
         ("GPUINIT_NUM_THREADS", "'zero'")),
    Case("GPUINIT_NUM_THREADS=0", lambda w: set_env("GPUINIT_NUM_THREADS", "0", threaded_fill), ArgumentError,
         ("GPUINIT_NUM_THREADS", "'0'")),
    Case("GPUINIT_NUM_THREADS=0 at the first forward",
         lambda w: set_env("GPUINIT_NUM_THREADS", "0", lambda: w.waiting(x24)), ArgumentError, ("GPUINIT_NUM_THREADS",)),
    Case("GPUINIT_CPU_ENGINE=fastest at the first forward",
         lambda w: set_env("GPUINIT_CPU_ENGINE", "fastest", lambda: w.waiting(x24)), ArgumentError,
         ("GPUINIT_CPU_ENGINE", "'fastest'", "numpy")),
    Case("gpuinit.seed(-1)", lambda w: gpuinit.seed(-1), ArgumentError, ("seed", "-1")),
    Case("gpuinit.seed('1')", lambda w: gpuinit.seed("1"), ArgumentTypeError, ("seed", "'1'")),
    # --- Gluon's parameter sharing, dictionaries, devices, gradients, hybrid blocks ----------------
    Case("Dense params=3", lambda w: nn.Dense(3, params=3), ArgumentTypeError, ("params", "ParameterDict", "int")),
    Case("Dense sharing a weight of another shape", lambda w: nn.Dense(3, in_units=5, params=w.ready[0].params),
         ArgumentError, ("weight", "(6, 4)", "(3, 5)")),
    Case("Dense sharing a weight of another dtype",
         lambda w: nn.Dense(6, in_units=4, dtype="float16", params=w.ready[0].params), ArgumentError,
         ("weight", "float32", "float16")),
    Case("ParameterDict(prefix=3)", lambda w: gpuinit.ParameterDict(3), ArgumentTypeError, ("prefix", "3")),
    Case("ParameterDict(shared=3)", lambda w: gpuinit.ParameterDict("a_", 3), ArgumentTypeError,
         ("shared", "ParameterDict", "int")),
    Case("params.get of another shape", lambda w: w.ready[0].params.get("weight", shape=(7, 7)), ArgumentError,
         ("weight", "(6, 4)", "(7, 7)")),
    Case("params.get of another dtype", lambda w: w.ready[0].params.get("weight", dtype="float64"), ArgumentError,
         ("weight", "float32", "float64")),
    Case("params.get with an unknown attribute", lambda w: w.ready[0].params.get("weight", colour=1),
         ArgumentTypeError, ("colour",)),
    Case("params.get_constant of another value", lambda w: w.tied[0].params.get_constant("weight", np.ones(2)),
         ArgumentError, ("weight", "not a constant")),
    Case("params.update with a clashing name",
         lambda w: w.ready.collect_params().update({w.ready[0].weight.name: gpuinit.Parameter("x", shape=(2,))}),
         ArgumentError, ("update", "different parameter")),
    Case("params.setattr of an unknown attribute", lambda w: w.ready.collect_params().setattr("colour", 1),
         ArgumentError, ("colour", "grad_req")),
    Case("params.setattr grad_req='maybe'", lambda w: w.tied.collect_params().setattr("grad_req", "maybe"),
         ArgumentError, ("grad_req", "'maybe'")),
    Case("params.setattr init='nope'", lambda w: w.tied.collect_params().setattr("init", "nope"), InitializerError,
         ("init", "'nope'")),
    Case("params.setattr dtype='int8'", lambda w: w.tied.collect_params().setattr("dtype", "int8"), ArgumentError,
         ("int8",)),
    Case("two parameters of one name in a network", lambda w: _same_names().initialize(device="cpu"), ArgumentError,
         ("'same_weight'", "prefixes")),
    Case("Parameter(stype='row_sparse')", lambda w: gpuinit.Parameter("w", shape=(2,), stype="row_sparse"),
         ArgumentError, ("stype", "'row_sparse'", "dense")),
    Case("Parameter(lr_mult='a')", lambda w: gpuinit.Parameter("w", lr_mult="a"), ArgumentTypeError,
         ("lr_mult", "'a'")),
    Case("a block attribute holding a parameter set to a number", lambda w: setattr(w.ready[0], "weight", 3),
         ArgumentTypeError, ("weight", "Parameter", "int")),
    Case("initialize with an empty device list", lambda w: w.bare.initialize(device=[]), DeviceError,
         ("empty", "pass")),
    Case("initialize with a bad device in a list", lambda w: w.bare.initialize(ctx=["cpu", "tpu"]), DeviceError,
         ("'tpu'",)),
    Case("reset_ctx of an uninitialized network", lambda w: w.bare.collect_params().reset_ctx(gpuinit.cpu(1)),
         UninitializedParameterError, ("weight", "initialize")),
    Case("reset_ctx('tpu')", lambda w: w.tied.collect_params().reset_ctx("tpu"), DeviceError, ("'tpu'",)),
    Case("Parameter.initialize(init='nope')",
         lambda w: w.ready[0].weight.initialize(init="nope", force_reinit=True), InitializerError, ("'nope'",)),
    Case("Parameter.initialize(init=Xavier()) of a bias",
         lambda w: w.ready[0].bias.initialize(init=init.Xavier(), force_reinit=True), InitializerError,
         ("bias", "2 dimensions")),
    Case("grad of a parameter with grad_req='null'", lambda w: w.norm_ready[0].running_mean.grad(), RuntimeError,
         ("running_mean", "'null'", "grad_req")),
    Case("grad of a deferred parameter", lambda w: w.waiting[0].weight.grad(), DeferredInitializationError,
         ("weight", "gradient")),
    Case("grad of an uninitialized parameter", lambda w: w.bare.weight.grad(), UninitializedParameterError,
         ("weight", "initialize")),
    Case("grad on a device without a copy", lambda w: w.tied[0].weight.grad(gpuinit.cpu(5)), ArgumentError,
         ("cpu(5)", "cpu(0)")),
    Case("cast('int8')", lambda w: w.tied.cast("int8"), ArgumentError, ("cast", "int8")),
    Case("a HybridBlock parameter of unknown shape", lambda w: _hybrid_with_unknown_shape()(x24), PlanError,
         ("mine", "scale", "full shape")),
    Case("plan through a block that reads values", lambda w: gpuinit.plan(_reads_values(), (2, 4)), PlanError,
         ("readsvalues", "values", "in_units")),
    # --- nd -------------------------------------------------------------------------------------
    Case("nd.random.uniform(shape=-1)", lambda w: nd.random.uniform(shape=-1), ArgumentError, ("shape", "-1")),
    Case("nd.random.uniform(shape='a')", lambda w: nd.random.uniform(shape="a"), ArgumentTypeError, ("shape", "'a'")),
    Case("nd.random.uniform(low=nan)", lambda w: nd.random.uniform(low=float("nan")), ArgumentError, ("low", "nan")),
    Case("nd.random.uniform(low > high)", lambda w: nd.random.uniform(2, 1), InitializerError, ("low=2", "high=1")),
    Case("nd.random.normal(scale=-1)", lambda w: nd.random.normal(scale=-1), ArgumentError, ("scale", "-1")),
    Case("nd.random.normal(dtype='int32')", lambda w: nd.random.normal(dtype="int32"), InitializerError, ("int32",)),
    Case("nd.random.truncated_normal(a=b)", lambda w: nd.random.truncated_normal(a=1, b=1), InitializerError,
         ("a < b",)),
    Case("nd.conv2d with dilation 0", lambda w: nd.conv2d(img, np.ones((2, 2, 3, 3), np.float32), dilation=0),
         ArgumentError, ("conv2d", "dilation")),
    Case("nd.conv2d with mismatched channels", lambda w: nd.conv2d(img, np.ones((2, 3, 3, 3), np.float32)),
         ShapeError, ("conv2d", "2 channels")),
    Case("nd.pool2d with pool_type='min'", lambda w: nd.pool2d(img, "min", 2), ArgumentError, ("pool_type", "'min'")),
    Case("nd.activation('bogus')", lambda w: nd.activation(x24, "bogus"), ArgumentError, ("'bogus'",)),
]


def test_the_matrix_is_large_and_its_names_unique():
    assert len(CASES) >= 120
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_refused_clearly_and_changes_nothing(case):
    w = world()
    gc.collect()  # earlier cases' networks, kept by their tracebacks' cycles, must not die during this one
    enabled = gc.isenabled()
    gc.disable()
    try:
        before = observe(w)
        with pytest.raises(case.error) as err:
            case.act(w)
        after = observe(w)
    finally:
        if enabled:
            gc.enable()
    exc = err.value
    assert isinstance(exc, GpuInitError), type(exc)
    message = str(exc)
    for culprit in case.mentions:
        assert culprit in message, (culprit, message)
    assert any(word in message for word in FIX_WORDS), message
    assert after == before, message


@pytest.mark.parametrize("error,builtin", [(ArgumentError, ValueError), (ArgumentTypeError, TypeError),
                                           (ShapeError, ValueError), (InitializerError, ValueError),
                                           (DeferredInitializationError, RuntimeError),
                                           (UninitializedParameterError, RuntimeError),
                                           (DeviceError, RuntimeError), (OutOfMemoryError, MemoryError)])
def test_errors_are_also_the_builtin_classes_python_and_gluon_raise(error, builtin):
    assert issubclass(error, GpuInitError) and issubclass(error, builtin)
