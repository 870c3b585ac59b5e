"""The library's error hierarchy.

Every error gpuinit raises on purpose derives from :class:`GpuInitError`, so a user can catch the
library's errors in one clause. Each message names what was wrong (the parameter, the layer, the
device) and how to avoid it.
"""


class GpuInitError(Exception):
    """Base class of every error raised by gpuinit."""


class DeferredInitializationError(GpuInitError):
    """A parameter's data was asked for while its shape is still unknown.

    Its initialization was recorded by ``initialize()`` and finishes at the first forward pass,
    once the input shape has fixed every unknown dimension.
    """


class UninitializedParameterError(GpuInitError):
    """A parameter was used before ``initialize()`` was called for it."""


class ShapeError(GpuInitError, ValueError):
    """A shape does not agree with what a layer or parameter expects."""


class InitializerError(GpuInitError):
    """An initializer failed (or was unsuitable) for a parameter; nothing was initialized."""


class DeviceError(GpuInitError):
    """A device was asked for that is not usable here (no CuPy, no driver, no such GPU)."""


class OutOfMemoryError(GpuInitError, MemoryError):
    """The parameters to materialize do not fit in the device's free memory."""


class PlanError(GpuInitError):
    """A block could not be planned by the shape-only pass."""
