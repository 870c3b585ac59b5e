"""``numpy.random.SeedSequence(seed, spawn_key=...).generate_state(2, uint64)`` for many spawn keys at once.

Every parameter's stream key is the SeedSequence state of ``(seed, its path's bytes)``
(``gpuinit.streams.keys``). NumPy computes one in about 20 us of Python, which for a model of 10,000
parameters is 0.2 s, more than filling them on a GPU. The hash is O'Neill's ``seed_seq`` design as
NumPy implements it (``numpy/random/bit_generator.pyx``): a pool of four 32-bit words, each entropy
word mixed in with a multiplicative hash whose constant advances with every use, independently of
the data. So all keys of one seed share the seed's part of the work, and the spawn-key words can be
mixed in column by column for every path together, which is what :func:`derive_keys` does. The
tests compare it with ``numpy.random.SeedSequence`` over many seeds and paths.
"""

from __future__ import annotations

import numpy as np

MASK = 0xFFFFFFFF
POOL_SIZE = 4
XSHIFT = 16
INIT_A, MULT_A = 0x43B0D7E5, 0x931E8875
INIT_B, MULT_B = 0x8B51F9DD, 0x58F38DED
MIX_MULT_L, MIX_MULT_R = 0xCA01F9DD, 0x4973F715


def _words(value: int) -> list[int]:
    """An integer as 32-bit words, least significant first (``[0]`` for zero)."""
    out = [value & MASK]
    value >>= 32
    while value:
        out.append(value & MASK)
        value >>= 32
    return out


def _hash(value, const: int):
    """One hash of ``value`` (scalar or uint32 array) with the constant ``const``; the next constant."""
    if isinstance(value, np.ndarray):
        value = value ^ np.uint32(const)
        const = (const * MULT_A) & MASK
        value *= np.uint32(const)
        value ^= value >> np.uint32(XSHIFT)
        return value, const
    value = ((value ^ const) * ((const * MULT_A) & MASK)) & MASK
    return value ^ (value >> XSHIFT), (const * MULT_A) & MASK


def _mix(x, y):
    if isinstance(x, np.ndarray):
        r = x * np.uint32(MIX_MULT_L)
        r -= y * np.uint32(MIX_MULT_R)
        r ^= r >> np.uint32(XSHIFT)
        return r
    r = (MIX_MULT_L * x - MIX_MULT_R * y) & MASK
    return r ^ (r >> XSHIFT)


def derive_keys(seed: int, paths) -> np.ndarray:
    """Keys of ``paths`` under ``seed``: a ``(len(paths), 2)`` uint64 array, row ``i`` equal to
    ``SeedSequence(seed, spawn_key=tuple(paths[i].encode())).generate_state(2, np.uint64)``.

    Paths must be non-empty (an empty spawn key assembles its entropy differently).
    """
    encoded = [p.encode("utf-8") for p in paths]
    if any(not e for e in encoded):
        raise ValueError("derive_keys needs non-empty paths")
    n = len(encoded)
    if n == 0:
        return np.empty((0, 2), np.uint64)
    # The seed's words, padded to the pool size (as NumPy does when a spawn key follows).
    run = _words(seed)
    run += [0] * (POOL_SIZE - len(run))
    const = INIT_A
    pool = []
    for word in run[:POOL_SIZE]:
        h, const = _hash(word, const)
        pool.append(h)
    for src in range(POOL_SIZE):
        for dst in range(POOL_SIZE):
            if src != dst:
                h, const = _hash(pool[src], const)
                pool[dst] = _mix(pool[dst], h)
    for word in run[POOL_SIZE:]:
        for dst in range(POOL_SIZE):
            h, const = _hash(word, const)
            pool[dst] = _mix(pool[dst], h)
    # The paths' bytes, one entropy word each, column by column for every path together.
    lengths = np.array([len(e) for e in encoded])
    width = int(lengths.max())
    table = np.frombuffer(b"".join(e.ljust(width, b"\0") for e in encoded), np.uint8).reshape(n, width)
    state = [np.full(n, w, np.uint32) for w in pool]
    for col in range(width):
        active = lengths > col
        word = table[:, col].astype(np.uint32)
        for dst in range(POOL_SIZE):
            h, const = _hash(word, const)
            state[dst] = np.where(active, _mix(state[dst], h), state[dst])
    # generate_state(2, uint64): four 32-bit outputs, paired low word first.
    const = INIT_B
    out = []
    for i in range(2 * 2):
        value = state[i % POOL_SIZE] ^ np.uint32(const)
        const = (const * MULT_B) & MASK
        value *= np.uint32(const)
        value ^= value >> np.uint32(XSHIFT)
        out.append(value.astype(np.uint64))
    keys = np.empty((n, 2), np.uint64)
    keys[:, 0] = out[0] | (out[1] << np.uint64(32))
    keys[:, 1] = out[2] | (out[3] << np.uint64(32))
    return keys
