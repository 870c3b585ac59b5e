"""Shared fixtures: every backend-dependent test runs on the CPU and, where usable, on a GPU."""

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
