"""The parameter store (gpuinit.store): layout, fit checks, aligned arenas, the live-bytes
account, and giving a failed step's memory back."""

import gc
import tracemalloc
import weakref

import numpy as np
import pytest

import gpuinit
from gpuinit import lifecycle, nn, store
from gpuinit.device import Device
from gpuinit.errors import OutOfMemoryError

CPU = gpuinit.cpu()


@pytest.fixture
def no_cyclic_gc():
    """Collect now, then keep the cyclic collector off: an earlier test's network freed by it
    midway would change the live bytes under the test."""
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    yield
    if enabled:
        gc.enable()


def test_align_rounds_up_to_the_alignment():
    assert store.ALIGNMENT == 256
    assert [store.align(n) for n in (0, 1, 255, 256, 257, 1000)] == [0, 256, 256, 256, 512, 1024]


def test_format_bytes():
    assert store.format_bytes(None) == "unknown"
    assert store.format_bytes(512) == "512 B"
    assert store.format_bytes(1536) == "1.50 KiB"
    assert store.format_bytes(3 * 2**30) == "3.00 GiB"
    assert store.format_bytes(2**50) == "1024.00 TiB"


def test_layout_puts_each_block_at_an_aligned_offset_in_order():
    offsets, size = store.layout([10, 0, 256, 300, 4])
    assert size == 256 + 0 + 256 + 512 + 256
    assert offsets.tolist() == [0, 256, 256, 512, 1024]
    assert store.layout([])[1] == 0


def deferred_mlp(in_units=20, hidden=256):
    net = nn.Sequential()
    net.add(nn.Dense(hidden, activation="relu", in_units=in_units), nn.Dense(10, in_units=hidden))
    net.initialize(device="cpu", seed=0, defer=True)
    return net


def batch_of(net):
    return lifecycle.batch_for([(p, p.request) for p in net.collect_params().values()])


def test_place_groups_by_device_and_sizes_the_arena_as_the_plan_does():
    net = deferred_mlp()
    batch = batch_of(net)
    placed = store.place([r.device for r in batch.requests], batch.nbytes())
    assert list(placed) == [CPU]
    indices, offsets, size = placed[CPU]
    assert indices.tolist() == list(range(len(batch)))
    assert size == gpuinit.plan(net, (2, 20)).total_bytes
    arena = store.allocate(CPU, size)
    for i, offset in zip(indices.tolist(), offsets.tolist()):  # every view lies inside the arena, as long as its parameter
        param = batch.params[i]
        view = store.flat_view(arena, offset, param.size, param.dtype)
        assert view.size == param.size and view.dtype == param.dtype
        assert offset % store.ALIGNMENT == 0 and offset + param.nbytes <= arena.nbytes


def test_place_keeps_each_devices_blocks_apart():
    """Blocks of two devices (two CPU Device objects that compare equal count as one device)."""
    other = gpuinit.device.Device("cpu")
    placed = store.place([CPU, other, CPU], [100, 200, 300])
    assert list(placed) == [CPU] and placed[CPU][0].tolist() == [0, 1, 2]
    assert placed[CPU][1].tolist() == [0, 256, 512] and placed[CPU][2] == 256 + 256 + 512


def test_what_does_not_fit_is_refused_before_anything_is_allocated(no_cyclic_gc):
    free, _ = CPU.memory_info()
    if free is None:
        pytest.skip("this host does not report its free memory")
    store.check_fits(CPU, 1)
    with pytest.raises(OutOfMemoryError, match="short. Nothing was allocated"):
        store.check_fits(CPU, 4 * free)
    net = deferred_mlp(in_units=1 << 20, hidden=1 << 20)  # 4 TiB of weights, recorded only
    live = store.live_bytes()
    tracemalloc.start()
    try:
        with pytest.raises(OutOfMemoryError, match="on cpu"):
            batch = batch_of(net)
            store.place([r.device for r in batch.requests], batch.nbytes())
        assert tracemalloc.get_traced_memory()[1] < 1 << 20
    finally:
        tracemalloc.stop()
    assert store.live_bytes() == live


@pytest.mark.parametrize("nbytes", [0, 1, 255, 256, 1000, 12345])
def test_allocate_gives_one_aligned_writable_arena(nbytes):
    arena = store.allocate(CPU, nbytes)
    assert arena.dtype == np.uint8 and arena.ndim == 1 and arena.size == max(nbytes, 1)
    assert arena.ctypes.data % store.ALIGNMENT == 0
    assert arena.flags.c_contiguous and arena.flags.writeable
    arena[...] = 7  # the whole arena is ours to write
    assert int(arena.sum()) == 7 * arena.size


def test_an_allocation_the_host_cannot_give_is_an_out_of_memory_error():
    with pytest.raises(OutOfMemoryError, match="nothing was initialized") as err:
        store.allocate(CPU, 1 << 62)
    assert isinstance(err.value, MemoryError)


def test_live_bytes_count_an_arena_until_its_last_view_is_gone(no_cyclic_gc):
    before, before_cpu = store.live_bytes(), store.live_bytes(CPU)
    other = store.live_bytes(Device("cuda", 0))
    arena = store.allocate(CPU, 1000)
    store.track(arena, CPU, 1000)
    assert store.live_bytes() == before + 1000 and store.live_bytes(CPU) == before_cpu + 1000
    assert store.live_bytes(Device("cuda", 0)) == other  # counted on its own device only
    view = arena[256:512].view(np.float32)
    del arena
    assert store.live_bytes() == before + 1000  # a view keeps the memory alive
    del view
    assert store.live_bytes() == before  # by reference counting: no collection needed


def test_a_network_arena_is_counted_while_the_network_lives(no_cyclic_gc):
    before = store.live_bytes()
    net = nn.Sequential()
    net.add(nn.Dense(64, in_units=20), nn.Dense(10, in_units=64))
    net.initialize(device="cpu", seed=0)
    assert store.live_bytes() - before == store.last_materialization["bytes"] == \
        gpuinit.plan(net, (1, 20)).total_bytes
    del net
    assert store.live_bytes() == before


def test_arena_slices_are_views_of_their_place_made_once():
    arena = store.allocate(CPU, 1024)
    arena[...] = 0
    piece = store.ArenaSlice(arena, 256, (3, 4), np.dtype(np.float32))
    a = piece.array()
    assert a.shape == (3, 4) and a.dtype == np.float32 and piece.array() is a
    a[...] = 1.0
    assert np.array_equal(arena[256:304].view(np.float32), np.ones(12, np.float32))
    assert not arena[:256].any() and not arena[304:].any()
    assert piece.view() is not a and np.shares_memory(piece.view(), a)


def failing_step(levels=1):
    """An exception whose traceback holds a big array in a finished frame, chained ``levels``
    deep (``raise ... from``), as a failed hook's error is; returns ``(exception, weakref)``."""
    refs = []

    def holds():
        big = np.ones(1 << 20)
        refs.append(weakref.ref(big))
        raise RuntimeError("the hook failed")

    def chain(n):
        if n == 1:
            holds()
        try:
            chain(n - 1)
        except RuntimeError as exc:
            raise RuntimeError(f"level {n}") from exc

    try:
        chain(levels)
    except RuntimeError as exc:
        return exc, refs[0]


@pytest.mark.parametrize("levels", [1, 2])
def test_release_after_failure_frees_what_the_traceback_holds(no_cyclic_gc, levels):
    exc, ref = failing_step(levels)
    assert ref() is not None  # held by the exception's traceback
    store.release_after_failure(exc, [CPU])
    assert ref() is None  # freed while the exception is still alive


def test_release_after_failure_frees_what_a_deeper_cause_holds(no_cyclic_gc):
    exc, ref = failing_step(3)
    assert ref() is not None
    store.release_after_failure(exc, [CPU])
    assert ref() is None


def test_gc_paused_nests_and_restores_the_collector():
    enabled = gc.isenabled()
    try:
        gc.enable()
        with store.gc_paused():
            assert not gc.isenabled()
            with store.gc_paused():
                assert not gc.isenabled()
            assert not gc.isenabled()  # the outer block still holds it
        assert gc.isenabled()
        gc.disable()
        with store.gc_paused():
            pass
        assert not gc.isenabled()  # it was off before: it stays off
    finally:
        if enabled:
            gc.enable()
        else:
            gc.disable()
