"""The library's error hierarchy.

Every error gpuinit raises on purpose derives from :class:`GpuInitError`, so a user can catch the
library's errors in one clause. Each message names what was wrong (the parameter, the layer, the
argument, the device), shows what was expected against what was given, and says how to fix it.

Where Python's conventions (or Gluon's) would raise a built-in class, the error also derives from
it, so code written for those catches ours: a bad argument is a ``ValueError`` (a wrong type also
a ``TypeError``), a parameter used too early a ``RuntimeError`` (Gluon's
``DeferredInitializationError`` is one), a model that does not fit a ``MemoryError``.
"""


class GpuInitError(Exception):
    """Base class of every error raised by gpuinit."""


class ArgumentError(GpuInitError, ValueError):
    """An argument has a value the call cannot take (a size of 0, a NaN scale, an unknown name)."""


class ArgumentTypeError(ArgumentError, TypeError):
    """An argument has a type the call cannot take (a string for a size, a bool for a count)."""


class ShapeError(ArgumentError):
    """A shape does not agree with what a layer or parameter expects."""


class InitializerError(ArgumentError):
    """An initializer is unsuitable for a parameter (or failed on it); nothing was initialized."""


class DeferredInitializationError(GpuInitError, RuntimeError):
    """A parameter's data was asked for while its shape is still unknown.

    Its initialization was recorded by ``initialize()`` and finishes at the first forward pass,
    once the input shape has fixed every unknown dimension.
    """


class UninitializedParameterError(GpuInitError, RuntimeError):
    """A parameter was used before ``initialize()`` was called for it."""


class NoGradientError(GpuInitError, RuntimeError):
    """A gradient was asked of a parameter that has none (``grad_req='null'``), as Gluon refuses it."""


class DeviceError(GpuInitError, RuntimeError):
    """A device was asked for that is not usable here (no CuPy, no driver, no such GPU)."""


class InvalidDeviceError(DeviceError, ArgumentError):
    """A device was named in a way gpuinit does not understand (``"tpu"``, ``3.5``)."""


class OutOfMemoryError(GpuInitError, MemoryError):
    """The parameters to materialize do not fit in the device's free memory."""


class PlanError(GpuInitError):
    """A block could not be followed by the shape-only pass (planning, deferred initialization)."""


class CheckpointError(GpuInitError, ValueError):
    """A checkpoint file cannot be read (not safetensors, truncated, corrupted) or written, or does
    not fit the network it is loaded into (names, dtypes); nothing was changed."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """The checkpoint file to load does not exist."""
