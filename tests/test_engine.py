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


# Truncated normals that reach every branch of AS241 as the compiled engine takes them: groups
# whose lanes mix the central branch and the tails, tails on both sides of r = 5, both ends (p and
# 1 - p), p within 1e-19 of 0 and 1, and slivers where ndtri's rounding crosses both bounds (the
# clamp), one central and one in a tail.
TRUNCATED = [Fill.truncated_normal(0.0, 1.0, -6.0, 6.0), Fill.truncated_normal(0.0, 1.0, -9.0, 9.0),
             Fill.truncated_normal(0.5, 2.0, -9.0, -6.0), Fill.truncated_normal(-0.5, 0.1, 6.0, 9.0),
             Fill.truncated_normal(0.0, 1.0, -0.2, 0.2), Fill.truncated_normal(0.1, 0.5, 0.3, 0.3 + 1e-13),
             Fill.truncated_normal(0.0, 1.0, 2.5, 2.5 + 1e-14)]


@pytest.mark.parametrize("piece", [37, None], ids=["pieces of 37 groups", "one piece"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_the_compiled_truncated_normal_is_the_reference_in_every_branch(monkeypatch, dtype, piece):
    """The compiled engine transforms truncated normals in batches of groups, four lanes a vector,
    tails gathered from the batch: every element, of jobs large and small in one launch, at any
    start and word offset, cut into pieces anywhere, is the reference's, bit for bit."""
    if engine._compiled_module() is None:
        pytest.skip("the compiled CPU engine is not built here")
    monkeypatch.setenv("GPUINIT_CPU_ENGINE", "compiled")
    if piece:
        monkeypatch.setattr(engine, "PIECE_GROUPS", piece)
    dtype = np.dtype(dtype)
    rng = np.random.default_rng(11)
    jobs, offset = [], 0
    for i in range(210):
        fill = TRUNCATED[i % len(TRUNCATED)]
        count = 20_011 if i < len(TRUNCATED) else int(rng.integers(1, 70))
        jobs.append(FillJob(offset, dtype, count, (i, 7), fill, int(rng.integers(0, 9)), 4 * int(rng.integers(0, 3))))
        offset += store.align(count * dtype.itemsize)
    arena = store.allocate(gpuinit.cpu(), offset)
    arena[...] = SENTINEL
    engine.run(gpuinit.cpu(), arena, jobs)
    for job in jobs:
        got = arena[job.offset:job.offset + job.count * dtype.itemsize].view(dtype)
        want = gen(job.fill, job.key, job.count, dtype, start=job.start, offset=job.word_offset)
        assert np.array_equal(bits(got), bits(want)), (job.fill, dtype, job.count, job.start)
    if dtype == np.float64:  # the far tails (r > 5, |z| > 6.67) came up, and so did the near ones
        lower = (arena[jobs[2].offset:].view(dtype)[:jobs[2].count] - 0.5) / 2.0
        upper = (arena[jobs[3].offset:].view(dtype)[:jobs[3].count] + 0.5) / 0.1
        assert (lower < -6.7).any() and (lower > -6.6).any() and (upper > 6.7).any() and (upper < 6.6).any()


def test_the_compiled_engine_rounds_float64_to_float16_once(monkeypatch):
    """The compiled engine rounds float64 values to float16 through float32 with rounding to odd
    (host_simd.h): constants at every float16 tie, a double's step either side of it, the
    subnormals, the largest half and past it round as NumPy rounds a float64 once."""
    if engine._compiled_module() is None:
        pytest.skip("the compiled CPU engine is not built here")
    monkeypatch.setenv("GPUINIT_CPU_ENGINE", "compiled")
    halves = np.arange(0, 0x7BFF, 3, dtype=np.uint16).view(np.float16).astype(np.float64)
    ties = (halves + np.nextafter(halves.astype(np.float16), np.float16(np.inf)).astype(np.float64)) / 2
    values = np.concatenate([ties, np.nextafter(ties, 0), np.nextafter(ties, np.inf), halves,
                             [65504.0, 65519.99, 65520.0, 1e300, 2.0 ** -25, np.nextafter(2.0 ** -25, 1), 2.0 ** -26, 1e-300, 5e-324]])
    values = np.concatenate([values, -values])
    jobs = [FillJob(64 * i, np.dtype(np.float16), 3, (i, 1), Fill.constant(float(v))) for i, v in enumerate(values)]
    arena = store.allocate(gpuinit.cpu(), 64 * len(jobs))
    engine.run(gpuinit.cpu(), arena, jobs)
    got = arena.reshape(-1, 64)[:, :2].copy().view(np.float16).ravel()
    with np.errstate(over="ignore"):  # 65520 and up round to infinity, as they should
        want = values.astype(np.float16)
    assert np.array_equal(bits(got), bits(want))


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
