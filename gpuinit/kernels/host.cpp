// The header's device functions compiled for the host, behind a C ABI for ctypes: used by the
// tests to check the CUDA arithmetic against the NumPy reference on machines with no GPU.
#include "philox.cuh"

using namespace gpuinit;

extern "C" {

void gi_raw_words(u64 k0, u64 k1, const u64* counter, u64 first, u64 count, u64* out) {
    Words4 c = {{counter[0], counter[1], counter[2], counter[3]}};
    for (u64 j = 0; j < count; ++j) out[j] = stream_word(k0, k1, c, first + j);
}

// family: 1 uniform, 2 normal, 3 truncated normal. Elements [start, start + n) at word offset o.
void gi_fill_f32(int family, u64 k0, u64 k1, u64 start, u64 o, u64 n, double a, double b, double lo,
                 double hi, double pa, double pb, float* out) {
    Words4 c = {{0, 0, 0, 0}};
    float low = (float)a, span = (float)(b - a);
    for (u64 e = 0; e < n; ++e) {
        u64 i = start + e;
        if (family == 1) out[e] = uniform_f32(k0, k1, c, o, i, low, span);
        else if (family == 2) out[e] = (float)normal_f64(k0, k1, c, o, i, a, b);
        else out[e] = (float)truncated_normal_f64(k0, k1, c, o, i, a, b, lo, hi, pa, pb);
    }
}

void gi_fill_f64(int family, u64 k0, u64 k1, u64 start, u64 o, u64 n, double a, double b, double lo,
                 double hi, double pa, double pb, double* out) {
    Words4 c = {{0, 0, 0, 0}};
    for (u64 e = 0; e < n; ++e) {
        u64 i = start + e;
        if (family == 1) out[e] = uniform_f64(k0, k1, c, o, i, a, b - a);
        else if (family == 2) out[e] = normal_f64(k0, k1, c, o, i, a, b);
        else out[e] = truncated_normal_f64(k0, k1, c, o, i, a, b, lo, hi, pa, pb);
    }
}

}
