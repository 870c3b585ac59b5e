"""The only gateway to CuPy.

Nothing else in gpuinit imports ``cupy``: code above this module asks for an array module (``xp``)
and works the same on NumPy and CuPy. CuPy is imported lazily, on the first question that needs
it, and a CuPy that imports but cannot reach a GPU (no driver, no device) is reported once, with
the reason, after which everything runs on NumPy.
"""

from __future__ import annotations

import functools
import logging
import threading

import numpy as np

logger = logging.getLogger("gpuinit")

_lock = threading.Lock()
_state: dict = {}


def _probe() -> dict:
    """Import CuPy once and find out whether a GPU is usable; cache the answer."""
    with _lock:
        if _state:
            return _state
        try:
            import cupy  # noqa: PLC0415 - the one place CuPy is imported
        except Exception as exc:  # ImportError, or a broken install raising anything
            _state.update(cupy=None, has_cupy=False, device_count=0,
                          reason=f"CuPy is not installed ({type(exc).__name__}: {exc})",
                          fix='install the CUDA extra: pip install "gpuinit[cuda13]" '
                              '(or "gpuinit[cuda12]" for a CUDA 12 driver)')
            return _state
        try:
            count = cupy.cuda.runtime.getDeviceCount()
        except Exception as exc:  # cudaErrorInsufficientDriver, cudaErrorNoDevice, ...
            _state.update(cupy=cupy, has_cupy=True, device_count=0,
                          reason=f"CuPy {cupy.__version__} is installed but CUDA is not usable "
                                 f"({type(exc).__name__}: {exc})",
                          fix="check that an NVIDIA driver new enough for this CuPy wheel is "
                              "installed and that a GPU is visible (nvidia-smi)")
            logger.warning("gpuinit: no usable GPU, falling back to NumPy on the CPU: %s",
                           _state["reason"])
            return _state
        reason = "" if count else f"CuPy {cupy.__version__} sees no CUDA device"
        _state.update(cupy=cupy, has_cupy=True, device_count=count, reason=reason,
                      fix="make a GPU visible (CUDA_VISIBLE_DEVICES) or use gpuinit.cpu()")
        if not count:
            logger.warning("gpuinit: no usable GPU, falling back to NumPy on the CPU: %s", reason)
        return _state


def has_cupy() -> bool:
    """Whether CuPy imports (a GPU may still be unusable)."""
    return _probe()["has_cupy"]


def has_cupy_gpu() -> bool:
    """Whether CuPy imports and at least one CUDA device is usable."""
    return _probe()["device_count"] > 0


def gpu_count() -> int:
    """How many CUDA devices CuPy can use (0 without CuPy or a driver)."""
    return _probe()["device_count"]


def why_no_gpu() -> str:
    """Why no GPU is usable, and how to fix it; an empty string when one is."""
    state = _probe()
    if state["device_count"]:
        return ""
    return f"{state['reason']}; to fix: {state['fix']}"


def cupy_module():
    """The ``cupy`` module, for the few places (kernels, memory queries) that need its API."""
    state = _probe()
    if state["cupy"] is None:
        from .errors import DeviceError
        raise DeviceError(why_no_gpu())
    return state["cupy"]


def external_stream(handle: int, index: int):
    """A CuPy stream for a CUDA stream made by someone else (torch's current stream), to enter as
    a context so gpuinit's launches are ordered with that library's work."""
    return cupy_module().cuda.ExternalStream(int(handle), int(index))


def is_cupy_array(x) -> bool:
    """Recognize a CuPy array by its type's module, without importing CuPy."""
    return type(x).__module__.startswith("cupy")


def array_module_of(x):
    """``numpy`` or ``cupy``, whichever ``x`` belongs to (NumPy for anything else)."""
    return cupy_module() if is_cupy_array(x) else np


def to_numpy(x) -> np.ndarray:
    """A host copy of ``x`` (no copy for NumPy arrays). Synchronizes the device for CuPy arrays."""
    if is_cupy_array(x):
        return x.get()
    return np.asarray(x)


def pinned_host_buffer(nbytes: int) -> np.ndarray:
    """A ``uint8`` host array of ``nbytes`` in page-locked memory (CuPy's pinned pool), the staging
    buffer of host <-> GPU transfers (checkpoints). The array keeps the memory alive."""
    cupy = cupy_module()
    memory = cupy.cuda.alloc_pinned_memory(nbytes)
    return np.frombuffer(memory, np.uint8, nbytes)


def copy_to_device(dst, src: np.ndarray) -> None:
    """Copy the host array ``src`` into the CuPy array ``dst`` (same dtype and size, contiguous).

    Synchronizes: ``src`` may be reused as soon as this returns."""
    dst.set(src)
    cupy_module().cuda.get_current_stream().synchronize()  # whatever stream set() used


def copy_to_host(dst: np.ndarray, src) -> None:
    """Copy the CuPy array ``src`` into the host array ``dst`` (same dtype and size, contiguous).

    Synchronizes: ``dst`` holds the values when this returns."""
    src.get(out=dst)  # no stream given: synchronous
def hand_off_dlpack(x, from_dlpack):
    """Give the CuPy array ``x`` to another library through DLPack, without a copy.

    ``from_dlpack`` is the consumer's import (``jax.dlpack.from_dlpack``,
    ``torch.from_dlpack``); what it returns shares ``x``'s memory and keeps it alive. gpuinit's
    fills run asynchronously on CuPy's current stream, which the consumer does not know about, so
    this synchronizes that stream on ``x``'s device first: a consumer on any stream then reads the
    finished numbers. Synchronizes the device.
    """
    cupy = cupy_module()
    with cupy.cuda.Device(x.device.id):
        cupy.cuda.get_current_stream().synchronize()
        return from_dlpack(x)


@functools.lru_cache(maxsize=None)
def device_name(index: int) -> str:
    """The CUDA device's name, e.g. ``NVIDIA H100 80GB HBM3``."""
    cupy = cupy_module()
    props = cupy.cuda.runtime.getDeviceProperties(index)
    name = props["name"]
    return name.decode() if isinstance(name, bytes) else str(name)


def device_memory(index: int) -> tuple[int, int]:
    """(free, total) bytes of CUDA device ``index``, counting CuPy's pooled-but-free blocks as free."""
    cupy = cupy_module()
    with cupy.cuda.Device(index):
        free, total = cupy.cuda.runtime.memGetInfo()
        pool = cupy.get_default_memory_pool()
        free += pool.free_bytes()
    return free, total


def pool_bytes(index: int) -> tuple[int, int]:
    """(used, total) bytes of CuPy's default memory pool on device ``index``."""
    cupy = cupy_module()
    with cupy.cuda.Device(index):
        pool = cupy.get_default_memory_pool()
        return pool.used_bytes(), pool.total_bytes()


def _reset_for_tests() -> None:
    """Forget the cached probe (tests that change the environment use it)."""
    with _lock:
        _state.clear()
