"""The NumPy reference (gpuinit.streams.reference): raw_words and generate against NumPy's own
Philox as the oracle, element ranges, and the distributions generate produces."""

import math
import statistics

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from gpuinit import streams
from gpuinit.streams import Fill

from .common import DTYPES, FILLS, gen, keys, numpy_philox


@given(key=keys, first=st.integers(0, 1000), count=st.integers(0, 50))
def test_raw_words_equal_numpy_philox(key, first, count):
    expected = numpy_philox(key).random_raw(first + count)[first:]
    assert np.array_equal(streams.raw_words(key, first, count), expected)


@given(key=keys, low=st.integers(0, 2**64 - 1), high=st.sampled_from([0, 1, 2**64 - 1, 2**192 - 1]),
       first=st.integers(0, 40), count=st.integers(1, 40))
def test_counter_carries_across_words_like_numpy(key, low, high, first, count):
    """Starting counters next to 64-bit carry boundaries behave as NumPy's 256-bit counter."""
    for counter in ((high << 64) | low, (high << 64) | (2**64 - 1), 2**256 - 1):
        expected = numpy_philox(key, counter).random_raw(first + count)[first:]
        assert np.array_equal(streams.raw_words(key, first, count, counter), expected)


@given(key=keys, n=st.integers(1, 300))
def test_unit_uniform_float32_equals_numpy_generator_random(key, n):
    expected = np.random.Generator(numpy_philox(key)).random(n, dtype=np.float32)
    assert np.array_equal(gen(Fill.uniform(0, 1), key, n), expected)


@given(key=keys, n=st.integers(1, 300))
def test_unit_uniform_float64_equals_numpy_generator_random(key, n):
    expected = np.random.Generator(numpy_philox(key)).random(n, dtype=np.float64)
    assert np.array_equal(gen(Fill.uniform(0, 1), key, n, np.float64), expected)


def test_uniform_float16_is_the_float32_value_rounded():
    key = streams.derive_key(3, "w")
    f32 = gen(Fill.uniform(-2, 3), key, 999, np.float32)
    assert np.array_equal(gen(Fill.uniform(-2, 3), key, 999, np.float16), f32.astype(np.float16))


def test_uniform_mapping_is_separately_rounded_float32():
    key = streams.derive_key(5, "w")
    u = gen(Fill.uniform(0, 1), key, 1000)
    low, high = -0.3, 0.7
    expected = np.float32(low) + np.float32(high - low) * u
    assert expected.dtype == np.float32
    assert np.array_equal(gen(Fill.uniform(low, high), key, 1000), expected)


@settings(max_examples=60)
@given(key=keys, fill=st.sampled_from(FILLS), dtype=st.sampled_from(DTYPES),
       n=st.integers(1, 200), start=st.integers(0, 199), length=st.integers(0, 200),
       offset=st.sampled_from([0, 4, 8, 1000]))
def test_any_element_range_equals_that_slice_of_the_whole(key, fill, dtype, n, start, length, offset):
    whole = gen(fill, key, start + length + n, dtype, offset=offset)
    part = gen(fill, key, length, dtype, start=start, offset=offset)
    assert np.array_equal(part, whole[start:start + length], equal_nan=True)


# --- distributions (fixed keys: these cannot flake) ---------------------------------------------

N = 400_000


@pytest.mark.parametrize("dtype", [np.float32, np.float64])  # the two compute types
def test_normal_moments(dtype):
    z = gen(Fill.normal(0.5, 2.0), streams.derive_key(11, "n"), N, dtype).astype(np.float64)
    assert abs(z.mean() - 0.5) < 5 * 2.0 / math.sqrt(N)
    assert abs(z.std() - 2.0) < 0.01
    # Kolmogorov-Smirnov distance to N(0.5, 4); the 0.1% critical value is 1.95 / sqrt(N).
    s = np.sort((z - 0.5) / 2.0)
    cdf = np.array([statistics.NormalDist().cdf(v) for v in s[::97]])
    assert np.max(np.abs(cdf - (np.arange(N)[::97] + 0.5) / N)) < 1.95 / math.sqrt(N) + 1e-4
    # pairs are independent: the cosine and sine halves are uncorrelated
    assert abs(np.corrcoef(z[0::2], z[1::2])[0, 1]) < 5 / math.sqrt(N / 2)


def test_normal_float32_reaches_the_tails():
    """u1 has 32 bits, so float32 normals reach sqrt(-2 log 2**-32) = 6.66 sigma, and the tail
    mass beyond 4 sigma is as the normal distribution says (6.3e-5)."""
    z = gen(Fill.normal(0.0, 1.0), streams.derive_key(15, "tails"), 4_000_000, np.float32)
    assert np.abs(z).max() <= 6.67
    beyond = np.count_nonzero(np.abs(z) > 4.0)
    assert abs(beyond - 4_000_000 * 6.334e-5) < 5 * math.sqrt(4_000_000 * 6.334e-5)


def test_truncated_normal_bounds_and_moments():
    fill = Fill.truncated_normal(1.0, 0.5, -2.0, 2.0)
    x = gen(fill, streams.derive_key(12, "t"), N, np.float64)
    assert x.min() >= 1.0 - 2 * 0.5 and x.max() <= 1.0 + 2 * 0.5
    assert abs(x.mean() - 1.0) < 5 * 0.5 / math.sqrt(N)
    assert abs(x.std() - 0.5 * 0.87962566103423978) < 0.003


def test_truncated_normal_one_sided_is_in_range():
    x = gen(Fill.truncated_normal(0, 1, 0.5, 3.0), streams.derive_key(13, "t"), N, np.float32)
    assert x.min() >= 0.5 and x.max() <= 3.0


def test_uniform_range_and_mean():
    x = gen(Fill.uniform(-0.07, 0.07), streams.derive_key(14, "u"), N)
    assert x.min() >= -0.07 and x.max() < 0.07
    assert abs(float(x.mean())) < 5 * 0.07 / math.sqrt(3 * N)
