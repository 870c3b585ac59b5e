"""The CPU driver (gpuinit.streams.cpu.fill_many): chunked, threaded fills equal the one-shot
reference whatever the chunking, the threads or the packing of small parameters."""

import os
import time

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from gpuinit import streams
from gpuinit.errors import ArgumentError, InitializerError
from gpuinit.streams import Fill

from .common import DTYPES, FILLS, gen, keys


@settings(max_examples=25, deadline=None)  # chunks of one element: thousands of tiny fills
@given(key=keys, fill=st.sampled_from(FILLS), dtype=st.sampled_from(DTYPES),
       n=st.integers(1, 3000), chunk=st.integers(1, 700))
def test_chunked_threaded_fill_equals_one_shot(key, fill, dtype, n, chunk):
    whole = gen(fill, key, n, dtype)
    out = np.empty(n, dtype)
    old = streams.cpu.CHUNK_ELEMENTS
    streams.cpu.CHUNK_ELEMENTS = chunk
    try:
        streams.fill_many([(out, fill, key, 0)])
    finally:
        streams.cpu.CHUNK_ELEMENTS = old
    assert np.array_equal(out, whole)


def mixed_jobs():
    """Jobs of every family and dtype: 2-D outputs, word offsets, shards (``start``), and many
    parameters smaller than a chunk. Returns ``(jobs, expected)``."""
    jobs, expected = [], []
    for i, (fill, dtype) in enumerate((f, d) for f in FILLS for d in DTYPES):
        key = streams.derive_key(i, "mixed")
        shape, offset, start = [((37, 11), 0, 0), ((250,), 8, 0), ((3, 5, 7), 4, 1001)][i % 3]
        jobs.append((np.full(shape, np.nan, dtype), fill, key, offset, start))
        expected.append(gen(fill, key, int(np.prod(shape)), dtype, start=start, offset=offset).reshape(shape))
    for j in range(300):  # small parameters, packed several to a task
        key = streams.derive_key(j, "small")
        jobs.append((np.full(1 + j % 7, np.nan, np.float32), Fill.normal(0, 1), key, 0))
        expected.append(gen(Fill.normal(0, 1), key, 1 + j % 7))
    return jobs, expected


@pytest.mark.parametrize("threads", ["1", "3"])
def test_many_jobs_across_chunks_and_threads_each_equal_the_reference(monkeypatch, threads):
    monkeypatch.setenv("GPUINIT_NUM_THREADS", threads)
    monkeypatch.setattr(streams.cpu, "CHUNK_ELEMENTS", 64)  # the public knob: many chunks per job
    jobs, expected = mixed_jobs()
    streams.fill_many(jobs)
    for (out, fill, *_), want in zip(jobs, expected):
        assert out.shape == want.shape
        assert np.array_equal(out.view(f"u{out.itemsize}"), want.view(f"u{want.itemsize}")), (fill, out.dtype)


def test_progress_counts_every_byte_of_the_random_fills(monkeypatch):
    monkeypatch.setattr(streams.cpu, "CHUNK_ELEMENTS", 1000)
    outs = [np.empty(n, dtype) for n, dtype in ((5000, np.float32), (1234, np.float64), (7, np.float16))]
    done = []
    streams.fill_many([(out, Fill.uniform(-1, 1), (i, 1), 0) for i, out in enumerate(outs)], done.append)
    assert sum(done) == sum(out.nbytes for out in outs)
    assert len(done) >= 6  # reported as chunks finish, not once at the end


def test_progress_counts_constant_fills_too():
    weight, bias = np.empty(1000, np.float32), np.empty(1000, np.float32)
    done = []
    streams.fill_many([(weight, Fill.uniform(-1, 1), (1, 2), 0), (bias, Fill.constant(0.0), (1, 3), 0)],
                      done.append)
    assert sum(done) == weight.nbytes + bias.nbytes


def test_a_failing_job_raises_and_no_worker_writes_after_it(monkeypatch):
    monkeypatch.setenv("GPUINIT_NUM_THREADS", "2")
    monkeypatch.setattr(streams.cpu, "CHUNK_ELEMENTS", 4096)
    outs = [np.full(1 << 16, np.nan, np.float32) for _ in range(4)]
    jobs = [(out, Fill.normal(0, 1), (i, 7), 0) for i, out in enumerate(outs)]
    jobs.insert(2, (np.zeros(10, np.int32), Fill.normal(0, 1), (9, 9), 0))  # random fills need floats
    with pytest.raises(InitializerError, match="int32"):
        streams.fill_many(jobs)
    after = [out.copy() for out in outs]
    time.sleep(0.05)
    assert all(np.array_equal(a, out, equal_nan=True) for a, out in zip(after, outs))


def test_cpu_workers_follow_the_environment(monkeypatch):
    monkeypatch.setenv("GPUINIT_NUM_THREADS", " 3 ")
    assert streams.cpu_workers() == 3
    monkeypatch.setenv("GPUINIT_NUM_THREADS", "")
    assert streams.cpu_workers() == len(os.sched_getaffinity(0))
    monkeypatch.delenv("GPUINIT_NUM_THREADS")
    assert streams.cpu_workers() == len(os.sched_getaffinity(0))
    monkeypatch.setenv("GPUINIT_NUM_THREADS", "-2")
    with pytest.raises(ArgumentError, match="GPUINIT_NUM_THREADS='-2'"):
        streams.cpu_workers()
