"""Arrays and array operations: MXNet's ``nd`` namespace over NumPy and CuPy.

On the CPU the functions here return :class:`NDArray`, a ``numpy.ndarray`` subclass with MXNet
NDArray's methods (``asnumpy``, ``asscalar``, ``context``, ``copyto``, ``norm``, ...), so
``isinstance(x, numpy.ndarray)`` holds and NumPy code takes them unchanged. On a GPU they return
plain ``cupy.ndarray``: the functions below work on those too, the methods do not. Every function
also works on the shape-only arrays of a planning pass (:mod:`gpuinit.meta`), so a ``forward``
written with them can be planned and initialized lazily.

Creation functions take the device as ``device=`` or, as MXNet names it, ``ctx=``.
"""

from __future__ import annotations

import math

import numpy as np

from .. import checks, ops
from ..backend import array_module_of, is_cupy_array, to_numpy
from ..device import Device, as_device
from ..errors import ArgumentError, ArgumentTypeError, ShapeError
from ..meta import MetaArray, is_meta
from ..ops import gelu, layer_norm, matmul, rms_norm, silu, softrelu, softsign, take
from . import random
from ..arrays import NDArray, as_ndarray
from ..checkpoint import load, save  # MXNet's nd.load/nd.save, as safetensors (gpuinit.checkpoint)

_nd = as_ndarray


# Keyword arguments MXNet's operators take that change nothing here (names in a graph, cuDNN
# tuning); anything else is refused, so a misspelt argument is never silently ignored.
_INERT = frozenset({"name", "attr", "workspace", "cudnn_tune", "cudnn_off", "num_args", "stype"})


def _inert(kwargs, where: str) -> None:
    unknown = sorted(k for k in kwargs if k not in _INERT or (k == "stype" and kwargs[k] not in (None, "default")))
    if unknown:
        raise ArgumentTypeError(f"{where}: unexpected argument(s) {unknown}; see help({where}) for the arguments "
                                "it takes (sparse storage is not supported)")


def _where(device, ctx) -> Device:
    return as_device(device if device is not None else ctx)


def _xp(x):
    return np if is_meta(x) else array_module_of(x)


# --- creation -----------------------------------------------------------------------------------


def array(source, device=None, dtype=None, ctx=None):
    """An array with ``source``'s values on ``device`` (default device if None).

    An array keeps its dtype; anything else (lists, numbers) becomes float32, as in MXNet.
    """
    device = _where(device, ctx)
    if dtype is None:
        dtype = getattr(source, "dtype", None)
        dtype = np.float32 if dtype is None else dtype
    with device.activate():
        if device.is_gpu:
            return device.xp.asarray(source, dtype=dtype)
        return _nd(np.array(to_numpy(source), dtype=dtype))


def _create(fn, shape, device, ctx, dtype, *args):
    device = _where(device, ctx)
    shape = checks.shape(shape, "shape", f"nd.{fn}")
    with device.activate():
        return _nd(getattr(device.xp, fn)(shape, *args, dtype=dtype))


def empty(shape, device=None, dtype="float32", ctx=None):
    """An array whose values are not set (whatever the memory held)."""
    return _create("empty", shape, device, ctx, dtype)


def zeros(shape, device=None, dtype="float32", ctx=None, **kwargs):
    """An array of zeros."""
    _inert(kwargs, "nd.zeros")
    return _create("zeros", shape, device, ctx, dtype)


def ones(shape, device=None, dtype="float32", ctx=None, **kwargs):
    """An array of ones."""
    _inert(kwargs, "nd.ones")
    return _create("ones", shape, device, ctx, dtype)


def full(shape, val, device=None, dtype="float32", ctx=None):
    """An array filled with ``val``."""
    return _create("full", shape, device, ctx, dtype, val)


def arange(start, stop=None, step=1.0, repeat=1, device=None, dtype="float32", ctx=None, infer_range=None):
    """Evenly spaced values in ``[start, stop)``, each repeated ``repeat`` times (MXNet's ``repeat``)."""
    device = _where(device, ctx)
    repeat = checks.positive_int(repeat, "repeat", "nd.arange")
    with device.activate():
        out = device.xp.arange(start, stop, step, dtype=dtype)
        return _nd(out.repeat(repeat) if repeat > 1 else out)


def _like(x, fill):
    if is_meta(x):
        return MetaArray(x.shape, x.dtype)
    return _nd(fill(x))


def zeros_like(x, **kwargs):
    _inert(kwargs, "nd.zeros_like")
    """Zeros of ``x``'s shape, dtype and device."""
    return _like(x, lambda a: array_module_of(a).zeros_like(a))


def ones_like(x, **kwargs):
    _inert(kwargs, "nd.ones_like")
    """Ones of ``x``'s shape, dtype and device."""
    return _like(x, lambda a: array_module_of(a).ones_like(a))


def full_like(x, fill_value, **kwargs):
    _inert(kwargs, "nd.full_like")
    return _like(x, lambda a: array_module_of(a).full_like(a, fill_value))


def one_hot(indices, depth, on_value=1.0, off_value=0.0, dtype="float32"):
    """``(..., depth)`` arrays with ``on_value`` at each index and ``off_value`` elsewhere."""
    depth = checks.positive_int(depth, "depth", "nd.one_hot")
    if is_meta(indices):
        return MetaArray(tuple(indices.shape) + (depth,), dtype)
    xp = array_module_of(indices)
    hot = xp.asarray(indices).astype(np.int64)[..., None] == xp.arange(depth)
    return _nd(xp.where(hot, on_value, off_value).astype(dtype))


# --- arithmetic and element-wise functions --------------------------------------------------------


def _unary(ufunc):
    def apply(data, **kwargs):
        _inert(kwargs, f"nd.{ufunc.__name__}")
        return _nd(ufunc(data))
    apply.__name__ = ufunc.__name__
    apply.__doc__ = f"Element-wise ``numpy.{ufunc.__name__}`` (on any backend)."
    return apply


exp, log, sqrt, square, tanh = _unary(np.exp), _unary(np.log), _unary(np.sqrt), _unary(np.square), _unary(np.tanh)
sin, cos, floor, ceil, sign = _unary(np.sin), _unary(np.cos), _unary(np.floor), _unary(np.ceil), _unary(np.sign)
log1p, expm1, negative, reciprocal = _unary(np.log1p), _unary(np.expm1), _unary(np.negative), _unary(np.reciprocal)
abs = _unary(np.absolute)  # noqa: A001 - MXNet's name
rsqrt = _unary(lambda x: 1 / np.sqrt(x))


def relu(data):
    return _nd(ops.relu(data))


def sigmoid(data):
    return _nd(ops.sigmoid(data))


def softmax(data, axis=-1, temperature=None):
    """Softmax along ``axis`` (optionally of ``data / temperature``)."""
    if temperature is not None:
        data = data / checks.real(temperature, "temperature", "nd.softmax", above=0)
    return _nd(ops.softmax(data, axis=axis))


def log_softmax(data, axis=-1):
    if is_meta(data):
        return MetaArray(data.shape, data.dtype)
    shifted = data - data.max(axis=axis, keepdims=True)
    return _nd(shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True)))


def activation(data, act_type="relu"):
    return _nd(ops.activation(data, act_type))


Activation = activation


def LeakyReLU(data, gamma=None, act_type="leaky", slope=0.25, lower_bound=0.125, upper_bound=0.334, **kwargs):
    """MXNet's ``LeakyReLU`` operator: leaky, prelu, elu, selu, gelu, rrelu (see :func:`gpuinit.ops.leaky_relu`)."""
    _inert(kwargs, "nd.LeakyReLU")
    return _nd(ops.leaky_relu(data, act_type, slope, gamma, lower_bound, upper_bound))


def _binary(ufunc, name):
    def apply(lhs, rhs):
        return _nd(ufunc(lhs, rhs))
    apply.__name__ = name
    apply.__doc__ = f"Element-wise ``numpy.{ufunc.__name__}`` with broadcasting (MXNet's ``nd.{name}``)."
    return apply


# MXNet's explicit names for arithmetic (hybrid_forward code calls them through F); NumPy's
# broadcasting covers both MXNet's broadcast_* and elemwise_* forms.
broadcast_add = elemwise_add = add = _binary(np.add, "broadcast_add")
broadcast_sub = broadcast_minus = elemwise_sub = subtract = _binary(np.subtract, "broadcast_sub")
broadcast_mul = elemwise_mul = multiply = _binary(np.multiply, "broadcast_mul")
broadcast_div = elemwise_div = divide = _binary(np.true_divide, "broadcast_div")
broadcast_power = _binary(np.power, "broadcast_power")
broadcast_maximum = _binary(np.maximum, "broadcast_maximum")
broadcast_minimum = _binary(np.minimum, "broadcast_minimum")
broadcast_equal = _binary(np.equal, "broadcast_equal")
broadcast_not_equal = _binary(np.not_equal, "broadcast_not_equal")
broadcast_greater, broadcast_lesser = _binary(np.greater, "broadcast_greater"), _binary(np.less, "broadcast_lesser")
equal, not_equal, greater, lesser = broadcast_equal, broadcast_not_equal, broadcast_greater, broadcast_lesser


def maximum(lhs, rhs):
    return _nd(np.maximum(lhs, rhs))


def minimum(lhs, rhs):
    return _nd(np.minimum(lhs, rhs))


def power(base, exp):
    return _nd(np.power(base, exp))


def clip(data, a_min, a_max):
    """Values limited to ``[a_min, a_max]``."""
    if is_meta(data):
        return MetaArray(data.shape, data.dtype)
    return _nd(np.clip(data, a_min, a_max))


def where(condition, x, y):
    """``x`` where ``condition`` is non-zero, else ``y``."""
    if is_meta(condition, x, y):
        return np.where(condition, x, y)
    return _nd(array_module_of(x).where(condition != 0, x, y))


def add_n(*args):
    """The element-wise sum of the arrays."""
    if not args:
        raise ArgumentError("nd.add_n needs at least one array")
    total = args[0]
    for a in args[1:]:
        total = total + a
    return _nd(total)


ElementWiseSum = add_n


# --- reductions ----------------------------------------------------------------------------------


def _axes(data, axis, exclude):
    if axis is None or axis == ():
        return None
    axis = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    if exclude:
        kept = {a % data.ndim for a in axis}
        return tuple(a for a in range(data.ndim) if a not in kept)
    return axis


def _reduction(method):
    def reduce(data, axis=None, keepdims=False, exclude=False, **kwargs):
        _inert(kwargs, f"nd.{method}")
        return _nd(getattr(data, method)(axis=_axes(data, axis, exclude), keepdims=keepdims))
    reduce.__name__ = method
    reduce.__doc__ = (f"``{method}`` over ``axis`` (all axes by default; with ``exclude`` over all but "
                      "``axis``), as MXNet's ``nd.{method}``.")
    return reduce


sum, mean, max, min, prod = (_reduction(m) for m in ("sum", "mean", "max", "min", "prod"))  # noqa: A001


def argmax(data, axis=None, keepdims=False):
    """Indices of the maxima along ``axis`` (integers, as NumPy gives them; MXNet gives floats)."""
    return _nd(data.argmax(axis=axis, keepdims=keepdims))


def argmin(data, axis=None, keepdims=False):
    return _nd(data.argmin(axis=axis, keepdims=keepdims))


def norm(data, ord=2, axis=None, keepdims=False):
    """The L2 (``ord=2``) or L1 (``ord=1``) norm over ``axis`` (all axes by default).

    Raises:
        ArgumentError: ``ord`` other than 1 or 2.
    """
    if ord not in (1, 2):
        raise ArgumentError(f"nd.norm: ord must be 1 or 2, got {ord!r}")
    if is_meta(data):
        return data.norm(ord, axis, keepdims)
    if ord == 1:
        return _nd(np.abs(data).sum(axis=axis, keepdims=keepdims))
    wide = data if data.dtype.kind == "f" else data.astype(np.float64)
    return _nd(np.sqrt((wide * wide).sum(axis=axis, keepdims=keepdims)))


# --- shapes ----------------------------------------------------------------------------------------


def reshape(data, shape, reverse=False):
    """``data`` reshaped, with MXNet's special values (see :meth:`NDArray.reshape`)."""
    from ..meta import gluon_reshape_shape
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    size = 0 if 0 in data.shape else 1
    return _nd(data.reshape(gluon_reshape_shape(data.shape, shape, reverse, size)))


def transpose(data, axes=None):
    """``data`` with its axes permuted (reversed when ``axes`` is empty or None)."""
    return _nd(data.transpose(*(tuple(axes) if axes else ())))


def swapaxes(data, dim1=0, dim2=0):
    return _nd(data.swapaxes(dim1, dim2))


SwapAxis = swapaxes


def expand_dims(data, axis):
    return _nd(np.expand_dims(data, axis))


def flatten(data):
    """``(N, ...)`` to ``(N, -1)``, as MXNet's ``Flatten``."""
    if data.ndim < 1:
        raise ShapeError(f"nd.flatten needs an array of at least one dimension, got shape {tuple(data.shape)}")
    return _nd(data.reshape(data.shape[0], math.prod(data.shape[1:])))


Flatten = flatten


def concat(*data, dim=1, num_args=None):
    """Join arrays along ``dim`` (MXNet's ``nd.concat``)."""
    return _nd(ops.concat(*data, dim=dim))


Concat = concat


def stack(*data, axis=0, num_args=None):
    """Join arrays of one shape along a new ``axis``."""
    if is_meta(*data):
        return np.stack(data, axis=axis)
    return _nd(array_module_of(data[0]).stack(data, axis=axis))


def split(data, num_outputs, axis=1, squeeze_axis=False):
    """``num_outputs`` equal parts of ``data`` along ``axis`` (a list; one part alone if 1)."""
    parts = np.split(data, num_outputs, axis=axis)
    if squeeze_axis:
        parts = [p.squeeze(axis=axis) for p in parts]
    parts = [_nd(p) for p in parts]
    return parts[0] if len(parts) == 1 else parts


def slice_axis(data, axis, begin, end):
    """``data[..., begin:end, ...]`` along ``axis``."""
    index = [slice(None)] * data.ndim
    index[axis] = slice(begin, end)
    return _nd(data[tuple(index)])


def broadcast_to(data, shape):
    """``data`` broadcast to ``shape`` (``0`` keeps the input's dimension, as in MXNet)."""
    shape = tuple(d if d else s for d, s in zip(shape, data.shape)) if len(shape) == data.ndim else tuple(shape)
    if is_meta(data):
        return np.broadcast_to(data, shape)
    return _nd(array_module_of(data).broadcast_to(data, shape))


def tile(data, reps):
    if is_meta(data):
        return MetaArray(np.tile(np.broadcast_to(np.int8(0), data.shape), reps).shape, data.dtype)
    return _nd(array_module_of(data).tile(data, reps))


def repeat(data, repeats, axis=None):
    if is_meta(data):
        return MetaArray(np.repeat(np.broadcast_to(np.int8(0), data.shape), repeats, axis).shape, data.dtype)
    return _nd(data.repeat(repeats, axis=axis))


def flip(data, axis):
    return _nd(_xp(data).flip(data, axis)) if not is_meta(data) else MetaArray(data.shape, data.dtype)


# --- products -------------------------------------------------------------------------------------


def dot(lhs, rhs, transpose_a=False, transpose_b=False):
    """MXNet's ``nd.dot``: sums over the last axis of ``lhs`` and the first axis of ``rhs``.

    For 1-D and 2-D arrays that is the matrix product. ``transpose_a``/``transpose_b`` reverse
    an operand's axes first.

    Raises:
        ShapeError: the summed axes differ in length.
    """
    if transpose_a:
        lhs = lhs.T
    if transpose_b:
        rhs = rhs.T
    if lhs.ndim <= 2 and rhs.ndim <= 2:
        return _nd(matmul(lhs, rhs))
    if lhs.shape[-1] != rhs.shape[0]:
        raise ShapeError(f"nd.dot: shapes {tuple(lhs.shape)} and {tuple(rhs.shape)} do not align "
                         f"({lhs.shape[-1]} != {rhs.shape[0]})")
    if is_meta(lhs, rhs):
        return MetaArray(tuple(lhs.shape[:-1]) + tuple(rhs.shape[1:]), np.result_type(lhs.dtype, rhs.dtype))
    return _nd(array_module_of(lhs).tensordot(lhs, rhs, axes=1))


def batch_dot(lhs, rhs, transpose_a=False, transpose_b=False):
    """Matrix products of matching batches: ``(B, N, K) x (B, K, M) -> (B, N, M)``."""
    if transpose_a:
        lhs = lhs.swapaxes(-1, -2)
    if transpose_b:
        rhs = rhs.swapaxes(-1, -2)
    return _nd(matmul(lhs, rhs))


# --- layers as functions (MXNet's operator names) ------------------------------------------------------


def dense(x, weight, bias=None):
    return _nd(ops.dense(x, weight, bias))


def FullyConnected(data, weight, bias=None, num_hidden=None, no_bias=False, flatten=True):
    """``data @ weight.T + bias``, flattening ``data`` to 2-D first unless ``flatten=False``."""
    if flatten and data.ndim != 2:
        data = data.reshape(data.shape[0], math.prod(data.shape[1:]))
    return _nd(ops.dense(data, weight, None if no_bias else bias))


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution in NCHW (see :func:`gpuinit.ops.conv2d`)."""
    return _nd(ops.conv2d(x, weight, bias, stride, padding, dilation, groups))


def pool2d(x, pool_type, pool_size, stride=None, padding=0, count_include_pad=True):
    """2-D max or average pooling in NCHW (see :func:`gpuinit.ops.pool2d`)."""
    return _nd(ops.pool2d(x, pool_type, pool_size, stride, padding, count_include_pad))


def _channels_first(layout, k, where):
    if layout is None:
        return True
    first, last = ops._SPATIAL_NAMES[k], ops._SPATIAL_NAMES[k][0] + ops._SPATIAL_NAMES[k][2:] + "C"
    if layout not in (first, last):
        raise ArgumentError(f"{where}: layout must be {first!r} or {last!r} for {k + 2}-D input, got {layout!r}")
    return layout == first


def _to_first(x, k):
    return x.transpose((0, k + 1) + tuple(range(1, k + 1)))


def _to_last(x, k):
    return x.transpose((0,) + tuple(range(2, k + 2)) + (1,))


def Convolution(data, weight, bias=None, kernel=None, stride=(), dilate=(), pad=(), num_filter=None,
                num_group=1, no_bias=False, layout=None, **kwargs):
    """MXNet's ``Convolution`` operator over 1-3 spatial axes (weight ``(O, C/groups, *kernel)``;
    with a channels-last ``layout``, data and weight have channels last)."""
    _inert(kwargs, "nd.Convolution")
    k = data.ndim - 2
    where = "nd.Convolution"
    if k not in ops._SPATIAL_NAMES:
        raise ShapeError(f"{where}: data must have 3 to 5 dimensions, got shape {tuple(data.shape)}")
    first = _channels_first(layout, k, where)
    if not first:
        data, weight = _to_first(data, k), _to_first(weight, k)
    y = ops.conv(data, weight, None if no_bias else bias, stride or 1, pad or 0, dilate or 1, num_group, k=k,
                 where=where)
    return _nd(y if first else _to_last(y, k))


def Deconvolution(data, weight, bias=None, kernel=None, stride=(), dilate=(), pad=(), adj=(), num_filter=None,
                  num_group=1, no_bias=True, layout=None, **kwargs):
    """MXNet's ``Deconvolution`` (transposed convolution) operator, channels first; weight
    ``(C, O/groups, *kernel)``; ``adj`` is the output padding."""
    _inert(kwargs, "nd.Deconvolution")
    k = data.ndim - 2
    where = "nd.Deconvolution"
    if k not in ops._SPATIAL_NAMES:
        raise ShapeError(f"{where}: data must have 3 to 5 dimensions, got shape {tuple(data.shape)}")
    if not _channels_first(layout, k, where):
        raise ArgumentError(f"{where}: only channels-first layouts are supported, got {layout!r}")
    return _nd(ops.conv_transpose(data, weight, None if no_bias else bias, stride or 1, pad or 0, dilate or 1,
                                  num_group, adj or 0, k=k, where=where))


def Pooling(data, kernel=(), pool_type="max", global_pool=False, stride=(), pad=(), pooling_convention="valid",
            count_include_pad=True, layout=None, **kwargs):
    """MXNet's ``Pooling`` operator over 1-3 spatial axes (``pooling_convention='full'`` keeps a
    last, partial window)."""
    _inert(kwargs, "nd.Pooling")
    k = data.ndim - 2
    where = "nd.Pooling"
    if k not in ops._SPATIAL_NAMES:
        raise ShapeError(f"{where}: data must have 3 to 5 dimensions, got shape {tuple(data.shape)}")
    checks.choice(pooling_convention, ("valid", "full"), "pooling_convention", where)
    first = _channels_first(layout, k, where)
    x = data if first else _to_first(data, k)
    if global_pool:
        y = ops.global_pool(x, checks.choice(pool_type, ("max", "avg"), "pool_type", where), tuple(range(2, k + 2)))
    else:
        y = ops.pool(x, pool_type, kernel, stride or None, pad or 0, count_include_pad,
                     pooling_convention == "full", k=k, where=where)
    return _nd(y if first else _to_last(y, k))


def BatchNorm(data, gamma, beta, moving_mean, moving_var, eps=1e-3, momentum=0.9, fix_gamma=True,
              use_global_stats=False, output_mean_var=False, axis=1, **kwargs):
    """MXNet's ``BatchNorm`` operator at inference: normalized with the moving statistics; with
    ``fix_gamma`` (MXNet's default) ``gamma`` is taken as 1.

    Raises:
        ArgumentError: ``output_mean_var=True`` (batch statistics are a training output).
    """
    _inert(kwargs, "nd.BatchNorm")
    if output_mean_var:
        raise ArgumentError("nd.BatchNorm: output_mean_var=True returns training statistics; gpuinit runs "
                            "inference only")
    if fix_gamma:
        gamma = gamma * 0 + 1
    return _nd(ops.batch_norm(data, gamma, beta, moving_mean, moving_var, eps, axis))


def Embedding(data, weight, input_dim=None, output_dim=None, **kwargs):
    _inert(kwargs, "nd.Embedding")
    return _nd(ops.take(weight, data))


def Dropout(data, p=0.5, **kwargs):
    """Identity: gpuinit runs inference only."""
    _inert(kwargs, "nd.Dropout")
    return data


# --- moving ------------------------------------------------------------------------------------------
# (nd.save and nd.load are the checkpoint issue's: gpuinit.checkpoint, safetensors files)


def asnumpy(x) -> np.ndarray:
    """A NumPy copy of an array from any device. Synchronizes the device for GPU arrays."""
    return to_numpy(x)


def waitall() -> None:
    """No-op: NumPy and CuPy calls return when their work is queued or done (MXNet's is asynchronous)."""


__all__ = ["abs", "Activation", "activation", "add", "add_n", "arange", "argmax", "argmin", "array",
           "array_module_of", "as_ndarray", "asnumpy", "batch_dot", "BatchNorm", "broadcast_add",
           "broadcast_div", "broadcast_equal", "broadcast_greater", "broadcast_lesser", "broadcast_maximum",
           "broadcast_minimum", "broadcast_minus", "broadcast_mul", "broadcast_not_equal", "broadcast_power",
           "broadcast_sub", "broadcast_to", "ceil", "clip", "Concat", "concat", "conv2d", "Convolution", "cos",
           "Deconvolution", "dense", "divide", "dot", "Dropout", "ElementWiseSum", "elemwise_add",
           "elemwise_div", "elemwise_mul", "elemwise_sub", "Embedding", "empty", "equal", "exp", "expand_dims",
           "expm1", "Flatten", "flatten", "flip", "floor", "full", "full_like", "FullyConnected", "gelu",
           "greater", "is_cupy_array", "layer_norm", "LeakyReLU", "lesser", "log", "log1p", "log_softmax",
           "matmul", "max", "maximum", "mean", "min", "minimum", "multiply", "NDArray", "negative", "norm",
           "not_equal", "one_hot", "ones", "ones_like", "ops", "pool2d", "Pooling", "power", "prod", "random",
           "reciprocal", "relu", "repeat", "reshape", "rms_norm", "rsqrt", "sigmoid", "sign", "silu", "sin",
           "slice_axis", "softmax", "softrelu", "softsign", "split", "sqrt", "square", "stack", "subtract",
           "sum", "swapaxes", "SwapAxis", "take", "tanh", "tile", "transpose", "waitall", "where", "zeros",
           "zeros_like"]
