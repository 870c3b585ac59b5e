// Fused parameter fills: one launch per distribution family and output type fills every
// parameter of a materialization, reading a table of jobs (pointer, element count, key, numbers).
//
// A thread computes one Philox block and writes the 8 (uniform and normal, 32-bit or smaller) or 4
// elements it yields, contiguously and with 16-byte stores where aligned: element i depends only on (key, word offset, i), never on the grid, the
// block size or the device, so any launch shape gives the numbers of gpuinit/streams.py. Compile
// with --fmad=false: the contract rounds every operation separately.
#include "philox.cuh"

namespace gpuinit {

struct FillJob {
    u64 out_ptr;      // device address where element `begin` goes
    u64 first_group;  // index of the job's first thread group in the launch (prefix sum)
    u64 begin;        // first element of the parameter's stream to produce
    u64 count;        // elements
    FillParams p;
};

__device__ __forceinline__ int find_job(const FillJob* jobs, int njobs, u64 g) {
    int lo = 0, hi = njobs - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) >> 1;
        if (jobs[mid].first_group <= g) lo = mid; else hi = mid - 1;
    }
    return lo;
}

// T is float, double, or unsigned short (float16 bits).
template <typename T, int FAMILY>
__global__ void init_fill(const FillJob* jobs, int njobs, u64 total_groups) {
    for (u64 g = (u64)blockIdx.x * blockDim.x + threadIdx.x; g < total_groups;
         g += (u64)gridDim.x * blockDim.x) {
        const FillJob& job = jobs[find_job(jobs, njobs, g)];
        const u64 k = job.begin / group_size<T, FAMILY>() + (g - job.first_group);
        fill_group<T, FAMILY>(job.p, k, reinterpret_cast<T*>(job.out_ptr), job.begin, job.begin + job.count);
    }
}

}  // namespace gpuinit

// Instantiations, so that offline PTX builds contain every entry point; CuPy's RawModule asks for
// them by name expression ("gpuinit::init_fill<float, 1>").
template __global__ void gpuinit::init_fill<float, 1>(const gpuinit::FillJob*, int, gpuinit::u64);
template __global__ void gpuinit::init_fill<float, 2>(const gpuinit::FillJob*, int, gpuinit::u64);
template __global__ void gpuinit::init_fill<float, 3>(const gpuinit::FillJob*, int, gpuinit::u64);
template __global__ void gpuinit::init_fill<double, 1>(const gpuinit::FillJob*, int, gpuinit::u64);
template __global__ void gpuinit::init_fill<double, 2>(const gpuinit::FillJob*, int, gpuinit::u64);
template __global__ void gpuinit::init_fill<double, 3>(const gpuinit::FillJob*, int, gpuinit::u64);
template __global__ void gpuinit::init_fill<unsigned short, 1>(const gpuinit::FillJob*, int, gpuinit::u64);
template __global__ void gpuinit::init_fill<unsigned short, 2>(const gpuinit::FillJob*, int, gpuinit::u64);
template __global__ void gpuinit::init_fill<unsigned short, 3>(const gpuinit::FillJob*, int, gpuinit::u64);
