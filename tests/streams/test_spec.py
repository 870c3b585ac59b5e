"""The stream contract's Fill (gpuinit.streams.spec): what a fill may be, how many stream words it
takes, and which dtypes it can fill without overflowing."""

import statistics

import numpy as np
import pytest

from gpuinit import GpuInitError, streams
from gpuinit.errors import ArgumentTypeError, InitializerError
from gpuinit.streams import FAMILIES, Fill

from .common import DTYPES, gen


def test_the_families_and_their_constructors():
    assert FAMILIES == ("constant", "uniform", "normal", "truncated_normal")
    fills = [Fill.constant(np.float32(0.5)), Fill.uniform(-1, 2), Fill.normal(np.int64(0), 3),
             Fill.truncated_normal(0, 1, -2, 2)]
    assert [f.family for f in fills] == list(FAMILIES)
    for f in fills:  # numbers are stored as Python floats, whatever they were given as
        assert all(type(v) is float for v in (f.a, f.b, f.lo, f.hi)), f
    assert (fills[1].a, fills[1].b) == (-1.0, 2.0)


@pytest.mark.parametrize("make,error,words", [
    (lambda: Fill("gamma"), InitializerError, "unknown fill family"),
    (lambda: Fill.uniform(2, 1), InitializerError, "low <= high"),
    (lambda: Fill.uniform(0, float("inf")), InitializerError, "must be finite"),
    (lambda: Fill.normal(float("nan"), 1), InitializerError, "must be finite"),
    (lambda: Fill.normal(0, -1), InitializerError, "std must be >= 0"),
    (lambda: Fill.truncated_normal(0, 1, 2, 2), InitializerError, "a < b"),
    (lambda: Fill.truncated_normal(0, 1, 1, -1), InitializerError, "a < b"),
    (lambda: Fill.constant(True), ArgumentTypeError, "value must be a real number"),
    (lambda: Fill.uniform("0", 1), ArgumentTypeError, "low must be a real number"),
    (lambda: Fill.normal(0, None), ArgumentTypeError, "std must be a real number"),
    (lambda: Fill.truncated_normal(0, 1, -2, 2j), ArgumentTypeError, "b must be a real number"),
], ids=["family", "low>high", "inf", "nan", "negative std", "a=b", "a>b", "bool", "str", "None", "complex"])
def test_a_fill_refuses_what_it_cannot_compute(make, error, words):
    with pytest.raises(error, match=words) as err:
        make()
    assert isinstance(err.value, GpuInitError)


def test_degenerate_fills_are_allowed_and_constant():
    key = streams.derive_key(0, "degenerate")
    assert np.all(gen(Fill.uniform(1.5, 1.5), key, 100) == 1.5)
    assert np.all(gen(Fill.normal(0.25, 0.0), key, 100, np.float64) == 0.25)


@pytest.mark.parametrize("fill", [Fill.uniform(-1, 1), Fill.normal(0, 1), Fill.truncated_normal(0, 1, -2, 2)],
                         ids=lambda f: f.family)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("n", [2, 6, 64])
def test_words_is_how_far_the_stream_advances(fill, dtype, n):
    """``n`` elements drawn, the next ``n`` drawn from word offset ``words(dtype, n)`` are the
    elements ``n .. 2n`` of the whole: what a custom initializer's sequential draws rely on."""
    key = streams.derive_key(1, "words")
    whole = gen(fill, key, 2 * n, dtype)
    after = gen(fill, key, n, dtype, offset=fill.words(dtype, n))
    assert np.array_equal(after.view(f"u{after.itemsize}"), whole[n:].view(f"u{after.itemsize}"))


def test_words_round_up_to_whole_words_and_pairs():
    assert Fill.uniform(0, 1).words(np.float32, 3) == 2  # two 32-bit halves per word
    assert Fill.uniform(0, 1).words(np.float64, 3) == 3
    assert Fill.normal(0, 1).words(np.float16, 3) == 2  # one word per pair
    assert Fill.normal(0, 1).words(np.float64, 3) == 4  # two words per pair
    assert Fill.truncated_normal(0, 1, -2, 2).words(np.float32, 3) == 3
    assert Fill.constant(1.0).words(np.float64, 1000) == 0


def test_check_refuses_dtypes_that_are_not_float():
    for dtype in (np.int32, np.uint8, np.complex64):
        with pytest.raises(InitializerError, match="parameter 'w' has dtype .*fills need a float dtype"):
            Fill.uniform(0, 1).check(np.dtype(dtype), "parameter 'w'")


@pytest.mark.parametrize("fill,dtype,fits", [
    (Fill.constant(65504.0), np.float16, True), (Fill.constant(65520.0), np.float16, False),
    (Fill.normal(0, 9000), np.float16, True),  # reaches 6.67 sigma = 60,030
    (Fill.normal(0, 10_000), np.float16, False),
    (Fill.normal(0, 1e308), np.float64, False), (Fill.normal(0, 1e307), np.float64, True),  # 8.58 sigma
    (Fill.truncated_normal(0, 20_000, -3, 3), np.float16, True),
    (Fill.truncated_normal(0, 20_000, -3, 4), np.float16, False),
    (Fill.uniform(-1e38, 1e38), np.float32, True),
    (Fill.uniform(-2e38, 2e38), np.float32, False),  # the width, 4e38, is computed in float32
    (Fill.uniform(-2e38, 2e38), np.float64, True),
], ids=str)
def test_check_refuses_exactly_the_fills_that_would_overflow(fill, dtype, fits):
    if fits:
        fill.check(np.dtype(dtype), "parameter 'w'")
        values = gen(fill, streams.derive_key(2, "overflow"), 200_000, dtype)
        assert np.isfinite(values.astype(np.float64)).all()
    else:
        with pytest.raises(InitializerError, match=r"parameter 'w' \(.*\): .* would be infinite"):
            fill.check(np.dtype(dtype), "parameter 'w'")


def test_check_accepts_a_wide_float16_uniform_whose_values_fit():
    fill = Fill.uniform(-40_000, 40_000)
    values = gen(fill, streams.derive_key(3, "wide"), 100_000, np.float16)
    assert np.isfinite(values).all()
    fill.check(np.dtype(np.float16), "parameter 'w'")


def test_describe_names_the_family_and_its_numbers():
    assert Fill.uniform(-0.07, 0.07).describe() == "uniform(-0.07, 0.07)"
    assert Fill.normal(0, 0.01).describe() == "normal(0, 0.01)"
    assert Fill.constant(1).describe() == "constant(1)"
    assert Fill.truncated_normal(0, 1, -2, 2).describe() == "truncated_normal(0, 1, [-2, 2])"


def test_cdf_bounds_are_the_normal_cdf_at_the_bounds():
    lo, hi = Fill.truncated_normal(0.3, 2.0, -1.5, 2.5).cdf_bounds()
    assert lo == pytest.approx(statistics.NormalDist().cdf(-1.5), rel=1e-14)
    assert hi == pytest.approx(statistics.NormalDist().cdf(2.5), rel=1e-14)
