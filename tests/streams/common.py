"""What the streams tests share: NumPy's Philox as the oracle, key strategies, fills and dtypes."""

import numpy as np
from hypothesis import strategies as st

from gpuinit import dtypes, streams
from gpuinit.streams import Fill

keys = st.tuples(st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1))
DTYPES = list(dtypes.float_dtypes())  # bfloat16 too where ml_dtypes is installed
FILLS = [Fill.uniform(-0.5, 2.0), Fill.normal(0.3, 1.7), Fill.truncated_normal(0.1, 0.5, -1.5, 2.5),
         Fill.constant(0.25)]


def numpy_philox(key, counter=0):
    """NumPy's own Philox4x64-10 for ``key`` from ``counter``: the oracle."""
    return np.random.Philox(key=np.array(key, dtype=np.uint64), counter=counter)


def gen(fill, key, n, dtype=np.float32, start=0, offset=0, counter=0):
    """Elements ``[start, start + n)`` of ``fill`` on stream ``key`` at word ``offset``, from the
    NumPy reference (:func:`gpuinit.streams.generate`)."""
    out = np.empty(n, dtype)
    streams.generate(out, fill, key, start, offset, counter)
    return out
