// Fused parameter fills: one launch per distribution family and output type fills every parameter
// of a materialization, reading a table of jobs (arena offset, element count, key, parameters).
//
// Element i of a job depends only on (key, word offset, i): never on the grid, the block size or
// the device, so any launch shape gives the numbers of gpuinit/streams.py. Compile with
// --fmad=false (the contract rounds every operation separately).
#include <cuda_fp16.h>
#include "philox.cuh"

namespace gpuinit {

struct FillJob {
    u64 out_offset;   // byte offset of the parameter in the arena
    u64 first;        // index of the job's first element in the launch (prefix sum of counts)
    u64 count;        // elements
    u64 k0, k1;       // the parameter's key
    u64 word_offset;  // stream word offset (0 for an initializer's own fill)
    double a, b, lo, hi, pa, pb;  // the Fill's numbers; pa/pb: Phi(lo), Phi(hi)
};

enum Family { UNIFORM = 1, NORMAL = 2, TRUNCATED_NORMAL = 3 };

template <typename T> __device__ __forceinline__ T from_float(float v);
template <> __device__ __forceinline__ float from_float<float>(float v) { return v; }
template <> __device__ __forceinline__ __half from_float<__half>(float v) { return __float2half_rn(v); }

template <typename T> __device__ __forceinline__ T from_double(double v);
template <> __device__ __forceinline__ float from_double<float>(double v) { return (float)v; }
template <> __device__ __forceinline__ double from_double<double>(double v) { return v; }
template <> __device__ __forceinline__ __half from_double<__half>(double v) { return __double2half(v); }

__device__ __forceinline__ int find_job(const FillJob* jobs, int njobs, u64 g) {
    int lo = 0, hi = njobs - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) >> 1;
        if (jobs[mid].first <= g) lo = mid; else hi = mid - 1;
    }
    return lo;
}

template <typename T, int FAMILY>
__global__ void init_fill(char* arena, const FillJob* jobs, int njobs, u64 total) {
    const Words4 zero = {{0, 0, 0, 0}};
    for (u64 g = (u64)blockIdx.x * blockDim.x + threadIdx.x; g < total; g += (u64)gridDim.x * blockDim.x) {
        const FillJob& job = jobs[find_job(jobs, njobs, g)];
        u64 i = g - job.first;
        T* out = reinterpret_cast<T*>(arena + job.out_offset);
        if constexpr (FAMILY == UNIFORM) {
            if constexpr (sizeof(T) == 8) {
                out[i] = from_double<T>(uniform_f64(job.k0, job.k1, zero, job.word_offset, i, job.a, job.b - job.a));
            } else {
                out[i] = from_float<T>(uniform_f32(job.k0, job.k1, zero, job.word_offset, i, (float)job.a,
                                                  (float)(job.b - job.a)));
            }
        } else if constexpr (FAMILY == NORMAL) {
            out[i] = from_double<T>(normal_f64(job.k0, job.k1, zero, job.word_offset, i, job.a, job.b));
        } else {
            out[i] = from_double<T>(truncated_normal_f64(job.k0, job.k1, zero, job.word_offset, i, job.a, job.b,
                                                         job.lo, job.hi, job.pa, job.pb));
        }
    }
}

}  // namespace gpuinit

// Instantiations, so that offline PTX builds contain every entry point (CuPy's RawModule asks for
// them by name expression, e.g. "gpuinit::init_fill<float, 1>").
template __global__ void gpuinit::init_fill<float, 1>(char*, const gpuinit::FillJob*, int, gpuinit::u64);
template __global__ void gpuinit::init_fill<float, 2>(char*, const gpuinit::FillJob*, int, gpuinit::u64);
template __global__ void gpuinit::init_fill<float, 3>(char*, const gpuinit::FillJob*, int, gpuinit::u64);
template __global__ void gpuinit::init_fill<double, 1>(char*, const gpuinit::FillJob*, int, gpuinit::u64);
template __global__ void gpuinit::init_fill<double, 2>(char*, const gpuinit::FillJob*, int, gpuinit::u64);
template __global__ void gpuinit::init_fill<double, 3>(char*, const gpuinit::FillJob*, int, gpuinit::u64);
template __global__ void gpuinit::init_fill<__half, 1>(char*, const gpuinit::FillJob*, int, gpuinit::u64);
template __global__ void gpuinit::init_fill<__half, 2>(char*, const gpuinit::FillJob*, int, gpuinit::u64);
template __global__ void gpuinit::init_fill<__half, 3>(char*, const gpuinit::FillJob*, int, gpuinit::u64);
