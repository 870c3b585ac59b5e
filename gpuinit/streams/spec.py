"""The stream contract: the numbers every backend must produce, defined once, and :class:`Fill`.

This docstring is the specification the CUDA kernels (``gpuinit/kernels/``) follow;
:mod:`gpuinit.streams.reference` is its NumPy implementation.

Generator
    Philox4x64-10 exactly as ``numpy.random.Philox``: a 256-bit counter (four 64-bit words, least
    significant first) and a 128-bit key. The counter is incremented by one *before* each block, so
    block ``b`` of a stream whose counter starts at ``c`` is ``philox(c + b + 1, key)`` and yields the
    64-bit words ``4b .. 4b+3`` (``v0`` first). A 32-bit draw takes the low half of a word first,
    then the high half: 32-bit word ``j`` is ``(w[j // 2] >> (32 * (j % 2))) & 0xffffffff``.

Keys
    A parameter's key is ``SeedSequence(seed, spawn_key=tuple(path.encode("utf-8")))
    .generate_state(2, uint64)``, where ``path`` is the parameter's structural path inside the block
    ``initialize`` was called on (``"0.weight"``, ``"encoder.layers.3.bias"``). Its stream starts at
    counter 0. So the numbers depend on the seed and the architecture, never on the order layers
    were built in, their global names, or when initialization happened.

Element ``i`` of a parameter (``i`` in row-major order), drawn at word offset ``o`` (0 for the
parameter's own initializer; later draws of a custom initializer start at the next multiple of 4):

uniform(low, high)
    float32, float16 and bfloat16: ``u = (u32[2*o + i] >> 8) * 2**-24`` (exact in float32), then
    ``x = f32(low) + f32(f32(high - low) * u)`` with each operation rounded to float32 (no fused
    multiply-add); float16 and bfloat16 round that float32 to nearest-even. So unit-uniform float32 values equal
    ``numpy.random.Generator(numpy.random.Philox(key=rng_key)).random(n, dtype=numpy.float32)`` bit for
    bit. float64: ``u = (w[o + i] >> 11) * 2**-53``, then ``x = low + (high - low) * u`` in float64.
normal(mean, std)
    Box–Muller over pairs, no rejection, in a *compute type*: float32 for float16, bfloat16 and
    float32 outputs, float64 for float64 outputs, every operation rounded to it (no fused multiply-add).
    float32: pair ``m = i // 2`` takes one word ``w = w[o + m]``: ``u1 = f32(lo32(w) + 1) * 2**-32``
    in (0, 1] (the sum exact, rounded once) and the 24-bit angle ``k = hi32(w) >> 8``. float64: pair
    ``m`` takes ``a = w[o + 2m]`` and ``b = w[o + 2m + 1]``: ``u1 = ((a >> 11) + 1) * 2**-53`` and the
    53-bit angle ``k = b >> 11``. Then ``r = sqrt(-2 log u1)``, ``t = 2 pi k / 2**bits``; element
    ``2m`` is ``r cos t`` and ``2m + 1`` is ``r sin t``; ``x = mean + std * z`` in the compute type
    (``mean`` and ``std`` rounded to it first), rounded once to the output type. ``log``, ``cos``
    and ``sin`` are not a libm's but the fixed operation sequences of :mod:`gpuinit.streams.transforms`.
truncated_normal(mean, std, a, b)  (``a``, ``b`` in units of ``std``)
    Inverse CDF in float64, one word per element, no rejection: ``u = ((w[o + i] >> 12) + 0.5) *
    2**-52`` in (0, 1), ``p = Phi(a) + u * (Phi(b) - Phi(a))`` with ``Phi(a)``, ``Phi(b)`` computed once
    in float64 from ``erfc``, ``z = ndtri(p)`` by Wichura's AS241 (PPND16) rational approximation
    evaluated in Horner form, its ``log`` that of :mod:`gpuinit.streams.transforms`, clamped to ``[a, b]``;
    ``x = mean + std * z`` in float64, rounded once to the output type (bfloat16: to float32,
    then to bfloat16, as for constants).
constant(value)
    ``value`` converted to the output type; no words.

Every family is bit-identical across backends: the contract uses only IEEE operations that every
backend rounds the same way (``+ - * /``, ``sqrt``, conversions), never a libm function. One
exception: CuPy compiles kernels with ``-ftz=true``, so a float32 intermediate below 2**-126 would
flush to zero on the GPU; the fills reach one only with a std or a range under 1e-28.

Any element range ``[start, stop)`` of a parameter can be generated alone and equals that slice of
the whole: element ``i`` depends on ``(key, o, i)`` only. That is what lets the CPU fill in bounded
chunks on every core and the GPU fill with any launch shape.

A fill's numbers are finite (``std >= 0``, ``low <= high``, ``a < b``), and a fill is refused for
an output type it would overflow (:meth:`Fill.check`): no weight is ever NaN or infinite.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

import numpy as np

from .. import dtypes
from ..errors import ArgumentTypeError, InitializerError

FAMILIES = ("constant", "uniform", "normal", "truncated_normal")

# The contract's version: raised whenever a change to this specification changes any number a seed
# gives. Checkpoints record it, so a file says which contract its initial values came from.
CONTRACT_VERSION = 1

# The largest |z| a standard normal draw can reach: with a float32 compute type the radius draw
# has 32 bits, sqrt(-2 log 2**-32) = 6.66; with float64, 53 bits, sqrt(-2 log 2**-53) = 8.57.
_NORMAL_REACH = {4: 6.67, 8: 8.58}


@dataclass(frozen=True)
class Fill:
    """What a fill computes, independent of backend: a distribution family and its numbers.

    ``constant``: ``a`` is the value. ``uniform``: ``[a, b)``. ``normal``: mean ``a``, std ``b``.
    ``truncated_normal``: mean ``a``, std ``b``, bounds ``lo``/``hi`` in units of ``b``.

    Raises:
        InitializerError: an unknown family, a number that is not finite, ``b < a`` for a
            uniform, a negative std, or ``lo >= hi``.
    """

    family: str
    a: float = 0.0
    b: float = 1.0
    lo: float = -2.0
    hi: float = 2.0

    def __post_init__(self):
        if self.family not in FAMILIES:
            raise InitializerError(f"unknown fill family {self.family!r}; expected one of {FAMILIES}")
        names = {"constant": ("value",), "uniform": ("low", "high"), "normal": ("mean", "std"),
                 "truncated_normal": ("mean", "std", "a", "b")}[self.family]
        for name, value in zip(names, (self.a, self.b, self.lo, self.hi)):
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
                raise ArgumentTypeError(f"{self.family} fill: {name} must be a real number, got {value!r}")
            if not math.isfinite(value):
                raise InitializerError(f"{self.family} fill: {name} must be finite, got {value!r}; "
                                       "NaN or infinite numbers would fill the weights with NaN or inf")
        if self.family == "uniform" and not self.a <= self.b:
            raise InitializerError(f"uniform fill needs low <= high, got low={self.a!r}, high={self.b!r}; "
                                   "swap them")
        if self.family in ("normal", "truncated_normal") and self.b < 0:
            raise InitializerError(f"{self.family} fill: std must be >= 0, got {self.b!r}")
        if self.family == "truncated_normal" and not self.lo < self.hi:
            raise InitializerError(f"truncated normal needs a < b, got a={self.lo!r}, b={self.hi!r}")

    @staticmethod
    def constant(value: float) -> "Fill":
        return Fill("constant", _real(value))

    @staticmethod
    def uniform(low: float, high: float) -> "Fill":
        return Fill("uniform", _real(low), _real(high))

    @staticmethod
    def normal(mean: float, std: float) -> "Fill":
        return Fill("normal", _real(mean), _real(std))

    @staticmethod
    def truncated_normal(mean: float, std: float, lo: float, hi: float) -> "Fill":
        return Fill("truncated_normal", _real(mean), _real(std), _real(lo), _real(hi))

    def words(self, dtype, n: int) -> int:
        """How many 64-bit stream words ``n`` elements of ``dtype`` consume."""
        if self.family == "constant":
            return 0
        if self.family == "uniform":
            return (n + 1) // 2 if np.dtype(dtype).itemsize <= 4 else n
        if self.family == "normal":
            pairs = (n + 1) // 2
            return pairs if np.dtype(dtype).itemsize <= 4 else 2 * pairs
        return n

    def cdf_bounds(self) -> tuple[float, float]:
        """``(Phi(lo), Phi(hi))`` of a truncated normal, in float64."""
        return _phi(self.lo), _phi(self.hi)

    def reach(self, dtype) -> float:
        """The largest magnitude this fill can produce in ``dtype``, before rounding to it."""
        if self.family == "constant":
            return abs(self.a)
        if self.family == "uniform":
            return max(abs(self.a), abs(self.b))
        if self.family == "normal":
            return abs(self.a) + self.b * _NORMAL_REACH[min(8, max(4, np.dtype(dtype).itemsize))]
        return abs(self.a) + self.b * max(abs(self.lo), abs(self.hi))

    def check(self, dtype, what: str) -> None:
        """Refuse to fill ``what`` (``"parameter 'w'"``) of ``dtype`` if it is not a float dtype
        or some value would overflow it.

        Raises:
            InitializerError: names ``what``, the fill, its reach and the dtype's largest value.
        """
        verdict = _fits(self, dtype)
        if verdict == "not float":
            raise InitializerError(f"{what} has dtype {dtype}; fills need a float dtype "
                                   f"({', '.join(d.name for d in dtypes.float_dtypes())}): pass one of those")
        if verdict == "overflow":
            dtype = np.dtype(dtype)
            reach = self.reach(dtype)
            largest = float(np.asarray(np.finfo(np.float32 if dtypes.is_bfloat16(dtype) else dtype).max))
            raise InitializerError(
                f"{what} ({dtype}): {self.describe()} reaches {reach:g}, beyond the largest "
                f"{dtype} value ({largest:g}), so its weights would be infinite; use a smaller scale "
                "or a wider dtype")

    def describe(self) -> str:
        """``uniform(-0.07, 0.07)``-style text."""
        if self.family == "constant":
            return f"constant({self.a:g})"
        if self.family == "uniform":
            return f"uniform({self.a:.6g}, {self.b:.6g})"
        if self.family == "normal":
            return f"normal({self.a:g}, {self.b:.6g})"
        return f"truncated_normal({self.a:g}, {self.b:.6g}, [{self.lo:g}, {self.hi:g}])"


@lru_cache(maxsize=4096)
def _fits(fill: Fill, dtype) -> str:
    """``"ok"``, ``"not float"``, or ``"overflow"`` if some value ``fill`` can produce is not
    finite in ``dtype`` (or in its compute type).

    Cached: a model's parameters share a few fills, and this runs once per parameter.
    """
    dtype = np.dtype(dtype)
    if not dtypes.is_float(dtype):
        return "not float"
    reach = fill.reach(dtype)
    compute = np.float32 if dtype.itemsize <= 4 else np.float64
    with np.errstate(over="ignore"):
        finite = np.isfinite(compute(reach)) and np.isfinite(np.asarray(compute(reach)).astype(dtype))
        if fill.family == "uniform":  # the width, high - low, is a value of the compute type
            finite = finite and np.isfinite(compute(fill.b - fill.a))
    return "ok" if finite else "overflow"


def _real(value):
    """Numbers as floats; anything else is left for ``__post_init__`` to refuse with its name."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        return value
    return float(value)


def _phi(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


class FillJobs(NamedTuple):
    """Many fill jobs as columns, one list per field of :class:`FillJob`: a materialization of
    thousands of parameters builds these without an object per job."""

    offset: list
    dtype: list
    count: list
    key: list
    fill: list
    start: list
    word_offset: list

    @staticmethod
    def of(jobs) -> "FillJobs":
        """``jobs`` (:class:`FillJob` objects, or already columns) as columns."""
        if isinstance(jobs, FillJobs):
            return jobs
        jobs = list(jobs)
        if not jobs:
            return FillJobs([], [], [], [], [], [], [])
        return FillJobs(*(list(column) for column in zip(*jobs)))

    def __len__(self) -> int:
        return len(self.offset)


class FillJob(NamedTuple):
    """Elements ``[start, start + count)`` of a fill on stream ``key``, stored as ``dtype`` from
    byte ``offset`` of an arena (GPU kernels and CPU driver alike take these).

    ``word_offset`` is where the fill starts in its stream (a multiple of 4; 0 for a parameter's
    own initializer).
    """

    offset: int
    dtype: np.dtype
    count: int
    key: tuple
    fill: Fill
    start: int = 0
    word_offset: int = 0
