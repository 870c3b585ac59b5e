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


# --- the CPU engines: compiled (the kernels' code on the host) and NumPy (the reference) ---------

@pytest.fixture(params=["compiled", "numpy"])
def cpu_engine(request, monkeypatch):
    """Each CPU fill path in turn (the compiled one where it is built)."""
    if request.param == "compiled" and engine._compiled_module() is None:
        pytest.skip("the compiled CPU engine is not built here (pip install -e . builds it)")
    monkeypatch.setenv("GPUINIT_CPU_ENGINE", request.param)
    assert engine.cpu_engine() == request.param
    return request.param


def test_both_cpu_engines_give_the_reference(cpu_engine):
    jobs, nbytes = every_family_and_dtype()
    arena = store.allocate(gpuinit.cpu(), nbytes)
    engine.run(gpuinit.cpu(), arena, jobs)
    for job in jobs:
        got = arena[job.offset:job.offset + job.count * job.dtype.itemsize].view(job.dtype)
        want = gen(job.fill, job.key, job.count, job.dtype, start=job.start, offset=job.word_offset)
        assert np.array_equal(bits(got), bits(want)), (cpu_engine, job.fill, job.dtype)


@pytest.mark.parametrize("threads", ["1", "2", "3"])
def test_the_compiled_engine_has_no_seams_between_threads_or_pieces(monkeypatch, threads):
    """A large job and 200 small ones, cut into pieces of 512 groups, each piece split among the
    threads: every element is the reference's, and progress adds up to every byte."""
    if engine._compiled_module() is None:
        pytest.skip("the compiled CPU engine is not built here")
    monkeypatch.setenv("GPUINIT_CPU_ENGINE", "compiled")
    monkeypatch.setenv("GPUINIT_NUM_THREADS", threads)
    monkeypatch.setattr(engine, "PIECE_GROUPS", 512)
    rng = np.random.default_rng(int(threads))
    sizes = [300_001] + rng.integers(1, 700, 200).tolist()
    for fill in (Fill.normal(0.1, 2.0), Fill.uniform(-3, 1)):
        jobs, offset = [], 0
        for i, n in enumerate(sizes):
            jobs.append(FillJob(offset, np.dtype(np.float32), n, (i, 99), fill, 3 * i))
            offset += store.align(4 * n)
        arena = store.allocate(gpuinit.cpu(), offset)
        done = []
        engine.run(gpuinit.cpu(), arena, jobs, done.append)
        assert sum(done) == 4 * sum(sizes)
        for job in jobs:
            got = arena[job.offset:job.offset + 4 * job.count].view(np.float32)
            assert np.array_equal(got, gen(job.fill, job.key, job.count, np.float32, start=job.start)), job


def test_the_cpu_engine_follows_the_environment(monkeypatch):
    monkeypatch.setenv("GPUINIT_CPU_ENGINE", "numpy")
    assert engine.cpu_engine() == "numpy"
    monkeypatch.setenv("GPUINIT_CPU_ENGINE", "auto")
    assert engine.cpu_engine() == ("compiled" if engine._compiled_module() is not None else "numpy")
    monkeypatch.setenv("GPUINIT_CPU_ENGINE", "fastest")
    with pytest.raises(gpuinit.ArgumentError, match="GPUINIT_CPU_ENGINE='fastest'"):
        engine.cpu_engine()


def test_the_compiled_engine_is_built_where_there_is_a_compiler():
    """pip install builds gpuinit.kernels._cpu (setup.py); only a machine without a C++ compiler
    falls back to NumPy for good."""
    import shutil
    import sysconfig
    if not (shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")):
        pytest.skip("no C++ compiler here: the NumPy engine is the CPU path")
    if sysconfig.get_config_var("CC") is None:
        pytest.skip("this Python cannot build extensions")
    assert engine._compiled_module() is not None, (
        "gpuinit.kernels._cpu is not built: install with pip install -e . (or python setup.py build_ext --inplace)")
    from gpuinit import kernels
    assert engine._compiled_module().CHUNK_SHIFT == kernels.CHUNK_SHIFT
    assert engine._compiled_module().JOB_BYTES == kernels.JOB_DTYPE.itemsize
