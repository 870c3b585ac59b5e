"""Seeds and keys: which stream each parameter draws from.

A parameter's key is ``SeedSequence(seed, spawn_key=tuple(path.encode("utf-8")))
.generate_state(2, uint64)`` (see :mod:`gpuinit.streams.spec`); :mod:`gpuinit.streams.seedseq`
computes it for many paths at once. Unseeded initializations take their seed from a global
counter (:func:`seed`).
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from functools import lru_cache

import numpy as np

from ..errors import ArgumentError, ArgumentTypeError

_seed_lock = threading.Lock()
_seed_state = {"seed": None, "count": 0}


def check_seed(value) -> int:
    """Validate a seed: a non-negative Python or NumPy integer.

    Raises:
        ArgumentTypeError: not an integer; ArgumentError: negative.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ArgumentTypeError(f"seed must be a non-negative integer, got {value!r} ({type(value).__name__}); "
                                "pass a whole number such as seed=0")
    if value < 0:
        raise ArgumentError(f"seed must be a non-negative integer, got {value!r}; pass a whole number "
                            "such as seed=0")
    return int(value)


def seed(value: int) -> None:
    """Seed gpuinit's global stream.

    After ``gpuinit.seed(n)``, the k-th ``initialize()`` (or unseeded ``nd.random`` call) that is
    given no explicit ``seed`` uses seed ``n + k``; ``initialize(seed=s)`` uses ``s`` and leaves the
    count alone. Without a call to ``seed``, ``n`` is drawn from the OS's entropy once per process.
    A call that fails hands its seed back, so it does not shift the seeds of the calls after it.
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


def give_back_seed(value: int) -> None:
    """Undo :func:`next_seed` for a call that failed, if no seed was taken since."""
    with _seed_lock:
        if _seed_state["seed"] is not None and _seed_state["seed"] + _seed_state["count"] - 1 == value:
            _seed_state["count"] -= 1


@contextmanager
def call_seed(value=None):
    """The seed of one call: ``value`` checked, or with ``None`` the next unseeded one
    (:func:`next_seed`), handed back (:func:`give_back_seed`) if the call fails.

    Example:
        >>> from gpuinit.streams.keys import call_seed
        >>> with call_seed(7) as seed_value:
        ...     seed_value
        7
    """
    if value is not None:
        yield check_seed(value)
        return
    value = next_seed()
    try:
        yield value
    except BaseException:
        give_back_seed(value)
        raise


@lru_cache(maxsize=65536)
def derive_key(seed_value: int, path: str) -> tuple[int, int]:
    """The 128-bit Philox key (two 64-bit words) of the stream for ``path`` under ``seed_value``."""
    words = np.random.SeedSequence(check_seed(seed_value), spawn_key=tuple(path.encode("utf-8")))
    k0, k1 = words.generate_state(2, np.uint64)
    return int(k0), int(k1)


def derive_keys(seed_value: int, paths) -> list[tuple[int, int]]:
    """:func:`derive_key` for many paths at once (the same keys; 10,000 paths in a few ms)."""
    keys = derive_key_array(seed_value, paths)
    return list(zip(keys[:, 0].tolist(), keys[:, 1].tolist()))


def derive_key_array(seed_value: int, paths) -> np.ndarray:
    """:func:`derive_keys` as an ``(n, 2)`` uint64 array."""
    from .seedseq import derive_keys as derive_many
    seed_value = check_seed(seed_value)
    paths = list(paths)
    if len(paths) < 8 or not all(paths):
        return np.array([derive_key(seed_value, path) for path in paths], np.uint64).reshape(-1, 2)
    return derive_many(seed_value, paths)
