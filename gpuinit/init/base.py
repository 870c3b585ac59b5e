"""The initializer protocol: declarative fills that the engine fuses, and Gluon's Python hooks.

An initializer answers one question per parameter, :meth:`Initializer.fill_for`: how to fill it.
Built-in initializers answer with a :class:`~gpuinit.streams.Fill` (a distribution and its
numbers), which the fill engine runs for many parameters at once, each on its own stream. A
subclass that overrides one of Gluon's hooks (``_init_weight``, ``_init_bias``, ``_init_gamma``,
``_init_beta``, ``_init_default``) is called with the parameter's name and its freshly allocated,
zeroed array, and fills it in place; inside the hook, ``gpuinit.nd.random`` draws from the
parameter's own stream, so even custom initializers give the same numbers for the same seed and
architecture.

Dispatch is by the parameter's declared role (``Parameter(role="bias")``), never by its name.
"""

from __future__ import annotations

import json
import math

import numpy as np

from .. import dtypes
from ..device import device_of
from ..draws import Stream, active_or_new_stream
from ..errors import GpuInitError, InitializerError
from ..arrays import as_ndarray
from ..streams import Fill

ROLES = ("weight", "bias", "gamma", "beta", "running_mean", "running_var", "default")
ZEROS, ONES = Fill.constant(0.0), Fill.constant(1.0)

# Which Gluon hook serves each role.
_HOOKS = {"weight": "_init_weight", "bias": "_init_bias", "gamma": "_init_gamma",
          "beta": "_init_beta", "running_mean": "_init_zero", "running_var": "_init_one",
          "default": "_init_default"}


class InitDesc(str):
    """The name of the parameter being initialized (a ``str``, as Gluon passes it), with context.

    Attributes:
        role: the parameter's declared role, one of :data:`ROLES`.
        path: its structural path inside the block ``initialize`` was called on.
        shape: its full shape.
        dtype: its NumPy dtype.
        own: True when the initializer is the parameter's own (``weight_initializer=`` and the
            like) rather than the one passed to ``initialize``; an own initializer fills the
            parameter whatever its role, as in Gluon.
    """

    def __new__(cls, name, role="default", path=None, shape=(), dtype="float32", own=False):
        self = super().__new__(cls, name)
        self.role = role
        self.path = path if path is not None else str(name)
        self.shape = tuple(shape)
        self.dtype = dtypes.as_dtype(dtype)
        self.own = own
        return self


def fans(desc: InitDesc) -> tuple[int, int]:
    """``(fan_in, fan_out)`` as Gluon and PyTorch define them.

    ``fan_in = shape[1] * prod(shape[2:])`` and ``fan_out = shape[0] * prod(shape[2:])``.

    Raises:
        InitializerError: the parameter has fewer than two dimensions.
    """
    shape = desc.shape
    if len(shape) < 2:
        raise InitializerError(
            f"cannot compute fan_in/fan_out of parameter {str(desc)!r} with shape {shape!r}: it "
            "needs at least 2 dimensions; give it another initializer (for example "
            "bias_initializer='zeros')")
    receptive = int(np.prod(shape[2:], dtype=np.int64)) if len(shape) > 2 else 1
    return int(shape[1]) * receptive, int(shape[0]) * receptive


def _axes(value, what: str, ndim: int | None, where: str) -> tuple[int, ...]:
    """An axis or a sequence of axes (negative counting from the end) as non-negative ints
    (with ``ndim`` None, only their type is checked, and they are returned as given)."""
    items = (value,) if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)) else value
    try:
        items = tuple(items)
    except TypeError:
        items = None
    if items is None or any(isinstance(a, (bool, np.bool_)) or not isinstance(a, (int, np.integer))
                            for a in items):
        raise InitializerError(f"{where}: {what} must be an integer axis or a tuple of them, got {value!r}; "
                               "pass e.g. in_axis=-2, out_axis=-1 (Flax's (..., in, out) kernels)")
    if ndim is None:
        return tuple(int(a) for a in items)
    bad = [a for a in items if not -ndim <= a < ndim]
    if bad:
        raise InitializerError(f"{where}: {what}={value!r} is out of range for a {ndim}-dimensional "
                               f"parameter; axes run from {-ndim} to {ndim - 1}")
    return tuple(int(a) % ndim for a in items)


def compute_fans(shape, in_axis=-2, out_axis=-1, batch_axis=(), where: str = "parameter") -> tuple[float, float]:
    """``(fan_in, fan_out)`` of a weight whose input and output dimensions are the axes given.

    JAX's ``_compute_fans``: the axes in none of ``in_axis``, ``out_axis`` and ``batch_axis`` make
    the receptive field, ``fan_in = in_size * receptive`` and ``fan_out = out_size * receptive``,
    ``receptive = prod(shape) / (in_size * out_size * batch_size)``. So the defaults read Flax's and
    TensorFlow's ``(..., in, out)`` kernels, ``in_axis=1, out_axis=0`` reads Gluon's and PyTorch's
    ``(out, in, *kernel)`` (the same fans as :func:`fans`), and Flax's ``Embed`` passes
    ``out_axis=0``. Each axis may be a tuple of axes, whose sizes multiply.

    Computed as ``prod(shape) / (out_size * batch_size)`` (and the same for ``fan_out``), which
    is JAX's value, exact where it is a whole number.

    Example:
        >>> from gpuinit.init import compute_fans
        >>> compute_fans((3, 3, 16, 32))  # a Flax Conv kernel: (kh, kw, in, out)
        (144.0, 288.0)
        >>> compute_fans((50, 8), out_axis=0)  # a Flax Embed table: fan_in is the features
        (8.0, 8.0)

    Raises:
        InitializerError: an axis that is not an integer (or tuple of them) or out of range, or
            a parameter of fewer than two dimensions with the default ``in_axis``.
    """
    shape = tuple(int(d) for d in shape)
    ndim = len(shape)
    if ndim < 2 and isinstance(in_axis, (int, np.integer)) and in_axis == -2:
        raise InitializerError(
            f"cannot compute fan_in/fan_out of {where} with shape {shape!r}: the default in_axis=-2 needs "
            "at least 2 dimensions; give it another initializer (zeros, normal) or explicit in_axis/out_axis")
    sizes = [math.prod(shape[a] for a in _axes(axis, what, ndim, where))
             for axis, what in ((in_axis, "in_axis"), (out_axis, "out_axis"), (batch_axis, "batch_axis"))]
    in_size, out_size, batch_size = sizes
    total = math.prod(shape)
    if total == 0:
        return 0.0, 0.0
    return total / (out_size * batch_size), total / (in_size * batch_size)


class Initializer:
    """Base class of initializers.

    Subclass it the Gluon way, overriding ``_init_weight(self, name, arr)`` and filling ``arr`` in
    place; or declaratively, overriding ``_weight_fill(self, desc)`` to return a
    :class:`~gpuinit.streams.Fill`, which the store fuses with other parameters' fills.

    Defaults by role: bias, beta and running_mean zeros; gamma and running_var ones; weight must be
    defined by the subclass; a parameter with role ``default`` (``params.get('scale', ...)``) is
    filled as a weight, as Gluon does, unless the subclass defines ``_init_default``.

    Example:
        >>> from gpuinit import init
        >>> class MyInit(init.Initializer):
        ...     def _init_weight(self, name, arr):
        ...         arr[:] = 1.0
    """

    # What fill_for's answer depends on, declared on the class itself (never inherited, so a
    # subclass that reads the name must not be cached by mistake): "role" (the parameter's role,
    # own flag and dtype) or "shape" (those and its shape), never its name or path. The lifecycle
    # then asks once per distinct kind of parameter in a materialization, not once per parameter.
    # None: ask for every parameter.
    pure_fills = None

    def __init__(self, **kwargs):
        self._kwargs = kwargs

    def dumps(self) -> str:
        """The initializer as MXNet's JSON: ``'["xavier", {"rnd_type": "uniform", ...}]'``.

        :func:`gpuinit.init.create` reads it back.
        """
        return json.dumps([type(self).__name__.lower(), self._kwargs], default=_json_default)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._kwargs.items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self._kwargs == getattr(other, "_kwargs", None)

    def __hash__(self) -> int:
        return hash((type(self).__name__, repr(self)))

    # --- what the store calls --------------------------------------------------------------

    def fill_for(self, desc: InitDesc):
        """How to fill the parameter ``desc``: a :class:`Fill`, or a callable ``fn(arr)``.

        A callable means a Python hook that fills the array in place; the lifecycle calls it with
        the parameter's stream active.
        """
        role = "weight" if desc.own else desc.role
        if role == "default" and type(self)._init_default is Initializer._init_default \
                and type(self)._default_fill is Initializer._default_fill:
            role = "weight"  # as Gluon: a parameter of no declared kind gets the weight rule
        if role not in _HOOKS:
            raise InitializerError(f"parameter {str(desc)!r} has unknown role {role!r}; "
                                   f"expected one of {ROLES}")
        hook = _HOOKS[role]
        if getattr(type(self), hook) is not getattr(Initializer, hook):
            bound = getattr(self, hook)
            return lambda arr: bound(desc, as_ndarray(arr))  # Gluon hooks use NDArray's methods
        return getattr(self, f"_{role}_fill")(desc)

    def __call__(self, desc, arr) -> None:
        """Fill ``arr`` in place for the parameter ``desc`` (Gluon's entry point).

        ``desc`` may be a plain name; it then has role ``weight``. Outside a store's
        materialization, the numbers come from the next unseeded stream (see ``gpuinit.seed``).
        """
        if not isinstance(desc, InitDesc):
            desc = InitDesc(desc, role="weight", shape=arr.shape, dtype=arr.dtype)
        how = self.fill_for(desc)
        with active_or_new_stream(str(desc)):
            if isinstance(how, Fill):
                fill_in_place(arr, how)
            else:
                how(arr)

    # --- declarative fills, by role ----------------------------------------------------------

    def _weight_fill(self, desc: InitDesc) -> Fill:
        raise InitializerError(
            f"{type(self).__name__} does not say how to fill weights (parameter {str(desc)!r}); "
            "override _init_weight(name, arr) or _weight_fill(desc)")

    def _bias_fill(self, desc: InitDesc) -> Fill:
        return ZEROS

    def _gamma_fill(self, desc: InitDesc) -> Fill:
        return ONES

    def _beta_fill(self, desc: InitDesc) -> Fill:
        return ZEROS

    def _running_mean_fill(self, desc: InitDesc) -> Fill:
        return ZEROS

    def _running_var_fill(self, desc: InitDesc) -> Fill:
        return ONES

    def _default_fill(self, desc: InitDesc) -> Fill:
        raise InitializerError(
            f"{type(self).__name__} does not know how to initialize parameter {str(desc)!r}: its "
            "role is 'default'; declare a role (Parameter(..., role='weight')), give the parameter "
            "its own init=, or override _init_default(name, arr)")

    # --- Gluon's hooks: the base versions run the declarative fill ---------------------------

    def _init_weight(self, name, arr):
        fill_in_place(arr, self._weight_fill(name))

    def _init_bias(self, name, arr):
        fill_in_place(arr, self._bias_fill(name))

    def _init_gamma(self, name, arr):
        fill_in_place(arr, self._gamma_fill(name))

    def _init_beta(self, name, arr):
        fill_in_place(arr, self._beta_fill(name))

    def _init_zero(self, name, arr):
        fill_in_place(arr, self._running_mean_fill(name))

    def _init_one(self, name, arr):
        fill_in_place(arr, self._running_var_fill(name))

    def _init_default(self, name, arr):
        fill_in_place(arr, self._default_fill(name))


def resolve_fill(initializer, desc: InitDesc, what: str | None = None):
    """``initializer``'s answer for the tensor ``desc``, checked: a :class:`Fill` its dtype can hold,
    or a callable (a Python hook, run with :func:`run_hook`).

    The one place where an initializer is asked for a named tensor (gpuinit's parameters, the
    shards of :func:`gpuinit.sharding.fill_pieces`, the bridges' tensors and leaves), so that its
    failures read the same everywhere: they name the tensor and its shape.

    Args:
        initializer: an :class:`Initializer`.
        desc: the tensor (its name, role, shape and dtype).
        what: how errors name the tensor (default ``"parameter '<name>'"``).

    Raises:
        InitializerError: the initializer fails on the tensor, answers something other than a Fill
            or a callable, or its values would overflow the dtype; another GpuInitError of the
            initializer, with the tensor named. A MemoryError passes through as it is.
    """
    what = what or f"parameter {str(desc)!r}"
    try:
        how = initializer.fill_for(desc)
    except MemoryError:
        raise  # gpuinit's OutOfMemoryError included: out of memory is reported as such
    except GpuInitError as exc:
        if str(desc) in str(exc):
            raise
        raise type(exc)(f"{what} (shape {desc.shape!r}): {exc}") from exc
    except Exception as exc:
        raise InitializerError(f"{what} (shape {desc.shape!r}): initializer {initializer!r} cannot fill it: "
                               f"{type(exc).__name__}: {exc}") from exc
    if isinstance(how, Fill):
        how.check(desc.dtype, what)
    elif not callable(how):
        raise InitializerError(f"{what}: initializer {initializer!r} answered {how!r}; fill_for must return a "
                               "Fill or a callable that fills an array in place")
    return how


def run_hook(hook, array, key, name: str, what: str | None = None) -> None:
    """Run a Python initializer ``hook`` on ``array`` (zeroed first), the stream ``key`` active,
    so that ``gpuinit.nd.random`` inside it draws the tensor's own numbers.

    Args:
        hook: the callable :func:`resolve_fill` gave; it fills the array in place.
        array: the whole tensor (NumPy or CuPy), on the current device.
        key: the tensor's stream key, ``(k0, k1)``.
        name: the tensor's name, as its errors may already give it.
        what: how errors name the tensor (default ``"parameter '<name>'"``).

    Raises:
        InitializerError: the hook failed (naming the tensor and its shape); a MemoryError
            passes through as it is.
    """
    what = what or f"parameter {name!r}"
    array[...] = 0
    try:
        with Stream(key):
            hook(array)
    except MemoryError:
        raise  # gpuinit's OutOfMemoryError included: out of memory is reported as such
    except GpuInitError as exc:
        if name in str(exc):
            raise
        raise InitializerError(f"{what} (shape {tuple(array.shape)!r}): initializing it failed: {exc}") from exc
    except Exception as exc:
        raise InitializerError(f"{what} (shape {tuple(array.shape)!r}): its initializer failed: "
                               f"{type(exc).__name__}: {exc}") from exc


def _json_default(value):
    """JSON for what ``json`` cannot write itself: nested initializers (Mixed), arrays, NumPy numbers."""
    if isinstance(value, Initializer):
        return [type(value).__name__.lower(), value._kwargs]
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} {value!r} as JSON")


def fill_in_place(arr, fill: Fill) -> None:
    """Fill ``arr`` (NumPy or CuPy) from the active stream, advancing it."""
    if not isinstance(fill, Fill):  # a host-computed fill (Constant of an array): takes no stream
        fill(arr)
        return
    stream = active_or_new_stream("fill")
    fill.check(arr.dtype, "the array being initialized")
    if fill.family == "constant":
        dtypes.assign(arr, fill.a)
        return
    arr[...] = stream.draw(fill, arr.shape, arr.dtype, device_of(arr))
