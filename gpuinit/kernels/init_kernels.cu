// Fused parameter fills: one launch per distribution family and output type fills every
// parameter of a materialization, reading a table of jobs (pointer, element count, key, numbers).
//
// A thread computes one Philox block and writes the 8 (32-bit or smaller outputs, but for the
// truncated normal) or 4 elements it yields, contiguously, with 16-byte stores where aligned.
// Element i depends only on (key, word offset, i), never on the grid, the block size or the
// device, so any launch shape gives the numbers of gpuinit/streams/spec.py. The job table and what a
// thread does with its groups (JobCursor) are in philox.cuh, so the host builds run them too.
// Compile with --fmad=false: the contract rounds every operation separately.
#include "philox.cuh"

namespace gpuinit {

// T is float, double, unsigned short (float16 bits) or bf16 (bfloat16 bits). chunk_job: the job
// of every 2**CHUNK_SHIFT-th group, or null for a table of one job.
template <typename T, int FAMILY>
__global__ void init_fill(const FillJob* jobs, int njobs, u64 total_groups, const u32* chunk_job) {
    JobCursor<T, FAMILY> cursor;
    for (u64 g = (u64)blockIdx.x * blockDim.x + threadIdx.x; g < total_groups;
         g += (u64)gridDim.x * blockDim.x) {
        cursor.fill(jobs, njobs, total_groups, chunk_job, g);
    }
}

}  // namespace gpuinit

// Instantiations, so that offline PTX builds contain every entry point; CuPy's RawModule asks for
// them by name expression ("gpuinit::init_fill<float, 1>").
#define GI_INSTANTIATE(T, F) \
    template __global__ void gpuinit::init_fill<T, F>(const gpuinit::FillJob*, int, gpuinit::u64, const gpuinit::u32*);
GI_INSTANTIATE(float, 0)
GI_INSTANTIATE(float, 1)
GI_INSTANTIATE(float, 2)
GI_INSTANTIATE(float, 3)
GI_INSTANTIATE(double, 0)
GI_INSTANTIATE(double, 1)
GI_INSTANTIATE(double, 2)
GI_INSTANTIATE(double, 3)
GI_INSTANTIATE(unsigned short, 0)
GI_INSTANTIATE(unsigned short, 1)
GI_INSTANTIATE(unsigned short, 2)
GI_INSTANTIATE(unsigned short, 3)
GI_INSTANTIATE(gpuinit::bf16, 0)
GI_INSTANTIATE(gpuinit::bf16, 1)
GI_INSTANTIATE(gpuinit::bf16, 2)
GI_INSTANTIATE(gpuinit::bf16, 3)
