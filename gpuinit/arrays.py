"""``NDArray``: a NumPy array with the conveniences of MXNet's NDArray (``gpuinit.nd.NDArray``).

``NDArray`` subclasses ``numpy.ndarray``, so ``isinstance(x, numpy.ndarray)`` holds and every
NumPy function, library and file format takes it unchanged; it only adds the methods MXNet Gluon
code calls on arrays (``asnumpy``, ``asscalar``, ``context``, ``copyto``, ``as_in_context``,
``norm``, ``exp``, ...) and MXNet's special values in ``reshape`` (``0`` copies a dimension,
``-2`` copies the rest, ``-3`` merges two, ``-4`` splits one). The functions of ``gpuinit.nd``
return it on the CPU, and so does ``Parameter.data()``.

On a GPU, arrays stay plain ``cupy.ndarray``: ``gpuinit.nd``'s functions (``nd.asnumpy(x)``,
``nd.norm(x)``, ...) work on them, the methods do not.

Differences from MXNet, kept on purpose because they are NumPy's behaviour and NumPy code relies
on it: full reductions (``x.sum()``, ``x.norm()``) and indexing every axis give 0-d arrays rather
than shape ``(1,)`` (0-d arrays are not hashable: use ``.item()`` for a dict key); comparisons give
booleans; ``argmax`` gives integers; ``flatten()`` flattens to one dimension (``nd.flatten(x)`` is
MXNet's ``(N, -1)``). gpuinit has no autograd: ``attach_grad()`` only attaches a zero gradient
buffer (``x.grad``).
"""

from __future__ import annotations

import numpy as np

from .backend import is_cupy_array, to_numpy
from .errors import ArgumentError, ArgumentTypeError
from .fluent import FluentMethods
from .meta import gluon_reshape_shape


class NDArray(FluentMethods, np.ndarray):
    """A ``numpy.ndarray`` with MXNet NDArray's methods (see the module docstring); those it
    shares with shape-only arrays come from :class:`~gpuinit.fluent.FluentMethods`.

    Make one with ``gpuinit.nd`` (``nd.array``, ``nd.zeros``, ``nd.random.uniform``, ...) or
    view any NumPy array as one: ``a.view(NDArray)``.

    Example:
        >>> from gpuinit import nd
        >>> x = nd.array([[3.0, 4.0]])
        >>> float(x.norm().asscalar())
        5.0
        >>> x.reshape((0, -1, 1)).shape
        (1, 2, 1)
    """

    def __getitem__(self, key):
        # an element is a 0-d NDArray, as MXNet gives an NDArray (x[0].asscalar(), for v in x: v.asnumpy())
        out = np.ndarray.__getitem__(self, key)
        if isinstance(out, np.generic):
            return np.asarray(out).view(NDArray)
        return out

    # --- where it lives ----------------------------------------------------------------------

    def asnumpy(self) -> np.ndarray:
        """A plain ``numpy.ndarray`` copy of the values."""
        return np.array(self, copy=True, subok=False)

    def asscalar(self):
        """The value of a one-element array as a NumPy scalar.

        Raises:
            ArgumentError: the array does not have exactly one element.
        """
        if self.size != 1:
            raise ArgumentError(f"asscalar: the array has shape {self.shape} ({self.size} elements); only a "
                                "one-element array converts to a scalar; index it or reduce it first")
        return np.asarray(self).reshape(-1)[0]

    def copyto(self, other):
        """Copy the values to a device (a new array there) or into an array of the same shape.

        Args:
            other: a device (``gpuinit.cpu()``, ``'cuda:0'``, ...) or an array to overwrite.

        Returns:
            The new array, or ``other`` after the copy.

        Raises:
            ShapeError: ``other`` is an array of another shape.
        """
        if hasattr(other, "shape") and hasattr(other, "dtype"):
            if tuple(other.shape) != self.shape:
                from .errors import ShapeError
                raise ShapeError(f"copyto: cannot copy an array of shape {self.shape} into one of shape "
                                 f"{tuple(other.shape)}; the shapes must be equal")
            if is_cupy_array(other):
                other.set(np.ascontiguousarray(self, dtype=other.dtype))
            else:
                other[...] = self
            return other
        from .nd import array
        return array(self, device=other, dtype=self.dtype)

    def as_in_context(self, context):
        """This array if it is already on ``context``, else a copy there."""
        from .device import as_device
        device = as_device(context)
        if not device.is_gpu:
            return self
        return self.copyto(device)

    as_in_ctx = as_in_context

    def tostype(self, stype):
        """``self`` for ``'default'``; other storage types are not supported.

        Raises:
            ArgumentError: a sparse storage type.
        """
        if stype != "default":
            raise ArgumentError(f"tostype: storage type {stype!r} is not supported; gpuinit arrays are dense "
                                "('default')")
        return self

    def attach_grad(self, grad_req="write", stype=None) -> None:
        """Attach a zero gradient buffer as ``self.grad``.

        gpuinit has no autograd, so nothing ever writes to it; the method exists so that code which
        attaches gradients before using an array still runs.
        """
        self.grad = np.zeros_like(self)

    # --- MXNet's fluent methods ---------------------------------------------------------------

    def softmax(self, axis=-1):
        from .ops import softmax
        return softmax(self, axis=axis)

    def norm(self, ord=2, axis=None, keepdims=False):
        """The L2 (``ord=2``) or L1 (``ord=1``) norm over ``axis`` (all axes by default)."""
        from .nd import norm
        return norm(self, ord=ord, axis=axis, keepdims=keepdims)

    def reshape(self, *shape, reverse=False, **kwargs):
        """Reshape, with MXNet's special values ``0``, ``-1``, ``-2``, ``-3``, ``-4``.

        ``shape`` may be given as one tuple, as separate integers, or as ``shape=``. On an empty
        array, ``0`` keeps NumPy's meaning (a dimension of size 0).

        Raises:
            ShapeError: the new shape does not fit the array's size.
        """
        if "shape" in kwargs:
            shape = (kwargs.pop("shape"),)
        if kwargs:
            return np.ndarray.reshape(self, *shape, **kwargs)
        if len(shape) == 1 and not isinstance(shape[0], (int, np.integer)):
            shape = tuple(shape[0])
        return np.ndarray.reshape(self, gluon_reshape_shape(self.shape, shape, reverse, self.size))

    def argmax(self, axis=None, out=None, keepdims=False):
        return as_ndarray(np.ndarray.argmax(self, axis, out, keepdims=keepdims))

    def argmin(self, axis=None, out=None, keepdims=False):
        return as_ndarray(np.ndarray.argmin(self, axis, out, keepdims=keepdims))

    def squeeze(self, axis=None, inplace=False):
        """Drop axes of length 1 (a view; ``inplace`` is accepted for MXNet's signature)."""
        return np.ndarray.squeeze(self, axis)

    def flip(self, axis):
        return np.flip(self, axis)

    def tile(self, reps):
        return np.tile(self, reps)

    def broadcast_to(self, shape):
        return np.broadcast_to(self, tuple(shape))

    def one_hot(self, depth, on_value=1.0, off_value=0.0, dtype="float32"):
        from .nd import one_hot
        return one_hot(self, depth, on_value, off_value, dtype)

    def as_np_ndarray(self) -> np.ndarray:
        """The same memory as a plain ``numpy.ndarray`` (no copy)."""
        return self.view(np.ndarray)

    def __repr__(self) -> str:
        return np.ndarray.__repr__(self).replace("NDArray(", "array(", 1)


def as_ndarray(x):
    """``x`` as an :class:`NDArray` view when it is a plain NumPy array; anything else unchanged.

    NumPy scalars become 0-d ``NDArray``; CuPy arrays, shape-only arrays and arrays already
    ``NDArray`` come back as they are.
    """
    if type(x) is np.ndarray:
        return x.view(NDArray)
    if isinstance(x, np.generic):  # a NumPy scalar from a full reduction (argmax) is a 0-d NDArray
        return np.asarray(x).view(NDArray)
    return x


def check_array(x, where: str):
    """``x`` if it is an array (NumPy, CuPy or shape-only), else a clear error."""
    if not (hasattr(x, "shape") and hasattr(x, "dtype")):
        raise ArgumentTypeError(f"{where}: expected an array, got {type(x).__name__} {x!r}; wrap it with "
                                "gpuinit.nd.array(...)")
    return x


def host_copy(x) -> np.ndarray:
    """A plain NumPy array with ``x``'s values (a copy for device arrays)."""
    return to_numpy(x)
