// Philox4x64-10 and the fill transforms of gpuinit's stream contract (gpuinit/streams.py).
//
// One header for both sides: NVRTC/nvcc compile it into the CUDA kernels, g++ compiles it into a
// host library so that its arithmetic is tested against the NumPy reference on machines with no
// GPU. Build both without fused multiply-add (nvcc/NVRTC: --fmad=false; g++: -ffp-contract=off):
// the contract rounds every operation separately, as NumPy does.
#pragma once

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define GI_HD __host__ __device__ __forceinline__
#else
#define GI_HD inline
#include <math.h>
#endif

namespace gpuinit {

typedef unsigned long long u64;
typedef unsigned int u32;

struct Words4 { u64 v[4]; };

GI_HD u64 mulhilo(u64 a, u64 b, u64* hi) {
#if defined(__CUDA_ARCH__)
    *hi = __umul64hi(a, b);
#else
    *hi = (u64)(((unsigned __int128)a * b) >> 64);
#endif
    return a * b;
}

// Random123's philox4x64 round and key schedule, ten rounds, as numpy.random.Philox uses them.
GI_HD Words4 philox4x64_10(Words4 ctr, u64 k0, u64 k1) {
    const u64 M0 = 0xD2E7470EE14C6C93ULL, M1 = 0xCA5A826395121157ULL;
    const u64 W0 = 0x9E3779B97F4A7C15ULL, W1 = 0xBB67AE8584CAA73BULL;
    for (int round = 0; round < 10; ++round) {
        if (round) { k0 += W0; k1 += W1; }
        u64 hi0, hi1;
        u64 lo0 = mulhilo(M0, ctr.v[0], &hi0);
        u64 lo1 = mulhilo(M1, ctr.v[2], &hi1);
        Words4 out = {{hi1 ^ ctr.v[1] ^ k0, lo1, hi0 ^ ctr.v[3] ^ k1, lo0}};
        ctr = out;
    }
    return ctr;
}

// The 256-bit counter of block b of a stream that starts at counter c: c + b + 1 (NumPy
// increments before each block).
GI_HD Words4 block_counter(const Words4& c, u64 b) {
    Words4 r = c;
    u64 add = b + 1;
    u64 carry = (b == ~0ULL) ? 1 : 0;  // b + 1 overflowed
    r.v[0] = c.v[0] + add;
    carry += (r.v[0] < c.v[0]) ? 1 : 0;
    for (int i = 1; i < 4; ++i) {
        u64 before = r.v[i];
        r.v[i] = before + carry;
        carry = (r.v[i] < before) ? 1 : 0;
    }
    return r;
}

// 64-bit word j of the stream (key, c).
GI_HD u64 stream_word(u64 k0, u64 k1, const Words4& c, u64 j) {
    Words4 out = philox4x64_10(block_counter(c, j >> 2), k0, k1);
    return out.v[j & 3];
}

// --- transforms: element i of a fill at word offset o ----------------------------------------

GI_HD float uniform_f32(u64 k0, u64 k1, const Words4& c, u64 o, u64 i, float low, float span) {
    u64 h = 2 * o + i;  // 32-bit word index: low half first
    u64 w = stream_word(k0, k1, c, h >> 1);
    u32 u = (h & 1) ? (u32)(w >> 32) : (u32)w;
    float x = (float)(u >> 8) * 5.9604644775390625e-08f;  // 2^-24
    x = x * span;
    return x + low;
}

GI_HD double uniform_f64(u64 k0, u64 k1, const Words4& c, u64 o, u64 i, double low, double span) {
    double x = (double)(stream_word(k0, k1, c, o + i) >> 11) * 1.1102230246251565e-16;  // 2^-53
    x = x * span;
    return x + low;
}

GI_HD double normal_f64(u64 k0, u64 k1, const Words4& c, u64 o, u64 i, double mean, double std) {
    u64 m = i >> 1;
    u64 a = stream_word(k0, k1, c, o + 2 * m);
    u64 b = stream_word(k0, k1, c, o + 2 * m + 1);
    double u1 = ((double)(a >> 11) + 1.0) * 1.1102230246251565e-16;
    double t = (double)(b >> 11) * 1.1102230246251565e-16;
    t = t * 6.283185307179586;
    double r = log(u1);
    r = r * -2.0;
    r = sqrt(r);
    double z = r * ((i & 1) ? sin(t) : cos(t));
    z = z * std;
    return z + mean;
}

GI_HD double horner8(const double* k, double x) {
    double acc = k[0];
    for (int n = 1; n < 8; ++n) { acc = acc * x; acc = acc + k[n]; }
    return acc;
}

// Inverse standard normal CDF, Wichura's AS241 (PPND16), in the same operation order as
// gpuinit.streams.ndtri.
GI_HD double ndtri(double p) {
    const double A[8] = {2.5090809287301226727e+3, 3.3430575583588128105e+4, 6.7265770927008700853e+4,
                         4.5921953931549871457e+4, 1.3731693765509461125e+4, 1.9715909503065514427e+3,
                         1.3314166789178437745e+2, 3.3871328727963666080e+0};
    const double B[8] = {5.2264952788528545610e+3, 2.8729085735721942674e+4, 3.9307895800092710610e+4,
                         2.1213794301586595867e+4, 5.3941960214247511077e+3, 6.8718700749205790830e+2,
                         4.2313330701600911252e+1, 1.0};
    const double C[8] = {7.74545014278341407640e-4, 2.27238449892691845833e-2, 2.41780725177450611770e-1,
                         1.27045825245236838258e+0, 3.64784832476320460504e+0, 5.76949722146069140550e+0,
                         4.63033784615654529590e+0, 1.42343711074968357734e+0};
    const double D[8] = {1.05075007164441684324e-9, 5.47593808499534494600e-4, 1.51986665636164571966e-2,
                         1.48103976427480074590e-1, 6.89767334985100004550e-1, 1.67638483018380384940e+0,
                         2.05319162663775882187e+0, 1.0};
    const double E[8] = {2.01033439929228813265e-7, 2.71155556874348757815e-5, 1.24266094738807843860e-3,
                         2.65321895265761230930e-2, 2.96560571828504891230e-1, 1.78482653991729133580e+0,
                         5.46378491116411436990e+0, 6.65790464350110377720e+0};
    const double F[8] = {2.04426310338993978564e-15, 1.42151175831644588870e-7, 1.84631831751005468180e-5,
                         7.86869131145613259100e-4, 1.48753612908506148525e-2, 1.36929880922735805310e-1,
                         5.99832206555887937690e-1, 1.0};
    double q = p - 0.5;
    if (fabs(q) <= 0.425) {
        double r = 0.180625 - q * q;
        return q * horner8(A, r) / horner8(B, r);
    }
    double r = q <= 0.0 ? p : 1.0 - p;
    r = sqrt(-log(r));
    double z;
    if (r <= 5.0) { r = r - 1.6; z = horner8(C, r) / horner8(D, r); }
    else { r = r - 5.0; z = horner8(E, r) / horner8(F, r); }
    return q < 0.0 ? -z : z;
}

GI_HD double truncated_normal_f64(u64 k0, u64 k1, const Words4& c, u64 o, u64 i, double mean, double std,
                                  double lo, double hi, double pa, double pb) {
    double u = ((double)(stream_word(k0, k1, c, o + i) >> 12) + 0.5) * 2.220446049250313e-16;  // 2^-52
    u = u * (pb - pa);
    u = u + pa;
    double z = ndtri(u);
    z = z < lo ? lo : (z > hi ? hi : z);
    z = z * std;
    return z + mean;
}

}  // namespace gpuinit
