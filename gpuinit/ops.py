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


def _pair(v, name, where="conv2d", minimum=1):
    return checks.int_tuple(v, 2, name, where, minimum=minimum)


def conv_output_size(size, kernel, stride, pad, dilation=1):
    """Output length of a convolution or pooling window along one axis (floor convention)."""
    return (size + 2 * pad - dilation * (kernel - 1) - 1) // stride + 1


def _windows(x, kernel, stride, dilation, out_hw):
    """A view of ``x`` (N, C, H, W) as (N, C, OH, OW, KH, KW) windows; no copy.

    Only reached with checked arguments: positive kernel, strides and dilation, and an output
    size that :func:`conv_output_size` derived from ``x``'s own shape, so every window lies in ``x``.
    """
    xp = array_module_of(x)
    n, c = x.shape[:2]
    s = x.strides
    return xp.lib.stride_tricks.as_strided(
        x, shape=(n, c, out_hw[0], out_hw[1], kernel[0], kernel[1]),
        strides=(s[0], s[1], s[2] * stride[0], s[3] * stride[1], s[2] * dilation[0], s[3] * dilation[1]),
        writeable=False)


def _pad_hw(x, pad, value=0.0):
    if pad == (0, 0):
        return x
    xp = array_module_of(x)
    return xp.pad(x, ((0, 0), (0, 0), (pad[0], pad[0]), (pad[1], pad[1])), constant_values=value)


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


def _image_input(x, what):
    if x.ndim != 4:
        raise ShapeError(f"{what} expects NCHW input (4 dimensions), got shape {tuple(x.shape)}")
    if not _real(x.dtype):
        raise ArgumentTypeError(f"{what}: input must hold real numbers, got dtype {x.dtype}")


def _real(dtype) -> bool:
    from .dtypes import is_real
    return is_real(dtype)


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution (cross-correlation) in NCHW; ``weight`` is (O, C/groups, KH, KW).

    Raises:
        ArgumentError: a stride or dilation below 1, a negative padding, groups that do not divide
            the channels; ShapeError: shapes that do not fit, or an input too small for the kernel.
    """
    stride, padding = _pair(stride, "strides"), _pair(padding, "padding", minimum=0)
    dilation = _pair(dilation, "dilation")
    groups = checks.positive_int(groups, "groups", "conv2d")
    _image_input(x, "conv2d")
    if len(weight.shape) != 4:
        raise ShapeError(f"conv2d: weight must be (out_channels, in_channels/groups, kh, kw), got shape "
                         f"{tuple(weight.shape)}")
    n, c, h, w = x.shape
    o, cg, kh, kw = weight.shape
    if min(o, cg, kh, kw) < 1:
        raise ShapeError(f"conv2d: weight shape {tuple(weight.shape)} has an empty dimension")
    if c != cg * groups or o % groups:
        raise ShapeError(f"conv2d: input has {c} channels and weight shape {tuple(weight.shape)} with "
                         f"groups={groups}; the input needs {cg * groups} channels and {o} must divide by "
                         f"{groups}")
    if bias is not None and tuple(bias.shape) != (o,):
        raise ShapeError(f"conv2d: bias must have shape ({o},), got {tuple(bias.shape)}")
    out_hw = (conv_output_size(h, kh, stride[0], padding[0], dilation[0]),
              conv_output_size(w, kw, stride[1], padding[1], dilation[1]))
    if min(out_hw) < 1 or n < 0:
        raise ShapeError(f"convolution input {tuple(x.shape)} is too small for kernel {(kh, kw)} with "
                         f"padding {padding} and dilation {dilation}: the output would be {out_hw}; use a "
                         "larger input, more padding or less dilation")
    if is_meta(x, weight):
        return MetaArray((n, o) + out_hw, x.dtype)
    itemsize = np.dtype(x.dtype).itemsize
    _check_room(x, n * c * (h + 2 * padding[0]) * (w + 2 * padding[1]) * itemsize, "conv2d's padded input")
    _check_room(x, n * o * out_hw[0] * out_hw[1] * 8, "conv2d's output")
    win = _windows(_pad_hw(x, padding), (kh, kw), stride, dilation, out_hw)
    win = win.reshape(n, groups, c // groups, out_hw[0], out_hw[1], kh, kw)
    wg = weight.reshape(groups, o // groups, cg, kh, kw)
    y = np.einsum("ngcyxij,gocij->ngoyx", win, wg, optimize=True).reshape(n, o, *out_hw)
    if bias is not None:
        y = y + bias.reshape(1, o, 1, 1)
    return y.astype(x.dtype, copy=False)


def pool2d(x, pool_type, pool_size, stride=None, padding=0, count_include_pad=True):
    """Max or average pooling in NCHW (floor convention; average counts padding by default).

    Raises:
        ArgumentError: a window or stride below 1, a padding below 0 or above half the window, an
            unknown ``pool_type``; ShapeError: an input too small for the window.
    """
    checks.choice(pool_type, ("max", "avg"), "pool_type", "pool2d")
    kernel = _pair(pool_size, "pool_size", "pool2d")
    stride = _pair(stride if stride is not None else kernel, "strides", "pool2d")
    padding = _pair(padding, "padding", "pool2d", minimum=0)
    if 2 * padding[0] > kernel[0] or 2 * padding[1] > kernel[1]:
        raise ArgumentError(f"pool2d: padding {padding} must be at most half the window {kernel}, or "
                            "some windows would hold only padding; use less padding")
    _image_input(x, "pool2d")
    n, c, h, w = x.shape
    out_hw = (conv_output_size(h, kernel[0], stride[0], padding[0]),
              conv_output_size(w, kernel[1], stride[1], padding[1]))
    if min(out_hw) < 1:
        raise ShapeError(f"pooling input {tuple(x.shape)} is too small for window {kernel} with padding "
                         f"{padding}; use a larger input or a smaller window")
    if is_meta(x):
        return MetaArray((n, c) + out_hw, x.dtype)
    _check_room(x, n * c * (h + 2 * padding[0]) * (w + 2 * padding[1]) * np.dtype(x.dtype).itemsize,
                "pool2d's padded input")
    if pool_type == "max":
        low = -np.inf if np.dtype(x.dtype).kind == "f" else np.iinfo(x.dtype).min if np.dtype(x.dtype).kind in "iu" else 0
        win = _windows(_pad_hw(x, padding, low), kernel, stride, (1, 1), out_hw)
        return win.max(axis=(-2, -1))
    win = _windows(_pad_hw(x, padding), kernel, stride, (1, 1), out_hw)
    total = win.sum(axis=(-2, -1))
    if count_include_pad or padding == (0, 0):
        return (total / (kernel[0] * kernel[1])).astype(x.dtype, copy=False)
    ones = _windows(_pad_hw(array_module_of(x).ones_like(x[:1, :1]), padding), kernel, stride, (1, 1), out_hw)
    return (total / ones.sum(axis=(-2, -1))).astype(x.dtype, copy=False)


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
