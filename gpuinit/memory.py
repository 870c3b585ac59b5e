"""Memory readings: host RSS, CuPy's pool, and the GPU as NVML sees it.

NVML (``nvidia-ml-py``) is optional and imported here only; every reading that cannot be taken
says why instead of failing.
"""

from __future__ import annotations

import os
import resource
import sys
import threading

from . import backend


def rss_bytes() -> int | None:
    """This process's resident set size now (Linux ``/proc``), or None where unknown."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def peak_rss_bytes() -> int:
    """The highest RSS this process reached."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def process_seconds() -> float | None:
    """Seconds since this process started (Linux), or None."""
    try:
        with open("/proc/self/stat") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


_nvml_lock = threading.Lock()
_nvml: dict = {}


def _nvml_module():
    with _nvml_lock:
        if not _nvml:
            try:
                import pynvml  # noqa: PLC0415 - optional dependency, imported on first use
                pynvml.nvmlInit()
                _nvml.update(module=pynvml, reason="")
            except Exception as exc:
                _nvml.update(module=None, reason=f"NVML unavailable ({type(exc).__name__}: {exc}); "
                                                 "install nvidia-ml-py and an NVIDIA driver")
        return _nvml["module"], _nvml["reason"]


def nvml_reading(index: int = 0) -> dict:
    """NVML's view of GPU ``index``: used/free/total bytes and this process's use.

    Returns:
        ``{"available": True, "used_bytes", "free_bytes", "total_bytes", "process_bytes"}``, or
        ``{"available": False, "reason": ...}``.
    """
    nvml, reason = _nvml_module()
    if nvml is None:
        return {"available": False, "reason": reason}
    try:
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        info = nvml.nvmlDeviceGetMemoryInfo(handle)
        mine = None
        for proc in nvml.nvmlDeviceGetComputeRunningProcesses(handle):
            if proc.pid == os.getpid():
                mine = proc.usedGpuMemory
        return {"available": True, "used_bytes": int(info.used), "free_bytes": int(info.free),
                "total_bytes": int(info.total), "process_bytes": mine}
    except Exception as exc:
        return {"available": False, "reason": f"NVML query failed ({type(exc).__name__}: {exc})"}


def pool_reading(device) -> dict:
    """CuPy's default memory pool on ``device``: used and total bytes, or why unavailable."""
    if not device.is_gpu:
        return {"available": False, "reason": "no CuPy pool on the CPU"}
    used, total = backend.pool_bytes(device.index)
    return {"available": True, "used_bytes": used, "total_bytes": total}
