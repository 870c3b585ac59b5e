"""Blocks: the containers that own parameters, name them, and run deferred initialization.

A :class:`Block` registers the sub-blocks and :class:`~gpuinit.parameter.Parameter` objects
assigned to its attributes. Its first call after ``initialize()`` with parameters still waiting
for their shapes runs a shape-only pass (``gpuinit.meta``) through ``forward``, which fixes every
unknown dimension; the store then allocates and fills all those parameters as one step, and only
then does the real forward run.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections import OrderedDict


from ..backend import is_cupy_array
from ..errors import DeviceError, GpuInitError, PlanError, ShapeError
from ..meta import MetaArray, is_meta
from ..parameter import Parameter, ParameterDict, materialize_lock

# --- names: Gluon 1.x's prefixes (dense0_, dense1_, ...) ------------------------------------

_names = threading.local()
_global_counters: dict[str, int] = {}
_counter_lock = threading.Lock()


def _new_prefix(hint: str) -> str:
    """``hint`` numbered in the current name scope: process-wide outside any ``name_scope``."""
    stack = getattr(_names, "stack", None)
    if stack:
        owner_prefix, counters = stack[-1]
        count = counters.get(hint, 0)
        counters[hint] = count + 1
        return f"{owner_prefix}{hint}{count}_"
    with _counter_lock:
        count = _global_counters.get(hint, 0)
        _global_counters[hint] = count + 1
    return f"{hint}{count}_"


_calls = threading.local()


class Block:
    """Base class of layers and models.

    Subclass it, assign layers and parameters to attributes in ``__init__``, and write
    ``forward``. Use the library's layers and ``gpuinit.nd`` operations in ``forward`` so that the
    shape-only pass (deferred initialization, ``gpuinit.plan``) can follow it.

    Args:
        prefix: the name prefix of the block's parameters (default: class name and a count,
            ``mlp0_``).
        params: unused; kept for Gluon 1.x signatures.

    Example:
        >>> from gpuinit import nn
        >>> class MLP(nn.Block):
        ...     def __init__(self, **kwargs):
        ...         super().__init__(**kwargs)
        ...         self.hidden = nn.Dense(256, activation='relu')
        ...         self.output = nn.Dense(10)
        ...     def forward(self, x):
        ...         return self.output(self.hidden(x))
    """

    def __init__(self, prefix=None, params=None):
        object.__setattr__(self, "_children", OrderedDict())
        object.__setattr__(self, "_reg_params", OrderedDict())
        object.__setattr__(self, "_prefix", prefix if prefix is not None else _new_prefix(self._alias()))
        object.__setattr__(self, "_scope_counters", {})
        object.__setattr__(self, "params", ParameterDict(prefix=self._prefix))

    @classmethod
    def _alias(cls) -> str:
        return cls.__name__.lower()

    @property
    def prefix(self) -> str:
        return self._prefix

    @property
    def name(self) -> str:
        return self._prefix[:-1] if self._prefix.endswith("_") else self._prefix

    @contextlib.contextmanager
    def name_scope(self):
        """Blocks created inside are named under this block's prefix (``mlp0_dense0_``)."""
        stack = getattr(_names, "stack", None)
        if stack is None:
            stack = _names.stack = []
        stack.append((self._prefix, self._scope_counters))
        try:
            yield self
        finally:
            stack.pop()

    def __setattr__(self, name, value):
        if isinstance(value, Block):
            self._children[name] = value
        elif isinstance(value, Parameter):
            if value._owner is None:
                if not value.name.startswith(self._prefix):
                    value.name = self._prefix + value.name
                value._owner = self
            self._reg_params[name] = value
        object.__setattr__(self, name, value)

    def register_child(self, block: "Block", name: str | None = None) -> "Block":
        """Add ``block`` as a child under ``name`` (default: its position)."""
        self._children[name if name is not None else str(len(self._children))] = block
        return block

    # --- parameters ------------------------------------------------------------------------

    def _walk(self, path=""):
        """``(path, parameter)`` for every parameter below this block, depth first."""
        for name, p in self._reg_params.items():
            yield path + name, p
        for full, p in self.params.items():
            if p not in self._reg_params.values():
                yield path + full[len(self._prefix):], p
        for name, child in self._children.items():
            yield from child._walk(f"{path}{name}.")

    def collect_params(self, select: str | None = None) -> ParameterDict:
        """Every parameter of this block and its children, by name (shared ones once).

        Args:
            select: a regular expression; only parameters whose names match are kept.
        """
        params, paths = OrderedDict(), {}
        pattern = re.compile(select) if select else None
        seen = set()
        for path, p in self._walk():
            if id(p) in seen or (pattern and not pattern.match(p.name)):
                continue
            seen.add(id(p))
            params[p.name] = p
            paths[p.name] = path
        return ParameterDict(params, paths, prefix=self._prefix)

    def initialize(self, init=None, device=None, force_reinit=False, seed=None, verbose=False, ctx=None,
                   defer=False):
        """Initialize every parameter: at once where shapes are known, else at the first forward.

        Args:
            init: initializer for parameters without their own (default ``init.Uniform(0.07)``).
            device: where the parameters live (default ``gpuinit.default_device()``); ``ctx`` is
                accepted as Gluon's name for it.
            force_reinit: re-initialize parameters that already are.
            seed: seed of the parameters' streams (default: the next global seed).
            verbose: ignored; kept for Gluon's signature.
            defer: allocate nothing now even where every shape is known (see
                ``ParameterDict.initialize``).
        """
        self.collect_params().initialize(init, device if device is not None else ctx, force_reinit, seed,
                                         defer)

    def hybridize(self, *args, **kwargs) -> None:
        """No-op, so Gluon code that calls it runs unchanged."""

    # --- calling ---------------------------------------------------------------------------

    def forward(self, *args):
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args, **kwargs):
        depth = getattr(_calls, "depth", 0)
        if depth == 0 and not any(is_meta(a) for a in args):
            self._finish_deferred(args, kwargs)
        _calls.depth = depth + 1
        try:
            out = self.forward(*args, **kwargs)
            recorder = getattr(_calls, "recorder", None)
            if recorder is not None:
                recorder.append((self, out))
            return out
        except Exception as exc:
            if not hasattr(exc, "gpuinit_block"):
                try:
                    exc.gpuinit_block = self.name
                except AttributeError:
                    pass
            raise
        finally:
            _calls.depth = depth

    @contextlib.contextmanager
    def record_calls(self):
        """Collect ``(block, output)`` for every block call in this thread, innermost first."""
        calls = []
        previous = getattr(_calls, "recorder", None)
        _calls.recorder = calls
        try:
            yield calls
        finally:
            _calls.recorder = previous

    def named_blocks(self, path=""):
        """``(path, block)`` for this block and every block below it, depth first."""
        yield path, self
        for name, child in self._children.items():
            yield from child.named_blocks(f"{path}.{name}" if path else name)

    def _deferred_params(self):
        return [p for _, p in self._walk() if p.deferred]

    def infer_shape(self, *args, **kwargs):
        """Run the shape-only pass: fill in unknown parameter dimensions; return the output's shape.

        Arrays (or :class:`~gpuinit.meta.MetaArray`) stand for inputs; only their shapes and dtypes
        are used. Allocates no parameter memory. On failure every shape is restored.
        """
        params = list({id(p): p for _, p in self._walk()}.values())
        before = [(p, p._shape) for p in params]
        metas = [MetaArray(a.shape, a.dtype) if hasattr(a, "shape") and hasattr(a, "dtype") else a for a in args]
        try:
            out = self(*metas, **kwargs)  # shape-only inputs: no deferred check, no arithmetic
        except Exception as exc:
            for p, shape in before:
                p._shape = shape
            if isinstance(exc, GpuInitError) and not isinstance(exc, PlanError):
                raise  # shape mismatches and the like already name their layer
            where = getattr(exc, "gpuinit_block", self.name)
            raise PlanError(f"shape inference failed in block {where!r}: {type(exc).__name__}: "
                            f"{exc}") from exc
        return out

    def _finish_deferred(self, args, kwargs) -> None:
        """Infer the deferred shapes from this call's inputs, then materialize them all at once."""
        if not self._deferred_params():
            return
        from ..store import materialize
        with materialize_lock:
            deferred = self._deferred_params()
            if not deferred:
                return  # another thread finished it while we waited
            before = [(p, p._shape) for p in deferred]
            self.infer_shape(*args, **kwargs)
            try:
                materialize([(p, p._request) for p in deferred if p.shape_known])
            except BaseException:
                for p, shape in before:
                    p._shape = shape
                raise

    # --- helpers for layers ----------------------------------------------------------------

    def _fix_shape(self, param: Parameter, shape, what: str) -> None:
        """Fill in ``param``'s unknown dimensions from ``shape``, or check they agree.

        Raises:
            ShapeError: the input implies a shape other than the parameter's; names the layer,
                what was expected and what was given.
        """
        shape = tuple(int(d) for d in shape)
        if param.shape_known or param.initialized:
            if param.shape != shape:
                raise ShapeError(f"layer {self.name!r}: {what}; its parameter {param.name!r} has "
                                 f"shape {param.shape!r} but this input needs {shape!r}")
            return
        try:
            param.shape = shape
        except ShapeError:
            raise ShapeError(f"layer {self.name!r}: {what}; its parameter {param.name!r} has "
                             f"shape {param.shape!r} but this input needs {shape!r}") from None

    def _value(self, param: Parameter | None, x):
        """The parameter's array for an input ``x``: shape-only for shape-only inputs."""
        if param is None:
            return None
        if is_meta(x):
            return MetaArray(param.shape, param.dtype)
        data = param.data()
        if is_cupy_array(data) != is_cupy_array(x):
            raise DeviceError(
                f"layer {self.name!r}: the input is on {'cuda' if is_cupy_array(x) else 'cpu'} but "
                f"parameter {param.name!r} is on {param.device}; create the input there, e.g. "
                f"gpuinit.nd.array(x, device='{param.device}')")
        return data

    # --- display ---------------------------------------------------------------------------

    def _extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        if not self._children:
            return f"{type(self).__name__}({self._extra_repr()})"
        lines = [f"  ({name}): " + repr(child).replace("\n", "\n  ") for name, child in self._children.items()]
        return f"{type(self).__name__}(\n" + "\n".join(lines) + "\n)"


class Sequential(Block):
    """Blocks run one after another.

    Example:
        >>> from gpuinit import nn
        >>> net = nn.Sequential()
        >>> net.add(nn.Dense(256, activation='relu'), nn.Dense(10))
        >>> len(net)
        2
    """

    def add(self, *blocks) -> None:
        """Append blocks, in order (returns None, as Gluon's does)."""
        for block in blocks:
            if not isinstance(block, Block):
                raise GpuInitError(f"Sequential.add takes blocks, got {block!r}")
            self.register_child(block)

    def forward(self, x):
        for block in self._children.values():
            x = block(x)
        return x

    def __getitem__(self, key):
        blocks = list(self._children.values())
        if isinstance(key, slice):
            seq = type(self)(prefix=self._prefix)
            seq.add(*blocks[key])
            return seq
        return blocks[key]

    def __len__(self) -> int:
        return len(self._children)

    def __iter__(self):
        return iter(self._children.values())


HybridBlock = Block
HybridSequential = Sequential
