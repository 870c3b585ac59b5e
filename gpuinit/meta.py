"""Shape-only arrays: what flows through a network when only shapes are wanted.

A :class:`MetaArray` has a shape and a dtype and no data. Passing one through a block runs the
block's ordinary ``forward`` code, but every operation only computes its output's shape: layers
fill in their parameters' unknown dimensions as they go, no parameter memory is allocated and no
arithmetic runs. ``gpuinit.plan`` and the first forward pass of a deferred network both use it.

Supported: the arithmetic operators and every NumPy ufunc (broadcasting), ``reshape``,
``transpose``/``T``, ``swapaxes``, basic indexing, ``@``, ``astype``, reductions (``sum``, ``mean``,
``max``, ``min``, ``var``, ``std``), and the functions of ``gpuinit.nd``. Anything else raises
:class:`~gpuinit.errors.PlanError`, which says what to use instead.
"""

from __future__ import annotations

import numpy as np

from . import dtypes
from .errors import PlanError, ShapeError
from .fluent import FluentMethods


def _dummy(shape, dtype=bool):
    """A read-only array of ``shape`` that takes no memory (every element is the same one)."""
    return np.broadcast_to(np.zeros((), dtype=dtype), shape)


def _sample(x):
    """A one-element array of ``x``'s dtype, for working out result dtypes."""
    if isinstance(x, MetaArray):
        return np.zeros((), dtype=x.dtype)
    return x


class MetaArray(FluentMethods):
    """An array that has a shape and a dtype but no data (MXNet NDArray's methods that need no
    shape-only version come from :class:`~gpuinit.fluent.FluentMethods`)."""

    __array_priority__ = 1000

    def __init__(self, shape, dtype="float32"):
        self.shape = tuple(int(d) for d in shape)
        self.dtype = dtypes.as_dtype(dtype)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d array")
        return self.shape[0]

    def __repr__(self) -> str:
        return f"MetaArray(shape={self.shape}, dtype={self.dtype})"

    # --- shape manipulation ----------------------------------------------------------------

    def reshape(self, *shape, reverse=False, **kwargs):
        if "shape" in kwargs:
            shape = (kwargs.pop("shape"),)
        if len(shape) == 1 and not isinstance(shape[0], (int, np.integer)):
            shape = tuple(shape[0])
        shape = gluon_reshape_shape(self.shape, shape, reverse, self.size)
        try:
            new = _dummy(self.shape).reshape(shape).shape
        except ValueError as exc:
            raise ShapeError(f"cannot reshape an array of shape {self.shape} into {shape}: {exc}") from None
        return MetaArray(new, self.dtype)

    def squeeze(self, axis=None, inplace=False):
        return MetaArray(np.squeeze(_dummy(self.shape), axis).shape, self.dtype)

    def transpose(self, *axes):
        if len(axes) == 1 and not isinstance(axes[0], (int, np.integer)):
            axes = tuple(axes[0])
        return MetaArray(_dummy(self.shape).transpose(*axes).shape, self.dtype)

    @property
    def T(self):
        return self.transpose()

    def swapaxes(self, a, b):
        return MetaArray(_dummy(self.shape).swapaxes(a, b).shape, self.dtype)

    def __getitem__(self, key):
        if isinstance(key, MetaArray) or (isinstance(key, tuple) and any(isinstance(k, MetaArray) for k in key)):
            raise PlanError("indexing with an array is not supported in a shape-only pass; "
                            "use gpuinit.nd.take")
        return MetaArray(_dummy(self.shape)[key].shape, self.dtype)

    def astype(self, dtype, copy=True):
        return MetaArray(self.shape, dtype)

    def copy(self):
        return MetaArray(self.shape, self.dtype)

    def flatten(self):
        return MetaArray((self.size,), self.dtype)

    ravel = flatten

    # --- reductions ------------------------------------------------------------------------

    def _reduce(self, axis=None, keepdims=False, dtype=None):
        out = np.add.reduce(_dummy(self.shape, np.int8), axis=axis, keepdims=keepdims)
        return MetaArray(np.shape(out), dtype or self.dtype)

    def sum(self, axis=None, keepdims=False, dtype=None):
        # NumPy's dtype: bools and small integers sum in the platform integer
        return self._reduce(axis, keepdims, dtype or np.zeros(1, self.dtype).sum().dtype)

    def max(self, axis=None, keepdims=False, dtype=None):
        return self._reduce(axis, keepdims, dtype)

    min = max

    def mean(self, axis=None, keepdims=False, dtype=None):
        kind = self.dtype if self.dtype.kind == "f" else np.float64
        return self._reduce(axis, keepdims, dtype or kind)

    var = std = mean

    def argmax(self, axis=None, keepdims=False):
        return self._reduce(axis, keepdims, np.int64)

    argmin = argmax

    def norm(self, ord=2, axis=None, keepdims=False):
        kind = self.dtype if self.dtype.kind == "f" else np.float64
        return self._reduce(axis, keepdims, kind)

    # --- MXNet NDArray's methods that answer with shapes here (the rest: FluentMethods) -------

    def softmax(self, axis=-1):
        return MetaArray(self.shape, self.dtype)

    def broadcast_to(self, shape):
        return MetaArray(np.broadcast_to(_dummy(self.shape), tuple(shape)).shape, self.dtype)

    def tile(self, reps):
        return MetaArray(np.tile(_dummy(self.shape, np.int8), reps).shape, self.dtype)

    def flip(self, axis):
        return MetaArray(self.shape, self.dtype)

    def one_hot(self, depth, on_value=1.0, off_value=0.0, dtype="float32"):
        return MetaArray(self.shape + (int(depth),), dtype)

    def tostype(self, stype):
        return self

    def copyto(self, other):
        return MetaArray(self.shape, self.dtype)

    def as_in_context(self, context):
        return self

    def attach_grad(self, grad_req="write", stype=None) -> None:
        pass

    def asnumpy(self):
        raise needs_values("asnumpy() needs the values of an array, and a shape-only pass has none; keep "
                           "value-dependent code out of forward, or give the layers their input sizes "
                           "(in_units=, in_channels=) so that no shape inference runs")

    def asscalar(self):
        raise needs_values("asscalar() needs the value of an array, and a shape-only pass has none: control "
                           "flow on values (a while loop on a norm) cannot be followed by shape inference; "
                           "give the layers of this block their input sizes (in_units=, in_channels=) so "
                           "that no shape inference runs, or move the value-dependent code out of forward")

    item = asscalar

    # --- arithmetic: NumPy ufuncs with broadcasting ------------------------------------------

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if ufunc is np.matmul and method == "__call__":
            return matmul_shape(*inputs)
        if method != "__call__" or kwargs.get("out") is not None:
            raise PlanError(f"numpy.{ufunc.__name__}.{method} is not supported in a shape-only pass")
        shapes = [np.shape(x) if not isinstance(x, MetaArray) else x.shape for x in inputs]
        try:
            shape = np.broadcast_shapes(*shapes)
        except ValueError:
            raise ShapeError(f"operands could not be broadcast together with shapes {shapes}") from None
        with np.errstate(all="ignore"):
            result = ufunc(*[_sample(x) for x in inputs])
        if isinstance(result, tuple):
            return tuple(MetaArray(shape, np.asarray(r).dtype) for r in result)
        return MetaArray(shape, np.asarray(result).dtype)

    def __array_function__(self, func, types, args, kwargs):
        handler = NUMPY_FUNCTIONS.get(func.__name__)
        if handler is None:
            raise PlanError(f"numpy.{func.__name__} is not supported in a shape-only pass; use the "
                            "functions of gpuinit.nd, or give the layer its input size so that no "
                            "shape inference is needed")
        return handler(*args, **kwargs)

    def __array__(self, *args, **kwargs):
        raise needs_values("a shape-only array has no values: this code reads the data of an array "
                           "(converts it to NumPy)")

    def __matmul__(self, other):
        return matmul_shape(self, other)

    def __rmatmul__(self, other):
        return matmul_shape(other, self)

    def __bool__(self):
        raise needs_values("the truth value of a shape-only array is unknown: this code branches or loops "
                           "on an array's value")

    # --- conversions to Python values: none exists in a shape-only pass ---------------------

    def _values(self, what):
        raise needs_values(f"a shape-only array has no values: this code reads an array's values ({what})")

    def tolist(self):
        self._values("tolist()")

    def __float__(self):
        self._values("float()")

    def __int__(self):
        self._values("int()")

    def __index__(self):
        self._values("use as an index")


def needs_values(why: str) -> PlanError:
    """The error of a shape-only array asked for values, marked (``gpuinit_needs_values``) so that
    the first forward pass can tell it from a shape mismatch and follow the block with real values
    instead (see :func:`gpuinit.lifecycle.first_forward`)."""
    error = PlanError(why)
    error.gpuinit_needs_values = why
    return error


# --- shape rules of the NumPy functions a forward may call on MetaArrays -----------------------


def gluon_reshape_shape(shape, spec, reverse=False, size=None):
    """The NumPy shape (``-1`` allowed) that MXNet's ``reshape(spec)`` means for an array of ``shape``.

    MXNet's special values: ``0`` copies the input's dimension, ``-1`` is inferred, ``-2`` copies
    all remaining input dimensions, ``-3`` is the product of the next two input dimensions, ``-4``
    splits the next input dimension into the two values that follow it (one may be ``-1``).
    ``reverse`` matches the special values from the right. A ``spec`` without ``0``, ``-2``,
    ``-3`` or ``-4`` (or an empty array, where ``0`` is NumPy's size 0) is returned as it is.

    Raises:
        ShapeError: a special value with no input dimension left to refer to, or a ``-4`` split
            that does not divide its dimension.
    """
    spec = tuple(int(d) for d in spec)
    if not any(d == 0 or d < -1 for d in spec) or size == 0:
        return spec
    src = tuple(shape)
    if reverse:
        src, spec = src[::-1], spec[::-1]

    def need(i, count, value):
        if i + count > len(src):
            raise ShapeError(f"reshape {spec!r}: special value {value} refers to input dimension {i + count - 1} "
                             f"but the input has shape {tuple(shape)}")

    out, i, j = [], 0, 0
    while j < len(spec):
        d = spec[j]
        if d > 0 or d == -1:
            out.append(d)
            i += 1
        elif d == 0:
            need(i, 1, 0)
            out.append(src[i])
            i += 1
        elif d == -2:
            out.extend(src[i:])
            i = len(src)
        elif d == -3:
            need(i, 2, -3)
            out.append(src[i] * src[i + 1])
            i += 2
        elif d == -4:
            need(i, 1, -4)
            if j + 2 >= len(spec):
                raise ShapeError(f"reshape {spec!r}: -4 must be followed by the two sizes to split into")
            a, b = spec[j + 1], spec[j + 2]
            whole = src[i]
            if a == -1 and b > 0:
                a = whole // b
            elif b == -1 and a > 0:
                b = whole // a
            if a < 1 or b < 1 or a * b != whole:
                raise ShapeError(f"reshape {spec!r}: cannot split dimension {whole} of shape {tuple(shape)} into "
                                 f"({spec[j + 1]}, {spec[j + 2]})")
            out.extend((a, b))
            i += 1
            j += 2
        else:
            raise ShapeError(f"reshape {spec!r}: {d} is not a size or one of the special values 0, -1, -2, -3, -4")
        j += 1
    return tuple(out[::-1]) if reverse else tuple(out)


def matmul_shape(a, b):
    """The shape-only result of ``a @ b`` (NumPy's broadcasting rules)."""
    sa, sb = np.shape(a) if not is_meta(a) else a.shape, np.shape(b) if not is_meta(b) else b.shape
    if not sa or not sb:
        raise ShapeError("matmul needs arrays of at least one dimension")
    a2 = sa if len(sa) > 1 else (1,) + sa
    b2 = sb if len(sb) > 1 else sb + (1,)
    if a2[-1] != b2[-2]:
        raise ShapeError(f"matmul: shapes {sa} and {sb} do not align ({a2[-1]} != {b2[-2]})")
    try:
        batch = np.broadcast_shapes(a2[:-2], b2[:-2])
    except ValueError:
        raise ShapeError(f"matmul: the batch dimensions of shapes {sa} and {sb} do not broadcast") from None
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
    try:
        parts = np.split(_dummy(x.shape, np.int8), indices_or_sections, axis=axis)
    except ValueError as exc:
        raise ShapeError(f"cannot split shape {x.shape} into {indices_or_sections} along axis {axis}: {exc}") from None
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
    "matmul": matmul_shape, "dot": matmul_shape, "concatenate": _meta_concatenate,
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


def _binary(ufunc, reflected=False):
    if reflected:
        return lambda self, other: ufunc(other, self)
    return lambda self, other: ufunc(self, other)


for _name, _ufunc in [("add", np.add), ("sub", np.subtract), ("mul", np.multiply),
                      ("truediv", np.true_divide), ("floordiv", np.floor_divide),
                      ("mod", np.remainder), ("pow", np.power)]:
    setattr(MetaArray, f"__{_name}__", _binary(_ufunc))
    setattr(MetaArray, f"__r{_name}__", _binary(_ufunc, reflected=True))
for _name, _ufunc in [("lt", np.less), ("le", np.less_equal), ("gt", np.greater),
                      ("ge", np.greater_equal), ("eq", np.equal), ("ne", np.not_equal)]:
    setattr(MetaArray, f"__{_name}__", _binary(_ufunc))
MetaArray.__neg__ = lambda self: np.negative(self)
MetaArray.__pos__ = lambda self: self
MetaArray.__abs__ = lambda self: np.absolute(self)
MetaArray.__hash__ = object.__hash__


def is_meta(*xs) -> bool:
    """Whether any of ``xs`` is a :class:`MetaArray`."""
    return any(isinstance(x, MetaArray) for x in xs)
