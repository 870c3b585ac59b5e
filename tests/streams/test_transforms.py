"""The transforms' own log, sine/cosine and inverse normal CDF: accurate to a few ulp of the
compute type over their whole input range (the contract needs them identical across backends, which
tests/test_kernels.py checks; this file checks they are good functions)."""

import statistics

import numpy as np
import pytest

from gpuinit.streams import transforms
from gpuinit.streams.transforms import F32, F64


def ulps(got, exact, prec):
    """|got - exact| in units of the last place of the compute type at the exact value."""
    spacing = np.spacing(np.abs(exact).astype(prec.dtype)).astype(np.float64)
    return np.abs(got.astype(np.float64) - exact) / spacing


def unit_inputs(prec, n=1_000_000):
    """Every kind of u the Box-Muller and AS241 transforms pass to log: random, ends, the split."""
    rng = np.random.default_rng(1)
    if prec is F32:
        u = ((rng.integers(0, 2**32, n, dtype=np.uint64) + 1).astype(np.float64) * 2.0**-32).astype(np.float32)
    else:
        u = (rng.integers(0, 2**53, n, dtype=np.uint64) + 1).astype(np.float64) * 2.0**-53
    half = np.array(prec.sqrt_half, prec.dtype)
    edges = [1.0, 0.5, prec.sqrt_half, np.nextafter(half, 0), np.nextafter(half, 1), 2.0**-32,
             2.0**-53 if prec is F64 else 2.0**-24, np.nextafter(np.array(1.0, prec.dtype), 0)]
    return np.concatenate([u, np.array(edges, prec.dtype)])


def test_log_float32_is_within_three_ulp():
    u = unit_inputs(F32)
    assert ulps(transforms.log_unit(u, F32), np.log(u.astype(np.float64)), F32).max() <= 3


def test_log_float64_is_within_four_ulp_of_the_libm():
    u = unit_inputs(F64)
    got = transforms.log_unit(u, F64)
    assert ulps(got, np.log(u), F64).max() <= 4  # the libm's own error included
    assert got[u.size - 8] == 0.0  # log 1


@pytest.mark.parametrize("prec", [F32, F64])
def test_sincos_turns_over_the_whole_circle(prec):
    """Against the libm at the reduced argument (exact for float32, the libm's 1 ulp for float64)."""
    bits = prec.angle_bits
    rng = np.random.default_rng(2)
    quarter = 1 << (bits - 2)
    k = np.concatenate([rng.integers(0, 2**bits, 500_000, dtype=np.uint64),
                        np.array([0, 1, quarter // 2 - 1, quarter // 2, quarter, 2 * quarter, 3 * quarter,
                                  2**bits - 1], np.uint64)])
    cos_t, sin_t = transforms.sincos_turns(k, prec)
    cos_t, sin_t = cos_t.copy(), sin_t.copy()
    ki = k.astype(np.int64)
    j = (ki + (quarter >> 1)) >> (bits - 2)
    x = (ki - (j << (bits - 2))).astype(np.float64) * (prec.pi * 2.0 ** (1 - bits))
    q = j & 3
    c, s = np.cos(x), np.sin(x)
    exact_cos = np.select([q == 0, q == 1, q == 2, q == 3], [c, -s, -c, s])
    exact_sin = np.select([q == 0, q == 1, q == 2, q == 3], [s, c, -s, -c])
    # ulps at values near zero are tiny; measure there against the spacing at 2**-10
    floor = 2.0 ** -10
    for got, exact in ((cos_t, exact_cos), (sin_t, exact_sin)):
        assert ulps(got, np.where(np.abs(exact) < floor, floor, exact), prec)[np.abs(exact) >= floor].max() <= 3
        assert np.abs(got - exact)[np.abs(exact) < floor].max() <= 3 * np.spacing(prec.dtype.type(floor))
    # the reduction is exact: quarter turns are exactly 0 and +-1
    assert (cos_t[-8 + 4], sin_t[-8 + 4]) == (0.0, 1.0)  # k = quarter
    assert (cos_t[-8 + 5], sin_t[-8 + 5]) == (-1.0, 0.0)  # k = half a turn


def test_ndtri_matches_the_standard_library():
    p = np.concatenate([np.linspace(1e-12, 1 - 1e-12, 2001), [1e-300, 1e-100, 1e-20, 0.075, 0.925]])
    expected = np.array([statistics.NormalDist().inv_cdf(v) for v in p])
    assert np.allclose(transforms.ndtri(p), expected, rtol=1e-14, atol=1e-14)


def test_scratch_reuses_its_arrays():
    tmp = transforms.Scratch()
    a = tmp("x", 100, np.float32)
    b = tmp("x", 50, np.float64)  # fits in the same 400 bytes
    assert a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
    assert tmp("x", 1000, np.float32).size == 1000
