"""The parameter lifecycle, owned in one place: record, infer shapes, materialize, and undo.

Every change to a parameter goes through here:

- :func:`initialize` records how each parameter will be filled, and materializes at once where
  every shape is known;
- :func:`first_forward` finishes deferred initialization: a shape-only pass fixes the unknown
  dimensions, the parameters are materialized in one arena per device, and the forward runs;
- :func:`infer_shapes` (``gpuinit.plan``, ``Block.infer_shape``) fixes shapes, allocating nothing;
- :func:`shard` makes a rank's slices of the parameters without changing them;
- :func:`set_data` and :func:`set_shape` change one parameter;
- :func:`load` materializes parameters from stored tensors (a checkpoint), filling unknown
  dimensions from them, and :func:`read_slices` reads a rank's slices of stored tensors;
- Gluon's device and dtype changes: copies on each device of a list (``initialize(device=[...])``),
  :func:`reset_devices`, :func:`cast`; gradient buffers made on first use (:func:`make_grads`).

Each runs as one :class:`Step`: the new parameter states are *staged* (visible only to the thread
running the step, so that the first forward's own pass sees its parameters), memory is taken
through the store, and only when the whole step has succeeded are the states committed, together.
If anything fails, or the step is interrupted (``KeyboardInterrupt``, ``MemoryError``), nothing is
committed, the step's memory is given back before the error reaches the caller, and every
parameter is as it was.

Threads: changes take the access lock exclusively, forward passes and shards share it
(:data:`access`), so a forward never sees a network half changed and threads racing the first
forward initialize exactly once.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import threading
import time
import warnings
from typing import NamedTuple

import numpy as np

from . import checks, dtypes, engine, store
from .backend import array_module_of, to_numpy
from .device import as_device, as_devices
from .errors import (ArgumentError, ArgumentTypeError, CheckpointError, DeferredInitializationError,
                     GpuInitError, PlanError, ShapeError, UninitializedParameterError)
from .init import InitDesc, Uniform, create
from .init.base import resolve_fill, run_hook
from .meta import MetaArray
from .parameter import InitRequest, current_step, staging
from .streams import Fill, FillJobs, call_seed
from .streams.keys import derive_key, derive_key_array
from .streams.keys import check_seed


class _Access:
    """Who may touch parameters now: many threads *using* them (forward passes, shards) or one
    thread *changing* them (initialize, a first forward, plan, set_data), never both.

    The changing thread may also use them; a waiting change holds back new users, so a stream of
    forward passes cannot starve an initialization. Changing from inside a use on the same thread
    (``set_data`` in a ``forward``) would deadlock, and is refused with an error instead.

    Known limit: a use is held per thread. A ``forward`` that hands sub-block calls to worker
    threads, while another thread waits to change parameters, deadlocks: the workers queue behind
    the waiting change, which waits for the forward. Call sub-blocks on the forward's own thread.
    """

    def __init__(self):
        self._cond = threading.Condition(threading.Lock())
        self._users = 0
        self._changer = None
        self._depth = 0
        self._waiting = 0
        self._local = threading.local()

    @contextlib.contextmanager
    def using(self):
        local = self._local
        uses = getattr(local, "uses", 0)
        if uses or self._changer == threading.get_ident():
            local.uses = uses + 1
            try:
                yield
            finally:
                local.uses -= 1
            return
        with self._cond:
            while self._changer is not None or self._waiting:
                self._cond.wait()
            self._users += 1
        local.uses = 1
        try:
            yield
        finally:
            local.uses = 0
            with self._cond:
                self._users -= 1
                if not self._users:
                    self._cond.notify_all()

    @contextlib.contextmanager
    def changing(self, what: str):
        me = threading.get_ident()
        if self._changer == me:
            if current_step() is not None:
                # Inside a forward (or an initializer) that a step runs: a change made here would
                # commit on its own, and survive that step's failure.
                raise GpuInitError(f"cannot {what} while this thread is running a forward pass or an "
                                   "initializer: parameters change only between passes; do it before "
                                   "or after the call")
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        if getattr(self._local, "uses", 0):
            raise GpuInitError(f"cannot {what} while this thread is running a forward pass or a shard: "
                               "parameters change only between passes; do it before or after the call")
        with self._cond:
            self._waiting += 1
            try:
                while self._changer is not None or self._users:
                    self._cond.wait()
            finally:
                self._waiting -= 1
            self._changer = me
        try:
            yield
        finally:
            with self._cond:
                self._changer = None
                self._cond.notify_all()


access = _Access()

# Bumped whenever parameter states or block structure change: blocks cache "has deferred
# parameters" against it, so that a forward pass does not walk the network every call. The lock
# keeps two bumps from landing as one (a cache made between them would then survive the second).
_generation = [0]
_generation_lock = threading.Lock()


def generation() -> int:
    return _generation[0]


def bump() -> None:
    with _generation_lock:
        _generation[0] += 1


# The progress callback of the report being run in this thread (or asyncio task): a context
# variable, so one thread's report never sees another thread's materializations.
_progress: contextvars.ContextVar = contextvars.ContextVar("gpuinit_progress", default=None)


@contextlib.contextmanager
def observe(progress):
    """Report the progress of every materialization this thread runs in the block to
    ``progress(nbytes)``."""
    token = _progress.set(progress)
    try:
        yield
    finally:
        _progress.reset(token)


# --- the step: staged changes, owned memory, commit or undo --------------------------------------

class Step:
    """One all-or-nothing change: staged parameter states and the memory taken for them."""

    def __init__(self):
        self.changes: dict = {}    # id(param) -> (param, State), read by parameter.staging
        self.inferring = False     # whether a shape-only pass is running
        self.eager = False         # a first forward whose real pass fixes shapes and materializes
        self.pending = ()          # with eager: the parameters waiting to be materialized
        self.touched: dict = {}    # id(param) -> (param, layer): parameters a shape pass used
        self.arenas: list = []     # (arena, device, nbytes) taken by this step
        self.materialized = None   # (bytes, seconds, devices) of the step's materialization

    def stage(self, param, state) -> None:
        self.changes[id(param)] = (param, state)

    def commit(self) -> None:
        """Make every staged state every thread's, and count the step's arenas as live."""
        if not self.changes and not self.arenas:
            return  # nothing changed: the blocks' cached answers stay valid
        saved = [(p, p._state) for p, _ in self.changes.values()]
        try:
            for param, state in self.changes.values():
                param._commit(state)
            for arena, device, nbytes in self.arenas:
                store.track(arena, device, nbytes)
        except BaseException:
            for param, state in saved:
                param._commit(state)
            raise
        finally:
            bump()
        self.changes, self.arenas = {}, []
        if self.materialized:
            nbytes, seconds, devices = self.materialized
            store.last_materialization.update(bytes=nbytes, seconds=seconds, devices=devices)

    def abandon(self, exc: BaseException) -> None:
        """Drop everything staged and give the step's memory back, while ``exc`` still lives."""
        devices = [device for _, device, _ in self.arenas]
        self.changes, self.arenas, self.touched = {}, [], {}
        store.release_after_failure(exc, devices)


@contextlib.contextmanager
def _step():
    step = Step()
    try:
        yield step
    except BaseException as exc:
        step.abandon(exc)
        raise


# --- initialize ---------------------------------------------------------------------------------

def initialize(entries, init=None, device=None, force_reinit=False, seed=None, defer=False,
               explicit=None) -> None:
    """Record how parameters will be filled; materialize them at once where every shape is known.

    Args:
        entries: ``(path, parameter)`` pairs; the path keys the parameter's stream.
        init, device, force_reinit, seed, defer: as ``ParameterDict.initialize``; ``device`` may
            be a list (a copy of each parameter on every device).
        explicit: an initializer that fills these parameters whatever their roles and own
            initializers (``Parameter.initialize(init=...)``, as in Gluon).

    Raises:
        GpuInitError: a bad argument, an unsuitable initializer, a failed fill; nothing changes.
    """
    where = "initialize()"
    default = create(init) if init is not None else Uniform()
    explicit = create(explicit) if explicit is not None else None
    device, *replicas = as_devices(device)
    seed_value = check_seed(seed) if seed is not None else None
    force_reinit = checks.flag(force_reinit, "force_reinit", where)
    defer = checks.flag(defer, "defer", where)
    with access.changing("initialize parameters"), store.gc_paused():
        first: dict = {}
        for path, p in entries:
            first.setdefault(id(p), (path, p))
        todo, skipped = [], []
        for path, p in first.values():
            if not force_reinit and p._now.request is not None:
                skipped.append(p)
            else:
                todo.append((path, p))
        if skipped:
            names = ", ".join(repr(p.name) for p in skipped[:3]) + (", ..." if len(skipped) > 3 else "")
            warnings.warn(f"{len(skipped)} parameter(s) already initialized ({names}); "
                          "left as they are. Pass force_reinit=True to re-initialize them.",
                          stacklevel=4)
        if not todo:
            return
        with call_seed(seed_value) as seed_value:
            _initialize(todo, default, (device, tuple(replicas)), seed_value, defer, explicit)


def _initialize(todo, default, devices, seed_value, defer, explicit=None) -> None:
    keys = derive_key_array(seed_value, [path for path, _ in todo])
    requests = []
    complete = True
    device, replicas = devices
    new_request = tuple.__new__  # InitRequest's fields in order, without a Python-level __new__ per parameter
    for (path, p), key in zip(todo, zip(keys[:, 0].tolist(), keys[:, 1].tolist())):
        if explicit is not None:
            initializer, own = explicit, True
        else:
            initializer, own = (default, False) if p.init is None else p.chosen_initializer(default)
        if not p.shape_known:
            complete = False
            if not p.allow_deferred_init:
                raise DeferredInitializationError(
                    f"parameter {p.name!r} has unknown shape {p.shape!r} and does not allow deferred "
                    "initialization; give its full shape")
        requests.append((p, new_request(InitRequest, (initializer, own, device, key, path, seed_value, replicas))))
    with _step() as step:
        with staging(step):
            if not defer and complete:
                _materialize(step, requests, keys)
            else:
                # Some shape is unknown (or the caller deferred): everything waits for the first
                # forward pass, so that the whole network is allocated and filled as one step.
                for p, request in requests:
                    step.stage(p, p._deferred_as(request))
        step.commit()


# --- shapes -------------------------------------------------------------------------------------

def to_meta(value):
    """``value`` with every array in it (through lists, tuples and dicts) made shape-only."""
    if isinstance(value, MetaArray):
        return value
    if hasattr(value, "shape") and hasattr(value, "dtype") and not isinstance(value, (np.generic,)):
        return MetaArray(value.shape, value.dtype)
    if isinstance(value, (list, tuple)):
        return type(value)(to_meta(v) for v in value)
    if isinstance(value, dict):
        return {k: to_meta(v) for k, v in value.items()}
    return value


def _shape_pass(step, block, call, args, kwargs):
    """Run ``call`` on shape-only inputs with ``step`` staging the shapes it fixes."""
    step.inferring = True
    try:
        with staging(step):
            return call(to_meta(args), to_meta(kwargs))
    except MemoryError:
        raise  # not the forward's fault: out of memory is reported as such
    except GpuInitError as exc:
        if not isinstance(exc, PlanError) or getattr(exc, "gpuinit_planned", False):
            raise  # shape mismatches and the like already name their layer
        where = getattr(exc, "gpuinit_block", block.name)
        why = getattr(exc, "gpuinit_needs_values", None)
        if why:
            error = PlanError(
                f"shape inference cannot follow block {where!r}: {exc}. Its forward depends on the values "
                "of arrays, and the shape-only pass has shapes only. A first forward with a real input "
                "follows it with values (net.initialize(); net(x) works); to plan or shard without "
                "one, give the layers their input sizes (in_units=, in_channels=) so that every shape "
                "is known, then call gpuinit.plan(net) with no input")
        else:
            error = PlanError(f"shape inference failed in block {where!r}: {exc}")
        error.gpuinit_planned = True
        error.gpuinit_needs_values = why
        raise error from exc
    except Exception as exc:
        where = getattr(exc, "gpuinit_block", block.name)
        raise PlanError(
            f"shape inference failed in block {where!r}: {type(exc).__name__}: {exc}. The shape-only "
            "pass runs each forward with arrays that have a shape but no values; give the layers "
            "inside that block their input sizes (in_units=, in_channels=) so that nothing needs "
            "inferring, or compute with gpuinit.nd operations rather than on values") from exc
    finally:
        step.inferring = False


def propose_shape(param, shape, layer: str, what: str) -> None:
    """A layer's forward says ``param`` must have ``shape`` for this input.

    In a shape-only pass an unknown dimension is filled in (staged); otherwise, and for known
    dimensions, the shape is checked.

    Raises:
        ShapeError: a dimension below 1, or one the parameter already has differently; names
            the layer, the parameter, expected and got.
    """
    shape = tuple(int(d) for d in shape)
    current = param.shape
    if any(d < 1 for d in shape):
        raise ShapeError(f"layer {layer!r}: {what}; that would give parameter {param.name!r} shape "
                         f"{shape!r}, and every dimension must be at least 1: check the input's shape")
    if current and (len(current) != len(shape) or any(c and c != s for c, s in zip(current, shape))):
        raise ShapeError(f"layer {layer!r}: {what}; its parameter {param.name!r} has shape "
                         f"{current!r} but this input needs {shape!r}")
    step = current_step()
    if step is not None and (step.inferring or step.eager) and current != shape:
        step.stage(param, param._with_shape(shape))


def touch(param, layer: str) -> None:
    """A shape-only pass used ``param`` (in layer ``layer``): the first forward checks that every
    parameter it used was given to ``initialize``."""
    step = current_step()
    if step is not None and step.inferring:
        step.touched.setdefault(id(param), (param, layer))


def infer_shapes(block, args, kwargs, call, record=False):
    """Fix every unknown dimension ``block``'s forward determines for these inputs; allocate nothing.

    Returns:
        ``(output, calls)``: the shape-only output, and ``(block, output)`` for every block call
        (innermost first) when ``record``, else None.

    Raises:
        PlanError: a block's forward cannot run on shape-only arrays; names the block.
        ShapeError: the inputs do not fit the network. Shapes are unchanged on any failure.
    """
    with access.changing("infer shapes"), store.gc_paused():
        with _step() as step:
            if record:
                with block.record_calls() as calls:
                    out = _shape_pass(step, block, call, args, kwargs)
            else:
                calls, out = None, _shape_pass(step, block, call, args, kwargs)
            step.commit()
    return out, calls


def set_shape(param, shape) -> None:
    """Fill in ``param``'s unknown dimensions (the ``Parameter.shape`` setter)."""
    running = current_step()
    if running is not None:
        # Set inside a forward that a step runs (a shape pass, the first forward), as Gluon layers
        # do: the change is that step's, committed with it or undone with it.
        _stage_shape(running, param, shape)
        return
    with access.changing("change a parameter's shape"), _step() as step:
        _stage_shape(step, param, shape)
        step.commit()


def _stage_shape(step, param, shape) -> None:
    """Stage ``param``'s new shape in ``step`` (this thread reads the step's states already where
    it is running; a fresh step has staged nothing yet)."""
    state = param._with_shape(shape)
    if state.shape == param.shape:
        return
    if param.initialized:
        raise ShapeError(f"parameter {param.name!r} is initialized with shape {param.shape!r}; "
                         f"its shape cannot change to {shape!r}")
    step.stage(param, state)


# --- the first forward pass -----------------------------------------------------------------------

def first_forward(block, args, kwargs, call):
    """Finish ``block``'s deferred initialization with this call's inputs, then run the call.

    One step: infer the shapes, check that every parameter the pass used was initialized,
    materialize every deferred parameter whose shape is now known (one arena per device), run the
    forward with them, and only then commit. A failure anywhere, the forward's included, leaves
    every parameter as it was and gives the memory back.
    """
    with access.changing("finish deferred initialization"), store.gc_paused():
        deferred = block.deferred_params()
        if not deferred:
            return call(args, kwargs)  # another thread finished it while this one waited
        with _step() as step:
            try:
                _shape_pass(step, block, call, args, kwargs)
            except PlanError:
                # A block the shape-only pass cannot follow (a loop on a norm, an operation with no
                # shape rule): keep the shapes fixed before it, and let the real forward fix the
                # rest and materialize as it goes, as Gluon does; its errors are the real ones.
                step.eager, step.pending = True, deferred
            missing = [(p, layer) for p, layer in step.touched.values() if not p.requested]
            if missing:
                p, layer = missing[0]
                raise UninitializedParameterError(
                    f"parameter {p.name!r} of layer {layer!r} has not been initialized, so the first "
                    f"forward pass of {block.name!r} cannot initialize its network; call "
                    "initialize() on the network after adding every layer (initialize covers the "
                    "parameters present when it is called)")
            with staging(step):
                ready = [(p, p.request) for p in deferred if p.shape_known]
                _materialize(step, ready)
                out = call(args, kwargs)
                if step.eager:  # shapes the real pass fixed without reading the parameter
                    _materialize(step, [(p, p.request) for p in deferred if p.shape_known and not p.initialized])
            step.commit()
        return out


# --- materialization ---------------------------------------------------------------------------

class Batch:
    """Parameters materialized together, as columns: each one, how it is filled, which elements of
    it are made (all of them, or a shard's). Built by :func:`batch_for`.

    Columns rather than an object per parameter: a model of thousands of small parameters pays
    microseconds per parameter for its bookkeeping.
    """

    __slots__ = ("params", "requests", "shapes", "dtypes", "fills", "sizes", "starts", "keys")

    def __init__(self, params, requests, shapes, dtypes, fills, keys=None):
        self.params, self.requests, self.shapes, self.dtypes, self.fills = params, requests, shapes, dtypes, fills
        self.sizes = np.fromiter((math.prod(s) for s in shapes), np.int64, len(shapes))  # elements made
        self.starts = np.zeros(len(shapes), np.int64)  # the first of each parameter's flat elements made
        # (n, 2) uint64: the streams' keys, as derive_keys gives them (made from the requests if not)
        self.keys = keys if keys is not None else np.array([r.key for r in requests], np.uint64).reshape(-1, 2)

    def __len__(self) -> int:
        return len(self.params)

    def nbytes(self) -> np.ndarray:
        return self.sizes * np.fromiter((d.itemsize for d in self.dtypes), np.int64, len(self.dtypes))

    def jobs(self, indices, offsets) -> FillJobs:
        """The fill jobs of the declaratively filled parameters among ``indices``, placed at
        ``offsets`` in their arena."""
        take = [(i, o) for i, o in zip(indices, offsets) if type(self.fills[i]) is Fill]
        idx = [i for i, _ in take]
        return FillJobs([o for _, o in take], [self.dtypes[i] for i in idx], self.sizes[idx].tolist(),
                        self.keys[idx], [self.fills[i] for i in idx], self.starts[idx].tolist(), [0] * len(idx))


def batch_for(entries, keys=None) -> Batch:
    """Ask each initializer how it fills its parameter, and check the answer; allocate nothing.

    An initializer whose fills depend only on the kind of parameter (``pure_fills``: its role, own
    flag and dtype, and for some its shape) is asked once per kind in the batch, and its answer
    checked once: for a model of many small parameters this is most of the per-parameter work.

    Args:
        entries: ``(param, request)`` pairs, shapes complete.
        keys: the requests' keys as an ``(n, 2)`` uint64 array, where the caller has them so.
    """
    params, requests, shapes, dtypes, fills = [], [], [], [], []
    known: dict = {}
    depends: dict = {}  # id(initializer) -> what its fills depend on (Initializer.pure_fills)
    for param, request in entries:
        shape = param._now.shape
        dtype = param.dtype
        initializer = request.initializer
        on = depends.get(id(initializer), False)
        if on is False:
            on = depends[id(initializer)] = type(initializer).__dict__.get("pure_fills")
        kind = (None if on is None else (id(initializer), param.role, request.own, dtype.num) if on == "role"
                else (id(initializer), param.role, request.own, dtype.num, shape))
        how = known.get(kind) if kind is not None else None
        if how is None:
            how = _fill_of(param, request, shape)
            if type(how) is Fill and kind is not None:
                known[kind] = how
        params.append(param)
        requests.append(request)
        shapes.append(shape)
        dtypes.append(dtype)
        fills.append(how)
    return Batch(params, requests, shapes, dtypes, fills, keys)


def _fill_of(param, request, shape):
    """The initializer's answer for one parameter, checked; its errors name the parameter."""
    desc = InitDesc(param.name, param.role, request.path, shape, param.dtype, request.own)
    return resolve_fill(request.initializer, desc)


def _fill(step, batch, progress=None, shards=False) -> list:
    """Lay the batch out, take one arena per device (owned by ``step``) and fill it.

    Returns:
        A list, in the batch's order: an :class:`~gpuinit.store.ArenaSlice` per parameter, or with
        ``shards`` its made elements as a flat array (a custom initializer then runs on a whole
        temporary copy of its parameter, one at a time).
    """
    out = [None] * len(batch)
    placed = store.place([r.device for r in batch.requests], batch.nbytes())
    for device, (indices, offsets, size) in placed.items():
        arena = store.allocate(device, size)
        step.arenas.append((arena, device, size))
        indices, offsets = indices.tolist(), offsets.tolist()
        engine.run(device, arena, batch.jobs(indices, offsets), progress)
        with device.activate():
            for i, offset in zip(indices, offsets):
                dtype, how = batch.dtypes[i], batch.fills[i]
                if shards:
                    view = out[i] = store.flat_view(arena, offset, int(batch.sizes[i]), dtype)
                    if type(how) is not Fill and view.size:
                        whole = device.xp.empty(batch.shapes[i], dtype)
                        run_hook(how, whole, batch.requests[i].key, batch.params[i].name)
                        start = int(batch.starts[i])
                        view[...] = whole.reshape(-1)[start:start + view.size]
                        whole = None
                else:
                    data = out[i] = store.ArenaSlice(arena, offset, batch.shapes[i], dtype)
                    if type(how) is not Fill:
                        run_hook(how, data.array(), batch.requests[i].key, batch.params[i].name)
                if progress and type(how) is not Fill:
                    progress(int(batch.sizes[i]) * dtype.itemsize)
            if device.is_gpu:
                device.xp.cuda.get_current_stream().synchronize()
    return out


def _materialize(step, entries, keys=None) -> None:
    """Allocate and fill ``entries`` (``(param, request)``, complete shapes) and stage them as
    initialized in ``step`` (``keys``: their keys as an array, where the caller has them)."""
    if not entries:
        return
    started = time.perf_counter()
    batch = batch_for(entries, keys)
    data = _fill(step, batch, _progress.get())
    copies = _replicate(step, batch.requests, batch.shapes, batch.dtypes, data)
    for param, request, shape, made, more in zip(batch.params, batch.requests, batch.shapes, data, copies):
        step.stage(param, param._initialized_as(request, made, shape, more))
    step.materialized = (sum(n for _, _, n in step.arenas), time.perf_counter() - started,
                         [str(d) for _, d, _ in step.arenas])


def _replicate(step, requests, shapes, dtypes_, data) -> list:
    """The copies of replicated parameters (``request.replicas``): one arena per replica device,
    owned by ``step``, holding the same values as the first device's data.

    Returns:
        A list parallel to ``requests``: a tuple of ArenaSlices (one per replica) each.
    """
    out = [()] * len(requests)
    wanted = [(i, d) for i, r in enumerate(requests) for d in r.replicas]
    if not wanted:
        return out
    nbytes = np.array([math.prod(shapes[i]) * dtypes_[i].itemsize for i, _ in wanted], np.int64)
    placed = store.place([d for _, d in wanted], nbytes)
    made: dict = {}
    for device, (indices, offsets, size) in placed.items():
        arena = store.allocate(device, size)
        step.arenas.append((arena, device, size))
        with device.activate():
            for k, offset in zip(indices.tolist(), offsets.tolist()):
                i, _ = wanted[k]
                copy = store.ArenaSlice(arena, offset, shapes[i], dtypes_[i])
                source = data[i].array() if isinstance(data[i], store.ArenaSlice) else data[i]
                # through the host where the devices differ in kind (a GPU primary, a host replica)
                copy.array()[...] = to_numpy(source) if not device.is_gpu else device.xp.asarray(to_numpy(source))
                made[k] = copy
    for k, (i, _) in enumerate(wanted):
        out[i] = out[i] + (made[k],)
    return out


# --- gradients, devices -------------------------------------------------------------------------

def make_grads(param):
    """Give ``param`` zero gradient buffers, one per device it lives on, unless it has them.

    The buffers are taken from the store (one arena per device, counted like the parameters') in
    one step: threads asking at once get the same buffers.

    Returns:
        The parameter's state holding them, as this step left it (a later change by another
        thread cannot take them from the caller).
    """
    with access.changing("make a gradient buffer"), store.gc_paused():
        state = param._now
        if state.grads or state.data is None:
            return state
        with _step() as step:
            devices = state.request.devices
            nbytes = np.full(len(devices), param.nbytes, np.int64)
            grads = [None] * len(devices)
            for device, (indices, offsets, size) in store.place(list(devices), nbytes).items():
                arena = store.allocate(device, size)
                step.arenas.append((arena, device, size))
                with device.activate():
                    for i, offset in zip(indices.tolist(), offsets.tolist()):
                        grads[i] = store.ArenaSlice(arena, offset, state.shape, param.dtype).array()
                        grads[i][...] = 0
            made = param._with_grads(grads)
            step.stage(param, made)
            step.commit()
        return made


def drop_grads(param) -> None:
    """Forget ``param``'s gradient buffers (``grad_req='null'``); their memory goes with them."""
    with access.changing("drop gradient buffers"), _step() as step:
        if param._now.grads:
            step.stage(param, param._with_grads(()))
        step.commit()


def zero_grads(params) -> None:
    """Set every gradient buffer of ``params`` made so far to zero."""
    with access.changing("zero gradients"):
        for p in params:
            for g in p._now.grads:
                g[...] = 0


def reset_devices(params, device) -> None:
    """Move ``params`` to ``device`` (one or a list): their data is copied into new arenas there,
    or, while deferred, the devices they will be made on change. One step, all or nothing.

    Raises:
        UninitializedParameterError: a parameter ``initialize()`` was never called for.
    """
    first, *rest = as_devices(device)
    with access.changing("move parameters"), store.gc_paused():
        for p in params:
            if p._now.request is None:
                raise UninitializedParameterError(
                    f"cannot move parameter {p.name!r} to {first!r}: it has not been initialized; call "
                    "initialize(device=...) to choose its device")
        with _step() as step:
            with staging(step):
                moving = []
                for p in params:
                    state = p._now
                    request = state.request._replace(device=first, replicas=tuple(rest))
                    if state.data is None:
                        step.stage(p, p._deferred_as(request))
                    else:
                        moving.append((p, request, state))
                if moving:
                    _move(step, moving)
            step.commit()


def cast(params, dtype) -> None:
    """Give ``params`` the float dtype ``dtype`` (Gluon's ``cast``): their data is converted into
    new arenas on the same devices; deferred ones will be made in it. One step, all or nothing.

    Raises:
        ArgumentError: not a float dtype gpuinit parameters take.
    """
    dtype = dtypes.float_dtype(dtype, "cast")
    with access.changing("cast parameters"), store.gc_paused():
        params = list({id(p): p for p in params}.values())
        with _step() as step:
            with staging(step):
                moving = [(p, p._now.request, p._now) for p in params
                          if p._now.data is not None and p.dtype != dtype]
                if moving:
                    _move(step, moving, dtype)
            step.commit()
        for p in params:  # after the commit, which cannot fail half way; nothing reads until we return
            p.dtype = dtype


def _move(step, moving, dtype=None) -> None:
    """Copy each ``(param, new_request, state)``'s data into arenas on the new request's devices
    (converted to ``dtype`` if given)."""
    requests = [r for _, r, _ in moving]
    shapes = [state.shape for _, _, state in moving]
    dtypes_ = [dtype or p.dtype for p, _, _ in moving]
    nbytes = np.array([math.prod(sh) * dt.itemsize for sh, dt in zip(shapes, dtypes_)], np.int64)
    placed = store.place([r.device for r in requests], nbytes)
    firsts = [None] * len(moving)
    for device, (indices, offsets, size) in placed.items():
        arena = store.allocate(device, size)
        step.arenas.append((arena, device, size))
        with device.activate():
            for i, offset in zip(indices.tolist(), offsets.tolist()):
                p, _, state = moving[i]
                old = state.data.array() if isinstance(state.data, store.ArenaSlice) else state.data
                made = firsts[i] = store.ArenaSlice(arena, offset, shapes[i], dtypes_[i])
                host = to_numpy(old)
                with np.errstate(over="ignore"):  # as Gluon's astype: what float16 cannot hold becomes inf
                    if device.is_gpu:  # converted on the host (bfloat16's rounding rule), then copied
                        converted = np.empty(shapes[i], dtypes_[i])
                        dtypes.assign(converted, host)
                        made.array()[...] = device.xp.asarray(converted)
                    else:
                        dtypes.assign(made.array(), host)
    copies = _replicate(step, requests, shapes, dtypes_, firsts)
    for (p, request, state), made, more in zip(moving, firsts, copies):
        step.stage(p, p._initialized_as(request, made, state.shape, more))


def materialize_in_step(step, param) -> None:
    """Materialize ``param`` (deferred, its shape now known) inside ``step``, a first forward that
    follows a data-dependent block with real values, with every other waiting parameter whose
    shape is known by now: one more arena, undone with the step."""
    ready = {id(param): (param, param._now.request)}
    for p in getattr(step, "pending", ()):
        if p.deferred and p.shape_known:
            ready.setdefault(id(p), (p, p._now.request))
    _materialize(step, list(ready.values()))


# --- shards -------------------------------------------------------------------------------------

def shard(params, ranges) -> dict:
    """The slices ``ranges(shape) -> (start, stop)`` of each parameter's flat elements, as new arrays.

    A parameter with data gives a copy of that slice of its data (what it holds: a load, a cast or
    ``set_data`` may have replaced its initial values); one without is generated from its request
    alone. The parameters are not changed. See :func:`gpuinit.shard`.
    """
    with access.using(), store.gc_paused():
        entries, held = [], {}
        for p in {id(p): p for p in params}.values():
            if p.initialized:
                start, stop = ranges(p.shape)
                held[p.request.path] = p.data().reshape(-1)[start:stop].copy()
                continue
            if not p.requested:
                raise UninitializedParameterError(
                    f"parameter {p.name!r} has no initializer yet: call net.initialize(...) first "
                    "(defer=True records it without allocating)")
            if not p.shape_known:
                raise DeferredInitializationError(
                    f"parameter {p.name!r} has shape {p.shape!r}, not fully known: run "
                    "gpuinit.plan(net, example_input) first, which infers every shape and allocates nothing")
            entries.append((p, p.request))
        out = {}
        if entries:
            batch = batch_for(entries)
            bounds = np.array([ranges(shape) for shape in batch.shapes], np.int64).reshape(-1, 2)
            batch.starts, batch.sizes = bounds[:, 0].copy(), bounds[:, 1] - bounds[:, 0]
            with _step() as step:
                data = _fill(step, batch, shards=True)
                out = {request.path: made for request, made in zip(batch.requests, data)}
                step.commit()
        out.update(held)
    return out


# --- loading stored tensors ---------------------------------------------------------------------

class Stored(NamedTuple):
    """A stored tensor to load into a parameter: its shape and dtype as stored; the path and
    seed that key the parameter's stream where it was never initialized."""

    param: object
    path: str
    shape: tuple
    dtype: np.dtype
    seed: int | None = None


def load(entries, read, device=None, cast_dtype=False, dtype_source="current", where="load") -> None:
    """Materialize parameters from stored tensors (a checkpoint), as one step.

    Each parameter takes its stored tensor's shape (its unknown dimensions filled in, its known
    ones checked) and values, in one arena per device allocated once, each tensor read straight
    into its slot. Deferred parameters become initialized; initialized ones get new slots (arrays
    taken from ``data()`` before keep the old values); parameters never initialized get the
    request ``initialize()`` would give them, keyed by their :class:`Stored` path and seed (seed 0
    where none is known). All or nothing: if any check or
    read fails, no parameter changes and the memory is given back.

    Args:
        entries: a :class:`Stored` for each parameter to load (each parameter once).
        read: ``read(i, dest, dtype)`` fills ``dest``, the slot of entry ``i`` as a 1-D ``uint8``
            array (NumPy or CuPy), with the stored values as ``dtype``.
        device: where the parameters go; None: where each was initialized for (the default
            device for one never initialized).
        cast_dtype, dtype_source: Gluon's: a stored dtype other than the parameter's is refused
            unless ``cast_dtype``; then ``"current"`` converts the values to the parameter's dtype,
            ``"saved"`` gives the parameter the stored dtype.
        where: what is loaded, for messages (``"loading 'net.safetensors'"``).

    Raises:
        ShapeError: a stored shape disagrees with a parameter's known dimensions;
        CheckpointError: a dtype mismatch, a conversion that overflows, a failed read;
        OutOfMemoryError: the parameters do not fit. Nothing changes on any failure.
    """
    target = as_device(device) if device is not None else None
    entries = list(entries)
    if not entries:
        return
    with access.changing("load parameters"), store.gc_paused():
        with _step() as step:
            todo = []
            for param, path, shape, stored, seed in entries:
                shape = loaded_shape(param, path, shape, where)
                dtype = loaded_dtype(param, path, stored, cast_dtype, dtype_source, where)
                request = param.request
                here = target if target is not None else request.device if request is not None else as_device(None)
                if request is None:
                    initializer, own = param.chosen_initializer(Uniform())
                    key = derive_key(seed if seed is not None else 0, path)
                    request = InitRequest(initializer, own, here, key, path, seed=seed)
                elif getattr(request, "replicas", ()):
                    raise CheckpointError(f"{where}: parameter {path!r} ({param.name}) has copies on "
                                          f"{len(request.devices)} devices ({', '.join(map(str, request.devices))}); "
                                          "loading into copies is not supported yet: first "
                                          f"net.collect_params().reset_ctx({request.device!r}), then load, then "
                                          "reset_ctx(the list of devices) again")
                elif request.device != here:
                    request = request._replace(device=here)
                todo.append((param, request, shape, dtype))
            started = time.perf_counter()
            nbytes = [math.prod(shape) * dtype.itemsize for _, _, shape, dtype in todo]
            places = _read_into_arenas(step, [r.device for _, r, _, _ in todo], nbytes,
                                       lambda i, dest: read(i, dest, todo[i][3]))
            for (param, request, shape, dtype), (arena, offset) in zip(todo, places):
                step.stage(param, param._initialized_as(request, store.ArenaSlice(arena, offset, shape, dtype), shape))
            places = arena = None  # the step owns the arenas now: a failure below must free them
            step.materialized = (sum(n for _, _, n in step.arenas), time.perf_counter() - started,
                                 [str(d) for _, d, _ in step.arenas])
            retyped = [(param, param.dtype, dtype) for param, _, _, dtype in todo if dtype != param.dtype]
            try:
                for param, _, dtype in retyped:
                    param.dtype = dtype
                step.commit()
            except BaseException:
                for param, dtype, _ in retyped:
                    param.dtype = dtype
                raise


def loaded_shape(param, path, stored, where) -> tuple:
    """The stored shape, checked against ``param``'s known dimensions."""
    stored = tuple(int(d) for d in stored)
    current = param.shape
    fix = ("the file was saved from a network of another configuration: build this one with the "
           "file's sizes, or leave those dimensions unknown (0) to take them from the file")
    if not stored or 0 in stored:
        raise ShapeError(f"{where}: parameter {path!r} ({param.name}) cannot take the stored shape "
                         f"{stored!r}: a parameter needs at least one dimension and none of size 0")
    if current and (len(current) != len(stored) or any(c and c != s for c, s in zip(current, stored))):
        raise ShapeError(f"{where}: parameter {path!r} ({param.name}) has shape {current!r}, the "
                         f"stored tensor has shape {stored!r}; {fix}")
    return stored


def loaded_dtype(param, path, stored, cast_dtype, dtype_source, where) -> np.dtype:
    """The dtype ``param`` will have once loaded from a tensor stored as ``stored``."""
    if stored == param.dtype:
        return stored
    if not cast_dtype:
        raise CheckpointError(f"{where}: parameter {path!r} ({param.name}) has dtype {param.dtype}, the "
                              f"stored tensor has dtype {stored}; pass cast_dtype=True to convert it "
                              "(dtype_source='current' keeps the parameter's dtype, 'saved' takes the file's)")
    if dtype_source == "current":
        return param.dtype
    if not dtypes.is_float(stored):
        raise CheckpointError(f"{where}: parameter {path!r} ({param.name}) cannot take the stored dtype "
                              f"{stored} (dtype_source='saved'): parameters are float16, bfloat16, float32 "
                              "or float64; pass dtype_source='current' to convert the values instead")
    return stored


def _read_into_arenas(step, devices, nbytes, read) -> list:
    """Take one arena per device (owned by ``step``) and have ``read(i, dest)`` fill each block.

    Returns:
        ``(arena, offset)`` of each block, in order.
    """
    out = [None] * len(nbytes)
    progress = _progress.get()
    for device, (indices, offsets, size) in store.place(devices, nbytes).items():
        arena = store.allocate(device, size, populate=True)  # read front to back by this thread
        step.arenas.append((arena, device, size))
        with device.activate():
            for i, offset in zip(indices.tolist(), offsets.tolist()):
                read(i, arena[offset:offset + nbytes[i]])
                out[i] = (arena, offset)
                if progress:
                    progress(nbytes[i])
            if device.is_gpu:
                device.xp.cuda.get_current_stream().synchronize()
    return out


def read_slices(devices, counts, dtypes_, read) -> list:
    """New 1-D arrays of ``counts[i]`` elements of ``dtypes_[i]`` on ``devices[i]``, one arena per
    device, each filled by ``read(i, dest)`` (``dest``: its bytes, 1-D ``uint8``): a rank's slices
    of stored tensors. Parameters are not changed; the memory is given back on failure."""
    nbytes = [int(c) * d.itemsize for c, d in zip(counts, dtypes_)]
    with access.using(), store.gc_paused():
        with _step() as step:
            places = _read_into_arenas(step, devices, nbytes, read)
            out = [store.flat_view(arena, offset, int(c), d) for (arena, offset), c, d in zip(places, counts, dtypes_)]
            places = None
            step.commit()
    return out


# --- set_data -----------------------------------------------------------------------------------

def set_data(param, value) -> None:
    """Overwrite ``param``'s values with ``value``, converted completely before anything is written."""
    with access.changing("set a parameter's data"):
        targets = param.list_data()  # raises the deferred/uninitialized errors
        converted = _converted(param, value, targets[0])
        for target in targets:  # same dtype and shape: plain copies, which cannot fail half way
            target[...] = converted if array_module_of(target) is array_module_of(converted) \
                else array_module_of(target).asarray(to_numpy(converted))


def _converted(param, value, target):
    where = f"set_data on parameter {param.name!r}"
    xp = array_module_of(target)
    try:
        src = xp.asarray(value) if xp is not np else np.asarray(to_numpy(value))
    except (TypeError, ValueError) as exc:
        raise ArgumentTypeError(f"{where}: cannot read {type(value).__name__} as an array of numbers "
                                f"({exc}); pass a NumPy or CuPy array of shape {param.shape!r}") from None
    if not dtypes.is_real(src.dtype):
        raise ArgumentTypeError(f"{where}: values must be real numbers, got dtype {src.dtype}; pass "
                                f"a float or integer array of shape {param.shape!r}")
    if tuple(src.shape) != param.shape:
        raise ShapeError(f"{where}: expected shape {param.shape!r}, got {tuple(src.shape)!r}")
    out = xp.empty(param.shape, param.dtype)
    with np.errstate(over="ignore", invalid="ignore"):
        dtypes.assign(out, src)
    if src.dtype.kind != "b":
        overflow = ~xp.isfinite(out)
        if src.dtype.kind not in "iu":
            overflow &= xp.isfinite(src)  # a NaN or inf given is kept: only new ones are refused
        if bool(overflow.any()):
            raise ArgumentError(f"{where}: some values do not fit {param.dtype} (they would become "
                                "infinite); scale them, or give the parameter a wider dtype")
    return out
