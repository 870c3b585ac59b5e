"""The stream contract's reference implementation, on NumPy.

:func:`raw_words` is Philox4x64-10 exactly as ``numpy.random.Philox`` (NumPy is the oracle the
tests compare it with); :func:`generate` turns words into any element range of a fill, as
:mod:`gpuinit.streams.spec` defines. The CUDA kernels are tested against this module bit for bit.
"""

from __future__ import annotations

import sys
import threading

import numpy as np

from .. import dtypes
from ..errors import InitializerError
from . import transforms
from .spec import Fill

def raw_words(key: tuple[int, int], first: int, count: int, counter: int = 0) -> np.ndarray:
    """64-bit words ``[first, first + count)`` of the stream ``(key, counter)``, as uint64."""
    if count <= 0:
        return np.empty(0, np.uint64)
    b0 = first // 4
    b1 = (first + count - 1) // 4
    start = (counter + b0) % (1 << 256)
    # One Philox per thread, repositioned by setting its state (1.4 us) rather than built anew
    # (6.4 us): that is most of the cost of a small parameter's fill.
    bitgen = getattr(_philox, "bitgen", None)
    if bitgen is None:
        bitgen = _philox.bitgen = np.random.Philox(key=np.zeros(2, np.uint64))
    bitgen.state = {"bit_generator": "Philox",
                    "state": {"counter": np.array([(start >> (64 * i)) & _WORD for i in range(4)], np.uint64),
                              "key": np.array(key, dtype=np.uint64)},
                    "buffer": np.zeros(4, np.uint64), "buffer_pos": 4, "has_uint32": 0, "uinteger": 0}
    words = bitgen.random_raw((b1 - b0 + 1) * 4)
    skip = first - 4 * b0
    return words[skip:skip + count]


_philox = threading.local()
_WORD = (1 << 64) - 1


def _halves(words: np.ndarray) -> np.ndarray:
    """The 32-bit words of ``words``, low half of each first."""
    if sys.byteorder == "little":
        return words.view(np.uint32)
    out = np.empty(2 * words.size, np.uint32)
    out[0::2] = words & 0xFFFFFFFF
    out[1::2] = words >> 32
    return out


def generate(out: np.ndarray, fill: Fill, key, start: int = 0, offset: int = 0, counter: int = 0,
             tmp: transforms.Scratch | None = None) -> None:
    """Write elements ``[start, start + out.size)`` of ``fill`` on stream ``key`` into ``out``.

    Args:
        out: a 1-D contiguous NumPy array of float16, bfloat16, float32 or float64; written in place.
        fill: the distribution.
        key: the stream's key, two 64-bit words.
        start: index of the first element to produce.
        offset: the stream word offset the fill starts at (0 for an initializer's own fill).
        counter: the stream's starting 256-bit counter (0 for every parameter).
        tmp: temporaries to reuse (a worker's :class:`gpuinit.streams.transforms.Scratch`).
    """
    n = out.size
    dtype = out.dtype
    if fill.family == "constant":
        dtypes.assign(out, fill.a)
        return
    if not dtypes.is_float(dtype):
        raise InitializerError(f"random fills need a float16, bfloat16, float32 or float64 array, got {dtype}")
    if n == 0:
        return
    if fill.family == "uniform":
        if dtype.itemsize <= 4:
            h0 = 2 * offset + start
            w0 = h0 // 2
            words = raw_words(key, w0, (h0 + n + 1) // 2 - w0, counter)
            halves = _halves(words)[h0 - 2 * w0: h0 - 2 * w0 + n]
            np.right_shift(halves, 8, out=halves)
            # float32 output: compute in place, no temporary of the chunk's size
            x = out if dtype == np.float32 else np.empty(n, np.float32)
            x[...] = halves
            x *= np.float32(2.0 ** -24)
            x *= np.float32(fill.b - fill.a)
            x += np.float32(fill.a)
            if x is not out:
                out[...] = x
            return
        x = np.right_shift(raw_words(key, offset + start, n, counter), 11).astype(np.float64)
        x *= 2.0 ** -53
        x *= fill.b - fill.a
        x += fill.a
        out[...] = x
        return
    if fill.family == "normal":
        prec = transforms.compute_precision(dtype)
        per_pair = 1 if prec is transforms.F32 else 2
        m0, m1 = start // 2, (start + n - 1) // 2
        words = raw_words(key, offset + per_pair * m0, per_pair * (m1 - m0 + 1), counter)
        z = transforms.box_muller(words, prec, tmp)[start - 2 * m0: start - 2 * m0 + n]
        z *= prec.scalar(fill.b)
        z += prec.scalar(fill.a)
        out[...] = z
        return
    # truncated_normal
    tmp = tmp or transforms.Scratch()
    words = raw_words(key, offset + start, n, counter)
    words >>= np.uint64(12)
    u = tmp("tn.u", n, np.float64)
    np.copyto(u, words, casting="unsafe")  # exact: < 2**52
    u += 0.5
    u *= 2.0 ** -52
    pa, pb = fill.cdf_bounds()
    u *= pb - pa
    u += pa
    z = transforms.ndtri(u, tmp)
    np.clip(z, fill.lo, fill.hi, out=z)
    z *= fill.b
    z += fill.a
    dtypes.assign(out, z)
