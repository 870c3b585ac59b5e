"""Shared fixtures: every backend-dependent test runs on the CPU and, where usable, on a GPU."""

import functools
import gc
import inspect

import pytest

from gpuinit import backend


def _gpu_param():
    return pytest.param("cuda", marks=[
        pytest.mark.gpu,
        pytest.mark.skipif(not backend.has_cupy_gpu(), reason=f"no usable GPU: {backend.why_no_gpu()}"),
    ])


@pytest.fixture(params=["cpu", _gpu_param()])
def device(request):
    """A device string: ``"cpu"``, and ``"cuda"`` where a GPU is usable."""
    return request.param


@pytest.fixture
def gpu_device():
    if not backend.has_cupy_gpu():
        pytest.skip(f"no usable GPU: {backend.why_no_gpu()}")
    return "cuda"


@functools.lru_cache(maxsize=None)
def _counts_live_bytes(module) -> bool:
    return "live_bytes" in inspect.getsource(module)


@pytest.fixture(autouse=True)
def _no_collection_during_memory_counts(request):
    """Tests that compare ``store.live_bytes()`` before and after a step run with the cyclic
    collector paused: an arena that earlier tests' garbage still held, freed by a collection
    halfway through, would otherwise read as memory the step gave back (or kept). With it paused,
    what a step frees is freed by reference counting alone, which is what those tests assert."""
    if not _counts_live_bytes(request.module):
        yield
        return
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
