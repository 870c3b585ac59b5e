"""Argument checks for every public entry: one place, one wording.

Each check returns the argument normalized (``2.0`` -> ``2``, ``3`` -> ``(3, 3)``) or raises an
error that names where the argument was given, what it must be, what it was, and how to fix it:
``Conv2D 'conv0': strides must be a positive integer or a pair of them, got (1, 0); pass
strides=1 or strides=(2, 2)``. A wrong type raises :class:`~gpuinit.errors.ArgumentTypeError`
(also a ``TypeError``), a wrong value the ``error`` class given (an ``ArgumentError`` by default,
also a ``ValueError``).

Integers are Python or NumPy integers, or floats with an integral value; never bools (``True``
is not a size), strings or non-integral floats. Real numbers are finite.
"""

from __future__ import annotations

import math
import numbers
import re

import numpy as np

from .errors import ArgumentError, ArgumentTypeError


def _fix(hint: str | None) -> str:
    return f"; {hint}" if hint else ""


def _is_bool(value) -> bool:
    return isinstance(value, (bool, np.bool_))


def integer(value, what: str, where: str, *, minimum: int | None = None, error=ArgumentError,
            hint: str | None = None) -> int:
    """``value`` as an ``int``, at least ``minimum``.

    Raises:
        ArgumentTypeError: not an integer (a bool, a string, ``2.5``, an array).
        ``error``: below ``minimum``.
    """
    expected = ("a positive integer" if minimum == 1 else "a non-negative integer" if minimum == 0
                else f"an integer of at least {minimum}" if minimum is not None else "an integer")
    number = None
    if not _is_bool(value):
        if isinstance(value, (numbers.Integral, np.integer)):
            number = int(value)
        elif isinstance(value, (numbers.Real, np.floating)) and math.isfinite(value) and float(value).is_integer():
            number = int(value)
    if number is None:
        raise ArgumentTypeError(f"{where}: {what} must be {expected}, got {value!r} "
                                f"({type(value).__name__}){_fix(hint)}")
    if minimum is not None and number < minimum:
        raise error(f"{where}: {what} must be {expected}, got {value!r}{_fix(hint)}")
    return number


def positive_int(value, what: str, where: str, *, error=ArgumentError, hint: str | None = None) -> int:
    """``value`` as an ``int`` of at least 1 (see :func:`integer`)."""
    return integer(value, what, where, minimum=1, error=error, hint=hint)


def non_negative_int(value, what: str, where: str, *, error=ArgumentError, hint: str | None = None) -> int:
    """``value`` as an ``int`` of at least 0 (see :func:`integer`)."""
    return integer(value, what, where, minimum=0, error=error, hint=hint)


def int_tuple(value, length: int, what: str, where: str, *, minimum: int = 1, error=ArgumentError,
              hint: str | None = None) -> tuple[int, ...]:
    """An integer, or a sequence of ``length`` integers, each at least ``minimum``, as a tuple.

    ``3`` becomes ``(3,) * length``.
    """
    kind = "positive integer" if minimum == 1 else "non-negative integer" if minimum == 0 else \
        f"integer of at least {minimum}"
    expected = f"a {kind} or a {'pair' if length == 2 else f'tuple of {length}'} of them"
    hint = hint or f"pass {what}={max(minimum, 1)} or {what}={(max(minimum, 1),) * length}"
    if isinstance(value, (str, bytes)) or _is_bool(value):
        raise ArgumentTypeError(f"{where}: {what} must be {expected}, got {value!r}{_fix(hint)}")
    if isinstance(value, (numbers.Real, np.number)):
        return (integer(value, what, where, minimum=minimum, error=error, hint=hint),) * length
    try:
        items = tuple(value)
    except TypeError:
        raise ArgumentTypeError(f"{where}: {what} must be {expected}, got {value!r} "
                                f"({type(value).__name__}){_fix(hint)}") from None
    if len(items) != length:
        raise error(f"{where}: {what} must be {expected}, got {value!r} ({len(items)} values){_fix(hint)}")
    out = []
    for item in items:
        try:
            out.append(integer(item, what, where, minimum=minimum, error=error))
        except ArgumentError as exc:
            raise type(exc)(f"{where}: {what} must be {expected}, got {value!r}{_fix(hint)}") from None
    return tuple(out)


def real(value, what: str, where: str, *, minimum: float | None = None, above: float | None = None,
         maximum: float | None = None, below: float | None = None, error=ArgumentError,
         hint: str | None = None) -> float:
    """``value`` as a finite ``float``, within the bounds given (``above``/``below`` are strict).

    Raises:
        ArgumentTypeError: not a real number (a bool, a string, a complex number, an array).
        ``error``: NaN, infinite, or out of bounds.
    """
    if _is_bool(value) or not isinstance(value, (numbers.Real, np.integer, np.floating)):
        raise ArgumentTypeError(f"{where}: {what} must be a real number, got {value!r} "
                                f"({type(value).__name__}){_fix(hint)}")
    number = float(value)
    bounds = []
    if minimum is not None:
        bounds.append(f">= {minimum:g}")
    if above is not None:
        bounds.append(f"> {above:g}")
    if maximum is not None:
        bounds.append(f"<= {maximum:g}")
    if below is not None:
        bounds.append(f"< {below:g}")
    expected = "a finite number" + (f" {' and '.join(bounds)}" if bounds else "")
    if (not math.isfinite(number) or (minimum is not None and number < minimum)
            or (above is not None and number <= above) or (maximum is not None and number > maximum)
            or (below is not None and number >= below)):
        raise error(f"{where}: {what} must be {expected}, got {value!r}{_fix(hint)}")
    return number


def choice(value, options, what: str, where: str, *, error=ArgumentError, hint: str | None = None):
    """``value`` if it is one of ``options``: same type and equal (``True`` is not ``1``)."""
    options = tuple(options)
    for option in options:
        if type(value) is type(option) and value == option:
            return value
    raise error(f"{where}: {what} must be one of {options!r}, got {value!r}{_fix(hint)}")


def flag(value, what: str, where: str, *, hint: str | None = None) -> bool:
    """``value`` if it is a bool (Python or NumPy); ``0``/``1`` and strings are refused."""
    if not _is_bool(value):
        raise ArgumentTypeError(f"{where}: {what} must be True or False, got {value!r} "
                                f"({type(value).__name__}){_fix(hint)}")
    return bool(value)


def text(value, what: str, where: str, *, empty: bool = False, hint: str | None = None) -> str:
    """``value`` if it is a string (non-empty unless ``empty``)."""
    if not isinstance(value, str):
        raise ArgumentTypeError(f"{where}: {what} must be a string, got {value!r} "
                                f"({type(value).__name__}){_fix(hint)}")
    if not empty and not value:
        raise ArgumentError(f"{where}: {what} must not be empty{_fix(hint)}")
    return value


def pattern(value, what: str, where: str, *, error=ArgumentError) -> re.Pattern:
    """``value`` compiled as a regular expression."""
    text(value, what, where, empty=True)
    try:
        return re.compile(value)
    except re.error as exc:
        raise error(f"{where}: {what} {value!r} is not a valid regular expression: {exc}; "
                    "escape special characters with re.escape()") from None


def shape(value, what: str, where: str, *, positive: bool = False, error=ArgumentError,
          hint: str | None = None) -> tuple[int, ...]:
    """A shape: ``None`` (``()``), an integer, or a sequence of integers, as a tuple.

    Dimensions must be at least 0 (``0`` marks a dimension still unknown), or at least 1 with
    ``positive``. Floats are refused here, as NumPy refuses them in shapes.
    """
    if value is None:
        return ()
    kind = "positive" if positive else "non-negative"
    hint = hint or f"pass a tuple of {kind} integers such as (256, 20)"
    if isinstance(value, (numbers.Integral, np.integer)) and not _is_bool(value):
        value = (value,)
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise ArgumentTypeError(f"{where}: {what} must be a tuple of {kind} integers, got {value!r} "
                                f"({type(value).__name__}){_fix(hint)}")
    dims = tuple(value)
    for d in dims:
        if _is_bool(d) or not isinstance(d, (numbers.Integral, np.integer)):
            raise ArgumentTypeError(f"{where}: {what} must be a tuple of {kind} integers, got {value!r} "
                                    f"(an element is {type(d).__name__}){_fix(hint)}")
    if any(d < (1 if positive else 0) for d in dims):
        raise error(f"{where}: {what} must be a tuple of {kind} integers, got {value!r}{_fix(hint)}")
    return tuple(int(d) for d in dims)


def env_int(name: str, raw: str, *, minimum: int = 1) -> int:
    """The integer in environment variable ``name`` (its text ``raw``)."""
    try:
        value = int(raw.strip())
    except ValueError:
        value = None
    if value is None or value < minimum:
        raise ArgumentError(f"environment variable {name}={raw!r} must be an integer of at least {minimum}; "
                            f"set it to a number such as {name}=4, or unset it")
    return value
