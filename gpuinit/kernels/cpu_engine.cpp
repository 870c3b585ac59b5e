// gpuinit.kernels._cpu: the fill kernels' own code (philox.cuh) run on the host's cores.
//
// It runs the launch tables the GPU runs (struct FillJob, built by gpuinit.kernels.launch_tables),
// group by group with fill_group, on several threads and without the GIL, so the CPU fill gives
// the GPU's bits, which are the NumPy reference's bits. Build it without contraction or fast-math
// (-ffp-contract=off, no -ffast-math): the contract rounds every operation separately.
//
// One function: run(family, dtype_code, table, njobs, total_groups, chunk_map, first_group,
// last_group, threads) fills the table's thread groups [first_group, last_group) (a caller cuts a
// large fill into pieces, to report progress and to let Ctrl-C in between).
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <algorithm>
#include <thread>
#include <vector>

#if defined(__GNUC__)  // GCC and Clang: vector extensions for the float32 normal and the truncated normal
#define GI_HOST_SIMD
#endif
#include "philox.cuh"
#if defined(GI_HOST_SIMD)
#include "host_simd.h"
#endif

using namespace gpuinit;

namespace {

// Groups [g0, g1) of a launch, in order, with one JobCursor (as a GPU thread keeps one).
template <typename T, int FAMILY>
void run_range(const FillJob* jobs, int njobs, u64 total, const u32* chunk_job, u64 g0, u64 g1) {
    JobCursor<T, FAMILY> cursor;
#if defined(GI_HOST_SIMD)
    if constexpr (FAMILY == TRUNCATED_NORMAL) {
        // Up to TRUNCATED_BATCH groups of one job at a time: their blocks, their values in passes
        // over the batch (host_truncated_normals), their stores; fill_group's steps, in batches.
        for (u64 g = g0; g < g1;) {
            if (g - cursor.lo >= cursor.hi - cursor.lo) cursor.seek(jobs, njobs, total, chunk_job, g);
            const int n = (int)std::min<u64>({(u64)TRUNCATED_BATCH, g1 - g, cursor.hi - g});
            Words4 w[TRUNCATED_BATCH];
            for (int i = 0; i < n; ++i) w[i] = group_words(cursor.numbers, cursor.k0 + g + i);
            double z[4 * TRUNCATED_BATCH];
            host_truncated_normals(cursor.numbers.p, w, n, z);
            for (int i = 0; i < n; ++i) {
                T v[4];
                for (int e = 0; e < 4; ++e) put64(v + e, z[4 * i + e]);
                store_values<T, 4>(v, cursor.k0 + g + i, cursor.out, cursor.begin, cursor.end, cursor.whole_lo,
                                   cursor.whole_n);
            }
            g += n;
        }
        return;
    }
#endif
    for (u64 g = g0; g < g1; ++g) cursor.fill(jobs, njobs, total, chunk_job, g);
}

struct Launch {
    const FillJob* jobs;
    int njobs;
    u64 total;
    const u32* chunk_job;
};

template <typename T>
bool run_family(int family, const Launch& l, u64 g0, u64 g1) {
    switch (family) {
        case CONSTANT: run_range<T, CONSTANT>(l.jobs, l.njobs, l.total, l.chunk_job, g0, g1); return true;
        case UNIFORM: run_range<T, UNIFORM>(l.jobs, l.njobs, l.total, l.chunk_job, g0, g1); return true;
        case NORMAL: run_range<T, NORMAL>(l.jobs, l.njobs, l.total, l.chunk_job, g0, g1); return true;
        case TRUNCATED_NORMAL: run_range<T, TRUNCATED_NORMAL>(l.jobs, l.njobs, l.total, l.chunk_job, g0, g1); return true;
        default: return false;
    }
}

// dtype codes as the tests' host build names them: the itemsize, but 3 for bfloat16.
bool run_any(int family, int code, const Launch& l, u64 g0, u64 g1) {
    switch (code) {
        case 2: return run_family<unsigned short>(family, l, g0, g1);
        case 3: return run_family<bf16>(family, l, g0, g1);
        case 4: return run_family<float>(family, l, g0, g1);
        case 8: return run_family<double>(family, l, g0, g1);
        default: return false;
    }
}

// Below this many groups per thread, another thread costs more than it saves.
constexpr u64 MIN_GROUPS_PER_THREAD = 4096;

PyObject* run(PyObject*, PyObject* args) {
    int family, code, njobs, threads;
    Py_buffer table, chunks;
    unsigned long long total, g0, g1;
    if (!PyArg_ParseTuple(args, "iiy*iKz*KKi", &family, &code, &table, &njobs, &total, &chunks, &g0, &g1, &threads))
        return nullptr;
    const bool table_ok = njobs > 0 && table.len >= (Py_ssize_t)(njobs * sizeof(FillJob));
    const bool chunks_ok = chunks.buf == nullptr || chunks.len >= (Py_ssize_t)(((total + (1ULL << CHUNK_SHIFT) - 1) >> CHUNK_SHIFT) * sizeof(u32));
    const bool args_ok = family >= CONSTANT && family <= TRUNCATED_NORMAL && (code == 2 || code == 3 || code == 4 || code == 8);
    if (!table_ok || !chunks_ok || !args_ok || g1 < g0 || g1 > total) {
        PyErr_Format(PyExc_ValueError, "gpuinit CPU engine: bad launch (family %d, dtype code %d, %d jobs in %zd bytes, "
                     "%zd bytes of chunk map, groups %llu..%llu of %llu)", family, code, njobs, table.len, chunks.len,
                     g0, g1, total);
        PyBuffer_Release(&table);
        PyBuffer_Release(&chunks);
        return nullptr;
    }
    const Launch launch = {static_cast<const FillJob*>(table.buf), njobs, total, static_cast<const u32*>(chunks.buf)};
    const u64 span = g1 - g0;
    u64 workers = std::max<u64>(1, std::min<u64>((u64)std::max(threads, 1), span / MIN_GROUPS_PER_THREAD));
    Py_BEGIN_ALLOW_THREADS
    if (workers == 1) {
        run_any(family, code, launch, g0, g1);
    } else {
        std::vector<std::thread> pool;
        pool.reserve(workers - 1);
        const u64 step = (span + workers - 1) / workers;
        for (u64 w = 1; w < workers; ++w) {
            const u64 a = g0 + w * step, b = std::min(g1, a + step);
            if (a < b) pool.emplace_back([=] { run_any(family, code, launch, a, b); });
        }
        run_any(family, code, launch, g0, std::min(g1, g0 + step));
        for (auto& t : pool) t.join();
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&table);
    PyBuffer_Release(&chunks);
    Py_RETURN_NONE;
}

PyMethodDef methods[] = {
    {"run", run, METH_VARARGS,
     "run(family, dtype_code, table, njobs, total_groups, chunk_map, first_group, last_group, threads): fill "
     "thread groups [first_group, last_group) of a launch table (chunk_map: its uint32 chunk map, or None) on "
     "`threads` threads, without the GIL."},
    {nullptr, nullptr, 0, nullptr}};

PyModuleDef module = {PyModuleDef_HEAD_INIT, "_cpu",
                      "The fill kernels' code (philox.cuh) run on the host's cores: gpuinit's compiled CPU engine.",
                      -1, methods};

}  // namespace

PyMODINIT_FUNC PyInit__cpu() {
    PyObject* m = PyModule_Create(&module);
    if (m && (PyModule_AddIntConstant(m, "JOB_BYTES", (long)sizeof(FillJob)) < 0 ||
              PyModule_AddIntConstant(m, "CHUNK_SHIFT", CHUNK_SHIFT) < 0)) {
        Py_DECREF(m);
        return nullptr;
    }
    return m;
}
