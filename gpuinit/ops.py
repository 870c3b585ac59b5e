"""Array operations of the layers, written once for NumPy, CuPy and shape-only arrays.

Each function takes NumPy or CuPy arrays and computes with the array's own module; given a
:class:`~gpuinit.meta.MetaArray` it only works out the result's shape. NumPy's ufuncs and
functions reach CuPy through its ``__array_ufunc__``/``__array_function__`` protocols, so most
operations here are written with ``np.*`` and run on either backend unchanged.
"""

from __future__ import annotations

import math

import numpy as np

from . import checks
from .backend import array_module_of
from .errors import ArgumentError, ArgumentTypeError, OutOfMemoryError, ShapeError
from .meta import MetaArray, is_meta, matmul_shape

# --- layer operations ----------------------------------------------------------------------


def matmul(a, b):
    """Matrix product with NumPy's broadcasting rules."""
    if is_meta(a, b):
        return matmul_shape(a, b)
    return a @ b


def dense(x, weight, bias=None):
    """``x @ weight.T + bias`` over the last axis of ``x``."""
    y = matmul(x, weight.T)
    return y + bias if bias is not None else y


def relu(x):
    return np.maximum(x, 0)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def softrelu(x):
    """``log(1 + exp(x))``, computed without overflow."""
    return np.logaddexp(x, 0)


def softsign(x):
    return x / (1 + np.abs(x))


def gelu(x):
    """GELU with the tanh approximation (as GPT-2 uses): ``0.5 x (1 + tanh(sqrt(2/pi)(x + 0.044715 x^3)))``."""
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x * x * x)))


def silu(x):
    """``x * sigmoid(x)`` (also called swish), as LLaMA's SwiGLU uses."""
    return x * sigmoid(x)


_SELU_SCALE, _SELU_ALPHA = 1.0507009873554804934193349852946, 1.6732632423543772848170429916717


def leaky_relu(x, act_type="leaky", slope=0.25, gamma=None, lower_bound=0.125, upper_bound=0.334):
    """MXNet's ``LeakyReLU`` family, at inference.

    ``leaky``: ``x`` or ``slope * x`` below 0; ``prelu``: the same with the learned slopes
    ``gamma`` (one per channel, axis 1, or one for all); ``elu``: ``slope * (exp(x) - 1)`` below 0;
    ``selu``: the self-normalizing scaled ELU; ``gelu``: GELU (tanh approximation); ``rrelu``: the
    mean slope ``(lower_bound + upper_bound) / 2`` (its inference form).

    Raises:
        ArgumentError: an unknown ``act_type``; ShapeError: ``gamma`` that fits no channel axis.
    """
    checks.choice(act_type, ("leaky", "prelu", "elu", "selu", "gelu", "rrelu"), "act_type", "LeakyReLU")
    if act_type == "gelu":
        return gelu(x)
    if is_meta(x, gamma):
        return MetaArray(x.shape, x.dtype)
    if act_type == "prelu":
        if gamma is None:
            raise ArgumentError("LeakyReLU: act_type='prelu' needs gamma, the slopes")
        if gamma.size != 1:
            if x.ndim < 2 or x.shape[1] != gamma.size:
                raise ShapeError(f"LeakyReLU: {gamma.size} slopes (gamma) for an input of shape {tuple(x.shape)}; "
                                 "give one slope, or one per channel (axis 1)")
            gamma = gamma.reshape((1, gamma.size) + (1,) * (x.ndim - 2))
        return _keep_type(x, np.where(x >= 0, x, gamma * x).astype(x.dtype, copy=False))
    if act_type in ("leaky", "rrelu"):
        s = slope if act_type == "leaky" else (lower_bound + upper_bound) / 2
        return _keep_type(x, np.where(x >= 0, x, x * s).astype(x.dtype, copy=False))
    if act_type == "elu":
        return _keep_type(x, np.where(x > 0, x, slope * np.expm1(np.minimum(x, 0))).astype(x.dtype, copy=False))
    y = np.where(x >= 0, _SELU_SCALE * x, (_SELU_SCALE * _SELU_ALPHA) * np.expm1(np.minimum(x, 0)))
    return _keep_type(x, y.astype(x.dtype, copy=False))


ACTIVATIONS = {"relu": relu, "sigmoid": sigmoid, "tanh": np.tanh, "softrelu": softrelu,
               "softsign": softsign, "gelu": gelu, "silu": silu, "swish": silu}


def check_activation(act_type, where: str = "activation") -> str:
    """``act_type`` if it names an activation.

    Raises:
        ArgumentError: an unknown name (the message lists the known ones).
    """
    if not isinstance(act_type, str) or act_type not in ACTIVATIONS:
        raise ArgumentError(f"{where}: unknown activation {act_type!r}; expected one of {sorted(ACTIVATIONS)}")
    return act_type


def activation(x, act_type: str):
    """Apply the named activation (``relu``, ``sigmoid``, ``tanh``, ``softrelu``, ``softsign``, ``gelu``, ``silu``)."""
    return ACTIVATIONS[check_activation(act_type)](x)


def softmax(x, axis=-1):
    """Softmax along ``axis``, shifted by the maximum for stability."""
    if is_meta(x):
        return x.astype(x.dtype)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def concat(*xs, dim=1):
    """Concatenate along ``dim`` (MXNet's ``nd.concat``)."""
    return np.concatenate(xs, axis=dim)


def take(weight, indices):
    """Rows of ``weight`` picked by integer ``indices`` (an embedding lookup)."""
    if is_meta(weight, indices):
        ishape = indices.shape if is_meta(indices) else np.shape(indices)
        return MetaArray(tuple(ishape) + tuple(weight.shape[1:]), weight.dtype)
    xp = array_module_of(weight)
    return xp.take(weight, xp.asarray(indices).astype(np.int64), axis=0)


def layer_norm(x, gamma=None, beta=None, eps=1e-5):
    """Normalize over the last axis, then scale and shift."""
    if is_meta(x):
        return MetaArray(x.shape, x.dtype)
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    y = (x - mean) / np.sqrt(var + eps)
    if gamma is not None:
        y = y * gamma
    if beta is not None:
        y = y + beta
    return y.astype(x.dtype, copy=False)


def rms_norm(x, gamma, eps=1e-6):
    """Divide by the root mean square over the last axis, then scale (LLaMA's RMSNorm)."""
    if is_meta(x):
        return MetaArray(x.shape, x.dtype)
    y = x / np.sqrt((x * x).mean(axis=-1, keepdims=True) + eps)
    return (y * gamma).astype(x.dtype, copy=False)


def batch_norm(x, gamma, beta, mean, var, eps=1e-5, axis=1):
    """Inference batch norm with running statistics along ``axis``."""
    if is_meta(x):
        return MetaArray(x.shape, x.dtype)
    shape = [1] * x.ndim
    shape[axis] = x.shape[axis]
    scale = gamma / np.sqrt(var + eps)
    y = (x - mean.reshape(shape)) * scale.reshape(shape) + beta.reshape(shape)
    return y.astype(x.dtype, copy=False)


_SPATIAL_NAMES = {1: "NCW", 2: "NCHW", 3: "NCDHW"}


def _ntuple(v, k, name, where, minimum=1):
    return checks.int_tuple(v, k, name, where, minimum=minimum)


def instance_norm(x, gamma, beta, eps=1e-5):
    """Normalize each sample's channel (axis 1) over its spatial axes, then scale and shift per channel."""
    if is_meta(x):
        return MetaArray(x.shape, x.dtype)
    axes = tuple(range(2, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    y = (x - mean) / np.sqrt(var + eps) * gamma.reshape(shape) + beta.reshape(shape)
    return _keep_type(x, y.astype(x.dtype, copy=False))


def group_norm(x, gamma, beta, num_groups, eps=1e-5):
    """Split the channels (axis 1) into ``num_groups`` groups, normalize each sample's group over
    its channels and spatial axes, then scale and shift per group (``gamma``, ``beta``: one value
    per group, as MXNet 1.x's GroupNorm).

    Raises:
        ShapeError: channels that ``num_groups`` does not divide.
    """
    n, c = x.shape[0], x.shape[1]
    if c % num_groups:
        raise ShapeError(f"group_norm: the input of shape {tuple(x.shape)} has {c} channels, not a multiple of "
                         f"num_groups={num_groups}")
    if is_meta(x):
        return MetaArray(x.shape, x.dtype)
    g = x.reshape(n, num_groups, -1)
    mean = g.mean(axis=2, keepdims=True)
    var = ((g - mean) ** 2).mean(axis=2, keepdims=True)
    y = (g - mean) / np.sqrt(var + eps) * gamma.reshape(1, -1, 1) + beta.reshape(1, -1, 1)
    return _keep_type(x, y.reshape(x.shape).astype(x.dtype, copy=False))


def reflection_pad(x, pad_width):
    """Pad by reflecting the input at its edges (``numpy.pad`` mode ``reflect``); ``pad_width`` is
    ``(before, after)`` per axis.

    Raises:
        ShapeError: a padding not smaller than its axis (nothing to reflect).
    """
    for (before, after), size in zip(pad_width, x.shape):
        if max(before, after) >= max(size, 1) and (before or after):
            raise ShapeError(f"reflection padding {tuple(pad_width)} needs each padding smaller than its axis; "
                             f"the input has shape {tuple(x.shape)}")
    if is_meta(x):
        return MetaArray(tuple(s + a + b for s, (a, b) in zip(x.shape, pad_width)), x.dtype)
    return _keep_type(x, array_module_of(x).pad(x, pad_width, mode="reflect"))


def _pair(v, name, where="conv2d", minimum=1):
    return _ntuple(v, 2, name, where, minimum)


def conv_output_size(size, kernel, stride, pad, dilation=1):
    """Output length of a convolution or pooling window along one axis (floor convention)."""
    return (size + 2 * pad - dilation * (kernel - 1) - 1) // stride + 1


def pool_output_size(size, kernel, stride, pad, ceil_mode=False):
    """Output length of a pooling window along one axis: floor, or with ``ceil_mode`` MXNet's
    ``'full'`` convention (a last, partial window is kept)."""
    if ceil_mode:
        return -(-(size + 2 * pad - kernel) // stride) + 1
    return (size + 2 * pad - kernel) // stride + 1


def deconv_output_size(size, kernel, stride, pad, dilation=1, output_padding=0):
    """Output length of a transposed convolution along one axis."""
    return (size - 1) * stride - 2 * pad + dilation * (kernel - 1) + 1 + output_padding


def _windows(x, kernel, stride, dilation, out_size):
    """A view of ``x`` (N, C, *spatial) as (N, C, *out_size, *kernel) windows; no copy.

    Only reached with checked arguments: positive kernel, strides and dilation, and an output
    size derived from ``x``'s own shape, so every window lies in ``x``.
    """
    xp = array_module_of(x)
    s = x.strides
    k = len(kernel)
    return xp.lib.stride_tricks.as_strided(
        x, shape=tuple(x.shape[:2]) + tuple(out_size) + tuple(kernel),
        strides=s[:2] + tuple(s[2 + a] * stride[a] for a in range(k))
        + tuple(s[2 + a] * dilation[a] for a in range(k)),
        writeable=False)


def _pad_spatial(x, before, after=None, value=0.0):
    after = before if after is None else after
    if not any(before) and not any(after):
        return x
    xp = array_module_of(x)
    return xp.pad(x, ((0, 0), (0, 0)) + tuple(zip(before, after)), constant_values=value)


# Above this many bytes, a temporary of a convolution or pooling is checked against free memory
# first, so that absurd paddings or sizes give an OutOfMemoryError rather than whatever the
# allocator does.
_CHECK_ABOVE = 64 << 20


def _check_room(x, nbytes: int, what: str) -> None:
    if nbytes <= _CHECK_ABOVE:
        return
    from .device import device_of
    device = device_of(x)
    free, _ = device.memory_info()
    if free is not None and nbytes > free:
        raise OutOfMemoryError(f"{what} needs a temporary of {nbytes:,} bytes on {device}, more than the "
                               f"{free:,} free; use smaller inputs or less padding")


def _image_input(x, what, k=2):
    if x.ndim != k + 2:
        raise ShapeError(f"{what} expects {_SPATIAL_NAMES[k]} input ({k + 2} dimensions), got shape "
                         f"{tuple(x.shape)}")
    if not _real(x.dtype):
        raise ArgumentTypeError(f"{what}: input must hold real numbers, got dtype {x.dtype}")


def _real(dtype) -> bool:
    from .dtypes import is_real
    return is_real(dtype)


def _spatial_rank(x, where):
    k = len(x.shape) - 2
    if k not in _SPATIAL_NAMES:
        raise ShapeError(f"{where} expects NCW, NCHW or NCDHW input (3 to 5 dimensions), got shape "
                         f"{tuple(x.shape)}")
    return k


_LETTERS = "yxz"


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution (cross-correlation) in NCHW; ``weight`` is (O, C/groups, KH, KW).

    Raises:
        ArgumentError: a stride or dilation below 1, a negative padding, groups that do not divide
            the channels; ShapeError: shapes that do not fit, or an input too small for the kernel.
    """
    return conv(x, weight, bias, stride, padding, dilation, groups, k=2, where="conv2d")


def _conv_args(x, weight, stride, padding, dilation, groups, k, where, weight_layout):
    """The checks :func:`conv` and :func:`conv_transpose` share: the input's and weight's ranks, a
    weight with no empty dimension, and the arguments as tuples of ``k`` (the spatial rank).

    Returns:
        ``(k, stride, padding, dilation, groups)``.
    """
    k = _spatial_rank(x, where) if k is None else k
    stride, padding = _ntuple(stride, k, "strides", where), _ntuple(padding, k, "padding", where, minimum=0)
    dilation = _ntuple(dilation, k, "dilation", where)
    groups = checks.positive_int(groups, "groups", where)
    _image_input(x, where, k)
    if len(weight.shape) != k + 2:
        raise ShapeError(f"{where}: weight must be {weight_layout} with {k} kernel dimensions, got shape "
                         f"{tuple(weight.shape)}")
    if min(weight.shape) < 1:
        raise ShapeError(f"{where}: weight shape {tuple(weight.shape)} has an empty dimension")
    return k, stride, padding, dilation, groups


def conv(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, k=None, where="conv"):
    """Convolution (cross-correlation) over 1, 2 or 3 spatial axes, channels first (NCW, NCHW,
    NCDHW); ``weight`` is (O, C/groups, *kernel).

    Raises:
        ArgumentError: a stride or dilation below 1, a negative padding, groups that do not divide
            the channels; ShapeError: shapes that do not fit, or an input too small for the kernel.
    """
    k, stride, padding, dilation, groups = _conv_args(x, weight, stride, padding, dilation, groups, k, where,
                                                      "(out_channels, in_channels/groups, *kernel)")
    n, c, *size = x.shape
    o, cg, *kernel = weight.shape
    if c != cg * groups or o % groups:
        raise ShapeError(f"{where}: input has {c} channels and weight shape {tuple(weight.shape)} with "
                         f"groups={groups}; the input needs {cg * groups} channels and {o} must divide by "
                         f"{groups}")
    if bias is not None and tuple(bias.shape) != (o,):
        raise ShapeError(f"{where}: bias must have shape ({o},), got {tuple(bias.shape)}")
    out = tuple(conv_output_size(size[a], kernel[a], stride[a], padding[a], dilation[a]) for a in range(k))
    if min(out) < 1:
        raise ShapeError(f"convolution input {tuple(x.shape)} is too small for kernel {tuple(kernel)} with "
                         f"padding {padding} and dilation {dilation}: the output would be {out}; use a "
                         "larger input, more padding or less dilation")
    if is_meta(x, weight):
        return MetaArray((n, o) + out, x.dtype)
    itemsize = np.dtype(x.dtype).itemsize
    _check_room(x, n * c * math.prod(s + 2 * p for s, p in zip(size, padding)) * itemsize,
                f"{where}'s padded input")
    _check_room(x, n * o * math.prod(out) * 8, f"{where}'s output")
    win = _windows(_pad_spatial(x, padding), tuple(kernel), stride, dilation, out)
    win = win.reshape((n, groups, c // groups) + out + tuple(kernel))
    wg = weight.reshape((groups, o // groups, cg) + tuple(kernel))
    sp, ker = _LETTERS[:k], "ijl"[:k]
    y = np.einsum(f"ngc{sp}{ker},goc{ker}->ngo{sp}", win, wg, optimize=True).reshape((n, o) + out)
    if bias is not None:
        y = y + bias.reshape((1, o) + (1,) * k)
    return _keep_type(x, y.astype(x.dtype, copy=False))


def conv_transpose(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, output_padding=0,
                   k=None, where="conv_transpose"):
    """Transposed convolution (the gradient of :func:`conv` with respect to its input), channels
    first; ``weight`` is (C, O/groups, *kernel), as MXNet's Deconvolution takes it.

    Each output length is ``(n - 1) * stride - 2 * padding + dilation * (kernel - 1) + 1 +
    output_padding``.

    Raises:
        ArgumentError: a stride or dilation below 1, a negative padding or output_padding, an
            output_padding not below its stride or dilation; ShapeError: shapes that do not fit.
    """
    k, stride, padding, dilation, groups = _conv_args(x, weight, stride, padding, dilation, groups, k, where,
                                                      "(in_channels, out_channels/groups, *kernel)")
    output_padding = _ntuple(output_padding, k, "output_padding", where, minimum=0)
    for a in range(k):
        if output_padding[a] >= max(stride[a], dilation[a]):
            raise ArgumentError(f"{where}: output_padding {output_padding} must be smaller than the strides "
                                f"{stride} or the dilation {dilation} on each axis; use a smaller "
                                "output_padding")
    n, c, *size = x.shape
    cw, og, *kernel = weight.shape
    if c != cw or c % groups:
        raise ShapeError(f"{where}: input has {c} channels and weight shape {tuple(weight.shape)} with "
                         f"groups={groups}; the input needs {cw} channels, a multiple of {groups}")
    o = og * groups
    if bias is not None and tuple(bias.shape) != (o,):
        raise ShapeError(f"{where}: bias must have shape ({o},), got {tuple(bias.shape)}")
    out = tuple(deconv_output_size(size[a], kernel[a], stride[a], padding[a], dilation[a], output_padding[a])
                for a in range(k))
    if min(out) < 1 or min(size) < 1:
        raise ShapeError(f"transposed convolution of input {tuple(x.shape)} with kernel {tuple(kernel)}, padding "
                         f"{padding} gives output {out}; use less padding or a larger input")
    if is_meta(x, weight):
        return MetaArray((n, o) + out, x.dtype)
    full = tuple((size[a] - 1) * stride[a] + dilation[a] * (kernel[a] - 1) + 1 + output_padding[a]
                 for a in range(k))
    _check_room(x, n * o * math.prod(full) * 8, f"{where}'s output")
    xp = array_module_of(x)
    acc = np.result_type(x.dtype, weight.dtype, np.float32)
    buf = xp.zeros((n, groups, og) + full, dtype=acc)
    xg = x.reshape((n, groups, c // groups) + tuple(size))
    wg = weight.reshape((groups, c // groups, og) + tuple(kernel))
    sp = _LETTERS[:k]
    for offset in np.ndindex(*kernel):
        part = np.einsum(f"ngc{sp},gco->ngo{sp}", xg, wg[(Ellipsis,) + offset], optimize=True)
        index = tuple(slice(offset[a] * dilation[a], offset[a] * dilation[a] + (size[a] - 1) * stride[a] + 1,
                            stride[a]) for a in range(k))
        buf[(slice(None),) * 3 + index] += part
    crop = tuple(slice(padding[a], padding[a] + out[a]) for a in range(k))
    y = buf.reshape((n, o) + full)[(slice(None),) * 2 + crop]
    if bias is not None:
        y = y + bias.reshape((1, o) + (1,) * k)
    return _keep_type(x, y.astype(x.dtype))


def pool2d(x, pool_type, pool_size, stride=None, padding=0, count_include_pad=True):
    """Max or average pooling in NCHW (floor convention; average counts padding by default).

    Raises:
        ArgumentError: a window or stride below 1, a padding below 0 or not below the window, an
            unknown ``pool_type``; ShapeError: an input too small for the window.
    """
    return pool(x, pool_type, pool_size, stride, padding, count_include_pad, k=2, where="pool2d")


def pool(x, pool_type, pool_size, stride=None, padding=0, count_include_pad=True, ceil_mode=False, k=None,
         where="pool"):
    """Max or average pooling over 1, 2 or 3 spatial axes, channels first.

    ``ceil_mode`` keeps a last, partial window (MXNet's ``pooling_convention='full'``, with its
    output sizes); average pooling divides by the window's elements inside the padded input
    (``count_include_pad``) or inside the input alone. A last window that holds padding alone gives
    ``-inf`` (max) or 0 (average); one that would start beyond the padded input is refused.

    Raises:
        ArgumentError: a window or stride below 1, a padding below 0 or not below the window, an
            unknown ``pool_type``; ShapeError: an input too small for the window.
    """
    k = _spatial_rank(x, where) if k is None else k
    checks.choice(pool_type, ("max", "avg"), "pool_type", where)
    kernel = _ntuple(pool_size, k, "pool_size", where)
    stride = _ntuple(stride if stride is not None else kernel, k, "strides", where)
    padding = _ntuple(padding, k, "padding", where, minimum=0)
    if any(p >= w for p, w in zip(padding, kernel)):
        raise ArgumentError(f"{where}: padding {padding} must be smaller than the window {kernel} on each axis, "
                            "or some windows would hold only padding; use less padding")
    _image_input(x, where, k)
    n, c, *size = x.shape
    out = tuple(pool_output_size(size[a], kernel[a], stride[a], padding[a], ceil_mode) for a in range(k))
    if min(out) < 1:
        raise ShapeError(f"pooling input {tuple(x.shape)} is too small for window {kernel} with padding "
                         f"{padding}; use a larger input or a smaller window")
    if ceil_mode and any((out[a] - 1) * stride[a] - padding[a] >= size[a] + padding[a] for a in range(k)):
        raise ShapeError(f"{where}: with ceil_mode, input {tuple(x.shape)}, window {kernel}, strides {stride} "
                         f"and padding {padding}, the last window would start beyond the padded input; use "
                         "ceil_mode=False, a smaller stride or more padding")
    if is_meta(x):
        return MetaArray((n, c) + out, x.dtype)
    # what a last, partial window (ceil_mode) reaches beyond the padded input
    extra = tuple(max(0, (out[a] - 1) * stride[a] + kernel[a] - size[a] - 2 * padding[a]) for a in range(k))
    after = tuple(p + e for p, e in zip(padding, extra))
    _check_room(x, n * c * math.prod(s + p + q for s, p, q in zip(size, padding, after))
                * np.dtype(x.dtype).itemsize, f"{where}'s padded input")
    xp = array_module_of(x)
    dilation = (1,) * k
    axes = tuple(range(-k, 0))
    if pool_type == "max":
        kind = np.dtype(x.dtype).kind
        low = -np.inf if kind == "f" else np.iinfo(x.dtype).min if kind in "iu" else 0
        win = _windows(_pad_spatial(x, padding, after, low), kernel, stride, dilation, out)
        return _keep_type(x, win.max(axis=axes))
    win = _windows(_pad_spatial(x, padding, after), kernel, stride, dilation, out)
    total = win.sum(axis=axes)
    if not any(extra) and (count_include_pad or not any(padding)):
        return _keep_type(x, (total / math.prod(kernel)).astype(x.dtype, copy=False))
    if count_include_pad:  # ones over the padded input, zeros beyond it
        ones = _pad_spatial(xp.ones((1, 1) + tuple(s + 2 * p for s, p in zip(size, padding)), x.dtype),
                            (0,) * k, extra)
    else:
        ones = _pad_spatial(xp.ones((1, 1) + tuple(size), x.dtype), padding, after)
    # a last window of padding alone (ceil_mode) holds no input: its average is 0, not 0/0
    count = xp.maximum(_windows(ones, kernel, stride, dilation, out).sum(axis=axes), 1)
    return _keep_type(x, (total / count).astype(x.dtype, copy=False))


def global_pool(x, pool_type, axes):
    """Max or average over ``axes`` (the spatial ones), keeping them as size 1."""
    if pool_type == "max":
        return x.max(axis=axes, keepdims=True)
    return x.mean(axis=axes, keepdims=True)


def _keep_type(x, y):
    """``y`` viewed as ``x``'s array subclass (``NDArray``) when NumPy returned a plain array."""
    if type(y) is np.ndarray and isinstance(x, np.ndarray) and type(x) is not np.ndarray:
        return y.view(type(x))
    return y


def causal_mask(t: int, like):
    """A (t, t) additive mask: 0 on and below the diagonal, -inf above, on ``like``'s device."""
    if is_meta(like):
        return MetaArray((t, t), like.dtype)
    xp = array_module_of(like)
    return xp.triu(xp.full((t, t), -np.inf, dtype=like.dtype), 1)


def positions(t: int, like):
    """``arange(t)`` as integers on ``like``'s device (shape-only for shape-only inputs)."""
    if is_meta(like):
        return MetaArray((t,), np.int64)
    return array_module_of(like).arange(t)


def attention(q, k, v, causal=True):
    """Scaled dot-product attention over (B, H, T, D) arrays."""
    d = q.shape[-1]
    scores = matmul(q, k.swapaxes(-1, -2)) * (1.0 / math.sqrt(d))
    if causal:
        scores = scores + causal_mask(q.shape[-2], scores)
    return matmul(softmax(scores, axis=-1), v)


def rotary(x, base=10000.0):
    """Rotary position embedding (RoPE, Su et al. 2021) over (B, H, T, D) arrays, half-split form."""
    if is_meta(x):
        return MetaArray(x.shape, x.dtype)
    xp = array_module_of(x)
    t, d = x.shape[-2], x.shape[-1]
    inv = 1.0 / base ** (xp.arange(0, d, 2, dtype=np.float64) / d)
    angles = xp.arange(t, dtype=np.float64)[:, None] * inv[None, :]
    cos, sin = xp.cos(angles).astype(x.dtype), xp.sin(angles).astype(x.dtype)
    x1, x2 = x[..., : d // 2], x[..., d // 2:]
    return xp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)
