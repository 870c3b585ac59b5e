"""Parameters and parameter dictionaries: what the store allocates and fills.

A :class:`Parameter` records its shape (``0`` marks a dimension still unknown), dtype, role and
initializer. ``initialize()`` records *how* it will be filled (initializer, device, stream key);
the store allocates and fills it as soon as its shape is complete, which is at once when every
dimension is known and at the first forward pass otherwise.
"""

from __future__ import annotations

import math
import threading
import warnings
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from . import dtypes, streams
from .backend import array_module_of, to_numpy
from .device import Device, as_device
from .errors import (DeferredInitializationError, GpuInitError, ShapeError,
                     UninitializedParameterError)
from .init import ROLES, Uniform, create
from .store import ArenaSlice, gc_paused, materialize

# One lock serializes every materialization and shape completion, so several threads calling the
# first forward at once initialize exactly once.
materialize_lock = threading.RLock()


def normalize_shape(shape) -> tuple[int, ...]:
    if shape is None:
        return ()
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    try:
        dims = tuple(int(d) for d in shape)
    except (TypeError, ValueError):
        raise ShapeError(f"a shape must be a tuple of non-negative integers, got {shape!r}") from None
    if any(d < 0 for d in dims):
        raise ShapeError(f"a shape must be a tuple of non-negative integers, got {shape!r}")
    return dims


def shape_is_complete(shape) -> bool:
    return len(shape) > 0 and all(d > 0 for d in shape)


@dataclass
class InitRequest:
    """How a parameter will be (or was) initialized: recorded by ``initialize()``."""

    initializer: object  # an Initializer
    own: bool            # the parameter's own init (fills whatever the role) or the global one
    device: Device
    key: tuple
    path: str


class Parameter:
    """A model parameter: shape, dtype, role and initializer, and its data once materialized.

    Args:
        name: the parameter's name; a block that owns it prefixes it with its own (``dense0_``).
        shape: its shape; ``0`` marks a dimension to be inferred from the first input.
        dtype: a float NumPy dtype or its name.
        init: the parameter's own initializer (instance or name); when set, it wins over the one
            given to ``initialize``.
        role: ``weight``, ``bias``, ``gamma``, ``beta``, ``running_mean``, ``running_var`` or
            ``default``: which initializer hook fills it.
    """

    def __init__(self, name="weight", shape=None, dtype="float32", init=None, role="default",
                 grad_req="write", allow_deferred_init=True):
        if role not in ROLES:
            raise GpuInitError(f"parameter {name!r}: role must be one of {ROLES}, got {role!r}")
        self.name = name
        self._shape = normalize_shape(shape)
        self.dtype = dtypes.as_dtype(dtype)
        self.init = init
        self.role = role
        self.grad_req = grad_req
        self.allow_deferred_init = allow_deferred_init
        self._data = None
        self._request: InitRequest | None = None
        self._owner = None

    # --- shape -----------------------------------------------------------------------------

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape; ``0`` marks a dimension not known yet."""
        return self._shape

    @shape.setter
    def shape(self, new_shape) -> None:
        new_shape = normalize_shape(new_shape)
        if not self._shape:
            self._shape = new_shape
            return
        if len(new_shape) != len(self._shape) or any(
                old and old != new for old, new in zip(self._shape, new_shape)):
            raise ShapeError(f"parameter {self.name!r} has shape {self._shape!r}; cannot change it "
                             f"to {new_shape!r} (only dimensions marked 0 can be filled in)")
        self._shape = tuple(new if not old else old for old, new in zip(self._shape, new_shape))

    @property
    def shape_known(self) -> bool:
        return shape_is_complete(self._shape)

    @property
    def size(self) -> int:
        """Number of elements (0 while the shape is incomplete)."""
        return math.prod(self._shape) if self._shape else 0  # an unknown dimension is 0

    @property
    def nbytes(self) -> int:
        """Bytes the parameter's data takes (0 while the shape is incomplete)."""
        return self.size * self.dtype.itemsize

    # --- state -----------------------------------------------------------------------------

    @property
    def initialized(self) -> bool:
        """Whether the parameter's data exists."""
        return self._data is not None

    @property
    def deferred(self) -> bool:
        """Whether ``initialize()`` was called and the data waits for the shape."""
        return self._data is None and self._request is not None

    @property
    def device(self) -> Device | None:
        """Where the data lives, or will live once initialized; ``None`` before ``initialize``."""
        return self._request.device if self._request else None

    @property
    def rng_key(self) -> tuple[int, int] | None:
        """The two 64-bit words of the Philox key the parameter's stream uses."""
        return self._request.key if self._request else None

    @property
    def path(self) -> str | None:
        """Structural path inside the block ``initialize`` was called on (``0.weight``)."""
        return self._request.path if self._request else None

    def _deferred_error(self, what: str) -> DeferredInitializationError:
        why = (f"its shape {self._shape!r} is not fully known" if not self.shape_known else
               "it waits, with the rest of its network, for shapes still unknown")
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

        Raises:
            DeferredInitializationError: the shape is still unknown (first forward not run yet).
            UninitializedParameterError: ``initialize()`` was never called for it.
        """
        if self._data is None:
            if self._request is not None:
                raise self._deferred_error("access the data of")
            raise UninitializedParameterError(
                f"parameter {self.name!r} has not been initialized; call net.initialize() "
                "(or param.initialize()) first")
        data = self._array()
        if device is None:
            return data
        device = as_device(device)
        if device == self.device:
            return data
        with device.activate():
            return device.xp.asarray(to_numpy(data))

    def _array(self):
        """The data as an array (the store hands over an arena slice; its view is made once, here)."""
        if isinstance(self._data, ArenaSlice):
            self._data = self._data.view()
        return self._data

    def set_data(self, value) -> None:
        """Overwrite the parameter's values in place with ``value`` (same shape, cast to its dtype)."""
        if self._data is None:
            self.data()  # raises the right error
        shape = tuple(getattr(value, "shape", np.shape(value)))
        if shape != self._shape:
            raise ShapeError(f"set_data on parameter {self.name!r}: expected shape {self._shape!r}, "
                             f"got {shape!r}")
        data = self._array()
        xp = array_module_of(data)
        if xp is np:
            data[...] = to_numpy(value)
        else:
            with self.device.activate():
                data[...] = xp.asarray(value)

    def initialize(self, init=None, device=None, default_init=None, force_reinit=False, seed=None):
        """Initialize this parameter alone (its path is its name). See ``Block.initialize``."""
        ParameterDict({self.name: self}).initialize(init if init is not None else default_init,
                                                    device, force_reinit, seed)

    def __repr__(self) -> str:
        return f"Parameter {self.name} (shape={self._shape!r}, dtype={self.dtype})"


class ParameterDict:
    """An ordered name → :class:`Parameter` mapping, as ``Block.collect_params()`` returns.

    It also knows each parameter's structural path relative to the block it was collected from:
    that path keys the parameter's random stream.
    """

    def __init__(self, params=None, paths=None, prefix=""):
        self._params: OrderedDict[str, Parameter] = OrderedDict(params or {})
        self._paths: dict[str, str] = dict(paths or {})
        self.prefix = prefix

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
            GpuInitError: a bad initializer, device or seed; nothing is changed then.
        """
        default = create(init) if init is not None else Uniform()
        device = as_device(device)
        seed_value = streams.check_seed(seed) if seed is not None else None
        with materialize_lock, gc_paused():
            unique = list({id(p): (name, p) for name, p in self.items()}.values())
            skipped = [p for _, p in unique if not force_reinit and (p.initialized or p.deferred)]
            todo = [(name, p) for name, p in unique if force_reinit or not (p.initialized or p.deferred)]
            if skipped:
                names = ", ".join(repr(p.name) for p in skipped[:3]) + (", ..." if len(skipped) > 3 else "")
                warnings.warn(f"{len(skipped)} parameter(s) already initialized ({names}); "
                              "left as they are. Pass force_reinit=True to re-initialize them.",
                              stacklevel=3)
            if not todo:
                return
            if seed_value is None:
                seed_value = streams.next_seed()
            paths = [self.path_of(name) for name, _ in todo]
            keys = streams.derive_keys(seed_value, paths)
            requests = []
            for (_, p), path, key in zip(todo, paths, keys):
                initializer, own = p.chosen_initializer(default)
                requests.append((p, InitRequest(initializer, own, device, key, path)))
            for p, _ in requests:
                if not p.shape_known and not p.allow_deferred_init:
                    raise DeferredInitializationError(
                        f"parameter {p.name!r} has unknown shape {p.shape!r} and does not allow "
                        "deferred initialization; give its full shape")
            if not defer and all(p.shape_known for p, _ in requests):
                materialize(requests)
                return
            # Some shape is unknown (or the caller deferred): everything waits for the first
            # forward pass, so that the whole network is allocated and filled as one step.
            for p, r in requests:
                p._data = None
                p._request = r

    def __repr__(self) -> str:
        lines = "\n".join(f"  {p!r}" for p in self.values())
        return f"{self.prefix or 'ParameterDict'} (\n{lines}\n)"
