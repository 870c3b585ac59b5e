"""The fill engine (gpuinit.engine): fill jobs into an arena, and whole arrays, on any device, with
the reference's numbers; jobs and arrays it cannot write are refused before anything is written."""

import numpy as np
import pytest

import gpuinit
from gpuinit import engine, store, streams
from gpuinit.backend import to_numpy
from gpuinit.errors import GpuInitError
from gpuinit.streams import Fill, FillJob

from .streams.common import DTYPES, FILLS, gen

SENTINEL = 0xAB


def bits(a):
    a = to_numpy(a)
    return a.view(f"u{a.itemsize}")


def every_family_and_dtype():
    """``(jobs, arena bytes)``: one job per fill and dtype, at aligned offsets, some starting
    inside their stream (a shard) or at a word offset (a later draw)."""
    jobs, offset = [], 0
    for i, (fill, dtype) in enumerate((f, d) for f in FILLS for d in DTYPES):
        count, start, word_offset = [(1, 0, 0), (257, 0, 4), (1000, 333, 0), (64, 5, 8)][i % 4]
        jobs.append(FillJob(offset, np.dtype(dtype), count, streams.derive_key(i, "engine"), fill,
                            start, word_offset))
        offset += store.align(count * np.dtype(dtype).itemsize)
    return jobs, offset


def test_run_fills_every_family_and_dtype_as_the_reference(device):
    dev = gpuinit.as_device(device)
    jobs, nbytes = every_family_and_dtype()
    arena = store.allocate(dev, nbytes)
    arena[...] = SENTINEL
    done = []
    engine.run(dev, arena, jobs, done.append)
    got = to_numpy(arena)
    written = np.zeros(got.size, bool)
    for job in jobs:
        end = job.offset + job.count * job.dtype.itemsize
        want = gen(job.fill, job.key, job.count, job.dtype, start=job.start, offset=job.word_offset)
        assert np.array_equal(bits(got[job.offset:end].view(job.dtype)), bits(want)), (job.fill, job.dtype)
        written[job.offset:end] = True
    assert np.all(got[~written] == SENTINEL)  # the padding between parameters is left alone
    random_bytes = sum(j.count * j.dtype.itemsize for j in jobs if j.fill.family != "constant")
    assert sum(done) >= random_bytes


@pytest.mark.parametrize("offset,count", [(1024 - 12, 4), (-4, 1), (2, 1), (0, -1)],
                         ids=["past the end", "before the start", "misaligned", "negative count"])
def test_run_refuses_a_job_outside_the_arena_and_writes_nothing(device, offset, count):
    dev = gpuinit.as_device(device)
    arena = store.allocate(dev, 1024)
    arena[...] = SENTINEL
    good = FillJob(0, np.dtype(np.float32), 16, (1, 2), Fill.uniform(0, 1))
    bad = FillJob(offset, np.dtype(np.float32), count, (3, 4), Fill.normal(0, 1))
    with pytest.raises(GpuInitError, match="does not fit"):
        engine.run(dev, arena, [good, bad])
    assert np.all(to_numpy(arena) == SENTINEL)


def test_run_takes_a_job_that_ends_exactly_at_the_arena_end(device):
    dev = gpuinit.as_device(device)
    arena = store.allocate(dev, 1024)
    engine.run(dev, arena, [FillJob(1024 - 16, np.dtype(np.float32), 4, (5, 6), Fill.uniform(0, 1))])
    assert np.array_equal(to_numpy(arena)[-16:].view(np.float32), gen(Fill.uniform(0, 1), (5, 6), 4))


def test_fill_arrays_fills_whole_arrays_as_the_reference(device):
    dev = gpuinit.as_device(device)
    jobs, expected = [], []
    for i, (fill, dtype) in enumerate((f, d) for f in FILLS for d in DTYPES):
        key = streams.derive_key(i, "arrays")
        shape = [(7, 9), (128,), (2, 3, 5)][i % 3]
        with dev.activate():
            out = dev.xp.empty(shape, dtype)
        word_offset, start = (4 * (i % 3), 11 * (i % 2))
        jobs.append((out, fill, key, word_offset, start))
        expected.append(gen(fill, key, int(np.prod(shape)), dtype, start=start, offset=word_offset).reshape(shape))
    engine.fill_arrays(dev, jobs)
    for (out, fill, *_), want in zip(jobs, expected):
        assert out.shape == want.shape and np.array_equal(bits(out), bits(want)), (fill, out.dtype)


@pytest.mark.parametrize("make", [lambda xp: xp.zeros((4, 8), np.float32)[:, ::2],
                                  lambda xp: xp.zeros((4, 8), np.float32).T],
                         ids=["strided", "transposed"])
def test_fill_arrays_refuses_non_contiguous_arrays_and_writes_nothing(device, make):
    dev = gpuinit.as_device(device)
    with dev.activate():
        good = dev.xp.full(64, np.nan, np.float32)
        bad = make(dev.xp)
    with pytest.raises(GpuInitError, match="C-contiguous"):
        engine.fill_arrays(dev, [(good, Fill.uniform(0, 1), (1, 2), 0), (bad, Fill.uniform(0, 1), (3, 4), 0)])
    assert np.isnan(to_numpy(good)).all() and not to_numpy(bad).any()


def test_fill_arrays_on_the_cpu_refuses_what_is_not_a_numpy_array():
    with pytest.raises(GpuInitError, match="NumPy arrays, got list"):
        engine.fill_arrays(gpuinit.cpu(), [([0.0] * 4, Fill.uniform(0, 1), (1, 2), 0)])
