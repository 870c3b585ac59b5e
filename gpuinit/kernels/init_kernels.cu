// Fused parameter fills: one launch per distribution family and output type fills every
// parameter of a materialization, reading a table of jobs (pointer, element count, key, numbers).
//
// A thread computes one Philox block and writes the 8 (32-bit or smaller outputs, but for the
// truncated normal) or 4 elements it yields, contiguously, with 16-byte stores where aligned.
// Element i depends only on (key, word offset, i), never on the grid, the block size or the
// device, so any launch shape gives the numbers of gpuinit/streams/spec.py. The job table and what a
// thread does with its group (run_group) are in philox.cuh, so the host build runs them too.
// Compile with --fmad=false: the contract rounds every operation separately.
#include "philox.cuh"

namespace gpuinit {

// T is float, double, unsigned short (float16 bits) or bf16 (bfloat16 bits).
template <typename T, int FAMILY>
__global__ void init_fill(const FillJob* jobs, int njobs, u64 total_groups) {
    for (u64 g = (u64)blockIdx.x * blockDim.x + threadIdx.x; g < total_groups;
         g += (u64)gridDim.x * blockDim.x) {
        run_group<T, FAMILY>(jobs, njobs, g);
    }
}

}  // namespace gpuinit

// Instantiations, so that offline PTX builds contain every entry point; CuPy's RawModule asks for
// them by name expression ("gpuinit::init_fill<float, 1>").
template __global__ void gpuinit::init_fill<float, 0>(const gpuinit::FillJob*, int, gpuinit::u64);
template __global__ void gpuinit::init_fill<float, 1>(const gpuinit::FillJob*, int, gpuinit::u64);
template __global__ void gpuinit::init_fill<float, 2>(const gpuinit::FillJob*, int, gpuinit::u64);
template __global__ void gpuinit::init_fill<float, 3>(const gpuinit::FillJob*, int, gpuinit::u64);
template __global__ void gpuinit::init_fill<double, 0>(const gpuinit::FillJob*, int, gpuinit::u64);
template __global__ void gpuinit::init_fill<double, 1>(const gpuinit::FillJob*, int, gpuinit::u64);
template __global__ void gpuinit::init_fill<double, 2>(const gpuinit::FillJob*, int, gpuinit::u64);
template __global__ void gpuinit::init_fill<double, 3>(const gpuinit::FillJob*, int, gpuinit::u64);
template __global__ void gpuinit::init_fill<unsigned short, 0>(const gpuinit::FillJob*, int, gpuinit::u64);
template __global__ void gpuinit::init_fill<unsigned short, 1>(const gpuinit::FillJob*, int, gpuinit::u64);
template __global__ void gpuinit::init_fill<unsigned short, 2>(const gpuinit::FillJob*, int, gpuinit::u64);
template __global__ void gpuinit::init_fill<unsigned short, 3>(const gpuinit::FillJob*, int, gpuinit::u64);
template __global__ void gpuinit::init_fill<gpuinit::bf16, 0>(const gpuinit::FillJob*, int, gpuinit::u64);
template __global__ void gpuinit::init_fill<gpuinit::bf16, 1>(const gpuinit::FillJob*, int, gpuinit::u64);
template __global__ void gpuinit::init_fill<gpuinit::bf16, 2>(const gpuinit::FillJob*, int, gpuinit::u64);
template __global__ void gpuinit::init_fill<gpuinit::bf16, 3>(const gpuinit::FillJob*, int, gpuinit::u64);
