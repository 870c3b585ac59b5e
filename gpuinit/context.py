"""MXNet's ``mxnet.context`` names: ``Context``, ``cpu``, ``gpu``, ``num_gpus``, ``current_context``.

A context is a :class:`~gpuinit.device.Device`; this module only gives it MXNet's names.
"""

from . import backend
from .device import Device, cpu, default_device, gpu

Context = Device


def num_gpus() -> int:
    """How many usable CUDA devices there are (0 without CuPy, a driver or a device)."""
    return backend.gpu_count()


def current_context() -> Device:
    """The device used when none is named (:func:`gpuinit.default_device`)."""
    return default_device()


__all__ = ["Context", "cpu", "current_context", "gpu", "num_gpus"]
