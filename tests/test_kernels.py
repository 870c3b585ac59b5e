"""The CUDA sources: they compile to PTX, and their device functions, built for the host, agree
with the NumPy reference (gpuinit.streams) over random keys, counters, offsets and lengths."""

import ctypes
import pathlib
import shutil
import subprocess

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from gpuinit import streams
from gpuinit.streams import Fill

KERNELS = pathlib.Path(streams.__file__).resolve().parent / "kernels"
u64 = ctypes.c_uint64
FAMILY = {"uniform": 1, "normal": 2, "truncated_normal": 3}


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    gxx = shutil.which("g++")
    if gxx is None:
        pytest.skip("g++ is not installed")
    lib = tmp_path_factory.mktemp("host") / "gi_host.so"
    subprocess.run([gxx, "-O2", "-shared", "-fPIC", "-ffp-contract=off", "-o", str(lib),
                    str(KERNELS / "host.cpp")], check=True)
    so = ctypes.CDLL(str(lib))
    so.gi_raw_words.argtypes = [u64, u64, ctypes.POINTER(u64), u64, u64, ctypes.c_void_p]
    for name in ("gi_fill_f32", "gi_fill_f64"):
        getattr(so, name).argtypes = [ctypes.c_int, u64, u64, u64, u64, u64] + [ctypes.c_double] * 6 + [ctypes.c_void_p]
    return so


def host_fill(so, fill, key, n, dtype, start=0, offset=0):
    out = np.empty(n, dtype)
    pa, pb = fill.cdf_bounds() if fill.family == "truncated_normal" else (0.0, 0.0)
    fn = so.gi_fill_f32 if out.dtype == np.float32 else so.gi_fill_f64
    fn(FAMILY[fill.family], key[0], key[1], start, offset, n, fill.a, fill.b, fill.lo, fill.hi, pa, pb,
       out.ctypes.data)
    return out


keys = st.tuples(st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1))


@settings(max_examples=50)
@given(key=keys, low=st.integers(0, 2**64 - 1), high=st.integers(0, 2**192 - 1),
       first=st.integers(0, 2**20), count=st.integers(1, 64))
def test_philox_words_equal_numpy(host, key, low, high, first, count):
    for counter in ((high << 64) | low, (high << 64) | (2**64 - 1), 2**256 - 1, 0):
        words = [(counter >> (64 * i)) & (2**64 - 1) for i in range(4)]
        out = np.empty(count, np.uint64)
        host.gi_raw_words(key[0], key[1], (u64 * 4)(*words), first, count, out.ctypes.data)
        assert np.array_equal(out, streams.raw_words(key, first, count, counter))


@settings(max_examples=40)
@given(key=keys, dtype=st.sampled_from([np.float32, np.float64]), start=st.integers(0, 10**6),
       n=st.integers(1, 300), offset=st.sampled_from([0, 4, 1000]),
       low=st.floats(-3, 3), width=st.floats(1e-3, 10))
def test_uniform_is_bit_identical(host, key, dtype, start, n, offset, low, width):
    fill = Fill.uniform(low, low + width)
    ref = np.empty(n, dtype)
    streams.generate(ref, fill, key, start, offset)
    assert np.array_equal(host_fill(host, fill, key, n, dtype, start, offset), ref)


def ulp_distance_f32(a, b):
    ia = a.view(np.int32).astype(np.int64)
    ib = b.view(np.int32).astype(np.int64)
    ia = np.where(ia < 0, -(ia & 0x7FFFFFFF), ia)
    ib = np.where(ib < 0, -(ib & 0x7FFFFFFF), ib)
    return np.abs(ia - ib)


@pytest.mark.parametrize("fill", [Fill.normal(0.0, 1.0), Fill.normal(0.5, 0.02),
                                  Fill.truncated_normal(0.0, 1.0, -2.0, 2.0),
                                  Fill.truncated_normal(1.0, 0.3, -0.5, 3.0)])
def test_normal_families_within_one_ulp_in_float32(host, fill):
    """log/cos/sin may differ in the last bit between libms; after rounding to float32 the
    results differ by at most one unit in the last place, and almost never."""
    key = streams.derive_key(2024, "kernel-check")
    n = 200_000
    ref = np.empty(n, np.float32)
    streams.generate(ref, fill, key, 12345, 8)
    got = host_fill(host, fill, key, n, np.float32, 12345, 8)
    dist = ulp_distance_f32(got, ref)
    assert dist.max() <= 1
    assert (dist > 0).mean() < 1e-3


def test_ndtri_is_the_same_algorithm(host):
    fill = Fill.truncated_normal(0.0, 1.0, -6.0, 6.0)  # reaches every branch of AS241
    key = streams.derive_key(7, "ndtri")
    ref = np.empty(50_000)
    streams.generate(ref, fill, key)
    got = host_fill(host, fill, key, 50_000, np.float64)
    assert np.allclose(got, ref, rtol=4e-15, atol=4e-15)


@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
def test_kernels_compile_to_ptx(tmp_path, arch):
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("nvcc is not installed")
    for source in sorted(KERNELS.glob("*.cu")):
        out = tmp_path / f"{source.stem}_{arch}.ptx"
        subprocess.run([nvcc, "-ptx", f"-arch={arch}", "-std=c++17", "--fmad=false", "-o", str(out),
                        str(source)], check=True, capture_output=True)
        assert ".entry" in out.read_text()
