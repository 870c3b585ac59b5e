"""The CPU driver: fills NumPy arrays in bounded chunks on every core.

Element ``i`` of a fill depends only on ``(key, word offset, i)`` (:mod:`gpuinit.streams.spec`),
so a parameter is cut into chunks of :data:`CHUNK_ELEMENTS` that worker threads fill in any
order, each with :func:`gpuinit.streams.reference.generate`; small parameters are packed into
shared tasks. NumPy releases the GIL inside its loops, so the threads run in parallel.
"""

from __future__ import annotations

import concurrent.futures
import os
import threading
from concurrent.futures import ThreadPoolExecutor

from .. import checks, dtypes
from . import transforms
from .reference import generate

# Elements per chunk when filling on the CPU: each worker's temporaries stay near 1 MiB for a
# uniform float32 fill and 6 MiB for a normal one, so a fill's memory beyond its output stays far
# under the 64 MiB bound whatever the parameter size; ~10 us of set-up per chunk is negligible.
CHUNK_ELEMENTS = 1 << 17

_pool_lock = threading.Lock()
_pools: dict = {}  # worker count -> executor (one, unless GPUINIT_NUM_THREADS changes)


def cpu_workers() -> int:
    """Threads used to fill on the CPU: ``GPUINIT_NUM_THREADS``, else the usable cores.

    Raises:
        ArgumentError: ``GPUINIT_NUM_THREADS`` is set to something other than a positive integer.
    """
    env = os.environ.get("GPUINIT_NUM_THREADS")
    if env is not None and env.strip():
        return checks.env_int("GPUINIT_NUM_THREADS", env)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def _executor(workers: int) -> ThreadPoolExecutor:
    with _pool_lock:
        if workers not in _pools:
            _pools[workers] = ThreadPoolExecutor(workers, thread_name_prefix="gpuinit-fill")
        return _pools[workers]


def fill_many(jobs, progress=None) -> None:
    """Fill NumPy arrays in bounded chunks on every core.

    Args:
        jobs: iterable of ``(out, fill, key, offset)``, optionally with a fifth item ``start``:
            ``out`` is a C-contiguous NumPy array written in place, element ``i`` of its flat view
            being element ``start + i`` (default ``start`` 0) of the stream (a shard of a larger
            parameter when ``start`` > 0).
        progress: optional ``fn(nbytes)`` called as each chunk of ``nbytes`` is done.

    If a chunk fails (or the caller is interrupted), the chunks not started are dropped and the
    running ones finish before the error propagates: no worker writes into the arrays after this
    function returns or raises.
    """
    workers = cpu_workers()
    # Pieces of at most CHUNK_ELEMENTS elements, packed into tasks of about that many elements
    # each, so that thousands of small parameters cost a few tasks rather than one each.
    tasks, batch, size = [], [], 0
    for out, fill, key, offset, *rest in jobs:
        start = int(rest[0]) if rest else 0
        flat = out.reshape(-1)
        if fill.family == "constant":
            dtypes.assign(flat, fill.a)
            if progress:
                progress(flat.nbytes)
            continue
        for s in range(0, flat.size, CHUNK_ELEMENTS):
            e = min(flat.size, s + CHUNK_ELEMENTS)
            batch.append((flat[s:e], fill, key, start + s, offset))
            size += e - s
            if size >= CHUNK_ELEMENTS:
                tasks.append(batch)
                batch, size = [], 0
    if batch:
        tasks.append(batch)

    # One Scratch per running task, handed back for the next; dropped when this call returns.
    spare, spare_lock = [], threading.Lock()
    stop = threading.Event()

    def run(task):
        if stop.is_set():
            return
        with spare_lock:
            tmp = spare.pop() if spare else transforms.Scratch()
        try:
            for out, fill, key, start, offset in task:
                generate(out, fill, key, start, offset, tmp=tmp)
        finally:
            with spare_lock:
                spare.append(tmp)
        if progress:
            progress(sum(piece[0].nbytes for piece in task))

    if len(tasks) <= 1 or workers == 1:
        for task in tasks:
            run(task)
        return
    futures = [_executor(workers).submit(run, task) for task in tasks]
    try:
        for fut in futures:
            fut.result()
    except BaseException:
        stop.set()
        for fut in futures:
            fut.cancel()
        concurrent.futures.wait(futures)  # the running tasks end before the error goes on
        raise
