"""Draws in sequence from one stream: what custom initializers and ``nd.random`` use.

A built-in initializer declares its fill and the engine runs it; a custom one (a Gluon
``_init_weight`` override) fills its array in Python and may draw random arrays as it goes. Those
draws come from the parameter's own stream (:class:`Stream`, made active by the lifecycle while
the hook runs), so custom initializers give the same numbers for the same seed and architecture
too. Outside a hook, each draw takes a fresh stream from the next global seed.
"""

from __future__ import annotations

import threading

import numpy as np

from . import checks, dtypes
from .device import cpu
from .engine import fill_arrays
from .streams import Fill, derive_key, next_seed

_local = threading.local()


class Stream:
    """A parameter's stream, drawn from in order.

    Each draw starts at the next multiple of four words after the previous one, so a custom
    initializer's numbers depend only on the parameter's key and the sequence of its own draws.
    """

    def __init__(self, key: tuple[int, int]):
        self.key = (int(key[0]), int(key[1]))
        self.offset = 0

    def draw(self, fill: Fill, shape, dtype, device=None):
        """A new array of ``shape`` filled from this stream, on ``device`` (default the CPU).

        Raises:
            ArgumentError: a bad shape; InitializerError: a dtype the fill cannot produce or would
                overflow.
        """
        shape = checks.shape(shape, "shape", "random draw")
        dtype = dtypes.as_dtype(dtype)
        fill.check(dtype, "a random draw")
        device = device or cpu()
        n = int(np.prod(shape, dtype=np.int64))
        with device.activate():
            out = device.xp.empty(shape, dtype)
            fill_arrays(device, [(out, fill, self.key, self.offset)])
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
