// The header's functions compiled for the host, behind a C ABI for ctypes: the tests run the very
// code the CUDA kernels run (fill_group, Philox, half rounding) against the NumPy reference on
// machines with no GPU.
#include "philox.cuh"

using namespace gpuinit;

template <typename T, int FAMILY>
static void fill_range(const FillParams& p, u64 start, u64 count, void* out) {
    const u64 g = group_size<T, FAMILY>(), end = start + count;
    for (u64 k = start / g; k <= (end - 1) / g; ++k) fill_group<T, FAMILY>(p, k, (T*)out, start, end);
}

template <typename T>
static void fill_family(int family, const FillParams& p, u64 start, u64 count, void* out) {
    if (family == CONSTANT) fill_range<T, CONSTANT>(p, start, count, out);
    else if (family == UNIFORM) fill_range<T, UNIFORM>(p, start, count, out);
    else if (family == NORMAL) fill_range<T, NORMAL>(p, start, count, out);
    else fill_range<T, TRUNCATED_NORMAL>(p, start, count, out);
}

template <typename T, int FAMILY>
static void run_groups(const FillJob* jobs, int njobs, u64 total_groups, const u32* chunk_job) {
    JobCursor<T, FAMILY> cursor;
    for (u64 g = 0; g < total_groups; ++g) cursor.fill(jobs, njobs, total_groups, chunk_job, g);
}

template <typename T>
static void run_family(int family, const FillJob* jobs, int njobs, u64 total_groups, const u32* chunk_job) {
    if (family == CONSTANT) run_groups<T, CONSTANT>(jobs, njobs, total_groups, chunk_job);
    else if (family == UNIFORM) run_groups<T, UNIFORM>(jobs, njobs, total_groups, chunk_job);
    else if (family == NORMAL) run_groups<T, NORMAL>(jobs, njobs, total_groups, chunk_job);
    else run_groups<T, TRUNCATED_NORMAL>(jobs, njobs, total_groups, chunk_job);
}

extern "C" {

// A fused launch's table run on the host, group by group as the kernel's threads run it (one
// JobCursor, as a thread keeps one): the table's out_ptr are then host addresses. itemsize as for
// gi_fill; chunk_job: the launch's chunk map, or null.
void gi_run_table(int family, int itemsize, const void* table, int njobs, u64 total_groups, const u32* chunk_job) {
    const FillJob* jobs = static_cast<const FillJob*>(table);
    if (itemsize == 2) run_family<unsigned short>(family, jobs, njobs, total_groups, chunk_job);
    else if (itemsize == 3) run_family<bf16>(family, jobs, njobs, total_groups, chunk_job);
    else if (itemsize == 4) run_family<float>(family, jobs, njobs, total_groups, chunk_job);
    else run_family<double>(family, jobs, njobs, total_groups, chunk_job);
}

void gi_raw_words(u64 k0, u64 k1, const u64* counter, u64 first, u64 count, u64* out) {
    Words4 c = {{counter[0], counter[1], counter[2], counter[3]}};
    for (u64 j = 0; j < count; ++j) out[j] = stream_word(k0, k1, c, first + j);
}

// Elements [start, start + count) of a fill into an array of float16 (itemsize 2), bfloat16
// (passed as 3), float32 (4) or float64 (8), group by group, as the kernels do.
void gi_fill(int family, int itemsize, u64 k0, u64 k1, u64 word_offset, u64 start, u64 count, double a,
             double b, double lo, double hi, double pa, double pb, void* out) {
    if (count == 0) return;
    FillParams p = {k0, k1, word_offset, a, b, lo, hi, pa, pb};
    if (itemsize == 2) fill_family<unsigned short>(family, p, start, count, out);
    else if (itemsize == 3) fill_family<bf16>(family, p, start, count, out);
    else if (itemsize == 4) fill_family<float>(family, p, start, count, out);
    else fill_family<double>(family, p, start, count, out);
}

// The transforms alone, for their accuracy tests.
float gi_log_f32(float u) { return log_unit(u); }
double gi_log_f64(double u) { return log_unit(u); }
void gi_sincos_f32(int k, float* c, float* s) { sincos_turns<float>(k, c, s); }
void gi_sincos_f64(long long k, double* c, double* s) { sincos_turns<double>(k, c, s); }

void gi_half_from_double(const double* in, u64 n, unsigned short* out) {
    for (u64 i = 0; i < n; ++i) out[i] = half_from_double(in[i]);
}

void gi_half_from_float(const float* in, u64 n, unsigned short* out) {
    for (u64 i = 0; i < n; ++i) out[i] = half_from_float(in[i]);
}

}
