"""Blocks: the containers that own parameters, name them, and call the lifecycle.

A :class:`Block` registers the sub-blocks and :class:`~gpuinit.parameter.Parameter` objects
assigned to its attributes; a new parameter is named and kept in the block's own ``params`` the way
Gluon 1.x's ``self.params.get`` does it, so ``params=`` at construction shares the layers'
parameters too. Its first call after ``initialize()`` with parameters still waiting
for their shapes hands over to :func:`gpuinit.lifecycle.first_forward`: a shape-only pass
(``gpuinit.meta``) through ``forward`` fixes every unknown dimension, all those parameters are
allocated and filled as one step, the real forward runs, and only then does anything change for
good. Later calls just run ``forward``.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import warnings
from collections import OrderedDict

import numpy as np

from .. import checks, dtypes, lifecycle
from ..backend import is_cupy_array
from ..errors import (ArgumentError, ArgumentTypeError, DeviceError, PlanError, ShapeError,
                      UninitializedParameterError)
from ..meta import MetaArray, is_meta
from ..parameter import Parameter, ParameterDict, inferring

# --- names: Gluon 1.x's prefixes (dense0_, dense1_, ...) ------------------------------------

_names = threading.local()
_global_counters: dict[str, int] = {}
_counter_lock = threading.Lock()


def _global_prefix(hint: str) -> str:
    """``hint`` numbered process-wide: the name of a block made outside any ``name_scope``."""
    with _counter_lock:
        count = _global_counters.get(hint, 0)
        _global_counters[hint] = count + 1
    return f"{hint}{count}_"


def _scope_owner():
    """The block whose ``name_scope`` this thread is in, or None."""
    stack = getattr(_names, "stack", None)
    return stack[-1] if stack else None


_calls = threading.local()


class Block:
    """Base class of layers and models.

    Subclass it, assign layers and parameters to attributes in ``__init__``, and write
    ``forward``. Use the library's layers and ``gpuinit.nd`` operations in ``forward`` so that the
    shape-only pass (deferred initialization, ``gpuinit.plan``) can follow it.

    Args:
        prefix: the name prefix of the block's parameters (default: class name and a count,
            ``mlp0_``; inside another block's ``name_scope``, under that block's prefix).
        params: a ParameterDict to share (another block's ``.params`` or ``.collect_params()``):
            the parameters this block makes under the same names are those, as in Gluon 1.x.

    Attributes:
        params: the block's own parameters (:class:`~gpuinit.parameter.ParameterDict`); its
            children's are in :meth:`collect_params`.

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
        where = type(self).__name__
        if prefix is not None:
            checks.text(prefix, "prefix", where, empty=True)
        if params is not None and not isinstance(params, ParameterDict):
            raise ArgumentTypeError(f"{where}: params must be a ParameterDict (another block's .params or "
                                    f".collect_params()), got {type(params).__name__}")
        owner = _scope_owner()
        # Gluon 1.x's rule: a block's parameters are named by its ParameterDict's prefix; given
        # params=, the dictionary takes the shared one's prefix and finds its parameters there.
        if owner is None:
            prefix = prefix if prefix is not None else _global_prefix(self._alias())
            own = ParameterDict(prefix) if params is None else ParameterDict(params.prefix, params)
        else:
            if prefix is None:
                hint = self._alias()
                count = owner._scope_counters.get(hint, 0)
                owner._scope_counters[hint] = count + 1
                prefix = f"{hint}{count}_"
            own = (ParameterDict(owner.params.prefix + prefix, owner.params._shared) if params is None
                   else ParameterDict(params.prefix, params))
            prefix = owner._prefix + prefix
        object.__setattr__(self, "_children", OrderedDict())
        object.__setattr__(self, "_reg_params", OrderedDict())
        object.__setattr__(self, "_prefix", prefix)
        object.__setattr__(self, "_scope_counters", {})
        object.__setattr__(self, "_deferred_cache", (-1, False))
        object.__setattr__(self, "params", own)
        object.__setattr__(self, "_forward_pre_hooks", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())

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
        stack.append(self)
        try:
            yield self
        finally:
            stack.pop()

    def __setattr__(self, name, value):
        existing = self.__dict__.get(name)
        if isinstance(existing, (Block, Parameter)) and not isinstance(value, type(existing)):
            raise ArgumentTypeError(f"{self._where()}: attribute {name!r} holds a {type(existing).__name__}; "
                                    f"it cannot become a {type(value).__name__}; use another attribute name")
        if isinstance(value, Block):
            self._children[name] = value
            lifecycle.bump()
        elif isinstance(value, Parameter):
            if not value._named:
                value = self._own_parameter(value)
            if existing is not None and existing is not value and \
                    self.params._params.get(existing.name) is existing:
                del self.params._params[existing.name]  # replaced (tied to another block's): no longer ours
            self._reg_params[name] = value
            lifecycle.bump()
        object.__setattr__(self, name, value)

    def _own_parameter(self, param: Parameter) -> Parameter:
        """A new parameter assigned to this block, named and kept in ``self.params`` as Gluon's
        ``self.params.get`` would: where the dictionary (or the one it shares, ``params=``)
        already holds a parameter of that name, that one is returned instead, its unknown
        dimensions filled in from the new one's (the layers' parameters are shared this way).
        """
        from ..parameter import _merge_into
        full = self.params.prefix + param.name
        found = self.params._lookup(full)
        if found is None:
            param.name = full
            param._named = True
            self.params._params[full] = param
            return param
        if found is not param:
            wanted = {"shape": param.shape, "dtype": param.dtype}
            if param.init is not None:
                wanted["init"] = param.init
            _merge_into(found, wanted, f"{self._where()} (sharing parameter {full!r})")
        return self.params._keep(full, found)

    def register_child(self, block: "Block", name: str | None = None) -> "Block":
        """Add ``block`` as a child under ``name`` (default: its position)."""
        if not isinstance(block, Block):
            raise ArgumentTypeError(f"{type(self).__name__} {self.name!r}: register_child takes a Block, got "
                                    f"{block!r}")
        self._children[name if name is not None else str(len(self._children))] = block
        lifecycle.bump()
        return block

    # --- parameters ------------------------------------------------------------------------

    def _walk(self, path=""):
        """``(path, parameter)`` for every parameter below this block, depth first."""
        for name, p in self._reg_params.items():
            yield path + name, p
        prefix = self.params.prefix
        for full, p in self.params.items():
            if not any(p is q for q in self._reg_params.values()):
                yield path + (full[len(prefix):] if full.startswith(prefix) else full), p
        for name, child in self._children.items():
            yield from child._walk(f"{path}{name}.")

    def collect_params(self, select: str | None = None) -> ParameterDict:
        """Every parameter of this block and its children, by name (shared ones once).

        Args:
            select: a regular expression; only parameters whose names match are kept.
        """
        params, paths = OrderedDict(), {}
        pattern = checks.pattern(select, "select", f"{type(self).__name__}.collect_params") if select else None
        self._warn_about_hidden_blocks()
        seen = set()
        for path, p in self._walk():
            if id(p) in seen or (pattern and not pattern.match(p.name)):
                continue
            seen.add(id(p))
            if p.name in params:  # two parameters, one name: Gluon refuses it too
                raise ArgumentError(f"{self._where()}: two different parameters are named {p.name!r} (at "
                                    f"{paths[p.name]!r} and {path!r}); give their blocks distinct prefixes, or "
                                    "share one parameter with params=")
            params[p.name] = p
            paths[p.name] = path
        return ParameterDict(self.params.prefix, params=params, paths=paths)

    def _warn_about_hidden_blocks(self) -> None:
        """Warn, as Gluon does, about blocks kept in a list, tuple or dict attribute: they are not
        registered, so their parameters are neither collected nor initialized."""
        for block_path, block in self.named_blocks():
            registered = {id(c) for c in block._children.values()}
            for name, value in vars(block).items():
                if name == "_children" or name.startswith("__"):
                    continue
                if isinstance(value, dict):
                    items = list(value.values())
                elif isinstance(value, (list, tuple)):
                    items = list(value)
                else:
                    continue
                found, todo = False, items
                while todo and not found:
                    item = todo.pop()
                    found = isinstance(item, Block) and id(item) not in registered
                    if isinstance(item, (list, tuple)):
                        todo.extend(item)
                    elif isinstance(item, dict):
                        todo.extend(item.values())
                if found:
                    warnings.warn(f"{block._where()}: attribute {name!r} is a container holding blocks; blocks "
                                  "in a list, tuple or dict are not registered, so their parameters are not "
                                  "collected or initialized: use an nn.Sequential, or register_child()",
                                  stacklevel=4)

    def initialize(self, init=None, device=None, force_reinit=False, seed=None, verbose=False, ctx=None,
                   defer=False):
        """Initialize every parameter: at once where shapes are known, else at the first forward.

        Args:
            init: initializer for parameters without their own (default ``init.Uniform(0.07)``).
            device: where the parameters live (default ``gpuinit.default_device()``), or a list of
                devices (a copy of every parameter on each, as Gluon's ``ctx=[...]``); ``ctx`` is
                accepted as Gluon's name for it.
            force_reinit: re-initialize parameters that already are.
            seed: seed of the parameters' streams (default: the next global seed).
            verbose: ignored; kept for Gluon's signature.
            defer: allocate nothing now even where every shape is known (see
                ``ParameterDict.initialize``).
        """
        self.collect_params().initialize(init, device if device is not None else ctx, force_reinit, seed,
                                         defer)

    def hybridize(self, active=True, **kwargs) -> None:
        """Accepted, so Gluon code that calls it runs unchanged; passed on to the children."""
        for child in self._children.values():
            child.hybridize(active, **kwargs)

    def cast(self, dtype) -> None:
        """Give every parameter of this block and its children ``dtype``, all or nothing (see
        ``Parameter.cast``)."""
        lifecycle.cast(self.collect_params().values(), dtype)

    def apply(self, fn):
        """Call ``fn(block)`` on every child, depth first, then on this block; return this block."""
        for child in self._children.values():
            child.apply(fn)
        fn(self)
        return self

    # --- calling ---------------------------------------------------------------------------

    def forward(self, *args):
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args, **kwargs):
        if getattr(_calls, "depth", 0) == 0 and not inferring() and not _any_meta(args, kwargs):
            _check_inputs(self, args, kwargs)
            while True:
                if self._has_deferred():
                    return lifecycle.first_forward(self, args, kwargs, self._call_forward)
                with lifecycle.access.using():
                    if not self._has_deferred():  # still none, now that changes are held off
                        return self._call_forward(args, kwargs)
        return self._call_forward(args, kwargs)

    def register_forward_pre_hook(self, hook) -> "HookHandle":
        """Call ``hook(block, args)`` before each forward (not in shape-only passes); returns a
        handle whose ``detach()`` removes it."""
        return HookHandle(self._forward_pre_hooks, hook)

    def register_forward_hook(self, hook) -> "HookHandle":
        """Call ``hook(block, args, output)`` after each forward (not in shape-only passes);
        returns a handle whose ``detach()`` removes it."""
        return HookHandle(self._forward_hooks, hook)

    def _call_forward(self, args, kwargs):
        depth = getattr(_calls, "depth", 0)
        _calls.depth = depth + 1
        hooked = (self._forward_pre_hooks or self._forward_hooks) and not inferring()
        try:
            if hooked:
                for hook in list(self._forward_pre_hooks.values()):
                    hook(self, args)
            out = self.forward(*args, **kwargs)
            if hooked:
                for hook in list(self._forward_hooks.values()):
                    hook(self, args, out)
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

    def deferred_params(self) -> list:
        """The parameters below this block whose initialization waits (shared ones once)."""
        return list({id(p): p for _, p in self._walk() if p.deferred}.values())

    def _has_deferred(self) -> bool:
        generation, answer = self._deferred_cache
        now = lifecycle.generation()
        if generation != now:
            answer = any(p.deferred for _, p in self._walk())
            object.__setattr__(self, "_deferred_cache", (now, answer))
        return answer

    def infer_shape(self, *args, **kwargs):
        """Run the shape-only pass: fill in unknown parameter dimensions; return the output's shape.

        Arrays (or :class:`~gpuinit.meta.MetaArray`) stand for inputs; only their shapes and dtypes
        are used. Allocates no parameter memory. On failure every shape is as it was.

        Raises:
            PlanError: a block's forward cannot run on shape-only arrays; ShapeError: the inputs
                do not fit the network.
        """
        _check_inputs(self, args, kwargs)
        out, _ = lifecycle.infer_shapes(self, args, kwargs, self._call_forward)
        return out

    # --- helpers for layers ----------------------------------------------------------------

    def _where(self) -> str:
        return f"{type(self).__name__} {self.name!r}"

    def _fix_shape(self, param: Parameter, shape, what: str) -> None:
        """Say that this input needs ``param`` to have ``shape``: unknown dimensions are filled in
        during the shape-only pass, known ones checked.

        Raises:
            ShapeError: the input implies a shape other than the parameter's, or a dimension of
                0; names the layer, what was expected and what was given.
        """
        lifecycle.propose_shape(param, shape, self.name, what)

    def _value(self, param: Parameter | None, x):
        """The parameter's array for an input ``x``: shape-only for shape-only inputs."""
        if param is None:
            return None
        if is_meta(x):
            lifecycle.touch(param, self.name)
            return MetaArray(param.shape, param.dtype)
        data = param.data()
        if is_cupy_array(data) != is_cupy_array(x):
            raise DeviceError(
                f"layer {self.name!r}: the input is on {'cuda' if is_cupy_array(x) else 'cpu'} but "
                f"parameter {param.name!r} is on {param.device}; create the input there, e.g. "
                f"gpuinit.nd.array(x, device='{param.device}')")
        return data

    def _input(self, x, *, min_ndim: int = 1, ndim: int | None = None, what: str = "input"):
        """Check an input array: an array, of real numbers, with the rank this layer needs.

        Raises:
            ArgumentTypeError: not an array, or complex (or other non-real) values;
            ShapeError: another rank.
        """
        if not (hasattr(x, "shape") and hasattr(x, "dtype") and hasattr(x, "ndim")):
            raise ArgumentTypeError(f"{self._where()}: the {what} must be an array, got {type(x).__name__}; "
                                    "wrap it with gpuinit.nd.array(...)")
        if not dtypes.is_real(x.dtype):
            raise ArgumentTypeError(f"{self._where()}: the {what} must hold real numbers, got dtype "
                                    f"{x.dtype}; pass float or integer arrays")
        if ndim is not None and x.ndim != ndim:
            raise ShapeError(f"{self._where()}: the {what} must have {ndim} dimensions, got shape "
                             f"{tuple(x.shape)}")
        if x.ndim < min_ndim:
            raise ShapeError(f"{self._where()}: the {what} must have at least {min_ndim} dimension(s), got "
                             f"shape {tuple(x.shape)}")
        return x

    # --- checkpoints (gpuinit.checkpoint) ---------------------------------------------------

    def save_parameters(self, filename, deduplicate=False) -> None:
        """Save every parameter to a safetensors file, keyed by structural path (``h.0.c_attn.weight``).

        The file records gpuinit's version, the stream contract's, the seed and each parameter's
        initializer; it is written atomically (see :mod:`gpuinit.checkpoint`).

        Args:
            filename: the file to write.
            deduplicate: save a shared parameter once, under its first path; by default (as
                Gluon) it is saved under each of its paths, so that a block that holds only one
                of the places loads it.

        Raises:
            DeferredInitializationError, UninitializedParameterError: a parameter has no data yet;
            CheckpointError: the file cannot be written. Nothing is written then.
        """
        from .. import checkpoint
        checks.flag(deduplicate, "deduplicate", f"{type(self).__name__}.save_parameters")
        if deduplicate:
            params = self.collect_params()
            named = [(params.path_of(name), p) for name, p in params.items()]
        else:
            named = list(self._walk())
        checkpoint.save_parameters(named, filename, "paths", f"{type(self).__name__}.save_parameters")

    def load_parameters(self, filename, device=None, allow_missing=False, ignore_extra=False, cast_dtype=False,
                        dtype_source="current", ctx=None) -> None:
        """Load parameters from a safetensors file (``save_parameters``', or torch's, keyed by path).

        A materialization, all or nothing: unknown dimensions come from the file (a deferred
        network needs no forward pass first), known ones must match; the arena is allocated once
        and each tensor read straight into its slot. Parameters never initialized are initialized
        by the load. Arrays taken from ``data()`` before keep the old values.

        Args:
            filename: the file; device (``ctx``): where the parameters go (default: where each was
                initialized for, else the default device).
            allow_missing: leave parameters the file lacks as they are, rather than refuse.
            ignore_extra: skip tensors that are not parameters of this block, rather than refuse.
            cast_dtype: accept stored dtypes other than the parameters'; ``dtype_source``
                ``'current'`` converts the values, ``'saved'`` gives the parameters the file's dtype.

        Raises:
            CheckpointNotFoundError, CheckpointError: no file, not safetensors, truncated, corrupted,
                missing or extra tensors, other dtypes; ShapeError: other shapes. Nothing changes then.
        """
        from .. import checkpoint
        checkpoint.load_block(self, filename, device if device is not None else ctx, allow_missing, ignore_extra,
                              cast_dtype, dtype_source)

    # --- display ---------------------------------------------------------------------------

    def _extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        if not self._children:
            return f"{type(self).__name__}({self._extra_repr()})"
        lines = [f"  ({name}): " + repr(child).replace("\n", "\n  ") for name, child in self._children.items()]
        return f"{type(self).__name__}(\n" + "\n".join(lines) + "\n)"


class HookHandle:
    """What ``register_forward_hook`` returns: ``detach()`` removes the hook."""

    _ids = itertools.count()

    def __init__(self, hooks: OrderedDict, hook):
        if not callable(hook):
            raise ArgumentTypeError(f"a hook must be callable, got {hook!r} ({type(hook).__name__})")
        self._hooks, self._id = hooks, next(self._ids)
        hooks[self._id] = hook

    def detach(self) -> None:
        self._hooks.pop(self._id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.detach()


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
        """Append blocks, in order (returns None, as Gluon's does).

        Raises:
            ArgumentTypeError: something that is not a Block; nothing is added then.
        """
        for block in blocks:
            if not isinstance(block, Block):
                raise ArgumentTypeError(f"Sequential.add takes blocks, got {block!r} "
                                        f"({type(block).__name__}); wrap functions in a Block subclass")
        for block in blocks:
            self.register_child(block)

    def forward(self, x):
        for block in self._children.values():
            x = block(x)
        return x

    def hybridize(self, active=True, **kwargs) -> None:
        """Accepted (see :class:`HybridBlock`); warns, as Gluon does, when every child is hybrid."""
        if type(self) is Sequential and self._children and \
                all(isinstance(c, HybridBlock) for c in self._children.values()):
            warnings.warn(f"all children of Sequential {self.name!r} are HybridBlocks; use HybridSequential "
                          "as Gluon advises (in gpuinit the two run alike)", stacklevel=2)
        super().hybridize(active, **kwargs)

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


class HybridBlock(Block):
    """Gluon's HybridBlock: write ``hybrid_forward(self, F, x, *args, **params)``.

    ``F`` is :mod:`gpuinit.nd`, and every parameter assigned to the block (``self.weight =
    self.params.get('weight', shape=...)``) comes in by its attribute name, as its array; in the
    shape-only pass (deferred initialization, ``gpuinit.plan``) as a shape-only array that ``F``'s
    operations also take. A parameter of ``hybrid_forward`` must have its full shape by then:
    there is no symbolic graph to infer it from, so give it (or build the block from layers such
    as ``nn.Dense``, which infer theirs), or override ``infer_shape(self, x, *args)`` to set the
    unknown dimensions from the inputs (``self.weight.shape = (units, x.shape[1])``): it is called
    before ``hybrid_forward`` while some shape is unknown. ``hybridize()`` is accepted and changes
    nothing: gpuinit runs imperatively.

    Example:
        >>> import numpy as np
        >>> from gpuinit import nn
        >>> class Scale(nn.HybridBlock):
        ...     def __init__(self, **kwargs):
        ...         super().__init__(**kwargs)
        ...         self.scale = self.params.get('scale', shape=(3,), init='ones')
        ...     def hybrid_forward(self, F, x, scale):
        ...         return F.relu(x) * scale
        >>> block = Scale()
        >>> block.initialize(device='cpu')
        >>> block(np.array([-1.0, 2.0, 3.0], np.float32)).tolist()
        [0.0, 2.0, 3.0]
    """

    def hybridize(self, active=True, **kwargs) -> None:
        """Accepted for Gluon code; gpuinit has no graph to compile, so the block runs as before,
        except that, as in Gluon, a hybridized block takes only arrays (and None, and lists of
        them) as inputs."""
        object.__setattr__(self, "_hybridized", checks.flag(active, "active", f"{self._where()}.hybridize"))
        for child in self._children.values():
            child.hybridize(active, **kwargs)

    def forward(self, x, *args):
        from .. import nd
        inputs = (x,) + args
        if not any(True for value in inputs for _ in _arrays(value, "")):
            raise ArgumentError(f"{self._where()}: a HybridBlock needs at least one array among its inputs, got "
                                f"{', '.join(type(v).__name__ for v in inputs)}; pass an array")
        if getattr(self, "_hybridized", False):
            for i, value in enumerate(inputs):
                if not _array_tree(value):
                    raise ArgumentError(f"{self._where()}: a hybridized block takes arrays, None and lists of "
                                        f"them, got {type(value).__name__} {value!r} as input {i}; pass it as an "
                                        "array (nd.array(...)), or call hybridize(False)")
        if type(self).infer_shape is not Block.infer_shape and \
                any(p is not None and not p.shape_known for p in self._reg_params.values()):
            never = [p.name for p in self._reg_params.values()
                     if p is not None and not p.shape_known and not p.requested]
            if never:
                raise UninitializedParameterError(
                    f"{self._where()}: parameter {never[0]!r} was never initialized, so its shape cannot be "
                    "inferred here; call initialize() on the network before its first forward")
            self.infer_shape(x, *args)  # the block says how its inputs decide its parameters' shapes
        params = {name: self._hybrid_value(p, x) for name, p in self._reg_params.items() if p is not None}
        return self.hybrid_forward(nd, x, *args, **params)

    def hybrid_forward(self, F, x, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must define hybrid_forward(self, F, x, ...)")

    def _hybrid_value(self, param: Parameter, x):
        if not param.shape_known and (is_meta(x) or param.deferred):
            raise PlanError(f"{self._where()}: parameter {param.name!r} has shape {param.shape!r}, not fully "
                            "known, and hybrid_forward takes it as an array, so nothing can infer it; give its "
                            "full shape (params.get(..., shape=(units, in_units))), define infer_shape(self, x) "
                            "that sets it from the input (self.weight.shape = (units, x.shape[1])), or build "
                            "the block from layers such as nn.Dense that infer theirs")
        return self._value(param, x)


class HybridSequential(Sequential, HybridBlock):
    """Blocks run one after another; ``hybridize()`` is accepted (see :class:`HybridBlock`)."""

    def forward(self, x):
        return Sequential.forward(self, x)


def _any_meta(args, kwargs) -> bool:
    return any(isinstance(a, MetaArray) for a in args) or any(isinstance(v, MetaArray) for v in kwargs.values())


def _arrays(value, path):
    """``(path, array)`` for every array in ``value`` (through lists, tuples and dicts)."""
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        yield path, value
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from _arrays(v, f"{path}[{i}]")
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _arrays(v, f"{path}[{k!r}]")


def _array_tree(value) -> bool:
    """Whether ``value`` is an array, None, or a list or tuple of such (Gluon's hybrid inputs)."""
    if value is None or (hasattr(value, "shape") and hasattr(value, "dtype") and not isinstance(value, np.generic)):
        return True
    return isinstance(value, (list, tuple)) and all(_array_tree(v) for v in value)


def _check_inputs(block, args, kwargs) -> None:
    """Refuse arrays of non-real numbers (complex, strings, objects) at a network's entrance."""
    named = [(f"input {i}", a) for i, a in enumerate(args)] + [(f"input {k!r}", v) for k, v in kwargs.items()]
    for name, value in named:
        for path, array in _arrays(value, name):
            try:
                real = dtypes.is_real(array.dtype)
            except TypeError:
                real = False
            if not real:
                raise ArgumentTypeError(f"{type(block).__name__} {block.name!r}: {path} has dtype "
                                        f"{array.dtype}; gpuinit networks take real numbers: pass float "
                                        "or integer arrays")
