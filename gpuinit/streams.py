"""Random streams: the numbers every backend must produce, defined once.

This docstring is the specification the CUDA kernels (``gpuinit/kernels/``) follow; the NumPy code
below is its reference implementation.

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
    and ``sin`` are not a libm's but the fixed operation sequences of :mod:`gpuinit.transforms`.
truncated_normal(mean, std, a, b)  (``a``, ``b`` in units of ``std``)
    Inverse CDF in float64, one word per element, no rejection: ``u = ((w[o + i] >> 12) + 0.5) *
    2**-52`` in (0, 1), ``p = Phi(a) + u * (Phi(b) - Phi(a))`` with ``Phi(a)``, ``Phi(b)`` computed once
    in float64 from ``erfc``, ``z = ndtri(p)`` by Wichura's AS241 (PPND16) rational approximation
    evaluated in Horner form, its ``log`` that of :mod:`gpuinit.transforms`, clamped to ``[a, b]``;
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
"""

from __future__ import annotations

import math
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from . import dtypes, transforms
from .errors import GpuInitError, InitializerError

FAMILIES = ("constant", "uniform", "normal", "truncated_normal")

# Elements per chunk when filling on the CPU: each worker's temporaries stay near 1 MiB for a
# uniform float32 fill and 6 MiB for a normal one, so a fill's memory beyond its output stays far
# under the 64 MiB bound whatever the parameter size; ~10 us of set-up per chunk is negligible.
CHUNK_ELEMENTS = 1 << 17


@dataclass(frozen=True)
class Fill:
    """What a fill computes, independent of backend: a distribution family and its parameters.

    ``constant``: ``a`` is the value. ``uniform``: ``[a, b)``. ``normal``: mean ``a``, std ``b``.
    ``truncated_normal``: mean ``a``, std ``b``, bounds ``lo``/``hi`` in units of ``b``.
    """

    family: str
    a: float = 0.0
    b: float = 1.0
    lo: float = -2.0
    hi: float = 2.0

    def __post_init__(self):
        if self.family not in FAMILIES:
            raise InitializerError(f"unknown fill family {self.family!r}; expected one of {FAMILIES}")
        if self.family == "truncated_normal" and not self.lo < self.hi:
            raise InitializerError(f"truncated normal needs a < b, got a={self.lo!r}, b={self.hi!r}")

    @staticmethod
    def constant(value: float) -> "Fill":
        return Fill("constant", float(value))

    @staticmethod
    def uniform(low: float, high: float) -> "Fill":
        return Fill("uniform", float(low), float(high))

    @staticmethod
    def normal(mean: float, std: float) -> "Fill":
        return Fill("normal", float(mean), float(std))

    @staticmethod
    def truncated_normal(mean: float, std: float, lo: float, hi: float) -> "Fill":
        return Fill("truncated_normal", float(mean), float(std), float(lo), float(hi))

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


def _phi(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


# --- seeds and keys ---------------------------------------------------------------------------

_seed_lock = threading.Lock()
_seed_state = {"seed": None, "count": 0}


def check_seed(value) -> int:
    """Validate a seed: a non-negative Python or NumPy integer."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 0:
        raise GpuInitError(f"seed must be a non-negative integer, got {value!r}")
    return int(value)


def seed(value: int) -> None:
    """Seed gpuinit's global stream.

    After ``gpuinit.seed(n)``, the k-th ``initialize()`` (or unseeded ``nd.random`` call) that is
    given no explicit ``seed`` uses seed ``n + k``; ``initialize(seed=s)`` uses ``s`` and leaves the
    count alone. Without a call to ``seed``, ``n`` is drawn from the OS's entropy once per process.
    """
    value = check_seed(value)
    with _seed_lock:
        _seed_state["seed"] = value
        _seed_state["count"] = 0


def next_seed() -> int:
    """The seed for the next unseeded initialization or draw (see :func:`seed`)."""
    with _seed_lock:
        if _seed_state["seed"] is None:
            _seed_state["seed"] = int(np.random.SeedSequence().entropy) % (1 << 63)
        value = _seed_state["seed"] + _seed_state["count"]
        _seed_state["count"] += 1
        return value


@lru_cache(maxsize=65536)
def derive_key(seed_value: int, path: str) -> tuple[int, int]:
    """The 128-bit Philox key (two 64-bit words) of the stream for ``path`` under ``seed_value``."""
    words = np.random.SeedSequence(check_seed(seed_value), spawn_key=tuple(path.encode("utf-8")))
    k0, k1 = words.generate_state(2, np.uint64)
    return int(k0), int(k1)


def derive_keys(seed_value: int, paths) -> list[tuple[int, int]]:
    """:func:`derive_key` for many paths at once (the same keys; 10,000 paths in a few ms)."""
    from .seedseq import derive_keys as derive_many
    seed_value = check_seed(seed_value)
    paths = list(paths)
    if len(paths) < 8 or not all(paths):
        return [derive_key(seed_value, path) for path in paths]
    keys = derive_many(seed_value, paths)
    return list(zip(keys[:, 0].tolist(), keys[:, 1].tolist()))


# --- the reference generator ------------------------------------------------------------------

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
        tmp: temporaries to reuse (a worker's :class:`gpuinit.transforms.Scratch`).
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


# --- the chunked, threaded CPU driver ---------------------------------------------------------

_pool_lock = threading.Lock()
_pool: list = []


def cpu_workers() -> int:
    """Threads used to fill on the CPU: ``GPUINIT_NUM_THREADS``, else the usable cores."""
    env = os.environ.get("GPUINIT_NUM_THREADS")
    if env:
        return max(1, int(env))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def _executor() -> ThreadPoolExecutor:
    with _pool_lock:
        if not _pool:
            _pool.append(ThreadPoolExecutor(cpu_workers(), thread_name_prefix="gpuinit-fill"))
        return _pool[0]


def fill_many(jobs, progress=None) -> None:
    """Fill NumPy arrays in bounded chunks on every core.

    Args:
        jobs: iterable of ``(out, fill, key, offset)``, optionally with a fifth item ``start``:
            ``out`` is a C-contiguous NumPy array written in place, element ``i`` of its flat view
            being element ``start + i`` (default ``start`` 0) of the stream (a shard of a larger
            parameter when ``start`` > 0).
        progress: optional ``fn(nbytes)`` called as each chunk of ``nbytes`` is done.
    """
    # Pieces of at most CHUNK_ELEMENTS elements, packed into tasks of about that many elements
    # each, so that thousands of small parameters cost a few tasks rather than one each.
    tasks, batch, size = [], [], 0
    for out, fill, key, offset, *rest in jobs:
        start = int(rest[0]) if rest else 0
        flat = out.reshape(-1)
        if fill.family == "constant":
            dtypes.assign(flat, fill.a)
            continue
        for s in range(0, flat.size, CHUNK_ELEMENTS):
            e = min(flat.size, s + CHUNK_ELEMENTS)
            batch.append((flat[s:e], fill, key, start + s, offset))
            size += e - s
            if size >= CHUNK_ELEMENTS:
                tasks.append(batch)
                batch, size = [], 0
    if batch:
        tasks.append(batch)

    # One Scratch per running task, handed back for the next; dropped when this call returns.
    spare, spare_lock = [], threading.Lock()

    def run(task):
        with spare_lock:
            tmp = spare.pop() if spare else transforms.Scratch()
        try:
            for out, fill, key, start, offset in task:
                generate(out, fill, key, start, offset, tmp=tmp)
        finally:
            with spare_lock:
                spare.append(tmp)
        if progress:
            progress(sum(piece[0].nbytes for piece in task))

    if len(tasks) <= 1 or cpu_workers() == 1:
        for task in tasks:
            run(task)
        return
    futures = [_executor().submit(run, task) for task in tasks]
    try:
        for fut in futures:
            fut.result()
    finally:
        for fut in futures:
            fut.cancel()


# --- streams for custom initializers ----------------------------------------------------------

_local = threading.local()


class Stream:
    """A parameter's stream, drawn from in order by custom initializers.

    Each draw starts at the next multiple of four words after the previous one, so a custom
    initializer's numbers depend only on the parameter's key and the sequence of its own draws.
    """

    def __init__(self, key: tuple[int, int]):
        self.key = (int(key[0]), int(key[1]))
        self.offset = 0

    def draw(self, fill: Fill, shape, dtype, xp=np):
        """A new array of ``shape`` filled from this stream (on ``xp``'s device)."""
        dtype = np.dtype(dtype)
        n = int(np.prod(shape, dtype=np.int64))
        out = xp.empty(shape, dtype)
        if xp is np:
            fill_many([(out, fill, self.key, self.offset)])
        else:  # on the current CUDA device, with the kernels that reproduce this module
            from .device import Device
            from .kernels import fill_many as gpu_fill_many
            gpu_fill_many(Device("cuda", out.device.id), [(out, fill, self.key, self.offset)])
        self.offset += -(-fill.words(dtype, n) // 4) * 4
        return out

    def __enter__(self):
        stack = getattr(_local, "stack", None)
        if stack is None:
            stack = _local.stack = []
        stack.append(self)
        return self

    def __exit__(self, *exc):
        _local.stack.pop()


def active_stream() -> Stream | None:
    """The stream of the parameter being initialized by a custom initializer, if any."""
    stack = getattr(_local, "stack", None)
    return stack[-1] if stack else None


def active_or_new_stream(label: str) -> Stream:
    """The active stream; outside one, a fresh stream keyed by the next global seed and ``label``."""
    return active_stream() or Stream(derive_key(next_seed(), label))
