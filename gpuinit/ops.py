"""Array operations of the layers, written once for NumPy, CuPy and shape-only arrays.

Each function takes NumPy or CuPy arrays and computes with the array's own module; given a
:class:`~gpuinit.meta.MetaArray` it only works out the result's shape. NumPy's ufuncs and
functions reach CuPy through its ``__array_ufunc__``/``__array_function__`` protocols, so most
operations here are written with ``np.*`` and run on either backend unchanged.
"""

from __future__ import annotations

import math

import numpy as np

from .backend import array_module_of
from .errors import ShapeError
from .meta import MetaArray, _dummy, is_meta

# --- shape rules for NumPy functions applied to MetaArrays ------------------------------------


def _meta_matmul(a, b):
    sa, sb = np.shape(a) if not is_meta(a) else a.shape, np.shape(b) if not is_meta(b) else b.shape
    if not sa or not sb:
        raise ShapeError("matmul needs arrays of at least one dimension")
    a2 = sa if len(sa) > 1 else (1,) + sa
    b2 = sb if len(sb) > 1 else sb + (1,)
    if a2[-1] != b2[-2]:
        raise ShapeError(f"matmul: shapes {sa} and {sb} do not align ({a2[-1]} != {b2[-2]})")
    batch = np.broadcast_shapes(a2[:-2], b2[:-2])
    shape = batch + (a2[-2], b2[-1])
    if len(sa) == 1:
        shape = shape[:-2] + shape[-1:]
    if len(sb) == 1:
        shape = shape[:-1]
    dtype = np.result_type(getattr(a, "dtype", np.float32), getattr(b, "dtype", np.float32))
    return MetaArray(shape, dtype)


def _meta_concatenate(arrays, axis=0, **_):
    arrays = list(arrays)
    shapes = [tuple(a.shape) for a in arrays]
    try:
        shape = np.concatenate([_dummy(s, np.int8) for s in shapes], axis=axis).shape
    except ValueError as exc:
        raise ShapeError(f"cannot concatenate shapes {shapes} along axis {axis}: {exc}") from None
    return MetaArray(shape, np.result_type(*[a.dtype for a in arrays]))


def _meta_stack(arrays, axis=0, **_):
    arrays = list(arrays)
    shapes = {tuple(a.shape) for a in arrays}
    if len(shapes) != 1:
        raise ShapeError(f"stack needs arrays of one shape, got {sorted(shapes)}")
    shape = np.stack([_dummy(arrays[0].shape, np.int8)] * len(arrays), axis=axis).shape
    return MetaArray(shape, np.result_type(*[a.dtype for a in arrays]))


def _meta_split(x, indices_or_sections, axis=0):
    parts = np.split(_dummy(x.shape, np.int8), indices_or_sections, axis=axis)
    return [MetaArray(p.shape, x.dtype) for p in parts]


def _meta_where(cond, a=None, b=None):
    if a is None:
        raise ShapeError("numpy.where with one argument has a data-dependent shape")
    shape = np.broadcast_shapes(*[tuple(np.shape(v)) if not is_meta(v) else v.shape for v in (cond, a, b)])
    dtype = np.result_type(*[v.dtype if is_meta(v) else np.asarray(v).dtype for v in (a, b)])
    return MetaArray(shape, dtype)


def _meta_take(a, indices, axis=None, **_):
    ishape = indices.shape if is_meta(indices) else np.shape(indices)
    if axis is None:
        return MetaArray(ishape, a.dtype)
    axis = axis % a.ndim
    return MetaArray(a.shape[:axis] + tuple(ishape) + a.shape[axis + 1:], a.dtype)


def _meta_einsum(subscripts, *operands, **_):
    inputs, arrow, output = subscripts.replace(" ", "").partition("->")
    sizes = {}
    for spec, op in zip(inputs.split(","), operands):
        if "." in spec:
            raise ShapeError("einsum with '...' is not supported in a shape-only pass")
        for letter, dim in zip(spec, op.shape):
            if sizes.setdefault(letter, dim) != dim and 1 not in (dim, sizes[letter]):
                raise ShapeError(f"einsum {subscripts!r}: size of {letter!r} is {sizes[letter]} and {dim}")
            sizes[letter] = max(sizes[letter], dim)
    if not arrow:
        output = "".join(sorted(c for c in set(inputs.replace(",", "")) if inputs.count(c) == 1))
    return MetaArray(tuple(sizes[c] for c in output), np.result_type(*[o.dtype for o in operands]))


def _method(name):
    return lambda x, *args, **kwargs: getattr(x, name)(*args, **kwargs)


def _same_shape(x, *args, **kwargs):
    return MetaArray(x.shape, x.dtype)


NUMPY_FUNCTIONS = {
    "matmul": _meta_matmul, "dot": _meta_matmul, "concatenate": _meta_concatenate,
    "stack": _meta_stack, "split": _meta_split, "array_split": _meta_split,
    "where": _meta_where, "take": _meta_take, "einsum": _meta_einsum,
    "reshape": _method("reshape"), "transpose": _method("transpose"), "swapaxes": _method("swapaxes"),
    "sum": _method("sum"), "mean": _method("mean"), "max": _method("max"), "amax": _method("max"),
    "min": _method("min"), "amin": _method("min"), "var": _method("var"), "std": _method("std"),
    "tril": _same_shape, "triu": _same_shape, "clip": _same_shape, "zeros_like": _same_shape,
    "ones_like": _same_shape, "empty_like": _same_shape, "full_like": _same_shape,
    "expand_dims": lambda x, axis: x[(slice(None),) * (axis % (x.ndim + 1)) + (None,)],
    "squeeze": lambda x, axis=None: MetaArray(np.squeeze(_dummy(x.shape), axis).shape, x.dtype),
    "broadcast_to": lambda x, shape, **_: MetaArray(np.broadcast_to(_dummy(x.shape), shape).shape, x.dtype),
    "pad": lambda x, pad_width, **_: MetaArray(np.pad(_dummy(x.shape, np.int8), pad_width).shape, x.dtype),
}

# --- layer operations ----------------------------------------------------------------------


def matmul(a, b):
    """Matrix product with NumPy's broadcasting rules."""
    if is_meta(a, b):
        return _meta_matmul(a, b)
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


def activation(x, act_type: str):
    """Apply the named activation (``relu``, ``sigmoid``, ``tanh``, ``softrelu``, ``softsign``, ``gelu``, ``silu``)."""
    try:
        fn = ACTIVATIONS[act_type]
    except KeyError:
        raise ShapeError(f"unknown activation {act_type!r}; expected one of {sorted(ACTIVATIONS)}") from None
    return fn(x)


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


def _pair(v, name):
    if isinstance(v, (int, np.integer)):
        return int(v), int(v)
    v = tuple(int(i) for i in v)
    if len(v) != 2:
        raise ShapeError(f"{name} must be an int or a pair of ints, got {v!r}")
    return v


def conv_output_size(size, kernel, stride, pad, dilation=1):
    """Output length of a convolution or pooling window along one axis (floor convention)."""
    return (size + 2 * pad - dilation * (kernel - 1) - 1) // stride + 1


def _windows(x, kernel, stride, dilation, out_hw):
    """A view of ``x`` (N, C, H, W) as (N, C, OH, OW, KH, KW) windows; no copy."""
    xp = array_module_of(x)
    n, c = x.shape[:2]
    s = x.strides
    return xp.lib.stride_tricks.as_strided(
        x, shape=(n, c, out_hw[0], out_hw[1], kernel[0], kernel[1]),
        strides=(s[0], s[1], s[2] * stride[0], s[3] * stride[1], s[2] * dilation[0], s[3] * dilation[1]))


def _pad_hw(x, pad, value=0.0):
    if pad == (0, 0):
        return x
    xp = array_module_of(x)
    return xp.pad(x, ((0, 0), (0, 0), (pad[0], pad[0]), (pad[1], pad[1])), constant_values=value)


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution (cross-correlation) in NCHW; ``weight`` is (O, C/groups, KH, KW)."""
    stride, padding, dilation = _pair(stride, "strides"), _pair(padding, "padding"), _pair(dilation, "dilation")
    n, c, h, w = x.shape
    o, cg, kh, kw = weight.shape
    out_hw = (conv_output_size(h, kh, stride[0], padding[0], dilation[0]),
              conv_output_size(w, kw, stride[1], padding[1], dilation[1]))
    if min(out_hw) < 1:
        raise ShapeError(f"convolution input {x.shape} is too small for kernel {(kh, kw)} with "
                         f"padding {padding} and dilation {dilation}")
    if is_meta(x, weight):
        return MetaArray((n, o) + out_hw, x.dtype)
    win = _windows(_pad_hw(x, padding), (kh, kw), stride, dilation, out_hw)
    win = win.reshape(n, groups, c // groups, out_hw[0], out_hw[1], kh, kw)
    wg = weight.reshape(groups, o // groups, cg, kh, kw)
    y = np.einsum("ngcyxij,gocij->ngoyx", win, wg, optimize=True).reshape(n, o, *out_hw)
    if bias is not None:
        y = y + bias.reshape(1, o, 1, 1)
    return y.astype(x.dtype, copy=False)


def pool2d(x, pool_type, pool_size, stride=None, padding=0, count_include_pad=True):
    """Max or average pooling in NCHW (floor convention; average counts padding by default)."""
    kernel = _pair(pool_size, "pool_size")
    stride = _pair(stride if stride is not None else kernel, "strides")
    padding = _pair(padding, "padding")
    n, c, h, w = x.shape
    out_hw = (conv_output_size(h, kernel[0], stride[0], padding[0]),
              conv_output_size(w, kernel[1], stride[1], padding[1]))
    if min(out_hw) < 1:
        raise ShapeError(f"pooling input {x.shape} is too small for window {kernel}")
    if is_meta(x):
        return MetaArray((n, c) + out_hw, x.dtype)
    if pool_type == "max":
        win = _windows(_pad_hw(x, padding, -np.inf), kernel, stride, (1, 1), out_hw)
        return win.max(axis=(-2, -1))
    win = _windows(_pad_hw(x, padding), kernel, stride, (1, 1), out_hw)
    total = win.sum(axis=(-2, -1))
    if count_include_pad or padding == (0, 0):
        return (total / (kernel[0] * kernel[1])).astype(x.dtype, copy=False)
    ones = _windows(_pad_hw(np.ones_like(x[:1, :1]), padding), kernel, stride, (1, 1), out_hw)
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
