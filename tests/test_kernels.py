"""The CUDA sources: they compile to PTX, and their device functions, built for the host, agree
with the NumPy reference (gpuinit.streams) over random keys, counters, offsets and lengths."""

import ctypes
import pathlib
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from gpuinit import dtypes, streams
from gpuinit import kernels as kernels_pkg
from gpuinit.streams import Fill

KERNELS = pathlib.Path(kernels_pkg.__file__).resolve().parent
u64 = ctypes.c_uint64
ALL_DTYPES = list(dtypes.float_dtypes())  # bfloat16 too where ml_dtypes is installed
FAMILY = {"constant": 0, "uniform": 1, "normal": 2, "truncated_normal": 3}


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
    so.gi_fill.argtypes = [ctypes.c_int, ctypes.c_int, u64, u64, u64, u64, u64] + [ctypes.c_double] * 6 + [ctypes.c_void_p]
    so.gi_half_from_double.argtypes = [ctypes.c_void_p, u64, ctypes.c_void_p]
    so.gi_run_table.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_int, u64, ctypes.c_void_p]
    so.gi_half_from_float.argtypes = [ctypes.c_void_p, u64, ctypes.c_void_p]
    so.gi_log_f32.argtypes, so.gi_log_f32.restype = [ctypes.c_float], ctypes.c_float
    so.gi_log_f64.argtypes, so.gi_log_f64.restype = [ctypes.c_double], ctypes.c_double
    so.gi_sincos_f32.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
    so.gi_sincos_f64.argtypes = [ctypes.c_longlong, ctypes.c_void_p, ctypes.c_void_p]
    return so


def code(dtype):
    """How host.cpp names an output type: its itemsize, but 3 for bfloat16."""
    return 3 if dtypes.is_bfloat16(dtype) else np.dtype(dtype).itemsize


def host_fill(so, fill, key, n, dtype, offset=0, start=0):
    """Elements [start, start + n), computed group by group by the kernels' own fill_group."""
    out = np.empty(n, dtype)
    pa, pb = fill.cdf_bounds() if fill.family == "truncated_normal" else (0.0, 0.0)
    so.gi_fill(FAMILY[fill.family], code(out.dtype), key[0], key[1], offset, start, n, fill.a, fill.b,
               fill.lo, fill.hi, pa, pb, out.ctypes.data)
    return out


def reference(fill, key, n, dtype, offset=0, start=0):
    out = np.empty(n, dtype)
    streams.generate(out, fill, key, start, offset)
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


@settings(max_examples=80)
@given(key=keys, dtype=st.sampled_from(ALL_DTYPES), n=st.integers(1, 300),
       start=st.integers(0, 10**6), offset=st.sampled_from([0, 4, 1000]), low=st.floats(-3, 3),
       width=st.floats(1e-3, 10))
def test_uniform_is_bit_identical_for_any_element_range(host, key, dtype, n, start, offset, low, width):
    fill = Fill.uniform(low, low + width)
    assert np.array_equal(host_fill(host, fill, key, n, dtype, offset, start),
                          reference(fill, key, n, dtype, offset, start))


@settings(max_examples=40)
@given(key=keys, fill=st.sampled_from([Fill.normal(0.3, 1.2), Fill.truncated_normal(0, 1, -1, 2)]),
       dtype=st.sampled_from(ALL_DTYPES), n=st.integers(1, 100),
       start=st.integers(0, 10**6))
def test_normal_ranges_equal_slices_of_the_whole(host, key, fill, dtype, n, start):
    """Shards computed by the kernels' code agree with the same elements of one whole fill."""
    whole = host_fill(host, fill, key, n + 7, dtype, 0, start)
    assert np.array_equal(host_fill(host, fill, key, n, dtype, 0, start + 3), whole[3:3 + n])


@settings(max_examples=30)
@given(key=keys, dtype=st.sampled_from(ALL_DTYPES), n=st.integers(1, 70),
       value=st.floats(-1e3, 1e3))
def test_every_length_and_tail_group(host, key, dtype, n, value):
    """Lengths that end inside a Philox block write exactly n elements and nothing past them."""
    fill = Fill.normal(value, 2.0)
    out = np.full(n + 9, 7.0, dtype)
    pa = pb = 0.0
    host.gi_fill(2, code(out.dtype), key[0], key[1], 0, 0, n, fill.a, fill.b, fill.lo, fill.hi, pa, pb,
                 out.ctypes.data)
    assert np.all(out[n:] == 7.0)
    assert np.array_equal(np.isfinite(out[:n]), np.ones(n, bool))


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("fill", [Fill.normal(0.0, 1.0), Fill.normal(0.5, 0.02),
                                  Fill.truncated_normal(0.0, 1.0, -2.0, 2.0),
                                  Fill.truncated_normal(1.0, 0.3, -0.5, 3.0),
                                  Fill.truncated_normal(0.0, 1.0, -6.0, 6.0)])  # every branch of AS241
def test_normal_families_are_bit_identical(host, fill, dtype):
    """No libm in the contract: the kernels' arithmetic gives NumPy's bits, float64 included."""
    key = streams.derive_key(2024, "kernel-check")
    n = 200_001
    got, expected = host_fill(host, fill, key, n, dtype, 8), reference(fill, key, n, dtype, 8)
    assert np.array_equal(got.view(f"u{got.itemsize}"), expected.view(f"u{got.itemsize}"))


def test_log_and_sincos_are_the_same_functions(host):
    """The header's transforms against gpuinit.transforms, at edges and at random inputs."""
    from gpuinit.streams import transforms
    from gpuinit.streams.transforms import F32, F64
    rng = np.random.default_rng(3)
    for prec, log_fn, sincos_fn, ctype, itype in (
            (F32, host.gi_log_f32, host.gi_sincos_f32, ctypes.c_float, ctypes.c_int),
            (F64, host.gi_log_f64, host.gi_sincos_f64, ctypes.c_double, ctypes.c_longlong)):
        half = np.array(prec.sqrt_half, prec.dtype)
        u = np.concatenate([np.array([1.0, 0.5, prec.sqrt_half, np.nextafter(half, 0), np.nextafter(half, 1),
                                      2.0 ** -32, 2.0 ** -prec.angle_bits], prec.dtype),
                            rng.uniform(2.0 ** -30, 1.0, 3000).astype(prec.dtype)])
        expected = transforms.log_unit(u, prec)
        got = np.array([log_fn(ctype(v)) for v in u], prec.dtype)
        assert np.array_equal(got, expected)
        top = 1 << prec.angle_bits
        k = np.concatenate([np.array([0, 1, top // 8 - 1, top // 8, top // 4, top // 2, top - 1], np.uint64),
                            rng.integers(0, top, 3000, dtype=np.uint64)])
        cos_t, sin_t = transforms.sincos_turns(k, prec)
        c, s = ctype(), ctype()
        got = []
        for v in k:
            sincos_fn(itype(int(v)), ctypes.byref(c), ctypes.byref(s))
            got.append((c.value, s.value))
        got = np.array(got, prec.dtype)
        assert np.array_equal(got[:, 0].view(prec.uint), cos_t.view(prec.uint))
        assert np.array_equal(got[:, 1].view(prec.uint), sin_t.view(prec.uint))


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_constants_are_the_value_converted(host, dtype):
    for value in (0.0, -0.0, 1.0, 0.1, -2.5e-8, 1e-300, 70000.0, 3.0e38):
        with np.errstate(over="ignore"):
            expected = np.full(13, value, dtype)
        got = host_fill(host, Fill.constant(value), (1, 2), 13, dtype, 0, 5)
        assert np.array_equal(got.view(f"u{got.itemsize}"), expected.view(f"u{got.itemsize}"))


def test_store_launch_tables_fill_an_arena_as_the_cpu_does(host):
    """The lifecycle's fill jobs as the kernels' launch tables (one per dtype and family,
    parameters by address, shared fills) run group by group with the kernels' own job lookup (the
    chunk map and a thread's JobCursor), on a host arena, give every parameter the CPU's bits:
    table layout, prefix sums, chunk maps, shards of groups, constants."""
    from gpuinit import init, lifecycle, nn, store

    net = nn.Sequential()
    net.add(nn.Dense(33, in_units=7, dtype="float16"), nn.Dense(5, in_units=33),
            nn.Dense(9, in_units=5, dtype="float64", weight_initializer=init.TruncatedNormal(sigma=0.2)),
            nn.BatchNorm(in_channels=9, dtype="float64"), nn.Dense(1, in_units=9, weight_initializer="normal"))
    params = net.collect_params()
    params.initialize(init.Xavier(), device="cpu", seed=42)
    expected = {name: p.data().copy() for name, p in params.items()}
    entries = [(p, p.request) for p in params.values()]
    batch = lifecycle.batch_for(entries)
    offsets, size = store.layout(batch.nbytes())
    arena = store.allocate(entries[0][1].device, size)
    arena[...] = 0xAB
    launches = kernels.launch_tables(arena.ctypes.data, batch.jobs(range(len(batch)), offsets.tolist()),
                                     arena.nbytes)
    assert {(d.name, f) for d, f, *_ in launches} >= {("float16", "uniform"), ("float32", "constant"),
                                                     ("float64", "truncated_normal"), ("float32", "normal")}
    for launch in launches:
        chunks = launch.chunk_job.ctypes.data if launch.chunk_job is not None else None
        host.gi_run_table(FAMILY[launch.family], code(launch.dtype), launch.table.ctypes.data, len(launch.table),
                          launch.total_groups, chunks)
    for param, offset in zip(batch.params, offsets.tolist()):
        got = store.ArenaSlice(arena, offset, param.shape, param.dtype).view()
        want = expected[param.name]
        assert np.array_equal(got.view(f"u{got.itemsize}"), want.view(f"u{want.itemsize}")), param.name


@settings(max_examples=40, deadline=None)
@given(sizes=st.lists(st.integers(1, 3000), min_size=2, max_size=60), family=st.sampled_from(list(FAMILY)),
       dtype=st.sampled_from(ALL_DTYPES), shard=st.integers(0, 5))
def test_many_jobs_cross_chunk_boundaries_as_the_reference(host, sizes, family, dtype, shard):
    """Launch tables of many jobs, small and large, starting anywhere (shards): every thread group
    finds its job through the chunk map and the cursor's forward scan, with or without the map."""
    dtype = np.dtype(dtype)
    fill = {"constant": Fill.constant(0.25), "uniform": Fill.uniform(-1, 2), "normal": Fill.normal(0.5, 2.0),
            "truncated_normal": Fill.truncated_normal(0, 1, -1.5, 2)}[family]
    starts = [(7 * i * shard) % 97 for i in range(len(sizes))]
    offsets, size = store_layout([n * dtype.itemsize for n in sizes])
    arena = np.zeros(size, np.uint8)
    from gpuinit.streams import FillJob
    jobs = [FillJob(o, dtype, n, (i, 3), fill, s, 4 * (i % 3)) for i, (o, n, s) in enumerate(zip(offsets, sizes, starts))]
    (launch,) = kernels.launch_tables(arena.ctypes.data, jobs, arena.nbytes)
    for with_map in (True, False):
        arena[...] = 0
        chunks = launch.chunk_job.ctypes.data if with_map else None
        host.gi_run_table(FAMILY[family], code(dtype), launch.table.ctypes.data, len(launch.table),
                          launch.total_groups, chunks)
        for job in jobs:
            want = reference(fill, job.key, job.count, dtype, job.word_offset, job.start)
            got = arena[job.offset:job.offset + job.count * dtype.itemsize].view(dtype)
            assert np.array_equal(got.view(f"u{dtype.itemsize}"), want.view(f"u{dtype.itemsize}"))


def store_layout(nbytes):
    from gpuinit import store
    offsets, size = store.layout(nbytes)
    return offsets.tolist(), size


def test_chunk_maps_name_the_job_of_every_chunk():
    first = np.array([0, 3, 3, 700, 1500], np.uint64)  # a job of 0 groups is skipped by the table, never named here
    chunks = kernels.chunk_map(first, 2000)
    starts = np.arange(0, 2000, 1 << kernels.CHUNK_SHIFT)
    assert len(chunks) == -(-2000 // (1 << kernels.CHUNK_SHIFT))
    for c, g in zip(chunks, starts):
        assert first[c] <= g and (c + 1 == len(first) or first[c + 1] > g)


def test_half_from_float_rounds_every_float32_as_numpy(host):
    """The float32 -> float16 rounding the float32-computed fills use: every float32 that rounds to
    a subnormal or to the top of the range, and random bit patterns elsewhere."""
    rng = np.random.default_rng(4)
    bits = np.concatenate([np.arange(0x33000000 - 4, 0x38800000 + 4, 97, dtype=np.uint32),
                           np.arange(0x477FE000, 0x47800010, dtype=np.uint32),
                           rng.integers(0, 2**32, 2_000_000, dtype=np.uint64).astype(np.uint32),
                           np.array([0, 0x80000000, 0x7F800000, 0xFF800000, 0x33000000, 0x33000001], np.uint32)])
    values = bits.view(np.float32)
    values = values[~np.isnan(values)]
    out = np.empty(values.size, np.uint16)
    host.gi_half_from_float(values.ctypes.data, values.size, out.ctypes.data)
    with np.errstate(over="ignore"):
        expected = values.astype(np.float16).view(np.uint16)
    assert np.array_equal(out, expected)


def test_half_rounding_matches_numpy(host):
    rng = np.random.default_rng(0)
    special = np.array([0.0, -0.0, np.inf, -np.inf, 65504.0, 65519.99, 65520.0, 1e6, 2.0 ** -24,
                        2.0 ** -25, 2.0 ** -25 * 1.0000001, 2.0 ** -26, 6.1035156e-05, 6.09e-05,
                        1.0009765625, 1.00048828125, 1.00146484375, 2049.0, 2051.0, 1e-300])
    values = np.concatenate([special, -special, rng.normal(0, 1, 100_000), rng.normal(0, 1e-5, 100_000),
                             rng.uniform(-70000, 70000, 100_000),
                             np.ldexp(rng.uniform(1, 2, 100_000), rng.integers(-30, 17, 100_000))])
    out = np.empty(values.size, np.uint16)
    host.gi_half_from_double(values.ctypes.data, values.size, out.ctypes.data)
    with np.errstate(over="ignore"):
        expected = values.astype(np.float16).view(np.uint16)
    assert np.array_equal(out, expected)
    nan = np.array([np.nan])
    host.gi_half_from_double(nan.ctypes.data, 1, out.ctypes.data)
    assert np.isnan(out[:1].view(np.float16)[0])


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


def test_kernels_keep_groups_in_registers_and_store_them_wide(tmp_path):
    """ptxas's own report: no kernel spills or uses a stack frame (a group's values stay in
    registers), and every kernel has the 16-byte (or, for 8-byte groups, 8-byte) store."""
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("nvcc is not installed")
    source = KERNELS / "init_kernels.cu"
    out = subprocess.run([nvcc, "-cubin", "-arch=sm_90", "-std=c++17", "--fmad=false", "-Xptxas", "-v",
                          "-o", str(tmp_path / "k.cubin"), str(source)], check=True, capture_output=True,
                         text=True)
    frames = [line for line in out.stderr.splitlines() if "stack frame" in line]
    assert len(frames) == len(kernels.NAME_EXPRESSIONS) and all(line.strip().startswith("0 bytes stack frame, 0 bytes spill stores, "
                                                             "0 bytes spill loads") for line in frames), frames
    ptx = tmp_path / "k.ptx"
    subprocess.run([nvcc, "-ptx", "-arch=sm_90", "-std=c++17", "--fmad=false", "-o", str(ptx), str(source)],
                   check=True, capture_output=True)
    for entry in ptx.read_text().split(".entry")[1:]:
        assert "st.v4.b32" in entry or "st.v2.b32" in entry, entry[:80]


# --- the Python side of the kernels: table, source, packaging ---------------------------------

from gpuinit import kernels  # noqa: E402
from gpuinit.errors import GpuInitError  # noqa: E402


def test_job_table_layout_matches_the_struct():
    assert kernels.JOB_DTYPE.itemsize == 104  # 7 x u64 + 6 x f64, no padding, as in philox.cuh
    a, b = np.empty((3, 5), np.float32), np.empty(17, np.float32)
    fill = Fill.truncated_normal(0.1, 0.2, -1.0, 2.0)
    table, groups = kernels.build_table([(a, fill, (1, 2), 0), (b, fill, (3, 4), 8, 6)], np.float32,
                                        "truncated_normal")
    # a: 15 elements = groups 0..3; b: elements 6..22 = groups 1..5
    assert list(table["first_group"]) == [0, 4] and groups == 4 + 5 and list(table["begin"]) == [0, 6]
    assert list(table["count"]) == [15, 17] and list(table["word_offset"]) == [0, 8]
    assert table["out_ptr"][0] == a.ctypes.data and (table["k0"][1], table["k1"][1]) == (3, 4)
    assert (table["pa"][0], table["pb"][0]) == fill.cdf_bounds()
    assert kernels.build_table([(a, Fill.uniform(0, 1), (1, 2), 0)], np.float32, "uniform")[1] == 2
    big, _ = kernels.build_table([(a, Fill.uniform(0, 1), (2**64 - 1, 2**63), 0),
                                  (b, Fill.uniform(0, 1), (5, 2**64 - 2), 4)], np.float32, "uniform")
    assert [int(k) for k in big["k0"]] == [2**64 - 1, 5] and [int(k) for k in big["k1"]] == [2**63, 2**64 - 2]


def test_job_table_rejects_what_the_kernels_cannot_take():
    fill = Fill.uniform(0, 1)
    with pytest.raises(GpuInitError, match="C-contiguous"):
        kernels.build_table([(np.empty((4, 4), np.float32)[:, ::2], fill, (1, 2), 0)], np.float32, "uniform")
    with pytest.raises(GpuInitError, match="multiples of 4"):
        kernels.build_table([(np.empty(4, np.float32), fill, (1, 2), 2)], np.float32, "uniform")
    with pytest.raises(GpuInitError, match="GPU fills support float16, float32, float64"):
        kernels.build_table([(np.empty(4, np.int32), fill, (1, 2), 0)], np.int32, "uniform")


def test_source_compiles_through_nvrtc_as_the_loader_compiles_it():
    """The exact text, options and name expressions CuPy's RawModule gets, through NVRTC."""
    try:
        from cupy_backends.cuda.libs import nvrtc
        nvrtc.getVersion()
    except Exception as exc:  # no CuPy, or no libnvrtc on this machine
        pytest.skip(f"NVRTC is not available: {exc}")
    for arch in ("compute_80", "compute_90"):
        prog = nvrtc.createProgram(kernels.source(), "init_kernels.cu", [], [])
        for name in kernels.NAME_EXPRESSIONS:
            nvrtc.addNameExpression(prog, name)
        try:
            # CuPy's RawModule appends -ftz=true and the device's architecture to our options.
            nvrtc.compileProgram(prog, list(kernels.OPTIONS) + ["-ftz=true", f"-arch={arch}"])
        except Exception:
            pytest.fail(nvrtc.getProgramLog(prog))
        ptx = nvrtc.getPTX(prog)
        ptx = ptx.decode() if isinstance(ptx, bytes) else ptx
        for name in kernels.NAME_EXPRESSIONS:
            assert nvrtc.getLoweredName(prog, name) in ptx


def test_a_wheel_carries_the_kernel_sources(tmp_path):
    pytest.importorskip("setuptools")
    root = KERNELS.parents[1]
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                          "-q", "-w", str(tmp_path), str(root)], capture_output=True, text=True)
    if out.returncode != 0:
        pytest.skip(f"cannot build a wheel here: {out.stderr[-300:]}")
    (wheel,) = tmp_path.glob("gpuinit-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for source in ("philox.cuh", "init_kernels.cu", "host.cpp", "cpu_engine.cpp", "host_simd.h"):
        assert f"gpuinit/kernels/{source}" in names
    # and the compiled CPU engine, built with the wheel where a compiler is
    if shutil.which("c++") or shutil.which("g++"):
        assert any(n.startswith("gpuinit/kernels/_cpu.") for n in names), names
