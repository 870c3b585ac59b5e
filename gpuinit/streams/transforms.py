"""The arithmetic of the stream transforms: log, sine/cosine and the inverse normal CDF.

The normal families need ``log``, ``sin``, ``cos``; a libm's last bit differs between NumPy, glibc
and CUDA, so weights would differ by an ulp between CPU and GPU. gpuinit computes them instead
with the short, fixed sequences of IEEE operations below (additions, multiplications, one
division, bit moves), each rounded to the compute type, never fused. Every backend that follows
the same sequence produces the same bits; ``gpuinit/kernels/philox.cuh`` is the CUDA copy, tested
against this file bit for bit.

Compute types: :data:`F32` for float16, bfloat16 and float32 outputs (fast on GPUs, where float64
runs at a fraction of the float32 rate), :data:`F64` for float64 outputs. Accuracy, measured
against NumPy's libm over the whole input range (``tests/streams/test_transforms.py``): ``log_unit`` and
``sincos_turns`` are within 3 ulp of the compute type (float64 ``log``: within 4 ulp of the libm,
whose own error is included).

The polynomials are Taylor series, short enough on the reduced ranges that truncation is below
half an ulp: ``log(m) = 2 atanh(s)``, ``s = (m - 1)/(m + 1)``, ``m`` in ``[sqrt(1/2), sqrt(2))``
(``|s| <= 0.172``), and ``sin``/``cos`` on ``[-pi/4, pi/4)`` after an exact quadrant reduction of
an integer angle.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _hex(*values: str) -> tuple[float, ...]:
    return tuple(float.fromhex(v) for v in values)


@dataclass(frozen=True)
class Precision:
    """A compute type and the constants of its transforms (the header has the same hex literals)."""

    dtype: np.dtype
    uint: np.dtype         # unsigned integer of the same width (bit moves)
    sint: np.dtype         # signed integer of the same width (exponents, angles)
    mantissa_bits: int
    bias: int
    angle_bits: int        # bits of a Box-Muller angle: the angle is 2 pi k / 2**angle_bits
    log_coefs: tuple       # 2/(2j+1), highest degree first, polynomial in s*s
    sin_coefs: tuple       # (-1)**j/(2j+1)!, highest degree first, polynomial in x*x (times x)
    cos_coefs: tuple       # (-1)**j/(2j)!, highest degree first, polynomial in x*x
    ln2_hi: float          # few bits: e * ln2_hi is exact for every exponent e
    ln2_lo: float
    sqrt_half: float       # where the log's mantissa range starts
    pi: float

    def scalar(self, value: float):
        return self.dtype.type(value)


F32 = Precision(
    np.dtype(np.float32), np.dtype(np.uint32), np.dtype(np.int32), 23, 127, 24,
    log_coefs=_hex("0x1.c71c72p-3", "0x1.24924ap-2", "0x1.99999ap-2", "0x1.555556p-1", "0x1p+1"),
    sin_coefs=_hex("0x1.71de3ap-19", "-0x1.a01a02p-13", "0x1.111112p-7", "-0x1.555556p-3", "0x1p+0"),
    cos_coefs=_hex("-0x1.27e4fcp-22", "0x1.a01a02p-16", "-0x1.6c16c2p-10", "0x1.555556p-5", "-0x1p-1",
                   "0x1p+0"),
    ln2_hi=float.fromhex("0x1.62e4p-1"), ln2_lo=float.fromhex("0x1.7f7d1cp-20"),
    sqrt_half=float.fromhex("0x1.6a09e6p-1"), pi=float.fromhex("0x1.921fb6p+1"))

F64 = Precision(
    np.dtype(np.float64), np.dtype(np.uint64), np.dtype(np.int64), 52, 1023, 53,
    log_coefs=_hex("0x1.8618618618618p-4", "0x1.af286bca1af28p-4", "0x1.e1e1e1e1e1e1ep-4",
                   "0x1.1111111111111p-3", "0x1.3b13b13b13b14p-3", "0x1.745d1745d1746p-3",
                   "0x1.c71c71c71c71cp-3", "0x1.2492492492492p-2", "0x1.999999999999ap-2",
                   "0x1.5555555555555p-1", "0x1p+1"),
    sin_coefs=_hex("0x1.952c77030ad4ap-49", "-0x1.ae7f3e733b81fp-41", "0x1.6124613a86d09p-33",
                   "-0x1.ae64567f544e4p-26", "0x1.71de3a556c734p-19", "-0x1.a01a01a01a01ap-13",
                   "0x1.1111111111111p-7", "-0x1.5555555555555p-3", "0x1p+0"),
    cos_coefs=_hex("0x1.ae7f3e733b81fp-45", "-0x1.93974a8c07c9dp-37", "0x1.1eed8eff8d898p-29",
                   "-0x1.27e4fb7789f5cp-22", "0x1.a01a01a01a01ap-16", "-0x1.6c16c16c16c17p-10",
                   "0x1.5555555555555p-5", "-0x1p-1", "0x1p+0"),
    ln2_hi=float.fromhex("0x1.62e42feep-1"), ln2_lo=float.fromhex("0x1.a39ef35793c76p-33"),
    sqrt_half=float.fromhex("0x1.6a09e667f3bcdp-1"), pi=float.fromhex("0x1.921fb54442d18p+1"))


def compute_precision(dtype) -> Precision:
    """The compute type of a normal-family fill with output ``dtype``."""
    return F32 if np.dtype(dtype).itemsize <= 4 else F64


class Scratch:
    """Named temporaries, reused from one chunk to the next.

    A normal fill of 10**5 elements needs some twenty temporaries; made afresh for each chunk they
    are big enough for malloc to map and unmap them every time, and the page faults then cost more
    than the arithmetic (2.5x on this module's normal fill). A worker keeps one ``Scratch``; the
    arrays the functions below return live in it and are overwritten by the next call.
    """

    def __init__(self):
        self._buffers: dict = {}

    def __call__(self, name: str, n: int, dtype) -> np.ndarray:
        dtype = np.dtype(dtype)
        nbytes = n * dtype.itemsize
        buf = self._buffers.get(name)
        if buf is None or buf.size < nbytes:
            buf = self._buffers[name] = np.empty(max(nbytes, 1), np.uint8)
        return buf[:nbytes].view(dtype)


def horner(coefs, x: np.ndarray, prec: Precision, out: np.ndarray | None = None) -> np.ndarray:
    """``((c0 x + c1) x + c2) ...``, each operation rounded to ``prec``; ``out`` must not be ``x``."""
    acc = np.empty(x.shape, prec.dtype) if out is None else out
    acc.fill(prec.scalar(coefs[0]))
    for c in coefs[1:]:
        acc *= x
        acc += prec.scalar(c)
    return acc


def log_unit(u: np.ndarray, prec: Precision, tmp: Scratch | None = None) -> np.ndarray:
    """Natural log of ``u``, normal numbers in ``(0, 1]`` of ``prec``'s type (a ``tmp`` array).

    ``u = 2**e m`` with ``m`` in ``[sqrt(1/2), sqrt(2))``, split by integer moves on the bits:
    ``b = bits(u) + (bits(1) - bits(sqrt_half))``, ``e = (b >> mantissa_bits) - bias``,
    ``m = from_bits((b & mantissa_mask) + bits(sqrt_half))``. Then ``s = (m - 1)/(m + 1)`` and
    ``log u = e ln2_hi + (e ln2_lo + s P(s s))``.
    """
    tmp = tmp or Scratch()
    n, uint = u.size, prec.uint.type
    half_bits = _bits(prec.sqrt_half, prec)
    b = tmp("log.b", n, prec.uint)
    np.add(np.ascontiguousarray(u).view(prec.uint), uint((prec.bias << prec.mantissa_bits) - half_bits),
           out=b)
    e = tmp("log.e", n, prec.sint)
    np.right_shift(b, uint(prec.mantissa_bits), out=e.view(prec.uint))
    e -= prec.sint.type(prec.bias)
    b &= uint((1 << prec.mantissa_bits) - 1)
    b += uint(half_bits)
    m = b.view(prec.dtype)
    s = tmp("log.s", n, prec.dtype)
    np.subtract(m, prec.scalar(1.0), out=s)
    m += prec.scalar(1.0)
    s /= m
    s2 = tmp("log.s2", n, prec.dtype)
    np.multiply(s, s, out=s2)
    p = horner(prec.log_coefs, s2, prec, out=tmp("log.p", n, prec.dtype))
    p *= s
    result = tmp("log.out", n, prec.dtype)
    np.copyto(result, e, casting="unsafe")  # exact: |e| < 2**11
    lo = s2
    np.multiply(result, prec.scalar(prec.ln2_lo), out=lo)
    lo += p
    result *= prec.scalar(prec.ln2_hi)
    result += lo
    return result


def _bits(value: float, prec: Precision) -> int:
    return int(np.array(value, prec.dtype).view(prec.uint))


def sincos_turns(k: np.ndarray, prec: Precision, tmp: Scratch | None = None):
    """``(cos t, sin t)`` for ``t = 2 pi k / 2**B``, ``k`` integers in ``[0, 2**B)``, ``B = angle_bits``.

    Exact reduction to a quadrant ``q`` and ``x`` in ``[-pi/4, pi/4)``: ``j = (k + 2**(B-3)) >>
    (B-2)``, ``d = k - j 2**(B-2)``, ``x = d * (pi / 2**(B-1))``, ``q = j mod 4``; then ``sin x = x
    S(x x)``, ``cos x = C(x x)`` and the quadrant's rotation (exact sign flips and swaps). The two
    arrays returned live in ``tmp``.
    """
    tmp = tmp or Scratch()
    n, b, sint, uint = k.size, prec.angle_bits, prec.sint.type, prec.uint.type
    kk = tmp("sc.k", n, prec.sint)
    np.copyto(kk, k, casting="unsafe")  # k < 2**53 fits
    j = tmp("sc.j", n, prec.sint)
    np.add(kk, sint(1 << (b - 3)), out=j)
    j >>= sint(b - 2)
    d = tmp("sc.d", n, prec.sint)
    np.left_shift(j, sint(b - 2), out=d)
    np.subtract(kk, d, out=d)
    x = tmp("sc.x", n, prec.dtype)
    np.copyto(x, d, casting="unsafe")  # exact: |d| <= 2**(B-3)
    x *= prec.scalar(prec.pi * 2.0 ** (1 - b))
    x2 = tmp("sc.x2", n, prec.dtype)
    np.multiply(x, x, out=x2)
    s = horner(prec.sin_coefs, x2, prec, out=tmp("sc.sin", n, prec.dtype))
    s *= x
    c = horner(prec.cos_coefs, x2, prec, out=tmp("sc.cos", n, prec.dtype))
    # The quadrant's rotation on the bits: swap cos and sin for odd q, flip cos's sign for q in
    # {1, 2} and sin's for q in {2, 3} (what selection and negation do, without masked passes).
    q = j.view(prec.uint)
    q &= uint(3)
    sign_shift = uint(8 * prec.dtype.itemsize - 2)  # moves bit 1 to the sign bit
    cb, sb = c.view(prec.uint), s.view(prec.uint)
    swap, t = kk.view(prec.uint), d.view(prec.uint)
    np.bitwise_and(q, uint(1), out=swap)
    swap *= uint(np.iinfo(prec.uint).max)
    np.bitwise_xor(cb, sb, out=t)
    swap &= t
    cb ^= swap
    sb ^= swap
    np.add(q, uint(1), out=t)
    t &= uint(2)
    t <<= sign_shift
    cb ^= t
    np.bitwise_and(q, uint(2), out=t)
    t <<= sign_shift
    sb ^= t
    return c, s


def box_muller(words: np.ndarray, prec: Precision, tmp: Scratch | None = None) -> np.ndarray:
    """Standard normals, two per pair, interleaved (``z[2m]``: cosine, ``z[2m+1]``: sine).

    ``F32``: pair ``m`` takes word ``w = words[m]``: ``u1 = f32(lo32(w) + 1) * 2**-32`` (the sum exact,
    rounded once), ``k = hi32(w) >> 8``. ``F64``: pair ``m`` takes ``a = words[2m]``, ``b = words[2m+1]``:
    ``u1 = ((a >> 11) + 1) * 2**-53``, ``k = b >> 11``. Then ``r = sqrt(-2 log u1)`` and
    ``(r cos t, r sin t)`` for ``t = 2 pi k / 2**B``. The array returned lives in ``tmp``.
    """
    tmp = tmp or Scratch()
    if prec is F32:
        pairs = words.size
        lo32 = tmp("bm.lo32", pairs, np.uint32)
        np.copyto(lo32, words, casting="unsafe")  # keeps the low half
        lo = tmp("bm.z", 2 * pairs, np.float32).view(np.float64)  # z's memory, free until the end
        np.copyto(lo, lo32)
        lo += 1.0
        u1 = tmp("bm.u1", pairs, np.float32)
        np.copyto(u1, lo, casting="same_kind")
        u1 *= np.float32(2.0 ** -32)
        k = tmp("bm.k", pairs, np.uint32)
        np.right_shift(words, np.uint64(40), out=k, casting="unsafe")
    else:
        pairs = words.size // 2
        a = tmp("bm.a", pairs, np.uint64)
        np.right_shift(words[0::2], np.uint64(11), out=a)
        u1 = tmp("bm.u1", pairs, np.float64)
        np.copyto(u1, a, casting="unsafe")  # exact: < 2**53
        u1 += 1.0
        u1 *= 2.0 ** -53
        k = tmp("bm.k", pairs, np.uint64)
        np.right_shift(words[1::2], np.uint64(11), out=k)
    r = log_unit(u1, prec, tmp)
    r *= prec.scalar(-2.0)
    np.sqrt(r, out=r)
    cos_t, sin_t = sincos_turns(k, prec, tmp)
    z = tmp("bm.z", 2 * pairs, prec.dtype)
    np.multiply(r, cos_t, out=z[0::2])
    np.multiply(r, sin_t, out=z[1::2])
    return z


# Wichura, "Algorithm AS 241: The percentage points of the normal distribution", Applied
# Statistics 37(3), 1988: PPND16's coefficients, highest degree first.
_AS241_A = (2.5090809287301226727e+3, 3.3430575583588128105e+4, 6.7265770927008700853e+4,
            4.5921953931549871457e+4, 1.3731693765509461125e+4, 1.9715909503065514427e+3,
            1.3314166789178437745e+2, 3.3871328727963666080e+0)
_AS241_B = (5.2264952788528545610e+3, 2.8729085735721942674e+4, 3.9307895800092710610e+4,
            2.1213794301586595867e+4, 5.3941960214247511077e+3, 6.8718700749205790830e+2,
            4.2313330701600911252e+1, 1.0)
_AS241_C = (7.74545014278341407640e-4, 2.27238449892691845833e-2, 2.41780725177450611770e-1,
            1.27045825245236838258e+0, 3.64784832476320460504e+0, 5.76949722146069140550e+0,
            4.63033784615654529590e+0, 1.42343711074968357734e+0)
_AS241_D = (1.05075007164441684324e-9, 5.47593808499534494600e-4, 1.51986665636164571966e-2,
            1.48103976427480074590e-1, 6.89767334985100004550e-1, 1.67638483018380384940e+0,
            2.05319162663775882187e+0, 1.0)
_AS241_E = (2.01033439929228813265e-7, 2.71155556874348757815e-5, 1.24266094738807843860e-3,
            2.65321895265761230930e-2, 2.96560571828504891230e-1, 1.78482653991729133580e+0,
            5.46378491116411436990e+0, 6.65790464350110377720e+0)
_AS241_F = (2.04426310338993978564e-15, 1.42151175831644588870e-7, 1.84631831751005468180e-5,
            7.86869131145613259100e-4, 1.48753612908506148525e-2, 1.36929880922735805310e-1,
            5.99832206555887937690e-1, 1.0)


def ndtri(p: np.ndarray, tmp: Scratch | None = None) -> np.ndarray:
    """Inverse of the standard normal CDF for ``p`` in (0, 1), float64, by AS241 (PPND16); a ``tmp`` array.

    The tails' ``log`` is :func:`log_unit`, so every backend gets the same bits. The central
    rational function is evaluated everywhere (cheaper than gathering the 85% that need it), then
    the tails, gathered, overwrite their elements.
    """
    tmp = tmp or Scratch()
    p = np.ascontiguousarray(p, dtype=np.float64)
    n = p.size
    z = tmp("nd.z", n, np.float64)
    q = tmp("nd.q", n, np.float64)
    np.subtract(p, 0.5, out=q)
    r = tmp("nd.r", n, np.float64)
    np.multiply(q, q, out=r)
    np.subtract(0.180625, r, out=r)
    np.multiply(q, horner(_AS241_A, r, F64, out=tmp("nd.num", n, np.float64)), out=z)
    z /= horner(_AS241_B, r, F64, out=tmp("nd.den", n, np.float64))
    tail = np.flatnonzero(np.abs(q) > 0.425)
    if tail.size:
        qt, pt = q[tail], p[tail]
        r = np.where(qt <= 0.0, pt, 1.0 - pt)
        r = np.sqrt(-log_unit(r, F64, tmp))
        near = r <= 5.0
        zt = np.empty_like(r)
        rn = r[near] - 1.6
        zt[near] = horner(_AS241_C, rn, F64) / horner(_AS241_D, rn, F64)
        rf = r[~near] - 5.0
        zt[~near] = horner(_AS241_E, rf, F64) / horner(_AS241_F, rf, F64)
        zt[qt < 0.0] *= -1.0
        z[tail] = zt
    return z
