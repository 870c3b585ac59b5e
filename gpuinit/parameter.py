"""Parameters and parameter dictionaries.

A :class:`Parameter` records its shape (``0`` marks a dimension still unknown), dtype, role and
initializer, and is in one of three states:

- *declared*: ``initialize()`` has not been called for it; nothing is recorded, nothing allocated;
- *deferred*: ``initialize()`` recorded how it will be filled (initializer, device, stream key),
  and it waits for its shape (the first forward pass) or for its network's one step;
- *initialized*: its data exists, a view into its network's arena.

The state is one immutable record, and only the lifecycle (:mod:`gpuinit.lifecycle`) changes it,
through the transitions below: it *stages* the new states of a whole step (visible only to the
thread running the step, so that step's own forward pass sees them), then commits them all, or
drops them all if anything fails. No other thread ever sees half a step.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections import OrderedDict
from typing import NamedTuple

import numpy as np

from . import checks, dtypes
from .backend import array_module_of, to_numpy
from .device import Device, as_device
from .errors import (ArgumentError, ArgumentTypeError, DeferredInitializationError, GpuInitError,
                     NoGradientError, ShapeError, UninitializedParameterError)
from .init import ROLES, Initializer, create
from .meta import MetaArray
from .store import ArenaSlice

GRAD_REQS = ("write", "add", "null")


class InitRequest(NamedTuple):
    """How a parameter will be (or was) initialized: recorded by ``initialize()``."""

    initializer: object  # an Initializer
    own: bool            # the parameter's own init (fills whatever the role) or the global one
    device: Device
    key: tuple
    path: str
    seed: int | None = None  # the seed ``key`` was derived from (recorded in checkpoints)
    replicas: tuple = ()  # further devices holding a copy (Gluon's ctx=[...]), in order

    @property
    def devices(self) -> tuple:
        return (self.device,) + self.replicas


class State(NamedTuple):
    """A parameter's state: declared (no request), deferred (no data) or initialized."""

    shape: tuple
    request: InitRequest | None
    data: object  # None, an ArenaSlice, or an array
    copies: tuple = ()   # the replicas' data (ArenaSlices), parallel to request.replicas
    grads: tuple = ()    # gradient buffers, one per device, made on first use (Parameter.grad)


_new_state = tuple.__new__  # State(...) without its Python-level __new__: one per parameter per step

# The step this thread is running, if any: an object with ``changes`` ({id(param): (param,
# State)}, its staged states) and ``inferring`` (whether a shape-only pass is running).
_staged = threading.local()


@contextlib.contextmanager
def staging(step):
    """Make ``step``'s staged states what this thread's parameters read, for a block."""
    previous = getattr(_staged, "step", None)
    _staged.step = step
    try:
        yield step
    finally:
        _staged.step = previous


def current_step():
    """The step this thread is running (see :mod:`gpuinit.lifecycle`), or None."""
    return getattr(_staged, "step", None)


def inferring() -> bool:
    """Whether this thread is running a shape-only pass."""
    step = getattr(_staged, "step", None)
    return step is not None and step.inferring


def shape_is_complete(shape) -> bool:
    """Whether a shape (non-negative integers, 0 for unknown) has every dimension known."""
    return len(shape) > 0 and 0 not in shape


class Parameter:
    """A model parameter: shape, dtype, role and initializer, and its data once materialized.

    Args:
        name: the parameter's name; a block that owns it prefixes it with its own (``dense0_``).
        shape: its shape; ``0`` marks a dimension to be inferred from the first input.
        dtype: ``float16``, ``bfloat16``, ``float32`` or ``float64`` (a name or a NumPy dtype).
        init: the parameter's own initializer (instance, class or name); when set, it wins over
            the one given to ``initialize``.
        role: ``weight``, ``bias``, ``gamma``, ``beta``, ``running_mean``, ``running_var`` or
            ``default``: which initializer hook fills it.
        grad_req: ``write``, ``add`` or ``null`` (``null``: not trained, e.g. running statistics).
        allow_deferred_init: whether ``initialize()`` may wait for an unknown shape.
        lr_mult, wd_mult: Gluon's learning-rate and weight-decay multipliers (kept for trainers).
        differentiable: False makes ``grad_req`` ``'null'`` for good, as in Gluon.
        stype, grad_stype: ``'default'`` only (dense): sparse storage is out of scope.

    Raises:
        ArgumentError: any argument the parameter cannot take; the message names the parameter.
    """

    def __init__(self, name="weight", shape=None, dtype="float32", init=None, role="default",
                 grad_req="write", allow_deferred_init=True, *, lr_mult=1.0, wd_mult=1.0,
                 differentiable=True, stype="default", grad_stype="default"):
        checks.text(name, "name", "Parameter")
        where = f"Parameter {name!r}"
        shape = checks.shape(shape, "shape", where)
        self.dtype = dtypes.float_dtype(dtype, where)
        checks.choice(role, ROLES, "role", where)
        for what, storage in (("stype", stype), ("grad_stype", grad_stype)):
            if storage != "default":
                raise ArgumentError(f"{where}: {what} must be 'default', got {storage!r}: sparse storage is "
                                    "outside gpuinit's scope; use dense parameters")
        differentiable = checks.flag(differentiable, "differentiable", where)
        self._mults = (checks.real(lr_mult, "lr_mult", where), checks.real(wd_mult, "wd_mult", where))
        if not differentiable:
            grad_req = "null"
        if init is not None:
            try:
                create(init)
            except GpuInitError as exc:
                raise type(exc)(f"{where}: {exc}") from None
        self.name = name
        self.init = init
        self.role = role
        self.grad_req = grad_req
        self.allow_deferred_init = checks.flag(allow_deferred_init, "allow_deferred_init", where)
        self._differentiable = differentiable
        self._state = State(shape, None, None)
        self._named = False  # whether a block has given it its prefix

    # --- state, as this thread sees it -----------------------------------------------------

    @property
    def _now(self) -> State:
        step = getattr(_staged, "step", None)
        if step is not None:
            staged = step.changes.get(id(self))
            if staged is not None:
                return staged[1]
        return self._state

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape; ``0`` marks a dimension not known yet."""
        return self._now.shape

    @shape.setter
    def shape(self, new_shape) -> None:
        """Fill in unknown dimensions (as Gluon allows); known ones cannot change."""
        from . import lifecycle
        lifecycle.set_shape(self, new_shape)

    @property
    def shape_known(self) -> bool:
        return shape_is_complete(self._now.shape)

    @property
    def size(self) -> int:
        """Number of elements (0 while the shape is incomplete)."""
        shape = self._now.shape
        return math.prod(shape) if shape else 0  # an unknown dimension is 0

    @property
    def nbytes(self) -> int:
        """Bytes the parameter's data takes (0 while the shape is incomplete)."""
        return self.size * self.dtype.itemsize

    @property
    def grad_req(self) -> str:
        return self._grad_req

    @grad_req.setter
    def grad_req(self, value) -> None:
        value = checks.choice(value, GRAD_REQS, "grad_req", f"Parameter {self.name!r}")
        if not getattr(self, "_differentiable", True):
            value = "null"  # as Gluon: a parameter declared not differentiable never has a gradient
        if value == "null" and "_state" in self.__dict__ and self._now.grads:
            from . import lifecycle
            lifecycle.drop_grads(self)  # first: if it is refused, grad_req stays as it was
        self._grad_req = value

    @property
    def initialized(self) -> bool:
        """Whether the parameter's data exists."""
        return self._now.data is not None

    @property
    def deferred(self) -> bool:
        """Whether ``initialize()`` was called and the data waits (for the shape, or the step)."""
        state = self._now
        return state.data is None and state.request is not None

    @property
    def requested(self) -> bool:
        """Whether ``initialize()`` was called for it (deferred or initialized)."""
        return self._now.request is not None

    @property
    def device(self) -> Device | None:
        """Where the data lives, or will live once initialized; ``None`` before ``initialize``."""
        request = self._now.request
        return request.device if request else None

    @property
    def rng_key(self) -> tuple[int, int] | None:
        """The two 64-bit words of the Philox key the parameter's stream uses."""
        request = self._now.request
        return request.key if request else None

    @property
    def path(self) -> str | None:
        """Structural path inside the block ``initialize`` was called on (``0.weight``)."""
        request = self._now.request
        return request.path if request else None

    @property
    def request(self) -> InitRequest | None:
        """How ``initialize()`` said to fill it, or None."""
        return self._now.request

    # --- the lifecycle's transitions: each returns a new State; only the lifecycle applies them

    def _with_shape(self, new_shape, base: State | None = None) -> State:
        """This state with unknown dimensions filled in from ``new_shape``.

        Raises:
            ShapeError: a known dimension differs, the rank differs, or ``new_shape`` has a
                non-positive dimension where this one is unknown.
        """
        state = base or self._now
        new_shape = checks.shape(new_shape, "shape", f"parameter {self.name!r}", error=ShapeError)
        old = state.shape
        if not old:
            return state._replace(shape=new_shape)
        if len(new_shape) != len(old) or any(o and o != n for o, n in zip(old, new_shape)):
            raise ShapeError(f"parameter {self.name!r} has shape {old!r}; cannot change it to "
                             f"{new_shape!r}: only dimensions still unknown (0) can be set, so give a shape "
                             "that keeps the known ones, or make a new parameter")
        return state._replace(shape=tuple(n if not o else o for o, n in zip(old, new_shape)))

    def _deferred_as(self, request: InitRequest) -> State:
        return State(self._now.shape, request, None)

    def _initialized_as(self, request: InitRequest, data, shape=None, copies=()) -> State:
        """Initialized with ``data`` (and ``copies`` on the request's replicas); ``shape`` is the
        state's shape when the caller has it at hand. Gradients start over (made on first use)."""
        return _new_state(State, (self._now.shape if shape is None else shape, request, data, copies, ()))

    def _with_grads(self, grads) -> State:
        return self._now._replace(grads=tuple(grads))

    def _stage(self, state: State) -> None:
        """Put ``state`` among the running step's changes (this thread only)."""
        step = getattr(_staged, "step", None)
        if step is None:
            raise GpuInitError("internal error: a parameter state was staged outside a lifecycle step")
        step.changes[id(self)] = (self, state)

    def _commit(self, state: State) -> None:
        """Make ``state`` this parameter's state for every thread (the lifecycle's commit)."""
        self._state = state

    # --- data -------------------------------------------------------------------------------

    def _deferred_error(self, what: str) -> DeferredInitializationError:
        why = (f"its shape {self.shape!r} is not fully known" if not self.shape_known else
               "it waits, with the rest of its network, for the first forward pass")
        return DeferredInitializationError(
            f"cannot {what} parameter {self.name!r} yet: {why}, so its initialization was "
            "deferred; it happens at the first forward pass, when the input fixes the unknown "
            "dimensions. To initialize at once, give the layers their input sizes (for example "
            "Dense(..., in_units=20) or Conv2D(..., in_channels=3)), or run one forward pass first")

    def chosen_initializer(self, default):
        """``(initializer, own)``: the parameter's own ``init`` if set (it fills whatever the role),
        else ``default`` (dispatched by role)."""
        return (create(self.init), True) if self.init is not None else (default, False)

    def _data_state(self, what: str) -> State:
        """This thread's state, with data; else the deferred/uninitialized error."""
        state = self._now
        if state.data is None:
            if state.request is not None:
                raise self._deferred_error(what)
            raise UninitializedParameterError(
                f"parameter {self.name!r} has not been initialized; call net.initialize() "
                "(or param.initialize()) first")
        return state

    def data(self, ctx=None, device=None):
        """The parameter's array (NumPy or CuPy), on ``device`` (Gluon: ``ctx``) if given.

        A replicated parameter (``initialize(device=[cpu(0), cpu(1)])``) gives the copy on that
        device; a device holding no copy gets a new array copied there.

        During a shape-only pass (planning, the first forward's shape inference) it is a
        :class:`~gpuinit.meta.MetaArray` of the parameter's shape.

        Raises:
            DeferredInitializationError: the shape is still unknown (first forward not run yet).
            UninitializedParameterError: ``initialize()`` was never called for it.
        """
        device = device if device is not None else ctx
        state = self._now
        if inferring() and shape_is_complete(state.shape):
            return MetaArray(state.shape, self.dtype)
        if state.data is None:
            step = current_step()
            if step is not None and getattr(step, "eager", False) and state.request is not None \
                    and shape_is_complete(state.shape):
                from . import lifecycle  # a first forward that follows a data-dependent block
                lifecycle.materialize_in_step(step, self)
                state = self._now
        state = self._data_state("access the data of")
        return self._on(state, state.data, state.copies, device)

    def _on(self, state, data, copies, device):
        data = data.array() if isinstance(data, ArenaSlice) else data
        request = state.request
        if device is None:
            return _labelled(data, request.device)
        device = as_device(device)
        if device == request.device:
            return _labelled(data, device)
        for replica, copy in zip(request.replicas, copies):
            if device == replica:
                return _labelled(copy.array() if isinstance(copy, ArenaSlice) else copy, device)
        with device.activate():
            return device.xp.asarray(to_numpy(data))

    def list_data(self) -> list:
        """The parameter's arrays, one per device, in the order of :meth:`list_ctx`."""
        state = self._data_state("access the data of")
        return [_labelled(s.array() if isinstance(s, ArenaSlice) else s, d)
                for s, d in zip((state.data,) + tuple(state.copies), state.request.devices)]

    def list_ctx(self) -> list:
        """The devices holding (or, while deferred, going to hold) the parameter, in order."""
        request = self._now.request
        if request is None:
            raise UninitializedParameterError(f"parameter {self.name!r} has not been initialized; call "
                                              "initialize() first")
        return list(request.devices)

    def grad(self, ctx=None, device=None):
        """The gradient buffer on ``device`` (default: the first), zeros of the parameter's shape
        and dtype, made on first use: parameters that are never trained cost no gradient memory.

        Raises:
            NoGradientError: ``grad_req`` is ``'null'`` (no gradient; a ``RuntimeError``, as in Gluon).
            DeferredInitializationError, UninitializedParameterError: no data yet.
        """
        device = device if device is not None else ctx
        state = self._grad_state()
        devices = state.request.devices
        index = 0 if device is None else next((i for i, d in enumerate(devices) if d == as_device(device)), None)
        if index is None:
            raise ArgumentError(f"parameter {self.name!r} has no gradient on {as_device(device)!r}: it lives on "
                                f"{list(devices)!r}; pass one of those")
        return state.grads[index]

    def list_grad(self) -> list:
        """The gradient buffers, one per device (made on first use, as :meth:`grad`)."""
        return list(self._grad_state().grads)

    def _grad_state(self) -> State:
        if self._grad_req == "null":
            raise NoGradientError(f"cannot get the gradient of parameter {self.name!r}: its grad_req is 'null' "
                                "(it is not trained); to train it, set it with param.grad_req = 'write' first")
        state = self._data_state("access the gradient of")
        if not state.grads:
            from . import lifecycle
            state = lifecycle.make_grads(self)  # the buffers as made, whatever another thread does next
            if not state.grads:  # its data went meanwhile: say so as without buffers
                state = self._data_state("access the gradient of")
        return state

    def zero_grad(self) -> None:
        """Set the gradient buffers to zero (nothing to do where none was made yet)."""
        from . import lifecycle
        lifecycle.zero_grads([self])

    def reset_ctx(self, ctx=None, device=None) -> None:
        """Move the parameter (its data, or while deferred where it will live) to ``device`` (Gluon:
        ``ctx``), one device or a list; gradients are made again on first use.

        Raises:
            UninitializedParameterError: ``initialize()`` was never called for it (as in Gluon).
        """
        from . import lifecycle
        lifecycle.reset_devices([self], device if device is not None else ctx)

    def set_data(self, value) -> None:
        """Overwrite the parameter's values with ``value`` (same shape; cast to its dtype), on every
        device that holds a copy.

        The value is converted completely before anything is written: on a bad value the
        parameter keeps its old values.

        Raises:
            ShapeError: another shape; ArgumentError: not real numbers, or values that overflow
                the parameter's dtype; DeferredInitializationError, UninitializedParameterError:
                the parameter has no data yet.
        """
        from . import lifecycle
        lifecycle.set_data(self, value)

    def cast(self, dtype) -> None:
        """Change the dtype (``float16``, ``bfloat16``, ``float32``, ``float64``); the data, if made,
        is converted on every device, and gradients are made again on first use."""
        from . import lifecycle
        lifecycle.cast([self], dtype)

    def initialize(self, init=None, ctx=None, default_init=None, force_reinit=False, seed=None, device=None):
        """Initialize this parameter alone (its path is its name).

        Args:
            init: fills this parameter whatever its role (through the initializer's
                ``_init_weight``, as in Gluon); default: its own ``init``, else ``default_init``,
                else ``Uniform()``.
            ctx, device: where it lives: one device or a list (copies on each).
            default_init, force_reinit, seed: see ``Block.initialize``.
        """
        from . import lifecycle
        lifecycle.initialize([(self.name, self)], default_init, device if device is not None else ctx,
                             force_reinit, seed, explicit=init)

    @property
    def lr_mult(self) -> float:
        return self._mults[0]

    @lr_mult.setter
    def lr_mult(self, value) -> None:
        self._mults = (checks.real(value, "lr_mult", f"Parameter {self.name!r}"), self._mults[1])

    @property
    def wd_mult(self) -> float:
        return self._mults[1]

    @wd_mult.setter
    def wd_mult(self, value) -> None:
        self._mults = (self._mults[0], checks.real(value, "wd_mult", f"Parameter {self.name!r}"))

    def __repr__(self) -> str:
        return f"Parameter {self.name} (shape={self.shape!r}, dtype={self.dtype})"


def _labelled(array, device):
    """``array``, told its device where that is not the first host label: ``cpu(1)`` is the host
    too, so only the label (``_device``, read by an array's ``context`` where the array type can
    carry it) says which replica an array is."""
    if device.index and not device.is_gpu:
        try:
            array._device = device
        except AttributeError:  # a plain numpy.ndarray takes no attributes
            pass
    return array


class _Value(Initializer):
    """The initializer of a :class:`Constant`: its value, whatever the seed."""

    def __init__(self, value):
        super().__init__()
        self.value = value

    def _init_weight(self, name, arr):
        arr[...] = array_module_of(arr).asarray(self.value)

    def __repr__(self) -> str:
        return f"Constant value of shape {self.value.shape}"


class Constant(Parameter):
    """A parameter that holds a fixed value and is not trained (``grad_req='null'``), as
    ``ParameterDict.get_constant`` makes it.

    Args:
        name: its name.
        value: an array (or anything ``numpy.asarray`` reads); a float array keeps its dtype,
            anything else becomes float32, as MXNet's ``nd.array`` does.

    ``value`` stays the value it was made with, which ``initialize(force_reinit=True)`` writes back
    and ``get_constant`` compares with; after a load, ``data()`` holds the loaded numbers (as in
    Gluon).
    """

    def __init__(self, name, value):
        where = f"Constant {name!r}"
        try:
            value = np.array(to_numpy(value))
        except (TypeError, ValueError) as exc:
            raise ArgumentTypeError(f"{where}: cannot read the value as an array of numbers ({exc}); pass "
                                    "an array") from None
        if value.dtype.kind != "f" or value.dtype.itemsize not in (2, 4, 8):
            if not dtypes.is_real(value.dtype):
                raise ArgumentTypeError(f"{where}: the value must hold real numbers, got dtype {value.dtype}")
            value = value.astype(np.float32)
        super().__init__(name, shape=value.shape, dtype=value.dtype, grad_req="null", role="default",
                         allow_deferred_init=False)
        self.value = value
        self.init = _Value(value)

    def __repr__(self) -> str:
        return f"Constant {self.name} (shape={self.shape!r}, dtype={self.dtype})"


class ParameterDict:
    """An ordered name → :class:`Parameter` mapping: a block's own parameters (``block.params``),
    or what ``Block.collect_params()`` returns.

    As in Gluon 1.x, :meth:`get` makes a parameter named ``prefix + name``, or returns the one of
    that name already here or in ``shared``: a block built with ``params=other.params`` gets
    ``other``'s parameters (one object each, initialized once). A collected dictionary also knows
    each parameter's structural path relative to the block it was collected from: that path keys
    the parameter's random stream.

    Args:
        prefix: the prefix of the names :meth:`get` makes.
        shared: a ParameterDict whose parameters :meth:`get` returns instead of making new ones.

    Example:
        >>> from gpuinit import ParameterDict
        >>> params = ParameterDict('net_')
        >>> w = params.get('w0', shape=(10, 10))
        >>> list(params.keys())
        ['net_w0']
    """

    def __init__(self, prefix="", shared=None, *, params=None, paths=None):
        if isinstance(prefix, (dict, OrderedDict)):  # ParameterDict({name: param}): a ready mapping
            prefix, params = "", prefix
        self.prefix = checks.text(prefix, "prefix", "ParameterDict", empty=True)
        if shared is not None and not isinstance(shared, ParameterDict):
            raise ArgumentTypeError(f"ParameterDict: shared must be a ParameterDict (such as block.params or "
                                    f"block.collect_params()), got {type(shared).__name__}")
        self._params: OrderedDict[str, Parameter] = OrderedDict(params or {})
        for name, p in self._params.items():
            if not isinstance(p, Parameter):
                raise ArgumentError(f"ParameterDict: {name!r} must be a Parameter, got {type(p).__name__}")
        self._paths: dict[str, str] = dict(paths or {})
        self._shared = shared

    def __getitem__(self, name) -> Parameter:
        return self._params[name]

    def __contains__(self, name) -> bool:
        return name in self._params

    def __iter__(self):
        return iter(self._params)

    def __len__(self) -> int:
        return len(self._params)

    def keys(self):
        return self._params.keys()

    def values(self):
        return self._params.values()

    def items(self):
        return self._params.items()

    def path_of(self, name: str) -> str:
        return self._paths.get(name, name)

    def _lookup(self, full: str) -> Parameter | None:
        """The parameter named ``full`` here, else in ``shared`` (the caller keeps it here once
        it has checked it: :meth:`_keep`)."""
        param = self._params.get(full)
        if param is None and self._shared is not None:
            param = self._shared._params.get(full)
        return param

    def _keep(self, full: str, param: Parameter) -> Parameter:
        self._params.setdefault(full, param)
        return param

    def get(self, name, **kwargs) -> Parameter:
        """Gluon 1.x's ``params.get``: the parameter ``prefix + name`` from here or ``shared``,
        else a new one made with ``kwargs`` (``shape``, ``dtype``, ``init``, ``grad_req``, ...).

        Without its own ``init`` or a ``role=``, a new parameter is filled by the global
        initializer's weight rule whatever its name (``get('bias')`` included), as Gluon 1.x
        fills every such parameter through ``_init_weight``. For an existing parameter, the attributes asked for must agree with its own: an
        unknown (0) dimension takes the other's size, an attribute it lacks is set.

        Raises:
            ArgumentError: an attribute that disagrees with the existing parameter's (the shape, the
                dtype, the initializer), or one a new parameter cannot take.
        """
        checks.text(name, "name", "ParameterDict.get")
        full = self.prefix + name
        param = self._lookup(full)
        if param is None:
            kwargs.setdefault("role", "weight" if name == "weight" else "default")
            param = self._params[full] = Parameter(full, **kwargs)
            param._named = True
            return param
        _merge_into(param, kwargs, f"ParameterDict.get({name!r})")
        return self._keep(full, param)

    def get_constant(self, name, value=None) -> "Constant":
        """Gluon's ``params.get_constant``: the constant ``prefix + name``, made from ``value`` if new.

        Raises:
            KeyError: no such constant and no ``value`` to make it (Gluon's error).
            ArgumentError: it exists and is not a constant, or holds another value.
        """
        checks.text(name, "name", "ParameterDict.get_constant")
        full = self.prefix + name
        param = self._lookup(full)
        if param is None:
            if value is None:
                raise KeyError(f"no constant named {full!r}; pass value= to make a new constant")
            param = self._params[full] = Constant(full, value)
            param._named = True
        elif value is not None:
            if not isinstance(param, Constant):
                raise ArgumentError(f"ParameterDict.get_constant({name!r}): parameter {full!r} exists and is not "
                                    "a constant; choose another name")
            given = np.asarray(to_numpy(value))
            if given.shape != param.value.shape or not bool((given == param.value).all()):
                raise ArgumentError(f"ParameterDict.get_constant({name!r}): constant {full!r} exists with "
                                    "another value; choose another name, or pass value=None to get it")
        return self._keep(full, param)

    def update(self, other) -> None:
        """Add ``other``'s parameters (a ParameterDict or a mapping of names to parameters).

        Raises:
            ArgumentError: a name here already names a different parameter (Gluon's refusal);
                nothing is added then.
        """
        items = list(other.items())
        for name, p in items:
            if not isinstance(p, Parameter):
                raise ArgumentError(f"ParameterDict.update: {name!r} must be a Parameter, got {type(p).__name__}")
            if name in self._params and self._params[name] is not p:
                raise ArgumentError(f"ParameterDict.update: cannot add {name!r}: this dictionary already holds "
                                    "a different parameter of that name; give one of them another name")
        paths = getattr(other, "_paths", {})
        for name, p in items:
            self._params[name] = p
            if name in paths:
                self._paths.setdefault(name, paths[name])

    def setattr(self, name, value) -> None:
        """Set attribute ``name`` to ``value`` on every parameter (``grad_req``, ``lr_mult``,
        ``wd_mult``, ``init``, ``allow_deferred_init``; ``dtype`` casts, as ``Block.cast``).

        Raises:
            ArgumentError: an attribute parameters do not have, or a value they refuse; checked
                before any parameter changes.
        """
        checks.text(name, "name", "ParameterDict.setattr")
        where = "ParameterDict.setattr"
        if name not in _SETTABLE:
            raise ArgumentError(f"{where}: cannot set {name!r}; pass one of the settable attributes "
                                f"{sorted(_SETTABLE)}")
        params = self._distinct()
        if name == "dtype":
            from . import lifecycle
            lifecycle.cast(params, value)
            return
        if name == "grad_req":
            checks.choice(value, GRAD_REQS, "grad_req", where)
        elif name in ("lr_mult", "wd_mult"):
            checks.real(value, name, where)
        elif name == "allow_deferred_init":
            value = checks.flag(value, name, where)
        elif value is not None:  # init
            try:
                create(value)
            except GpuInitError as exc:
                raise type(exc)(f"{where}: init: {exc}") from None
        for p in params:
            setattr(p, name, value)

    def _distinct(self) -> list:
        return list({id(p): p for p in self._params.values()}.values())

    def zero_grad(self) -> None:
        """Set every gradient buffer made so far to zero."""
        from . import lifecycle
        lifecycle.zero_grads(self._distinct())

    def reset_ctx(self, ctx=None, device=None) -> None:
        """Move every parameter to ``device`` (Gluon: ``ctx``), one device or a list, all or nothing."""
        from . import lifecycle
        lifecycle.reset_devices(self._distinct(), device if device is not None else ctx)

    def list_ctx(self) -> list:
        """The devices the parameters live on (each once)."""
        out = []
        for p in self._distinct():
            for d in p.list_ctx():
                if d not in out:
                    out.append(d)
        return out

    @property
    def nbytes(self) -> int:
        """Total bytes of the parameters whose shapes are known (shared ones counted once)."""
        return sum(p.nbytes for p in self._distinct())

    def initialize(self, init=None, device=None, force_reinit=False, seed=None, defer=False, *, ctx=None,
                   verbose=False) -> None:
        """Initialize every parameter: at once where the shape is known, else at the first forward.

        Args:
            init: the initializer for parameters without their own (default ``Uniform(0.07)``).
            device: where the parameters will live (default: ``gpuinit.default_device()``), or a
                list of devices (a copy on each); ``ctx`` is Gluon's name for it.
            force_reinit: re-initialize parameters that already are (or are waiting to be).
            seed: the seed of the parameters' streams (default: the next global seed).
            defer: record how to initialize and allocate nothing even where every shape is known
                (the first forward materializes, or :func:`gpuinit.shard` takes a slice of each).
            verbose: ignored; kept for Gluon's signature.

        Raises:
            GpuInitError: a bad initializer, device or seed, or a failed fill; nothing is changed then.
        """
        from . import lifecycle
        paths = self._paths
        lifecycle.initialize(((paths.get(name, name), p) for name, p in self._params.items()), init,
                             device if device is not None else ctx, force_reinit, seed, defer)

    def save(self, filename, strip_prefix="") -> None:
        """Save the parameters to a safetensors file keyed by name, ``strip_prefix`` removed
        (Gluon's); see :mod:`gpuinit.checkpoint`."""
        from . import checkpoint
        checkpoint.save_dict(self, filename, strip_prefix)

    def load(self, filename, device=None, allow_missing=False, ignore_extra=False, restore_prefix="",
             cast_dtype=False, dtype_source="current", ctx=None) -> None:
        """Load parameters saved by :meth:`save` (keys: names without ``restore_prefix``), as
        ``Block.load_parameters`` does."""
        from . import checkpoint
        checkpoint.load_dict(self, filename, device if device is not None else ctx, allow_missing, ignore_extra,
                             restore_prefix, cast_dtype, dtype_source)

    def __repr__(self) -> str:
        lines = "\n".join(f"  {p!r}" for p in self.values())
        return f"{self.prefix + ' ' if self.prefix else ''}(\n{lines}\n)"


_SETTABLE = ("grad_req", "lr_mult", "wd_mult", "init", "allow_deferred_init", "dtype")


_GET_ATTRIBUTES = ("shape", "dtype", "init", "role", "grad_req", "allow_deferred_init", "lr_mult", "wd_mult",
                   "differentiable", "stype", "grad_stype")


def _merge_into(param: Parameter, wanted: dict, where: str) -> None:
    """Check that ``wanted`` (attributes a caller asks for) agrees with the existing ``param``,
    then fill in what it lacks: unknown dimensions (through the lifecycle), an initializer.
    Everything is checked before anything is changed."""
    new_shape, new_init = None, None
    for key, value in wanted.items():
        if key not in _GET_ATTRIBUTES:
            raise ArgumentTypeError(f"{where}: unknown parameter attribute {key!r}; pass one of "
                                    f"{', '.join(_GET_ATTRIBUTES)}")
        if key == "shape":
            if value is None:
                continue
            shape = checks.shape(value, "shape", where)
            current = param.shape
            if current and (len(shape) != len(current) or
                            any(a and b and a != b for a, b in zip(shape, current))):
                raise ArgumentError(f"{where}: parameter {param.name!r} exists with shape {current!r}, which "
                                    f"does not match the shape {shape!r} asked for; use another name, or a "
                                    "shape that agrees (0 for a dimension to take from the existing one)")
            merged = tuple(a or b for a, b in zip(shape, current)) if current else shape
            if merged != current:
                new_shape = merged
        elif key == "dtype":
            if dtypes.float_dtype(value, where) != param.dtype:
                raise ArgumentError(f"{where}: parameter {param.name!r} exists with dtype {param.dtype}, not "
                                    f"{value}; use another name, or the same dtype")
        elif key == "init":
            if value is None:
                continue
            if param.init is None:
                create(value)  # a bad initializer is refused before anything changes
                new_init = value
            elif param.init != value and create(param.init) != create(value):
                raise ArgumentError(f"{where}: parameter {param.name!r} exists with initializer "
                                    f"{param.init!r}, not {value!r}; use another name, or the same initializer")
        elif key == "role":
            if value != param.role and value != "default":
                raise ArgumentError(f"{where}: parameter {param.name!r} exists with role {param.role!r}, "
                                    f"not {value!r}; use another name")
        else:
            existing = {"differentiable": param._differentiable, "stype": "default",
                        "grad_stype": "default"}.get(key, getattr(param, key, None))
            if value != existing:
                raise ArgumentError(f"{where}: parameter {param.name!r} exists with {key}={existing!r}, not "
                                    f"{value!r}; use another name, or the same value")
    if new_shape is not None:
        param.shape = new_shape
    if new_init is not None:
        param.init = new_init
