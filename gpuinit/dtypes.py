"""The dtypes a parameter can have: float16, float32, float64, and bfloat16 where it can be held.

NumPy has no bfloat16; ``ml_dtypes`` (JAX's NumPy dtypes, which CuPy 14 also uses for its
bfloat16 arrays) provides it. It is optional: ``pip install gpuinit[bf16]``. A bfloat16 parameter
is filled like a float16 one: the fill is computed in float32 and rounded once, to nearest-even,
to bfloat16 (values computed in float64, the truncated normal's and constants, are rounded to
float32 first, as ``ml_dtypes`` converts them).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .errors import ArgumentError, ArgumentTypeError

BASE_FLOATS = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))


@lru_cache(maxsize=None)
def bfloat16() -> np.dtype | None:
    """``ml_dtypes``' bfloat16 dtype, or None where ``ml_dtypes`` is not installed."""
    try:
        import ml_dtypes
    except ImportError:
        return None
    return np.dtype(ml_dtypes.bfloat16)


def is_bfloat16(dtype) -> bool:
    dtype = np.dtype(dtype)
    return dtype.name == "bfloat16" and dtype == bfloat16()  # by name first: no import for others


def is_float(dtype) -> bool:
    """Whether parameters of ``dtype`` can be filled (a float type gpuinit knows)."""
    return np.dtype(dtype) in BASE_FLOATS or is_bfloat16(dtype)


def float_dtypes() -> tuple:
    """The dtypes random fills can produce here."""
    bf16 = bfloat16()
    return BASE_FLOATS + ((bf16,) if bf16 is not None else ())


def as_dtype(value) -> np.dtype:
    """``value`` (a name, NumPy type or dtype) as a NumPy dtype; ``'bfloat16'`` through ``ml_dtypes``.

    Raises:
        ArgumentError: ``'bfloat16'`` without ``ml_dtypes`` installed, or not a dtype at all.
    """
    if isinstance(value, str) and value.lower() in ("bfloat16", "bf16"):
        bf16 = bfloat16()
        if bf16 is None:
            raise ArgumentError("dtype 'bfloat16' needs the ml_dtypes package (NumPy has no bfloat16): "
                                "pip install 'gpuinit[bf16]' or pip install ml_dtypes")
        return bf16
    if value is None or isinstance(value, (bool, int, float)):
        raise ArgumentTypeError(f"{value!r} is not a dtype; pass a name such as 'float32'")
    try:
        return np.dtype(value)
    except (TypeError, ValueError) as exc:
        raise ArgumentError(f"{value!r} is not a dtype ({exc}); pass a name such as 'float32'") from None


def float_dtype(value, where: str) -> np.dtype:
    """``value`` as a dtype gpuinit can fill (float16, bfloat16, float32, float64).

    Raises:
        ArgumentError: any other dtype, or not a dtype; the message names ``where``.
    """
    try:
        dtype = as_dtype(value)
    except ArgumentError as exc:
        raise type(exc)(f"{where}: {exc}") from None
    if not is_float(dtype):
        names = ", ".join(d.name for d in float_dtypes())
        raise ArgumentError(f"{where}: dtype must be a float type gpuinit can fill ({names}), got "
                            f"{value!r}; pass dtype='float32' (or 'float16', 'bfloat16', 'float64')")
    return dtype


def is_real(dtype) -> bool:
    """Whether arrays of ``dtype`` hold real numbers (bool, integers, floats, bfloat16)."""
    dtype = np.dtype(dtype)
    return dtype.kind in "biuf" or is_bfloat16(dtype)


def assign(out, values) -> None:
    """``out[...] = values``, rounding to bfloat16 through float32 (the contract's one rounding
    rule for bfloat16, whatever ``values``' precision)."""
    if is_bfloat16(out.dtype) and np.asarray(values).dtype != np.float32:
        values = np.asarray(values, np.float32)
    out[...] = values
