"""Devices: where a parameter lives (``cpu`` or ``cuda:N``) and which array module serves it."""

from __future__ import annotations

import contextlib
import os

import numpy as np

from . import backend, checks
from .errors import DeviceError, GpuInitError, InvalidDeviceError


class Device:
    """A place for arrays: the host (NumPy) or one CUDA device (CuPy).

    Build one with :func:`cpu`, :func:`gpu` or a string (``"cpu"``, ``"cuda"``, ``"cuda:1"``,
    ``"gpu(0)"``) passed anywhere a device is taken.

    ``cpu(i)`` are all the host, as in MXNet: they differ only as labels. A parameter replicated
    on ``[cpu(0), cpu(1)]`` has two copies, each in the arena of its own device label.
    """

    __slots__ = ("kind", "index")

    def __init__(self, kind: str, index: int = 0):
        if kind not in ("cpu", "cuda"):
            raise InvalidDeviceError(f"unknown device kind {kind!r}; expected 'cpu' or 'cuda'")
        self.kind = kind
        self.index = checks.non_negative_int(index, "index", "Device", error=InvalidDeviceError)

    @property
    def is_gpu(self) -> bool:
        return self.kind == "cuda"

    @property
    def xp(self):
        """The array module for this device: ``numpy`` or ``cupy``."""
        return backend.cupy_module() if self.is_gpu else np

    @contextlib.contextmanager
    def activate(self):
        """Make this the current CUDA device for the block (no-op on the CPU)."""
        if self.is_gpu:
            with backend.cupy_module().cuda.Device(self.index):
                yield self
        else:
            yield self

    def name(self) -> str:
        """A human-readable name: the GPU model, or ``CPU``."""
        return backend.device_name(self.index) if self.is_gpu else "CPU"

    def memory_info(self) -> tuple[int | None, int | None]:
        """(free, total) bytes of this device; ``(None, None)`` where the host cannot tell."""
        if self.is_gpu:
            return backend.device_memory(self.index)
        return host_memory()

    def __eq__(self, other) -> bool:
        return isinstance(other, Device) and (self.kind, self.index) == (other.kind, other.index)

    def __hash__(self) -> int:
        return hash((self.kind, self.index))

    @property
    def device_type(self) -> str:
        """MXNet's name for the kind: ``'cpu'`` or ``'gpu'``."""
        return "gpu" if self.is_gpu else "cpu"

    @property
    def device_id(self) -> int:
        """MXNet's name for the index."""
        return self.index

    def __str__(self) -> str:
        if self.is_gpu:
            return f"cuda:{self.index}"
        return f"cpu:{self.index}" if self.index else "cpu"

    def __repr__(self) -> str:
        return f"{self.device_type}({self.index})"


_CPU0 = Device("cpu")


def host_memory() -> tuple[int | None, int | None]:
    """(available, total) bytes of host memory, from ``/proc/meminfo`` where it exists."""
    try:
        fields = {}
        with open("/proc/meminfo") as f:
            for line in f:
                key, value = line.split(":", 1)
                fields[key] = int(value.split()[0]) * 1024
        return fields.get("MemAvailable"), fields.get("MemTotal")
    except (OSError, ValueError):
        return None, None


def cpu(device_id: int = 0) -> Device:
    """The host, served by NumPy. ``cpu(i)`` is the host too, labelled ``i`` (as MXNet's ``cpu(i)``)."""
    if device_id == 0 and type(device_id) is int:
        return _CPU0
    return Device("cpu", checks.non_negative_int(device_id, "device_id", "cpu()", error=InvalidDeviceError))


def gpu(i: int = 0) -> Device:
    """CUDA device ``i``, served by CuPy.

    As MXNet's ``mx.gpu(i)``, it only names the device: whether it is usable is checked where it
    is used (``nd.zeros(..., ctx=gpu())``, ``initialize(device=gpu())``), which then raises
    :class:`DeviceError` (also ``mx.base.MXNetError``), as the book's ``try_gpu()`` expects.

    Raises:
        InvalidDeviceError: ``i`` is not a non-negative integer.
    """
    return Device("cuda", checks.non_negative_int(i, "i", "gpu()", error=InvalidDeviceError))


def usable_gpu(i: int = 0) -> Device:
    """CUDA device ``i``, checked to be usable here.

    Raises:
        DeviceError: CuPy is missing, no driver or device is usable, or there is no device ``i``;
            the message says which and how to fix it.
        InvalidDeviceError: ``i`` is not a non-negative integer.
    """
    i = checks.non_negative_int(i, "i", "gpu()", error=InvalidDeviceError)
    if not backend.has_cupy_gpu():
        raise DeviceError(f"gpu({i}) is not usable: {backend.why_no_gpu()}; "
                          "or use gpuinit.cpu() to run on NumPy")
    count = backend.gpu_count()
    if not 0 <= i < count:
        raise DeviceError(f"gpu({i}) does not exist: CuPy sees {count} CUDA device(s), "
                          f"numbered 0 to {count - 1}")
    return Device("cuda", i)


def as_device(spec) -> Device:
    """Turn ``None``, a :class:`Device` or a device string into a :class:`Device`.

    ``None`` means :func:`default_device`. Strings: ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"gpu"``,
    ``"gpu:N"``, ``"gpu(N)"``.
    """
    if spec is None:
        return default_device()
    if isinstance(spec, Device):
        if spec.is_gpu:
            return usable_gpu(spec.index)  # checks that it is usable here
        return spec
    if isinstance(spec, str):
        text = spec.strip().lower().replace("(", ":").rstrip(")")
        if text == "cpu":
            return cpu()
        kind, _, index = text.partition(":")
        if kind == "cpu" and index.isdigit():
            return cpu(int(index))
        if kind in ("cuda", "gpu"):
            try:
                return usable_gpu(int(index) if index else 0)
            except ValueError:
                pass
    raise InvalidDeviceError(f"cannot understand device {spec!r}; use 'cpu', 'cuda', 'cuda:N', "
                             "gpuinit.cpu() or gpuinit.gpu(N)")


def as_devices(spec) -> tuple[Device, ...]:
    """One device or a list of them (Gluon's ``ctx=[cpu(0), cpu(1)]``) as a tuple of distinct
    devices, in order; ``None`` is ``(default_device(),)``.

    Raises:
        InvalidDeviceError: an empty list, or an entry :func:`as_device` cannot read.
    """
    if not isinstance(spec, (list, tuple)):
        return (as_device(spec),)
    if not spec:
        raise InvalidDeviceError("the list of devices is empty; pass at least one, e.g. [gpuinit.cpu()]")
    devices = []
    for item in spec:
        if isinstance(item, (list, tuple)):
            raise InvalidDeviceError(f"cannot understand device {item!r} in {spec!r}; a device list holds "
                                     "devices, not lists")
        device = as_device(item)
        if device not in devices:
            devices.append(device)
    return tuple(devices)


def default_device() -> Device:
    """The device used when none is named.

    ``GPUINIT_DEVICE`` (``cpu``, ``cuda``, ``cuda:N``) overrides; otherwise the first usable GPU,
    else the CPU.
    """
    override = os.environ.get("GPUINIT_DEVICE", "").strip()
    if override:
        try:
            return as_device(override)
        except GpuInitError as exc:
            raise type(exc)(f"environment variable GPUINIT_DEVICE={override!r}: {exc}; set it to cpu, "
                            "cuda or cuda:N, or unset it") from None
    return Device("cuda", 0) if backend.has_cupy_gpu() else cpu()


def device_of(array) -> Device:
    """The device an array (NumPy or CuPy) lives on."""
    if backend.is_cupy_array(array):
        return Device("cuda", array.device.id)
    return cpu()
