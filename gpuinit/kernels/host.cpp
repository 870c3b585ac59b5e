// The header's functions compiled for the host, behind a C ABI for ctypes: the tests run the very
// code the CUDA kernels run (fill_group, Philox, half rounding) against the NumPy reference on
// machines with no GPU.
#include "philox.cuh"

using namespace gpuinit;

extern "C" {

void gi_raw_words(u64 k0, u64 k1, const u64* counter, u64 first, u64 count, u64* out) {
    Words4 c = {{counter[0], counter[1], counter[2], counter[3]}};
    for (u64 j = 0; j < count; ++j) out[j] = stream_word(k0, k1, c, first + j);
}

// Elements [start, start + count) of a fill into an array of itemsize 2 (float16 bits), 4 or 8,
// group by group, as the kernels do.
void gi_fill(int family, int itemsize, u64 k0, u64 k1, u64 word_offset, u64 start, u64 count, double a,
             double b, double lo, double hi, double pa, double pb, void* out) {
    if (count == 0) return;
    FillParams p = {k0, k1, word_offset, a, b, lo, hi, pa, pb};
    u64 g = itemsize == 8 ? group_size<double>(family) : group_size<float>(family);
    u64 end = start + count;
    for (u64 k = start / g; k <= (end - 1) / g; ++k) {
        if (itemsize == 2) fill_group(family, p, k, (unsigned short*)out, start, end);
        else if (itemsize == 4) fill_group(family, p, k, (float*)out, start, end);
        else fill_group(family, p, k, (double*)out, start, end);
    }
}

void gi_half_from_double(const double* in, u64 n, unsigned short* out) {
    for (u64 i = 0; i < n; ++i) out[i] = half_from_double(in[i]);
}

}
