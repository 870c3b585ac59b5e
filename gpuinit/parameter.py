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

from . import checks, dtypes
from .backend import to_numpy
from .device import Device, as_device
from .errors import (ArgumentError, DeferredInitializationError, GpuInitError, ShapeError,
                     UninitializedParameterError)
from .init import ROLES, create
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


class State(NamedTuple):
    """A parameter's state: declared (no request), deferred (no data) or initialized."""

    shape: tuple
    request: InitRequest | None
    data: object  # None, an ArenaSlice, or an array


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

    Raises:
        ArgumentError: any argument the parameter cannot take; the message names the parameter.
    """

    def __init__(self, name="weight", shape=None, dtype="float32", init=None, role="default",
                 grad_req="write", allow_deferred_init=True):
        checks.text(name, "name", "Parameter")
        where = f"Parameter {name!r}"
        shape = checks.shape(shape, "shape", where)
        self.dtype = dtypes.float_dtype(dtype, where)
        checks.choice(role, ROLES, "role", where)
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
        self._grad_req = checks.choice(value, GRAD_REQS, "grad_req", f"Parameter {self.name!r}")

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

    def _initialized_as(self, request: InitRequest, data, shape=None) -> State:
        """Initialized with ``data``; ``shape`` is the state's shape when the caller has it at hand."""
        return _new_state(State, (self._now.shape if shape is None else shape, request, data))

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

    def data(self, device=None):
        """The parameter's array (NumPy or CuPy), on ``device`` if given (copied if elsewhere).

        During a shape-only pass (planning, the first forward's shape inference) it is a
        :class:`~gpuinit.meta.MetaArray` of the parameter's shape.

        Raises:
            DeferredInitializationError: the shape is still unknown (first forward not run yet).
            UninitializedParameterError: ``initialize()`` was never called for it.
        """
        state = self._now
        if inferring() and shape_is_complete(state.shape):
            return MetaArray(state.shape, self.dtype)
        if state.data is None:
            if state.request is not None:
                raise self._deferred_error("access the data of")
            raise UninitializedParameterError(
                f"parameter {self.name!r} has not been initialized; call net.initialize() "
                "(or param.initialize()) first")
        data = state.data.array() if isinstance(state.data, ArenaSlice) else state.data
        if device is None:
            return data
        device = as_device(device)
        if device == state.request.device:
            return data
        with device.activate():
            return device.xp.asarray(to_numpy(data))

    def set_data(self, value) -> None:
        """Overwrite the parameter's values with ``value`` (same shape; cast to its dtype).

        The value is converted completely before anything is written: on a bad value the
        parameter keeps its old values.

        Raises:
            ShapeError: another shape; ArgumentError: not real numbers, or values that overflow
                the parameter's dtype; DeferredInitializationError, UninitializedParameterError:
                the parameter has no data yet.
        """
        from . import lifecycle
        lifecycle.set_data(self, value)

    def initialize(self, init=None, device=None, default_init=None, force_reinit=False, seed=None):
        """Initialize this parameter alone (its path is its name). See ``Block.initialize``."""
        ParameterDict({self.name: self}).initialize(init if init is not None else default_init,
                                                    device, force_reinit, seed)

    def __repr__(self) -> str:
        return f"Parameter {self.name} (shape={self.shape!r}, dtype={self.dtype})"


class ParameterDict:
    """An ordered name → :class:`Parameter` mapping, as ``Block.collect_params()`` returns.

    It also knows each parameter's structural path relative to the block it was collected from:
    that path keys the parameter's random stream.
    """

    def __init__(self, params=None, paths=None, prefix=""):
        self._params: OrderedDict[str, Parameter] = OrderedDict(params or {})
        for name, p in self._params.items():
            if not isinstance(p, Parameter):
                raise ArgumentError(f"ParameterDict: {name!r} must be a Parameter, got {type(p).__name__}")
        self._paths: dict[str, str] = dict(paths or {})
        self.prefix = checks.text(prefix, "prefix", "ParameterDict", empty=True)

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

    def get(self, name, **kwargs) -> Parameter:
        """Gluon 1.x's ``params.get``: the parameter ``prefix + name``, created if missing.

        Without ``role=``, a parameter named exactly after a role (``weight``, ``bias``, ...)
        takes that role.
        """
        checks.text(name, "name", "ParameterDict.get")
        full = self.prefix + name
        if full not in self._params:
            kwargs.setdefault("role", name if name in ROLES else "default")
            self._params[full] = Parameter(full, **kwargs)
        return self._params[full]

    @property
    def nbytes(self) -> int:
        """Total bytes of the parameters whose shapes are known (shared ones counted once)."""
        return sum(p.nbytes for p in {id(p): p for p in self.values()}.values())

    def initialize(self, init=None, device=None, force_reinit=False, seed=None, defer=False) -> None:
        """Initialize every parameter: at once where the shape is known, else at the first forward.

        Args:
            init: the initializer for parameters without their own (default ``Uniform(0.07)``).
            device: where the parameters will live (default: ``gpuinit.default_device()``).
            force_reinit: re-initialize parameters that already are (or are waiting to be).
            seed: the seed of the parameters' streams (default: the next global seed).
            defer: record how to initialize and allocate nothing even where every shape is known
                (the first forward materializes, or :func:`gpuinit.shard` takes a slice of each).

        Raises:
            GpuInitError: a bad initializer, device or seed, or a failed fill; nothing is changed then.
        """
        from . import lifecycle
        paths = self._paths
        lifecycle.initialize(((paths.get(name, name), p) for name, p in self._params.items()), init, device,
                             force_reinit, seed, defer)

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
        return f"{self.prefix or 'ParameterDict'} (\n{lines}\n)"
